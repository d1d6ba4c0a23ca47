/* SPDX-License-Identifier: MIT */
/* The plugin host: the reply builder of shmring_plugin.h. The reply is
 * msgpack written by hand into a private buffer (one pass, no packer
 * callbacks), then copied into the CQ with one claim; the "a" array gets a
 * 5-byte array32 header patched at the end so actions can be appended
 * without knowing their number. */
#include "daemon.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reply builder --------------------------------------------------------- */

/* Make room for n more bytes; false (and failed set) if the reply would pass
 * the channel's max payload. */
static bool room(struct shmring_reply *r, size_t n)
{
	if (r->failed)
		return false;
	if (r->len + n <= r->cap)
		return true;
	if (r->len + n > r->max) {
		r->failed = 1;
		return false;
	}
	uint32_t cap = r->cap ? r->cap : 4096;
	while (cap < r->len + n)
		cap *= 2;
	if (cap > r->max)
		cap = r->max;
	uint8_t *b = realloc(r->buf, cap);
	if (!b) {
		r->failed = 1;
		return false;
	}
	r->buf = b;
	r->cap = cap;
	return true;
}

static void put_u8(struct shmring_reply *r, uint8_t b)
{
	if (room(r, 1))
		r->buf[r->len++] = b;
}

static void put_be(struct shmring_reply *r, uint8_t tag, uint64_t v, int bytes)
{
	if (!room(r, 1 + (size_t)bytes))
		return;
	r->buf[r->len++] = tag;
	for (int i = bytes - 1; i >= 0; i--)
		r->buf[r->len++] = (uint8_t)(v >> (8 * i));
}

static void put_uint(struct shmring_reply *r, uint64_t v)
{
	if (v < 128)
		put_u8(r, (uint8_t)v);
	else if (v < 256)
		put_be(r, 0xcc, v, 1);
	else if (v < 65536)
		put_be(r, 0xcd, v, 2);
	else if (v <= UINT32_MAX)
		put_be(r, 0xce, v, 4);
	else
		put_be(r, 0xcf, v, 8);
}

static void put_str(struct shmring_reply *r, const char *p, size_t n)
{
	if (n > UINT32_MAX) {
		r->failed = 1;
		return;
	}
	if (n < 32)
		put_u8(r, (uint8_t)(0xa0 | n));
	else if (n < 256)
		put_be(r, 0xd9, n, 1);
	else if (n < 65536)
		put_be(r, 0xda, n, 2);
	else
		put_be(r, 0xdb, n, 4);
	if (n && room(r, n)) {
		memcpy(r->buf + r->len, p, n);
		r->len += (uint32_t)n;
	}
}

static void put_sstr(struct shmring_reply *r, struct shmring_str s)
{
	put_str(r, s.ptr, s.len);
}

static void put_array(struct shmring_reply *r, uint32_t n)
{
	if (n < 16)
		put_u8(r, (uint8_t)(0x90 | n));
	else if (n < 65536)
		put_be(r, 0xdc, n, 2);
	else
		put_be(r, 0xdd, n, 4);
}

static void put_map(struct shmring_reply *r, uint32_t n)
{
	if (n < 16)
		put_u8(r, (uint8_t)(0x80 | n));
	else if (n < 65536)
		put_be(r, 0xde, n, 2);
	else
		put_be(r, 0xdf, n, 4);
}

void shmringd__reply_begin(struct shmring_reply *r, uint32_t max_payload)
{
	r->max = max_payload;
	r->len = 0;
	r->nact = 0;
	r->failed = 0;
	r->error_set = 0;
	r->exhausted = 0;
	r->error[0] = '\0';
	/* {"s": SHMRING_REPLY_OK, "a": array32(n)} */
	put_u8(r, 0x82);
	put_str(r, "s", 1);
	put_uint(r, SHMRING_REPLY_OK);
	put_str(r, "a", 1);
	r->arr_off = r->len;
	put_be(r, 0xdd, 0, 4);
}

uint32_t shmringd__reply_status(struct shmring_reply *r, enum shmring_reply_status status,
                                const char *error)
{
	r->len = 0;
	r->failed = 0;
	put_u8(r, error ? 0x82 : 0x81);
	put_str(r, "s", 1);
	put_uint(r, status);
	if (error) {
		size_t n = strlen(error);
		put_str(r, "e", 1);
		/* Room for the message is bounded by error[] and the first 4 KiB
		 * buffer, which always fits a channel record. */
		put_str(r, error, n);
	}
	return r->len;
}

uint32_t shmringd__reply_need_entities(struct shmring_reply *r, const uint32_t *kinds,
                                       const struct shmring_str *keys, uint32_t n)
{
	r->len = 0;
	r->failed = 0;
	r->error_set = 0;
	put_u8(r, 0x82);
	put_str(r, "s", 1);
	put_uint(r, SHMRING_REPLY_NEED_ENTITIES);
	put_str(r, "a", 1);
	put_array(r, n);
	for (uint32_t i = 0; i < n; i++) {
		put_array(r, 3);
		put_uint(r, SHMRING_ACT_LOOKUP);
		put_uint(r, kinds[i]);
		put_sstr(r, keys[i]);
	}
	if (r->failed)
		return shmringd__reply_status(
		    r, SHMRING_REPLY_ERROR,
		    "entity look-ups larger than the channel's record size");
	return r->len;
}

uint32_t shmringd__reply_finish(struct shmring_reply *r, const char *fallback_error)
{
	if (r->error_set || fallback_error || r->failed) {
		const char *msg = r->error_set ? r->error
		                  : r->failed  ? "reply larger than the channel's record size"
		                               : fallback_error;
		char copy[sizeof(r->error)];
		snprintf(copy, sizeof(copy), "%s", msg);
		return shmringd__reply_status(r, SHMRING_REPLY_ERROR, copy);
	}
	uint8_t *p = r->buf + r->arr_off + 1;
	p[0] = (uint8_t)(r->nact >> 24);
	p[1] = (uint8_t)(r->nact >> 16);
	p[2] = (uint8_t)(r->nact >> 8);
	p[3] = (uint8_t)r->nact;
	return r->len;
}

static int act_done(struct shmring_reply *r)
{
	if (r->failed)
		return -EMSGSIZE;
	r->nact++;
	return 0;
}

/* msgpack bytes of a str header for n bytes of string (n <= UINT32_MAX). */
static size_t str_hdr_len(size_t n)
{
	return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

/* Write a str (header + bytes) at p, which has room for it; returns the end. */
static uint8_t *raw_str(uint8_t *p, struct shmring_str s)
{
	size_t n = s.len;
	if (n < 32) {
		*p++ = (uint8_t)(0xa0 | n);
	} else if (n < 256) {
		*p++ = 0xd9;
		*p++ = (uint8_t)n;
	} else if (n < 65536) {
		*p++ = 0xda;
		*p++ = (uint8_t)(n >> 8);
		*p++ = (uint8_t)n;
	} else {
		*p++ = 0xdb;
		*p++ = (uint8_t)(n >> 24);
		*p++ = (uint8_t)(n >> 16);
		*p++ = (uint8_t)(n >> 8);
		*p++ = (uint8_t)n;
	}
	if (n)
		memcpy(p, s.ptr, n);
	return p + n;
}

/* [op, a] or [op, a, b]: the exact size reserved once, then written without
 * a bounds check per byte (this was ~40% of key-auth's hook when every
 * byte went through room()). */
static int act_strs(struct shmring_reply *r, enum shmring_action_op op, struct shmring_str a,
                    const struct shmring_str *b)
{
	if (a.len > UINT32_MAX || (b && b->len > UINT32_MAX)) {
		r->failed = 1;
		return -EMSGSIZE;
	}
	/* fixarray + positive fixint op (every action number is < 128) */
	size_t need = 2 + str_hdr_len(a.len) + a.len + (b ? str_hdr_len(b->len) + b->len : 0);
	if (!room(r, need))
		return -EMSGSIZE;
	uint8_t *p = r->buf + r->len;
	*p++ = (uint8_t)(0x90 | (b ? 3 : 2));
	*p++ = (uint8_t)op;
	p = raw_str(p, a);
	if (b)
		p = raw_str(p, *b);
	r->len = (uint32_t)(p - r->buf);
	return act_done(r);
}

static int act2(struct shmring_reply *r, enum shmring_action_op op, struct shmring_str a,
                struct shmring_str b)
{
	return act_strs(r, op, a, &b);
}

static int act1(struct shmring_reply *r, enum shmring_action_op op, struct shmring_str a)
{
	return act_strs(r, op, a, NULL);
}

SHMRING_HOST_API int shmring_reply_set_req_header(struct shmring_reply *r, struct shmring_str name,
                                                  struct shmring_str value)
{
	return act2(r, SHMRING_ACT_SET_REQ_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_add_req_header(struct shmring_reply *r, struct shmring_str name,
                                                  struct shmring_str value)
{
	return act2(r, SHMRING_ACT_ADD_REQ_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_clear_req_header(struct shmring_reply *r,
                                                    struct shmring_str name)
{
	return act1(r, SHMRING_ACT_CLEAR_REQ_HEADER, name);
}

SHMRING_HOST_API int shmring_reply_set_path(struct shmring_reply *r, struct shmring_str path)
{
	return act1(r, SHMRING_ACT_SET_PATH, path);
}

SHMRING_HOST_API int shmring_reply_set_query(struct shmring_reply *r, struct shmring_str query)
{
	return act1(r, SHMRING_ACT_SET_QUERY, query);
}

SHMRING_HOST_API int shmring_reply_set_method(struct shmring_reply *r, struct shmring_str method)
{
	return act1(r, SHMRING_ACT_SET_METHOD, method);
}

SHMRING_HOST_API int shmring_reply_set_body(struct shmring_reply *r, struct shmring_str body)
{
	return act1(r, SHMRING_ACT_SET_BODY, body);
}

SHMRING_HOST_API int shmring_reply_set_resp_header(struct shmring_reply *r, struct shmring_str name,
                                                   struct shmring_str value)
{
	return act2(r, SHMRING_ACT_SET_RESP_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_add_resp_header(struct shmring_reply *r, struct shmring_str name,
                                                   struct shmring_str value)
{
	return act2(r, SHMRING_ACT_ADD_RESP_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_exit(struct shmring_reply *r, uint32_t status,
                                        struct shmring_str body,
                                        const struct shmring_header *headers, size_t nheaders)
{
	if (nheaders > UINT32_MAX / 2)
		return -EINVAL;
	put_array(r, 4);
	put_uint(r, SHMRING_ACT_EXIT);
	put_uint(r, status);
	put_sstr(r, body);
	put_map(r, (uint32_t)nheaders);
	for (size_t i = 0; i < nheaders; i++) {
		put_sstr(r, headers[i].name);
		put_sstr(r, headers[i].value);
	}
	return act_done(r);
}

SHMRING_HOST_API int shmring_reply_set_ctx(struct shmring_reply *r, struct shmring_str key,
                                           struct shmring_str value)
{
	return act2(r, SHMRING_ACT_SET_CTX, key, value);
}

SHMRING_HOST_API int shmring_reply_authenticate(struct shmring_reply *r,
                                                struct shmring_str consumer_id,
                                                struct shmring_str username,
                                                struct shmring_str custom_id,
                                                struct shmring_str credential)
{
	uint32_t n = (consumer_id.len > 0) + (username.len > 0) + (custom_id.len > 0);
	put_array(r, 3);
	put_uint(r, SHMRING_ACT_AUTHENTICATE);
	put_map(r, n);
	if (consumer_id.len) {
		put_str(r, "id", 2);
		put_sstr(r, consumer_id);
	}
	if (username.len) {
		put_str(r, "username", 8);
		put_sstr(r, username);
	}
	if (custom_id.len) {
		put_str(r, "custom_id", 9);
		put_sstr(r, custom_id);
	}
	if (credential.len)
		put_sstr(r, credential);
	else
		put_u8(r, 0xc0); /* nil */
	return act_done(r);
}

SHMRING_HOST_API int shmring_reply_log(struct shmring_reply *r, enum shmring_log_level level,
                                       struct shmring_str msg)
{
	if ((unsigned)level > SHMRING_LOG_DEBUG)
		return -EINVAL;
	put_array(r, 3);
	put_uint(r, SHMRING_ACT_LOG);
	put_uint(r, (uint64_t)level);
	put_sstr(r, msg);
	return act_done(r);
}

SHMRING_HOST_API int shmring_reply_error(struct shmring_reply *r, struct shmring_str msg)
{
	size_t n = msg.len < sizeof(r->error) - 1 ? msg.len : sizeof(r->error) - 1;
	if (n)
		memcpy(r->error, msg.ptr, n);
	r->error[n] = '\0';
	r->error_set = 1;
	return 0;
}

SHMRING_HOST_API void shmring_reply_exhausted(struct shmring_reply *r)
{
	r->exhausted = 1; /* counted by the dispatcher, per plugin */
}
