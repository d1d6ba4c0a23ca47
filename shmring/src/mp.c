/* SPDX-License-Identifier: MIT */
#include "shmring/mp.h"
#include "mp_read.h"

#include <msgpack/unpack_define.h> /* MSGPACK_EMBED_STACK_SIZE, the unpacker's depth */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

_Static_assert(SHMRING_MP_MAX_DEPTH == MSGPACK_EMBED_STACK_SIZE,
               "the in-place reader bounds nesting as msgpack-c does");

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

int shmring__mpc_skip_container(struct shmring_mpc *c, const struct shmring_mpv *head,
                                unsigned depth)
{
	uint64_t left[SHMRING_MP_MAX_DEPTH]; /* values still due in each open container */
	unsigned open = 0;
	struct shmring_mpv v = *head;
	for (;;) {
		if (v.kind == SHMRING_MPV_ARRAY || v.kind == SHMRING_MPV_MAP) {
			if (depth + open >= SHMRING_MP_MAX_DEPTH)
				return -EBADMSG;
			if (v.n) {
				left[open++] = v.kind == SHMRING_MPV_MAP ? (uint64_t)v.n * 2 : v.n;
				if (shmring_mpc_head(c, &v) < 0)
					return -EBADMSG;
				continue;
			}
		}
		/* One value done; it may complete its containers in turn. */
		while (open > 0 && --left[open - 1] == 0)
			open--;
		if (open == 0)
			return 0;
		if (shmring_mpc_head(c, &v) < 0)
			return -EBADMSG;
	}
}

/* buf[0..len) is exactly one msgpack value that msgpack_unpack() can take
 * without trusting its counts: five hostile bytes (0xdd ff ff ff ff) would
 * make it malloc ~100 GB for an array. Every element must have a byte to
 * stand on (so the zone never holds more objects than there are input
 * bytes), strings/binaries/ext must fit, and nesting stays within
 * msgpack-c's stack. Returns 0 or -EBADMSG; O(len), no allocation. */
static int mp_check(const uint8_t *p, size_t len)
{
	if (len > UINT32_MAX)
		return -EBADMSG;
	struct shmring_mpc c = {p, (uint32_t)len, 0};
	struct shmring_mpv v;
	if (shmring_mpc_head(&c, &v) < 0 || shmring_mpc_skip(&c, &v, 0) < 0)
		return -EBADMSG;
	return c.off == c.len ? 0 : -EBADMSG;
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
