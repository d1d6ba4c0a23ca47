/* SPDX-License-Identifier: MIT */
/* Instances and channels: creating, attaching, claiming and mapping the
 * segment files. The ring operations themselves are in ring.c. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
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

int shmring__chan_path(const char *dir, uint32_t index, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/ch-%u", dir, index);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : n;
}

static int ctl_path(const char *dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/ctl", dir);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : n;
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

static int mkdir_p(const char *dir, mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[PATH_MAX];
	if (strlen(dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	/* The last component is ours: set its mode and owner explicitly (umask). */
	if (chmod(tmp, mode) < 0)
		return -errno;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(tmp, uid, gid) < 0)
		return -errno;
	return 0;
}

/* Tell clients still mapping an older segment at path that it is gone. */
static void mark_old_closed(const char *path, bool is_ctl)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	size_t need = is_ctl ? sizeof(struct shmring__ctl_hdr) : HDR_BYTES;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size >= need) {
		void *m = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
			munmap(m, need);
		}
	}
	close(fd);
}

/* Create path.tmp with the given size, mode and owner, let init fill the
 * mapping, then rename it over path so that nobody sees a half-made file. */
static int create_segment(const char *path, size_t size, const struct shmring_create_opts *o,
                          void (*init)(void *map, void *arg), void *arg)
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (fchmod(fd, o->mode) < 0 ||
	    ((o->uid != (uid_t)-1 || o->gid != (gid_t)-1) && fchown(fd, o->uid, o->gid) < 0) ||
	    ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto out;
	}
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	init(m, arg);
	munmap(m, size);
	if (rename(tmp, path) < 0)
		rc = -errno;
out:
	close(fd);
	if (rc < 0)
		unlink(tmp);
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
			munmap(inst->hdrs[k], HDR_BYTES);
	free(inst->hdrs);
	inst->hdrs = NULL;
}

/* Server: map the header page of every channel just created. */
static int map_chan_hdrs(struct shmring_instance *inst)
{
	inst->hdrs = calloc(inst->nchannels, sizeof(*inst->hdrs));
	if (!inst->hdrs)
		return -ENOMEM;
	char path[PATH_MAX];
	for (uint32_t k = 0; k < inst->nchannels; k++) {
		int rc = shmring__chan_path(inst->dir, k, path, sizeof(path));
		if (rc < 0)
			return rc;
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		void *m = mmap(NULL, HDR_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
	/* Group/other get x wherever they get r, so they can open files. */
	mode_t dmode = (mode | ((mode & 0444) >> 2)) & 07777;
	return mkdir_p(o->dir, dmode, o->uid, o->gid);
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

	int rc = shmring_instance_mkdir(&o);
	if (rc < 0)
		return rc;

	struct chan_init_arg a = {.o = &o};
	do {
		if (getrandom(&a.epoch, sizeof(a.epoch), 0) != sizeof(a.epoch))
			return -EIO;
	} while (a.epoch == 0);

	char path[PATH_MAX];
	if ((rc = ctl_path(o.dir, path, sizeof(path))) < 0)
		return rc;
	mark_old_closed(path, true);
	/* Channels first, ctl last: a client attaching the new ctl finds new
	 * channels with the same epoch. */
	for (uint32_t k = 0; k < o.nchannels; k++) {
		char cpath[PATH_MAX];
		if ((rc = shmring__chan_path(o.dir, k, cpath, sizeof(cpath))) < 0)
			return rc;
		mark_old_closed(cpath, false);
		a.index = k;
		rc = create_segment(cpath, chan_seg_size(o.sq_size, o.cq_size), &o, chan_init, &a);
		if (rc < 0)
			return rc;
	}
	/* Channels left over from an earlier instance with more of them. */
	for (uint32_t k = o.nchannels; k < SHMRING_MAX_CHANNELS; k++) {
		char cpath[PATH_MAX];
		shmring__chan_path(o.dir, k, cpath, sizeof(cpath));
		mark_old_closed(cpath, false);
		if (unlink(cpath) < 0)
			break;
	}
	rc = create_segment(path, sizeof(struct shmring__ctl_hdr), &o, ctl_init, &a);
	if (rc < 0)
		return rc;
	rc = shmring_instance_attach(o.dir, out);
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

int shmring_instance_attach(const char *dir, struct shmring_instance **out)
{
	*out = NULL;
	struct shmring_instance *inst = calloc(1, sizeof(*inst));
	if (!inst)
		return -ENOMEM;
	if (strlen(dir) >= sizeof(inst->dir)) {
		free(inst);
		return -ENAMETOOLONG;
	}
	strcpy(inst->dir, dir);
	char path[PATH_MAX];
	int rc = ctl_path(dir, path, sizeof(path));
	if (rc < 0)
		goto fail;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		goto fail;
	}
	if ((size_t)st.st_size < sizeof(struct shmring__ctl_hdr)) {
		rc = -EPROTO;
		close(fd);
		goto fail;
	}
	inst->ctl_size = sizeof(struct shmring__ctl_hdr);
	inst->ctl = mmap(NULL, inst->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (inst->ctl == MAP_FAILED) {
		rc = -errno;
		inst->ctl = NULL;
		goto fail;
	}
	/* Read the read-only line once, after the magic (see ctl_init). */
	uint64_t magic = __atomic_load_n(&inst->ctl->magic, __ATOMIC_ACQUIRE);
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
		munmap(inst->ctl, inst->ctl_size);
	free(inst);
	return rc;
}

void shmring_instance_close(struct shmring_instance *inst, int unlink_files)
{
	if (!inst)
		return;
	if (unlink_files && inst->server) {
		char path[PATH_MAX];
		for (uint32_t k = 0; k < inst->nchannels; k++) {
			if (shmring__chan_path(inst->dir, k, path, sizeof(path)) >= 0)
				unlink(path);
		}
		if (ctl_path(inst->dir, path, sizeof(path)) >= 0)
			unlink(path);
	}
	unmap_chan_hdrs(inst);
	munmap(inst->ctl, inst->ctl_size);
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
	atomic_store_explicit(&inst->ctl->nworkers, nworkers, memory_order_release);
	for_each_chan_hdr(inst, slot_one, &nworkers);
	return 0;
}

int64_t shmring_instance_heartbeat_age_ns(const struct shmring_instance *inst)
{
	if (atomic_load_explicit(&inst->ctl->closed, memory_order_acquire))
		return -ESTALE;
	uint64_t beat = atomic_load_explicit(&inst->ctl->heartbeat, memory_order_acquire);
	uint64_t now = shmring_now_ns();
	return now > beat ? (int64_t)(now - beat) : 0;
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
	char path[PATH_MAX];
	int rc = shmring__chan_path(inst->dir, index, path, sizeof(path));
	if (rc < 0)
		return rc;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (st.st_size < (off_t)HDR_BYTES ||
	    st.st_size > (off_t)chan_seg_size(SHMRING_MAX_RING, SHMRING_MAX_RING)) {
		close(fd);
		return -EPROTO;
	}
	size_t size = (size_t)st.st_size;
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
		munmap(m, size);
		return -EPROTO;
	}
	if (epoch != inst->epoch) {
		munmap(m, size);
		return -ESTALE;
	}
	struct shmring_chan *c = calloc(1, sizeof(*c));
	if (!c) {
		munmap(m, size);
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
		munmap(m, size);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void shmring_chan_close(struct shmring_chan *c)
{
	if (!c)
		return;
	munmap(c->hdr, c->map_size);
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
