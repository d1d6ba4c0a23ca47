/* SPDX-License-Identifier: MIT */
/* A channel whose SQ positions are corrupt when a worker starts is reported,
 * counted and skipped: the worker serves the other channels of its slot
 * instead of exiting (and being restarted into the same exit forever). */
#include "client.h"

#include <stddef.h>

/* Byte offsets in a channel segment (the layout of shmring/src/internal.h,
 * checked there by _Static_assert; tests/core/core_util.h names them too). */
#define SQ_TAIL 192
#define SQ_HEAD 256
#define SERVER_COUNTERS 576

int main(void)
{
	tc_init("corrupt-channel");
	const char *args[] = {"--workers", "1", "--channels", "2", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);

	/* ch-0: the consumer's head past the producer's tail. */
	char path[400];
	snprintf(path, sizeof(path), "%s/ch-0", tc_shm);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0, "open %s", path);
	uint8_t *raw = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	CHECK(raw != MAP_FAILED, "mmap");
	__atomic_store_n((uint64_t *)(raw + SQ_TAIL), 64, __ATOMIC_RELEASE);
	__atomic_store_n((uint64_t *)(raw + SQ_HEAD), 128, __ATOMIC_RELEASE);

	/* A worker that starts now finds it corrupt. */
	struct shmring_worker_counters *wc = shmring_instance_worker_counters(inst, 0);
	pid_t old = (pid_t)wc->pid;
	CHECK(kill(old, SIGKILL) == 0, "kill worker");
	uint64_t deadline = tc_now() + 10 * SEC;
	while ((pid_t)wc->pid == old || wc->pid == 0) {
		CHECK(tc_now() < deadline, "the worker was not restarted");
		usleep(1000);
	}

	/* The client skips ch-0 and gets ch-1, which is served. */
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	CHECK(shmring_chan_index(c) == 1, "claimed channel %u", shmring_chan_index(c));
	static struct tc_reply r;
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	tc_register(c, &r, 1, &hello);
	uint64_t id = 1;
	tc_send(c, SHMRING_REC_ACCESS, 2, tc_fill_access, &id);
	tc_expect(c, &r, 2, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "ACCESS on the healthy channel");

	CHECK(tc_log_contains("channel 0: cannot open"), "not reported");
	uint64_t corrupt = __atomic_load_n(
	    (uint64_t *)(raw + SERVER_COUNTERS + offsetof(struct shmring_chan_counters, corrupt)),
	    __ATOMIC_ACQUIRE);
	CHECK(corrupt >= 1, "not counted on the channel");
	CHECK(wc->errors >= 1, "not counted for the worker");
	munmap(raw, 4096);
	return tc_stop(inst, c);
}
