/* SPDX-License-Identifier: MIT */
/* Client-side helpers for the LuaJIT gateway code; see shmring/client.h. */
#include "shmring/client.h"
#include "shmring/spin.h"

#include "internal.h"
#include "mp_read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>

/* An action's map, read in place: its entries are the size bytes at p.
 * map_str() keeps where the last entry it read ended, so that reading the
 * entries in order walks the bytes once. */
struct shmring_client_map {
	const uint8_t *p;
	uint32_t size;
	uint32_t n;      /* entries */
	uint32_t next_i; /* entry that starts at next_off */
	uint32_t next_off;
};

struct shmring_client_decoder {
	struct shmring_client_reply reply;  /* what decode_reply() hands out */
	struct shmring_client_action *acts; /* reply.actions, grown, never shrunk */
	struct shmring_client_map *maps;    /* maps[i]: acts[i].map's, if it has one */
	uint32_t cap;                       /* entries allocated in acts and maps */
};

/* Nesting in a reply: the root map, "a", an action, an argument (a map),
 * the map's entries. For the bound that msgpack-c's parse applies. */
enum { DEPTH_ROOT_VAL = 1, DEPTH_ACTION = 2, DEPTH_ARG = 3, DEPTH_MAP_ENTRY = 4 };

int shmring_client_decoder_new(struct shmring_client_decoder **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void shmring_client_decoder_free(struct shmring_client_decoder *d)
{
	if (!d)
		return;
	free(d->acts);
	free(d->maps);
	free(d);
}

static int str_of(const struct shmring_mpv *v, struct shmring_client_str *s)
{
	if (v->kind != SHMRING_MPV_STR && v->kind != SHMRING_MPV_BIN)
		return 0;
	s->ptr = (const char *)v->ptr;
	s->len = v->n;
	return 1;
}

static int is_key(const struct shmring_mpv *k, char name)
{
	return k->kind == SHMRING_MPV_STR && k->n == 1 && k->ptr[0] == (uint8_t)name;
}

/* What each op must carry (docs/protocol.md, "REPLY"): strings, an integer,
 * a map. Indexed by op; ops past the table are unknown. */
static const struct {
	uint8_t nstr, num, map;
} op_needs[] = {
    [SHMRING_ACT_SET_REQ_HEADER] = {2, 0, 0},
    [SHMRING_ACT_ADD_REQ_HEADER] = {2, 0, 0},
    [SHMRING_ACT_CLEAR_REQ_HEADER] = {1, 0, 0},
    [SHMRING_ACT_SET_PATH] = {1, 0, 0},
    [SHMRING_ACT_SET_QUERY] = {1, 0, 0},
    [SHMRING_ACT_SET_METHOD] = {1, 0, 0},
    [SHMRING_ACT_SET_RESP_HEADER] = {2, 0, 0},
    [SHMRING_ACT_ADD_RESP_HEADER] = {2, 0, 0},
    [SHMRING_ACT_EXIT] = {0, 1, 0},
    [SHMRING_ACT_SET_CTX] = {2, 0, 0},
    [SHMRING_ACT_AUTHENTICATE] = {0, 0, 1},
    [SHMRING_ACT_LOG] = {1, 1, 0},
    [SHMRING_ACT_LOOKUP] = {1, 1, 0}, /* kind, key: in NEED_ENTITIES replies */
    [SHMRING_ACT_SET_BODY] = {1, 0, 0},
};

/* Read one action at the cursor into the flat struct (see client.h), its
 * map (if any) into m: 0, or -EBADMSG if it is not an action this library
 * can apply as sent. */
static int action_at(struct shmring_mpc *c, struct shmring_client_action *a,
                     struct shmring_client_map *m)
{
	memset(a, 0, sizeof(*a));
	struct shmring_mpv v;
	if (shmring_mpc_head(c, &v) < 0 || v.kind != SHMRING_MPV_ARRAY || v.n == 0)
		return -EBADMSG;
	uint32_t n = v.n;
	if (shmring_mpc_head(c, &v) < 0 || v.kind != SHMRING_MPV_UINT || v.u == 0 ||
	    v.u >= sizeof(op_needs) / sizeof(op_needs[0]))
		return -EBADMSG;
	a->op = (uint32_t)v.u;
	int have_num = 0;
	for (uint32_t i = 1; i < n; i++) {
		if (shmring_mpc_head(c, &v) < 0)
			return -EBADMSG;
		if (!have_num && (v.kind == SHMRING_MPV_UINT || v.kind == SHMRING_MPV_INT)) {
			int64_t x = v.i;
			if (v.kind == SHMRING_MPV_UINT && v.u > INT32_MAX)
				x = INT32_MAX;
			if (x < INT32_MIN)
				x = INT32_MIN;
			a->num = (int32_t)x;
			have_num = 1;
		} else if (a->nstr < 2 && str_of(&v, a->nstr == 0 ? &a->a : &a->b)) {
			a->nstr++;
		} else if (!a->map && v.kind == SHMRING_MPV_MAP) {
			uint32_t start = c->off;
			if (shmring_mpc_skip(c, &v, DEPTH_ARG) < 0)
				return -EBADMSG;
			*m = (struct shmring_client_map){c->p + start, c->off - start, v.n, 0, 0};
			a->map = m;
		} else if (v.kind != SHMRING_MPV_NIL) {
			return -EBADMSG; /* an argument no op of the protocol takes */
		}
	}
	if (a->nstr < op_needs[a->op].nstr || have_num < op_needs[a->op].num ||
	    (op_needs[a->op].map && !a->map))
		return -EBADMSG;
	return 0;
}

/* Room for n actions. n is bounded by the payload (an action takes at least
 * two bytes), so this grows with the record size, never past it. */
static int reserve(struct shmring_client_decoder *d, uint32_t n)
{
	if (n <= d->cap)
		return 0;
	struct shmring_client_action *p = realloc(d->acts, (size_t)n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	d->acts = p;
	struct shmring_client_map *m = realloc(d->maps, (size_t)n * sizeof(*m));
	if (!m)
		return -ENOMEM;
	d->maps = m;
	d->cap = n;
	return 0;
}

/* The reply read in one walk over its bytes: the root map's first "s", "e"
 * and "a" (as a lookup by key would find them), every other key and value
 * stepped over but checked all the same, so that what is refused is what a
 * full parse refuses: anything but exactly one well-formed value. */
int shmring_client_decode_reply(struct shmring_client_decoder *d, const void *buf, uint32_t len,
                                struct shmring_client_reply **out)
{
	*out = NULL;
	struct shmring_client_reply *r = &d->reply;
	struct shmring_mpc c = {buf, len, 0};
	struct shmring_mpv root, k, v;
	if (shmring_mpc_head(&c, &root) < 0 || root.kind != SHMRING_MPV_MAP)
		return -EBADMSG;
	r->status = -1;
	r->nactions = 0;
	r->actions = d->acts;
	r->error.ptr = NULL;
	r->error.len = 0;
	int seen_s = 0, seen_e = 0, seen_a = 0, rc;
	for (uint32_t i = 0; i < root.n; i++) {
		if (shmring_mpc_head(&c, &k) < 0 || shmring_mpc_skip(&c, &k, DEPTH_ROOT_VAL) < 0 ||
		    shmring_mpc_head(&c, &v) < 0)
			return -EBADMSG;
		if (!seen_a && is_key(&k, 'a')) {
			seen_a = 1;
			if (v.kind != SHMRING_MPV_ARRAY)
				return -EBADMSG;
			if ((rc = reserve(d, v.n)) < 0)
				return rc;
			r->actions = d->acts;
			for (uint32_t j = 0; j < v.n; j++)
				if ((rc = action_at(&c, &r->actions[j], &d->maps[j])) < 0)
					return rc;
			r->nactions = v.n;
			continue;
		}
		if (!seen_s && is_key(&k, 's')) {
			seen_s = 1;
			if (v.kind == SHMRING_MPV_UINT)
				r->status = v.u > INT32_MAX ? INT32_MAX : (int32_t)v.u;
		} else if (!seen_e && is_key(&k, 'e')) {
			seen_e = 1;
			str_of(&v, &r->error);
		}
		if (shmring_mpc_skip(&c, &v, DEPTH_ROOT_VAL) < 0)
			return -EBADMSG;
	}
	if (c.off != len)
		return -EBADMSG; /* bytes after the reply */
	DTRACE_PROBE3(shmring, reply_seen, r->status, r->nactions, len);
	*out = r;
	return 0;
}

uint32_t shmring_client_map_len(const void *map)
{
	const struct shmring_client_map *m = map;
	return m ? m->n : 0;
}

int shmring_client_map_str(const void *map, uint32_t i, struct shmring_client_str *key,
                           struct shmring_client_str *val)
{
	memset(key, 0, sizeof(*key));
	memset(val, 0, sizeof(*val));
	struct shmring_client_map *m = (struct shmring_client_map *)map; /* the decoder's */
	if (i >= shmring_client_map_len(m))
		return -ENOENT;
	struct shmring_mpc c = {m->p, m->size, 0};
	uint32_t at = 0;
	if (i >= m->next_i)
		c.off = m->next_off, at = m->next_i;
	struct shmring_mpv k, v;
	for (;; at++) {
		if (shmring_mpc_head(&c, &k) < 0 || shmring_mpc_skip(&c, &k, DEPTH_MAP_ENTRY) < 0 ||
		    shmring_mpc_head(&c, &v) < 0 || shmring_mpc_skip(&c, &v, DEPTH_MAP_ENTRY) < 0)
			return -EBADMSG; /* checked whole when decoded: not reached */
		if (at == i)
			break;
	}
	m->next_i = i + 1;
	m->next_off = c.off;
	if (!str_of(&k, key) || !str_of(&v, val)) {
		memset(key, 0, sizeof(*key));
		memset(val, 0, sizeof(*val));
		return -EBADMSG;
	}
	return 0;
}

int shmring_client_begin(struct shmring_chan *c, uint32_t cap, struct shmring_client_msg *m)
{
	int rc = shmring_claim(c, cap, &m->claim);
	if (rc != 0) {
		shmring_mpw_init(&m->w, NULL, 0);
		return rc;
	}
	shmring_mpw_init(&m->w, m->claim.payload, m->claim.cap);
	return 0;
}

int shmring_client_end(struct shmring_chan *c, struct shmring_client_msg *m, uint16_t type,
                       uint64_t req_id, int publish)
{
	int len = shmring_mpw_finish(&m->w);
	if (len < 0) {
		shmring_abort(c, &m->claim);
		return len;
	}
	int rc = shmring_commit(c, &m->claim, (uint32_t)len, type, 0, req_id);
	if (rc < 0)
		return rc;
	DTRACE_PROBE4(shmring, submit, shmring_chan_index(c), type, req_id, len);
	if (publish)
		shmring_publish(c);
	return len;
}

int shmring_client_server_awake(struct shmring_chan *c)
{
	uint32_t slot = atomic_load_explicit(&c->hdr->server_slot, memory_order_relaxed);
	struct shmring_event *ev = shmring_instance_worker_event(c->inst, slot);
	return ev && !__atomic_load_n(&ev->waiters, __ATOMIC_RELAXED);
}

int64_t shmring_client_spin(struct shmring_chan *c, uint64_t max_ns)
{
	uint64_t start = shmring_now_ns(), now = start;
	for (;;) {
		int rc = shmring_ready(c);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return now > start ? (int64_t)(now - start) : 1;
		if (now - start >= max_ns || !shmring_client_server_awake(c))
			return 0;
		for (int i = 0; i < 16; i++)
			shmring_cpu_relax();
		now = shmring_now_ns();
	}
}

double shmring_client_clock(void)
{
	return (double)shmring_now_ns() / 1e9;
}

double shmring_client_applied(double started)
{
	double took = shmring_client_clock() - started;
	DTRACE_PROBE1(shmring, applied, (uint64_t)(took * 1e9));
	return took;
}

int shmring_client_health(const struct shmring_instance *inst, const struct shmring_chan *c,
                          int64_t max_age_ns)
{
	if (c && shmring_chan_is_closed(c))
		return -ESTALE;
	/* A truncated or overwritten channel: attach again, to another. */
	if (c && shmring_chan_check(c) < 0)
		return -ESTALE;

	int64_t age = shmring_instance_heartbeat_age_ns(inst);
	if (age < 0)
		return (int)age;
	return age > max_age_ns ? -ETIMEDOUT : 0;
}

static int same_name(const struct shmring_client_ngx_str *a, const struct shmring_client_ngx_str *b)
{
	return a->len == b->len && (a->len <= 0 || memcmp(a->data, b->data, (size_t)a->len) == 0);
}

/* Whether pair i is the first of its name. */
static int first_of_name(const struct shmring_client_ngx_pair *p, uint32_t i)
{
	for (uint32_t j = 0; j < i; j++)
		if (same_name(&p[j].key, &p[i].key))
			return 0;
	return 1;
}

static void put_ngx_str(struct shmring_mpw *w, const struct shmring_client_ngx_str *s)
{
	shmring_mpw_str(w, s->len > 0 ? s->data : "", s->len > 0 ? (uint32_t)s->len : 0);
}

void shmring_client_put_pairs(struct shmring_mpw *w, const struct shmring_client_ngx_pair *p,
                              uint32_t n)
{
	uint32_t names = 0;
	for (uint32_t i = 0; i < n; i++)
		names += (uint32_t)first_of_name(p, i);
	shmring_mpw_map(w, names);
	for (uint32_t i = 0; i < n; i++) {
		if (!first_of_name(p, i))
			continue;
		uint32_t count = 1;
		for (uint32_t j = i + 1; j < n; j++)
			count += (uint32_t)same_name(&p[j].key, &p[i].key);
		put_ngx_str(w, &p[i].key);
		if (count == 1) {
			if (p[i].value.len < 0)
				shmring_mpw_bool(w, 1);
			else
				put_ngx_str(w, &p[i].value);
			continue;
		}
		shmring_mpw_array(w, count);
		for (uint32_t j = i; j < n; j++) {
			if (!same_name(&p[j].key, &p[i].key))
				continue;
			if (p[j].value.len < 0)
				shmring_mpw_str(w, "true", 4);
			else
				put_ngx_str(w, &p[j].value);
		}
	}
}
