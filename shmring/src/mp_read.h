/* SPDX-License-Identifier: MIT */
/* Private to libshmring: msgpack read in place (the gateway's reply
 * decoder, the bounds check before msgpack-c's parse). Inline, because the
 * reply decoder calls it for every value. */
#ifndef SHMRING_MP_READ_H
#define SHMRING_MP_READ_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* Reading in place: a cursor over one payload, value heads read one at a
 * time, no object tree, no allocation. Every step is bounds checked; a head
 * is refused (-EBADMSG) if it is truncated, is the unused byte 0xc1, is a
 * string/binary/ext longer than the bytes left, or a container whose count
 * the bytes left could not hold (a value takes a byte at least). */
struct shmring_mpc {
	const uint8_t *p;
	uint32_t len;
	uint32_t off; /* next byte to read */
};

enum shmring_mpv_kind {
	SHMRING_MPV_NIL,
	SHMRING_MPV_BOOL,  /* u: 0 or 1 */
	SHMRING_MPV_UINT,  /* u: any integer >= 0, whatever its encoding (as msgpack-c) */
	SHMRING_MPV_INT,   /* i: an integer < 0 */
	SHMRING_MPV_FLOAT, /* the value is not read */
	SHMRING_MPV_STR,   /* ptr, n bytes */
	SHMRING_MPV_BIN,   /* ptr, n bytes */
	SHMRING_MPV_EXT,   /* ptr: type byte, then n bytes of data */
	SHMRING_MPV_ARRAY, /* n values follow */
	SHMRING_MPV_MAP,   /* n key/value pairs follow */
};

struct shmring_mpv {
	enum shmring_mpv_kind kind;
	uint32_t n;
	const uint8_t *ptr;
	union {
		uint64_t u;
		int64_t i;
	};
};

/* Nesting a payload may have: msgpack-c's unpacker stack. A container is
 * refused where this many non-empty containers are already open. */
#define SHMRING_MP_MAX_DEPTH 32

/* Step past the rest of the value whose head was just read: nothing for a
 * scalar, every value inside for a container. depth is the number of
 * non-empty containers open around the value (0 for the payload's root), for
 * the nesting bound. 0 or -EBADMSG. */
int shmring__mpc_skip_container(struct shmring_mpc *c, const struct shmring_mpv *head,
                                unsigned depth);
static inline int shmring_mpc_skip(struct shmring_mpc *c, const struct shmring_mpv *head,
                                   unsigned depth)
{
	if (head->kind != SHMRING_MPV_ARRAY && head->kind != SHMRING_MPV_MAP)
		return 0;
	return shmring__mpc_skip_container(c, head, depth);
}

/* Big-endian length field of n bytes at the cursor, if the buffer has it. */
static inline bool mpc_be(struct shmring_mpc *c, unsigned n, uint64_t *v)
{
	if (c->len - c->off < n)
		return false;
	uint64_t x = 0;
	for (unsigned i = 0; i < n; i++)
		x = x << 8 | c->p[c->off + i];
	c->off += n;
	*v = x;
	return true;
}

/* Read the head of the next value and step past it: past a scalar's bytes
 * whole, past only a container's header (its values follow). 0 or -EBADMSG. */
__attribute__((always_inline)) static inline int shmring_mpc_head(struct shmring_mpc *c,
                                                                  struct shmring_mpv *v)
{
	if (c->off >= c->len)
		return -EBADMSG;
	uint8_t b = c->p[c->off++];
	uint64_t n = 0, skip = 0;
	v->ptr = NULL;
	v->n = 0;
	v->u = 0;
	if (b <= 0x7f) {
		v->kind = SHMRING_MPV_UINT, v->u = b;
		return 0;
	}
	if (b >= 0xe0) {
		v->kind = SHMRING_MPV_INT, v->i = (int8_t)b;
		return 0;
	}
	if (b <= 0x8f) {
		v->kind = SHMRING_MPV_MAP, n = b & 0x0f;
	} else if (b <= 0x9f) {
		v->kind = SHMRING_MPV_ARRAY, n = b & 0x0f;
	} else if (b <= 0xbf) {
		v->kind = SHMRING_MPV_STR, skip = b & 0x1f;
	} else {
		switch (b) {
		case 0xc0:
			v->kind = SHMRING_MPV_NIL;
			return 0;
		case 0xc2 ... 0xc3:
			v->kind = SHMRING_MPV_BOOL, v->u = b == 0xc3;
			return 0;
		case 0xc4 ... 0xc6: /* bin 8/16/32 */
			v->kind = SHMRING_MPV_BIN;
			if (!mpc_be(c, 1u << (b - 0xc4), &skip))
				return -EBADMSG;
			break;
		case 0xc7 ... 0xc9: /* ext 8/16/32: length, type, data */
			v->kind = SHMRING_MPV_EXT;
			if (!mpc_be(c, 1u << (b - 0xc7), &skip))
				return -EBADMSG;
			skip += 1;
			break;
		case 0xca ... 0xcb: /* float 32/64 (the value is not read) */
			v->kind = SHMRING_MPV_FLOAT, skip = b == 0xca ? 4 : 8;
			break;
		case 0xcc ... 0xcf: /* uint 8..64 */
			v->kind = SHMRING_MPV_UINT;
			if (!mpc_be(c, 1u << (b - 0xcc), &v->u))
				return -EBADMSG;
			return 0;
		case 0xd0 ... 0xd3: { /* int 8..64: sign-extended; >= 0 is a uint, as in msgpack-c
			               */
			unsigned bytes = 1u << (b - 0xd0);
			uint64_t x;
			if (!mpc_be(c, bytes, &x))
				return -EBADMSG;
			if (bytes < 8 && x >> (bytes * 8 - 1))
				x |= ~(uint64_t)0 << (bytes * 8);
			v->u = x;
			v->kind = v->i < 0 ? SHMRING_MPV_INT : SHMRING_MPV_UINT;
			return 0;
		}
		case 0xd4 ... 0xd8: /* fixext 1..16: type, data */
			v->kind = SHMRING_MPV_EXT, skip = 1 + (1u << (b - 0xd4));
			break;
		case 0xd9 ... 0xdb: /* str 8/16/32 */
			v->kind = SHMRING_MPV_STR;
			if (!mpc_be(c, 1u << (b - 0xd9), &skip))
				return -EBADMSG;
			break;
		case 0xdc ... 0xdd: /* array 16/32 */
			v->kind = SHMRING_MPV_ARRAY;
			if (!mpc_be(c, b == 0xdc ? 2 : 4, &n))
				return -EBADMSG;
			break;
		case 0xde ... 0xdf: /* map 16/32 */
			v->kind = SHMRING_MPV_MAP;
			if (!mpc_be(c, b == 0xde ? 2 : 4, &n))
				return -EBADMSG;
			break;
		default: /* 0xc1, never used */
			return -EBADMSG;
		}
	}
	if (v->kind == SHMRING_MPV_ARRAY || v->kind == SHMRING_MPV_MAP) {
		/* Every value inside needs a byte at least. */
		if ((v->kind == SHMRING_MPV_MAP ? n * 2 : n) > c->len - c->off)
			return -EBADMSG;
		v->n = (uint32_t)n;
		return 0;
	}
	if (skip > c->len - c->off)
		return -EBADMSG;
	v->ptr = c->p + c->off;
	v->n = (uint32_t)(v->kind == SHMRING_MPV_EXT ? skip - 1 : skip);
	c->off += (uint32_t)skip;
	return 0;
}

#endif
