/* SPDX-License-Identifier: MIT */
/* Wakeups: the CQ doorbell ("ring only when armed", exactly once per arm)
 * and the worker event (a sleeper in another process is woken by a
 * publish; a publish with no sleeper makes no syscall and sends no wake),
 * and the client's bounded spin for a reply, only while the worker is awake;
 * and both handshakes under stress, where a lost wake-up shows as a sleep
 * that outlives a record waiting for it. */
#include "core/fixture.h"
#include "shmring/client.h"
#include "shmring/spin.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static void test_doorbell_once_per_arm(void **state)
{
	struct fx *f = *state;
	/* not armed: a publish asks for no doorbell */
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 1, "a", 1), 0);
	assert_int_equal(shmring_publish(f->sv), 0);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->cl, &rec), 0);
	shmring_release(f->cl);

	/* armed on an empty CQ: the next publish returns 1, exactly once */
	assert_int_equal(shmring_doorbell_arm(f->cl), 0);
	assert_int_equal(raw_load32(f->raw, RAW_CQ_ARMED), 1);
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 2, "b", 1), 0);
	assert_int_equal(shmring_publish(f->sv), 1);
	assert_int_equal(raw_load32(f->raw, RAW_CQ_ARMED), 0);
	assert_int_equal(shmring_chan_counters(f->sv, SHMRING_SERVER)->wakeups, 1);
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 3, "c", 1), 0);
	assert_int_equal(shmring_publish(f->sv), 0);
	assert_int_equal(shmring_publish(f->sv), 0);
	assert_int_equal(shmring_chan_counters(f->sv, SHMRING_SERVER)->wakeups, 1);

	/* arming while replies wait: returns 1 and leaves the flag clear, so
	 * the server rings nothing */
	assert_int_equal(shmring_doorbell_arm(f->cl), 1);
	assert_int_equal(raw_load32(f->raw, RAW_CQ_ARMED), 0);
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 4, "d", 1), 0);
	assert_int_equal(shmring_publish(f->sv), 0);
	for (uint64_t id = 2; id <= 4; id++) {
		assert_int_equal(shmring_peek(f->cl, &rec), 0);
		assert_true(rec.req_id == id);
	}
	shmring_release(f->cl);

	/* arm then disarm: nothing to ring */
	assert_int_equal(shmring_doorbell_arm(f->cl), 0);
	shmring_doorbell_disarm(f->cl);
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 5, "e", 1), 0);
	assert_int_equal(shmring_publish(f->sv), 0);
	/* a published-but-unread reply also counts as waiting */
	assert_int_equal(shmring_doorbell_arm(f->cl), 1);
}

/* The client's SQ publish notifies the serving worker's event only when it
 * announced a sleep. */
static void test_event_notify_without_waiter(void **state)
{
	struct fx *f = *state;
	struct shmring_event *ev = shmring_instance_worker_event(f->t.inst, 0);
	assert_non_null(ev);
	assert_null(shmring_instance_worker_event(f->t.inst, SHMRING_MAX_WORKERS));
	uint32_t seq = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);
	assert_int_equal(shmring_event_notify(ev), 0);
	assert_int_equal(fx_put(f->cl, 8, 1, 1), 0);
	assert_int_equal(shmring_publish(f->cl), 0);
	assert_int_equal(__atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE), seq);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->wakeups, 0);

	/* announced: exactly one notify wakes, the flag is consumed */
	uint32_t key = shmring_event_prepare(ev);
	assert_int_equal(key, seq);
	assert_int_equal(ev->waiters, 1);
	assert_int_equal(fx_put(f->cl, 8, 1, 2), 0);
	assert_int_equal(shmring_publish(f->cl), 0);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->wakeups, 1);
	assert_int_equal(__atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE), seq + 1);
	assert_int_equal(shmring_event_notify(ev), 0);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->wakeups, 1);
	/* the event moved on: waiting with the old key returns at once */
	assert_int_equal(shmring_event_wait(ev, key, -1), 0);
	shmring_event_cancel(ev);

	/* cancel withdraws the announcement */
	key = shmring_event_prepare(ev);
	shmring_event_cancel(ev);
	assert_int_equal(shmring_event_notify(ev), 0);
	/* nobody notifies: a wait with a timeout times out */
	key = shmring_event_prepare(ev);
	uint64_t t0 = shmring_now_ns();
	assert_int_equal(shmring_event_wait(ev, key, 2000000), -ETIMEDOUT);
	assert_true(shmring_now_ns() - t0 >= 2000000);
	shmring_event_cancel(ev);
}

/* A worker-like child sleeps on the event after finding the SQ empty; the
 * parent waits until the child is really asleep in the kernel, then
 * publishes a record. The child must wake by that notify (not by its 10 s
 * timeout) and read the record. */
static void test_sleeper_in_other_process_is_woken(void **state)
{
	struct fx *f = *state;
	for (int round = 0; round < 5; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			struct shmring_instance *inst;
			struct shmring_chan *c;
			if (shmring_instance_attach(f->t.dir, &inst) < 0 ||
			    shmring_chan_open(inst, 0, SHMRING_SERVER, &c) < 0)
				_exit(2);
			struct shmring_event *ev = shmring_instance_worker_event(inst, 0);
			struct shmring_rec rec;
			uint64_t dl = deadline_in_ms(10000);
			for (;;) {
				int rc = shmring_peek(c, &rec);
				if (rc == 0)
					break;
				if (rc != SHMRING_EMPTY || deadline_passed(dl))
					_exit(3);
				uint32_t key = shmring_event_prepare(ev);
				/* re-check after announcing, before sleeping */
				if (shmring_ready(c) != 0) {
					shmring_event_cancel(ev);
					continue;
				}
				rc = shmring_event_wait(ev, key, 10000000000ll);
				shmring_event_cancel(ev);
				if (rc == -ETIMEDOUT)
					_exit(4); /* lost wakeup */
			}
			if (rec.req_id != (uint64_t)round + 100 || rec.len != 8)
				_exit(5);
			shmring_release(c);
			_exit(0);
		}
		/* wait until the child sleeps in futex_wait (state S with the
		 * waiters flag set), bounded */
		struct shmring_event *ev = shmring_instance_worker_event(f->t.inst, 0);
		uint64_t dl = deadline_in_ms(10000);
		while (!(__atomic_load_n(&ev->waiters, __ATOMIC_ACQUIRE) == 1 &&
		         proc_state(pid) == 'S')) {
			if (deadline_passed(dl))
				fail_msg("child never went to sleep");
			sched_yield();
		}
		uint64_t wakeups = shmring_chan_counters(f->cl, SHMRING_CLIENT)->wakeups;
		assert_int_equal(fx_put(f->cl, 8, 1, (uint64_t)round + 100), 0);
		uint64_t t0 = shmring_now_ns();
		assert_int_equal(shmring_publish(f->cl), 0);
		assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->wakeups,
		                 wakeups + 1);
		int st = wait_child(pid, 15000);
		assert_true(child_ok(st));
		/* woken by us, well before the child's own 10 s timeout */
		assert_true(shmring_now_ns() - t0 < 5000000000ull);
		/* keep our consumer view in step with what the child consumed */
		fx_expect(f->sv, 8, 1, (uint64_t)round + 100);
		shmring_release(f->sv);
	}
}

/* Announce (or take back) a sleep on every worker event, whichever slot
 * serves the channel. */
static void all_workers_sleep(struct fx *f, int asleep)
{
	for (uint32_t w = 0; w < SHMRING_MAX_WORKERS; w++) {
		struct shmring_event *ev = shmring_instance_worker_event(f->t.inst, w);
		if (asleep)
			(void)shmring_event_prepare(ev);
		else
			shmring_event_cancel(ev);
	}
}

/* shmring_client_spin: never spins on a worker that announced a sleep,
 * never past max_ns, and sees a reply as soon as it is published. */
static void test_client_spin(void **state)
{
	struct fx *f = *state;
	all_workers_sleep(f, 1);
	assert_int_equal(shmring_client_server_awake(f->cl), 0);
	uint64_t t0 = shmring_now_ns();
	assert_int_equal(shmring_client_spin(f->cl, 2000000000ull), 0); /* 2 s allowed */
	assert_true(shmring_now_ns() - t0 < 100000000ull);              /* gone at once */

	all_workers_sleep(f, 0);
	assert_int_equal(shmring_client_server_awake(f->cl), 1);
	t0 = shmring_now_ns();
	assert_int_equal(shmring_client_spin(f->cl, 2000000), 0); /* 2 ms, nothing comes */
	uint64_t took = shmring_now_ns() - t0;
	assert_true(took >= 2000000 && took < 1000000000ull);

	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 1, "a", 1), 0);
	assert_int_equal(shmring_publish(f->sv), 0);
	assert_true(shmring_client_spin(f->cl, 2000000000ull) > 0);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->cl, &rec), 0);
	shmring_release(f->cl);
}

/* Both sides of the stress test share this page (mapped before fork). */
struct stress_page {
	uint32_t bell;          /* the client's doorbell: bumped and woken by the server */
	uint32_t server_sleeps; /* futex waits the server entered, reported at exit */
};

#define STRESS_ROUNDS 20000
#define STRESS_SLEEP_NS 2000000000ll /* far beyond any wake; reaching it is the bug */

static long test_futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

/* A few hundred pause instructions or none: moves each publish around the
 * peer's empty peek / announce / re-check / sleep window. */
static void jitter(uint64_t *rng)
{
	for (uint64_t n = splitmix64(rng) % 512; n; n--)
		shmring_cpu_relax();
}

/* The server of the stress test, in its own process: sleeps on the worker
 * event whenever the SQ is empty, checks every request, answers each with a
 * 16 B reply and rings the client's doorbell when the publish says so.
 * Exit 0, or: 2 setup, 3 ring error, 4 lost wake-up, 5 wrong request. */
static int stress_server(const char *dir, struct stress_page *pg)
{
	struct shmring_instance *inst;
	struct shmring_chan *c;
	if (shmring_instance_attach(dir, &inst) < 0 ||
	    shmring_chan_open(inst, 0, SHMRING_SERVER, &c) < 0)
		return 2;
	struct shmring_event *ev = shmring_instance_worker_event(inst, 0);
	uint64_t rng = 7;
	for (uint64_t i = 0; i < STRESS_ROUNDS; i++) {
		struct shmring_rec rec;
		int rc;
		while ((rc = shmring_peek(c, &rec)) != 0) {
			if (rc != SHMRING_EMPTY)
				return 3;
			jitter(&rng); /* a request may land before the announce */
			uint32_t key = shmring_event_prepare(ev);
			if (shmring_ready(c) != 0) {
				shmring_event_cancel(ev);
				continue;
			}
			pg->server_sleeps++;
			rc = shmring_event_wait(ev, key, STRESS_SLEEP_NS);
			shmring_event_cancel(ev);
			if (rc == -ETIMEDOUT && shmring_ready(c) == 1)
				return 4;
		}
		if (rec.req_id != i || rec.len != 8 + i % 57 || rec.type != 1)
			return 5;
		for (uint32_t k = 0; k < rec.len; k++)
			if (rec.payload[k] != fx_byte(i, k))
				return 5;
		shmring_release(c);
		jitter(&rng);
		if (fx_put(c, 16, SHMRING_REC_REPLY, i) != 0)
			return 3;
		if (shmring_publish(c) == 1) {
			__atomic_fetch_add(&pg->bell, 1, __ATOMIC_RELEASE);
			test_futex(&pg->bell, FUTEX_WAKE, INT_MAX, NULL);
		}
	}
	return 0;
}

/* Request/reply rounds in which each side goes to sleep as soon as it has
 * nothing to read: the server on the worker event, the client on the CQ
 * doorbell. Every publish races the peer's announce-then-re-check, in both
 * directions, thousands of times. A sleep that ends by its 2 s timeout while
 * the record it waited for is already in the ring is a lost wake-up. */
static void test_sleep_wake_stress(void **state)
{
	struct fx *f = *state;
	struct stress_page *pg =
	    mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(pg != MAP_FAILED);
	memset(pg, 0, sizeof(*pg));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(stress_server(f->t.dir, pg));
	}
	uint64_t rng = 3, client_sleeps = 0;
	struct timespec sleep_ts = {.tv_sec = STRESS_SLEEP_NS / 1000000000};
	for (uint64_t i = 0; i < STRESS_ROUNDS; i++) {
		jitter(&rng);
		assert_int_equal(fx_put(f->cl, 8 + (uint32_t)(i % 57), 1, i), 0);
		assert_int_equal(shmring_publish(f->cl), 0);
		struct shmring_rec rec;
		int rc;
		while ((rc = shmring_peek(f->cl, &rec)) != 0) {
			assert_int_equal(rc, SHMRING_EMPTY);
			jitter(&rng); /* a reply may land before the arm */
			uint32_t key = __atomic_load_n(&pg->bell, __ATOMIC_ACQUIRE);
			rc = shmring_doorbell_arm(f->cl);
			assert_true(rc >= 0);
			if (rc == 1)
				continue;
			client_sleeps++;
			long w = test_futex(&pg->bell, FUTEX_WAIT, key, &sleep_ts);
			if (w < 0 && errno == ETIMEDOUT) {
				shmring_doorbell_disarm(f->cl);
				if (shmring_ready(f->cl) == 1)
					fail_msg("lost doorbell: reply %llu waited out the sleep",
					         (unsigned long long)i);
				int st;
				if (waitpid(pid, &st, WNOHANG) == pid)
					fail_msg("server exited with %d (4: lost wake-up)",
					         WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			}
		}
		assert_true(rec.req_id == i);
		assert_int_equal(rec.len, 16);
		for (uint32_t k = 0; k < rec.len; k++)
			if (rec.payload[k] != fx_byte(i, k))
				fail_msg("reply %llu: byte %u differs", (unsigned long long)i, k);
		shmring_release(f->cl);
	}
	int st = wait_child(pid, 60000);
	if (!child_ok(st))
		fail_msg("server exited with %d (4: lost wake-up)",
		         st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	/* the race was run, not skipped: both sides really slept, many times */
	assert_true(client_sleeps >= STRESS_ROUNDS / 20);
	assert_true(pg->server_sleeps >= STRESS_ROUNDS / 20);
	munmap(pg, sizeof(*pg));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_doorbell_once_per_arm, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_client_spin, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_event_notify_without_waiter, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_sleeper_in_other_process_is_woken, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_sleep_wake_stress, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
