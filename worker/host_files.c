/* SPDX-License-Identifier: MIT */
/*
 * Files that plugin configs name (the log plugin's path, credentials_file):
 * the one place that opens them. A config arrives from any client of the
 * rings, so a path in it is opened only below a directory the daemon's own
 * config allows (plugin_file_dirs), one component at a time without
 * following a symbolic link, never blocking (a FIFO planted at the path
 * would hang the worker), and only if it is a regular file.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIRS 16

static struct {
	bool set;            /* else the default applies */
	char list[PATH_MAX]; /* as configured, for messages */
	char dir[MAX_DIRS][PATH_MAX];
	size_t len[MAX_DIRS]; /* strlen(dir[i]); 0 for "/" */
	int n;
} D;

int shmringd__file_dirs_set(const char *list, char *err, size_t errlen)
{
	D.set = true;
	D.n = 0;
	snprintf(D.list, sizeof(D.list), "%s", list);
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ':');
		size_t seg = end ? (size_t)(end - p) : strlen(p), n = seg;
		while (n > 1 && p[n - 1] == '/')
			n--; /* "/var/log/x/" is "/var/log/x" */
		if (n > 0) {
			if (p[0] != '/' || n >= PATH_MAX) {
				snprintf(err, errlen,
				         "plugin_file_dirs: '%.*s' is not an absolute directory",
				         (int)(n < 200 ? n : 200), p);
				return -EINVAL;
			}
			if (D.n == MAX_DIRS) {
				snprintf(err, errlen, "plugin_file_dirs: at most %d directories",
				         MAX_DIRS);
				return -E2BIG;
			}
			memcpy(D.dir[D.n], p, n);
			D.dir[D.n][n] = '\0';
			D.len[D.n] = n == 1 ? 0 : n;
			D.n++;
		}
		p += seg + (end ? 1 : 0);
	}
	return 0;
}

/* The allowed directory path lies below, or -1. *rest: path relative to it. */
static int dir_of(const char *path, const char **rest)
{
	for (int i = 0; i < D.n; i++) {
		size_t n = D.len[i];
		if (!strncmp(path, D.dir[i], n) && path[n] == '/') {
			*rest = path + n + 1;
			return i;
		}
	}
	return -1;
}

/* Walk rest (a/b/file) below dirfd without following any symbolic link:
 * each directory is opened O_NOFOLLOW | O_DIRECTORY (a link there fails
 * with ENOTDIR or ELOOP). Returns the last directory's fd and its name in
 * *last, or -errno. Takes ownership of dirfd. */
static int walk(int dirfd, char *rest, char **last)
{
	char *p = rest;
	for (char *slash; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		int fd = openat(dirfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(dirfd);
		if (fd < 0)
			return -e;
		dirfd = fd;
	}
	*last = p;
	return dirfd;
}

/* Lexically plain: no empty, "." or ".." component (so a path means what
 * it says, and none climbs out of its allowed directory). */
static bool plain(const char *rest)
{
	for (const char *p = rest;;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!end)
			return true;
		p = end + 1;
	}
}

SHMRING_HOST_API int shmring_file_open(const char *path, int flags, unsigned int mode, char *err,
                                       size_t errlen)
{
	const char *rest;
	size_t len = strlen(path);
	if (!D.set) {
		char e[64];
		shmringd__file_dirs_set(SHMRINGD_FILE_DIRS_DEFAULT, e, sizeof(e));
	}
	if (path[0] != '/' || len >= PATH_MAX) {
		snprintf(err, errlen, "%.200s: not an absolute path", path);
		return -EINVAL;
	}
	int d = dir_of(path, &rest);
	if (d < 0) {
		snprintf(err, errlen,
		         "%.200s is not below a directory the daemon allows (plugin_file_dirs = "
		         "%.200s)",
		         path, D.list);
		return -EACCES;
	}
	if (!plain(rest)) {
		snprintf(err, errlen, "%.200s: '.', '..' and '//' are not allowed in the path",
		         path);
		return -EINVAL;
	}
	char buf[PATH_MAX];
	memcpy(buf, rest, len - (size_t)(rest - path) + 1);
	char *last = buf;
	int dirfd = open(D.dir[d], O_PATH | O_DIRECTORY | O_CLOEXEC);
	dirfd = dirfd < 0 ? -errno : walk(dirfd, buf, &last);
	int fd = dirfd;
	if (dirfd >= 0) {
		fd = openat(dirfd, last, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		            mode);
		fd = fd < 0 ? -errno : fd;
		close(dirfd);
	}
	if (fd < 0) {
		/* ENOTDIR/ELOOP: a link met by O_NOFOLLOW; ENXIO: a FIFO or
		 * socket that O_NONBLOCK kept from blocking. */
		snprintf(err, errlen, "cannot open %.200s: %s%s", path, strerror(-fd),
		         fd == -ENOTDIR || fd == -ELOOP ? " (symbolic links are not followed)"
		         : fd == -ENXIO                 ? " (not a regular file)"
		                                        : "");
		return fd;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%.200s is not a regular file", path);
		return -EINVAL;
	}
	return fd;
}
