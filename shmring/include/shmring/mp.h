/* SPDX-License-Identifier: MIT */
/*
 * MessagePack straight into a claimed record, and out of a record without a
 * copy (msgpack-c 4).
 *
 * Writing: shmring_mpw_init() over claim.payload/claim.cap, then the
 * shmring_mpw_* calls; shmring_mpw_finish() returns the bytes written (the
 * length to commit) or -EMSGSIZE if the claim was too small, in which case
 * nothing was written past cap. Every call is an exported function so
 * LuaJIT's FFI can encode a snapshot into the ring with no Lua serializer.
 *
 * Reading: shmring_mpr_parse() unpacks one record payload into a
 * msgpack_object whose strings and binaries point into the ring (valid until
 * the record is released); maps and arrays live in the reader's zone, which
 * is reused record after record.
 */
#ifndef SHMRING_MP_H
#define SHMRING_MP_H

#include "shmring/shmring.h"
#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

struct shmring_mpw {
	uint8_t *buf;
	uint32_t cap;
	uint32_t len;
	int overflow; /* set once a write did not fit; later writes are ignored */
};

SHMRING_API void shmring_mpw_init(struct shmring_mpw *w, void *buf, uint32_t cap);
SHMRING_API int shmring_mpw_finish(const struct shmring_mpw *w);
SHMRING_API void shmring_mpw_map(struct shmring_mpw *w, uint32_t n);
SHMRING_API void shmring_mpw_array(struct shmring_mpw *w, uint32_t n);
SHMRING_API void shmring_mpw_str(struct shmring_mpw *w, const char *s, uint32_t len);
/* NUL-terminated string (for keys written from C). */
SHMRING_API void shmring_mpw_cstr(struct shmring_mpw *w, const char *s);
SHMRING_API void shmring_mpw_uint(struct shmring_mpw *w, uint64_t v);
SHMRING_API void shmring_mpw_int(struct shmring_mpw *w, int64_t v);
SHMRING_API void shmring_mpw_double(struct shmring_mpw *w, double v);
SHMRING_API void shmring_mpw_bool(struct shmring_mpw *w, int v);
SHMRING_API void shmring_mpw_nil(struct shmring_mpw *w);
/* Already-encoded msgpack bytes, copied as they are. */
SHMRING_API void shmring_mpw_raw(struct shmring_mpw *w, const void *p, uint32_t len);

struct shmring_mpr {
	msgpack_zone zone;
	msgpack_object root;
};

SHMRING_API int shmring_mpr_init(struct shmring_mpr *r);
SHMRING_API void shmring_mpr_destroy(struct shmring_mpr *r);
/* Parse exactly one msgpack value filling buf[0..len). -EBADMSG if it is not
 * one whole value (truncated, trailing bytes, a container count larger than
 * the remaining bytes could hold, or nesting deeper than msgpack-c accepts),
 * -ENOMEM. buf is checked before anything is allocated, so the zone never
 * holds more objects than len. The previous root is invalidated. */
SHMRING_API int shmring_mpr_parse(struct shmring_mpr *r, const void *buf, uint32_t len);
/* shmring_mpr_parse() of a private copy: copy len bytes of shared (memory
 * another process may rewrite meanwhile, e.g. a ring) to copy once, then
 * check and parse only the copy, so what is checked is what is parsed and
 * the strings of the result point into copy, which the caller owns and
 * keeps as long as the result. */
SHMRING_API int shmring_mpr_parse_copy(struct shmring_mpr *r, void *copy, const void *shared,
                                       uint32_t len);

/* Lookups in a parsed map by string key; NULL if absent or not a map. */
SHMRING_API const msgpack_object *shmring_mp_get(const msgpack_object *map, const char *key);
/* The same, typed: 0 on success, -ENOENT if absent, -EBADMSG if another type;
 * the outputs are written either way (NULL/0 on failure). */
SHMRING_API int shmring_mp_get_str(const msgpack_object *map, const char *key, const char **s,
                                   uint32_t *len);
SHMRING_API int shmring_mp_get_uint(const msgpack_object *map, const char *key, uint64_t *v);

#ifdef __cplusplus
}
#endif
#endif
