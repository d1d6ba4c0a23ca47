/* SPDX-License-Identifier: MIT */
/* The plugin host: shared regions (shmring_shared_region), memory every
 * worker of the daemon maps under one name. */
#include "daemon.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- shared regions (shmring_shared_region) --------------------------------- */

#define SHARED_MAX_REGIONS 16
#define SHARED_MAX_SIZE (1ull << 30)

static struct {
	pthread_mutex_t lock;
	char dir[PATH_MAX]; /* "" until shmringd__shared_setup() */
	mode_t mode;
	uint32_t n;
	struct {
		char name[64];
		size_t size;
		void *addr;
	} v[SHARED_MAX_REGIONS];
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

void shmringd__shared_setup(const char *dir, mode_t mode)
{
	pthread_mutex_lock(&shared.lock);
	snprintf(shared.dir, sizeof(shared.dir), "%s", dir ? dir : "");
	shared.mode = mode & 0666;
	pthread_mutex_unlock(&shared.lock);
}

/* Create or open the file and map it; flock serializes the creators so the
 * size is set once and a second creator sees it. */
static int shared_map(const char *name, size_t size, void **out)
{
	char path[PATH_MAX + 80];
	if ((size_t)snprintf(path, sizeof(path), "%s/" SHMRINGD_REGION_PREFIX "%s.shm", shared.dir,
	                     name) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, shared.mode);
	if (fd < 0)
		return -errno;
	int rc = 0, lk;
	struct stat st;
	while ((lk = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (lk < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (st.st_size == 0) {
		/* ftruncate zero-fills: the documented empty state. */
		if (fchmod(fd, shared.mode) < 0 || ftruncate(fd, (off_t)size) < 0)
			rc = -errno;
	} else if ((size_t)st.st_size != size) {
		rc = -EEXIST;
	}
	if (rc == 0) {
		void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			rc = -errno;
		else
			*out = m;
	}
	/* Unlock explicitly: the mapping keeps the open file (and so the
	 * flock) alive after close(). */
	flock(fd, LOCK_UN);
	close(fd);
	return rc;
}

SHMRING_HOST_API int shmring_shared_region(const char *name, size_t size, void **out)
{
	*out = NULL;
	if (!name || !shmringd__name_ok(name) || size == 0 || size > SHARED_MAX_SIZE)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&shared.lock);
	for (uint32_t i = 0; i < shared.n; i++) {
		if (!strcmp(shared.v[i].name, name)) {
			if (shared.v[i].size == size)
				*out = shared.v[i].addr;
			else
				rc = -EEXIST;
			goto out;
		}
	}
	if (!shared.dir[0]) {
		rc = -ENOTSUP;
	} else if (shared.n >= SHARED_MAX_REGIONS) {
		rc = -ENOSPC;
	} else if ((rc = shared_map(name, size, out)) == 0) {
		snprintf(shared.v[shared.n].name, sizeof(shared.v[0].name), "%s", name);
		shared.v[shared.n].size = size;
		shared.v[shared.n].addr = *out;
		shared.n++;
	}
out:
	pthread_mutex_unlock(&shared.lock);
	return rc;
}

void shmringd__shared_remove_all(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	size_t pl = strlen(SHMRINGD_REGION_PREFIX);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > pl + 4 && !strncmp(e->d_name, SHMRINGD_REGION_PREFIX, pl) &&
		    !strcmp(e->d_name + n - 4, ".shm"))
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}
