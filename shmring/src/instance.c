/* SPDX-License-Identifier: MIT */
/* Instances and channels: creating, attaching, claiming and mapping the
 * segment files. The ring operations themselves are in ring.c. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PID_BITS 22u /* Linux PID_MAX_LIMIT is 2^22: every pid fits */
#define PID_MASK ((1u << PID_BITS) - 1)

static bool is_pow2_in_range(uint32_t v)
{
	return v >= SHMRING_MIN_RING && v <= SHMRING_MAX_RING && (v & (v - 1)) == 0;
}

uint64_t shmring_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Files inside the instance directory are named relative to it and opened
 * with openat(dirfd, name, O_NOFOLLOW): never by a path that a symlink or a
 * replaced parent could redirect. */
#define CTL_NAME "ctl"
#define CHAN_NAME_MAX 16 /* "ch-1023.tmp" and more */

static void chan_name(uint32_t index, char buf[CHAN_NAME_MAX])
{
	snprintf(buf, CHAN_NAME_MAX, "ch-%u", index);
}

int shmring_doorbell_path(const struct shmring_instance *inst, uint32_t index, char *buf,
                          size_t len)
{
	int n = snprintf(buf, len, "%s/ch-%u.bell", inst->dir, index);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : n;
}

/* Field 22 of /proc/<pid>/stat (start time in clock ticks since boot). A
 * zombie counts as gone: it will never release its claim. */
int shmring__read_starttime(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024];
	*out = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -EIO;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields restart after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return -ESRCH;
	/* p is at field 3 (state); skip to field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || end == p)
		return -EIO;
	*out = v;
	return 0;
}

uint64_t shmring_self_owner(void)
{
	/* Cached per pid: nginx forks its workers after loading the module. */
	static pid_t cached_pid;
	static uint64_t cached;
	pid_t pid = getpid();
	if (pid != cached_pid) {
		uint64_t st = 0;
		shmring__read_starttime(pid, &st);
		cached = (st << PID_BITS) | ((uint64_t)pid & PID_MASK);
		cached_pid = pid;
	}
	return cached;
}

int shmring_owner_alive(uint64_t owner)
{
	if (owner == 0)
		return 0;
	pid_t pid = (pid_t)(owner & PID_MASK);
	uint64_t st;
	if (shmring__read_starttime(pid, &st) < 0)
		return 0;
	return st == (owner >> PID_BITS);
}

/* ---- creation ---------------------------------------------------------- */

/* A directory on the way to the instance directory: its owner could rename
 * the instance directory away and put one of their own in its place, so it
 * must belong to root or to the daemon (self, or the user it becomes), and
 * nobody else may write to it unless it is sticky (like /dev/shm). */
static int parent_trusted(const char *path, uid_t self, uid_t owner)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != 0 && st.st_uid != self && st.st_uid != owner)
		return -EPERM;
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return -EPERM;
	return 0;
}

/* Make dir and its missing parents; return the last one opened (an
 * O_DIRECTORY fd) after giving it mode and owner. An existing directory is
 * used only if it is ours (or already the owner's): one that someone else
 * made first is refused, never adopted. */
static int mkdir_p(const char *dir, mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[PATH_MAX];
	if (strlen(dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, dir);
	uid_t self = geteuid(), owner = uid != (uid_t)-1 ? uid : self;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		int rc = parent_trusted(tmp, self, owner);
		if (rc < 0)
			return rc;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (st.st_uid != self && st.st_uid != owner)
		rc = -EPERM;
	/* Owner and mode set explicitly on the fd (the umask, or an earlier
	 * run with another mode). */
	else if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)
		rc = -errno;
	else if (fchmod(fd, mode) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Open name in the instance directory without following a symlink; it must
 * be a regular file of the directory's owner. */
static int open_segment(int dirfd, const char *name, uid_t owner, int flags, struct stat *st)
{
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode) || st->st_uid != owner) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* Tell clients still mapping an older segment at path that it is gone. */
static void mark_old_closed(int dirfd, const char *name, bool is_ctl)
{
	struct stat st;
	int fd = open_segment(dirfd, name, geteuid(), O_RDWR, &st);
	if (fd < 0)
		return;
	size_t need = is_ctl ? sizeof(struct shmring__ctl_hdr) : HDR_BYTES;
	if ((size_t)st.st_size >= need) {
		void *m = shmring__map_segment(fd, need);
		if (m != MAP_FAILED) {
			if (is_ctl) {
				struct shmring__ctl_hdr *h = m;
				if (h->magic == SHMRING_MAGIC_CTL)
					atomic_store_explicit(&h->closed, 1, memory_order_release);
			} else {
				struct shmring__chan_hdr *h = m;
				if (h->magic == SHMRING_MAGIC_CHAN)
					atomic_store_explicit(&h->closed, 1, memory_order_release);
			}
			shmring__unmap_segment(m, need);
		}
	}
	close(fd);
}

/* Create name.tmp with the given size, mode and owner, let init fill the
 * mapping, then rename it over name so that nobody sees a half-made file. */
static int create_segment(int dirfd, const char *name, size_t size,
                          const struct shmring_create_opts *o, void (*init)(void *map, void *arg),
                          void *arg)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	unlinkat(dirfd, tmp, 0);
	int fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (fchmod(fd, o->mode) < 0 ||
	    ((o->uid != (uid_t)-1 || o->gid != (gid_t)-1) && fchown(fd, o->uid, o->gid) < 0) ||
	    ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto out;
	}
	void *m = shmring__map_segment(fd, size);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	init(m, arg);
	shmring__unmap_segment(m, size);
	if (renameat(dirfd, tmp, dirfd, name) < 0)
		rc = -errno;
out:
	close(fd);
	if (rc < 0)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

struct chan_init_arg {
	const struct shmring_create_opts *o;
	uint32_t index;
	uint64_t epoch;
};

static size_t chan_seg_size(uint32_t sq, uint32_t cq)
{
	return (size_t)HDR_BYTES + sq + cq;
}

static void chan_init(void *map, void *argp)
{
	struct chan_init_arg *a = argp;
	struct shmring__chan_hdr *h = map;
	h->abi = SHMRING_ABI_VERSION;
	h->index = a->index;
	h->sq_size = a->o->sq_size;
	h->cq_size = a->o->cq_size;
	h->sq_off = HDR_BYTES;
	h->cq_off = HDR_BYTES + a->o->sq_size;
	h->epoch = a->epoch;
	h->seg_size = chan_seg_size(a->o->sq_size, a->o->cq_size);
	atomic_store(&h->heartbeat, shmring_now_ns());
	atomic_store(&h->server_slot, a->index % a->o->nworkers);
	/* magic last: a reader that sees it sees a whole header */
	atomic_thread_fence(memory_order_release);
	h->magic = SHMRING_MAGIC_CHAN;
}

static void ctl_init(void *map, void *argp)
{
	struct chan_init_arg *a = argp;
	struct shmring__ctl_hdr *h = map;
	h->abi = SHMRING_ABI_VERSION;
	h->nchannels = a->o->nchannels;
	h->epoch = a->epoch;
	h->master_pid = (uint64_t)getpid();
	h->sq_size = a->o->sq_size;
	h->cq_size = a->o->cq_size;
	atomic_store(&h->heartbeat, shmring_now_ns());
	atomic_store(&h->nworkers, a->o->nworkers);
	atomic_thread_fence(memory_order_release);
	h->magic = SHMRING_MAGIC_CTL;
}

static void unmap_chan_hdrs(struct shmring_instance *inst)
{
	if (!inst->hdrs)
		return;
	for (uint32_t k = 0; k < inst->nchannels; k++)
		if (inst->hdrs[k])
			shmring__unmap_segment(inst->hdrs[k], HDR_BYTES);
	free(inst->hdrs);
	inst->hdrs = NULL;
}

/* Server: map the header page of every channel just created. */
static int map_chan_hdrs(struct shmring_instance *inst)
{
	inst->hdrs = calloc(inst->nchannels, sizeof(*inst->hdrs));
	if (!inst->hdrs)
		return -ENOMEM;
	for (uint32_t k = 0; k < inst->nchannels; k++) {
		char name[CHAN_NAME_MAX];
		struct stat st;
		chan_name(k, name);
		int fd = open_segment(inst->dirfd, name, inst->owner, O_RDWR, &st);
		if (fd < 0)
			return fd;
		if ((size_t)st.st_size < HDR_BYTES) {
			close(fd);
			return -EPROTO;
		}
		void *m = shmring__map_segment(fd, HDR_BYTES);
		close(fd);
		if (m == MAP_FAILED)
			return -errno;
		inst->hdrs[k] = m;
	}
	return 0;
}

int shmring_instance_mkdir(const struct shmring_create_opts *o)
{
	mode_t mode = o->mode ? o->mode : SHMRING_DEFAULT_MODE;
	if (!o->dir || !*o->dir || (mode & ~07777u))
		return -EINVAL;
	/* A name an instance cannot hold: refused before anything is made. */
	if (strlen(o->dir) >= sizeof(((struct shmring_instance *)0)->dir))
		return -ENAMETOOLONG;
	/* Group/other may search it (r-x) wherever they may use the segments,
	 * never write: only the daemon creates, removes or replaces files. */
	mode_t grant = (mode | (mode >> 1)) & 0044;
	mode_t dmode = 0700 | grant | (grant >> 2);
	return mkdir_p(o->dir, dmode, o->uid, o->gid);
}

/* Map ctl through dirfd, a directory already trusted; its owner must own
 * every segment. Takes dirfd (closed on failure). */
static int attach_at(const char *dir, int dirfd, struct shmring_instance **out)
{
	*out = NULL;
	struct shmring_instance *inst = calloc(1, sizeof(*inst));
	struct stat st;
	int rc = 0;
	if (!inst) {
		close(dirfd);
		return -ENOMEM;
	}
	inst->dirfd = dirfd;
	strcpy(inst->dir, dir); /* length checked by the callers */
	if (fstat(dirfd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	inst->owner = st.st_uid;
	int fd = open_segment(dirfd, CTL_NAME, inst->owner, O_RDWR, &st);
	if (fd < 0) {
		rc = fd;
		goto fail;
	}
	if ((size_t)st.st_size < sizeof(struct shmring__ctl_hdr)) {
		rc = -EPROTO;
		close(fd);
		goto fail;
	}
	inst->ctl_size = sizeof(struct shmring__ctl_hdr);
	inst->ctl = shmring__map_segment(fd, inst->ctl_size);
	close(fd);
	if (inst->ctl == MAP_FAILED) {
		rc = -errno;
		inst->ctl = NULL;
		goto fail;
	}
	/* Read the read-only line once, after the magic (see ctl_init); the
	 * copy is what shmring_instance_repair() writes back. */
	uint64_t magic = __atomic_load_n(&inst->ctl->magic, __ATOMIC_ACQUIRE);
	memcpy(inst->ctl_line0, inst->ctl, CACHELINE);
	inst->nworkers = atomic_load_explicit(&inst->ctl->nworkers, memory_order_relaxed);
	inst->epoch = inst->ctl->epoch;
	inst->nchannels = inst->ctl->nchannels;
	if (magic != SHMRING_MAGIC_CTL || inst->ctl->abi != SHMRING_ABI_VERSION ||
	    inst->epoch == 0 || inst->nchannels < 1 || inst->nchannels > SHMRING_MAX_CHANNELS) {
		rc = -EPROTO;
		goto fail;
	}
	*out = inst;
	return 0;
fail:
	if (inst->ctl)
		shmring__unmap_segment(inst->ctl, inst->ctl_size);
	close(inst->dirfd);
	free(inst);
	return rc;
}

int shmring_instance_create(const struct shmring_create_opts *in, struct shmring_instance **out)
{
	*out = NULL;
	struct shmring_create_opts o = *in;
	if (!o.sq_size)
		o.sq_size = SHMRING_DEFAULT_RING;
	if (!o.cq_size)
		o.cq_size = SHMRING_DEFAULT_RING;
	if (!o.mode)
		o.mode = SHMRING_DEFAULT_MODE;
	if (!o.dir || !*o.dir || o.nchannels < 1 || o.nchannels > SHMRING_MAX_CHANNELS ||
	    o.nworkers < 1 || o.nworkers > SHMRING_MAX_WORKERS || !is_pow2_in_range(o.sq_size) ||
	    !is_pow2_in_range(o.cq_size) || (o.mode & ~07777u))
		return -EINVAL;
	if (strlen(o.dir) >= sizeof(((struct shmring_instance *)0)->dir))
		return -ENAMETOOLONG;

	int dirfd = shmring_instance_mkdir(&o);
	if (dirfd < 0)
		return dirfd;

	int rc = 0;
	struct chan_init_arg a = {.o = &o};
	do {
		if (getrandom(&a.epoch, sizeof(a.epoch), 0) != sizeof(a.epoch)) {
			close(dirfd);
			return -EIO;
		}
	} while (a.epoch == 0);

	mark_old_closed(dirfd, CTL_NAME, true);
	/* Channels first, ctl last: a client attaching the new ctl finds new
	 * channels with the same epoch. */
	for (uint32_t k = 0; k < o.nchannels && rc == 0; k++) {
		char name[CHAN_NAME_MAX];
		chan_name(k, name);
		mark_old_closed(dirfd, name, false);
		a.index = k;
		rc = create_segment(dirfd, name, chan_seg_size(o.sq_size, o.cq_size), &o, chan_init,
		                    &a);
	}
	/* Channels left over from an earlier instance with more of them. */
	for (uint32_t k = o.nchannels; k < SHMRING_MAX_CHANNELS && rc == 0; k++) {
		char name[CHAN_NAME_MAX];
		chan_name(k, name);
		mark_old_closed(dirfd, name, false);
		if (unlinkat(dirfd, name, 0) < 0)
			break;
	}
	if (rc == 0)
		rc = create_segment(dirfd, CTL_NAME, sizeof(struct shmring__ctl_hdr), &o, ctl_init,
		                    &a);
	if (rc < 0) {
		close(dirfd);
		return rc;
	}
	rc = attach_at(o.dir, dirfd, out);
	if (rc < 0)
		return rc;
	(*out)->server = true;
	rc = map_chan_hdrs(*out);
	if (rc < 0) {
		shmring_instance_close(*out, 1);
		*out = NULL;
	}
	return rc;
}

int shmring_instance_attach_owned(const char *dir, int64_t owner, struct shmring_instance **out)
{
	*out = NULL;
	if (strlen(dir) >= sizeof(((struct shmring_instance *)0)->dir))
		return -ENAMETOOLONG;
	uid_t expect = owner < 0 ? geteuid() : (uid_t)owner;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	/* Whoever owns the directory decides what the segments say (who is
	 * authenticated, which channel is ours): only root or the daemon's
	 * user, and nobody else may have put files in it. */
	struct stat st;
	if (fstat(dirfd, &st) < 0 || (st.st_uid != 0 && st.st_uid != expect) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(dirfd);
		return -EPERM;
	}
	return attach_at(dir, dirfd, out);
}

int shmring_instance_attach(const char *dir, struct shmring_instance **out)
{
	return shmring_instance_attach_owned(dir, -1, out);
}

int64_t shmring_user_uid(const char *name)
{
	if (!name || !*name)
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long v = strtoul(name, &end, 10);
	if (*end == '\0' && !errno && v < UINT32_MAX)
		return (int64_t)v;
	struct passwd *pw = getpwnam(name);
	return pw ? (int64_t)pw->pw_uid : -ENOENT;
}

void shmring_instance_close(struct shmring_instance *inst, int unlink_files)
{
	if (!inst)
		return;
	if (unlink_files && inst->server) {
		for (uint32_t k = 0; k < inst->nchannels; k++) {
			char name[CHAN_NAME_MAX];
			chan_name(k, name);
			unlinkat(inst->dirfd, name, 0);
		}
		unlinkat(inst->dirfd, CTL_NAME, 0);
	}
	close(inst->dirfd);
	unmap_chan_hdrs(inst);
	shmring__unmap_segment(inst->ctl, inst->ctl_size);
	free(inst);
}

uint32_t shmring_instance_nchannels(const struct shmring_instance *inst)
{
	return inst->nchannels;
}

uint32_t shmring_instance_nworkers(const struct shmring_instance *inst)
{
	uint32_t n = atomic_load_explicit(&inst->ctl->nworkers, memory_order_relaxed);
	return n > SHMRING_MAX_WORKERS ? SHMRING_MAX_WORKERS : n;
}

uint64_t shmring_instance_epoch(const struct shmring_instance *inst)
{
	return inst->epoch;
}

/* Apply fn to the header of every channel of the instance (master only:
 * a client's instance has no headers mapped and this does nothing). */
static void for_each_chan_hdr(struct shmring_instance *inst,
                              void (*fn)(struct shmring__chan_hdr *, void *), void *arg)
{
	if (!inst->hdrs)
		return;
	for (uint32_t k = 0; k < inst->nchannels; k++)
		fn(inst->hdrs[k], arg);
}

static void beat_one(struct shmring__chan_hdr *h, void *arg)
{
	atomic_store_explicit(&h->heartbeat, *(uint64_t *)arg, memory_order_release);
}

void shmring_instance_beat(struct shmring_instance *inst)
{
	uint64_t now = shmring_now_ns();
	atomic_store_explicit(&inst->ctl->heartbeat, now, memory_order_release);
	for_each_chan_hdr(inst, beat_one, &now);
}

static void close_one(struct shmring__chan_hdr *h, void *arg)
{
	atomic_store_explicit(&h->closed, 1, memory_order_release);
}

void shmring_instance_set_closed(struct shmring_instance *inst)
{
	atomic_store_explicit(&inst->ctl->closed, 1, memory_order_release);
	for_each_chan_hdr(inst, close_one, NULL);
}

static void slot_one(struct shmring__chan_hdr *h, void *arg)
{
	uint32_t n = *(uint32_t *)arg;
	atomic_store_explicit(&h->server_slot, h->index % n, memory_order_release);
}

int shmring_instance_set_workers(struct shmring_instance *inst, uint32_t nworkers)
{
	if (nworkers < 1 || nworkers > SHMRING_MAX_WORKERS)
		return -EINVAL;
	inst->nworkers = nworkers;
	atomic_store_explicit(&inst->ctl->nworkers, nworkers, memory_order_release);
	for_each_chan_hdr(inst, slot_one, &nworkers);
	return 0;
}

static bool ctl_intact(const struct shmring_instance *inst)
{
	return __atomic_load_n(&inst->ctl->magic, __ATOMIC_ACQUIRE) == SHMRING_MAGIC_CTL &&
	       inst->ctl->epoch == inst->epoch;
}

int64_t shmring_instance_heartbeat_age_ns(const struct shmring_instance *inst)
{
	/* Closed, or truncated (reads zeros) or overwritten: not ours any more. */
	if (atomic_load_explicit(&inst->ctl->closed, memory_order_acquire) || !ctl_intact(inst))
		return -ESTALE;
	uint64_t beat = atomic_load_explicit(&inst->ctl->heartbeat, memory_order_acquire);
	uint64_t now = shmring_now_ns();
	return now > beat ? (int64_t)(now - beat) : 0;
}

int shmring_instance_repair(struct shmring_instance *inst, int restore)
{
	if (ctl_intact(inst))
		return 0;
	/* Truncated (our mapping may now be private zeros, see guard.c) or
	 * line 0 overwritten: the file gets its size back, we map it again
	 * where it was (pointers into it stay valid) and write line 0 back. */
	struct stat st;
	int fd = open_segment(inst->dirfd, CTL_NAME, inst->owner, O_RDWR, &st);
	if (fd < 0)
		return fd;
	int rc = 0;
	if ((size_t)st.st_size != inst->ctl_size &&
	    (!restore || ftruncate(fd, (off_t)inst->ctl_size) < 0))
		rc = restore ? -errno : -EAGAIN; /* the master gives it its size back */
	if (rc == 0)
		rc = shmring__remap_segment(inst->ctl, fd, inst->ctl_size);
	close(fd);
	if (rc < 0)
		return rc;
	if (!ctl_intact(inst) && !restore)
		return -EAGAIN; /* mapped again; the master writes line 0 back */
	if (!ctl_intact(inst)) {
		struct shmring__ctl_hdr *h = inst->ctl;
		memcpy((uint8_t *)h + sizeof(h->magic), inst->ctl_line0 + sizeof(h->magic),
		       CACHELINE - sizeof(h->magic));
		if (inst->nworkers)
			atomic_store_explicit(&h->nworkers, inst->nworkers, memory_order_release);
		uint64_t magic;
		memcpy(&magic, inst->ctl_line0, sizeof(magic));
		__atomic_store_n(&h->magic, magic, __ATOMIC_RELEASE);
	}
	return 1;
}

struct shmring_event *shmring_instance_worker_event(struct shmring_instance *inst, uint32_t w)
{
	return w < SHMRING_MAX_WORKERS ? &inst->ctl->workers[w].event : NULL;
}

struct shmring_worker_counters *shmring_instance_worker_counters(struct shmring_instance *inst,
                                                                 uint32_t w)
{
	return w < SHMRING_MAX_WORKERS ? &inst->ctl->workers[w].counters : NULL;
}

/* ---- channels ---------------------------------------------------------- */

static int ring_setup(struct shmring__ring *r, uint8_t *data, uint32_t size,
                      struct shmring__ring_pos *pos, bool producer)
{
	memset(r, 0, sizeof(*r));
	r->data = data;
	r->size = size;
	r->mask = size - 1;
	r->max_payload = size / 2 - SHMRING_REC_HDR;
	r->tail_p = &pos->tail;
	r->head_p = &pos->head;
	uint64_t head = atomic_load_explicit(r->head_p, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(r->tail_p, memory_order_acquire);
	if (head > tail || tail - head > size || ((head | tail) & 7))
		return -EPROTO;
	/* A producer continues from the published tail, a consumer from the
	 * released head: records read but not released by a process that died
	 * are read again (at-least-once). */
	r->tail = tail;
	r->head_cache = head;
	r->head = head;
	r->tail_cache = head;
	(void)producer;
	return 0;
}

int shmring_chan_open(struct shmring_instance *inst, uint32_t index, enum shmring_role role,
                      struct shmring_chan **out)
{
	*out = NULL;
	if (index >= inst->nchannels || (role != SHMRING_CLIENT && role != SHMRING_SERVER))
		return -EINVAL;
	char name[CHAN_NAME_MAX];
	struct stat st;
	int rc;
	chan_name(index, name);
	int fd = open_segment(inst->dirfd, name, inst->owner, O_RDWR, &st);
	if (fd < 0)
		return fd;
	if (st.st_size < (off_t)HDR_BYTES ||
	    st.st_size > (off_t)chan_seg_size(SHMRING_MAX_RING, SHMRING_MAX_RING)) {
		close(fd);
		return -EPROTO;
	}
	size_t size = (size_t)st.st_size;
	void *m = shmring__map_segment(fd, size);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;

	/* Private copy of line 0, checked once; never read again. */
	struct shmring__chan_hdr *h = m;
	uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
	uint32_t abi = h->abi, idx = h->index, sq = h->sq_size, cq = h->cq_size;
	uint32_t sq_off = h->sq_off, cq_off = h->cq_off;
	uint64_t epoch = h->epoch, seg = h->seg_size;
	if (magic != SHMRING_MAGIC_CHAN || abi != SHMRING_ABI_VERSION || idx != index ||
	    !is_pow2_in_range(sq) || !is_pow2_in_range(cq) || sq_off != HDR_BYTES ||
	    cq_off != HDR_BYTES + sq || seg != chan_seg_size(sq, cq) || seg != size) {
		shmring__unmap_segment(m, size);
		return -EPROTO;
	}
	if (epoch != inst->epoch) {
		shmring__unmap_segment(m, size);
		return -ESTALE;
	}
	struct shmring_chan *c = calloc(1, sizeof(*c));
	if (!c) {
		shmring__unmap_segment(m, size);
		return -ENOMEM;
	}
	c->inst = inst;
	c->hdr = h;
	c->map_size = size;
	c->index = index;
	c->epoch = epoch;
	c->role = role;
	uint8_t *sqd = (uint8_t *)m + sq_off, *cqd = (uint8_t *)m + cq_off;
	if (role == SHMRING_CLIENT) {
		rc = ring_setup(&c->out, sqd, sq, &h->sq, true);
		if (rc == 0)
			rc = ring_setup(&c->in, cqd, cq, &h->cq, false);
		c->mine = &h->client;
	} else {
		rc = ring_setup(&c->out, cqd, cq, &h->cq, true);
		if (rc == 0)
			rc = ring_setup(&c->in, sqd, sq, &h->sq, false);
		c->mine = &h->server;
	}
	if (rc < 0) {
		c->mine->corrupt++; /* seen by this side, as ring_corrupt() counts it */
		shmring__unmap_segment(m, size);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int shmring_chan_check(const struct shmring_chan *c)
{
	const struct shmring__chan_hdr *h = c->hdr;
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != SHMRING_MAGIC_CHAN ||
	    h->epoch != c->epoch || h->index != c->index)
		return -EPROTO;
	return 0;
}

void shmring_chan_close(struct shmring_chan *c)
{
	if (!c)
		return;
	shmring__unmap_segment(c->hdr, c->map_size);
	free(c);
}

/* Take channel c for this process if it is free or its owner is dead. */
static bool try_take(struct shmring_chan *c, uint64_t me)
{
	uint64_t cur = atomic_load_explicit(&c->hdr->owner, memory_order_acquire);
	if (cur == me)
		return true; /* re-claim after re-attach in the same process */
	if (cur != 0 && shmring_owner_alive(cur))
		return false;
	return atomic_compare_exchange_strong_explicit(&c->hdr->owner, &cur, me,
	                                               memory_order_acq_rel, memory_order_acquire);
}

int shmring_chan_claim(struct shmring_instance *inst, struct shmring_chan **out)
{
	*out = NULL;
	uint64_t me = shmring_self_owner();
	if ((me >> PID_BITS) == 0)
		return -EIO; /* no /proc: cannot prove liveness, refuse to guess */
	int last = -EBUSY;
	for (uint32_t k = 0; k < inst->nchannels; k++) {
		struct shmring_chan *c;
		int rc = shmring_chan_open(inst, k, SHMRING_CLIENT, &c);
		if (rc < 0) {
			last = rc;
			continue;
		}
		if (!try_take(c, me)) {
			shmring_chan_close(c);
			continue;
		}
		c->owner = me;
		/* Replies left for a previous owner are not ours: skip them. The
		 * daemon drops that owner's configs when it sees the new owner. */
		uint64_t t = atomic_load_explicit(c->in.tail_p, memory_order_acquire);
		if (t >= c->in.head && t - c->in.head <= c->in.size && !(t & 7)) {
			c->in.head = c->in.tail_cache = t;
			atomic_store_explicit(c->in.head_p, t, memory_order_release);
		}
		*out = c;
		return 0;
	}
	return last;
}

void shmring_chan_release(struct shmring_chan *c)
{
	if (!c)
		return;
	uint64_t me = c->owner;
	if (me)
		atomic_compare_exchange_strong_explicit(&c->hdr->owner, &me, 0,
		                                        memory_order_acq_rel, memory_order_relaxed);
	shmring_chan_close(c);
}

uint32_t shmring_chan_index(const struct shmring_chan *c)
{
	return c->index;
}

uint64_t shmring_chan_epoch(const struct shmring_chan *c)
{
	return c->epoch;
}

int shmring_chan_is_closed(const struct shmring_chan *c)
{
	return shmring__chan_closed(c) ? 1 : 0;
}

uint64_t shmring_chan_owner(const struct shmring_chan *c)
{
	return atomic_load_explicit(&c->hdr->owner, memory_order_acquire);
}

const struct shmring_chan_counters *shmring_chan_counters(const struct shmring_chan *c,
                                                          enum shmring_role side)
{
	return side == SHMRING_CLIENT ? &c->hdr->client : &c->hdr->server;
}

struct shmring_chan_counters *shmring_chan_my_counters(struct shmring_chan *c)
{
	return c->mine;
}

uint32_t shmring_chan_max_payload(const struct shmring_chan *c)
{
	return c->out.max_payload;
}

const char *shmring_strerror(int rc)
{
	switch (rc) {
	case SHMRING_OK:
		return "ok";
	case SHMRING_FULL:
		return "ring full";
	case SHMRING_EMPTY:
		return "ring empty";
	case -EPROTO:
		return "corrupt or foreign shared memory segment";
	case -ESTALE:
		return "segment belongs to an older daemon instance (epoch changed)";
	case -EPIPE:
		return "channel closed by the daemon";
	case -EBUSY:
		return "every channel is claimed by a live process";
	case -EMSGSIZE:
		return "record larger than the ring allows";
	default:
		return rc < 0 ? strerror(-rc) : "unknown result";
	}
}
