/* SPDX-License-Identifier: MIT */
/* SIGTERM with records in flight: the worker is stopped (SIGSTOP) while the
 * rings fill with ACCESS and LOG records, then the master gets SIGTERM and
 * the worker continues. Every ACCESS must be answered in the CQ and every
 * LOG entry must be in the sink's file, in order; the daemon exits 0,
 * refuses new records (closed flag) and removes its segments. */
#include "client.h"

#define N 4000

int main(void)
{
	tc_init("sigterm");
	const char *args[] = {"--workers", "1", "--channels", "2", "--log-flush-ms", "1000", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	char log_path[400], spec[420];
	snprintf(log_path, sizeof(log_path), "%s/access.log", tc_dir);
	snprintf(spec, sizeof(spec), "file:%s", log_path);
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	struct tc_conf logc = {.id = 2, .plugin = "testlog", .k1 = "sink", .v1 = spec};
	uint64_t req = 1;
	tc_register(c, &r, req++, &hello);
	tc_register(c, &r, req++, &logc);

	pid_t worker = (pid_t)shmring_instance_worker_counters(inst, 0)->pid;
	CHECK(kill(worker, SIGSTOP) == 0, "SIGSTOP worker");
	uint64_t first = req, id = hello.id;
	for (int i = 0; i < N; i++) {
		tc_send(c, SHMRING_REC_ACCESS, req++, tc_fill_access, &id);
		char line[64];
		snprintf(line, sizeof(line), "entry-%06d", i);
		struct tc_log_line la = {logc.id, line};
		tc_send(c, SHMRING_REC_LOG, 0, tc_fill_log_line, &la);
	}
	CHECK(kill(tc_pid, SIGTERM) == 0, "SIGTERM master");
	/* The master sets the closed flag at once: new records are refused. */
	uint64_t deadline = tc_now() + 5 * SEC;
	while (!shmring_chan_is_closed(c))
		CHECK(tc_now() < deadline, "closed flag not set");
	CHECK(shmring_send(c, SHMRING_REC_ACCESS, 1, "x", 1) == -EPIPE,
	      "closed channel took a record");
	CHECK(kill(worker, SIGCONT) == 0, "SIGCONT worker");
	CHECK(tc_wait_exit(tc_pid, 20 * SEC) == 0, "graceful stop exit code");

	/* Every ACCESS answered, in order (the CQ stays mapped). */
	for (uint64_t want = first; want < first + N; want++) {
		CHECK(tc_recv(c, &r, 1 * SEC) == 0, "reply %llu missing", (unsigned long long)want);
		CHECK(r.req_id == want && r.s == SHMRING_REPLY_OK,
		      "reply %llu (s=%llu) instead of %llu", (unsigned long long)r.req_id,
		      (unsigned long long)r.s, (unsigned long long)want);
	}
	/* Every LOG entry written, in order. */
	FILE *f = fopen(log_path, "r");
	CHECK(f, "log file");
	char line[128];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		char want[64];
		snprintf(want, sizeof(want), "entry-%06d\n", n);
		CHECK(!strcmp(line, want), "line %d is %s", n, line);
		n++;
	}
	fclose(f);
	CHECK(n == N, "%d log lines of %d", n, N);
	char ctl[400];
	struct stat sb;
	snprintf(ctl, sizeof(ctl), "%s/ctl", tc_shm);
	CHECK(stat(ctl, &sb) < 0, "segments unlinked");
	shmring_chan_close(c);
	shmring_instance_close(inst, 0);
	printf("%d replies and %d log lines after SIGTERM\nok\n", N, n);
	return 0;
}
