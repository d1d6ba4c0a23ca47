/* SPDX-License-Identifier: MIT */
/* The socket transport (--socket, worker/socket.c): frames are the 16-byte
 * ring record header (u32 len, u16 type, u16 flags, u64 req_id) and the
 * msgpack payload, over a Unix stream socket. CONF then ACCESS to hello;
 * unknown conf id; malformed msgpack (answered, connection keeps working);
 * a frame delivered byte by byte; a header claiming 1 GiB and one just over
 * max_payload (connection closed, socket worker alive, new connections
 * served); a half-closed client still answered; 200 pipelined frames
 * answered in order; two connections at once sharing the conf table;
 * SIGTERM exits 0 and removes the socket. */
#include "client.h"

#include <poll.h>

#define FRAME_HDR 16
#define MAX_PAYLOAD (SHMRING_DEFAULT_RING / 2) /* socket.c: ring_size / 2 */

static char sock_path[300];

/* A connection with a receive buffer (frames may arrive split or batched). */
struct sconn {
	int fd;
	uint8_t rx[1 << 17];
	uint32_t rlen;
};

static int ms_left(uint64_t deadline)
{
	uint64_t now = tc_now();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + MS - 1) / MS);
}

static void sc_open(struct sconn *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen = strlen(sock_path);
	CHECK(plen < sizeof(sa.sun_path), "socket path too long: %s", sock_path);
	memcpy(sa.sun_path, sock_path, plen + 1);
	uint64_t deadline = tc_now() + 10 * SEC;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		CHECK(fd >= 0, "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			c->fd = fd;
			c->rlen = 0;
			return;
		}
		int e = errno;
		close(fd);
		CHECK(e == ENOENT || e == ECONNREFUSED || e == EAGAIN, "connect %s: %s", sock_path,
		      strerror(e));
		CHECK(tc_now() < deadline, "cannot connect to %s: %s", sock_path, strerror(e));
		int st;
		CHECK(waitpid(tc_pid, &st, WNOHANG) == 0, "shmringd exited");
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL); /* retry pacing, bounded by the deadline */
	}
}

static void sc_close(struct sconn *c)
{
	close(c->fd);
	c->fd = -1;
}

static void send_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t deadline = tc_now() + 5 * SEC;
	while (len) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
		if (n > 0) {
			b += n;
			len -= (size_t)n;
			continue;
		}
		CHECK(n < 0 && (errno == EAGAIN || errno == EINTR), "send: %s", strerror(errno));
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		CHECK(poll(&pf, 1, ms_left(deadline)) >= 0, "poll");
		CHECK(tc_now() < deadline, "send blocked");
	}
}

/* Append one frame to buf at *off. */
static void put_frame(uint8_t *buf, size_t cap, size_t *off, uint16_t type, uint64_t req_id,
                      const void *payload, uint32_t len)
{
	CHECK(*off + FRAME_HDR + len <= cap, "frame buffer");
	uint8_t *h = buf + *off;
	uint16_t flags = 0;
	memcpy(h, &len, 4);
	memcpy(h + 4, &type, 2);
	memcpy(h + 6, &flags, 2);
	memcpy(h + 8, &req_id, 8);
	if (len)
		memcpy(h + FRAME_HDR, payload, len);
	*off += FRAME_HDR + len;
}

/* Encode a payload with fill() into buf; returns its length. */
static uint32_t encode(uint8_t *buf, uint32_t cap, void (*fill)(struct shmring_mpw *, void *),
                       void *arg)
{
	struct shmring_mpw w;
	shmring_mpw_init(&w, buf, cap);
	fill(&w, arg);
	int len = shmring_mpw_finish(&w);
	CHECK(len >= 0, "encode");
	return (uint32_t)len;
}

static void send_frame(struct sconn *c, uint16_t type, uint64_t req_id,
                       void (*fill)(struct shmring_mpw *, void *), void *arg)
{
	uint8_t buf[4096];
	uint8_t payload[4000];
	uint32_t len = encode(payload, sizeof(payload), fill, arg);
	size_t off = 0;
	put_frame(buf, sizeof(buf), &off, type, req_id, payload, len);
	send_all(c->fd, buf, off);
}

/* Take one complete frame out of c->rx if there is one. */
static int take_frame(struct sconn *c, struct tc_reply *r)
{
	if (c->rlen < FRAME_HDR)
		return 0;
	uint32_t len;
	uint16_t flags;
	memcpy(&len, c->rx, 4);
	memcpy(&r->type, c->rx + 4, 2);
	memcpy(&flags, c->rx + 6, 2);
	memcpy(&r->req_id, c->rx + 8, 8);
	CHECK(len <= sizeof(r->buf), "reply frame of %u bytes", len);
	if (c->rlen - FRAME_HDR < len)
		return 0;
	CHECK(r->type == SHMRING_REC_REPLY && flags == 0, "reply frame type %u flags %u", r->type,
	      flags);
	memcpy(r->buf, c->rx + FRAME_HDR, len);
	r->len = len;
	memmove(c->rx, c->rx + FRAME_HDR + len, c->rlen - FRAME_HDR - len);
	c->rlen -= FRAME_HDR + len;
	if (!r->mpr.zone.chunk_size)
		CHECK(shmring_mpr_init(&r->mpr) == 0, "mpr init");
	CHECK(shmring_mpr_parse(&r->mpr, r->buf, r->len) == 0, "reply is not msgpack");
	r->root = &r->mpr.root;
	CHECK(shmring_mp_get_uint(r->root, "s", &r->s) == 0, "reply without s");
	return 1;
}

/* Read what the socket has (waiting up to the deadline). 1: got bytes,
 * 0: EOF, -ETIMEDOUT. */
static int fill_rx(struct sconn *c, uint64_t deadline)
{
	for (;;) {
		CHECK(c->rlen < sizeof(c->rx), "receive buffer full");
		ssize_t n = recv(c->fd, c->rx + c->rlen, sizeof(c->rx) - c->rlen, MSG_DONTWAIT);
		if (n > 0) {
			c->rlen += (uint32_t)n;
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno == ECONNRESET)
			return 0;
		CHECK(errno == EAGAIN || errno == EINTR, "recv: %s", strerror(errno));
		if (tc_now() >= deadline)
			return -ETIMEDOUT;
		struct pollfd pf = {.fd = c->fd, .events = POLLIN};
		CHECK(poll(&pf, 1, ms_left(deadline)) >= 0, "poll");
	}
}

/* Next reply frame: 0, -EPIPE on EOF, -ETIMEDOUT. */
static int sc_recv(struct sconn *c, struct tc_reply *r, uint64_t timeout_ns)
{
	uint64_t deadline = tc_now() + timeout_ns;
	while (!take_frame(c, r)) {
		int rc = fill_rx(c, deadline);
		if (rc == 0)
			return -EPIPE;
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void sc_expect(struct sconn *c, struct tc_reply *r, uint64_t req_id)
{
	int rc = sc_recv(c, r, 5 * SEC);
	CHECK(rc == 0, "no reply to req %llu: %s", (unsigned long long)req_id, strerror(-rc));
	CHECK(r->req_id == req_id, "reply to req %llu, expected %llu",
	      (unsigned long long)r->req_id, (unsigned long long)req_id);
}

static int str_is(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* The reply's actions include [SET_REQ_HEADER = 1, name, value]. */
static int has_action(const struct tc_reply *r, uint64_t op, const char *a, const char *b)
{
	const msgpack_object *acts = shmring_mp_get(r->root, "a");
	if (!acts || acts->type != MSGPACK_OBJECT_ARRAY)
		return 0;
	for (uint32_t i = 0; i < acts->via.array.size; i++) {
		const msgpack_object *x = &acts->via.array.ptr[i];
		if (x->type == MSGPACK_OBJECT_ARRAY && x->via.array.size == 3 &&
		    x->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    x->via.array.ptr[0].via.u64 == op && str_is(&x->via.array.ptr[1], a) &&
		    str_is(&x->via.array.ptr[2], b))
			return 1;
	}
	return 0;
}

/* ACCESS to conf on c, expect s = 0 and X-Hello: World. */
static void access_ok(struct sconn *c, struct tc_reply *r, uint64_t req_id, uint64_t conf)
{
	char e[512];
	send_frame(c, SHMRING_REC_ACCESS, req_id, tc_fill_access, &conf);
	sc_expect(c, r, req_id);
	CHECK(r->s == SHMRING_REPLY_OK, "ACCESS failed: %s", tc_err(r, e, sizeof(e)));
	CHECK(has_action(r, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "World"),
	      "no SET_REQ_HEADER X-Hello World");
}

/* The peer closes c within the deadline. An error reply first is fine, and
 * so is an s = 0 reply to ok_req (a valid frame sent before the bad one:
 * socket.c may drop its reply when it closes the connection). */
static void expect_closed(struct sconn *c, struct tc_reply *r, const char *what, uint64_t ok_req)
{
	for (;;) {
		int rc = sc_recv(c, r, 5 * SEC);
		if (rc == -EPIPE)
			return;
		CHECK(rc == 0, "%s: connection neither closed nor answered: %s", what,
		      strerror(-rc));
		CHECK(r->s != SHMRING_REPLY_OK || (ok_req && r->req_id == ok_req),
		      "%s: answered s=0", what);
	}
}

static void daemon_alive(void)
{
	int st;
	CHECK(waitpid(tc_pid, &st, WNOHANG) == 0, "shmringd exited");
}

int main(void)
{
	tc_init("socket");
	snprintf(sock_path, sizeof(sock_path), "%s/s.sock", tc_dir);
	const char *args[] = {"--workers", "1", "--channels", "1", "--socket", sock_path, NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	/* The socket worker takes the slot after the ring workers. */
	uint64_t deadline = tc_now() + 10 * SEC;
	while (shmring_instance_worker_counters(inst, 1)->pid == 0) {
		CHECK(tc_now() < deadline, "socket worker not up");
		daemon_alive();
		sched_yield();
	}
	uint64_t sock_pid = shmring_instance_worker_counters(inst, 1)->pid;
	uint64_t sock_restarts = shmring_instance_worker_counters(inst, 1)->restarts;

	static struct sconn a, b, x;
	static struct tc_reply r;
	char e[512];
	uint64_t req = 1;

	/* CONF hello, then ACCESS: the hello header. */
	sc_open(&a);
	struct tc_conf hello = {.id = 7, .plugin = "hello"};
	send_frame(&a, SHMRING_REC_CONF, req, tc_fill_conf, &hello);
	sc_expect(&a, &r, req++);
	CHECK(r.s == SHMRING_REPLY_OK, "CONF hello refused: %s", tc_err(&r, e, sizeof(e)));
	access_ok(&a, &r, req++, 7);

	/* Unknown conf id: s = 2. */
	uint64_t unknown = 999;
	send_frame(&a, SHMRING_REC_ACCESS, req, tc_fill_access, &unknown);
	sc_expect(&a, &r, req++);
	CHECK(r.s == SHMRING_REPLY_UNKNOWN_CONF, "unknown conf answered s=%llu",
	      (unsigned long long)r.s);

	/* Malformed msgpack and an empty payload: s = 1, the connection goes on. */
	uint8_t frames[4096];
	size_t off = 0;
	const uint8_t junk[] = {0xc1, 0xc1, 0xc1};
	put_frame(frames, sizeof(frames), &off, SHMRING_REC_ACCESS, req, junk, sizeof(junk));
	send_all(a.fd, frames, off);
	sc_expect(&a, &r, req++);
	CHECK(r.s == SHMRING_REPLY_ERROR && strstr(tc_err(&r, e, sizeof(e)), "malformed"),
	      "junk: s=%llu %s", (unsigned long long)r.s, e);
	off = 0;
	put_frame(frames, sizeof(frames), &off, SHMRING_REC_ACCESS, req, NULL, 0);
	send_all(a.fd, frames, off);
	sc_expect(&a, &r, req++);
	CHECK(r.s == SHMRING_REPLY_ERROR, "empty payload answered s=%llu", (unsigned long long)r.s);
	access_ok(&a, &r, req++, 7);

	/* One frame delivered byte by byte: reassembled, answered once. */
	{
		uint8_t payload[512];
		uint64_t conf = 7;
		uint32_t len = encode(payload, sizeof(payload), tc_fill_access, &conf);
		off = 0;
		put_frame(frames, sizeof(frames), &off, SHMRING_REC_ACCESS, req, payload, len);
		for (size_t i = 0; i < off; i++) {
			send_all(a.fd, frames + i, 1);
			if (i % 8 == 0) { /* nothing may come back before the frame is whole */
				CHECK(fill_rx(&a, tc_now()) == -ETIMEDOUT, "early reply or EOF");
			}
		}
		sc_expect(&a, &r, req++);
		CHECK(r.s == SHMRING_REPLY_OK &&
		          has_action(&r, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "World"),
		      "byte-by-byte frame");
	}

	/* A header claiming 1 GiB: that connection is closed, nothing else. */
	sc_open(&x);
	off = 0;
	put_frame(frames, sizeof(frames), &off, SHMRING_REC_ACCESS, req++, NULL, 0);
	uint32_t huge = 1u << 30;
	memcpy(frames, &huge, 4);
	send_all(x.fd, frames, off);
	expect_closed(&x, &r, "1 GiB frame", 0);
	sc_close(&x);
	/* Just over the limit (ring_size / 2), with a valid frame before it on
	 * the same connection. */
	sc_open(&x);
	{
		uint8_t payload[512];
		uint64_t conf = 7;
		uint32_t len = encode(payload, sizeof(payload), tc_fill_access, &conf);
		off = 0;
		put_frame(frames, sizeof(frames), &off, SHMRING_REC_ACCESS, req++, payload, len);
		uint64_t ok_req = req - 1;
		size_t h = off;
		put_frame(frames, sizeof(frames), &off, SHMRING_REC_ACCESS, req++, NULL, 0);
		uint32_t over = MAX_PAYLOAD + 1;
		memcpy(frames + h, &over, 4);
		send_all(x.fd, frames, off);
		expect_closed(&x, &r, "oversized frame", ok_req);
		sc_close(&x);
	}
	daemon_alive();
	CHECK(shmring_instance_worker_counters(inst, 1)->pid == sock_pid &&
	          shmring_instance_worker_counters(inst, 1)->restarts == sock_restarts,
	      "the socket worker died on a bad frame");
	access_ok(&a, &r, req++, 7); /* the old connection still works */
	sc_open(&x);                 /* and a new one */
	access_ok(&x, &r, req++, 7);
	sc_close(&x);

	/* A client that half-closes after its request still gets the reply,
	 * then EOF. */
	sc_open(&x);
	{
		uint64_t conf = 7;
		send_frame(&x, SHMRING_REC_ACCESS, req, tc_fill_access, &conf);
		CHECK(shutdown(x.fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
		sc_expect(&x, &r, req++);
		CHECK(r.s == SHMRING_REPLY_OK &&
		          has_action(&r, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "World"),
		      "half-closed client");
		CHECK(sc_recv(&x, &r, 5 * SEC) == -EPIPE, "no EOF after a half-close");
		sc_close(&x);
	}

	/* 200 pipelined frames in one write; every 10th names an unknown conf.
	 * Replies in order, req_ids matching, statuses matching. */
	{
		enum { NPIPE = 200 };
		static uint8_t pipe_buf[NPIPE * 256];
		uint8_t payload[256];
		uint64_t first = req;
		off = 0;
		for (int i = 0; i < NPIPE; i++) {
			uint64_t conf = i % 10 == 9 ? unknown : 7;
			uint32_t len = encode(payload, sizeof(payload), tc_fill_access, &conf);
			put_frame(pipe_buf, sizeof(pipe_buf), &off, SHMRING_REC_ACCESS, req++,
			          payload, len);
		}
		send_all(a.fd, pipe_buf, off);
		for (int i = 0; i < NPIPE; i++) {
			sc_expect(&a, &r, first + (uint64_t)i);
			if (i % 10 == 9)
				CHECK(r.s == SHMRING_REPLY_UNKNOWN_CONF, "pipelined %d: s=%llu", i,
				      (unsigned long long)r.s);
			else
				CHECK(r.s == SHMRING_REPLY_OK &&
				          has_action(&r, SHMRING_ACT_SET_REQ_HEADER, "X-Hello",
				                     "World"),
				      "pipelined %d: s=%llu", i, (unsigned long long)r.s);
		}
		CHECK(a.rlen == 0, "extra bytes after the pipelined replies");
	}

	/* Two connections at once: the conf table is shared (a conf registered
	 * on b serves a), and requests in flight on both are each answered on
	 * their own connection. */
	sc_open(&b);
	struct tc_conf moon = {.id = 8, .plugin = "hello", .k1 = "value", .v1 = "Moon"};
	send_frame(&b, SHMRING_REC_CONF, req, tc_fill_conf, &moon);
	sc_expect(&b, &r, req++);
	CHECK(r.s == SHMRING_REPLY_OK, "CONF on b refused: %s", tc_err(&r, e, sizeof(e)));
	for (int i = 0; i < 50; i++) {
		uint64_t ca = 8, cb = 7, ra = req++, rb = req++;
		send_frame(&a, SHMRING_REC_ACCESS, ra, tc_fill_access, &ca);
		send_frame(&b, SHMRING_REC_ACCESS, rb, tc_fill_access, &cb);
		sc_expect(&b, &r, rb);
		CHECK(r.s == SHMRING_REPLY_OK &&
		          has_action(&r, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "World"),
		      "b round %d", i);
		sc_expect(&a, &r, ra);
		CHECK(r.s == SHMRING_REPLY_OK &&
		          has_action(&r, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "Moon"),
		      "a round %d", i);
	}

	/* SIGTERM: exit 0, open connections see EOF, the socket is removed. */
	CHECK(kill(tc_pid, SIGTERM) == 0, "SIGTERM");
	int rc = tc_wait_exit(tc_pid, 10 * SEC);
	CHECK(rc == 0, "shmringd exited with %d", rc);
	CHECK(sc_recv(&a, &r, 5 * SEC) == -EPIPE, "a not closed at exit");
	CHECK(sc_recv(&b, &r, 5 * SEC) == -EPIPE, "b not closed at exit");
	CHECK(access(sock_path, F_OK) < 0 && errno == ENOENT, "socket %s left behind", sock_path);
	sc_close(&a);
	sc_close(&b);
	shmring_mpr_destroy(&r.mpr);
	shmring_instance_close(inst, 0);
	printf("ok\n");
	return 0;
}
