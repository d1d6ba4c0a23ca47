/* SPDX-License-Identifier: MIT */
/*
 * A shmringd worker: serves every channel k with k mod nworkers == slot.
 *
 * One iteration of the loop (worker_main):
 *   1. sinks_poll      reap io_uring completions, submit due log batches
 *   2. drain_channel   for each channel: peek a batch of SQ records,
 *                      dispatch each to its plugin, commit the replies,
 *                      publish the CQ (ring the doorbell if armed), release
 *   3. stop checks     handoff (SIGUSR1) or drain (SIGTERM) finished?
 *   4. idle            spin up to spin_us, then sleep on the worker's futex
 *                      event, never past the next due log flush
 */
#include "daemon.h"
#include "shmring/spin.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sdt.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64          /* records per channel per iteration */
#define QUIET_NS 20000000 /* SIGTERM: rings idle this long = drained */
#define MAX_CONFS 65536   /* per channel: bounds what one client can make us keep */

/* ---- per-channel conf table (open addressing, conf id -> conf) ----------- */

struct conf_ent {
	uint64_t id;
	struct shmringd_plugin *plugin; /* NULL = empty slot */
	void *conf;
	size_t bytes; /* heap its conf_new took (charged to the channel's budget) */
};

struct conf_table {
	struct conf_ent *v;
	uint32_t cap; /* power of two or 0 */
	uint32_t n;
	uint64_t bytes; /* sum of the entries' bytes */
};

static struct conf_ent *conf_slot(struct conf_table *t, uint64_t id)
{
	if (!t->cap)
		return NULL;
	uint32_t mask = t->cap - 1;
	uint32_t i = (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & mask;
	for (;; i = (i + 1) & mask) {
		struct conf_ent *e = &t->v[i];
		if (!e->plugin || e->id == id)
			return e;
	}
}

static struct conf_ent *conf_find(struct conf_table *t, uint64_t id)
{
	struct conf_ent *e = conf_slot(t, id);
	return e && e->plugin ? e : NULL;
}

static int conf_grow(struct conf_table *t)
{
	struct conf_table nt = {.cap = t->cap ? t->cap * 2 : 16};
	nt.v = calloc(nt.cap, sizeof(*nt.v));
	if (!nt.v)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->cap; i++) {
		if (t->v[i].plugin) {
			*conf_slot(&nt, t->v[i].id) = t->v[i];
			nt.n++;
		}
	}
	free(t->v);
	*t = nt;
	return 0;
}

static void conf_release(struct conf_ent *e)
{
	if (e->plugin->desc && e->plugin->desc->conf_free)
		e->plugin->desc->conf_free(e->conf);
}

/* Insert or replace; the old conf of the id is freed. */
static int conf_put(struct conf_table *t, uint64_t id, struct shmringd_plugin *p, void *conf,
                    size_t bytes)
{
	if ((t->n + 1) * 4 > t->cap * 3 && conf_grow(t) < 0)
		return -ENOMEM;
	struct conf_ent *e = conf_slot(t, id);
	if (e->plugin) {
		conf_release(e);
		t->bytes -= e->bytes;
	} else {
		t->n++;
	}
	*e = (struct conf_ent){id, p, conf, bytes};
	t->bytes += bytes;
	return 0;
}

static void conf_clear(struct conf_table *t)
{
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->v[i].plugin)
			conf_release(&t->v[i]);
	free(t->v);
	*t = (struct conf_table){0};
}

/* ---- worker state -------------------------------------------------------- */

struct chan_state {
	struct shmring_chan *ch;
	uint32_t index;
	uint64_t owner; /* owner word the conf table belongs to */
	struct conf_table confs;
	int bell_listen;  /* inherited listening socket */
	int bell_conn;    /* accepted client connection, -1 if none */
	uint8_t *pending; /* a reply that did not fit in the CQ yet */
	uint32_t pending_len;
	uint64_t pending_req;
	uint32_t unreleased; /* records peeked since the last release */
	uint64_t seen;       /* records peeked since this worker started */
	bool broken_logged;
	struct shmringd_entity_cache *entities; /* gateway answers; made on first use */
	struct shmringd_sock_conn *sock;        /* socket transport: replies go here, ch is NULL */
};

enum stop_mode { RUN = 0, HANDOFF = 1, DRAIN = 2 };

static volatile sig_atomic_t g_stop;
static struct shmring_event *g_event;

static struct {
	const struct shmringd_config *cfg;
	struct shmring_instance *inst;
	uint32_t slot;
	struct chan_state *chans;
	uint32_t nchans;
	struct shmringd_plugins plugins;
	struct shmring_reply reply;
	struct shmring_mpr mpr;
	uint8_t *payload; /* the record being dispatched, copied out of its ring */
	uint32_t payload_cap;
	struct shmring_worker_counters *ctr;
	struct shmringd_worker_stats *st;
	uint64_t now;
	uint64_t last_record_ns;
	/* The plugin whose hook served the record being dispatched (NULL: none,
	 * e.g. CONF, an error), and which kind of hook: for record_done(). */
	const struct shmringd_plugin *served;
	enum shmringd_hook_kind served_kind;
	pid_t master;
} W;

static void on_signal(int sig)
{
	if (sig == SIGTERM)
		g_stop = DRAIN;
	else if (sig == SIGUSR1 && g_stop != DRAIN)
		g_stop = HANDOFF;
	/* Move the futex word so a sleep that races the flag check returns at
	 * once (futex_wait sees a changed value) instead of at its timeout. */
	if (g_event)
		__atomic_fetch_add(&g_event->seq, 1, __ATOMIC_RELEASE);
}

/* The stats slot of a plugin (NULL past SHMRINGD_STATS_PLUGINS). */
static struct shmringd_plugin_stats *pstat(const struct shmringd_plugin *p)
{
	size_t i = (size_t)(p - W.plugins.v);
	return i < SHMRINGD_STATS_PLUGINS ? &W.st->plugins[i] : NULL;
}

static void pcount(const struct shmringd_plugin *p, bool failed)
{
	struct shmringd_plugin_stats *ps = pstat(p);
	if (ps) {
		ps->calls++;
		ps->errors += failed;
	}
}

/* Count `count` events of `ns` each into a log2 histogram (stats.h). */
static void hist_add(uint64_t *hist, uint64_t ns, uint64_t count)
{
	unsigned b = ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;
	if (b >= SHMRINGD_HIST_BUCKETS)
		b = SHMRINGD_HIST_BUCKETS - 1;
	hist[b] += count;
}

/* A record took ns to serve, from the clock read before it (the batch's
 * first peek, or the end of the record before) to its reply committed: the
 * worker's histogram and, when a plugin hook served it, the plugin's. One
 * clock read per record: a second read around each hook would double what
 * timing costs, and what the plugin declared (snapshot decoding) and
 * answered (reply encoding) is part of what serving it costs. */
static void record_done(uint64_t ns)
{
	hist_add(W.st->lat_hist, ns, 1);
	struct shmringd_plugin_stats *ps = W.served ? pstat(W.served) : NULL;
	if (ps) {
		ps->hook[W.served_kind].sum_ns += ns;
		hist_add(ps->hook[W.served_kind].buckets, ns, 1);
	}
	W.served = NULL;
}

/* ---- the doorbell --------------------------------------------------------- */

/* Take the newest pending connection on the channel's doorbell socket (a
 * client that reconnects replaces its old connection). */
static void bell_accept(struct chan_state *cs)
{
	for (;;) {
		int fd = accept4(cs->bell_listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (cs->bell_conn >= 0)
			close(cs->bell_conn);
		cs->bell_conn = fd;
	}
}

/* The client armed the doorbell and we published: one byte wakes its
 * cosocket. A full socket buffer means it has bytes to read already. */
static void bell_ring(struct chan_state *cs)
{
	if (cs->bell_listen < 0)
		return;
	bell_accept(cs);
	for (int tries = 0; cs->bell_conn >= 0 && tries < 2; tries++) {
		static const char one = 1;
		ssize_t n = send(cs->bell_conn, &one, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == 1 || errno == EAGAIN || errno == EWOULDBLOCK) {
			W.st->doorbells++;
			return;
		}
		/* EPIPE / ECONNRESET: that client is gone; try a newer one. */
		close(cs->bell_conn);
		cs->bell_conn = -1;
		bell_accept(cs);
	}
}

/* ---- replies ------------------------------------------------------------- */

/* Copy the finished reply into the CQ. SHMRING_FULL keeps it as pending. */
static int reply_send(struct chan_state *cs, uint64_t req_id, const uint8_t *buf, uint32_t len)
{
	if (cs->sock) {
		int rc = shmringd__sock_reply(cs->sock, req_id, buf, len);
		W.st->replies += rc == 0;
		return rc;
	}
	struct shmring_claim cl;
	int rc = shmring_claim(cs->ch, len, &cl);
	if (rc == SHMRING_FULL) {
		if (buf != cs->pending) {
			uint8_t *p = realloc(cs->pending, len ? len : 1);
			if (!p)
				return -ENOMEM;
			memcpy(p, buf, len);
			cs->pending = p;
			cs->pending_len = len;
			cs->pending_req = req_id;
			W.st->cq_full++;
		}
		return SHMRING_FULL;
	}
	if (rc < 0)
		return rc;
	memcpy(cl.payload, buf, len);
	rc = shmring_commit(cs->ch, &cl, len, SHMRING_REC_REPLY, 0, req_id);
	if (rc == 0) {
		W.st->replies++;
		DTRACE_PROBE3(shmring, reply, cs->index, req_id, len);
	}
	if (buf == cs->pending)
		cs->pending_len = 0;
	return rc;
}

static int reply_status(struct chan_state *cs, uint64_t req_id, enum shmring_reply_status status,
                        const char *e)
{
	uint32_t len = shmringd__reply_status(&W.reply, status, e);
	return reply_send(cs, req_id, W.reply.buf, len);
}

/* ---- dispatch -------------------------------------------------------------- */

static const char *phase_name(uint16_t type)
{
	switch (type) {
	case SHMRING_REC_ACCESS:
		return "access";
	case SHMRING_REC_REWRITE:
		return "rewrite";
	case SHMRING_REC_HEADER_FILTER:
		return "header_filter";
	case SHMRING_REC_LOG:
		return "log";
	default:
		return "?";
	}
}

/* A malformed or unknown record: counted, answered when it has a req_id. */
static int bad_record(struct chan_state *cs, const struct shmring_rec *rec, const char *why)
{
	W.st->malformed++;
	W.ctr->errors++;
	if (W.cfg->verbose)
		shmringd__log("channel %u: bad record (type %u, req %llu): %s", cs->index,
		              rec->type, (unsigned long long)rec->req_id, why);
	return rec->req_id ? reply_status(cs, rec->req_id, SHMRING_REPLY_ERROR, why) : 0;
}

static const msgpack_object empty_map = {.type = MSGPACK_OBJECT_MAP};

/* A config past the channel's memory budget (channel_memory_mb): why, in
 * err, or "" if it fits. old: bytes of the config it replaces. The budget
 * holds what the channel may grow into, not only what it holds now: the
 * entity cache's bound (a ring channel has one from its first request) and
 * each config's whole conf_new, whose caches and sink buffers are taken at
 * their declared size there. */
static void over_budget(const struct chan_state *cs, size_t bytes, size_t old, char *err,
                        size_t errlen)
{
	const struct conf_table *t = &cs->confs;
	uint64_t budget = (uint64_t)W.cfg->channel_memory_mb << 20;
	uint64_t entities =
	    cs->sock ? 0 : shmringd__entity_cache_bytes(W.cfg->entity_cache_entries);
	uint64_t used = t->bytes - old;
	if (budget && entities + used + bytes > budget)
		snprintf(err, errlen,
		         "channel memory budget exceeded: this config takes %zu bytes, the "
		         "channel's %u config(s) hold %llu and its entity cache may take %llu, "
		         "of %llu (channel_memory_mb = %u)",
		         bytes, t->n, (unsigned long long)used, (unsigned long long)entities,
		         (unsigned long long)budget, W.cfg->channel_memory_mb);
}

static int handle_conf(struct chan_state *cs, const struct shmring_rec *rec)
{
	const msgpack_object *root = &W.mpr.root;
	uint64_t id;
	const char *pname;
	uint32_t plen;
	if (root->type != MSGPACK_OBJECT_MAP || shmring_mp_get_uint(root, "conf", &id) < 0 ||
	    shmring_mp_get_str(root, "plugin", &pname, &plen) < 0)
		return bad_record(cs, rec, "CONF needs {conf = uint, plugin = str, config = map}");
	const msgpack_object *config = shmring_mp_get(root, "config");
	if (!config || config->type == MSGPACK_OBJECT_NIL ||
	    (config->type == MSGPACK_OBJECT_ARRAY && config->via.array.size == 0))
		config = &empty_map;
	if (config->type != MSGPACK_OBJECT_MAP)
		return bad_record(cs, rec, "CONF config must be a map");

	char err[512] = "";
	struct shmringd_plugin *p = shmringd__plugin_find(&W.plugins, pname, plen);
	if (!p)
		snprintf(err, sizeof(err), "unknown plugin '%.*s' (not in plugin_dir)", (int)plen,
		         pname);
	else if (!p->desc || !p->init_ok)
		snprintf(err, sizeof(err), "%.500s", p->error);
	if (!err[0] && cs->confs.n >= MAX_CONFS && !conf_find(&cs->confs, id))
		snprintf(err, sizeof(err), "too many configs on this channel (%u)", MAX_CONFS);
	struct conf_ent *prev = conf_find(&cs->confs, id);
	size_t old = prev ? prev->bytes : 0;
	if (!err[0])
		over_budget(cs, 0, old, err, sizeof(err)); /* full already */
	void *conf = NULL;
	size_t bytes = 0;
	if (!err[0] && (p->desc->conf_new || shmringd__plugin_config_schema(p->desc))) {
		size_t before = shmringd__heap_in_use();
		uint64_t shared = shmringd__sinks_shared_bytes;
		int rc = shmringd__conf_new(p->desc, p->wstate, config, &conf, err, sizeof(err));
		size_t after = shmringd__heap_in_use();
		bytes = (after > before ? after - before : 0) +
		        (size_t)(shmringd__sinks_shared_bytes - shared);
		if (rc < 0 && !err[0])
			snprintf(err, sizeof(err), "%s: config refused", p->name);
		if (rc >= 0) {
			err[0] = '\0'; /* a message with success is not a refusal */
			over_budget(cs, bytes, old, err, sizeof(err));
			if (err[0] && p->desc->conf_free)
				p->desc->conf_free(conf);
		}
		pcount(p, rc < 0);
	}
	if (!err[0] && conf_put(&cs->confs, id, p, conf, bytes) < 0) {
		if (p->desc->conf_free)
			p->desc->conf_free(conf);
		snprintf(err, sizeof(err), "out of memory");
	}
	if (err[0]) {
		W.st->conf_refused++;
		return reply_status(cs, rec->req_id, SHMRING_REPLY_ERROR, err);
	}
	W.st->conf_ok++;
	return reply_status(cs, rec->req_id, SHMRING_REPLY_OK, NULL);
}

static int handle_phase(struct chan_state *cs, const struct shmring_rec *rec)
{
	struct shmring_request req = {.channel = cs->index, .req_id = rec->req_id};
	if (shmringd__request_decode(&req, &W.mpr.root) < 0)
		return bad_record(cs, rec,
		                  "snapshot must be a map with a uint 'conf' and typed "
		                  "fields (docs/protocol.md)");
	struct conf_ent *e = conf_find(&cs->confs, req.conf_id);
	if (!e) {
		W.st->unknown_conf++;
		return reply_status(cs, rec->req_id, SHMRING_REPLY_UNKNOWN_CONF, NULL);
	}
	const struct shmring_plugin *d = e->plugin->desc;
	int (*hook)(void *, const struct shmring_request *, struct shmring_reply *) = NULL;
	switch (rec->type) {
	case SHMRING_REC_ACCESS:
		req.phase = SHMRING_PHASE_ACCESS;
		hook = d->access;
		break;
	case SHMRING_REC_REWRITE:
		req.phase = SHMRING_PHASE_REWRITE;
		hook = d->rewrite;
		break;
	case SHMRING_REC_HEADER_FILTER:
		req.phase = SHMRING_PHASE_HEADER_FILTER;
		hook = d->header_filter;
		break;
	default:
		/* dispatch() sends only the three phase types here. */
		assert(!"handle_phase: not a phase record");
		return bad_record(cs, rec, "not a phase record");
	}
	if (!(d->phases & req.phase) || !hook) {
		char why[128];
		snprintf(why, sizeof(why), "plugin %s has no %s phase", e->plugin->name,
		         phase_name(rec->type));
		W.st->plugin_errors++;
		return reply_status(cs, rec->req_id, SHMRING_REPLY_ERROR, why);
	}
	/* The socket transport has no FORGET path: it uses each record's
	 * answers and keeps none. */
	if (!cs->entities && !cs->sock)
		cs->entities = shmringd__entity_cache_new(W.cfg->entity_cache_entries);
	if (shmringd__entity_begin(cs->entities, &W.mpr.root) < 0) {
		shmringd__entity_end(NULL);
		return bad_record(cs, rec, "entities must be [[kind, key, entity or nil], ...]");
	}
	shmringd__reply_begin(&W.reply, cs->ch ? shmring_chan_max_payload(cs->ch) : W.reply.max);
	W.served = e->plugin;
	W.served_kind = SHMRINGD_HOOK_REQUEST;
	int rc = hook(e->conf, &req, &W.reply);
	pcount(e->plugin, rc < 0 || W.reply.error_set);
	if (W.reply.exhausted && pstat(e->plugin))
		pstat(e->plugin)->exhausted++;
	if (rc < 0 || W.reply.error_set) {
		W.st->plugin_errors++;
		W.ctr->errors++;
	}
	/* Misses the hook asked for replace its reply (docs/protocol.md). */
	uint32_t len = shmringd__entity_end(&W.reply)
	                   ? W.reply.len
	                   : shmringd__reply_finish(&W.reply, rc < 0 ? "plugin error" : NULL);
	return reply_send(cs, rec->req_id, W.reply.buf, len);
}

static int handle_log(struct chan_state *cs, const struct shmring_rec *rec)
{
	const msgpack_object *root = &W.mpr.root;
	uint64_t id;
	if (root->type != MSGPACK_OBJECT_MAP || shmring_mp_get_uint(root, "conf", &id) < 0)
		return bad_record(cs, rec, "LOG needs {conf = uint, entry = map}");
	struct conf_ent *e = conf_find(&cs->confs, id);
	if (!e) {
		W.st->unknown_conf++;
		return rec->req_id ? reply_status(cs, rec->req_id, SHMRING_REPLY_UNKNOWN_CONF, NULL)
		                   : 0;
	}
	const struct shmring_plugin *d = e->plugin->desc;
	if (!(d->phases & SHMRING_PHASE_LOG) || !d->log) {
		W.st->plugin_errors++;
		return 0;
	}
	static const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
	const msgpack_object *entry = shmring_mp_get(root, "entry");
	struct shmring_log_record lr = {.channel = cs->index,
	                                .req_id = rec->req_id,
	                                .conf_id = id,
	                                .entry = entry ? entry : &nil};
	W.st->log_records++;
	W.served = e->plugin;
	W.served_kind = SHMRINGD_HOOK_LOG;
	int rc = d->log(e->conf, &lr);
	pcount(e->plugin, rc < 0);
	if (rc < 0) {
		W.st->plugin_errors++;
		W.ctr->errors++;
	}
	return 0;
}

/* A record that already killed two workers (the plugin crashes on it) is
 * answered with an error instead of killing a third: without this, one bad
 * record would take its channel down for good (each new worker starts at
 * the same unreleased position). A single death (kill -9, OOM) only makes
 * it a suspect and it is retried. Called only with strikes != 0, which
 * crash_accounting() sets only after naming the suspect (and this clears
 * strikes before the suspect), so a suspect exists. */
static bool is_poison(struct chan_state *cs, const struct shmring_rec *rec)
{
	assert(W.st->strikes > 0 && W.st->suspect != 0);
	if (W.st->strikes < 2 || (W.st->suspect >> 32) != (uint64_t)cs->index + 1 ||
	    (W.st->suspect & 0xffffffffu) != cs->seen || W.st->suspect_req != rec->req_id)
		return false;
	W.st->strikes = 0;
	W.st->suspect = 0;
	return true;
}

/* Dispatch one SQ record. SHMRING_FULL: its reply is pending. */
static int dispatch(struct chan_state *cs, const struct shmring_rec *rec)
{
	DTRACE_PROBE4(shmring, dispatch, cs->index, rec->type, rec->req_id, rec->len);
	W.ctr->records++;
	if (W.st->strikes && is_poison(cs, rec)) {
		W.st->poisoned++;
		W.ctr->errors++;
		shmringd__log("channel %u: skipping record %llu (type %u): it crashed two workers",
		              cs->index, (unsigned long long)rec->req_id, rec->type);
		return rec->req_id ? reply_status(cs, rec->req_id, SHMRING_REPLY_ERROR,
		                                  "record skipped: the plugin crashed the worker "
		                                  "twice on it")
		                   : 0;
	}
	if (rec->type < SHMRING_REC_CONF || rec->type > SHMRING_REC_FORGET) {
		char why[64];
		snprintf(why, sizeof(why), "unknown record type %u", rec->type);
		return bad_record(cs, rec, why);
	}
	/* A req_id of 0 means "no reply" (docs/protocol.md): a CONF or a phase
	 * without one has no one to answer and is malformed, not served. */
	if (!rec->req_id && rec->type != SHMRING_REC_LOG && rec->type != SHMRING_REC_FORGET)
		return bad_record(cs, rec, "CONF and phase records need a non-zero req_id");
	/* One copy out of the ring before any check: the client may rewrite the
	 * ring while we read it, and then what was validated is not what is
	 * parsed, nor what the plugin's views show. Socket frames are private. */
	if (cs->ch && rec->len > W.payload_cap)
		return bad_record(cs, rec, "record larger than the ring allows");
	int rc = cs->ch ? shmring_mpr_parse_copy(&W.mpr, W.payload, rec->payload, rec->len)
	                : shmring_mpr_parse(&W.mpr, rec->payload, rec->len);
	if (rc < 0)
		return bad_record(cs, rec,
		                  rc == -ENOMEM ? "record too complex (out of memory)"
		                                : "malformed msgpack payload");
	switch (rec->type) {
	case SHMRING_REC_CONF:
		return handle_conf(cs, rec);
	case SHMRING_REC_LOG:
		return handle_log(cs, rec);
	case SHMRING_REC_FORGET:
		if (cs->entities && shmringd__entity_forget(cs->entities, &W.mpr.root) < 0)
			return bad_record(
			    cs, rec,
			    "FORGET needs {all = true} or {entities = [[kind, key], ...]}");
		return 0;
	default:
		return handle_phase(cs, rec);
	}
}

/* A new nginx worker owns the channel: its conf ids mean nothing to us. */
static void check_owner(struct chan_state *cs)
{
	uint64_t owner = shmring_chan_owner(cs->ch);
	if (owner == cs->owner)
		return;
	cs->owner = owner;
	if (cs->confs.n)
		W.st->owner_changes++;
	conf_clear(&cs->confs);
	shmringd__entity_cache_clear(cs->entities);
	if (cs->bell_conn >= 0) {
		close(cs->bell_conn);
		cs->bell_conn = -1;
	}
	if (cs->broken_logged) {
		/* A corrupt SQ stays broken in this mapping: map it afresh for
		 * the new client. */
		struct shmring_chan *fresh;
		if (shmring_chan_open(W.inst, cs->index, SHMRING_SERVER, &fresh) == 0) {
			shmring_chan_close(cs->ch);
			cs->ch = fresh;
			cs->broken_logged = false;
			cs->unreleased = 0;
			cs->seen = 0;
		}
	}
}

static void finish_batch(struct chan_state *cs)
{
	if (shmring_publish(cs->ch) == 1)
		bell_ring(cs);
	/* Replies are published before the records are released: a worker
	 * killed in between answers them again (the client drops the
	 * duplicate by req_id) rather than never. */
	shmring_release(cs->ch);
	cs->unreleased = 0;
}

/* Serve one channel: up to BATCH records. Returns how many were handled. */
static int drain_channel(struct chan_state *cs)
{
	if (cs->pending_len) {
		if (reply_send(cs, cs->pending_req, cs->pending, cs->pending_len) == SHMRING_FULL)
			return 0;
		finish_batch(cs);
	}
	if (g_stop == HANDOFF)
		return 0; /* the next worker reads the rest */
	if (!cs->broken_logged && shmring_chan_check(cs->ch) < 0) {
		/* Truncated (libshmring's SIGBUS guard left us zeros) or its
		 * read-only line overwritten: nothing in it can be trusted. */
		shmringd__log("channel %u: segment truncated or overwritten: corrupt, not served",
		              cs->index);
		W.ctr->errors++;
		cs->broken_logged = true;
	}
	check_owner(cs);
	int n = 0;
	uint64_t t = 0; /* the last clock read: record_done() measures from it */
	while (n < BATCH) {
		struct shmring_rec rec;
		int rc = shmring_peek(cs->ch, &rec);
		if (rc == SHMRING_EMPTY)
			break;
		if (rc < 0) {
			if (!cs->broken_logged)
				shmringd__log("channel %u: corrupt SQ (%s); ignored until a new "
				              "client claims it",
				              cs->index, shmring_strerror(rc));
			cs->broken_logged = true;
			break;
		}
		if (!t)
			t = shmring_now_ns();
		W.st->inflight_req = rec.req_id;
		W.st->inflight = ((uint64_t)cs->index + 1) << 32 | cs->unreleased;
		rc = dispatch(cs, &rec);
		W.st->inflight = 0;
		uint64_t t_end = shmring_now_ns();
		record_done(t_end - t);
		t = t_end;
		cs->unreleased++;
		cs->seen++;
		n++;
		if (rc == SHMRING_FULL)
			break;
	}
	if (n) {
		W.last_record_ns = t;
		finish_batch(cs);
	}
	return n;
}

/* ---- the socket transport (socket.c) --------------------------------------- */

/* Every socket connection shares one conf table (the client makes its conf
 * ids unique per nginx worker), so a config registered on one pooled
 * connection is known on all of them, like a plugin runner's conf cache. */
static struct chan_state sock_cs = {
    .index = SHMRINGD_SOCKET_CHANNEL, .bell_listen = -1, .bell_conn = -1};

int shmringd__sock_dispatch(struct shmringd_sock_conn *c, const struct shmring_rec *rec)
{
	uint64_t t0 = shmring_now_ns();
	sock_cs.sock = c;
	W.st->inflight_req = rec->req_id;
	W.st->inflight = ((uint64_t)sock_cs.index + 1) << 32 | (sock_cs.seen & 0xffffffffu);
	int rc = dispatch(&sock_cs, rec);
	W.st->inflight = 0;
	sock_cs.seen++;
	sock_cs.sock = NULL;
	uint64_t t1 = shmring_now_ns();
	record_done(t1 - t0);
	W.last_record_ns = t1;
	return rc;
}

/* ---- the loop ------------------------------------------------------------- */

/* The start of every turn, ring or socket: the clock, the watchdog's stamp
 * (loop_ns), the log sinks' due flushes. */
static void turn_begin(void)
{
	W.now = shmring_now_ns();
	W.st->loop_ns = W.now;
	shmringd__sinks_poll(W.now);
}

/* The longest an idle worker may sleep: until the idle timeout (when it
 * looks at its master again) or the next sink flush, whichever is first. */
static int64_t idle_timeout_ns(void)
{
	int64_t timeout = (int64_t)W.cfg->idle_timeout_ms * 1000000;
	int64_t due = shmringd__sinks_next_due(W.now);
	return due < timeout ? due : timeout;
}

int shmringd__sock_tick(void)
{
	turn_begin();
	int64_t timeout = idle_timeout_ns();
	if (g_stop || getppid() != W.master)
		return -1;
	return timeout <= 0 ? 0 : (int)((timeout + 999999) / 1000000);
}

static bool any_pending(void)
{
	for (uint32_t i = 0; i < W.nchans; i++)
		if (W.chans[i].pending_len)
			return true;
	return false;
}

static bool all_idle(void)
{
	for (uint32_t i = 0; i < W.nchans; i++) {
		struct chan_state *cs = &W.chans[i];
		if (cs->pending_len || (!cs->broken_logged && shmring_ready(cs->ch) == 1))
			return false;
	}
	return true;
}

static void sleep_on_event(void)
{
	int64_t timeout = idle_timeout_ns();
	for (uint32_t i = 0; i < W.nchans; i++)
		if (W.chans[i].pending_len && timeout > 1000000)
			timeout = 1000000; /* the client frees CQ space without a wake */
	if (g_stop && timeout > 1000000)
		timeout = 1000000;
	if (timeout <= 0)
		return;
	uint32_t key = shmring_event_prepare(g_event);
	/* Re-check after announcing the sleep: a producer that published
	 * before it saw our waiters flag is caught here. */
	if (!all_idle() || g_stop == HANDOFF || shmringd__sinks_woken()) {
		shmring_event_cancel(g_event);
		return;
	}
	W.ctr->sleeps++;
	int rc = shmring_event_wait(g_event, key, timeout);
	shmring_event_cancel(g_event);
	if (rc == 0)
		W.ctr->wakeups++;
}

void shmringd__worker_close(void)
{
	shmringd__sinks_drain(shmring_now_ns() + (uint64_t)W.cfg->drain_timeout_ms * 1000000);
	for (uint32_t i = 0; i < W.nchans; i++) {
		conf_clear(&W.chans[i].confs);
		shmringd__entity_cache_free(W.chans[i].entities);
		if (W.chans[i].bell_conn >= 0)
			close(W.chans[i].bell_conn);
		shmring_chan_close(W.chans[i].ch);
		free(W.chans[i].pending);
	}
	conf_clear(&sock_cs.confs);
	/* Sinks released by conf_free are written by the drain above only if
	 * they were flushed already; drain again after the confs are gone. */
	shmringd__sinks_drain(shmring_now_ns() + (uint64_t)W.cfg->drain_timeout_ms * 1000000);
	shmringd__plugins_unload(&W.plugins);
	shmringd__sinks_fini();
	shmring_mpr_destroy(&W.mpr);
	free(W.payload);
	free(W.reply.buf);
	free(W.chans);
	W.ctr->pid = 0;
	W = (__typeof__(W)){0};
}

__attribute__((noreturn)) static void worker_exit(int code)
{
	shmringd__worker_close();
	exit(code);
}

/* The loop's own state across turns. */
struct loop {
	uint64_t spin_ns;        /* busy-poll this long before sleeping */
	uint64_t idle_since;     /* W.now of the first idle turn; 0 = busy */
	uint64_t drain_deadline; /* set at the first turn after a stop signal */
};

static int serve_channels(void)
{
	/* ctl truncated under us (our counters and event live there): map the
	 * file again once the master has restored it. */
	shmring_instance_repair(W.inst, 0);
	int n = 0;
	for (uint32_t i = 0; i < W.nchans; i++)
		n += drain_channel(&W.chans[i]);
	return n;
}

/* After a stop signal, exit once the work only this worker holds is done
 * (n: records served this turn), or at the drain deadline. */
static void exit_when_stopped(struct loop *l, int n)
{
	if (!g_stop)
		return;
	if (!l->drain_deadline)
		l->drain_deadline = W.now + (uint64_t)W.cfg->drain_timeout_ms * 1000000;
	/* Hand-over: records left in the rings go to the next worker, but a
	 * reply waiting for CQ space exists only here. */
	if (g_stop == HANDOFF && (!any_pending() || W.now >= l->drain_deadline))
		worker_exit(0);
	if (g_stop == DRAIN) {
		if ((!n && all_idle() && W.now - W.last_record_ns >= QUIET_NS) ||
		    W.now >= l->drain_deadline)
			worker_exit(0);
	}
}

/* A turn that served nothing: busy-poll for spin_us, then sleep on the
 * worker's event. A master gone while we slept means drain and go. */
static void idle(struct loop *l)
{
	if (!l->idle_since)
		l->idle_since = W.now;
	if (W.now - l->idle_since < l->spin_ns) {
		shmring_cpu_relax();
		return;
	}
	sleep_on_event();
	l->idle_since = 0;
	if (getppid() != W.master && !g_stop)
		g_stop = DRAIN;
}

/* One turn of a ring worker, one call per step (compare nginx's
 * ngx_worker_process_cycle). */
static void worker_iteration(struct loop *l)
{
	turn_begin();
	int n = serve_channels();
	exit_when_stopped(l, n);
	if (n)
		l->idle_since = 0;
	else
		idle(l);
}

/* ---- setup ----------------------------------------------------------------- */

static void process_init(const struct shmringd_worker_args *a)
{
	W.master = getppid();
	snprintf(shmringd__role, sizeof(shmringd__role), "worker %u", a->slot);
	char pname[16];
	snprintf(pname, sizeof(pname), "shmringd-w%u", a->slot);
	prctl(PR_SET_NAME, pname);
	/* If the master dies, drain and go rather than serve without a
	 * heartbeat. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);

	g_event = shmring_instance_worker_event(a->inst, a->slot);
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGINT, SIG_IGN); /* the master decides; Ctrl-C reaches the group */
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (getppid() != W.master)
		g_stop = DRAIN;
}

/* Crash-loop accounting (stats.h): did the previous worker of this slot die
 * dispatching a record, and is it the same record as last time? */
static void crash_accounting(const struct shmringd_worker_args *a)
{
	W.ctr = shmring_instance_worker_counters(a->inst, a->slot);
	W.st = &a->stats->w[a->slot];
	shmringd__entity_setup(W.st);
	if (W.st->inflight) {
		if (W.st->inflight == W.st->suspect && W.st->inflight_req == W.st->suspect_req) {
			W.st->strikes++;
		} else {
			W.st->suspect = W.st->inflight;
			W.st->suspect_req = W.st->inflight_req;
			W.st->strikes = 1;
		}
		W.st->inflight = 0;
	}
	W.st->generation++;
	W.st->started_ns = shmring_now_ns();
	W.st->loop_ns = W.st->started_ns;
	W.ctr->pid = (uint64_t)getpid();
}

/* The parser, the log sinks, the plugins (loaded, init, counted). */
static void plugins_init(const struct shmringd_worker_args *a)
{
	W.payload_cap = a->cfg->ring_size / 2; /* a ring's largest record */
	W.payload = malloc(W.payload_cap);
	if (!W.payload || shmring_mpr_init(&W.mpr) < 0) {
		shmringd__log("out of memory");
		exit(3);
	}
	struct shmringd_sink_opts so = {a->cfg->log_batch_bytes, a->cfg->log_flush_ms,
	                                a->cfg->log_sink_max_bytes,
	                                a->sock_fd < 0 ? g_event : NULL};
	int rc = shmringd__sinks_init(&so, W.st);
	if (rc < 0)
		shmringd__log("io_uring unavailable (%s): log sinks disabled", strerror(-rc));

	char err[512];
	if (shmringd__plugins_load(a->cfg, &W.plugins, false, err, sizeof(err)) < 0)
		shmringd__log("%s", err);
	/* Plugin regions are the daemon's own: the gateway's group has no
	 * business reading or resizing them. */
	shmringd__shared_setup(a->cfg->shm_dir, 0600);
	shmringd__plugins_init(&W.plugins);
	for (uint32_t i = 0; i < SHMRINGD_STATS_PLUGINS; i++) {
		struct shmringd_plugin_stats *ps = &W.st->plugins[i];
		const char *name = i < W.plugins.n ? W.plugins.v[i].name : "";
		if (strncmp(ps->name, name, sizeof(ps->name)) != 0) {
			/* another plugin in this slot than before a reload */
			ps->calls = ps->errors = 0;
			memset(ps->hook, 0, sizeof(ps->hook));
			snprintf(ps->name, sizeof(ps->name), "%s", name);
		}
	}
}

/* The channels this slot serves: k = slot, slot + nworkers, ... */
static void channels_open(const struct shmringd_worker_args *a)
{
	uint32_t nch = shmring_instance_nchannels(a->inst);
	W.chans = calloc(nch, sizeof(*W.chans));
	if (!W.chans) {
		shmringd__log("out of memory");
		exit(3);
	}
	for (uint32_t k = a->slot; k < nch; k += a->nworkers) {
		struct chan_state *cs = &W.chans[W.nchans];
		int rc = shmring_chan_open(a->inst, k, SHMRING_SERVER, &cs->ch);
		if (rc < 0) {
			/* Reported, counted (the channel's corrupt counter, the
			 * worker's errors) and skipped: exiting would leave every
			 * other channel of this slot unserved, restart after restart. */
			shmringd__log("channel %u: cannot open (%s); not served", k,
			              shmring_strerror(rc));
			W.ctr->errors++;
			continue;
		}
		cs->index = k;
		cs->owner = shmring_chan_owner(cs->ch);
		cs->bell_listen = a->bell_fds ? a->bell_fds[k] : -1;
		cs->bell_conn = -1;
		W.nchans++;
	}
	W.reply.max = W.nchans ? shmring_chan_max_payload(W.chans[0].ch) : a->cfg->ring_size / 2;
	if (a->cfg->verbose)
		shmringd__log("serving %u channel(s), %u plugin(s)", W.nchans, W.plugins.n);
}

/* The socket worker (--socket): socket.c runs its own epoll loop, calling
 * shmringd__sock_tick() each turn. */
__attribute__((noreturn)) static void socket_worker_cycle(const struct shmringd_worker_args *a)
{
	snprintf(shmringd__role, sizeof(shmringd__role), "socket worker");
	prctl(PR_SET_NAME, "shmringd-sock");
	W.reply.max = a->cfg->ring_size / 2;
	shmringd__socket_serve(a->sock_fd, W.reply.max);
	worker_exit(0);
}

void shmringd__worker_open(const struct shmringd_worker_args *a)
{
	W.cfg = a->cfg;
	W.inst = a->inst;
	W.slot = a->slot;
	crash_accounting(a);
	plugins_init(a);
	if (a->sock_fd < 0)
		channels_open(a);
	W.last_record_ns = shmring_now_ns();
}

int shmringd__worker_serve(void)
{
	turn_begin();
	return serve_channels();
}

void shmringd__worker_main(const struct shmringd_worker_args *a)
{
	process_init(a);
	shmringd__worker_open(a);
	if (a->sock_fd >= 0)
		socket_worker_cycle(a);

	struct loop l = {.spin_ns = (uint64_t)a->cfg->spin_us * 1000};
	for (;;)
		worker_iteration(&l);
}
