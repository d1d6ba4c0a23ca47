/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the core tests and the ring fuzzer: a throw-away
 * instance in a fresh directory under /dev/shm, a raw view of a channel file
 * through the byte layout documented at the top of shmring.h (so the tests
 * also check that the documentation matches the code), and deadlines.
 *
 * Header-only on purpose: every test is one program (STYLE.md), and the
 * fuzzer includes it from tests/fuzz/.
 */
#ifndef SHMRING_TESTS_CORE_UTIL_H
#define SHMRING_TESTS_CORE_UTIL_H

#include "shmring/shmring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Byte offsets of the channel header, one 64-byte line per row (shmring.h). */
#define RAW_MAGIC 0
#define RAW_ABI 8
#define RAW_INDEX 12
#define RAW_SQ_SIZE 16
#define RAW_CQ_SIZE 20
#define RAW_SQ_OFF 24
#define RAW_CQ_OFF 28
#define RAW_EPOCH 32
#define RAW_SEG_SIZE 40
#define RAW_HEARTBEAT 64
#define RAW_CLOSED 72
#define RAW_SERVER_SLOT 76
#define RAW_OWNER 128
#define RAW_SQ_TAIL 192
#define RAW_SQ_HEAD 256
#define RAW_CQ_TAIL 320
#define RAW_CQ_HEAD 384
#define RAW_CQ_ARMED 448
#define RAW_CLIENT_CNT 512
#define RAW_SERVER_CNT 576
#define RAW_HDR_BYTES 4096

struct tinst {
	char dir[64];
	struct shmring_instance *inst;
	uint32_t nchannels, sq_size, cq_size;
};

/* A fresh instance in a new directory under /dev/shm. 0 or -errno. */
static inline int tinst_create(struct tinst *t, uint32_t nchannels, uint32_t sq_size,
                               uint32_t cq_size)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/dev/shm/shmring-test-XXXXXX");
	if (!mkdtemp(t->dir))
		return -errno;
	struct shmring_create_opts o = {
	    .dir = t->dir,
	    .nchannels = nchannels,
	    .nworkers = 1,
	    .sq_size = sq_size,
	    .cq_size = cq_size,
	    .mode = 0600,
	    .uid = (uid_t)-1,
	    .gid = (gid_t)-1,
	};
	int rc = shmring_instance_create(&o, &t->inst);
	if (rc < 0) {
		rmdir(t->dir);
		return rc;
	}
	t->nchannels = nchannels;
	t->sq_size = sq_size ? sq_size : SHMRING_DEFAULT_RING;
	t->cq_size = cq_size ? cq_size : SHMRING_DEFAULT_RING;
	return 0;
}

/* Remove every file of the instance and its directory. */
static inline void tinst_destroy(struct tinst *t)
{
	if (t->inst)
		shmring_instance_close(t->inst, 1);
	t->inst = NULL;
	/* Leftovers (doorbell sockets, files of a re-created instance). */
	char path[PATH_MAX];
	for (uint32_t k = 0; k < SHMRING_MAX_CHANNELS; k++) {
		snprintf(path, sizeof(path), "%s/ch-%u", t->dir, k);
		if (unlink(path) < 0 && k >= t->nchannels)
			break;
	}
	snprintf(path, sizeof(path), "%s/ctl", t->dir);
	unlink(path);
	rmdir(t->dir);
}

/* A raw shared mapping of the whole channel file k; NULL on failure. */
static inline uint8_t *raw_map(const struct tinst *t, uint32_t k, size_t *size)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ch-%u", t->dir, k);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return NULL;
	*size = (size_t)st.st_size;
	return m;
}

static inline uint64_t raw_load64(const uint8_t *raw, size_t off)
{
	return __atomic_load_n((const uint64_t *)(raw + off), __ATOMIC_ACQUIRE);
}

static inline void raw_store64(uint8_t *raw, size_t off, uint64_t v)
{
	__atomic_store_n((uint64_t *)(raw + off), v, __ATOMIC_RELEASE);
}

static inline uint32_t raw_load32(const uint8_t *raw, size_t off)
{
	return __atomic_load_n((const uint32_t *)(raw + off), __ATOMIC_ACQUIRE);
}

static inline void raw_store32(uint8_t *raw, size_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)(raw + off), v, __ATOMIC_RELEASE);
}

/* The first word of a record header: len | type << 32 | flags << 48. */
static inline uint64_t rec_word(uint32_t len, uint16_t type, uint16_t flags)
{
	return (uint64_t)len | ((uint64_t)type << 32) | ((uint64_t)flags << 48);
}

/* Bytes a record with len payload bytes takes in a ring. */
static inline uint32_t rec_bytes(uint32_t len)
{
	return (SHMRING_REC_HDR + len + 7u) & ~7u;
}

/* ---- deadlines, so that no test can hang ---------------------------- */

static inline uint64_t deadline_in_ms(uint64_t ms)
{
	return shmring_now_ns() + ms * 1000000ull;
}

/* "<top>/long/ddd.../ddd", exactly len bytes (< size), every component
 * shorter than NAME_MAX: a valid path too long for something else. */
static inline void long_path(char *buf, size_t size, const char *top, int len)
{
	int n = snprintf(buf, size, "%s/long", top);
	while (n < len) {
		int part = len - n < 200 ? len - n : 200;
		buf[n++] = '/';
		memset(buf + n, 'd', (size_t)part - 1);
		n += part - 1;
	}
	buf[n] = '\0';
}

static inline int deadline_passed(uint64_t deadline)
{
	return shmring_now_ns() > deadline;
}

/* Wait for a child with a deadline; on timeout kill -9 it. Returns the wait
 * status, or -ETIMEDOUT (the child was killed and reaped). */
static inline int wait_child(pid_t pid, uint64_t timeout_ms)
{
	uint64_t dl = deadline_in_ms(timeout_ms);
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -errno;
		if (deadline_passed(dl)) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		/* Polling a child's exit is not a data race to hope about:
		 * the deadline bounds it. */
		usleep(1000);
	}
}

/* 1 if the child exited with code 0. */
static inline int child_ok(int status)
{
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Process state letter from /proc/<pid>/stat ('R', 'S', 'Z', ...), or 0. */
static inline char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return (p && p[1] == ' ') ? p[2] : 0;
}

/* splitmix64: deterministic per-test pseudo-random numbers. */
static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
