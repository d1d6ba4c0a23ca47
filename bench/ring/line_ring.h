/* SPDX-License-Identifier: MIT */
/*
 * A measured prototype of a line-aligned ring record format, for bench_ring
 * only (the library's rings do not use it): what a round trip would cost if
 * the consumer polled a word inside the record instead of a separate tail.
 *
 * Format:
 *   - every record starts on a 64 B line: the same 16 B header as today
 *     (word 0: len | type << 32 | flags << 48, word 1: req_id), then the
 *     payload; a record of up to 48 B fits in its first line, a larger one
 *     spills over the lines that follow;
 *   - word 0 is the publication: the producer writes the payload and word 1,
 *     then stores word 0 with release; the consumer polls word 0 of the line
 *     at its head with acquire. There is no shared tail;
 *   - before it publishes a record, the producer clears word 0 of the line
 *     just past it (the next record's start), so the consumer can never read
 *     an earlier lap's bytes as a header: 0 means "not yet". The producer
 *     therefore needs one spare line of space beyond each record;
 *   - the consumer's head stays on its own line, stored when a batch is
 *     released; the producer reads it only when its cached copy says full;
 *   - sleeping (folded waiters flag): a consumer that wants to sleep
 *     compare-and-swaps word 0 at its head from 0 to LR_ARMED; the producer
 *     publishes with an exchange instead of a store, and the old value tells
 *     it whether it must wake the consumer. Either the consumer's CAS sees the
 *     header (no sleep) or the producer's exchange sees LR_ARMED (wake): one
 *     word, one atomic, no separate flag line and no fence.
 *
 * Padding at the ring's end is a record of type 0, as today. Not here (the
 * library would keep them): corrupt-ring checks, counters, and the futex
 * wait itself (the benchmark's consumers never sleep; lr_arm shows the
 * announce).
 */
#ifndef BENCH_LINE_RING_H
#define BENCH_LINE_RING_H

#include "shmring/spin.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define LR_LINE 64u
#define LR_HDR 16u
#define LR_ARMED ((uint64_t)0xffff << 32) /* len 0, type 0xffff: "I sleep here" */

struct lr_shared {
	_Alignas(LR_LINE) _Atomic uint64_t head; /* consumer: bytes ever released */
	uint8_t pad_[LR_LINE - 8];
	_Alignas(LR_LINE) uint8_t data[];
};

/* One process's view of one direction (a private copy after fork). */
struct lr {
	struct lr_shared *sh;
	uint32_t size, mask;
	uint64_t tail, head_cache; /* producer */
	int pad_woke;              /* producer: a padding record found the consumer armed */
	uint64_t head;             /* consumer */
};

static inline uint32_t lr_total(uint32_t len)
{
	return (LR_HDR + len + LR_LINE - 1) & ~(LR_LINE - 1);
}

static inline _Atomic uint64_t *lr_word0(const struct lr *r, uint64_t pos)
{
	return (_Atomic uint64_t *)(r->sh->data + ((uint32_t)pos & r->mask));
}

/* Producer: room for len bytes at tail (plus the next record's first line,
 * cleared at publish); the payload pointer, or NULL when full. */
static inline uint8_t *lr_claim(struct lr *r, uint32_t len)
{
	uint32_t total = lr_total(len);
	uint32_t off = (uint32_t)r->tail & r->mask;
	uint32_t to_end = r->size - off;
	uint32_t pad = to_end < total ? to_end : 0;
	uint64_t need = pad + total + LR_LINE;
	if (r->tail + need - r->head_cache > r->size) {
		r->head_cache = atomic_load_explicit(&r->sh->head, memory_order_acquire);
		if (r->tail + need - r->head_cache > r->size)
			return NULL;
	}
	if (pad) {
		/* Padding is published like a record: with the exchange, since the
		 * consumer may have armed the word it lands on. */
		atomic_store_explicit(lr_word0(r, r->tail + pad), 0, memory_order_relaxed);
		r->pad_woke |= atomic_exchange_explicit(lr_word0(r, r->tail), (uint64_t)pad,
		                                        memory_order_acq_rel) == LR_ARMED;
		r->tail += pad;
	}
	return r->sh->data + ((uint32_t)r->tail & r->mask) + LR_HDR;
}

/* Producer: publish the claimed record; 1 if the consumer had armed its
 * word to sleep (the caller wakes it), 0 otherwise. With `wake` false the
 * publication is a plain release store (a consumer that never sleeps). */
static inline int lr_commit(struct lr *r, uint32_t len, uint16_t type, uint64_t req_id, int wake)
{
	uint8_t *h = r->sh->data + ((uint32_t)r->tail & r->mask);
	uint32_t total = lr_total(len);
	memcpy(h + 8, &req_id, 8);
	atomic_store_explicit(lr_word0(r, r->tail + total), 0, memory_order_relaxed);
	uint64_t w0 = (uint64_t)len | (uint64_t)type << 32;
	r->tail += total;
	if (!wake) {
		atomic_store_explicit((_Atomic uint64_t *)h, w0, memory_order_release);
		return 0;
	}
	int woke = r->pad_woke;
	r->pad_woke = 0;
	return woke | (atomic_exchange_explicit((_Atomic uint64_t *)h, w0, memory_order_acq_rel) ==
	               LR_ARMED);
}

/* Consumer: the record at head, or 0 when there is none yet. */
static inline int lr_peek(struct lr *r, const uint8_t **payload, uint32_t *len, uint16_t *type,
                          uint64_t *req_id)
{
	for (;;) {
		uint64_t w0 = atomic_load_explicit(lr_word0(r, r->head), memory_order_acquire);
		if (w0 == 0 || w0 == LR_ARMED)
			return 0;
		uint32_t l = (uint32_t)w0;
		uint16_t t = (uint16_t)(w0 >> 32);
		const uint8_t *h = r->sh->data + ((uint32_t)r->head & r->mask);
		if (t == 0) { /* padding to the ring's end */
			r->head += l;
			continue;
		}
		memcpy(req_id, h + 8, 8);
		*payload = h + LR_HDR;
		*len = l;
		*type = t;
		r->head += lr_total(l);
		return 1;
	}
}

static inline void lr_release(struct lr *r)
{
	atomic_store_explicit(&r->sh->head, r->head, memory_order_release);
}

/* Consumer: announce a sleep on the word at head; false if a record is
 * already there (do not sleep). A real consumer would then futex-wait on
 * the word's high half (type and flags: 0xffff while armed, never 0xffff in
 * a record); not the low half, which a zero-length record leaves at 0. */
static inline int lr_arm(struct lr *r)
{
	uint64_t empty = 0;
	return atomic_compare_exchange_strong_explicit(lr_word0(r, r->head), &empty, LR_ARMED,
	                                               memory_order_acq_rel, memory_order_acquire);
}

#endif
