/* SPDX-License-Identifier: MIT */
/* shmring_shared_region(), the host API rate-limiting's counters live in:
 * bad names and sizes, no directory, a size mismatch, the same mapping on a
 * second call, and two independent processes (not forked from a process
 * that had mapped it) racing to create it: both get the same zero-filled
 * bytes and neither blocks on the other's creation lock. */
#include "daemon.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char shmringd__role[32] = "test";
void shmringd__log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static char dir[64];

static void errors_and_reuse(void **state)
{
	void *p = (void *)1;
	assert_int_equal(shmring_shared_region("x", 4096, &p), -ENOTSUP); /* no setup yet */
	assert_null(p);
	shmringd__shared_setup(dir, 0640);
	assert_int_equal(shmring_shared_region("Bad", 4096, &p), -EINVAL);
	assert_int_equal(shmring_shared_region("a/b", 4096, &p), -EINVAL);
	assert_int_equal(shmring_shared_region("", 4096, &p), -EINVAL);
	assert_int_equal(shmring_shared_region(NULL, 4096, &p), -EINVAL);
	assert_int_equal(shmring_shared_region("ok", 0, &p), -EINVAL);
	assert_int_equal(shmring_shared_region("ok", (1ull << 30) + 1, &p), -EINVAL);
	void *a, *b;
	assert_int_equal(shmring_shared_region("reuse-1", 8192, &a), 0);
	assert_int_equal(shmring_shared_region("reuse-1", 8192, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(shmring_shared_region("reuse-1", 4096, &b), -EEXIST);
	char path[128];
	snprintf(path, sizeof(path), "%s/plugin-reuse-1.shm", dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 8192);
	assert_int_equal(st.st_mode & 0777, 0640);
	/* stop / start: removed */
	shmringd__shared_remove_all(dir);
	assert_int_not_equal(stat(path, &st), 0);
}

/* A child that never mapped anything: map, check zero, bump a counter. */
static void child(const char *name)
{
	void *m;
	shmringd__shared_setup(dir, 0600);
	int rc = shmring_shared_region(name, 1 << 20, &m);
	if (rc != 0) {
		fprintf(stderr, "child: shmring_shared_region(%s): %s\n", name, strerror(-rc));
		_exit(2);
	}
	volatile unsigned char *b = m;
	for (size_t i = 64; i < (1 << 20); i += 4096)
		if (b[i])
			_exit(3);
	__atomic_fetch_add((uint64_t *)m, 1, __ATOMIC_SEQ_CST);
	/* Stay alive (mapped) until every child has mapped: a creation lock
	 * that outlived the call would block the others (as a worker that
	 * keeps running blocked the next worker's init). */
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n((uint64_t *)m, __ATOMIC_SEQ_CST) < 4) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 10)
			_exit(4);
		usleep(1000);
	}
	_exit(0);
}

static void independent_processes(void **state)
{
	for (int round = 0; round < 10; round++) { /* the parent maps each: < 16 regions */
		char name[32];
		snprintf(name, sizeof(name), "race-%d", round);
		pid_t pid[4];
		for (int i = 0; i < 4; i++) {
			pid[i] = fork();
			assert_true(pid[i] >= 0);
			if (pid[i] == 0)
				child(name);
		}
		/* A child stuck on another's creation lock would never exit. */
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 4; i++) {
			int st;
			for (;;) {
				pid_t r = waitpid(pid[i], &st, WNOHANG);
				if (r == pid[i])
					break;
				struct timespec t;
				clock_gettime(CLOCK_MONOTONIC, &t);
				if (t.tv_sec - t0.tv_sec > 20) {
					kill(pid[i], SIGKILL);
					fail_msg("child %d blocked in shmring_shared_region", i);
				}
				usleep(1000);
			}
			assert_true(WIFEXITED(st));
			assert_int_equal(WEXITSTATUS(st), 0);
		}
		void *m;
		assert_int_equal(shmring_shared_region(name, 1 << 20, &m), 0);
		assert_int_equal(*(uint64_t *)m, 4);
	}
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/shmring-region-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(errors_and_reuse),
	    cmocka_unit_test(independent_processes),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	shmringd__shared_remove_all(dir);
	rmdir(dir);
	return rc;
}
