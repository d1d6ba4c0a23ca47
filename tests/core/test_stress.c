/* SPDX-License-Identifier: MIT */
/*
 * Two processes, both directions at once: the parent is the client (SQ
 * producer, CQ consumer), a forked child is the server. Each direction
 * carries SHMRING_STRESS_RECORDS (default 2 M) records of 1 B .. 8 KiB with
 * sequence numbers and checksums (stream.h); every record is checked.
 * Batch sizes, release points and claim slack are random, the rings are
 * small (256 KiB, 16 k wraps per direction) so they wrap and fill
 * constantly. An idle side yields its CPU after a few empty polls, so the
 * run stays short when the machine is shared (busy-polling against a
 * descheduled peer only burns the time slice the peer needs). The child sleeps on its
 * worker event whenever it only waits for SQ records, so the wakeup path is
 * exercised under load: a 10 s sleep there is a lost wakeup and fails.
 */
#include "core/fixture.h"
#include "core/stream.h"

#include <stdatomic.h>
#include <sched.h>
#include <sys/prctl.h>

#define RING (256u * 1024)
#define IDLE_LIMIT_NS (30ull * 1000000000ull)

struct shared {
	_Atomic int failed;
	char why[200];
};

struct side {
	struct shmring_chan *c;
	struct stream out, in;
	uint64_t n, sent, got, sleeps;
	uint64_t rnd;
	struct shmring_event *ev; /* server: sleep here when only SQ is due */
	struct shared *sh;
};

static const char *pump(struct side *s)
{
	struct shmring_rec rec;
	uint64_t idle_since = 0;
	uint32_t idle_polls = 0;
	while (s->sent < s->n || s->got < s->n) {
		if (s->sh->failed)
			return "the other process failed";
		int progress = 0;
		uint64_t r = splitmix64(&s->rnd);

		uint32_t batch = 1 + (uint32_t)(r % 32), k = 0;
		while (k < batch && s->sent < s->n) {
			uint32_t extra = (r >> 8) & 3 ? 0 : (uint32_t)(r >> 16) % 64;
			int rc = stream_put(&s->out, s->c, s->sent, extra);
			if (rc == SHMRING_FULL)
				break;
			if (rc != 0)
				return "claim or commit failed";
			s->sent++;
			k++;
		}
		if (k) {
			shmring_publish(s->c);
			progress = 1;
		}

		uint32_t limit = 1 + (uint32_t)(r >> 24) % 64;
		for (uint32_t i = 0; i < limit && s->got < s->n; i++) {
			int rc = shmring_peek(s->c, &rec);
			if (rc == SHMRING_EMPTY)
				break;
			if (rc != 0)
				return "peek failed (corrupt ring)";
			const char *err = stream_check(&s->in, s->got, &rec);
			if (err)
				return err;
			s->got++;
			progress = 1;
			if (((r >> (32 + i % 24)) & 7) == 0)
				shmring_release(s->c); /* sometimes mid-batch */
		}
		shmring_release(s->c);

		if (progress) {
			idle_since = 0;
			idle_polls = 0;
			continue;
		}
		if (++idle_polls % 16 == 0)
			sched_yield();
		if (s->ev && s->sent == s->n && s->got < s->n) {
			uint32_t key = shmring_event_prepare(s->ev);
			if (shmring_ready(s->c) != 0) {
				shmring_event_cancel(s->ev);
				continue;
			}
			int rc = shmring_event_wait(s->ev, key, 10000000000ll);
			shmring_event_cancel(s->ev);
			if (rc == -ETIMEDOUT)
				return "lost wakeup: slept 10 s while SQ records were due";
			s->sleeps++;
			continue;
		}
		uint64_t now = shmring_now_ns();
		if (!idle_since)
			idle_since = now;
		else if (now - idle_since > IDLE_LIMIT_NS)
			return "no progress for 30 s";
	}
	return NULL;
}

static void fail_shared(struct shared *sh, const char *who, const struct side *s, const char *why)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&sh->failed, &expected, 2))
		return; /* the first failure tells the story */
	snprintf(sh->why, sizeof(sh->why), "%s: %s (sent %llu, got %llu)", who, why,
	         (unsigned long long)s->sent, (unsigned long long)s->got);
	sh->failed = 1;
}

static uint64_t records_from_env(void)
{
	const char *e = getenv("SHMRING_STRESS_RECORDS");
	uint64_t n = e ? strtoull(e, NULL, 10) : 0;
	return n ? n : 2000000;
}

static void test_two_process_stress(void **state)
{
	uint64_t n = records_from_env();
	struct tinst t = *(struct tinst *)*state; /* removed by inst_teardown, pass or fail */
	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	const uint64_t sq_seed = 0x5157, cq_seed = 0xc0c0;
	/* Claim before the server starts: a claim skips CQ records that were
	 * there before it (they were for a previous owner). */
	struct side s = {.n = n, .rnd = 0x1234567, .sh = sh};
	struct shmring_instance *inst;
	assert_int_equal(shmring_instance_attach(t.dir, &inst), 0);
	assert_int_equal(shmring_chan_claim(inst, &s.c), 0);
	uint64_t t0 = shmring_now_ns();

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		s.rnd = 0xabcdef ^ (uint64_t)getpid();
		if (shmring_instance_attach(t.dir, &inst) < 0 ||
		    shmring_chan_open(inst, 0, SHMRING_SERVER, &s.c) < 0 ||
		    stream_init(&s.out, cq_seed, STREAM_MAX_LEN) < 0 ||
		    stream_init(&s.in, sq_seed, STREAM_MAX_LEN) < 0) {
			fail_shared(sh, "server", &s, "setup failed");
			_exit(1);
		}
		s.ev = shmring_instance_worker_event(inst, 0);
		const char *err = pump(&s);
		if (err) {
			fail_shared(sh, "server", &s, err);
			_exit(1);
		}
		fprintf(stderr, "server: %llu sent, %llu received, %llu sleeps\n",
		        (unsigned long long)s.sent, (unsigned long long)s.got,
		        (unsigned long long)s.sleeps);
		_exit(0);
	}

	assert_int_equal(stream_init(&s.out, sq_seed, STREAM_MAX_LEN), 0);
	assert_int_equal(stream_init(&s.in, cq_seed, STREAM_MAX_LEN), 0);
	const char *err = pump(&s);
	if (err)
		fail_shared(sh, "client", &s, err);
	int st = wait_child(pid, 120000);
	double secs = (double)(shmring_now_ns() - t0) / 1e9;
	if (sh->failed)
		fail_msg("%s", sh->why);
	assert_true(child_ok(st));
	fprintf(stderr, "client: %llu sent, %llu received each way in %.1f s\n",
	        (unsigned long long)s.sent, (unsigned long long)s.got, secs);
	assert_true(s.sent == n && s.got == n);

	/* the counters agree with what was checked */
	const struct shmring_chan_counters *cc = shmring_chan_counters(s.c, SHMRING_CLIENT);
	const struct shmring_chan_counters *sc = shmring_chan_counters(s.c, SHMRING_SERVER);
	assert_true(cc->records == n && cc->consumed == n && cc->corrupt == 0);
	assert_true(sc->records == n && sc->consumed == n && sc->corrupt == 0);
	shmring_chan_release(s.c);
	shmring_instance_close(inst, 0);
	stream_free(&s.out);
	stream_free(&s.in);
	munmap(sh, sizeof(*sh));
}

static int inst_setup(void **state)
{
	return inst_setup_sized(state, RING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_process_stress, inst_setup, inst_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
