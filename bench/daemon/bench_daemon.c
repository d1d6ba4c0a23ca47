/* SPDX-License-Identifier: MIT */
/*
 * bench_daemon [--json PATH] [--rtt-n N] [--log-n N] [--cold-n N] [--idle-s S]
 *              [--http-n N] [--http-only]
 *
 *   rtt_p50_ns / rtt_p99_ns  C client -> shmringd (1 worker) -> hello ->
 *                            REPLY, one ~64-byte ACCESS at a time; client
 *                            and worker pinned to different CPUs
 *   log_entries_per_s        1 worker, file sink, 200-byte entries: from the
 *                            first LOG record sent to the last byte written
 *                            (entries written, not dropped; median of 3 runs)
 *   rtt_cold_p50/p99_ns      the idle path: requests 2 ms apart, the worker
 *                            asleep on its futex, the client blocked on the
 *                            doorbell socket (futex wake + doorbell byte)
 *   http_log_entries_per_s   1 worker, an http sink with Kong's http-log
 *                            defaults (max_batch_size = 1: one POST per
 *                            entry, one in flight) to a local keep-alive
 *                            collector (a thread here, answering 200 at
 *                            once): from the first LOG record sent to the
 *                            last request answered
 *   idle_cpu_percent         master + 2 workers with no traffic, CPU time
 *                            from /proc/<pid>/stat over idle_s seconds, as %
 *                            of one CPU
 *
 * Targets on the 2-core VM: p50 <= 2 us, >= 1 M entries/s, idle <= 1 %.
 */
#include "client.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void pin(pid_t pid, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(pid, sizeof(set), &set);
}

static void fresh_instance(const char *name)
{
	snprintf(tc_shm, sizeof(tc_shm), "%s/%s", tc_dir, name);
}

static void stop_daemon(struct shmring_instance *inst)
{
	shmring_instance_close(inst, 0);
	kill(tc_pid, SIGTERM);
	CHECK(tc_wait_exit(tc_pid, 30 * SEC) == 0, "daemon stop");
}

/* ---- round trip -------------------------------------------------------------- */

static void rtt(uint32_t n, uint64_t *p50, uint64_t *p99, uint64_t *p999)
{
	fresh_instance("rtt");
	const char *args[] = {"--workers", "1", "--channels", "1", "--spin-us", "1000", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	pin((pid_t)shmring_instance_worker_counters(inst, 0)->pid, 1);
	pin(0, 0);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	tc_register(c, &r, 1, &hello);

	uint64_t *lat = malloc(sizeof(uint64_t) * n);
	struct shmring_mpr mpr;
	shmring_mpr_init(&mpr);
	uint64_t id = 1, warm = n / 10;
	for (uint64_t i = 0; i < warm + n; i++) {
		uint64_t t0 = shmring_now_ns();
		struct shmring_claim cl;
		CHECK(shmring_claim(c, 256, &cl) == 0, "claim");
		struct shmring_mpw w;
		shmring_mpw_init(&w, cl.payload, cl.cap);
		tc_fill_access(&w, &id);
		shmring_commit(c, &cl, (uint32_t)shmring_mpw_finish(&w), SHMRING_REC_ACCESS, 0,
		               i + 2);
		shmring_publish(c);
		struct shmring_rec rec;
		while (shmring_peek(c, &rec) != 0)
			;
		CHECK(rec.req_id == i + 2, "reply order");
		CHECK(shmring_mpr_parse(&mpr, rec.payload, rec.len) == 0, "reply parse");
		shmring_release(c);
		if (i >= warm)
			lat[i - warm] = shmring_now_ns() - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	*p50 = lat[n / 2];
	*p99 = lat[(uint64_t)n * 99 / 100];
	*p999 = lat[(uint64_t)n * 999 / 1000];
	free(lat);
	shmring_mpr_destroy(&mpr);
	shmring_chan_release(c);
	cpu_set_t all;
	CPU_ZERO(&all);
	for (int i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &all);
	sched_setaffinity(0, sizeof(all), &all);
	stop_daemon(inst);
}

/* ---- cold round trip: both sides asleep ----------------------------------------- */

/* The idle path: the worker sleeps on its futex (the client's publish wakes
 * it), the client blocks on the doorbell socket (the worker's publish rings
 * it). Requests are 2 ms apart so the worker is always asleep. */
static void rtt_cold(uint32_t n, uint64_t *p50, uint64_t *p99)
{
	fresh_instance("cold");
	const char *args[] = {"--workers", "1", "--channels", "1", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	tc_register(c, &r, 1, &hello);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	CHECK(shmring_doorbell_path(inst, 0, sa.sun_path, sizeof(sa.sun_path)) > 0, "bell path");
	int bell = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(connect(bell, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect bell");

	uint64_t *lat = malloc(sizeof(uint64_t) * n), id = 1;
	for (uint64_t i = 0; i < n; i++) {
		struct timespec gap = {0, 2000000};
		nanosleep(&gap, NULL);
		uint64_t t0 = shmring_now_ns();
		CHECK(shmring_doorbell_arm(c) == 0, "arm");
		tc_send(c, SHMRING_REC_ACCESS, i + 2, tc_fill_access, &id);
		struct shmring_rec rec;
		while (shmring_peek(c, &rec) != 0) {
			struct pollfd p = {.fd = bell, .events = POLLIN};
			CHECK(poll(&p, 1, 5000) == 1, "doorbell did not ring");
			char b[64];
			CHECK(read(bell, b, sizeof(b)) > 0, "bell read");
		}
		lat[i] = shmring_now_ns() - t0;
		CHECK(rec.req_id == i + 2, "reply order");
		shmring_release(c);
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	*p50 = lat[n / 2];
	*p99 = lat[(uint64_t)n * 99 / 100];
	free(lat);
	close(bell);
	shmring_chan_release(c);
	stop_daemon(inst);
}

/* ---- log throughput ------------------------------------------------------------ */

static double log_rate(uint32_t n, uint64_t *dropped)
{
	fresh_instance("log");
	const char *args[] = {"--workers",
	                      "1",
	                      "--channels",
	                      "1",
	                      "--log-batch-bytes",
	                      "262144",
	                      "--log-sink-max-bytes",
	                      "67108864",
	                      NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmringd_stats *st = tc_stats();
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	char path[400], spec[420];
	snprintf(path, sizeof(path), "%s/bench.log", tc_dir);
	snprintf(spec, sizeof(spec), "file:%s", path);
	struct tc_conf lc = {.id = 1, .plugin = "testlog", .k1 = "sink", .v1 = spec};
	tc_register(c, &r, 1, &lc);

	char line[200];
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	struct tc_log_line a = {1, line}; /* 199 + '\n' = 200 bytes per entry */
	uint64_t want = (uint64_t)n * 200;
	/* The client's encoder is not what is measured: encode the record
	 * once, then copy it into each claim. */
	uint8_t rec[320];
	struct shmring_mpw w;
	shmring_mpw_init(&w, rec, sizeof(rec));
	tc_fill_log_line(&w, &a);
	int len = shmring_mpw_finish(&w);
	CHECK(len > 0, "encode");
	uint64_t t0 = shmring_now_ns();
	for (uint32_t i = 0; i < n; i++) {
		struct shmring_claim cl;
		int rc;
		while ((rc = shmring_claim(c, (uint32_t)len, &cl)) == SHMRING_FULL) {
			/* Two CPUs, three busy threads (client, worker, io-wq):
			 * give the CPU away instead of spinning. */
			shmring_publish(c);
			sched_yield();
		}
		CHECK(rc == 0, "claim");
		memcpy(cl.payload, rec, (size_t)len);
		shmring_commit(c, &cl, (uint32_t)len, SHMRING_REC_LOG, 0, 0);
		if ((i & 63) == 63)
			shmring_publish(c);
	}
	shmring_publish(c);
	uint64_t deadline = shmring_now_ns() + 60 * SEC;
	while (st->w[0].sink_bytes + st->w[0].sink_dropped * 200 < want) {
		CHECK(shmring_now_ns() < deadline, "log entries not written in time");
		sched_yield();
	}
	uint64_t t1 = shmring_now_ns();
	*dropped = st->w[0].sink_dropped;
	struct stat sb;
	CHECK(stat(path, &sb) == 0, "log file");
	CHECK((uint64_t)sb.st_size + *dropped * 200 == want, "log file size %lld",
	      (long long)sb.st_size);
	shmring_chan_release(c);
	stop_daemon(inst);
	unlink(path);
	/* Only what reached the file counts. */
	return (double)(n - *dropped) / ((double)(t1 - t0) / 1e9);
}

/* ---- http sink throughput -------------------------------------------------------- */

/* The collector thread (tc_http_next): counts the requests it answered. */
static struct {
	int lfd;
	uint64_t requests; /* answered */
	uint64_t last_ns;  /* when the last one was answered */
	volatile bool stop;
} col;

static void *collector(void *arg)
{
	(void)arg;
	static struct tc_http_collector c;
	c.lfd = col.lfd, c.fd = -1, c.have = c.used = 0;
	while (!col.stop) {
		size_t blen;
		if (tc_http_next(&c, 100, &blen)) {
			__atomic_store_n(&col.last_ns, shmring_now_ns(), __ATOMIC_RELAXED);
			__atomic_add_fetch(&col.requests, 1, __ATOMIC_RELEASE);
		}
	}
	if (c.fd >= 0)
		close(c.fd);
	return NULL;
}

static double http_log_rate(uint32_t n)
{
	fresh_instance("http");
	const char *args[] = {"--workers", "1", "--channels", "1", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmringd_stats *st = tc_stats();
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	col.lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	CHECK(bind(col.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(col.lfd, 8) == 0 &&
	          getsockname(col.lfd, (struct sockaddr *)&sa, &sl) == 0,
	      "collector listen");
	col.requests = 0;
	col.stop = false;
	pthread_t th;
	CHECK(pthread_create(&th, NULL, collector, NULL) == 0, "collector thread");
	/* Kong's defaults (one entry per request), a queue that holds the run */
	char spec[128];
	snprintf(spec, sizeof(spec), "http://127.0.0.1:%u/log?max_bytes=67108864",
	         ntohs(sa.sin_port));
	struct tc_conf lc = {.id = 1, .plugin = "testlog", .k1 = "sink", .v1 = spec};
	tc_register(c, &r, 1, &lc);
	char line[200];
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	struct tc_log_line a = {1, line};
	uint64_t t0 = shmring_now_ns();
	for (uint32_t i = 0; i < n; i++)
		tc_send(c, SHMRING_REC_LOG, 0, tc_fill_log_line, &a);
	uint64_t deadline = shmring_now_ns() + 120 * SEC;
	while (__atomic_load_n(&col.requests, __ATOMIC_ACQUIRE) < n) {
		CHECK(shmring_now_ns() < deadline, "collector got %llu of %u entries",
		      (unsigned long long)col.requests, n);
		CHECK(st->w[0].sink_dropped == 0, "the http sink dropped entries");
		usleep(1000);
	}
	double rate = (double)n / ((double)(col.last_ns - t0) / 1e9);
	col.stop = true;
	pthread_join(th, NULL);
	close(col.lfd);
	shmring_chan_release(c);
	stop_daemon(inst);
	return rate;
}

/* ---- idle CPU -------------------------------------------------------------------- */

/* utime + stime of pid in clock ticks. */
static uint64_t cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long long ut = 0, stt = 0;
	/* after ')': state(3) ... utime is field 14, stime 15 */
	if (p)
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt);
	return ut + stt;
}

static double idle_cpu(uint32_t seconds)
{
	fresh_instance("idle");
	const char *args[] = {"--workers", "2", "--channels", "4", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(2, 10 * SEC);
	pid_t pids[3] = {tc_pid, (pid_t)shmring_instance_worker_counters(inst, 0)->pid,
	                 (pid_t)shmring_instance_worker_counters(inst, 1)->pid};
	uint64_t before = 0, after = 0;
	for (int i = 0; i < 3; i++)
		before += cpu_ticks(pids[i]);
	uint64_t t0 = shmring_now_ns();
	struct timespec ts = {seconds, 0};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	for (int i = 0; i < 3; i++)
		after += cpu_ticks(pids[i]);
	uint64_t t1 = shmring_now_ns();
	stop_daemon(inst);
	double cpu_s = (double)(after - before) / (double)sysconf(_SC_CLK_TCK);
	return 100.0 * cpu_s / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
	const char *json = NULL;
	uint32_t rtt_n = 200000, log_n = 1000000, idle_s = 10, cold_n = 1000, http_n = 20000;
	bool http_only = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!strcmp(argv[i], "--rtt-n") && i + 1 < argc)
			rtt_n = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--http-n") && i + 1 < argc)
			http_n = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--http-only"))
			http_only = true;
		else if (!strcmp(argv[i], "--log-n") && i + 1 < argc)
			log_n = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cold-n") && i + 1 < argc)
			cold_n = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--idle-s") && i + 1 < argc)
			idle_s = (uint32_t)atoi(argv[++i]);
		else {
			fprintf(
			    stderr,
			    "usage: bench_daemon [--json PATH] [--rtt-n N] "
			    "[--log-n N] [--cold-n N] [--idle-s S] [--http-n N] [--http-only]\n");
			return 2;
		}
	}
	tc_init("bench");
	double http_rate = http_log_rate(http_n);
	printf("http sink (1 worker, Kong's defaults: one entry per POST, %u entries): %.0f "
	       "entries/s\n",
	       http_n, http_rate);
	if (http_only)
		return 0;
	uint64_t p50, p99, p999, dropped;
	rtt(rtt_n, &p50, &p99, &p999);
	printf("rtt (1 worker, hello, %u round trips): p50 %llu ns  p99 %llu ns  p99.9 %llu ns\n",
	       rtt_n, (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)p999);
	uint64_t cold50, cold99;
	rtt_cold(cold_n, &cold50, &cold99);
	printf("cold rtt (worker asleep on its futex, client asleep on the doorbell, %u round "
	       "trips): p50 %llu ns  p99 %llu ns\n",
	       cold_n, (unsigned long long)cold50, (unsigned long long)cold99);
	/* The file sink runs into the page cache and disk writeback, which
	 * other work on the machine shares: take the median of three runs. */
	double rates[3];
	/* A first run (not counted) makes the VM back the page-cache memory:
	 * first touches of guest memory cost the hypervisor page faults. */
	rates[0] = log_rate(log_n, &dropped);
	printf("log warm-up: %.0f entries/s, %llu dropped (not counted)\n", rates[0],
	       (unsigned long long)dropped);
	dropped = 0;
	for (int i = 0; i < 3; i++) {
		uint64_t d;
		rates[i] = log_rate(log_n, &d);
		dropped += d;
		printf("log run %d: %.0f entries/s, %llu dropped\n", i + 1, rates[i],
		       (unsigned long long)d);
	}
	for (int i = 0; i < 2; i++)
		for (int j = i + 1; j < 3; j++)
			if (rates[j] < rates[i]) {
				double t = rates[i];
				rates[i] = rates[j];
				rates[j] = t;
			}
	double rate = rates[1];
	printf("log (1 worker, file sink, 200-byte entries, 3 x %u entries): median %.0f "
	       "entries/s, %llu dropped in all\n",
	       log_n, rate, (unsigned long long)dropped);
	double idle = idle_cpu(idle_s);
	printf("idle (master + 2 workers, %u s): %.3f %% of one CPU\n", idle_s, idle);
	if (json) {
		FILE *f = fopen(json, "w");
		CHECK(f, "open %s", json);
		fprintf(f,
		        "{\n  \"rtt_p50_ns\": %llu,\n  \"rtt_p99_ns\": %llu,\n  \"rtt_p999_ns\": "
		        "%llu,\n  \"rtt_samples\": %u,\n  \"log_entries_per_s\": %.0f,\n"
		        "  \"log_entries_per_run\": %u,\n  \"log_dropped\": %llu,\n"
		        "  \"idle_cpu_percent\": %.3f,\n  \"idle_seconds\": %u,\n"
		        "  \"rtt_cold_p50_ns\": %llu,\n  \"rtt_cold_p99_ns\": %llu,\n"
		        "  \"http_log_entries_per_s\": %.0f,\n  \"http_log_entries\": %u\n}\n",
		        (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)p999,
		        rtt_n, rate, log_n, (unsigned long long)dropped, idle, idle_s,
		        (unsigned long long)cold50, (unsigned long long)cold99, http_rate, http_n);
		fclose(f);
	}
	return 0;
}
