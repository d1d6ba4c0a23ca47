/* SPDX-License-Identifier: MIT */
/* Truncating a segment under a running daemon and a client that maps it
 * (anyone who may write a segment may truncate it): neither dies of SIGBUS.
 * A truncated channel is reported corrupt by the worker and refused at
 * claim, the client moves to another channel; a truncated ctl is restored
 * by the master, and clients attach again. The daemon's workers keep
 * running (no restart). */
#include "client.h"
#include "shmring/client.h"

static void truncate_file(const char *name)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", tc_shm, name);
	CHECK(truncate(path, 0) == 0, "truncate %s: %s", path, strerror(errno));
}

static void wait_log(const char *needle)
{
	uint64_t deadline = tc_now() + 5 * SEC;
	while (!tc_log_contains(needle)) {
		CHECK(tc_now() < deadline, "the log never said '%s'", needle);
		usleep(1000);
	}
}

/* Claim a channel, register hello on it and get an ACCESS answered. */
static struct shmring_chan *serve_one(struct shmring_instance *inst, uint64_t req)
{
	static struct tc_reply r;
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	tc_register(c, &r, req, &hello);
	uint64_t id = 1;
	tc_send(c, SHMRING_REC_ACCESS, req + 1, tc_fill_access, &id);
	tc_expect(c, &r, req + 1, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "ACCESS on channel %u", shmring_chan_index(c));
	return c;
}

int main(void)
{
	tc_init("truncate");
	const char *args[] = {"--workers", "1", "--channels", "3", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmring_worker_counters *wc = shmring_instance_worker_counters(inst, 0);
	uint64_t worker = wc->pid;
	struct shmring_chan *c = serve_one(inst, 1);
	uint32_t lost = shmring_chan_index(c);

	/* The channel in use. The client's next look at it faults, and reads
	 * zeros: it is told to go (health), not killed. */
	char name[32];
	snprintf(name, sizeof(name), "ch-%u", lost);
	truncate_file(name);
	uint64_t caught = shmring_sigbus_caught();
	CHECK(shmring_client_health(inst, c, 5 * SEC) == -ESTALE, "the client kept the channel");
	CHECK(shmring_sigbus_caught() == caught + 1, "no SIGBUS was caught");
	shmring_chan_release(c);
	c = serve_one(inst, 10);
	CHECK(shmring_chan_index(c) != lost, "claimed the truncated channel again");
	snprintf(name, sizeof(name), "channel %u: segment truncated", lost);
	wait_log(name);

	/* ctl: the master restores it; clients attach again. */
	truncate_file("ctl");
	wait_log("ctl was truncated or overwritten: restored");
	shmring_chan_release(c);
	shmring_instance_close(inst, 0);
	inst = tc_wait_ready(1, 5 * SEC);
	c = serve_one(inst, 20);
	CHECK(shmring_client_health(inst, c, 5 * SEC) == 0, "after the repair");

	/* Nobody died: the master serves, the worker was never restarted. */
	int st;
	CHECK(waitpid(tc_pid, &st, WNOHANG) == 0, "shmringd died");
	wc = shmring_instance_worker_counters(inst, 0);
	CHECK(wc->pid == worker, "the worker was restarted (pid %llu, was %llu)",
	      (unsigned long long)wc->pid, (unsigned long long)worker);
	return tc_stop(inst, c);
}
