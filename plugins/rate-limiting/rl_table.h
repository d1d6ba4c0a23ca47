/* SPDX-License-Identifier: MIT */
/*
 * rl_table.h: rate-limiting's counter table, a view over memory shared by
 * every shmringd worker of a host (shmring_shared_region), updated with
 * atomics only, so counting is exact across workers.
 *
 * Layout (all little-endian native words, zero bytes = empty table):
 *
 *   offset 0     struct rl_header (64 bytes)
 *   offset 64    nbuckets x struct rl_bucket (128 bytes = 2 cache lines each)
 *
 *   rl_header    magic   CAS 0 -> RL_MAGIC by the first worker that attaches
 *                        (geometry is fixed by the region's name and size)
 *                inserts, evictions, full, lock_timeouts: relaxed counters,
 *                any worker
 *   rl_bucket    lock    0 = free, else the tid of the worker inserting a key
 *                        into this bucket (insertion only; counting is
 *                        lock-free). A dead holder's lock is taken over.
 *                slot[7] {key, state}
 *
 *   slot.key     0 = empty. Else XXH3-64 of (config, period, route, service,
 *                identifier) with bit 0 = algorithm (0 fixed window, 1 token
 *                bucket). Written only under the bucket lock. A key lives in
 *                one of two buckets: (key >> 1) & mask or (key >> 33) & mask
 *                (the next bucket if both are the same); a new key goes to
 *                the one with more empty slots ("two choices": buckets stay
 *                even, so the first key is refused near 67% load rather
 *                than ~12% with one bucket per key). An insertion holds both
 *                buckets' locks, lowest address first.
 *   slot.state   fixed window: (window end, seconds since RL_EPOCH) << 32 |
 *                count in that window. Token bucket (GCRA form): the bucket's
 *                "theoretical arrival time", ns since RL_EPOCH: the bucket is
 *                full when it is <= now, and holds (now + burst*T - tat) / T
 *                tokens, T = period / limit. 0 is a fresh counter in both
 *                forms, so an empty or reset slot needs no initialization.
 *                RL_LOCKED while a worker evicts the slot under the lock.
 *
 * Every counter update is one CAS on slot.state. A reader validates that
 * slot.key still names its key AFTER loading state with acquire; an evictor
 * first CASes the old state to RL_LOCKED (which makes every in-flight CAS of
 * a reader fail), then writes the new key, then releases the fresh state.
 * So a reader either sees the new key and looks again, or its CAS fails.
 * Only counters expired for RL_EVICT_GRACE_S (window over, bucket full) are
 * evicted, so no count that still matters is ever dropped.
 */
#ifndef RL_TABLE_H
#define RL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RL_MAGIC 0x32764c5247524853ull /* "SHRGRLv2" (v1: one bucket per key) */
#define RL_EPOCH 1577836800ull         /* 2020-01-01T00:00:00Z */
#define RL_LOCKED UINT64_MAX
#define RL_SLOTS 7
#define RL_EVICT_GRACE_S 1 /* a counter is evictable this long after it expired */

struct rl_slot {
	uint64_t key;   /* see above; 0 = empty */
	uint64_t state; /* see above; 0 = fresh */
};

struct rl_bucket {
	uint64_t lock; /* tid of the inserter, 0 = free */
	uint64_t pad_;
	struct rl_slot slot[RL_SLOTS];
};

struct rl_header {
	uint64_t magic;
	uint64_t inserts;       /* keys placed in an empty slot */
	uint64_t evictions;     /* expired keys replaced */
	uint64_t full;          /* a key found no empty or expired slot */
	uint64_t host_id;       /* CAS 0 -> random by the first rl_host_id() caller */
	uint64_t lock_timeouts; /* a bucket lock held past any real holder's time */
	uint64_t pad_[2];
};

/* The view (per process). */
struct rl_table {
	struct rl_header *hdr;
	struct rl_bucket *buckets;
	uint64_t mask; /* nbuckets - 1 */
};

/* Bytes needed for nbuckets (a power of two). */
static inline size_t rl_table_bytes(uint64_t nbuckets)
{
	return sizeof(struct rl_header) + nbuckets * sizeof(struct rl_bucket);
}

/* Attach a view over mem (zero-filled or already in use). 0, or -EINVAL
 * (size not a header + power-of-two buckets), -EBADMSG (foreign content). */
int rl_table_attach(struct rl_table *t, void *mem, size_t bytes);

/* The algorithm of a counter and its parameters. */
struct rl_limit {
	bool token_bucket;
	uint64_t limit;      /* requests per period, >= 1 */
	uint64_t period_ns;  /* token bucket: period length */
	uint64_t t_ns;       /* token bucket: ns per token = ceil(period_ns / limit) */
	uint64_t window_end; /* this request's window end, s since RL_EPOCH (fixed window:
	                        the window it counts in; token bucket with policy =
	                        redis: the window its takes are exchanged in) */
	uint64_t others;     /* fixed window: requests other hosts counted (policy = redis) */
};

/* The counter slot of key in *out, inserted (or replacing an expired one)
 * if absent: 0, or -ENOSPC if the key's bucket holds RL_SLOTS live
 * counters, -EBUSY if its insertion lock stays held (*out is then NULL). */
int rl_slot_find(struct rl_table *t, uint64_t key, uint64_t now_ns, struct rl_slot **out);
/* The same, NULL for either failure. */
struct rl_slot *rl_slot_get(struct rl_table *t, uint64_t key, uint64_t now_ns);

/* Take one request from the counter in slot (valid for key): true if under
 * the limit (counted), false if not (nothing changed). remaining: what is
 * left after this request (or now, if refused); reset_ns: until the window
 * ends / the bucket is full again, or on refusal until a request would
 * pass. *stale is set when the slot was re-used for another key meanwhile:
 * call rl_slot_get again. */
bool rl_take(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns,
             uint64_t *remaining, uint64_t *reset_ns, bool *stale, uint64_t *undo);
/* Undo one rl_take that returned true (another period refused); undo is
 * what that rl_take wrote (the window it counted in). */
void rl_give_back(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t undo);
/* Read-only: would a request pass now? Same outputs as rl_take. */
bool rl_peek(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns,
             uint64_t *remaining, uint64_t *reset_ns, bool *stale);
/* policy = redis. The count of a fixed-window counter in window_end (0 if
 * the slot holds another window or key). */
uint64_t rl_count_in(struct rl_slot *s, uint64_t key, uint64_t window_end);
/* Store n as the count of window_end, unless the slot already holds a later
 * window (used for the other hosts' total, kept under a second key). */
void rl_set_count(struct rl_slot *s, uint64_t key, uint64_t window_end, uint64_t n);
/* Raise the count of window_end to n (a later window already there: no
 * change; an earlier one: replaced). How much it rose: 0 when it held n or
 * more. One CAS, so of several callers raising to the same n exactly one
 * sees the rise (policy = redis: the others' takes, applied once). */
uint64_t rl_raise_count(struct rl_slot *s, uint64_t key, uint64_t window_end, uint64_t n);
/* Token bucket: take n tokens that were taken elsewhere (other hosts),
 * into debt if need be, at most one full bucket's worth of debt. */
void rl_debit(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t n,
              uint64_t now_ns);
/* Token bucket: did the last take find no token after all (the bucket
 * holds more than a full burst of debt once other hosts' takes are in)? */
bool rl_overdrawn(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns);
/* This host's id for Redis (random, made by the first worker that attached). */
uint64_t rl_host_id(struct rl_table *t);

#endif
