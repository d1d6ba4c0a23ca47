/* SPDX-License-Identifier: MIT */
/* rl_redis_link.h: a Redis connection over TCP or TLS (see the header). */
#include "rl_redis_link.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A reply larger than this, or an array of more elements, is refused:
 * the exchanges here read short replies (HGETALL: two per host), and a
 * hostile or broken server must not make the daemon allocate without
 * bound. */
#define MAX_REPLY_BYTES (1u << 20)
#define MAX_REPLY_ELEMENTS 65536

struct rl_link {
	int fd;
	int timeout_ms;
	SSL_CTX *tls_ctx; /* NULL: plain TCP */
	SSL *tls;
	redisReader *reader;
	char *out; /* commands queued by rl_link_append, not sent yet */
	size_t out_len, out_cap;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One getaddrinfo_a request and all its resolver thread touches, so it can
 * outlive a look-up that gave up waiting for it. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	struct lookup *next; /* on orphans */
	char host[256];
	char port[8];
};

/* Look-ups that timed out while glibc's resolver thread still ran: freed
 * once it is done (by a later resolve, any thread). */
static pthread_mutex_t orphans_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lookup *orphans;

static void lookup_release(struct lookup *l)
{
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l);
}

static void reap_orphans(void)
{
	pthread_mutex_lock(&orphans_mu);
	for (struct lookup **pp = &orphans, *l; (l = *pp);) {
		if (gai_error(&l->cb) == EAI_INPROGRESS) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		lookup_release(l);
	}
	pthread_mutex_unlock(&orphans_mu);
}

/* host:port's addresses within timeout_ms (getaddrinfo would wait as long
 * as DNS takes: in synchronous mode, the worker with it). 0 and *res (the
 * caller frees it), or -1 with why in err. */
static int resolve(const struct rl_link_opts *o, struct addrinfo **res, char *err, size_t errlen)
{
	reap_orphans();
	struct lookup *l = calloc(1, sizeof(*l));
	if (!l || strlen(o->host) >= sizeof(l->host)) {
		snprintf(err, errlen, "resolve %s: %s", o->host,
		         l ? "name too long" : "out of memory");
		free(l);
		return -1;
	}
	memcpy(l->host, o->host, strlen(o->host) + 1);
	snprintf(l->port, sizeof(l->port), "%d", o->port);
	l->hints = (struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	l->cb = (struct gaicb){.ar_name = l->host, .ar_service = l->port, .ar_request = &l->hints};
	struct gaicb *list[1] = {&l->cb};
	struct sigevent none = {.sigev_notify = SIGEV_NONE};
	int e = getaddrinfo_a(GAI_NOWAIT, list, 1, &none);
	if (e != 0) {
		snprintf(err, errlen, "resolve %s: %s", o->host, gai_strerror(e));
		free(l);
		return -1;
	}
	uint64_t deadline = now_ms() + (uint64_t)o->timeout_ms;
	while ((e = gai_error(&l->cb)) == EAI_INPROGRESS) {
		uint64_t now = now_ms();
		if (now >= deadline)
			break;
		struct timespec ts = {(time_t)((deadline - now) / 1000),
		                      (long)((deadline - now) % 1000) * 1000000};
		const struct gaicb *wait[1] = {&l->cb};
		gai_suspend(wait, 1, &ts);
	}
	if (e == EAI_INPROGRESS) {
		snprintf(err, errlen, "resolve %s: no answer within %d ms", o->host, o->timeout_ms);
		if (gai_cancel(&l->cb) == EAI_NOTCANCELED) {
			pthread_mutex_lock(&orphans_mu);
			l->next = orphans;
			orphans = l;
			pthread_mutex_unlock(&orphans_mu);
		} else {
			lookup_release(l);
		}
		return -1;
	}
	if (e != 0) {
		snprintf(err, errlen, "resolve %s: %s", o->host, gai_strerror(e));
		lookup_release(l);
		return -1;
	}
	*res = l->cb.ar_result;
	free(l);
	return 0;
}

/* A connected TCP socket to host:port, the name resolved and the connect
 * each within timeout_ms, left non-blocking: every wait on it is a poll
 * bounded by a deadline. -1 on failure. */
static int tcp_connect(const struct rl_link_opts *o, char *err, size_t errlen)
{
	struct addrinfo *res = NULL;
	if (resolve(o, &res, err, errlen) < 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int e = connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? errno : 0;
		if (e == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			socklen_t len = sizeof(e);
			e = ETIMEDOUT;
			if (poll(&p, 1, o->timeout_ms) == 1)
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
		}
		if (e) {
			snprintf(err, errlen, "connect %s:%d: %s", o->host, o->port, strerror(e));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Wait until fd is ready for events or the deadline (ms, now_ms()'s
 * clock). 0 ready, -1 timed out or failed. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -1;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n == 0 || errno != EINTR)
			return -1;
	}
}

/* After an OpenSSL call on the non-blocking socket returned k <= 0: wait
 * for what it wants. 0 (call again) or -1 (failed, or the deadline). */
static int tls_wait(struct rl_link *l, int k, uint64_t deadline)
{
	int e = SSL_get_error(l->tls, k);
	if (e == SSL_ERROR_WANT_READ)
		return wait_fd(l->fd, POLLIN, deadline);
	if (e == SSL_ERROR_WANT_WRITE)
		return wait_fd(l->fd, POLLOUT, deadline);
	return -1;
}

/* OpenSSL's first queued error as text (or "unknown"), the queue cleared:
 * errors are per thread, and the sync thread and the hook both use TLS. */
static void tls_error(const char *what, char *err, size_t errlen)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

/* The TLS handshake on l->fd, as Kong's cosocket does it: SNI and the name
 * check with server_name when one is set, the chain checked when
 * ssl_verify. 0 or -1. */
static int tls_start(struct rl_link *l, const struct rl_link_opts *o, char *err, size_t errlen)
{
	l->tls_ctx = SSL_CTX_new(TLS_client_method());
	if (!l->tls_ctx) {
		tls_error("TLS context", err, errlen);
		return -1;
	}
	SSL_CTX_set_min_proto_version(l->tls_ctx, TLS1_2_VERSION);
	if (o->ssl_verify) {
		SSL_CTX_set_verify(l->tls_ctx, SSL_VERIFY_PEER, NULL);
		if (SSL_CTX_set_default_verify_paths(l->tls_ctx) != 1) {
			tls_error("TLS trust store", err, errlen);
			return -1;
		}
	}
	l->tls = SSL_new(l->tls_ctx);
	if (!l->tls || SSL_set_fd(l->tls, l->fd) != 1) {
		tls_error("TLS session", err, errlen);
		return -1;
	}
	if (o->server_name) {
		if (SSL_set_tlsext_host_name(l->tls, o->server_name) != 1 ||
		    (o->ssl_verify && SSL_set1_host(l->tls, o->server_name) != 1)) {
			tls_error("TLS server name", err, errlen);
			return -1;
		}
	}
	uint64_t deadline = now_ms() + (uint64_t)o->timeout_ms;
	int k;
	while ((k = SSL_connect(l->tls)) != 1 && tls_wait(l, k, deadline) == 0)
		;
	if (k != 1) {
		long v = SSL_get_verify_result(l->tls);
		if (v != X509_V_OK) {
			snprintf(err, errlen, "TLS handshake with %s:%d: certificate: %s", o->host,
			         o->port, X509_verify_cert_error_string(v));
			ERR_clear_error();
		} else {
			char what[300];
			snprintf(what, sizeof(what), "TLS handshake with %s:%d", o->host, o->port);
			tls_error(what, err, errlen);
		}
		return -1;
	}
	return 0;
}

static redisReplyObjectFunctions bounded_fns;
static void *(*default_array)(const redisReadTask *, int);

static void *bounded_array(const redisReadTask *task, int elements)
{
	return elements > MAX_REPLY_ELEMENTS ? NULL : default_array(task, elements);
}

static void bounded_fns_init(void)
{
	redisReader *r = redisReaderCreate();
	if (!r)
		return;
	bounded_fns = *r->fn;
	default_array = bounded_fns.createArray;
	bounded_fns.createArray = bounded_array;
	redisReaderFree(r);
}

/* hiredis' reader with its own objects, but arrays of at most
 * MAX_REPLY_ELEMENTS (a NULL object is hiredis' "out of memory": the
 * reply fails). */
static redisReader *bounded_reader(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, bounded_fns_init);
	return default_array ? redisReaderCreateWithFunctions(&bounded_fns) : NULL;
}

struct rl_link *rl_link_connect(const struct rl_link_opts *o, char *err, size_t errlen)
{
	struct rl_link *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->timeout_ms = o->timeout_ms;
	l->fd = tcp_connect(o, err, errlen);
	if (l->fd < 0)
		goto fail;
	if (o->ssl && tls_start(l, o, err, errlen) < 0)
		goto fail;
	l->reader = bounded_reader();
	if (!l->reader) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return l;
fail:
	rl_link_free(l);
	return NULL;
}

void rl_link_free(struct rl_link *l)
{
	if (!l)
		return;
	if (l->tls)
		SSL_free(l->tls); /* no close_notify: the link may be broken */
	if (l->tls_ctx)
		SSL_CTX_free(l->tls_ctx);
	if (l->fd >= 0)
		close(l->fd);
	if (l->reader)
		redisReaderFree(l->reader);
	free(l->out);
	free(l);
}

static int link_vappend(struct rl_link *l, const char *fmt, va_list ap)
{
	char *cmd = NULL;
	int n = redisvFormatCommand(&cmd, fmt, ap);
	if (n < 0)
		return -1;
	if (l->out_len + (size_t)n > l->out_cap) {
		size_t cap = l->out_cap ? l->out_cap : 4096;
		while (cap < l->out_len + (size_t)n)
			cap *= 2;
		char *p = realloc(l->out, cap);
		if (!p) {
			redisFreeCommand(cmd);
			return -1;
		}
		l->out = p;
		l->out_cap = cap;
	}
	memcpy(l->out + l->out_len, cmd, (size_t)n);
	l->out_len += (size_t)n;
	redisFreeCommand(cmd);
	return 0;
}

int rl_link_append(struct rl_link *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = link_vappend(l, fmt, ap);
	va_end(ap);
	return rc;
}

/* Send the queued commands whole by the deadline. 0 or -1. */
static int link_flush(struct rl_link *l, uint64_t deadline)
{
	size_t off = 0;
	while (off < l->out_len) {
		size_t n = l->out_len - off;
		if (l->tls) {
			int k = SSL_write(l->tls, l->out + off, n > INT32_MAX ? INT32_MAX : (int)n);
			if (k > 0)
				off += (size_t)k;
			else if (tls_wait(l, k, deadline) < 0)
				return -1;
			continue;
		}
		ssize_t w = send(l->fd, l->out + off, n, MSG_NOSIGNAL);
		if (w > 0)
			off += (size_t)w;
		else if (w == 0 || (errno != EINTR && errno != EAGAIN) ||
		         (errno == EAGAIN && wait_fd(l->fd, POLLOUT, deadline) < 0))
			return -1;
	}
	l->out_len = 0;
	return 0;
}

/* Receive what the server sent into the reader, by the deadline. The
 * bytes of one reply are counted in *fed. 0 or -1 (closed, timeout, too
 * long). */
static int link_fill(struct rl_link *l, uint64_t deadline, size_t *fed)
{
	char buf[16384];
	for (;;) {
		ssize_t n;
		if (l->tls) {
			int k = SSL_read(l->tls, buf, sizeof(buf));
			if (k <= 0) {
				if (tls_wait(l, k, deadline) < 0)
					return -1;
				continue;
			}
			n = k;
		} else {
			n = recv(l->fd, buf, sizeof(buf), 0);
			if (n < 0 && (errno == EINTR ||
			              (errno == EAGAIN && wait_fd(l->fd, POLLIN, deadline) == 0)))
				continue;
			if (n <= 0)
				return -1;
		}
		*fed += (size_t)n;
		if (*fed > MAX_REPLY_BYTES)
			return -1;
		return redisReaderFeed(l->reader, buf, (size_t)n) == REDIS_OK ? 0 : -1;
	}
}

/* Every wait of one reply (sending what is queued, then reading) is
 * bounded by one deadline, timeout_ms from the call: a server that
 * trickles bytes cannot hold the caller longer. */
int rl_link_reply(struct rl_link *l, redisReply **out)
{
	*out = NULL;
	uint64_t deadline = now_ms() + (uint64_t)l->timeout_ms;
	if (l->out_len && link_flush(l, deadline) < 0)
		return -1;
	void *r = NULL;
	size_t fed = 0;
	for (;;) {
		if (redisReaderGetReply(l->reader, &r) != REDIS_OK)
			return -1;
		if (r) {
			*out = r;
			return 0;
		}
		if (link_fill(l, deadline, &fed) < 0)
			return -1;
	}
}

redisReply *rl_link_command(struct rl_link *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = link_vappend(l, fmt, ap);
	va_end(ap);
	redisReply *r = NULL;
	if (rc == 0)
		rl_link_reply(l, &r);
	return r;
}
