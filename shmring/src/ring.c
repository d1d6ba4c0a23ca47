/* SPDX-License-Identifier: MIT */
/* The SPSC byte rings: claim/commit/publish on the producer side,
 * peek/release on the consumer side, and the wakeups between them.
 *
 * The producer owns tail, the consumer owns head. Each side keeps a private
 * copy of the other's position and re-reads it only when that copy says the
 * ring is full (producer) or empty (consumer), so a busy ring costs one
 * shared-line read per batch, not per record. */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline uint32_t rec_total(uint32_t len)
{
	return (SHMRING_REC_HDR + len + 7u) & ~7u;
}

static inline uint64_t rec_word0(uint32_t len, uint16_t type, uint16_t flags)
{
	return (uint64_t)len | ((uint64_t)type << 32) | ((uint64_t)flags << 48);
}

static int ring_corrupt(struct shmring_chan *c)
{
	if (!c->broken) {
		c->broken = true;
		c->mine->corrupt++;
	}
	return -EPROTO;
}

/* ---- producer ---------------------------------------------------------- */

/* An open claim lies in the producer's own unpublished space: at most one
 * padding record past tail (positions are free-running and may wrap at
 * 2^64, so the distance is taken modulo), 8-byte aligned, no larger than a
 * record may be. */
#ifndef NDEBUG /* used in asserts only */
static bool claim_in_own_space(const struct shmring__ring *r)
{
	return r->claim_open && r->claim_pos - r->tail < r->size && (r->claim_pos & 7) == 0 &&
	       r->claim_cap <= r->max_payload;
}
#endif

int shmring_claim(struct shmring_chan *c, uint32_t len, struct shmring_claim *claim)
{
	struct shmring__ring *r = &c->out;
	claim->payload = NULL;
	claim->cap = 0;
	if (c->broken)
		return -EPROTO;
	if (len > r->max_payload)
		return -EMSGSIZE;
	if (r->claim_open)
		return -EBUSY;
	if (c->role == SHMRING_CLIENT && shmring__chan_closed(c))
		return -EPIPE;

	uint32_t total = rec_total(len);
	uint64_t pos = r->tail;
	uint32_t off = (uint32_t)pos & r->mask;
	uint32_t to_end = r->size - off;
	uint32_t pad = to_end < total ? to_end : 0;
	uint64_t need = (uint64_t)pad + total;

	if (pos + need - r->head_cache > r->size) {
		/* Acquire pairs with the consumer's release of head in
		 * shmring_release(): its reads of those bytes are done. */
		uint64_t head = atomic_load_explicit(r->head_p, memory_order_acquire);
		if (head < r->head_cache || head > pos || (head & 7))
			return ring_corrupt(c);
		r->head_cache = head;
		if (pos + need - head > r->size) {
			c->mine->full++;
			return SHMRING_FULL;
		}
	}
	if (pad)
		__atomic_store_n((uint64_t *)(r->data + off), rec_word0(pad, SHMRING_REC_PAD, 0),
		                 __ATOMIC_RELAXED);
	r->claim_pos = pos + pad;
	r->claim_cap = len;
	r->claim_open = true;
	assert(claim_in_own_space(r));
	claim->payload = r->data + ((uint32_t)r->claim_pos & r->mask) + SHMRING_REC_HDR;
	claim->cap = len;
	return 0;
}

int shmring_commit(struct shmring_chan *c, struct shmring_claim *claim, uint32_t len, uint16_t type,
                   uint16_t flags, uint64_t req_id)
{
	struct shmring__ring *r = &c->out;
	if (!r->claim_open)
		return -EINVAL;
	assert(claim_in_own_space(r));
	if (len > r->claim_cap || type == SHMRING_REC_PAD) {
		shmring_abort(c, claim);
		return -EINVAL;
	}
	uint8_t *h = r->data + ((uint32_t)r->claim_pos & r->mask);
	__atomic_store_n((uint64_t *)h, rec_word0(len, type, flags), __ATOMIC_RELAXED);
	__atomic_store_n((uint64_t *)(h + 8), req_id, __ATOMIC_RELAXED);
	r->tail = r->claim_pos + rec_total(len);
	r->claim_open = false;
	claim->payload = NULL;
	claim->cap = 0;
	/* Counted at publish: a per-record store to the shared counter line
	 * costs a line transfer whenever the peer's prefetcher touched it. */
	r->pend_records++;
	r->pend_bytes += len;
	return 0;
}

void shmring_abort(struct shmring_chan *c, struct shmring_claim *claim)
{
	c->out.claim_open = false;
	claim->payload = NULL;
	claim->cap = 0;
}

int shmring_publish(struct shmring_chan *c)
{
	struct shmring__ring *r = &c->out;
	/* Release pairs with the consumer's acquire load of tail in
	 * shmring_peek(): the records' bytes are visible before the tail. */
	if (atomic_load_explicit(r->tail_p, memory_order_relaxed) != r->tail)
		atomic_store_explicit(r->tail_p, r->tail, memory_order_release);
	if (r->pend_records) {
		c->mine->records += r->pend_records;
		c->mine->bytes += r->pend_bytes;
		r->pend_records = r->pend_bytes = 0;
	}

	if (c->role == SHMRING_CLIENT) {
		uint32_t slot = atomic_load_explicit(&c->hdr->server_slot, memory_order_relaxed);
		struct shmring_event *ev = shmring_instance_worker_event(c->inst, slot);
		if (ev && shmring_event_notify(ev))
			c->mine->wakeups++;
		return 0;
	}
	/* Server: the seq_cst fence orders our tail store before the armed
	 * load; it pairs with the fence in shmring_doorbell_arm(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&c->hdr->cq_armed, memory_order_relaxed) &&
	    atomic_exchange_explicit(&c->hdr->cq_armed, 0, memory_order_relaxed)) {
		c->mine->wakeups++;
		return 1;
	}
	return 0;
}

int shmring_send(struct shmring_chan *c, uint16_t type, uint64_t req_id, const void *payload,
                 uint32_t len)
{
	struct shmring_claim cl;
	int rc = shmring_claim(c, len, &cl);
	if (rc != 0)
		return rc;
	if (len)
		memcpy(cl.payload, payload, len);
	return shmring_commit(c, &cl, len, type, 0, req_id);
}

uint32_t shmring_space(struct shmring_chan *c)
{
	struct shmring__ring *r = &c->out;
	uint64_t head = atomic_load_explicit(r->head_p, memory_order_acquire);
	if (head >= r->head_cache && head <= r->tail)
		r->head_cache = head;
	return r->size - (uint32_t)(r->tail - r->head_cache);
}

/* ---- consumer ---------------------------------------------------------- */

/* Refresh the private copy of tail; 0 if records may be read, SHMRING_EMPTY,
 * or -EPROTO. */
static int refresh_tail(struct shmring_chan *c, struct shmring__ring *r)
{
	if (r->head != r->tail_cache)
		return 0;
	/* Acquire pairs with the producer's release store in shmring_publish(). */
	uint64_t tail = atomic_load_explicit(r->tail_p, memory_order_acquire);
	if (tail < r->head || tail - r->head > r->size || (tail & 7))
		return ring_corrupt(c);
	r->tail_cache = tail;
	return tail == r->head ? SHMRING_EMPTY : 0;
}

int shmring_peek(struct shmring_chan *c, struct shmring_rec *rec)
{
	struct shmring__ring *r = &c->in;
	memset(rec, 0, sizeof(*rec));
	if (c->broken)
		return -EPROTO;
	/* At most two rounds: a padding record, then a real one at offset 0. */
	for (int round = 0; round < 2; round++) {
		int rc = refresh_tail(c, r);
		if (rc != 0)
			return rc;
		uint64_t pos = r->head;
		uint64_t avail = r->tail_cache - pos;
		uint32_t off = (uint32_t)pos & r->mask;
		uint32_t to_end = r->size - off;
		/* Read the header once; everything below checks the copy. */
		uint64_t w0 = __atomic_load_n((const uint64_t *)(r->data + off), __ATOMIC_RELAXED);
		uint32_t len = (uint32_t)w0;
		uint16_t type = (uint16_t)(w0 >> 32);
		if (type == SHMRING_REC_PAD) {
			if (off == 0 || len != to_end || avail < to_end)
				return ring_corrupt(c);
			r->head = pos + to_end;
			continue;
		}
		if (to_end < SHMRING_REC_HDR || len > r->max_payload)
			return ring_corrupt(c);
		uint32_t total = rec_total(len);
		if (total > to_end || total > avail)
			return ring_corrupt(c);
		rec->req_id =
		    __atomic_load_n((const uint64_t *)(r->data + off + 8), __ATOMIC_RELAXED);
		rec->payload = r->data + off + SHMRING_REC_HDR;
		rec->len = len;
		rec->type = type;
		rec->flags = (uint16_t)(w0 >> 48);
		r->head = pos + total;
		r->pend_consumed++; /* counted at release, like records at publish */
		return 0;
	}
	return ring_corrupt(c);
}

void shmring_release(struct shmring_chan *c)
{
	struct shmring__ring *r = &c->in;
	/* Release pairs with the producer's acquire load of head in
	 * shmring_claim(): we are done reading the bytes before head. */
	if (atomic_load_explicit(r->head_p, memory_order_relaxed) != r->head)
		atomic_store_explicit(r->head_p, r->head, memory_order_release);
	if (r->pend_consumed) {
		c->mine->consumed += r->pend_consumed;
		r->pend_consumed = 0;
	}
}

int shmring_ready(struct shmring_chan *c)
{
	if (c->broken)
		return -EPROTO;
	int rc = refresh_tail(c, &c->in);
	return rc < 0 ? rc : rc == 0;
}

/* ---- wakeups ----------------------------------------------------------- */

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	/* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

uint32_t shmring_event_prepare(struct shmring_event *ev)
{
	uint32_t key = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);
	__atomic_store_n(&ev->waiters, 1, __ATOMIC_RELAXED);
	/* Pairs with the fence in shmring_event_notify(): either the producer
	 * sees waiters = 1, or our re-check of the rings sees its records. */
	atomic_thread_fence(memory_order_seq_cst);
	return key;
}

int shmring_event_wait(struct shmring_event *ev, uint32_t key, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	long rc = futex(&ev->seq, FUTEX_WAIT, key, tsp);
	if (rc == 0 || errno == EAGAIN)
		return 0;
	return -errno;
}

void shmring_event_cancel(struct shmring_event *ev)
{
	__atomic_store_n(&ev->waiters, 0, __ATOMIC_RELAXED);
}

int shmring_event_notify(struct shmring_event *ev)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (!__atomic_load_n(&ev->waiters, __ATOMIC_RELAXED) ||
	    !__atomic_exchange_n(&ev->waiters, 0, __ATOMIC_ACQ_REL))
		return 0;
	/* Exactly one wake per announced sleep: only the producer that took
	 * the waiters flag bumps seq and calls futex_wake. */
	__atomic_fetch_add(&ev->seq, 1, __ATOMIC_RELEASE);
	futex(&ev->seq, FUTEX_WAKE, INT_MAX, NULL);
	return 1;
}

int shmring_doorbell_arm(struct shmring_chan *c)
{
	atomic_store_explicit(&c->hdr->cq_armed, 1, memory_order_relaxed);
	/* Pairs with the fence in shmring_publish() (server side). */
	atomic_thread_fence(memory_order_seq_cst);
	int ready = shmring_ready(c);
	if (ready != 0) {
		atomic_store_explicit(&c->hdr->cq_armed, 0, memory_order_relaxed);
		return ready < 0 ? ready : 1;
	}
	return 0;
}

void shmring_doorbell_disarm(struct shmring_chan *c)
{
	atomic_store_explicit(&c->hdr->cq_armed, 0, memory_order_relaxed);
}
