/* SPDX-License-Identifier: MIT */
/*
 * A consumer dies mid-stream (a real fork + kill -9, several times): the
 * producer runs into SHMRING_FULL and keeps getting it without blocking; a
 * new consumer opens the channel as SERVER and continues exactly from the
 * last released position (records read but not released are delivered
 * again); every record is checked, and the last consumer drains the whole
 * stream to its end. Every loop has a deadline.
 */
#include "core/fixture.h"
#include "core/stream.h"

#include <stdatomic.h>
#include <sys/prctl.h>

#define RING (64u * 1024)
#define ROUNDS 5
#define MAX_RECORDS (1u << 20)

struct shared {
	_Atomic uint64_t got;   /* next seq the current consumer expects */
	_Atomic uint64_t total; /* 0 while producing; then the stream's length */
	_Atomic int failed;
	char why[200];
};

/* The consumer: read, check and release in random batches; stop at total. */
static void consumer(const char *dir, uint64_t first, struct shared *sh, uint64_t seed)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct stream in;
	struct shmring_instance *inst;
	struct shmring_chan *c;
	if (stream_init(&in, seed, STREAM_MAX_LEN) < 0 || shmring_instance_attach(dir, &inst) < 0 ||
	    shmring_chan_open(inst, 0, SHMRING_SERVER, &c) < 0) {
		snprintf(sh->why, sizeof(sh->why), "consumer setup failed");
		sh->failed = 1;
		_exit(1);
	}
	uint64_t got = first, rnd = first ^ (uint64_t)getpid(), dl = deadline_in_ms(60000);
	uint32_t batch = 1 + (uint32_t)(splitmix64(&rnd) % 16), in_batch = 0, unreleased = 0;
	struct shmring_rec rec;
	for (uint64_t spins = 0;; spins++) {
		uint64_t total = atomic_load(&sh->total);
		if (total && got == total)
			_exit(0);
		int rc = shmring_peek(c, &rec);
		if (rc == 0) {
			const char *err = stream_check(&in, got, &rec);
			if (err) {
				snprintf(sh->why, sizeof(sh->why),
				         "consumer at %llu: %s (got %llu)", (unsigned long long)got,
				         err, (unsigned long long)rec.req_id);
				sh->failed = 1;
				_exit(1);
			}
			got++;
			atomic_store(&sh->got, got);
			in_batch++;
			unreleased += SHMRING_REC_HDR + rec.len;
		} else if (rc != SHMRING_EMPTY) {
			snprintf(sh->why, sizeof(sh->why), "consumer: peek failed %d", rc);
			sh->failed = 1;
			_exit(1);
		}
		/* Hold a batch even while waiting for its records, so that a
		 * kill often lands between peek and release; never hold more
		 * than half the ring, so the producer always has room. */
		if (in_batch >= batch || unreleased > RING / 2) {
			shmring_release(c);
			in_batch = unreleased = 0;
			batch = 1 + (uint32_t)(splitmix64(&rnd) % 16);
		}
		if ((spins & 1023) == 0 && deadline_passed(dl)) {
			snprintf(sh->why, sizeof(sh->why), "consumer: no end after 60 s");
			sh->failed = 1;
			_exit(1);
		}
	}
}

struct producer {
	struct stream out;
	struct shmring_chan *c;
	uint8_t *raw;
	uint64_t sent;
	uint64_t *end_pos; /* end_pos[seq]: SQ tail once record seq was published */
};

/* One record, published at once; SHMRING_FULL or 0. */
static int produce_one(struct producer *p)
{
	if (p->sent >= MAX_RECORDS)
		fail_msg("test ran out of records");
	int rc = stream_put(&p->out, p->c, p->sent, 0);
	if (rc != 0)
		return rc;
	shmring_publish(p->c);
	p->end_pos[p->sent++] = raw_load64(p->raw, RAW_SQ_TAIL);
	return 0;
}

/* With nobody consuming, the producer must reach SHMRING_FULL within the
 * number of records a ring can hold, then keep getting it at once. */
static void fill_until_full(struct producer *p)
{
	uint32_t puts = 0;
	while (produce_one(p) == 0) {
		puts++;
		assert_true(puts <= RING / SHMRING_REC_HDR);
	}
	uint64_t full0 = shmring_chan_counters(p->c, SHMRING_CLIENT)->full;
	uint64_t t0 = shmring_now_ns();
	struct shmring_claim cl;
	uint32_t len = stream_len(&p->out, p->sent);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(shmring_claim(p->c, len, &cl), SHMRING_FULL);
	assert_true(shmring_chan_counters(p->c, SHMRING_CLIENT)->full >= full0 + 10000);
	assert_true(shmring_now_ns() - t0 < 2000000000ull); /* never blocks */
}

/* The seq right after the released head: the record that ended there + 1. */
static uint64_t seq_after(const struct producer *p, uint64_t head)
{
	if (head == 0)
		return 0;
	for (uint64_t s = p->sent; s-- > 0;)
		if (p->end_pos[s] == head)
			return s + 1;
	fail_msg("released head %llu is not the end of any record", (unsigned long long)head);
	return 0;
}

static void test_consumer_killed_mid_stream(void **state)
{
	struct tinst t = *(struct tinst *)*state; /* removed by inst_teardown, pass or fail */
	struct shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	const uint64_t seed = 0xdead;
	struct producer p = {0};
	size_t raw_size = 0;
	p.raw = raw_map(&t, 0, &raw_size);
	assert_non_null(p.raw);
	p.end_pos = calloc(MAX_RECORDS, sizeof(*p.end_pos));
	assert_non_null(p.end_pos);
	assert_int_equal(stream_init(&p.out, seed, STREAM_MAX_LEN), 0);
	struct shmring_instance *inst;
	assert_int_equal(shmring_instance_attach(t.dir, &inst), 0);
	assert_int_equal(shmring_chan_claim(inst, &p.c), 0);

	uint64_t first = 0, rnd = 99, redelivered = 0;
	for (int round = 0; round <= ROUNDS; round++) {
		atomic_store(&sh->got, first);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			consumer(t.dir, first, sh, seed);
		if (round == ROUNDS) {
			/* the last consumer: produce a last stretch and let it drain */
			uint64_t end = p.sent + 20000;
			uint64_t dl = deadline_in_ms(60000);
			while (p.sent < end && !sh->failed) {
				int rc = produce_one(&p);
				assert_true(rc == 0 || rc == SHMRING_FULL);
				assert_false(deadline_passed(dl));
			}
			atomic_store(&sh->total, p.sent);
			int st = wait_child(pid, 60000);
			if (sh->failed)
				fail_msg("%s", sh->why);
			assert_true(child_ok(st));
			assert_true(atomic_load(&sh->got) == p.sent);
			break;
		}
		/* let it consume a random stretch, then kill -9 it mid-stream */
		uint64_t kill_at = first + 2000 + splitmix64(&rnd) % 30000;
		uint64_t dl = deadline_in_ms(60000);
		while (atomic_load(&sh->got) < kill_at) {
			if (sh->failed)
				fail_msg("%s", sh->why);
			int rc = produce_one(&p);
			assert_true(rc == 0 || rc == SHMRING_FULL);
			if (deadline_passed(dl))
				fail_msg("consumer made no progress");
		}
		assert_int_equal(kill(pid, SIGKILL), 0);
		int st = wait_child(pid, 10000);
		assert_true(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		uint64_t read_by_dead = atomic_load(&sh->got);

		fill_until_full(&p);
		uint64_t head = raw_load64(p.raw, RAW_SQ_HEAD);
		first = seq_after(&p, head);
		assert_true(first <= read_by_dead);
		redelivered += read_by_dead - first;
	}
	fprintf(stderr, "%d kills, %llu records, %llu read-but-unreleased delivered again\n",
	        ROUNDS, (unsigned long long)p.sent, (unsigned long long)redelivered);
	assert_int_equal(shmring_chan_counters(p.c, SHMRING_CLIENT)->corrupt, 0);
	shmring_chan_release(p.c);
	shmring_instance_close(inst, 0);
	stream_free(&p.out);
	free(p.end_pos);
	munmap(p.raw, raw_size);
	munmap(sh, sizeof(*sh));
}

static int inst_setup(void **state)
{
	return inst_setup_sized(state, RING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_consumer_killed_mid_stream, inst_setup,
	                                    inst_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
