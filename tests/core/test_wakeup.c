/* SPDX-License-Identifier: MIT */
/* Wakeups: the CQ doorbell ("ring only when armed", exactly once per arm)
 * and the worker event (a sleeper in another process is woken by a
 * publish; a publish with no sleeper makes no syscall and sends no wake),
 * and the client's bounded spin for a reply, only while the worker is awake. */
#include "core/fixture.h"
#include "shmring/client.h"

#include <sched.h>
#include <sys/prctl.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_doorbell_once_per_arm, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_client_spin, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_event_notify_without_waiter, fx_setup,
	                                    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_sleeper_in_other_process_is_woken, fx_setup,
	                                    fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
