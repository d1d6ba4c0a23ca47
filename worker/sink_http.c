/* SPDX-License-Identifier: MIT */
/*
 * HTTP transport of the log sinks (sink.c batches, this file sends): one
 * libcurl multi handle per worker, one easy handle per HTTP sink, at most
 * one request in flight per sink (Kong's queue, concurrency_limit = 1).
 *
 * Why libcurl and not the io_uring TCP sink with an HTTP writer of our own:
 * the endpoint may be https, may answer with chunked bodies, close or keep
 * the connection, redirect, or be slow to accept; libcurl's multi interface
 * handles every one of those without blocking the worker, keeps the
 * connection alive between batches (keepalive), and is one well-kept
 * dependency (libcurl4-openssl-dev) instead of an HTTP/1.1 client and a TLS
 * state machine over io_uring. A batch is one request: the cost per entry
 * is small once batches coalesce.
 *
 * The worker sleeps on its futex (the rings wake it), not on sockets, so
 * curl runs through its socket interface: curl's sockets sit in an epoll
 * set (EPOLLONESHOT) that a waker thread of this file waits on; when one
 * is ready the thread notes it and notifies the worker's event, and the
 * worker hands it to curl_multi_socket_action at its next turn (then arms
 * the socket again). curl's timer is the worker's next due time. With no
 * request in flight the epoll set is empty and the thread sleeps: nothing
 * is paid. The thread only calls epoll_wait and shmring_event_notify;
 * every curl call stays on the worker's thread.
 *
 * As Kong's http-log: basic auth from the URL's user info ("Basic " and the
 * user info as written, base64), Content-Type as configured, the config's
 * headers (never replacing Content-Type, Content-Length or Authorization),
 * TLS without certificate verification (Kong sets ssl_verify = false), a
 * status below 300 is success. timeout bounds the whole request here
 * (Kong: each of connect, send and read).
 */
#include "sink_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sink_http {
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *resolve; /* "host:port:address", from sink.c's lookup */
	char host[256];             /* the URL's host name; "" = an IP literal */
	char port[8];
	void *owner; /* the sink, handed back by shmringd__http_poll */
	bool active; /* added to the multi handle */
	char why[CURL_ERROR_SIZE];
};

#define MAX_SOCKETS 256 /* curl sockets watched per worker; more: 1 ms polls */

/* A curl socket in the epoll set: what curl waits for on it. */
struct watched {
	curl_socket_t fd;
	uint32_t events; /* EPOLLIN | EPOLLOUT */
};

static struct {
	CURLM *multi;
	struct shmring_event *wake; /* the worker's event, notified by the waker */
	int epfd;                   /* curl's sockets; -1 until the first HTTP sink */
	int stopfd;                 /* eventfd: the waker thread ends */
	pthread_t waker;
	bool waker_started;
	struct watched w[MAX_SOCKETS];
	uint32_t nw;
	bool overflow;   /* a socket could not be watched: poll every 1 ms */
	uint64_t due_ns; /* curl's timer (monotonic ns); 0 = none */
	/* Filled by the waker thread, emptied by the worker, under mu. */
	pthread_mutex_t mu;
	struct watched ready[2 * MAX_SOCKETS];
	uint32_t nready;
	bool any_ready; /* nready != 0, read without the lock */
} H = {.epfd = -1, .stopfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static void *waker_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(H.epfd, ev, 16, -1);
		if (n < 0 && errno != EINTR)
			return NULL;
		bool any = false;
		pthread_mutex_lock(&H.mu);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == H.stopfd) {
				pthread_mutex_unlock(&H.mu);
				return NULL;
			}
			if (H.nready < 2 * MAX_SOCKETS)
				H.ready[H.nready++] = (struct watched){ev[i].data.fd, ev[i].events};
			else
				H.overflow = true;
			any = true;
		}
		if (any)
			__atomic_store_n(&H.any_ready, true, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&H.mu);
		if (any && H.wake)
			shmring_event_notify(H.wake);
	}
}

static struct watched *watched_find(curl_socket_t fd)
{
	for (uint32_t i = 0; i < H.nw; i++)
		if (H.w[i].fd == fd)
			return &H.w[i];
	return NULL;
}

static void watch_arm(const struct watched *w)
{
	struct epoll_event ev = {.events = w->events | EPOLLONESHOT, .data.fd = w->fd};
	epoll_ctl(H.epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

/* curl's CURLMOPT_SOCKETFUNCTION: what it waits for on fd changed. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
	(void)e;
	(void)arg;
	(void)sockp;
	struct watched *w = watched_find(fd);
	if (what == CURL_POLL_REMOVE) {
		if (w) {
			epoll_ctl(H.epfd, EPOLL_CTL_DEL, fd, NULL);
			*w = H.w[--H.nw];
		}
		return 0;
	}
	uint32_t events =
	    (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!w) {
		struct epoll_event ev = {.events = events | EPOLLONESHOT, .data.fd = fd};
		if (H.nw == MAX_SOCKETS || epoll_ctl(H.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			H.overflow = true;
			return 0;
		}
		H.w[H.nw++] = (struct watched){fd, events};
		return 0;
	}
	w->events = events;
	watch_arm(w);
	return 0;
}

/* curl's CURLMOPT_TIMERFUNCTION: drive it again in timeout_ms (-1: no
 * timer). */
static int on_timer(CURLM *m, long timeout_ms, void *arg)
{
	(void)m;
	(void)arg;
	H.due_ns = timeout_ms < 0 ? 0 : shmring_now_ns() + (uint64_t)timeout_ms * 1000000u;
	if (timeout_ms >= 0 && !H.due_ns)
		H.due_ns = 1;
	return 0;
}

int shmringd__http_init(struct shmring_event *wake)
{
	if (H.multi)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	H.multi = curl_multi_init();
	if (!H.multi)
		return -ENOMEM;
	H.wake = wake;
	curl_multi_setopt(H.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(H.multi, CURLMOPT_TIMERFUNCTION, on_timer);
	return 0;
}

/* The epoll set and its waker thread, at the first HTTP sink. Without
 * them (no thread here, or no event to notify: the socket worker sleeps in
 * its own epoll) every socket counts as overflow: 1 ms polls. */
static void waker_start(void)
{
	if (H.waker_started || H.overflow)
		return;
	if (!H.wake) {
		H.overflow = true;
		return;
	}
	H.epfd = epoll_create1(EPOLL_CLOEXEC);
	H.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = H.stopfd};
	if (H.epfd < 0 || H.stopfd < 0 || epoll_ctl(H.epfd, EPOLL_CTL_ADD, H.stopfd, &ev) < 0 ||
	    pthread_create(&H.waker, NULL, waker_main, NULL) != 0) {
		H.overflow = true;
		return;
	}
	H.waker_started = true;
}

void shmringd__http_fini(void)
{
	if (H.multi)
		curl_multi_cleanup(H.multi);
	H.multi = NULL;
	if (H.waker_started) {
		uint64_t one = 1;
		if (write(H.stopfd, &one, sizeof(one)) == sizeof(one))
			pthread_join(H.waker, NULL);
	}
	if (H.epfd >= 0)
		close(H.epfd);
	if (H.stopfd >= 0)
		close(H.stopfd);
	H.epfd = H.stopfd = -1;
	H.waker_started = false;
	H.nw = H.nready = 0;
	H.overflow = H.any_ready = false;
	H.due_ns = 0;
}

/* The URL's user info, as written (Kong encodes it unchanged), moved into
 * an Authorization header; the URL keeps the rest. 0 or -EINVAL. */
static int basic_auth(CURLU *u, struct curl_slist **hdrs)
{
	char *user = NULL, *pass = NULL;
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	if (!user && !pass)
		return 0;
	size_t ul = user ? strlen(user) : 0, pl = pass ? strlen(pass) : 0;
	size_t n = ul + 1 + pl, enc = 4 * ((n + 2) / 3) + 1;
	char *info = malloc(n + 1), *line = malloc(sizeof("Authorization: Basic ") + enc);
	int rc = -ENOMEM;
	if (info && line) {
		snprintf(info, n + 1, "%s%s%s", user ? user : "", pass ? ":" : "",
		         pass ? pass : "");
		strcpy(line, "Authorization: Basic ");
		EVP_EncodeBlock((unsigned char *)line + strlen(line), (unsigned char *)info,
		                (int)strlen(info));
		struct curl_slist *l = curl_slist_append(*hdrs, line);
		if (l) {
			*hdrs = l;
			rc = 0;
		}
	}
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	free(info);
	free(line);
	curl_free(user);
	curl_free(pass);
	return rc;
}

/* libcurl is about to resolve a name itself: refused, except for an IP
 * literal (no lookup). Its threaded resolver is joined when a request ends
 * or is removed mid-lookup, so a slow DNS answer would stall the worker;
 * sink.c looks names up with getaddrinfo_a instead and hands the address
 * over (CURLOPT_RESOLVE), which curl finds in its cache before it gets
 * here. */
static int resolver_start(void *resolver_state, void *reserved, void *arg)
{
	(void)resolver_state;
	(void)reserved;
	const struct sink_http *h = arg;
	return h->host[0] ? 1 : 0;
}

/* The URL's host and port into h: a name to look up, or "" for an IP
 * literal. 0, or -EINVAL for a name that is not plain ASCII letters,
 * digits, '-', '_' and '.' (an IDN would be looked up by curl under its
 * punycode form, which sink.c's lookup would not match). */
static int url_target(CURLU *u, struct sink_http *h)
{
	char *host = NULL, *port = NULL;
	int rc = -EINVAL;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	size_t n = strlen(host);
	struct in_addr a4;
	if (host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1) {
		h->host[0] = '\0';
	} else if (n && n < sizeof(h->host) &&
	           strspn(host,
	                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") ==
	               n) {
		memcpy(h->host, host, n + 1);
	} else {
		goto out;
	}
	snprintf(h->port, sizeof(h->port), "%s", port);
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	return rc;
}

/* libcurl's response body (Kong reads and drops it too). */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int shmringd__http_open(const struct shmringd_http_opts *o, void *owner, struct sink_http **out,
                        char *err, size_t errlen)
{
	*out = NULL;
	if (!H.multi) {
		snprintf(err, errlen, "HTTP sinks: libcurl did not start");
		return -ENODEV;
	}
	struct sink_http *h = calloc(1, sizeof(*h));
	CURLU *u = curl_url();
	char *url = NULL, *scheme = NULL;
	int rc = -ENOMEM;
	if (!h || !u)
		goto fail;
	h->owner = owner;
	rc = -EINVAL;
	if (curl_url_set(u, CURLUPART_URL, o->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
		snprintf(err, errlen, "http sink: not an http:// or https:// URL");
		goto fail;
	}
	if (url_target(u, h) < 0) {
		snprintf(err, errlen,
		         "http sink: the host must be an IP address or a name of ASCII letters, "
		         "digits, '-', '_' and '.'");
		goto fail;
	}
	char ct[64];
	snprintf(ct, sizeof(ct), "Content-Type: %s", o->content_type);
	rc = -ENOMEM;
	/* "Expect:" with no value: no 100-continue round trip before the body */
	const char *fixed[] = {ct, "Expect:"};
	for (size_t i = 0; i < 2 + o->nheaders; i++) {
		struct curl_slist *l =
		    curl_slist_append(h->headers, i < 2 ? fixed[i] : o->headers[i - 2]);
		if (!l)
			goto fail;
		h->headers = l;
	}
	if (basic_auth(u, &h->headers) < 0)
		goto fail;
	if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK || !(h->easy = curl_easy_init()))
		goto fail;
	CURL *e = h->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
	/* keepalive: an idle connection is reused up to this long */
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)((o->keepalive_ms + 999) / 1000));
	if (!o->keepalive_ms)
		curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->why);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_PRIVATE, h);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_RESOLVER_START_FUNCTION, resolver_start);
	curl_easy_setopt(e, CURLOPT_RESOLVER_START_DATA, h);
	/* No proxy from the environment: Kong's http-log uses none, and a
	 * proxy's name would be looked up by curl's resolver. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	waker_start();
	rc = 0;
	*out = h;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "http sink: out of memory");
	if (rc < 0)
		shmringd__http_free(h);
	curl_free(url);
	curl_free(scheme);
	if (u)
		curl_url_cleanup(u);
	return rc;
}

void shmringd__http_free(struct sink_http *h)
{
	if (!h)
		return;
	if (h->active)
		curl_multi_remove_handle(H.multi, h->easy);
	if (h->easy)
		curl_easy_cleanup(h->easy);
	curl_slist_free_all(h->headers);
	curl_slist_free_all(h->resolve);
	free(h);
}

const char *shmringd__http_host(const struct sink_http *h, const char **port)
{
	*port = h->port;
	return h->host[0] ? h->host : NULL;
}

int shmringd__http_set_address(struct sink_http *h, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN], entry[sizeof(h->host) + sizeof(h->port) + sizeof(ip) + 4];
	const void *a = sa->sa_family == AF_INET6
	                    ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
	                    : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
	if (!inet_ntop(sa->sa_family, a, ip, sizeof(ip)))
		return -EINVAL;
	snprintf(entry, sizeof(entry), sa->sa_family == AF_INET6 ? "%s:%s:[%s]" : "%s:%s:%s",
	         h->host, h->port, ip);
	struct curl_slist *l = curl_slist_append(NULL, entry);
	if (!l)
		return -ENOMEM;
	curl_slist_free_all(h->resolve);
	h->resolve = l;
	/* read at the next curl_multi_add_handle: replaces the cached entry */
	curl_easy_setopt(h->easy, CURLOPT_RESOLVE, h->resolve);
	return 0;
}

int shmringd__http_send(struct sink_http *h, const char *body, size_t len)
{
	h->why[0] = '\0';
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body); /* not copied: kept until done */
	if (curl_multi_add_handle(H.multi, h->easy) != CURLM_OK)
		return -ENOMEM;
	h->active = true;
	int running;
	/* start connecting now (add_handle set curl's timer to 0) */
	curl_multi_socket_action(H.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	return 0;
}

bool shmringd__http_ready(void)
{
	return __atomic_load_n(&H.any_ready, __ATOMIC_ACQUIRE);
}

int64_t shmringd__http_next_due(uint64_t now)
{
	if (H.overflow)
		return 1000000; /* a socket nobody watches: look again in 1 ms */
	if (shmringd__http_ready())
		return 0;
	if (!H.due_ns)
		return INT64_MAX;
	return H.due_ns > now ? (int64_t)(H.due_ns - now) : 0;
}

void shmringd__http_poll(void (*done)(void *owner, long status, const char *why))
{
	if (!H.multi)
		return;
	int running, left;
	static struct watched ready[2 * MAX_SOCKETS];
	uint32_t n = 0;
	if (shmringd__http_ready()) {
		pthread_mutex_lock(&H.mu);
		n = H.nready;
		memcpy(ready, H.ready, n * sizeof(ready[0]));
		H.nready = 0;
		__atomic_store_n(&H.any_ready, false, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&H.mu);
	}
	for (uint32_t i = 0; i < n; i++) {
		int ev = (ready[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) ? CURL_CSELECT_IN : 0) |
		         (ready[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
		         (ready[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(H.multi, ready[i].fd, ev, &running);
		/* one-shot: watch it again for what curl still waits for */
		struct watched *w = watched_find(ready[i].fd);
		if (w)
			watch_arm(w);
	}
	uint64_t now = shmring_now_ns();
	if (H.overflow || (H.due_ns && H.due_ns <= now)) {
		H.due_ns = 0;
		curl_multi_socket_action(H.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	CURLMsg *m;
	while ((m = curl_multi_info_read(H.multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct sink_http *h = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
		long status = 0;
		CURLcode res = m->data.result;
		if (res == CURLE_OK)
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		else if (!h->why[0])
			snprintf(h->why, sizeof(h->why), "%s", curl_easy_strerror(res));
		curl_multi_remove_handle(H.multi, m->easy_handle);
		h->active = false;
		done(h->owner, status, h->why);
	}
}
