/* SPDX-License-Identifier: MIT */
/* A small C client of shmringd for the daemon tests and the benchmark: it
 * starts a real shmringd process, drives it through the rings exactly as the
 * LuaJIT client does (docs/protocol.md), and waits with deadlines, never
 * with bare sleeps. Header-only; every function is static. */
#ifndef SHMRING_TEST_DAEMON_CLIENT_H
#define SHMRING_TEST_DAEMON_CLIENT_H

#include "shmring/mp.h"
#include "shmring/shmring.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			tc_dump_log();                                                             \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define SEC 1000000000ull
#define MS 1000000ull

static char tc_dir[256];             /* temp dir of this test */
static char tc_shm[300];             /* the daemon's --shm-dir */
static char tc_errlog[300];          /* the daemon's stderr */
static pid_t tc_pid;                 /* the daemon */
static int64_t tc_owner = -1;        /* the daemon's uid, checked at attach; -1 = ours */
static void (*tc_spawn_setup)(void); /* run in the daemon's child before exec, if set */

static inline void tc_dump_log(void)
{
	if (!tc_errlog[0])
		return;
#ifdef SHMRINGCTL_PATH
	if (tc_pid > 0) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "%s --shm-dir %s stats --json >&2", SHMRINGCTL_PATH,
		         tc_shm);
		fprintf(stderr, "---- shmringctl stats ----\n");
		if (system(cmd) != 0)
			fprintf(stderr, "(shmringctl failed)\n");
	}
#endif
	FILE *f = fopen(tc_errlog, "r");
	if (!f)
		return;
	char line[1024];
	fprintf(stderr, "---- shmringd stderr ----\n");
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

static inline void tc_cleanup(void)
{
	if (tc_pid > 0) {
		kill(tc_pid, SIGKILL);
		waitpid(tc_pid, NULL, 0);
		tc_pid = 0;
	}
	if (tc_dir[0]) {
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tc_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", tc_dir);
	}
}

static inline void tc_init(const char *name)
{
	snprintf(tc_dir, sizeof(tc_dir), "/tmp/shmring-%s-XXXXXX", name);
	CHECK(mkdtemp(tc_dir), "mkdtemp: %s", strerror(errno));
	snprintf(tc_shm, sizeof(tc_shm), "%s/shm", tc_dir);
	snprintf(tc_errlog, sizeof(tc_errlog), "%s/shmringd.err", tc_dir);
	atexit(tc_cleanup);
	signal(SIGPIPE, SIG_IGN);
}

/* Start shmringd in the foreground with the given extra "--key value"
 * arguments (NULL-terminated). Its stderr goes to tc_errlog. */
static inline pid_t tc_spawn(const char *const *extra)
{
	const char *argv[64];
	int n = 0;
	argv[n++] = SHMRINGD_PATH;
	argv[n++] = "--foreground";
	argv[n++] = "--shm-dir";
	argv[n++] = tc_shm;
	argv[n++] = "--plugin-dir";
	argv[n++] = PLUGIN_DIRS;
	/* Log files and credentials files of the tests live in tc_dir. */
	argv[n++] = "--plugin-file-dirs";
	argv[n++] = tc_dir;
	bool user_given = false;
	for (int i = 0; extra && extra[i] && n < 58; i++) {
		user_given |= !strcmp(extra[i], "--user");
		argv[n++] = extra[i];
	}
	/* shmringd refuses root unless told which user to be: the tests that
	 * run as root say root, deliberately (test_privileges says nobody). */
	if (geteuid() == 0 && !user_given) {
		argv[n++] = "--user";
		argv[n++] = "root";
	}
	argv[n] = NULL;
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open(tc_errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		if (tc_spawn_setup)
			tc_spawn_setup();
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static inline uint64_t tc_now(void)
{
	return shmring_now_ns();
}

/* Wait until the daemon's instance exists and every worker is up. */
static inline struct shmring_instance *tc_wait_ready(uint32_t nworkers, uint64_t timeout_ns)
{
	uint64_t deadline = tc_now() + timeout_ns;
	for (;;) {
		struct shmring_instance *inst = NULL;
		if (shmring_instance_attach_owned(tc_shm, tc_owner, &inst) == 0) {
			uint32_t up = 0;
			for (uint32_t w = 0; w < nworkers; w++)
				up += shmring_instance_worker_counters(inst, w)->pid != 0;
			if (up == nworkers && shmring_instance_heartbeat_age_ns(inst) >= 0)
				return inst;
			shmring_instance_close(inst, 0);
		}
		int st;
		CHECK(waitpid(tc_pid, &st, WNOHANG) == 0, "shmringd exited during start-up");
		CHECK(tc_now() < deadline, "shmringd not ready in time");
		usleep(1000);
	}
}

static inline struct shmringd_stats *tc_stats(void)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/" SHMRINGD_STATS_NAME, tc_shm);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0, "open %s", path);
	void *m = mmap(NULL, sizeof(struct shmringd_stats), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	CHECK(m != MAP_FAILED, "mmap stats");
	return m;
}

/* Wait for the daemon to exit; returns its exit status (or -signal). */
static inline int tc_wait_exit(pid_t pid, uint64_t timeout_ns)
{
	uint64_t deadline = tc_now() + timeout_ns;
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		CHECK(tc_now() < deadline, "process %d did not exit in time", (int)pid);
		usleep(1000);
	}
	if (pid == tc_pid)
		tc_pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static inline int tc_log_contains(const char *needle)
{
	FILE *f = fopen(tc_errlog, "r");
	if (!f)
		return 0;
	char line[2048];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* The end of a test that passed: give the channel back (if any), detach,
 * stop the daemon with SIGTERM (it must exit 0), say ok. */
static inline int tc_stop(struct shmring_instance *inst, struct shmring_chan *c)
{
	if (c)
		shmring_chan_release(c);
	shmring_instance_close(inst, 0);
	kill(tc_pid, SIGTERM);
	CHECK(tc_wait_exit(tc_pid, 10 * SEC) == 0, "stop");
	printf("ok\n");
	return 0;
}

/* ---- records ----------------------------------------------------------- */

struct tc_reply {
	uint64_t req_id;
	uint16_t type;
	uint32_t len;
	uint8_t buf[65536];
	struct shmring_mpr mpr;
	const msgpack_object *root;
	uint64_t s;
};

/* Send one record whose payload is written by fill(); spins while FULL. */
static inline void tc_send(struct shmring_chan *c, uint16_t type, uint64_t req_id,
                           void (*fill)(struct shmring_mpw *, void *), void *arg)
{
	struct shmring_claim cl;
	uint64_t deadline = tc_now() + 5 * SEC;
	int rc;
	while ((rc = shmring_claim(c, 4096, &cl)) == SHMRING_FULL)
		CHECK(tc_now() < deadline, "SQ stayed full");
	CHECK(rc == 0, "claim: %s", shmring_strerror(rc));
	struct shmring_mpw w;
	shmring_mpw_init(&w, cl.payload, cl.cap);
	fill(&w, arg);
	int len = shmring_mpw_finish(&w);
	CHECK(len >= 0, "encode");
	CHECK(shmring_commit(c, &cl, (uint32_t)len, type, 0, req_id) == 0, "commit");
	shmring_publish(c);
}

/* Send raw payload bytes (for malformed records). */
static inline void tc_send_raw(struct shmring_chan *c, uint16_t type, uint64_t req_id,
                               const void *p, uint32_t len)
{
	CHECK(shmring_send(c, type, req_id, p, len) == 0, "send raw");
	shmring_publish(c);
}

/* Poll the CQ for the next reply (any req_id) until the deadline. 0 or
 * -ETIMEDOUT. The reply is copied out and parsed. */
static inline int tc_recv(struct shmring_chan *c, struct tc_reply *r, uint64_t timeout_ns)
{
	uint64_t deadline = tc_now() + timeout_ns;
	struct shmring_rec rec;
	for (uint32_t spins = 0;; spins++) {
		int rc = shmring_peek(c, &rec);
		if (rc == 0)
			break;
		CHECK(rc == SHMRING_EMPTY, "CQ peek: %s", shmring_strerror(rc));
		if (tc_now() >= deadline)
			return -ETIMEDOUT;
		if (spins > 1000)
			sched_yield();
	}
	CHECK(rec.len <= sizeof(r->buf), "reply too big");
	memcpy(r->buf, rec.payload, rec.len);
	r->len = rec.len;
	r->type = rec.type;
	r->req_id = rec.req_id;
	shmring_release(c);
	if (!r->mpr.zone.chunk_size)
		CHECK(shmring_mpr_init(&r->mpr) == 0, "mpr init");
	CHECK(shmring_mpr_parse(&r->mpr, r->buf, r->len) == 0, "reply is not msgpack");
	r->root = &r->mpr.root;
	CHECK(shmring_mp_get_uint(r->root, "s", &r->s) == 0, "reply without s");
	return 0;
}

/* Wait for the reply to req_id, skipping others (counted in *skipped). */
static inline void tc_expect(struct shmring_chan *c, struct tc_reply *r, uint64_t req_id,
                             uint64_t timeout_ns)
{
	uint64_t deadline = tc_now() + timeout_ns;
	for (;;) {
		uint64_t now = tc_now();
		CHECK(now < deadline, "no reply to req %llu in time", (unsigned long long)req_id);
		if (tc_recv(c, r, deadline - now) == 0 && r->req_id == req_id)
			return;
	}
}

/* The error string of a reply ("" if none). */
static inline const char *tc_err(const struct tc_reply *r, char *buf, size_t len)
{
	const char *s;
	uint32_t n;
	buf[0] = '\0';
	if (shmring_mp_get_str(r->root, "e", &s, &n) == 0)
		snprintf(buf, len, "%.*s", (int)n, s);
	return buf;
}

struct tc_conf {
	uint64_t id;
	const char *plugin;
	const char *k1, *v1; /* one optional config string */
};

static inline void tc_fill_conf(struct shmring_mpw *w, void *arg)
{
	struct tc_conf *c = arg;
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, c->id);
	shmring_mpw_cstr(w, "plugin");
	shmring_mpw_cstr(w, c->plugin);
	shmring_mpw_cstr(w, "config");
	shmring_mpw_map(w, c->k1 ? 1 : 0);
	if (c->k1) {
		shmring_mpw_cstr(w, c->k1);
		shmring_mpw_cstr(w, c->v1);
	}
}

/* A 64-byte-ish ACCESS snapshot for conf id *arg. */
/* A LOG record of one line: `entry = {line = ...}`, what the test log
 * plugin (tests/daemon/plugins) writes out. tc_send's fill for a struct
 * tc_log_line. */
struct tc_log_line {
	uint64_t conf;
	const char *line; /* NUL-terminated */
};

static inline void tc_fill_log_line(struct shmring_mpw *w, void *arg)
{
	const struct tc_log_line *a = arg;
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, a->conf);
	shmring_mpw_cstr(w, "entry");
	shmring_mpw_map(w, 1);
	shmring_mpw_cstr(w, "line");
	shmring_mpw_cstr(w, a->line);
}

static inline void tc_fill_access(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 4);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, *(uint64_t *)arg);
	shmring_mpw_cstr(w, "method");
	shmring_mpw_cstr(w, "GET");
	shmring_mpw_cstr(w, "path");
	shmring_mpw_cstr(w, "/hello/world");
	shmring_mpw_cstr(w, "headers");
	shmring_mpw_map(w, 1);
	shmring_mpw_cstr(w, "host");
	shmring_mpw_cstr(w, "example.com");
}

/* A whole HTTP request at the start of buf[0..have) (an HTTP sink's, to a
 * collector of a test): its length, headers and Content-Length body, with
 * the body in *body, *body_len; 0 while it is not whole. */
static inline size_t tc_http_request(const char *buf, size_t have, const char **body,
                                     size_t *body_len)
{
	const char *end = memmem(buf, have, "\r\n\r\n", 4);
	if (!end)
		return 0;
	const char *cl = memmem(buf, (size_t)(end - buf), "Content-Length: ", 16);
	size_t n = cl ? strtoul(cl + 16, NULL, 10) : 0, hdr = (size_t)(end + 4 - buf);
	if (have < hdr + n)
		return 0;
	*body = end + 4;
	*body_len = n;
	return hdr + n;
}

/* The answer of such a collector: 200, keep-alive, one write. */
#define TC_HTTP_OK "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

/* A collector of a test or benchmark on a listening socket: one connection
 * at a time (a closed one is replaced by the next accepted), keep-alive,
 * every whole request answered TC_HTTP_OK. */
struct tc_http_collector {
	int lfd, fd;       /* fd: the connection, -1 before one is accepted */
	size_t have, used; /* bytes in buf; the last request returned */
	char buf[1 << 16];
};

/* The body of the next request, answered; NULL when nothing more came
 * within poll_ms. The body stays valid until the next call. */
static inline const char *tc_http_next(struct tc_http_collector *c, int poll_ms, size_t *body_len)
{
	memmove(c->buf, c->buf + c->used, c->have - c->used);
	c->have -= c->used;
	c->used = 0;
	const char *body;
	if (c->fd >= 0 && (c->used = tc_http_request(c->buf, c->have, &body, body_len))) {
		CHECK(send(c->fd, TC_HTTP_OK, strlen(TC_HTTP_OK), MSG_NOSIGNAL) > 0,
		      "collector send");
		return body;
	}
	struct pollfd p = {.fd = c->fd >= 0 ? c->fd : c->lfd, .events = POLLIN};
	if (poll(&p, 1, poll_ms) != 1)
		return NULL;
	if (c->fd < 0) {
		c->fd = accept(c->lfd, NULL, NULL);
		c->have = 0;
		return NULL;
	}
	ssize_t k = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
	if (k <= 0) {
		close(c->fd);
		c->fd = -1;
	} else {
		c->have += (size_t)k;
	}
	return NULL;
}

/* Register conf id for plugin and expect SHMRING_REPLY_OK. */
static inline void tc_register(struct shmring_chan *c, struct tc_reply *r, uint64_t req_id,
                               struct tc_conf *conf)
{
	char e[512];
	tc_send(c, SHMRING_REC_CONF, req_id, tc_fill_conf, conf);
	tc_expect(c, r, req_id, 5 * SEC);
	CHECK(r->s == SHMRING_REPLY_OK, "CONF %s refused: %s", conf->plugin,
	      tc_err(r, e, sizeof(e)));
}

#endif
