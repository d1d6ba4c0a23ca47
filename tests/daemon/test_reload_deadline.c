/* SPDX-License-Identifier: MIT */
/* A reload is not held by a hook that never returns. Workers are replaced
 * one at a time, each with a deadline (drain_timeout_ms + 1 s) after which
 * it is killed, and the watchdog stays on meanwhile:
 *   1. watchdog off, drain_timeout_ms = 200: a worker hung in a hook at
 *      SIGHUP time is killed at the deadline and the reload completes;
 *   2. watchdog_ms = 1500, drain_timeout_ms = 20000: the slot replaced
 *      second hangs while the first is replaced; the watchdog kills it long
 *      before that deadline, and the reload completes.
 * Both replace every worker (new pids). */
#include "client.h"

static void fill_path(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, 1);
	shmring_mpw_cstr(w, "path");
	shmring_mpw_cstr(w, arg);
}

/* Hang the worker serving channel k (crasher's "/hang"). */
static void hang(struct shmring_instance *inst, uint32_t k)
{
	static struct tc_reply r;
	struct shmring_chan *c;
	CHECK(shmring_chan_open(inst, k, SHMRING_CLIENT, &c) == 0, "open channel %u", k);
	struct tc_conf crasher = {.id = 1, .plugin = "crasher"};
	tc_register(c, &r, 1, &crasher);
	tc_send(c, SHMRING_REC_ACCESS, 2, fill_path, "/hang");
	/* Wait until its worker is inside the hook. */
	struct shmringd_stats *st = tc_stats();
	uint32_t slot = k % shmring_instance_nworkers(inst);
	uint64_t deadline = tc_now() + 5 * SEC;
	while (__atomic_load_n(&st->w[slot].inflight_req, __ATOMIC_ACQUIRE) != 2) {
		CHECK(tc_now() < deadline, "the hook never started");
		usleep(1000);
	}
	shmring_chan_close(c);
}

static void reload_with_hang(const char *const *args, uint32_t hung, uint64_t within_ns)
{
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(2, 10 * SEC);
	uint64_t old[2];
	for (uint32_t w = 0; w < 2; w++)
		old[w] = shmring_instance_worker_counters(inst, w)->pid;
	if (hung == 0)
		hang(inst, 0);
	uint64_t t0 = tc_now();
	CHECK(kill(tc_pid, SIGHUP) == 0, "SIGHUP");
	if (hung == 1)
		hang(inst, 1); /* while slot 0 is being replaced, or right before */
	while (!tc_log_contains("reload: done")) {
		CHECK(tc_now() - t0 < within_ns, "the reload did not complete in %llu ms",
		      (unsigned long long)(within_ns / MS));
		usleep(5000);
	}
	/* The last new worker publishes its pid once it is up. */
	uint64_t up_by = tc_now() + 5 * SEC;
	for (uint32_t w = 0; w < 2; w++) {
		const struct shmring_worker_counters *wc =
		    shmring_instance_worker_counters(inst, w);
		while (!wc->pid || wc->pid == old[w]) {
			CHECK(tc_now() < up_by, "worker %u not replaced", w);
			usleep(1000);
		}
	}
	shmring_instance_close(inst, 0);
	kill(tc_pid, SIGTERM);
	CHECK(tc_wait_exit(tc_pid, 10 * SEC) == 0, "stop");
	FILE *f = fopen(tc_errlog, "w"); /* the next run's log starts empty */
	if (f)
		fclose(f);
}

int main(void)
{
	tc_init("reload-deadline");
	const char *deadline[] = {
	    "--workers",          "2",   "--channels", "2", "--watchdog-ms", "0",
	    "--drain-timeout-ms", "200", NULL};
	reload_with_hang(deadline, 0, 5 * SEC);
	const char *watchdog[] = {"--workers",          "2",     "--channels", "2",
	                          "--watchdog-ms",      "1500",  "--spin-us",  "0",
	                          "--drain-timeout-ms", "20000", NULL};
	reload_with_hang(watchdog, 1, 8 * SEC);
	printf("ok\n");
	return 0;
}
