/* SPDX-License-Identifier: MIT */
/*
 * A verifiable record stream for the two-process tests: record seq of a
 * stream has a length, type, flags and payload that both sides derive from
 * (stream seed, seq) alone, and its last 8 payload bytes (when it has 8) are
 * an XXH3 checksum of the rest, seeded with seq. A consumer therefore checks
 * every record completely: sequence (nothing lost, duplicated or
 * reordered), header fields, every payload byte, and the checksum.
 */
#ifndef SHMRING_TESTS_CORE_STREAM_H
#define SHMRING_TESTS_CORE_STREAM_H

#include "core/core_util.h"

#include <xxhash.h>

#define STREAM_POOL (1u << 16)
#define STREAM_MAX_LEN 8192u

struct stream {
	uint64_t seed;
	uint32_t max_len;
	uint8_t *pool; /* STREAM_POOL + STREAM_MAX_LEN pseudo-random bytes */
};

static inline int stream_init(struct stream *s, uint64_t seed, uint32_t max_len)
{
	s->seed = seed;
	s->max_len = max_len;
	s->pool = malloc(STREAM_POOL + STREAM_MAX_LEN);
	if (!s->pool)
		return -ENOMEM;
	uint64_t r = seed;
	for (uint32_t i = 0; i < STREAM_POOL + STREAM_MAX_LEN; i += 8) {
		uint64_t v = splitmix64(&r);
		memcpy(s->pool + i, &v, 8);
	}
	return 0;
}

static inline void stream_free(struct stream *s)
{
	free(s->pool);
	s->pool = NULL;
}

static inline uint64_t stream_mix(const struct stream *s, uint64_t seq)
{
	uint64_t x = s->seed ^ (seq * 0x9e3779b97f4a7c15ull);
	return splitmix64(&x);
}

/* 1 .. max_len bytes: half of the records small (<= 256 B), half uniform. */
static inline uint32_t stream_len(const struct stream *s, uint64_t seq)
{
	uint64_t h = stream_mix(s, seq);
	uint32_t cap = (h & 1) ? s->max_len : (s->max_len < 256 ? s->max_len : 256);
	return 1 + (uint32_t)((h >> 8) % cap);
}

static inline uint16_t stream_type(uint64_t seq)
{
	return (uint16_t)(1 + seq % 5);
}

static inline uint16_t stream_flags(const struct stream *s, uint64_t seq)
{
	return (uint16_t)(stream_mix(s, seq) >> 48);
}

static inline const uint8_t *stream_src(const struct stream *s, uint64_t seq)
{
	return s->pool + (stream_mix(s, seq) >> 20) % STREAM_POOL;
}

/* Fill dst (stream_len(seq) bytes) with record seq's payload. */
static inline void stream_fill(const struct stream *s, uint64_t seq, uint8_t *dst, uint32_t len)
{
	memcpy(dst, stream_src(s, seq), len);
	if (len >= 8) {
		uint64_t sum = XXH3_64bits_withSeed(dst, len - 8, seq);
		memcpy(dst + len - 8, &sum, 8);
	}
}

/* 0 if rec is record seq of the stream, else a static reason. */
static inline const char *stream_check(const struct stream *s, uint64_t seq,
                                       const struct shmring_rec *rec)
{
	if (rec->req_id != seq)
		return rec->req_id < seq ? "duplicated or reordered record" : "lost record";
	uint32_t len = stream_len(s, seq);
	if (rec->len != len)
		return "wrong length";
	if (rec->type != stream_type(seq) || rec->flags != stream_flags(s, seq))
		return "wrong type or flags";
	if (len >= 8) {
		uint64_t sum;
		memcpy(&sum, rec->payload + len - 8, 8);
		if (sum != XXH3_64bits_withSeed(rec->payload, len - 8, seq))
			return "checksum mismatch";
		len -= 8;
	}
	if (memcmp(rec->payload, stream_src(s, seq), len) != 0)
		return "payload bytes differ";
	return NULL;
}

/* Produce record seq: 0, SHMRING_FULL, or -errno. Claims up to extra bytes
 * more than needed and commits the exact length (a shrinking commit). */
static inline int stream_put(const struct stream *s, struct shmring_chan *c, uint64_t seq,
                             uint32_t extra)
{
	uint32_t len = stream_len(s, seq);
	uint32_t cap = len + extra;
	if (cap > shmring_chan_max_payload(c))
		cap = len;
	struct shmring_claim cl;
	int rc = shmring_claim(c, cap, &cl);
	if (rc != 0)
		return rc;
	stream_fill(s, seq, cl.payload, len);
	return shmring_commit(c, &cl, len, stream_type(seq), stream_flags(s, seq), seq);
}

#endif
