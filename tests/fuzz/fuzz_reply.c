/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the gateway's reply decoder (shmring_client_decode_reply,
 * what the nginx side runs on every CQ record) on hostile bytes. A reply is
 * taken whole or refused; nothing may crash or read outside the input, and
 * an accepted reply must be one the Lua side can apply as it stands: every
 * op known, every argument its op needs present, every string inside the
 * input, every map readable entry by entry. The decoder is reused across
 * inputs, as the client reuses it across replies.
 *
 * Differential: the decoder reads the reply in place, in one walk. Every
 * input is also parsed by msgpack-c into an object tree (behind the bounds
 * check it needs against hostile counts) and read as a reply from that
 * tree: both must accept and refuse the same inputs, and hand out the same
 * reply, action by action, map entry by map entry.
 */
#include "shmring/client.h"

#include <errno.h>
#include <msgpack.h>
#include <msgpack/unpack_define.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static struct shmring_client_decoder *g_dec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (shmring_client_decoder_new(&g_dec) < 0)
		abort();
	return 0;
}

static void check_str(const struct shmring_client_str *s, const uint8_t *buf, size_t len)
{
	if (!s->ptr)
		return;
	const uint8_t *p = (const uint8_t *)s->ptr;
	if (p < buf || p + s->len > buf + len)
		abort(); /* a string outside the payload */
}

/* Big-endian length field of n bytes at p[*off], if the buffer has it. */
static bool ref_len(const uint8_t *p, size_t len, size_t *off, unsigned n, uint64_t *v)
{
	if (len - *off < n)
		return false;
	uint64_t x = 0;
	for (unsigned i = 0; i < n; i++)
		x = x << 8 | p[*off + i];
	*off += n;
	*v = x;
	return true;
}

/* The bounds check msgpack_unpack() needs on hostile bytes (it trusts
 * container counts and would malloc ~100 GB for 0xdd ff ff ff ff), as the
 * library ran it before its own reader existed: exactly one value, every
 * element with a byte to stand on, strings/binaries/ext within the input,
 * nesting within msgpack-c's stack.
 * Returns 0 or -EBADMSG; O(len). */
static int ref_check(const uint8_t *p, size_t len)
{
	uint64_t left[MSGPACK_EMBED_STACK_SIZE]; /* values still due in each open container */
	unsigned depth = 0;
	size_t off = 0;
	for (;;) {
		if (off >= len)
			return -EBADMSG;
		uint8_t b = p[off++];
		uint64_t skip = 0, items = 0, n = 0;
		bool container = false;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			/* fixint, nil, bool */
		} else if (b <= 0x8f) {
			container = true, items = (uint64_t)(b & 0x0f) * 2;
		} else if (b <= 0x9f) {
			container = true, items = b & 0x0f;
		} else if (b <= 0xbf) {
			skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4 ... 0xc6: /* bin 8/16/32 */
				if (!ref_len(p, len, &off, 1u << (b - 0xc4), &skip))
					return -EBADMSG;
				break;
			case 0xc7 ... 0xc9: /* ext 8/16/32: length, type, data */
				if (!ref_len(p, len, &off, 1u << (b - 0xc7), &skip))
					return -EBADMSG;
				skip += 1;
				break;
			case 0xca: /* float 32 */
				skip = 4;
				break;
			case 0xcb: /* float 64 */
				skip = 8;
				break;
			case 0xcc ... 0xcf: /* uint 8..64 */
				skip = 1u << (b - 0xcc);
				break;
			case 0xd0 ... 0xd3: /* int 8..64 */
				skip = 1u << (b - 0xd0);
				break;
			case 0xd4 ... 0xd8: /* fixext 1..16: type, data */
				skip = 1 + (1u << (b - 0xd4));
				break;
			case 0xd9 ... 0xdb: /* str 8/16/32 */
				if (!ref_len(p, len, &off, 1u << (b - 0xd9), &skip))
					return -EBADMSG;
				break;
			case 0xdc ... 0xdd: /* array 16/32 */
				if (!ref_len(p, len, &off, b == 0xdc ? 2 : 4, &n))
					return -EBADMSG;
				container = true, items = n;
				break;
			case 0xde ... 0xdf: /* map 16/32 */
				if (!ref_len(p, len, &off, b == 0xde ? 2 : 4, &n))
					return -EBADMSG;
				container = true, items = n * 2;
				break;
			default: /* 0xc1, never used */
				return -EBADMSG;
			}
		}
		if (skip > len - off)
			return -EBADMSG;
		off += skip;
		if (container) {
			if (depth >= MSGPACK_EMBED_STACK_SIZE || items > len - off)
				return -EBADMSG;
			if (items) {
				left[depth++] = items;
				continue;
			}
		}
		/* One value done; it may complete its containers in turn. */
		while (depth > 0 && --left[depth - 1] == 0)
			depth--;
		if (depth == 0)
			return off == len ? 0 : -EBADMSG;
	}
}

/* The reference: msgpack-c's tree, read as docs/protocol.md says. */
struct ref_action {
	uint64_t op;
	int32_t num;
	uint32_t nstr;
	const msgpack_object *s[2];
	const msgpack_object *map;
};

static const msgpack_object *ref_get(const msgpack_object *map, const char *key)
{
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 1 &&
		    k->via.str.ptr[0] == key[0])
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

static bool ref_is_str(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

/* The same bytes of the input (strings and binaries share their layout in
 * msgpack_object). An empty one only has to be there: msgpack-c points it
 * at its length field, the decoder past it. */
static bool ref_same_str(const msgpack_object *o, const struct shmring_client_str *s)
{
	if (!o)
		return s->ptr == NULL;
	return s->ptr && s->len == o->via.str.size && (s->len == 0 || s->ptr == o->via.str.ptr);
}

/* By op, 1 to SET_BODY (docs/protocol.md, "REPLY"): strings and integers it needs. */
static const uint8_t ref_nstr[] = {0, 2, 2, 1, 1, 1, 1, 2, 2, 0, 2, 0, 1, 1, 1};
static const uint8_t ref_num[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0};
_Static_assert(sizeof(ref_nstr) == SHMRING_ACT_SET_BODY + 1, "an op the reference does not know");

static bool ref_action(const msgpack_object *arr, struct ref_action *a)
{
	memset(a, 0, sizeof(*a));
	if (arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size == 0)
		return false;
	const msgpack_object *v = arr->via.array.ptr;
	if (v[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[0].via.u64 == 0 ||
	    v[0].via.u64 > SHMRING_ACT_SET_BODY)
		return false;
	a->op = v[0].via.u64;
	bool have_num = false;
	for (uint32_t i = 1; i < arr->via.array.size; i++) {
		const msgpack_object *o = &v[i];
		if (!have_num && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			a->num = o->via.u64 > INT32_MAX ? INT32_MAX : (int32_t)o->via.u64;
			have_num = true;
		} else if (!have_num && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			a->num = o->via.i64 < INT32_MIN ? INT32_MIN : (int32_t)o->via.i64;
			have_num = true;
		} else if (a->nstr < 2 && ref_is_str(o)) {
			a->s[a->nstr++] = o;
		} else if (!a->map && o->type == MSGPACK_OBJECT_MAP) {
			a->map = o;
		} else if (o->type != MSGPACK_OBJECT_NIL) {
			return false;
		}
	}
	return a->nstr >= ref_nstr[a->op] && have_num >= ref_num[a->op] &&
	       (a->op != SHMRING_ACT_AUTHENTICATE || a->map);
}

/* Compare the decoder's answer (rc, r) with the reference's on buf. */
static void differential(const uint8_t *buf, size_t size, int rc,
                         const struct shmring_client_reply *r)
{
	static msgpack_zone zone;
	static bool zone_ready;
	if (!zone_ready && !(zone_ready = msgpack_zone_init(&zone, 2048)))
		abort();
	msgpack_zone_clear(&zone);
	msgpack_object root;
	size_t off = 0;
	bool ok =
	    ref_check(buf, size) == 0 &&
	    msgpack_unpack((const char *)buf, size, &off, &zone, &root) == MSGPACK_UNPACK_SUCCESS &&
	    root.type == MSGPACK_OBJECT_MAP;
	const msgpack_object *s = ok ? ref_get(&root, "s") : NULL;
	const msgpack_object *e = ok ? ref_get(&root, "e") : NULL;
	const msgpack_object *acts = ok ? ref_get(&root, "a") : NULL;
	if (acts && acts->type != MSGPACK_OBJECT_ARRAY)
		ok = false;
	uint32_t n = acts && ok ? acts->via.array.size : 0;
	struct ref_action a;
	for (uint32_t i = 0; ok && i < n; i++)
		ok = ref_action(&acts->via.array.ptr[i], &a);
	if (ok != (rc == 0))
		abort(); /* one accepts what the other refuses */
	if (!ok)
		return;
	int32_t status = -1;
	if (s && s->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		status = s->via.u64 > INT32_MAX ? INT32_MAX : (int32_t)s->via.u64;
	if (r->status != status || r->nactions != n ||
	    !ref_same_str(e && ref_is_str(e) ? e : NULL, &r->error))
		abort();
	for (uint32_t i = 0; i < n; i++) {
		const struct shmring_client_action *x = &r->actions[i];
		ref_action(&acts->via.array.ptr[i], &a);
		if (x->op != a.op || x->num != a.num || x->nstr != a.nstr ||
		    !ref_same_str(a.s[0], &x->a) || !ref_same_str(a.s[1], &x->b) ||
		    !x->map != !a.map ||
		    shmring_client_map_len(x->map) != (a.map ? a.map->via.map.size : 0))
			abort();
		/* Entries in order, then again from the start. */
		for (uint32_t k = 0; k < 2 * shmring_client_map_len(x->map); k++) {
			uint32_t j = k % shmring_client_map_len(x->map);
			const msgpack_object_kv *kv = &a.map->via.map.ptr[j];
			bool strs = ref_is_str(&kv->key) && ref_is_str(&kv->val);
			struct shmring_client_str key, val;
			int mrc = shmring_client_map_str(x->map, j, &key, &val);
			if (mrc != (strs ? 0 : -EBADMSG) ||
			    (strs &&
			     (!ref_same_str(&kv->key, &key) || !ref_same_str(&kv->val, &val))))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	/* A private copy of exactly size bytes, so ASan sees any overread. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct shmring_client_reply *r = (struct shmring_client_reply *)1;
	int rc = shmring_client_decode_reply(g_dec, buf, (uint32_t)size, &r);
	differential(buf, size, rc, r);
	if (rc < 0) {
		if (r != NULL)
			abort(); /* refused: nothing handed out */
		free(buf);
		return 0;
	}
	check_str(&r->error, buf, size);
	for (uint32_t i = 0; i < r->nactions; i++) {
		const struct shmring_client_action *a = &r->actions[i];
		/* SET_BODY is the last op; LOOKUP comes in NEED_ENTITIES replies. */
		if (a->op < SHMRING_ACT_SET_REQ_HEADER || a->op > SHMRING_ACT_SET_BODY ||
		    a->nstr > 2)
			abort();
		if ((a->op == SHMRING_ACT_LOOKUP || a->op == SHMRING_ACT_SET_BODY) && a->nstr < 1)
			abort();
		if (a->nstr > 0 && !a->a.ptr)
			abort();
		if (a->nstr > 1 && !a->b.ptr)
			abort();
		if (a->op == SHMRING_ACT_AUTHENTICATE && !a->map)
			abort();
		check_str(&a->a, buf, size);
		check_str(&a->b, buf, size);
		for (uint32_t k = 0; k < shmring_client_map_len(a->map) + 1; k++) {
			struct shmring_client_str key, val;
			if (shmring_client_map_str(a->map, k, &key, &val) == 0) {
				check_str(&key, buf, size);
				check_str(&val, buf, size);
			}
		}
	}
	free(buf);
	return 0;
}
