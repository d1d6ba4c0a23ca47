/* SPDX-License-Identifier: MIT */
/*
 * policy = redis: several hosts share one limit.
 *
 * Each host still counts exactly in its shared table (rate_limiting.c); what
 * Redis adds is the OTHER hosts' counts. Per counter key and window, Redis
 * holds a hash `shmring:rl:<key>:<window end>` with one field per host (the
 * host id of the shared table) whose value is that host's absolute count.
 * Absolute values make the exchange idempotent: any worker may write its
 * host's count, a failed write is simply repeated with the newer count, and
 * after Redis comes back the next sync restores every host's count.
 *
 * The other hosts' total for a key is kept in the shared table too, under a
 * second key (key ^ OTHERS_TAG), so every worker of a host sees it. A request
 * passes if own count + others < limit (rl_table's fw_step).
 *
 * sync_rate > 0 (asynchronous): a thread per worker (started with the first
 * redis config, stopped in fini) wakes every sync_rate seconds and, per
 * endpoint, pipelines HSET (this host's count) + PEXPIRE + HGETALL for every
 * key the worker counted in a window that is still open, then stores the
 * others' sum. The hook only records the keys it touched (a mutex and a hash
 * insert); no network on the request path.
 *
 * sync_rate = 0 (synchronous): the same exchange in the hook, after counting
 * locally, with redis.timeout as the bound: every request pays a Redis round
 * trip (about 50-100 us on loopback, a network RTT otherwise) and a slow
 * Redis delays every request of the worker's channels.
 *
 * Error bound (asynchronous): a host learns the others' counts at most
 * sync_rate (+ one round trip) late, so in a window the hosts together admit
 * at most limit + the requests the OTHER hosts admitted during the last
 * unsynced interval: limit + (N - 1) x min(limit, sync_rate x r) for N hosts
 * each receiving r requests/s. docs/plugins.md has the worked numbers;
 * tests/ratelimit/test_rl_redis.c checks it.
 *
 * Redis down: the sync fails, the endpoint is marked down, counting goes on
 * locally with the last known others (fault_tolerant = true), or requests
 * get a 500 while it is down (fault_tolerant = false, like Kong).
 */
#include "rl_internal.h"
#include "rl_redis_link.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OTHERS_TAG 0x5a5a5a5a5a5a5a5aull
#define OWN_TAG 0x3c3c3c3c3c3c3c3cull
#define MAX_ENDPOINTS 16
#define MAX_ENTRIES 16384 /* keys with an open window a worker syncs */
#define PIPELINE 256

struct rl_endpoint {
	char *host;
	int port;
	char *username, *password;
	int database;
	int timeout_ms;
	bool ssl, ssl_verify;
	char *server_name;
	uint32_t sync_ms;
	struct rl_link *ctx;    /* thread-owned */
	char why[200];          /* the last failure; under the sync mutex */
	int down;               /* atomic: the last sync failed */
	uint64_t next_ns;       /* thread: next sync */
	uint64_t retry_ns;      /* thread: no reconnect before */
	uint64_t syncs, errors; /* atomic, for tests and logs */
};

struct rl_entry {
	uint64_t key;        /* 0 = free */
	uint64_t window_end; /* s since RL_EPOCH */
	uint32_t ep;
	struct rl_limit lim; /* token bucket: the bucket the others' takes come out of */
};

struct rl_redis_sync {
	struct rl_worker *w;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu; /* entries, nep, stop */
	pthread_cond_t cv;
	bool stop;
	struct rl_endpoint ep[MAX_ENDPOINTS];
	uint32_t nep;
	struct rl_entry *entries; /* open addressing, MAX_ENTRIES */
	uint32_t nentries;
	uint64_t dropped; /* keys not tracked: table full */
};

/* Per config, synchronous mode: its own connection (the hook's thread). */
struct rl_redis_conn {
	uint32_t ep;
	struct rl_link *ctx;
	uint64_t retry_ns;
	char why[200]; /* the last failure */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * RL_NS + (uint64_t)ts.tv_nsec;
}

/* ---- connections --------------------------------------------------------------- */

/* Connect (TLS when ssl), AUTH and SELECT with the endpoint's timeout.
 * NULL on failure, with why in err. */
static struct rl_link *ep_connect(const struct rl_endpoint *e, char *err, size_t errlen)
{
	struct rl_link_opts o = {.host = e->host,
	                         .port = e->port,
	                         .timeout_ms = e->timeout_ms,
	                         .ssl = e->ssl,
	                         .ssl_verify = e->ssl_verify,
	                         .server_name = e->server_name};
	struct rl_link *l = rl_link_connect(&o, err, errlen);
	if (!l)
		return NULL;
	redisReply *r = NULL;
	if (e->password) {
		r = e->username ? rl_link_command(l, "AUTH %s %s", e->username, e->password)
		                : rl_link_command(l, "AUTH %s", e->password);
		if (!r || r->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(r);
	}
	if (e->database) {
		r = rl_link_command(l, "SELECT %d", e->database);
		if (!r || r->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(r);
	}
	return l;
fail:
	snprintf(err, errlen, "redis %s:%d refused AUTH or SELECT: %.120s", e->host, e->port,
	         r && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
	if (r)
		freeReplyObject(r);
	rl_link_free(l);
	return NULL;
}

/* The exchange for n keys on ctx: write this host's count, read the others'
 * sum. others[i] gets the sum; 0 or -1 (connection unusable). */
static int exchange(struct rl_link *ctx, uint64_t host_id, const uint64_t *keys,
                    const uint64_t *window_end, const uint64_t *mine, uint64_t *others, size_t n,
                    uint64_t now_ns)
{
	char name[80], field[24];
	snprintf(field, sizeof(field), "%016" PRIx64, host_id);
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "shmring:rl:%016" PRIx64 ":%" PRIu64, keys[i],
		         window_end[i]);
		uint64_t end_ns = (window_end[i] + RL_EPOCH) * RL_NS;
		uint64_t ttl_ms = (end_ns > now_ns ? (end_ns - now_ns) / 1000000 : 0) + 60000;
		if (rl_link_append(ctx, "HSET %s %s %" PRIu64, name, field, mine[i]) < 0 ||
		    rl_link_append(ctx, "PEXPIRE %s %" PRIu64, name, ttl_ms) < 0 ||
		    rl_link_append(ctx, "HGETALL %s", name) < 0)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		redisReply *r[3] = {NULL, NULL, NULL};
		int bad = 0;
		for (int k = 0; k < 3; k++)
			if (rl_link_reply(ctx, &r[k]) < 0 || !r[k] ||
			    r[k]->type == REDIS_REPLY_ERROR)
				bad = 1;
		uint64_t sum = 0;
		if (!bad && r[2]->type == REDIS_REPLY_ARRAY) {
			for (size_t j = 0; j + 1 < r[2]->elements; j += 2) {
				const redisReply *f = r[2]->element[j], *v = r[2]->element[j + 1];
				if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
					continue;
				if (f->len == strlen(field) && !memcmp(f->str, field, f->len))
					continue; /* ours */
				sum += strtoull(v->str, NULL, 10);
			}
		}
		for (int k = 0; k < 3; k++)
			if (r[k])
				freeReplyObject(r[k]);
		if (bad)
			return -1;
		others[i] = sum;
	}
	return 0;
}

/* ---- the counters beside a key ------------------------------------------------------- */

/* The fixed-window counters kept beside a counter key for Redis: the other
 * hosts' count (OTHERS_TAG) and, for a token bucket, this host's takes in
 * the exchange window (OWN_TAG). Bit 0 cleared: the table treats them as
 * fixed-window counts whatever the key's algorithm. */
static uint64_t side_key(uint64_t key, uint64_t tag)
{
	uint64_t k = (key ^ tag) & ~1ull;
	return k > 1 ? k : 2;
}

/* This host's count of key in window_end, the number it tells Redis: the
 * counter itself (fixed window) or its takes counter (token bucket). */
static uint64_t own_count(struct rl_table *t, uint64_t key, uint64_t window_end, uint64_t now_ns)
{
	uint64_t k = key & 1 ? side_key(key, OWN_TAG) : key;
	struct rl_slot *s = rl_slot_get(t, k, now_ns);
	return s ? rl_count_in(s, k, window_end) : 0;
}

/* Token bucket: count this request's takes (or give them back) in each
 * period's exchange window. A key whose takes counter finds no room in the
 * table is not told to Redis (the table counts it as full). */
static void own_takes(struct rl_conf *c, const struct rl_key_set *ks, const struct rl_outcome *o,
                      uint64_t now_ns, bool give_back)
{
	struct rl_table *t = &c->w->table;
	for (int i = 0; i < c->np; i++) {
		uint64_t k = side_key(ks->key[i], OWN_TAG), rem, reset, undo;
		struct rl_limit l = {.limit = RL_MAX_LIMIT, .window_end = o->window_end[i]};
		struct rl_slot *s = rl_slot_get(t, k, now_ns);
		bool stale;
		if (s && give_back)
			rl_give_back(s, k, &l, o->window_end[i]);
		else if (s)
			rl_take(s, k, &l, now_ns, &rem, &reset, &stale, &undo);
	}
}

/* Undo a counted request: every period's counter, and its takes. */
static void give_back_all(struct rl_conf *c, const struct rl_key_set *ks,
                          const struct rl_outcome *o, uint64_t now_ns)
{
	struct rl_limit l;
	for (int i = 0; i < c->np; i++) {
		rl_limit_of(c, i, now_ns, &l);
		rl_give_back(o->slot[i], ks->key[i], &l, o->undo[i]);
	}
	if (c->token_bucket)
		own_takes(c, ks, o, now_ns, true);
}

/* What an exchange learned: the others' count n of key's window. A fixed
 * window keeps it beside the counter (a request passes while own + others
 * < limit). A token bucket takes what the others took since the last
 * exchange out of this host's bucket: rl_raise_count reports a rise once,
 * however many workers of the host exchange the key. */
static void apply_others(struct rl_table *t, uint64_t key, const struct rl_limit *l,
                         uint64_t window_end, uint64_t n, uint64_t now_ns)
{
	uint64_t side = side_key(key, OTHERS_TAG);
	struct rl_slot *s = rl_slot_get(t, side, now_ns);
	if (!s)
		return;
	if (!(key & 1)) {
		rl_set_count(s, side, window_end, n);
		return;
	}
	uint64_t rise = rl_raise_count(s, side, window_end, n);
	struct rl_slot *b = rise ? rl_slot_get(t, key, now_ns) : NULL;
	if (b)
		rl_debit(b, key, l, rise, now_ns);
}

/* ---- the keys a worker syncs ------------------------------------------------------ */

static struct rl_entry *entry_slot(struct rl_redis_sync *s, uint64_t key, uint64_t window_end)
{
	uint64_t h = (key ^ window_end * 0x9E3779B97F4A7C15ull) >> 7;
	for (uint32_t i = 0; i < MAX_ENTRIES; i++) {
		struct rl_entry *e = &s->entries[(h + i) & (MAX_ENTRIES - 1)];
		if (!e->key || (e->key == key && e->window_end == window_end))
			return e;
	}
	return NULL;
}

static void entries_track(struct rl_redis_sync *s, struct rl_conf *c, const struct rl_key_set *ks,
                          const struct rl_outcome *o, uint32_t ep, uint64_t now_ns)
{
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < c->np; i++) {
		struct rl_limit l = {0};
		if (c->token_bucket)
			rl_limit_of(c, i, now_ns, &l);
		struct rl_entry *e = entry_slot(s, ks->key[i], o->window_end[i]);
		/* Keep a quarter free: probes stay short. */
		if (!e || (!e->key && s->nentries >= MAX_ENTRIES * 3 / 4)) {
			s->dropped++;
			continue;
		}
		if (!e->key) {
			*e = (struct rl_entry){ks->key[i], o->window_end[i], ep, l};
			s->nentries++;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

/* Drop entries whose window is over (rebuilds the table: deletion in
 * linear probing). Under the mutex. */
static void entries_expire(struct rl_redis_sync *s, uint64_t now_s_rel)
{
	bool any = false;
	for (uint32_t i = 0; i < MAX_ENTRIES && !any; i++)
		any = s->entries[i].key && s->entries[i].window_end <= now_s_rel;
	if (!any)
		return;
	struct rl_entry *old = malloc(sizeof(*old) * MAX_ENTRIES);
	if (!old)
		return;
	memcpy(old, s->entries, sizeof(*old) * MAX_ENTRIES);
	memset(s->entries, 0, sizeof(*old) * MAX_ENTRIES);
	s->nentries = 0;
	for (uint32_t i = 0; i < MAX_ENTRIES; i++) {
		if (!old[i].key || old[i].window_end <= now_s_rel)
			continue;
		struct rl_entry *e = entry_slot(s, old[i].key, old[i].window_end);
		*e = old[i];
		s->nentries++;
	}
	free(old);
}

/* ---- the sync thread --------------------------------------------------------------- */

/* The sync thread lost e (or could not reach it): drop the connection,
 * mark it down and keep why for the hook's warning. */
static void ep_failed(struct rl_redis_sync *s, struct rl_endpoint *e, const char *why)
{
	rl_link_free(e->ctx);
	e->ctx = NULL;
	pthread_mutex_lock(&s->mu);
	snprintf(e->why, sizeof(e->why), "%s", why);
	pthread_mutex_unlock(&s->mu);
	__atomic_store_n(&e->down, 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&e->errors, 1, __ATOMIC_RELAXED);
}

static void sync_endpoint(struct rl_redis_sync *s, uint32_t ep_idx, uint64_t now_ns)
{
	struct rl_endpoint *e = &s->ep[ep_idx];
	struct rl_table *t = &s->w->table;
	static __thread uint64_t keys[PIPELINE], ends[PIPELINE], mine[PIPELINE], others[PIPELINE];
	static __thread struct rl_limit lims[PIPELINE];
	uint64_t host = rl_host_id(t);
	uint32_t cursor = 0;
	bool synced = false, pinged = false;
	if (!e->ctx) {
		if (mono_ns() < e->retry_ns)
			return;
		char why[sizeof(e->why)];
		if (!(e->ctx = ep_connect(e, why, sizeof(why)))) {
			ep_failed(s, e, why);
			e->retry_ns = mono_ns() + (uint64_t)e->timeout_ms * 1000000u;
			return;
		}
	}
	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&s->mu);
		for (; cursor < MAX_ENTRIES && n < PIPELINE; cursor++) {
			const struct rl_entry *x = &s->entries[cursor];
			if (x->key && x->ep == ep_idx) {
				keys[n] = x->key;
				ends[n] = x->window_end;
				lims[n] = x->lim;
				n++;
			}
		}
		pthread_mutex_unlock(&s->mu);
		if (n == 0 && cursor >= MAX_ENTRIES && !pinged) {
			/* Nothing (more) to sync: still check the server, so
			 * fault_tolerant = false notices an outage. */
			redisReply *r = synced ? NULL : rl_link_command(e->ctx, "PING");
			if (!synced && (!r || r->type == REDIS_REPLY_ERROR)) {
				if (r)
					freeReplyObject(r);
				ep_failed(s, e, "PING failed");
				return;
			}
			if (r)
				freeReplyObject(r);
			pinged = true;
		}
		if (n == 0)
			break;
		synced = true;
		for (size_t i = 0; i < n; i++)
			mine[i] = own_count(t, keys[i], ends[i], now_ns);
		if (exchange(e->ctx, host, keys, ends, mine, others, n, now_ns) < 0) {
			ep_failed(s, e, "the exchange failed (connection lost or timed out)");
			return;
		}
		for (size_t i = 0; i < n; i++)
			apply_others(t, keys[i], &lims[i], ends[i], others[i], now_ns);
	}
	__atomic_store_n(&e->down, 0, __ATOMIC_RELEASE);
	__atomic_fetch_add(&e->syncs, 1, __ATOMIC_RELAXED);
}

static void *sync_main(void *arg)
{
	struct rl_redis_sync *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		uint64_t now = mono_ns(), next = now + RL_NS;
		for (uint32_t i = 0; i < s->nep; i++) {
			if (s->ep[i].next_ns <= now) {
				uint64_t real = rl_now_ns();
				entries_expire(s, real / RL_NS > RL_EPOCH ? real / RL_NS - RL_EPOCH
				                                          : 0);
				pthread_mutex_unlock(&s->mu);
				sync_endpoint(s, i, real);
				pthread_mutex_lock(&s->mu);
				s->ep[i].next_ns =
				    mono_ns() + (uint64_t)s->ep[i].sync_ms * 1000000u;
			}
			if (s->ep[i].next_ns < next)
				next = s->ep[i].next_ns;
		}
		now = mono_ns();
		if (next > now && !s->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t at =
			    (uint64_t)ts.tv_sec * RL_NS + (uint64_t)ts.tv_nsec + (next - now);
			ts.tv_sec = (time_t)(at / RL_NS);
			ts.tv_nsec = (long)(at % RL_NS);
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* The worker's sync state, made (and its thread started) on first use. */
static struct rl_redis_sync *sync_get(struct rl_worker *w, char *err, size_t errlen)
{
	if (w->sync)
		return w->sync;
	struct rl_redis_sync *s = calloc(1, sizeof(*s));
	if (!s || !(s->entries = calloc(MAX_ENTRIES, sizeof(*s->entries)))) {
		free(s);
		snprintf(err, errlen, PLUGIN ": out of memory");
		return NULL;
	}
	s->w = w;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->sync = s;
	return s;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The endpoint index for c's redis settings (shared by equal configs). */
static int endpoint_get(struct rl_redis_sync *s, const struct rl_conf *c, char *err, size_t errlen)
{
	const struct rl_redis_conf *r = &c->redis;
	uint32_t sync_ms = c->sync_ms ? c->sync_ms : 1000;
	pthread_mutex_lock(&s->mu);
	for (uint32_t i = 0; i < s->nep; i++) {
		struct rl_endpoint *e = &s->ep[i];
		if (!strcmp(e->host, r->host) && e->port == r->port && e->database == r->database &&
		    same_str(e->username, r->username) && same_str(e->password, r->password) &&
		    e->timeout_ms == r->timeout_ms && e->sync_ms == sync_ms && e->ssl == r->ssl &&
		    e->ssl_verify == r->ssl_verify && same_str(e->server_name, r->server_name)) {
			pthread_mutex_unlock(&s->mu);
			return (int)i;
		}
	}
	int rc = -ENOSPC;
	if (s->nep >= MAX_ENDPOINTS) {
		snprintf(err, errlen, PLUGIN ": more than %d distinct redis settings per worker",
		         MAX_ENDPOINTS);
		goto out;
	}
	struct rl_endpoint *e = &s->ep[s->nep];
	memset(e, 0, sizeof(*e));
	e->host = strdup(r->host);
	e->username = r->username ? strdup(r->username) : NULL;
	e->password = r->password ? strdup(r->password) : NULL;
	e->server_name = r->server_name ? strdup(r->server_name) : NULL;
	if (!e->host || (r->username && !e->username) || (r->password && !e->password) ||
	    (r->server_name && !e->server_name)) {
		free(e->host);
		free(e->username);
		free(e->password);
		free(e->server_name);
		snprintf(err, errlen, PLUGIN ": out of memory");
		rc = -ENOMEM;
		goto out;
	}
	e->port = r->port;
	e->database = r->database;
	e->timeout_ms = r->timeout_ms;
	e->ssl = r->ssl;
	e->ssl_verify = r->ssl_verify;
	e->sync_ms = sync_ms;
	rc = (int)s->nep++;
	pthread_cond_signal(&s->cv);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- config ---------------------------------------------------------------------------- */

int rl_redis_conf_new(struct rl_conf *c, char *err, size_t errlen)
{
	struct rl_redis_sync *s = sync_get(c->w, err, errlen);
	if (!s)
		return -ENOMEM;
	int ep = endpoint_get(s, c, err, errlen);
	if (ep < 0)
		return ep;
	struct rl_redis_conn *rc = calloc(1, sizeof(*rc));
	if (!rc) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	rc->ep = (uint32_t)ep;
	c->redis_state = rc;
	if (c->sync_ms && !s->started) {
		int e = pthread_create(&s->thread, NULL, sync_main, s);
		if (e) {
			snprintf(err, errlen, PLUGIN ": cannot start the redis sync thread: %s",
			         strerror(e));
			return -e;
		}
		s->started = true;
	}
	return 0;
}

void rl_redis_conf_free(struct rl_conf *c)
{
	struct rl_redis_conn *rc = c->redis_state;
	if (!rc)
		return;
	if (rc->ctx)
		rl_link_free(rc->ctx);
	free(rc);
	c->redis_state = NULL;
}

void rl_redis_worker_fini(struct rl_worker *w)
{
	struct rl_redis_sync *s = w->sync;
	if (!s)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	for (uint32_t i = 0; i < s->nep; i++) {
		if (s->ep[i].ctx)
			rl_link_free(s->ep[i].ctx);
		free(s->ep[i].host);
		free(s->ep[i].username);
		free(s->ep[i].password);
		free(s->ep[i].server_name);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->entries);
	free(s);
	w->sync = NULL;
}

/* ---- the hook ------------------------------------------------------------------------------ */

/* Synchronous mode: exchange this request's counts now; on a refusal by
 * the global count, give back and report the period. 0, or -EHOSTUNREACH
 * (Redis failed; the local decision stands if fault-tolerant). */
static int sync_now(struct rl_conf *c, struct rl_redis_conn *rc, const struct rl_key_set *ks,
                    uint64_t now_ns, struct rl_outcome *o)
{
	struct rl_endpoint *e = &c->w->sync->ep[rc->ep];
	struct rl_table *t = &c->w->table;
	uint64_t keys[RL_NPERIODS], mine[RL_NPERIODS], others[RL_NPERIODS];
	if (!rc->ctx) {
		if (mono_ns() < rc->retry_ns)
			return -EHOSTUNREACH;
		if (!(rc->ctx = ep_connect(e, rc->why, sizeof(rc->why)))) {
			rc->retry_ns = mono_ns() + RL_NS; /* one connect attempt a second */
			return -EHOSTUNREACH;
		}
	}
	for (int i = 0; i < c->np; i++) {
		keys[i] = ks->key[i];
		mine[i] = own_count(t, keys[i], o->window_end[i], now_ns);
	}
	if (exchange(rc->ctx, rl_host_id(t), keys, o->window_end, mine, others, (size_t)c->np,
	             now_ns) < 0) {
		rl_link_free(rc->ctx);
		rc->ctx = NULL;
		rc->retry_ns = mono_ns() + RL_NS;
		snprintf(rc->why, sizeof(rc->why),
		         "the exchange failed (connection lost or timed out)");
		return -EHOSTUNREACH;
	}
	int over = -1;
	struct rl_limit l;
	for (int i = 0; i < c->np; i++) {
		rl_limit_of(c, i, now_ns, &l);
		apply_others(t, keys[i], &l, o->window_end[i], others[i], now_ns);
		if (c->token_bucket) {
			/* The others' takes are out of the bucket now: was there
			 * still a token for this request? */
			uint64_t rem, reset;
			bool stale;
			if (rl_overdrawn(o->slot[i], keys[i], &l, now_ns)) {
				if (over < 0)
					over = i;
			} else if (rl_peek(o->slot[i], keys[i], &l, now_ns, &rem, &reset, &stale)) {
				o->remaining[i] = rem;
			} else {
				o->remaining[i] = 0;
			}
			continue;
		}
		uint64_t used = mine[i] + others[i];
		o->remaining[i] = used >= c->p[i].limit ? 0 : c->p[i].limit - used;
		if (used > c->p[i].limit && over < 0)
			over = i;
	}
	if (over >= 0) {
		give_back_all(c, ks, o, now_ns);
		o->blocked = over;
		o->remaining[over] = 0;
		if (c->token_bucket) { /* Retry-After: until the next token */
			uint64_t rem;
			bool stale;
			rl_limit_of(c, over, now_ns, &l);
			rl_peek(o->slot[over], keys[over], &l, now_ns, &rem, &o->reset_ns[over],
			        &stale);
		}
	}
	return 0;
}

int rl_redis_count(struct rl_conf *c, const struct rl_key_set *ks, uint64_t now_ns,
                   struct rl_outcome *o)
{
	struct rl_redis_conn *rc = c->redis_state;
	struct rl_redis_sync *s = c->w->sync;
	struct rl_endpoint *e = &s->ep[rc->ep];
	struct rl_table *t = &c->w->table;
	if (c->sync_ms && !c->fault_tolerant && __atomic_load_n(&e->down, __ATOMIC_ACQUIRE))
		return -EHOSTUNREACH;
	/* Fixed window: the others' counts the last sync stored for this
	 * window. A token bucket has the others' takes in it already. */
	uint64_t others[RL_NPERIODS] = {0};
	struct rl_limit l;
	for (int i = 0; i < c->np && !c->token_bucket; i++) {
		rl_limit_of(c, i, now_ns, &l);
		uint64_t side = side_key(ks->key[i], OTHERS_TAG);
		struct rl_slot *sl = rl_slot_get(t, side, now_ns);
		others[i] = sl ? rl_count_in(sl, side, l.window_end) : 0;
	}
	int rc_count = rl_count(c, ks, now_ns, others, o);
	if (rc_count < 0)
		return rc_count;
	if (c->token_bucket && o->blocked < 0)
		own_takes(c, ks, o, now_ns, false);
	if (c->sync_ms) {
		entries_track(s, c, ks, o, rc->ep, now_ns);
		return 0;
	}
	if (o->blocked >= 0)
		return 0; /* refused locally: nothing to tell Redis */
	int r = sync_now(c, rc, ks, now_ns, o);
	if (r < 0 && !c->fault_tolerant) {
		give_back_all(c, ks, o, now_ns);
		return r;
	}
	return 0;
}

void rl_redis_why(const struct rl_conf *c, char *buf, size_t len)
{
	const struct rl_redis_conn *rc = c->redis_state;
	struct rl_redis_sync *s = c->w->sync;
	if (!c->sync_ms) {
		snprintf(buf, len, "%s", rc->why);
		return;
	}
	pthread_mutex_lock(&s->mu);
	snprintf(buf, len, "%s", s->ep[rc->ep].why);
	pthread_mutex_unlock(&s->mu);
}
