/* SPDX-License-Identifier: MIT */
/*
 * The socket transport (`--socket PATH`): the same plugins, dispatcher and
 * record payloads as the rings, over a Unix stream socket. It exists for
 * compatibility with hosts that cannot map the segments and as the
 * benchmark's "plugin server" anchor (bench/e2e): one request frame and one
 * reply frame per phase, the way APISIX's ext-plugin runner talks. It is
 * not the fast path: every record costs a send, a wake-up and a recv on
 * each side.
 *
 * Frames (both directions), little-endian, the ring record header
 * (shmring/include/shmring/shmring.h) followed by its payload:
 *
 *   u32 len      payload bytes (<= max_payload)
 *   u16 type     SHMRING_REC_* (CONF, ACCESS, ..., LOG; REPLY on the way back)
 *   u16 flags    0
 *   u64 req_id   echoed in the reply
 *   len bytes    the msgpack payload of docs/protocol.md
 *
 * One process (`shmringd-sock`, the socket worker) serves every
 * connection from one epoll loop: non-blocking reads, every complete frame
 * dispatched in order through worker.c's dispatcher, the replies of one
 * read written back with one send. A frame too long or a peer that closes
 * ends its connection only.
 */
#include "daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_EVENTS 64
#define READ_CHUNK 65536

struct shmringd_sock_conn {
	int fd;
	uint8_t *in; /* bytes read, not yet dispatched: in[0 .. in_len) */
	uint32_t in_len, in_cap;
	uint8_t *out; /* reply bytes not yet sent: out[out_off .. out_len) */
	uint32_t out_len, out_off, out_cap;
	bool want_out; /* EPOLLOUT armed */
};

static int ep = -1;

static int grow(uint8_t **buf, uint32_t *cap, uint64_t need)
{
	if (need <= *cap)
		return 0;
	uint64_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	if (n > UINT32_MAX)
		return -ENOMEM;
	uint8_t *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = (uint32_t)n;
	return 0;
}

int shmringd__sock_reply(struct shmringd_sock_conn *c, uint64_t req_id, const uint8_t *buf,
                         uint32_t len)
{
	if (grow(&c->out, &c->out_cap, (uint64_t)c->out_len + SHMRINGD_FRAME_HDR + len) < 0)
		return -ENOMEM;
	uint8_t *h = c->out + c->out_len;
	shmringd__frame_header(h, SHMRING_REC_REPLY, req_id, len);
	memcpy(h + SHMRINGD_FRAME_HDR, buf, len);
	c->out_len += SHMRINGD_FRAME_HDR + len;
	return 0;
}

int shmringd__socket_listen(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(0077);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 512) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	chmod(path, mode & 0666);
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0)
		shmringd__log("chown %s: %s", path, strerror(errno));
	return fd;
}

static void conn_close(struct shmringd_sock_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Send what is queued. 0 when all is out or the socket is full (EPOLLOUT
 * armed), -1 when the peer is gone. */
static int conn_flush(struct shmringd_sock_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (uint32_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->want_out) {
				struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
				                         .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				c->want_out = true;
			}
			return 0;
		}
		return -1;
	}
	c->out_off = c->out_len = 0;
	if (c->want_out) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = false;
	}
	return 0;
}

static void dispatch_frame(void *conn, const struct shmring_rec *rec)
{
	shmringd__sock_dispatch(conn, rec);
}

/* Dispatch every complete frame in c->in. -1: a frame is too long. */
static int conn_dispatch(struct shmringd_sock_conn *c, uint32_t max_payload)
{
	return shmringd__frames_take(c->in, &c->in_len, max_payload, dispatch_frame, c);
}

/* Readable: read what is there, dispatch, answer. -1: close it. */
static int conn_readable(struct shmringd_sock_conn *c, uint32_t max_payload)
{
	for (;;) {
		if (grow(&c->in, &c->in_cap, (uint64_t)c->in_len + READ_CHUNK) < 0)
			return -1;
		uint32_t room = c->in_cap - c->in_len;
		ssize_t n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
		if (n > 0) {
			c->in_len += (uint32_t)n;
			if ((uint32_t)n < room)
				break; /* short read: the socket is empty */
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	if (conn_dispatch(c, max_payload) < 0)
		return -1;
	return conn_flush(c);
}

static void accept_all(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct shmringd_sock_conn *c = calloc(1, sizeof(*c));
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
	}
}

void shmringd__socket_serve(int listen_fd, uint32_t max_payload)
{
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev) < 0) {
		shmringd__log("socket: epoll: %s", strerror(errno));
		return;
	}
	for (;;) {
		int timeout = shmringd__sock_tick();
		if (timeout < 0)
			break;
		struct epoll_event evs[MAX_EVENTS];
		int n = epoll_wait(ep, evs, MAX_EVENTS, timeout);
		for (int i = 0; i < n; i++) {
			struct shmringd_sock_conn *c = evs[i].data.ptr;
			if (!c) {
				accept_all(listen_fd);
				continue;
			}
			int rc = 0;
			if (evs[i].events & EPOLLOUT)
				rc = conn_flush(c);
			if (rc == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				rc = conn_readable(c, max_payload);
			if (rc < 0)
				conn_close(c);
		}
	}
	/* Connections are closed by exit; clients see EOF and fail their
	 * pending calls at once. */
}
