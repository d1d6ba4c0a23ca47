/* SPDX-License-Identifier: MIT */
/* rate-limiting's counter table on its own, with one bucket so a bucket's
 * limits are easy to reach: a full bucket refuses a new key, expired
 * windows and refilled buckets are evicted (and only those), a lock left by
 * a dead process is taken over, a stale slot is detected, and attaching to
 * foreign bytes is refused. Then the plugin's full geometry filled with
 * distinct keys: window after window it takes far more keys than it has
 * slots, none refused below half load, and every refusal is counted. */
#include "rl_table.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS 1000000000ull
#define T0 ((RL_EPOCH + 1000000) * NS) /* some instant after the epoch */

static void *mem;
static struct rl_table T;

static int setup(void **state)
{
	mem = mmap(NULL, rl_table_bytes(1), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
	           0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(rl_table_attach(&T, mem, rl_table_bytes(1)), 0);
	return 0;
}

static int teardown(void **state)
{
	munmap(mem, rl_table_bytes(1));
	return 0;
}

/* A fixed-window limit for the second holding now. */
static struct rl_limit fw(uint64_t limit, uint64_t now)
{
	return (struct rl_limit){.limit = limit, .window_end = now / NS - RL_EPOCH + 1};
}

static bool take(uint64_t key, const struct rl_limit *l, uint64_t now)
{
	uint64_t rem, reset, undo;
	bool stale;
	struct rl_slot *s = rl_slot_get(&T, key, now);
	assert_non_null(s);
	bool ok = rl_take(s, key, l, now, &rem, &reset, &stale, &undo);
	assert_false(stale);
	return ok;
}

static void attach_checks(void **state)
{
	struct rl_table t;
	assert_int_equal(rl_table_attach(&t, mem, rl_table_bytes(1) + 1), -EINVAL);
	assert_int_equal(rl_table_attach(&t, mem, rl_table_bytes(3)), -EINVAL);
	/* attaching again to a table in use is fine */
	assert_int_equal(rl_table_attach(&t, mem, rl_table_bytes(1)), 0);
	uint64_t junk[64] = {0x1234};
	assert_int_equal(rl_table_attach(&t, junk, rl_table_bytes(1)), -EBADMSG);
}

static void full_bucket_and_eviction(void **state)
{
	struct rl_limit l = fw(5, T0);
	/* keys with bit 0 clear: fixed window */
	for (uint64_t k = 1; k <= RL_SLOTS; k++)
		assert_true(take(k << 1, &l, T0));
	/* every slot holds a live window: a new key finds no room */
	assert_null(rl_slot_get(&T, 100 << 1, T0));
	/* ... and the live counters are all still there */
	for (uint64_t k = 1; k <= RL_SLOTS; k++) {
		uint64_t rem, reset;
		bool stale;
		struct rl_slot *s = rl_slot_get(&T, k << 1, T0);
		assert_non_null(s);
		assert_true(rl_peek(s, k << 1, &l, T0, &rem, &reset, &stale));
		assert_int_equal(rem, 4);
	}
	/* the next second: every window is over, but within the grace */
	uint64_t t1 = T0 + NS;
	assert_null(rl_slot_get(&T, 100 << 1, t1));
	/* a second later a new key evicts one */
	t1 = T0 + 2 * NS;
	struct rl_limit l1 = fw(5, t1);
	assert_true(take(100 << 1, &l1, t1));
	struct rl_header *h = mem;
	assert_int_equal(h->inserts, RL_SLOTS);
	assert_int_equal(h->evictions, 1);
	assert_int_equal(h->full, 2);
}

static void token_bucket_evicted_when_full_again(void **state)
{
	struct rl_limit l = {.token_bucket = true, .limit = 2, .period_ns = NS, .t_ns = NS / 2};
	for (uint64_t k = 1; k <= RL_SLOTS; k++)
		assert_true(take(k << 1 | 1, &l, T0));
	assert_null(rl_slot_get(&T, 100 << 1 | 1, T0));
	/* 0.4 s later no bucket has refilled to its burst: still full */
	assert_null(rl_slot_get(&T, 100 << 1 | 1, T0 + 400000000ull));
	/* full again at 0.5 s, evictable after the grace */
	assert_null(rl_slot_get(&T, 100 << 1 | 1, T0 + NS / 2));
	assert_true(take(100 << 1 | 1, &l, T0 + NS / 2 + NS));
}

static void stale_slot_detected(void **state)
{
	struct rl_limit l = fw(5, T0);
	struct rl_slot *s = rl_slot_get(&T, 2, T0);
	assert_non_null(s);
	/* fill the bucket, then move time on and evict key 2's slot */
	for (uint64_t k = 2; k <= RL_SLOTS; k++)
		assert_true(take(k << 1, &l, T0));
	assert_true(take(2, &l, T0));
	uint64_t t1 = T0 + 2 * NS;
	struct rl_limit l1 = fw(5, t1);
	/* every window is over: the new key takes the first expired slot,
	 * which is key 2's */
	assert_true(take(999 << 1, &l1, t1));
	uint64_t rem, reset, undo;
	bool stale;
	assert_false(rl_take(s, 2, &l1, t1, &rem, &reset, &stale, &undo));
	assert_true(stale);
}

static void give_back_only_in_its_window(void **state)
{
	struct rl_limit l = fw(3, T0);
	uint64_t rem, reset, undo;
	bool stale;
	struct rl_slot *s = rl_slot_get(&T, 2, T0);
	assert_true(rl_take(s, 2, &l, T0, &rem, &reset, &stale, &undo));
	assert_true(rl_take(s, 2, &l, T0, &rem, &reset, &stale, &undo));
	assert_int_equal(rem, 1);
	rl_give_back(s, 2, &l, undo);
	assert_true(rl_peek(s, 2, &l, T0, &rem, &reset, &stale));
	assert_int_equal(rem, 2);
	/* a new window began: giving back the old one's request changes nothing */
	struct rl_limit l1 = fw(3, T0 + NS);
	assert_true(rl_take(s, 2, &l1, T0 + NS, &rem, &reset, &stale, &undo));
	rl_give_back(s, 2, &l1, undo - 1);
	assert_true(rl_peek(s, 2, &l1, T0 + NS, &rem, &reset, &stale));
	assert_int_equal(rem, 2);
}

static void dead_lock_holder_taken_over(void **state)
{
	struct rl_bucket *b = (struct rl_bucket *)((char *)mem + sizeof(struct rl_header));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	/* a process that died holding the insertion lock... */
	b->lock = (uint64_t)pid;
	/* ... and an evictor that died between RL_LOCKED and the new key */
	b->slot[3].key = 8;
	b->slot[3].state = RL_LOCKED;
	struct rl_limit l = fw(5, T0);
	assert_true(take(42 << 1, &l, T0));
	assert_int_equal(b->lock, 0);
	assert_int_not_equal(b->slot[3].state, RL_LOCKED);
}

/* The region is writable by the gateway's group: a lock word naming a live
 * process that never lets go (here our parent) is given up on, counted,
 * and the insertion fails with -EBUSY instead of spinning forever; a key
 * already in the bucket is still found (no lock needed). */
static void stuck_lock_given_up(void **state)
{
	struct rl_limit l = fw(5, T0);
	assert_true(take(2, &l, T0));
	struct rl_bucket *b = (struct rl_bucket *)((char *)mem + sizeof(struct rl_header));
	struct rl_header *h = mem;
	uint64_t holders[] = {(uint64_t)getppid(), (uint64_t)-1, 1ull << 40};
	for (size_t i = 0; i < sizeof(holders) / sizeof(holders[0]); i++) {
		b->lock = holders[i];
		struct rl_slot *s = (struct rl_slot *)1;
		alarm(20); /* a spin forever fails the test */
		int rc = rl_slot_find(&T, 4, T0, &s);
		alarm(0);
		if (holders[i] == (uint64_t)getppid()) {
			assert_int_equal(rc, -EBUSY);
			assert_null(s);
			assert_int_equal(h->lock_timeouts, 1);
		} else {
			assert_int_equal(rc, 0); /* no such holder: taken over */
		}
		assert_int_equal(rl_slot_find(&T, 2, T0, &s), 0);
		assert_non_null(s);
	}
}

/* The plugin's geometry (rl_internal.h: RL_NBUCKETS). */
#define BIG_BUCKETS (1ull << 16)

/* Distinct, well-spread fixed-window keys (bit 0 clear): a 64-bit mix of a
 * counter, so a run is the same every time. */
static uint64_t key_n(uint64_t n)
{
	uint64_t z = n + 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	z &= ~1ull;
	return z ? z : 2;
}

/* Count one request of key in the second of now: 1 counted, 0 no slot. */
static int count_one(struct rl_table *t, uint64_t key, uint64_t now)
{
	struct rl_limit l = fw(1000, now);
	struct rl_slot *s = rl_slot_get(t, key, now);
	if (!s)
		return 0;
	uint64_t rem, reset, undo;
	bool stale;
	assert_true(rl_take(s, key, &l, now, &rem, &reset, &stale, &undo));
	return 1;
}

static void distinct_keys_across_windows(void **state)
{
	size_t bytes = rl_table_bytes(BIG_BUCKETS);
	void *big = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(big != MAP_FAILED);
	struct rl_table t;
	assert_int_equal(rl_table_attach(&t, big, bytes), 0);
	struct rl_header *h = big;
	const uint64_t capacity = BIG_BUCKETS * RL_SLOTS;
	/* Half the table's size in distinct keys per window, 4 windows two
	 * seconds apart (past the eviction grace): twice its size in all.
	 * Every one finds a slot: the expired windows of the earlier ones are
	 * reclaimed, and with two buckets per key no bucket overflows at half
	 * load (with one, the first key is refused at ~12% load). */
	const uint64_t per_window = capacity / 2, windows = 4;
	uint64_t n = 0, counted = 0;
	for (uint64_t w = 0; w < windows; w++) {
		uint64_t now = T0 + w * 2 * NS;
		for (uint64_t i = 0; i < per_window; i++)
			counted += (uint64_t)count_one(&t, key_n(n++), now);
	}
	assert_true(n >= capacity * 2);
	assert_int_equal(counted, n);
	assert_int_equal(h->full, 0);
	assert_int_equal(h->inserts + h->evictions, n);
	assert_true(h->evictions >= n - capacity);
	/* All in one window instead: live counters cannot be evicted, so past
	 * the table's room keys are refused, and each refusal is counted. */
	uint64_t now = T0 + windows * 2 * NS + 10 * NS, refused = 0;
	uint64_t full0 = h->full;
	for (uint64_t i = 0; i < capacity + capacity / 2; i++)
		refused += (uint64_t)!count_one(&t, key_n(n++), now);
	assert_true(refused >= capacity / 2);
	assert_int_equal(h->full - full0, refused);
	/* ... and the next window (after the grace) has room again. */
	now += 2 * NS;
	for (uint64_t i = 0; i < per_window; i++)
		assert_int_equal(count_one(&t, key_n(n++), now), 1);
	munmap(big, bytes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(attach_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(full_bucket_and_eviction, setup, teardown),
	    cmocka_unit_test_setup_teardown(token_bucket_evicted_when_full_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(stale_slot_detected, setup, teardown),
	    cmocka_unit_test_setup_teardown(give_back_only_in_its_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(dead_lock_holder_taken_over, setup, teardown),
	    cmocka_unit_test_setup_teardown(stuck_lock_given_up, setup, teardown),
	    cmocka_unit_test(distinct_keys_across_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
