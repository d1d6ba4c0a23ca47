/* SPDX-License-Identifier: MIT */
/*
 * bench_timing.h: how the in-process benchmarks (bench/plugins/bench_plugins.c,
 * bench/jwt/bench_jwt.c) time a call: the thread pinned to one core, then
 * BENCH_RUNS timed runs of n calls each, reported as the median per call with
 * the min and max beside it. How long a run is (n) and which clock times it
 * stay with each benchmark. Header-only: each benchmark is one program.
 */
#ifndef SHMRING_BENCH_TIMING_H
#define SHMRING_BENCH_TIMING_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_RUNS 7

/* clk (CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID, ...) in ns. */
static inline double bench_now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Pin this thread to `cpu`; cpu < 0 picks CPU 1 when there are two or more,
 * else CPU 0. Returns the CPU asked for; not being able to pin is only a
 * warning on stderr. */
static inline int bench_pin(int cpu)
{
	if (cpu < 0)
		cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		fprintf(stderr, "warning: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
	return cpu;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct bench_runs {
	double median_ns, min_ns, max_ns; /* per call, over the BENCH_RUNS runs */
};

/* BENCH_RUNS runs of n calls of fn(arg), each run timed on clk. */
static inline struct bench_runs bench_time_runs(clockid_t clk, uint64_t n, int (*fn)(void *),
                                                void *arg)
{
	double per[BENCH_RUNS];
	for (int k = 0; k < BENCH_RUNS; k++) {
		double t0 = bench_now_ns(clk);
		for (uint64_t i = 0; i < n; i++)
			fn(arg);
		per[k] = (bench_now_ns(clk) - t0) / (double)n;
	}
	qsort(per, BENCH_RUNS, sizeof(double), bench_cmp_double);
	return (struct bench_runs){per[BENCH_RUNS / 2], per[0], per[BENCH_RUNS - 1]};
}

/* The current UTC time as 2026-01-31T12:00:00Z, for the JSON reports. */
static inline void bench_utc_now(char *buf, size_t len)
{
	time_t t = time(NULL);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}

#endif
