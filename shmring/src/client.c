/* SPDX-License-Identifier: MIT */
/* Client-side helpers for the LuaJIT gateway code; see shmring/client.h. */
#include "shmring/client.h"
#include "shmring/spin.h"

#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>

struct shmring_client_decoder {
	struct shmring_mpr reader;          /* zone reused reply after reply */
	struct shmring_client_reply reply;  /* what decode_reply() hands out */
	struct shmring_client_action *acts; /* reply.actions, grown, never shrunk */
	uint32_t cap;                       /* entries allocated in acts */
};

int shmring_client_decoder_new(struct shmring_client_decoder **out)
{
	*out = NULL;
	struct shmring_client_decoder *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	int rc = shmring_mpr_init(&d->reader);
	if (rc < 0) {
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void shmring_client_decoder_free(struct shmring_client_decoder *d)
{
	if (!d)
		return;
	shmring_mpr_destroy(&d->reader);
	free(d->acts);
	free(d);
}

static int str_of(const msgpack_object *o, struct shmring_client_str *s)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		s->ptr = o->via.str.ptr;
		s->len = o->via.str.size;
		return 1;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		s->ptr = o->via.bin.ptr;
		s->len = o->via.bin.size;
		return 1;
	}
	return 0;
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

static int is_int(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	       o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

/* Sort one action's arguments into the flat struct (see client.h): 0, or
 * -EBADMSG if it is not an action this library can apply as sent. */
static int action_of(const msgpack_object *arr, struct shmring_client_action *a)
{
	memset(a, 0, sizeof(*a));
	if (arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size == 0)
		return -EBADMSG;
	const msgpack_object *v = arr->via.array.ptr;
	uint32_t n = arr->via.array.size;
	if (v[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[0].via.u64 == 0 ||
	    v[0].via.u64 >= sizeof(op_needs) / sizeof(op_needs[0]))
		return -EBADMSG;
	a->op = (uint32_t)v[0].via.u64;
	int have_num = 0;
	for (uint32_t i = 1; i < n; i++) {
		const msgpack_object *o = &v[i];
		if (!have_num && is_int(o)) {
			int64_t x = o->via.i64;
			if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 > INT32_MAX)
				x = INT32_MAX;
			if (x < INT32_MIN)
				x = INT32_MIN;
			a->num = (int32_t)x;
			have_num = 1;
		} else if (a->nstr < 2 && str_of(o, a->nstr == 0 ? &a->a : &a->b)) {
			a->nstr++;
		} else if (!a->map && o->type == MSGPACK_OBJECT_MAP) {
			a->map = o;
		} else if (o->type != MSGPACK_OBJECT_NIL) {
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
	d->cap = n;
	return 0;
}

int shmring_client_decode_reply(struct shmring_client_decoder *d, const void *buf, uint32_t len,
                                struct shmring_client_reply **out)
{
	*out = NULL;
	struct shmring_client_reply *r = &d->reply;
	int rc = shmring_mpr_parse(&d->reader, buf, len);
	if (rc < 0)
		return rc;
	const msgpack_object *root = &d->reader.root;
	if (root->type != MSGPACK_OBJECT_MAP)
		return -EBADMSG;
	r->status = -1;
	r->nactions = 0;
	r->actions = d->acts;
	r->error.ptr = NULL;
	r->error.len = 0;
	uint64_t s;
	if (shmring_mp_get_uint(root, "s", &s) == 0)
		r->status = s > INT32_MAX ? INT32_MAX : (int32_t)s;
	const msgpack_object *e = shmring_mp_get(root, "e");
	if (e)
		str_of(e, &r->error);
	const msgpack_object *acts = shmring_mp_get(root, "a");
	if (!acts) {
		DTRACE_PROBE3(shmring, reply_seen, r->status, 0, len);
		*out = r;
		return 0;
	}
	if (acts->type != MSGPACK_OBJECT_ARRAY)
		return -EBADMSG;
	uint32_t n = acts->via.array.size;
	if ((rc = reserve(d, n)) < 0)
		return rc;
	r->actions = d->acts;
	for (uint32_t i = 0; i < n; i++)
		if ((rc = action_of(&acts->via.array.ptr[i], &r->actions[i])) < 0)
			return rc;
	r->nactions = n;
	DTRACE_PROBE3(shmring, reply_seen, r->status, n, len);
	*out = r;
	return 0;
}

uint32_t shmring_client_map_len(const void *map)
{
	const msgpack_object *m = map;
	return m && m->type == MSGPACK_OBJECT_MAP ? m->via.map.size : 0;
}

int shmring_client_map_str(const void *map, uint32_t i, struct shmring_client_str *key,
                           struct shmring_client_str *val)
{
	memset(key, 0, sizeof(*key));
	memset(val, 0, sizeof(*val));
	if (i >= shmring_client_map_len(map))
		return -ENOENT;
	const msgpack_object_kv *kv = &((const msgpack_object *)map)->via.map.ptr[i];
	if (!str_of(&kv->key, key) || !str_of(&kv->val, val)) {
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
