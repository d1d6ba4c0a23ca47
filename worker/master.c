/* SPDX-License-Identifier: MIT */
/*
 * shmringd's master: configuration, the instance (segments, stats file,
 * doorbell sockets), privileges, the heartbeat, and the worker pool.
 *
 * The master's loop (master_loop) waits on a signalfd with a 100 ms timeout;
 * each turn it: reaps dead workers, (re)starts the ones that are due, beats
 * the heartbeat, and acts on SIGHUP (reload) and SIGTERM/SIGINT (stop).
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define BEAT_MS 100
#define BACKOFF_MIN_MS 50
#define STABLE_NS 1000000000ull /* a worker that lived this long restarts at once */

char shmringd__role[32] = "master";
extern bool shmringd__check_only;
extern const char *shmringd__check_plugin, *shmringd__check_config;

/* Daemonized (no --foreground): messages go to syslog once start-up
 * succeeded, since stderr is then /dev/null. */
static bool log_to_syslog;

void shmringd__log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_to_syslog)
		syslog(LOG_NOTICE, "%s: %s", shmringd__role, buf);
	else
		fprintf(stderr, "shmringd[%d] %s: %s\n", (int)getpid(), shmringd__role, buf);
}

enum wstate { W_NONE, W_RUNNING, W_WAIT_RESTART, W_STOPPING };

struct wslot {
	pid_t pid;
	enum wstate state;
	uint64_t started_ns;
	uint64_t restart_at;
	uint32_t backoff_ms;
	bool watchdog_killed; /* SIGKILL sent for a stall; not again */
};

static struct {
	struct shmringd_config cfg;
	int argc;
	char **argv;
	struct shmring_instance *inst;
	struct shmringd_stats *stats;
	int *bell_fds;
	int sock_fd; /* --socket: the listening socket, else -1 */
	uint32_t nchannels;
	struct wslot w[SHMRING_MAX_WORKERS];
	uint32_t nworkers;
	int lock_fd;
	int dirfd; /* the instance directory: every file of ours is opened relative to it */
	int sfd;   /* signalfd */
	uid_t uid;
	gid_t gid;
	bool stopping;
	bool reloading;
	bool reload_all;          /* the worker count changes: every slot at once */
	uint32_t reload_slot;     /* rolling: the slot being replaced */
	uint64_t reload_deadline; /* ... or, reload_all, all of them: SIGKILL after */
	bool reload_killed;       /* SIGKILL sent at the deadline; not again */
	uint64_t stop_deadline;
} M = {.lock_fd = -1, .dirfd = -1, .sfd = -1, .sock_fd = -1};

/* ---- setup ---------------------------------------------------------------- */

static int resolve_ids(const struct shmringd_config *c, uid_t *uid, gid_t *gid)
{
	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (c->user[0]) {
		struct passwd *pw = getpwnam(c->user);
		char *end;
		unsigned long v = strtoul(c->user, &end, 10);
		if (pw) {
			*uid = pw->pw_uid;
			*gid = pw->pw_gid;
		} else if (*end == '\0') {
			*uid = (uid_t)v;
		} else {
			shmringd__config_error("user", "unknown user '%s'", c->user);
			return -1;
		}
	}
	if (c->group[0]) {
		struct group *gr = getgrnam(c->group);
		char *end;
		unsigned long v = strtoul(c->group, &end, 10);
		if (gr) {
			*gid = gr->gr_gid;
		} else if (*end == '\0') {
			*gid = (gid_t)v;
		} else {
			shmringd__config_error("group", "unknown group '%s'", c->group);
			return -1;
		}
	}
	return 0;
}

/* One shmringd per directory: an flock held for the master's life. */
static int take_lock(const char *dir)
{
	int fd =
	    openat(M.dirfd, SHMRINGD_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "shmringd: cannot open lock file %s/%s: %s\n", dir,
		        SHMRINGD_LOCK_NAME, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		if (n > 0)
			pid[strcspn(pid, "\n")] = '\0';
		fprintf(stderr,
		        "shmringd: another shmringd (pid %s) is already running on %s; stop it "
		        "first or choose another --shm-dir\n",
		        n > 0 ? pid : "?", dir);
		close(fd);
		return -1;
	}
	return fd;
}

static void write_lock_pid(void)
{
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(M.lock_fd, 0) == 0 && pwrite(M.lock_fd, pid, (size_t)n, 0) < 0)
		shmringd__log("cannot write lock file: %s", strerror(errno));
}

static int create_stats(mode_t mode)
{
	unlinkat(M.dirfd, SHMRINGD_STATS_NAME, 0);
	/* Read-only for group and other: the master and the workers write it
	 * through a mapping that a truncation would turn into SIGBUS. */
	mode &= 0644;
	int fd = openat(M.dirfd, SHMRINGD_STATS_NAME,
	                O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	fchmod(fd, mode);
	if (M.gid != (gid_t)-1 && fchown(fd, (uid_t)-1, M.gid) < 0)
		shmringd__log("chown %s: %s", SHMRINGD_STATS_NAME, strerror(errno));
	if (ftruncate(fd, sizeof(struct shmringd_stats)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	void *m =
	    mmap(NULL, sizeof(struct shmringd_stats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -errno;
	M.stats = m;
	M.stats->version = SHMRINGD_STATS_VERSION;
	M.stats->nworkers = M.cfg.workers;
	M.stats->master_pid = (uint64_t)getpid();
	__atomic_store_n(&M.stats->magic, SHMRINGD_STATS_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* One listening Unix stream socket per channel: the CQ doorbell. */
static int create_bells(void)
{
	M.bell_fds = calloc(M.nchannels, sizeof(int));
	if (!M.bell_fds)
		return -ENOMEM;
	for (uint32_t k = 0; k < M.nchannels; k++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int rc = shmring_doorbell_path(M.inst, k, sa.sun_path, sizeof(sa.sun_path));
		if (rc < 0)
			return rc;
		unlink(sa.sun_path);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		/* bind() makes the socket with the mode the umask leaves: the
		 * configured one, with no chmod by path afterwards. */
		mode_t old = umask(~M.cfg.mode & 0777);
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		umask(old);
		if (rc < 0 || listen(fd, 64) < 0) {
			rc = -errno;
			close(fd);
			return rc;
		}
		const char *name = strrchr(sa.sun_path, '/') + 1;
		if (M.gid != (gid_t)-1 &&
		    fchownat(M.dirfd, name, (uid_t)-1, M.gid, AT_SYMLINK_NOFOLLOW) < 0)
			shmringd__log("chown %s: %s", sa.sun_path, strerror(errno));
		M.bell_fds[k] = fd;
	}
	return 0;
}

static void remove_bells(void)
{
	for (uint32_t k = 0; M.bell_fds && k < M.nchannels; k++) {
		char path[PATH_MAX];
		close(M.bell_fds[k]);
		if (shmring_doorbell_path(M.inst, k, path, sizeof(path)) >= 0)
			unlink(path);
	}
}

/* Root only makes and hands over the instance directory (see main): the
 * rest is done as the configured user, keeping the configured group so
 * that files can be given to it. */
static int drop_privileges(void)
{
	if (geteuid() != 0)
		return 0;
	if (M.uid == 0) {
		shmringd__log("running as root (user = %s): not recommended", M.cfg.user);
		return 0;
	}
	if (M.gid == (gid_t)-1) {
		fprintf(stderr, "shmringd: user %s is a uid: set group too\n", M.cfg.user);
		return -1;
	}
	if (setgroups(1, &M.gid) < 0 || setgid(M.gid) < 0 || setuid(M.uid) < 0) {
		fprintf(stderr, "shmringd: cannot switch to user %s: %s\n", M.cfg.user,
		        strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- workers ---------------------------------------------------------------- */

/* Worker slots: the ring workers, then the socket worker (--socket). */
static uint32_t nslots(void)
{
	return M.nworkers + (M.sock_fd >= 0);
}

static void start_worker(uint32_t slot)
{
	struct wslot *s = &M.w[slot];
	pid_t pid = fork();
	if (pid < 0) {
		shmringd__log("fork: %s; retrying", strerror(errno));
		s->state = W_WAIT_RESTART;
		s->restart_at = shmring_now_ns() + 100000000ull;
		return;
	}
	if (pid == 0) {
		close(M.sfd);
		close(M.lock_fd);
		close(M.dirfd);
		struct shmringd_worker_args a = {.cfg = &M.cfg,
		                                 .inst = M.inst,
		                                 .slot = slot,
		                                 .nworkers = M.nworkers,
		                                 .bell_fds = M.bell_fds,
		                                 .stats = M.stats,
		                                 .sock_fd = slot == M.nworkers ? M.sock_fd : -1};
		shmringd__worker_main(&a);
	}
	s->pid = pid;
	s->state = W_RUNNING;
	s->watchdog_killed = false;
	s->started_ns = shmring_now_ns();
}

static struct wslot *slot_of(pid_t pid, uint32_t *idx)
{
	for (uint32_t i = 0; i < SHMRING_MAX_WORKERS; i++) {
		if (M.w[i].pid == pid && M.w[i].state != W_NONE) {
			*idx = i;
			return &M.w[i];
		}
	}
	return NULL;
}

static void reap_workers(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		uint32_t i;
		struct wslot *s = slot_of(pid, &i);
		if (!s)
			continue;
		s->pid = 0;
		if (s->state == W_STOPPING || M.stopping) {
			s->state = W_NONE;
			continue;
		}
		/* Unexpected: restart, at once if it had been up a while. */
		uint64_t now = shmring_now_ns();
		if (now - s->started_ns >= STABLE_NS)
			s->backoff_ms = 0;
		else
			s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (s->backoff_ms > M.cfg.restart_backoff_max_ms)
			s->backoff_ms = M.cfg.restart_backoff_max_ms;
		s->state = W_WAIT_RESTART;
		s->restart_at = now + (uint64_t)s->backoff_ms * 1000000u;
		shmring_instance_worker_counters(M.inst, i)->restarts++;
		shmring_instance_worker_counters(M.inst, i)->pid = 0;
		if (WIFSIGNALED(status))
			shmringd__log("worker %u (pid %d) killed by signal %d; restarting in %u ms",
			              i, (int)pid, WTERMSIG(status), s->backoff_ms);
		else
			shmringd__log("worker %u (pid %d) exited with %d; restarting in %u ms", i,
			              (int)pid, WEXITSTATUS(status), s->backoff_ms);
	}
}

static bool any_worker(void)
{
	for (uint32_t i = 0; i < SHMRING_MAX_WORKERS; i++)
		if (M.w[i].state == W_RUNNING || M.w[i].state == W_STOPPING)
			return true;
	return false;
}

static void signal_workers(int sig)
{
	for (uint32_t i = 0; i < SHMRING_MAX_WORKERS; i++) {
		if (M.w[i].state == W_RUNNING || M.w[i].state == W_STOPPING) {
			M.w[i].state = W_STOPPING;
			kill(M.w[i].pid, sig);
		} else if (M.w[i].state == W_WAIT_RESTART) {
			M.w[i].state = W_NONE;
		}
	}
}

/* A worker whose loop has not turned for watchdog_ms is stuck in a plugin
 * hook (or the kernel): kill it; supervision restarts it, and the
 * crash-loop guard skips the record if it hangs a second worker too. */
static void watchdog(void)
{
	if (!M.cfg.watchdog_ms)
		return;
	uint64_t now = shmring_now_ns(), limit = (uint64_t)M.cfg.watchdog_ms * 1000000u;
	for (uint32_t i = 0; i < M.nworkers; i++) {
		struct wslot *s = &M.w[i];
		uint64_t seen = M.stats->w[i].loop_ns;
		/* Handing over (a reload) counts: a hook stuck there holds the slot. */
		if ((s->state != W_RUNNING && s->state != W_STOPPING) || s->watchdog_killed ||
		    now - s->started_ns < limit || seen > now || now - seen < limit)
			continue;
		shmringd__log("worker %u (pid %d) stuck for %llu ms (a plugin hook that does not "
		              "return?); killing it",
		              i, (int)s->pid, (unsigned long long)((now - seen) / 1000000u));
		M.stats->w[i].watchdog_kills++;
		kill(s->pid, SIGKILL);
		s->watchdog_killed = true;
	}
}

static void restart_due(void)
{
	uint64_t now = shmring_now_ns();
	for (uint32_t i = 0; i < nslots(); i++)
		if (M.w[i].state == W_WAIT_RESTART && now >= M.w[i].restart_at)
			start_worker(i);
}

/* ---- reload ------------------------------------------------------------------ */

static void reload_hand_over(void);

/* SIGHUP: re-read the config; if the plugins load, hand every channel over
 * to a new set of workers (records wait in the rings meanwhile). */
static void reload_begin(void)
{
	struct shmringd_config nc;
	bool exit_now;
	shmringd__config_defaults(&nc);
	if (shmringd__config_load(&nc, M.argc, M.argv, &exit_now) < 0) {
		shmringd__log("reload: configuration refused; keeping the running one");
		return;
	}
	/* What the segments and sockets were made with cannot change live. */
	char fixed[128] = "";
	if (strcmp(nc.shm_dir, M.cfg.shm_dir))
		strcat(fixed, " shm_dir");
	if (nc.channels != M.cfg.channels)
		strcat(fixed, " channels");
	if (nc.ring_size != M.cfg.ring_size)
		strcat(fixed, " ring_size");
	if (nc.mode != M.cfg.mode)
		strcat(fixed, " mode");
	if (strcmp(nc.user, M.cfg.user))
		strcat(fixed, " user");
	if (strcmp(nc.group, M.cfg.group))
		strcat(fixed, " group");
	if (fixed[0])
		shmringd__log("reload: changed%s: these need a restart; keeping their old values",
		              fixed);
	snprintf(nc.shm_dir, sizeof(nc.shm_dir), "%s", M.cfg.shm_dir);
	nc.channels = M.cfg.channels;
	nc.ring_size = M.cfg.ring_size;
	nc.mode = M.cfg.mode;
	memcpy(nc.user, M.cfg.user, sizeof(nc.user));
	memcpy(nc.group, M.cfg.group, sizeof(nc.group));
	memcpy(nc.socket, M.cfg.socket, sizeof(nc.socket)); /* listening since start */
	nc.foreground = M.cfg.foreground;

	struct shmringd_plugins probe;
	char err[512];
	if (shmringd__plugins_load(&nc, &probe, shmringd__plugins_strict(&nc), err, sizeof(err)) <
	    0) {
		shmringd__log("reload: %s; keeping the running workers", err);
		return;
	}
	shmringd__plugins_unload(&probe);
	M.cfg = nc;
	M.reloading = true;
	/* Another worker count moves every channel to another slot: all old
	 * workers must be gone before any new one starts (one consumer per
	 * ring). Otherwise one slot at a time, the others serving meanwhile. */
	M.reload_all = M.cfg.workers != M.nworkers;
	M.reload_slot = 0;
	reload_hand_over();
	shmringd__log("reload: handing channels to new workers%s",
	              M.reload_all ? " (all at once: the worker count changes)"
	                           : ", one at a time");
}

/* Tell the worker(s) being replaced to hand over, with a deadline: a hook
 * that never returns must not hold the reload (or the slot) forever. */
static void reload_hand_over(void)
{
	if (M.reload_all) {
		signal_workers(SIGUSR1);
	} else {
		struct wslot *s = &M.w[M.reload_slot];
		if (s->state == W_RUNNING) {
			s->state = W_STOPPING;
			kill(s->pid, SIGUSR1);
		} else if (s->state == W_WAIT_RESTART) {
			s->state = W_NONE;
		}
	}
	/* A handing-over worker waits up to drain_timeout_ms for CQ space. */
	M.reload_deadline = shmring_now_ns() + ((uint64_t)M.cfg.drain_timeout_ms + 1000) * 1000000u;
	M.reload_killed = false;
}

/* Past the deadline: kill what is still handing over. */
static void reload_enforce_deadline(void)
{
	if (M.reload_killed || shmring_now_ns() < M.reload_deadline)
		return;
	for (uint32_t i = 0; i < SHMRING_MAX_WORKERS; i++) {
		if (M.w[i].state != W_STOPPING || (!M.reload_all && i != M.reload_slot))
			continue;
		shmringd__log("reload: worker %u (pid %d) did not hand over in %u ms; killing it",
		              i, (int)M.w[i].pid, M.cfg.drain_timeout_ms + 1000);
		kill(M.w[i].pid, SIGKILL);
	}
	M.reload_killed = true;
}

/* One step of a reload: start what was handed over, move to the next slot. */
static void reload_step(void)
{
	reload_enforce_deadline();
	if (M.reload_all) {
		if (any_worker())
			return;
		M.nworkers = M.cfg.workers;
		shmring_instance_set_workers(M.inst, M.nworkers);
		M.stats->nworkers = M.nworkers;
		for (uint32_t i = 0; i < nslots(); i++) {
			M.w[i].backoff_ms = 0;
			start_worker(i);
		}
	} else {
		struct wslot *s = &M.w[M.reload_slot];
		if (s->state == W_STOPPING)
			return;
		s->backoff_ms = 0;
		start_worker(M.reload_slot);
		if (++M.reload_slot < nslots()) {
			reload_hand_over();
			return;
		}
	}
	M.reloading = false;
	shmringd__log("reload: done, %u worker(s)", M.nworkers);
}

/* ---- the loop ------------------------------------------------------------------ */

static void stop_begin(void)
{
	if (M.stopping)
		return;
	M.stopping = true;
	/* Clients stop submitting once they see the closed flag; the workers
	 * answer what is already in the rings, flush their logs and exit. */
	shmring_instance_set_closed(M.inst);
	signal_workers(SIGTERM);
	M.stop_deadline = shmring_now_ns() + ((uint64_t)M.cfg.drain_timeout_ms + 2000) * 1000000u;
	shmringd__log("stopping: draining rings and log sinks");
}

/* Beat every BEAT_MS; not while stopping (clients must see the daemon go). */
static void heartbeat(uint64_t now, uint64_t *next_beat)
{
	if (now >= *next_beat && !M.stopping) {
		/* Before the beat: a beat into a truncated ctl lands in private
		 * zero pages (libshmring's SIGBUS guard), seen by no client. */
		if (shmring_instance_repair(M.inst, 1) == 1) {
			/* Its counters are lost; the workers' pids are what clients
			 * and shmringctl need back. */
			for (uint32_t i = 0; i < M.nworkers; i++)
				shmring_instance_worker_counters(M.inst, i)->pid =
				    (uint64_t)M.w[i].pid;
			shmringd__log("ctl was truncated or overwritten: restored");
		}
		shmring_instance_beat(M.inst);
		*next_beat = now + BEAT_MS * 1000000ull;
	}
}

/* How long the master may wait for a signal: until the next beat, or the
 * next worker restart that is due sooner. */
static int wait_ms(uint64_t now)
{
	int ms = BEAT_MS;
	for (uint32_t i = 0; i < M.nworkers; i++) {
		if (M.w[i].state == W_WAIT_RESTART) {
			int64_t d = (int64_t)(M.w[i].restart_at - now) / 1000000;
			if (d < ms)
				ms = d < 0 ? 0 : (int)d;
		}
	}
	return ms;
}

/* Wait up to ms for signals (the signalfd) and act on each: SIGTERM/SIGINT
 * stop, SIGHUP reloads. SIGCHLD only wakes us: reap_workers() follows. */
static void handle_signals(int ms)
{
	struct pollfd pfd = {.fd = M.sfd, .events = POLLIN};
	if (poll(&pfd, 1, ms) <= 0)
		return;
	struct signalfd_siginfo si;
	while (read(M.sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			stop_begin();
			break;
		case SIGHUP:
			if (!M.stopping && !M.reloading)
				reload_begin();
			break;
		default:
			break;
		}
	}
}

/* Stopping: true once every worker is gone; past the deadline, kill them. */
static bool stop_finished(void)
{
	if (!any_worker())
		return true;
	if (shmring_now_ns() >= M.stop_deadline) {
		shmringd__log("workers did not stop in time; killing them");
		signal_workers(SIGKILL);
		M.stop_deadline = UINT64_MAX;
	}
	return false;
}

/* One turn of the master, one call per step: beat, wait for a signal and
 * handle it, reap, then whatever the state (stopping, reloading, running)
 * asks for. True once the master may exit. */
static bool master_iteration(uint64_t *next_beat)
{
	uint64_t now = shmring_now_ns();
	heartbeat(now, next_beat);
	handle_signals(wait_ms(now));
	reap_workers();
	if (M.stopping)
		return stop_finished();
	if (M.reloading)
		reload_step();
	/* Supervision and the watchdog go on during a reload: a rolling one
	 * leaves the other slots' workers serving, and they can still hang. */
	if (!M.reloading || !M.reload_all)
		restart_due();
	watchdog();
	return false;
}

static int master_loop(void)
{
	uint64_t next_beat = 0;
	while (!master_iteration(&next_beat))
		;
	return 0;
}

/* ---- main ------------------------------------------------------------------------ */

/* Fork into the background; the parent exits with the child's start-up
 * status, read from a pipe, so `shmringd` fails visibly when setup fails. */
static int daemonize(int *report_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		char st = 1;
		if (read(p[0], &st, 1) != 1)
			st = 1;
		_exit(st);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0)
		return -1;
	*report_fd = p[1];
	return 0;
}

static void report_start(int fd, char status)
{
	if (fd < 0)
		return;
	if (write(fd, &status, 1) < 0) {
		/* the parent is gone: nothing to tell */
	}
	close(fd);
	if (status == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			close(nul);
		}
		openlog("shmringd", LOG_PID, LOG_DAEMON);
		log_to_syslog = true;
	}
}

static int check_plugins(void)
{
	struct shmringd_plugins p;
	char err[512];
	if (shmringd__plugins_load(&M.cfg, &p, shmringd__plugins_strict(&M.cfg), err, sizeof(err)) <
	    0) {
		fprintf(stderr, "shmringd: %s\n", err);
		return -1;
	}
	int refused = 0;
	for (uint32_t i = 0; i < p.n; i++) {
		if (p.v[i].desc) {
			if (shmringd__check_only)
				printf("plugin %s %s: ok\n", p.v[i].name,
				       p.v[i].desc->version ? p.v[i].desc->version : "");
		} else {
			refused++;
		}
	}
	shmringd__plugins_unload(&p);
	return shmringd__check_only && refused ? -1 : 0;
}

int main(int argc, char **argv)
{
	bool exit_now;
	shmringd__config_defaults(&M.cfg);
	if (shmringd__config_load(&M.cfg, argc, argv, &exit_now) < 0)
		return 2;
	if (exit_now)
		return 0;
	if (shmringd__check_plugin)
		return shmringd__check_plugin_file(shmringd__check_plugin, shmringd__check_config) <
		               0
		           ? 2
		           : 0;
	M.argc = argc;
	M.argv = argv;
	if (resolve_ids(&M.cfg, &M.uid, &M.gid) < 0)
		return 2;
	if (check_plugins() < 0)
		return 2;
	if (shmringd__check_only)
		return 0;
	if (geteuid() == 0 && !M.cfg.user[0]) {
		fprintf(stderr, "shmringd: refusing to run as root without `user`: set user to the "
		                "daemon's own account (e.g. shmring), or to root deliberately\n");
		return 2;
	}

	int report_fd = -1;
	if (!M.cfg.foreground && daemonize(&report_fd) < 0) {
		fprintf(stderr, "shmringd: cannot daemonize: %s\n", strerror(errno));
		return 1;
	}
	/* Signals go to the signalfd; workers unblock them after fork. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	M.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);

	struct shmring_create_opts o = {.dir = M.cfg.shm_dir,
	                                .nchannels = M.cfg.channels,
	                                .nworkers = M.cfg.workers,
	                                .sq_size = M.cfg.ring_size,
	                                .cq_size = M.cfg.ring_size,
	                                .mode = M.cfg.mode,
	                                .uid = M.uid,
	                                .gid = M.gid};
	/* The directory, given to the daemon's user, is all root makes: every
	 * file in it is made after the switch, so a symlink or a file planted
	 * there never meets a root open, chown or truncate. */
	int rc = M.dirfd = shmring_instance_mkdir(&o);
	if (rc < 0) {
		fprintf(stderr, "shmringd: cannot create %s: %s%s\n", M.cfg.shm_dir,
		        shmring_strerror(rc),
		        rc == -EPERM ? " (it, or a directory above it, belongs to someone else or "
		                       "is writable by others)"
		                     : "");
		goto fail;
	}
	if (drop_privileges() < 0)
		goto fail;
	if ((M.lock_fd = take_lock(M.cfg.shm_dir)) < 0)
		goto fail;
	/* Plugin regions of a previous run (crashed, or another layout). */
	shmringd__shared_remove_all(M.cfg.shm_dir);
	write_lock_pid();

	if ((rc = shmring_instance_create(&o, &M.inst)) < 0) {
		fprintf(stderr, "shmringd: cannot create the segments in %s: %s\n", M.cfg.shm_dir,
		        shmring_strerror(rc));
		goto fail;
	}
	M.nchannels = shmring_instance_nchannels(M.inst);
	M.nworkers = M.cfg.workers;
	if ((rc = create_stats(M.cfg.mode)) < 0 || (rc = create_bells()) < 0) {
		fprintf(stderr, "shmringd: cannot create files in %s: %s\n", M.cfg.shm_dir,
		        strerror(-rc));
		goto fail_inst;
	}
	if (M.cfg.socket[0]) {
		M.sock_fd = shmringd__socket_listen(M.cfg.socket, M.cfg.mode, M.uid, M.gid);
		if (M.sock_fd < 0) {
			fprintf(stderr, "shmringd: cannot listen on %s: %s\n", M.cfg.socket,
			        strerror(-M.sock_fd));
			goto fail_inst;
		}
	}
	/* Set up: the launching shell gets its exit status now, and the
	 * workers are forked with the final stdio and logging. */
	report_start(report_fd, 0);
	for (uint32_t i = 0; i < nslots(); i++)
		start_worker(i);
	shmringd__log("ready: %s, %u channel(s), %u worker(s)%s%s", M.cfg.shm_dir, M.nchannels,
	              M.nworkers, M.sock_fd >= 0 ? ", socket transport on " : "",
	              M.sock_fd >= 0 ? M.cfg.socket : "");

	master_loop();

	remove_bells();
	if (M.sock_fd >= 0)
		unlink(M.cfg.socket);
	shmringd__shared_remove_all(M.cfg.shm_dir);
	unlinkat(M.dirfd, SHMRINGD_STATS_NAME, 0);
	shmring_instance_close(M.inst, 1);
	unlinkat(M.dirfd, SHMRINGD_LOCK_NAME, 0);
	close(M.lock_fd);
	shmringd__log("stopped");
	free(M.bell_fds);
	return 0;

fail_inst:
	remove_bells();
	shmring_instance_close(M.inst, 1);
fail:
	report_start(report_fd, 1);
	return 1;
}
