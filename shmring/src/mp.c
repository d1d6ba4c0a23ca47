/* SPDX-License-Identifier: MIT */
#include "shmring/mp.h"

#include <msgpack/unpack_define.h> /* MSGPACK_EMBED_STACK_SIZE, the unpacker's depth */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* msgpack_packer callback: copy into the fixed buffer, or mark overflow. */
static int mpw_write(void *data, const char *buf, size_t len)
{
	struct shmring_mpw *w = data;
	if (w->overflow || len > (size_t)(w->cap - w->len)) {
		w->overflow = 1;
		return -1;
	}
	memcpy(w->buf + w->len, buf, len);
	w->len += (uint32_t)len;
	return 0;
}

#define PACKER(w) msgpack_packer pk = {(w), mpw_write}

void shmring_mpw_init(struct shmring_mpw *w, void *buf, uint32_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = 0;
}

int shmring_mpw_finish(const struct shmring_mpw *w)
{
	return w->overflow ? -EMSGSIZE : (int)w->len;
}

void shmring_mpw_map(struct shmring_mpw *w, uint32_t n)
{
	PACKER(w);
	msgpack_pack_map(&pk, n);
}

void shmring_mpw_array(struct shmring_mpw *w, uint32_t n)
{
	PACKER(w);
	msgpack_pack_array(&pk, n);
}

void shmring_mpw_str(struct shmring_mpw *w, const char *s, uint32_t len)
{
	PACKER(w);
	if (msgpack_pack_str(&pk, len) == 0)
		msgpack_pack_str_body(&pk, s, len);
}

void shmring_mpw_cstr(struct shmring_mpw *w, const char *s)
{
	shmring_mpw_str(w, s, (uint32_t)strlen(s));
}

void shmring_mpw_uint(struct shmring_mpw *w, uint64_t v)
{
	PACKER(w);
	msgpack_pack_uint64(&pk, v);
}

void shmring_mpw_int(struct shmring_mpw *w, int64_t v)
{
	PACKER(w);
	msgpack_pack_int64(&pk, v);
}

void shmring_mpw_double(struct shmring_mpw *w, double v)
{
	PACKER(w);
	msgpack_pack_double(&pk, v);
}

void shmring_mpw_bool(struct shmring_mpw *w, int v)
{
	PACKER(w);
	if (v)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
}

void shmring_mpw_nil(struct shmring_mpw *w)
{
	PACKER(w);
	msgpack_pack_nil(&pk);
}

void shmring_mpw_raw(struct shmring_mpw *w, const void *p, uint32_t len)
{
	mpw_write(w, p, len);
}

int shmring_mpr_init(struct shmring_mpr *r)
{
	memset(&r->root, 0, sizeof(r->root));
	return msgpack_zone_init(&r->zone, 2048) ? 0 : -ENOMEM;
}

void shmring_mpr_destroy(struct shmring_mpr *r)
{
	msgpack_zone_destroy(&r->zone);
}

/* Big-endian length field of n bytes at p[*off], if the buffer has it. */
static bool mp_len(const uint8_t *p, size_t len, size_t *off, unsigned n, uint64_t *v)
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

/* Walk buf[0..len) as exactly one msgpack value without allocating. Defensive
 * check before msgpack_unpack(), which trusts container counts: five hostile
 * bytes (0xdd ff ff ff ff) would make it malloc ~100 GB for an array. Here
 * every element must still have a byte to stand on (so the zone never holds
 * more objects than there are input bytes), strings/binaries/ext must fit,
 * and nesting stays within msgpack-c's stack (it counts open non-empty
 * containers and refuses to open one more at MSGPACK_EMBED_STACK_SIZE).
 * Returns 0 or -EBADMSG; O(len). */
static int mp_check(const uint8_t *p, size_t len)
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
				if (!mp_len(p, len, &off, 1u << (b - 0xc4), &skip))
					return -EBADMSG;
				break;
			case 0xc7 ... 0xc9: /* ext 8/16/32: length, type, data */
				if (!mp_len(p, len, &off, 1u << (b - 0xc7), &skip))
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
				if (!mp_len(p, len, &off, 1u << (b - 0xd9), &skip))
					return -EBADMSG;
				break;
			case 0xdc ... 0xdd: /* array 16/32 */
				if (!mp_len(p, len, &off, b == 0xdc ? 2 : 4, &n))
					return -EBADMSG;
				container = true, items = n;
				break;
			case 0xde ... 0xdf: /* map 16/32 */
				if (!mp_len(p, len, &off, b == 0xde ? 2 : 4, &n))
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

int shmring_mpr_parse(struct shmring_mpr *r, const void *buf, uint32_t len)
{
	msgpack_zone_clear(&r->zone);
	memset(&r->root, 0, sizeof(r->root));
	if (mp_check(buf, len) < 0)
		return -EBADMSG;
	size_t off = 0;
	/* msgpack_unpack() points strings into buf (no copy) and puts
	 * arrays and maps in the zone. */
	msgpack_unpack_return ret = msgpack_unpack(buf, len, &off, &r->zone, &r->root);
	if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
		return -ENOMEM;
	if (ret != MSGPACK_UNPACK_SUCCESS) {
		memset(&r->root, 0, sizeof(r->root));
		return -EBADMSG;
	}
	return 0;
}

int shmring_mpr_parse_copy(struct shmring_mpr *r, void *copy, const void *shared, uint32_t len)
{
	memcpy(copy, shared, len);
	return shmring_mpr_parse(r, copy, len);
}

const msgpack_object *shmring_mp_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
		    memcmp(k->via.str.ptr, key, klen) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

int shmring_mp_get_str(const msgpack_object *map, const char *key, const char **s, uint32_t *len)
{
	*s = NULL;
	*len = 0;
	const msgpack_object *v = shmring_mp_get(map, key);
	if (!v)
		return -ENOENT;
	if (v->type != MSGPACK_OBJECT_STR)
		return -EBADMSG;
	*s = v->via.str.ptr;
	*len = v->via.str.size;
	return 0;
}

int shmring_mp_get_uint(const msgpack_object *map, const char *key, uint64_t *v)
{
	*v = 0;
	const msgpack_object *o = shmring_mp_get(map, key);
	if (!o)
		return -ENOENT;
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -EBADMSG;
	*v = o->via.u64;
	return 0;
}
