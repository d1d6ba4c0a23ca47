/* SPDX-License-Identifier: MIT */
/* Channel claims: one producer per channel. Racing claimers in separate
 * processes never get the same channel; a live holder keeps its channel; a
 * dead holder's claim (exited, even still a zombie) is taken over. */
#include "core/fixture.h"

struct claim_result {
	int rc;
	int index;
	uint64_t owner;
};

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* nclaimers processes claim at once (released together through a pipe),
 * report, and hold their claim until the parent lets them go. */
static void race_claims(uint32_t nchannels, int nclaimers)
{
	struct tinst t;
	assert_int_equal(tinst_create(&t, nchannels, 4096, 4096), 0);
	int go[2], res[2], done[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pids[16];
	assert_true(nclaimers <= 16);
	for (int i = 0; i < nclaimers; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			close(res[0]);
			close(done[1]);
			char b;
			if (read(go[0], &b, 1) != 0)
				_exit(2);
			struct shmring_instance *inst;
			struct claim_result r = {0, -1, 0};
			r.rc = shmring_instance_attach(t.dir, &inst);
			struct shmring_chan *c = NULL;
			if (r.rc == 0)
				r.rc = shmring_chan_claim(inst, &c);
			if (c) {
				r.index = (int)shmring_chan_index(c);
				r.owner = shmring_chan_owner(c);
				if (r.owner != shmring_self_owner())
					r.rc = -EFAULT;
			}
			if (write(res[1], &r, sizeof(r)) != sizeof(r))
				_exit(3);
			/* hold the claim until the parent has every answer */
			if (read(done[0], &b, 1) != 0)
				_exit(4);
			shmring_chan_release(c);
			_exit(0);
		}
	}
	close(go[0]);
	close(res[1]);
	close(done[0]);
	close(go[1]); /* start the race */
	int taken[SHMRING_MAX_CHANNELS] = {0};
	int won = 0, busy = 0;
	for (int i = 0; i < nclaimers; i++) {
		struct claim_result r;
		assert_int_equal(read_full(res[0], &r, sizeof(r)), 0);
		if (r.rc == 0) {
			assert_in_range(r.index, 0, (int)nchannels - 1);
			if (taken[r.index]++)
				fail_msg("channel %d claimed twice", r.index);
			won++;
		} else {
			assert_int_equal(r.rc, -EBUSY);
			busy++;
		}
	}
	int expect_won = nclaimers < (int)nchannels ? nclaimers : (int)nchannels;
	assert_int_equal(won, expect_won);
	assert_int_equal(busy, nclaimers - expect_won);
	close(done[1]);
	close(res[0]);
	for (int i = 0; i < nclaimers; i++)
		assert_true(child_ok(wait_child(pids[i], 10000)));
	/* every claim was released */
	for (uint32_t k = 0; k < nchannels; k++) {
		struct shmring_chan *c;
		assert_int_equal(shmring_chan_open(t.inst, k, SHMRING_SERVER, &c), 0);
		assert_true(shmring_chan_owner(c) == 0);
		shmring_chan_close(c);
	}
	tinst_destroy(&t);
}

static void test_racing_claimers_get_distinct_channels(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++)
		race_claims(4, 4);
}

static void test_more_claimers_than_channels(void **state)
{
	(void)state;
	for (int round = 0; round < 10; round++)
		race_claims(3, 8);
}

static void test_claim_and_release(void **state)
{
	struct fx *f = *state;
	struct shmring_instance *inst;
	assert_int_equal(shmring_instance_attach(f->t.dir, &inst), 0);
	struct shmring_chan *c;
	assert_int_equal(shmring_chan_claim(inst, &c), 0);
	assert_true(shmring_chan_owner(c) == shmring_self_owner());
	assert_true(raw_load64(f->raw, RAW_OWNER) == shmring_self_owner());
	assert_int_equal(shmring_owner_alive(shmring_self_owner()), 1);
	shmring_chan_release(c);
	assert_true(raw_load64(f->raw, RAW_OWNER) == 0);
	/* release does not clear a claim that is no longer ours */
	assert_int_equal(shmring_chan_claim(inst, &c), 0);
	raw_store64(f->raw, RAW_OWNER, 12345);
	shmring_chan_release(c);
	assert_true(raw_load64(f->raw, RAW_OWNER) == 12345);
	shmring_instance_close(inst, 0);
}

static void test_owner_alive(void **state)
{
	(void)state;
	uint64_t me = shmring_self_owner();
	assert_int_equal(shmring_owner_alive(me), 1);
	assert_int_equal(shmring_owner_alive(0), 0);
	/* same pid, another start time: a recycled pid is not the owner */
	assert_int_equal(shmring_owner_alive(me + (1ull << 22)), 0);
	/* pid 1 exists, but not with our start time */
	assert_int_equal(shmring_owner_alive((me & ~((1ull << 22) - 1)) | 1), 0);
}

/* A child claims the only channel and holds it: the parent gets -EBUSY. */
static void test_live_holder_keeps_channel(void **state)
{
	struct fx *f = *state;
	int res[2], done[2];
	assert_int_equal(pipe(res), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(res[0]);
		close(done[1]);
		struct shmring_instance *inst;
		struct shmring_chan *c = NULL;
		int rc = shmring_instance_attach(f->t.dir, &inst);
		if (rc == 0)
			rc = shmring_chan_claim(inst, &c);
		if (write(res[1], &rc, sizeof(rc)) != sizeof(rc))
			_exit(3);
		char b;
		if (read(done[0], &b, 1) != 0)
			_exit(4);
		shmring_chan_release(c);
		_exit(0);
	}
	close(res[1]);
	close(done[0]);
	int rc;
	assert_int_equal(read_full(res[0], &rc, sizeof(rc)), 0);
	assert_int_equal(rc, 0);
	struct shmring_instance *inst;
	assert_int_equal(shmring_instance_attach(f->t.dir, &inst), 0);
	struct shmring_chan *c = (struct shmring_chan *)1;
	assert_int_equal(shmring_chan_claim(inst, &c), -EBUSY);
	assert_null(c);
	/* the child releases on exit: the channel is free again */
	close(done[1]);
	assert_true(child_ok(wait_child(pid, 10000)));
	assert_int_equal(shmring_chan_claim(inst, &c), 0);
	shmring_chan_release(c);
	shmring_instance_close(inst, 0);
	close(res[0]);
}

/* A child claims the only channel and exits without releasing it. */
static void dead_owner_taken_over(struct fx *f, int reap_first)
{
	int res[2];
	assert_int_equal(pipe(res), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(res[0]);
		struct shmring_instance *inst;
		struct shmring_chan *c = NULL;
		int rc = shmring_instance_attach(f->t.dir, &inst);
		if (rc == 0)
			rc = shmring_chan_claim(inst, &c);
		uint64_t owner = rc == 0 ? shmring_chan_owner(c) : 0;
		if (write(res[1], &owner, sizeof(owner)) != sizeof(owner))
			_exit(3);
		_exit(0); /* no release: the process just dies */
	}
	close(res[1]);
	uint64_t child_owner;
	assert_int_equal(read_full(res[0], &child_owner, sizeof(child_owner)), 0);
	close(res[0]);
	assert_true(child_owner != 0);
	assert_true((child_owner & ((1ull << 22) - 1)) == (uint64_t)pid);
	assert_true(raw_load64(f->raw, RAW_OWNER) == child_owner);
	if (reap_first) {
		assert_true(child_ok(wait_child(pid, 10000)));
	} else {
		/* exited but not reaped: a zombie holds no claim */
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
		assert_int_equal(proc_state(pid), 'Z');
	}
	assert_int_equal(shmring_owner_alive(child_owner), 0);
	struct shmring_instance *inst;
	assert_int_equal(shmring_instance_attach(f->t.dir, &inst), 0);
	struct shmring_chan *c;
	assert_int_equal(shmring_chan_claim(inst, &c), 0);
	assert_true(raw_load64(f->raw, RAW_OWNER) == shmring_self_owner());
	shmring_chan_release(c);
	shmring_instance_close(inst, 0);
	if (!reap_first)
		assert_true(child_ok(wait_child(pid, 10000)));
}

static void test_dead_owner_taken_over(void **state)
{
	dead_owner_taken_over(*state, 1);
}

static void test_zombie_owner_taken_over(void **state)
{
	dead_owner_taken_over(*state, 0);
}

/* Replies left in the CQ for a previous owner are skipped by a new claim. */
static void test_claim_skips_old_replies(void **state)
{
	struct fx *f = *state;
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 1, "old", 3), 0);
	shmring_publish(f->sv);
	struct shmring_instance *inst;
	assert_int_equal(shmring_instance_attach(f->t.dir, &inst), 0);
	struct shmring_chan *c;
	assert_int_equal(shmring_chan_claim(inst, &c), 0);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(c, &rec), SHMRING_EMPTY);
	assert_int_equal(raw_load64(f->raw, RAW_CQ_HEAD), raw_load64(f->raw, RAW_CQ_TAIL));
	/* new replies arrive normally */
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 2, "new", 3), 0);
	shmring_publish(f->sv);
	assert_int_equal(shmring_peek(c, &rec), 0);
	assert_true(rec.req_id == 2);
	shmring_release(c);
	shmring_chan_release(c);
	shmring_instance_close(inst, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_racing_claimers_get_distinct_channels),
	    cmocka_unit_test(test_more_claimers_than_channels),
	    cmocka_unit_test(test_owner_alive),
	    cmocka_unit_test_setup_teardown(test_claim_and_release, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_live_holder_keeps_channel, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dead_owner_taken_over, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_zombie_owner_taken_over, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_claim_skips_old_replies, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
