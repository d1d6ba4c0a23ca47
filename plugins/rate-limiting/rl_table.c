/* SPDX-License-Identifier: MIT */
/* rate-limiting's shared counter table: layout and protocol in rl_table.h. */
#include "rl_table.h"

#include "shmring/spin.h"

#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#define NS 1000000000ull

static inline uint64_t load_acq(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint64_t load_rlx(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* The CAS that every counter update is. acq_rel: the release publishes the
 * new state to the next reader's acquire load; the acquire on failure lets
 * the retry see the key the winner saw. */
static inline bool cas(uint64_t *p, uint64_t *expected, uint64_t desired)
{
	return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_ACQ_REL,
	                                   __ATOMIC_ACQUIRE);
}

static inline void count_event(uint64_t *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

int rl_table_attach(struct rl_table *t, void *mem, size_t bytes)
{
	t->hdr = NULL;
	t->buckets = NULL;
	t->mask = 0;
	if (!mem || bytes < rl_table_bytes(1))
		return -EINVAL;
	uint64_t n = (bytes - sizeof(struct rl_header)) / sizeof(struct rl_bucket);
	if (n == 0 || (n & (n - 1)) || rl_table_bytes(n) != bytes)
		return -EINVAL;
	struct rl_header *h = mem;
	uint64_t expected = 0;
	if (!cas(&h->magic, &expected, RL_MAGIC) && expected != RL_MAGIC)
		return -EBADMSG;
	t->hdr = h;
	t->buckets = (struct rl_bucket *)((char *)mem + sizeof(struct rl_header));
	t->mask = n - 1;
	return 0;
}

/* ---- the insertion lock of a bucket ------------------------------------------ */

/* Yields after which a held lock is given up on. The region's file is
 * writable by the gateway's group, so the lock word may hold anything,
 * including the tid of a live process that will never release it: a worker
 * must not spin on it forever. A real holder keeps it for a few dozen
 * instructions. */
#define LOCK_YIELDS 1000

static bool bucket_lock(struct rl_bucket *b)
{
	uint64_t me = (uint64_t)gettid();
	for (unsigned spins = 0; spins < 64 + LOCK_YIELDS; spins++) {
		uint64_t holder = 0;
		if (cas(&b->lock, &holder, me))
			return true;
		if (spins < 64) {
			shmring_cpu_relax();
			continue;
		}
		/* Held across a few dozen instructions only: a holder still there
		 * after this many turns was descheduled, or died (SIGKILL by the
		 * watchdog) holding it: take a dead holder's lock over. A value
		 * that is no tid at all (<= 0 as a pid_t) is no holder either. */
		if (holder &&
		    ((pid_t)holder <= 0 || (kill((pid_t)holder, 0) < 0 && errno == ESRCH)) &&
		    cas(&b->lock, &holder, me))
			return true;
		sched_yield();
	}
	return false;
}

static void bucket_unlock(struct rl_bucket *b)
{
	__atomic_store_n(&b->lock, 0, __ATOMIC_RELEASE);
}

/* ---- expiry ------------------------------------------------------------------- */

static inline uint64_t rel_ns(uint64_t now_ns)
{
	return now_ns > RL_EPOCH * NS ? now_ns - RL_EPOCH * NS : 0;
}

/* A counter that no longer holds anything that matters: its window is over,
 * or its bucket has refilled, for RL_EVICT_GRACE_S already. The grace
 * covers a worker that read the clock just before the window ended and
 * counts a moment later: its window must still be there. Such a slot may
 * be given to another key. */
static bool expired(uint64_t key, uint64_t state, uint64_t now_rel)
{
	if (state == RL_LOCKED)
		return false;
	uint64_t now_s = now_rel / NS;
	if (now_s < RL_EVICT_GRACE_S)
		return false;
	if (key & 1)
		return state <= now_rel - RL_EVICT_GRACE_S * NS;
	return (state >> 32) <= now_s - RL_EVICT_GRACE_S;
}

/* ---- lookup and insertion --------------------------------------------------- */

/* A key's two buckets (rl_table.h): the first from bits 1.., the second
 * from bits 33.. of its hash, never the first unless the table has one
 * bucket. */
static inline struct rl_bucket *bucket_of(struct rl_table *t, uint64_t key)
{
	return &t->buckets[(key >> 1) & t->mask];
}

static inline struct rl_bucket *alt_bucket_of(struct rl_table *t, uint64_t key)
{
	uint64_t first = (key >> 1) & t->mask, alt = (key >> 33) & t->mask;
	return &t->buckets[alt != first ? alt : (first ^ 1) & t->mask];
}

/* The live slot of key in b, or NULL. Lock-free: a slot being evicted
 * (RL_LOCKED) does not count. */
static struct rl_slot *slot_in(struct rl_bucket *b, uint64_t key)
{
	for (int i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *s = &b->slot[i];
		if (load_acq(&s->key) == key && load_acq(&s->state) != RL_LOCKED)
			return s;
	}
	return NULL;
}

/* Under b's lock: free the slots an evictor that died left RL_LOCKED. Only
 * a holder of b's lock writes RL_LOCKED into b, and we hold it. */
static void free_abandoned(struct rl_bucket *b)
{
	for (int i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *s = &b->slot[i];
		if (load_acq(&s->state) == RL_LOCKED) {
			__atomic_store_n(&s->key, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
		}
	}
}

/* Slots of b that a new key may take: empty, or holding an expired counter. */
static int free_slots(struct rl_bucket *b, uint64_t now_rel)
{
	int n = 0;
	for (int i = 0; i < RL_SLOTS; i++) {
		uint64_t k = load_rlx(&b->slot[i].key);
		n += k == 0 || expired(k, load_acq(&b->slot[i].state), now_rel);
	}
	return n;
}

/* Under b's lock: give key an empty slot of b; NULL if none. */
static struct rl_slot *place_empty(struct rl_table *t, struct rl_bucket *b, uint64_t key)
{
	for (int i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *s = &b->slot[i];
		if (load_rlx(&s->key) == 0) {
			/* An empty slot's state is 0, the fresh counter. */
			__atomic_store_n(&s->key, key, __ATOMIC_RELEASE);
			count_event(&t->hdr->inserts);
			return s;
		}
	}
	return NULL;
}

/* Under b's lock: give key a slot of b whose counter expired; NULL if
 * every counter of b is live. */
static struct rl_slot *place_expired(struct rl_table *t, struct rl_bucket *b, uint64_t key,
                                     uint64_t now_rel)
{
	for (int i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *s = &b->slot[i];
		uint64_t st = load_acq(&s->state);
		if (!expired(load_rlx(&s->key), st, now_rel))
			continue;
		/* RL_LOCKED fails the CAS of every reader that loaded st. */
		if (!cas(&s->state, &st, RL_LOCKED))
			continue; /* counted meanwhile: alive again */
		__atomic_store_n(&s->key, key, __ATOMIC_RELAXED);
		__atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
		count_event(&t->hdr->evictions);
		return s;
	}
	return NULL;
}

int rl_slot_find(struct rl_table *t, uint64_t key, uint64_t now_ns, struct rl_slot **out)
{
	struct rl_bucket *b1 = bucket_of(t, key), *b2 = alt_bucket_of(t, key);
	/* Lock-free fast path: the key is there and not being evicted. */
	if ((*out = slot_in(b1, key)) || (*out = slot_in(b2, key)))
		return 0;
	/* Insertion takes both locks, lowest address first (no deadlock).
	 * Every insertion of key holds b1's lock, so no other worker can
	 * place key meanwhile: the scan below sees every copy there is. */
	struct rl_bucket *lo = b1 < b2 ? b1 : b2, *hi = b1 < b2 ? b2 : b1;
	if (!bucket_lock(lo)) {
		count_event(&t->hdr->lock_timeouts);
		return -EBUSY;
	}
	if (hi != lo && !bucket_lock(hi)) {
		bucket_unlock(lo);
		count_event(&t->hdr->lock_timeouts);
		return -EBUSY;
	}
	free_abandoned(lo);
	if (hi != lo)
		free_abandoned(hi);
	uint64_t now_rel = rel_ns(now_ns);
	struct rl_slot *found = slot_in(b1, key);
	if (!found && b2 != b1)
		found = slot_in(b2, key);
	if (!found) {
		/* The bucket with fewer live counters first ("two choices" keep
		 * buckets even, so the table refuses its first key near 67% load,
		 * not at ~12% as with one bucket per key); in it an empty slot,
		 * else an expired counter; then the other bucket. */
		struct rl_bucket *first =
		    free_slots(b2, now_rel) > free_slots(b1, now_rel) ? b2 : b1;
		struct rl_bucket *second = first == b1 ? b2 : b1;
		if (!(found = place_empty(t, first, key)))
			found = place_expired(t, first, key, now_rel);
		if (!found && second != first && !(found = place_empty(t, second, key)))
			found = place_expired(t, second, key, now_rel);
	}
	if (hi != lo)
		bucket_unlock(hi);
	bucket_unlock(lo);
	if (!found) {
		count_event(&t->hdr->full);
		return -ENOSPC;
	}
	*out = found;
	return 0;
}

struct rl_slot *rl_slot_get(struct rl_table *t, uint64_t key, uint64_t now_ns)
{
	struct rl_slot *s;
	rl_slot_find(t, key, now_ns, &s);
	return s;
}

/* ---- counting ------------------------------------------------------------------ */

/* Load the state of s for key with the validation of rl_table.h; false if
 * the slot is being evicted or belongs to another key now. */
static inline bool load_state(struct rl_slot *s, uint64_t key, uint64_t *st)
{
	*st = load_acq(&s->state);
	return *st != RL_LOCKED && load_rlx(&s->key) == key;
}

static bool fw_step(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns,
                    uint64_t *remaining, uint64_t *reset_ns, bool *stale, uint64_t *undo, bool take)
{
	uint64_t now_rel = rel_ns(now_ns), st;
	*stale = false;
	for (;;) {
		if (!load_state(s, key, &st)) {
			*stale = true;
			*remaining = 0;
			*reset_ns = 0;
			return false;
		}
		uint64_t end = st >> 32, count = (uint32_t)st, next;
		if (end < l->window_end) {
			/* The stored window is over: this request opens ours. */
			end = l->window_end;
			count = 0;
		}
		/* end > window_end: another worker's clock already moved to the
		 * next window; count in it, it is the newer truth. */
		uint64_t end_ns = end * NS;
		*reset_ns = end_ns > now_rel ? end_ns - now_rel : 0;
		/* others: what other hosts counted (policy = redis), 0 here */
		if (count + l->others >= l->limit) {
			*remaining = 0;
			return false;
		}
		*remaining = l->limit - count - l->others - (take ? 1 : 0);
		if (!take)
			return true;
		next = end << 32 | (count + 1);
		if (cas(&s->state, &st, next)) {
			*undo = end;
			return true;
		}
	}
}

static bool tb_step(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns,
                    uint64_t *remaining, uint64_t *reset_ns, bool *stale, bool take)
{
	uint64_t now = rel_ns(now_ns), st;
	uint64_t tau = (l->limit - 1) * l->t_ns; /* burst - 1 tokens of tolerance */
	*stale = false;
	for (;;) {
		if (!load_state(s, key, &st)) {
			*stale = true;
			*remaining = 0;
			*reset_ns = 0;
			return false;
		}
		uint64_t tat = st > now ? st : now; /* lazy refill: a full bucket is "now" */
		if (tat - now > tau) {
			*remaining = 0;
			*reset_ns = tat - now - tau; /* until the next token */
			return false;
		}
		uint64_t next = take ? tat + l->t_ns : tat;
		/* Requests that would still pass at this instant after this one. */
		*remaining = next - now > tau ? 0 : (tau - (next - now)) / l->t_ns + 1;
		*reset_ns = next - now; /* until full again */
		if (!take || cas(&s->state, &st, next))
			return true;
	}
}

bool rl_take(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns,
             uint64_t *remaining, uint64_t *reset_ns, bool *stale, uint64_t *undo)
{
	*undo = 0;
	if (l->token_bucket)
		return tb_step(s, key, l, now_ns, remaining, reset_ns, stale, true);
	return fw_step(s, key, l, now_ns, remaining, reset_ns, stale, undo, true);
}

bool rl_peek(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns,
             uint64_t *remaining, uint64_t *reset_ns, bool *stale)
{
	uint64_t undo;
	if (l->token_bucket)
		return tb_step(s, key, l, now_ns, remaining, reset_ns, stale, false);
	return fw_step(s, key, l, now_ns, remaining, reset_ns, stale, &undo, false);
}

void rl_give_back(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t undo)
{
	uint64_t st;
	for (;;) {
		if (!load_state(s, key, &st))
			return; /* evicted: it was expired, nothing to give back */
		uint64_t next;
		if (l->token_bucket) {
			if (st < l->t_ns)
				return;
			next = st - l->t_ns;
		} else {
			/* Only in the window the request was counted in. */
			if ((st >> 32) != undo || (uint32_t)st == 0)
				return;
			next = st - 1;
		}
		if (cas(&s->state, &st, next))
			return;
	}
}

uint64_t rl_count_in(struct rl_slot *s, uint64_t key, uint64_t window_end)
{
	uint64_t st;
	if (!load_state(s, key, &st) || (st >> 32) != window_end)
		return 0;
	return (uint32_t)st;
}

void rl_set_count(struct rl_slot *s, uint64_t key, uint64_t window_end, uint64_t n)
{
	uint64_t st;
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	for (;;) {
		if (!load_state(s, key, &st) || (st >> 32) > window_end)
			return;
		if (cas(&s->state, &st, window_end << 32 | n))
			return;
	}
}

uint64_t rl_raise_count(struct rl_slot *s, uint64_t key, uint64_t window_end, uint64_t n)
{
	uint64_t st;
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	for (;;) {
		if (!load_state(s, key, &st) || (st >> 32) > window_end)
			return 0;
		uint64_t was = (st >> 32) == window_end ? (uint32_t)st : 0;
		if (was >= n)
			return 0;
		if (cas(&s->state, &st, window_end << 32 | n))
			return n - was;
	}
}

void rl_debit(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t n,
              uint64_t now_ns)
{
	uint64_t now = rel_ns(now_ns), st;
	/* At most one full bucket of debt: a wrong count read from outside
	 * (Redis) cannot block a key for longer than a period. */
	uint64_t most = now + l->period_ns + (l->limit - 1) * l->t_ns;
	uint64_t add = n < l->limit * 2 ? n * l->t_ns : l->limit * 2 * l->t_ns;
	for (;;) {
		if (!load_state(s, key, &st))
			return;
		uint64_t tat = (st > now ? st : now) + add;
		if (tat > most)
			tat = most;
		if (tat <= st || cas(&s->state, &st, tat))
			return;
	}
}

bool rl_overdrawn(struct rl_slot *s, uint64_t key, const struct rl_limit *l, uint64_t now_ns)
{
	uint64_t now = rel_ns(now_ns), st;
	if (!load_state(s, key, &st))
		return false;
	return st > now && st - now > l->limit * l->t_ns; /* tau + the request's own token */
}

uint64_t rl_host_id(struct rl_table *t)
{
	uint64_t id = load_acq(&t->hdr->host_id);
	if (id)
		return id;
	uint64_t mine = 0;
	if (getrandom(&mine, sizeof(mine), 0) != sizeof(mine) || !mine)
		mine = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)t ^ 1;
	if (cas(&t->hdr->host_id, &id, mine))
		return mine;
	return id; /* another worker won: its id */
}
