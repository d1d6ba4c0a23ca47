/* SPDX-License-Identifier: MIT */
/* Between the log sinks' batching (sink.c) and their HTTP transport
 * (sink_http.c) and TLS for tcp sinks (sink_tls.c). */
#ifndef SHMRINGD_SINK_INTERNAL_H
#define SHMRINGD_SINK_INTERNAL_H

#include "daemon.h"

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#define SINK_HTTP_MAX_HEADERS 32

struct shmringd_http_opts {
	const char *url;          /* http:// or https://, user info = basic auth */
	const char *method;       /* POST, PUT or PATCH */
	const char *content_type; /* the Content-Type header's value */
	const char *headers[SINK_HTTP_MAX_HEADERS]; /* "Name: value" */
	size_t nheaders;
	uint32_t timeout_ms;   /* whole request */
	uint32_t keepalive_ms; /* idle connection kept this long; 0 = a new one each time */
};

struct sink_http;

/* Per worker: libcurl's multi handle; wake (the worker's event) is
 * notified when a socket of a request in flight is ready. 0 or -ENOMEM. */
int shmringd__http_init(struct shmring_event *wake);
void shmringd__http_fini(void);
/* An endpoint; owner is handed back when a request ends. 0, or < 0 with
 * why in err. Freed with shmringd__http_free. */
int shmringd__http_open(const struct shmringd_http_opts *o, void *owner, struct sink_http **out,
                        char *err, size_t errlen);
void shmringd__http_free(struct sink_http *h);
/* The URL's host name (port: its port), or NULL for an IP literal. A
 * name must be looked up by the caller (without blocking) and given with
 * shmringd__http_set_address before a request: libcurl is not let to
 * resolve it (its resolver thread is joined when a request ends). */
const char *shmringd__http_host(const struct sink_http *h, const char **port);
/* The address of the host name for the next requests. 0 or < 0. */
int shmringd__http_set_address(struct sink_http *h, const struct sockaddr *sa);
/* Send body[0..len) as one request; body must stay unchanged until the
 * request ends. 0 or -ENOMEM. */
int shmringd__http_send(struct sink_http *h, const char *body, size_t len);
/* Drive the requests whose sockets are ready or whose timer is due; for
 * each that ended, done(owner, status, why): status is the HTTP status,
 * or 0 when no response came (why says why). */
void shmringd__http_poll(void (*done)(void *owner, long status, const char *why));
/* A socket of a request in flight is ready (http_poll has work). */
bool shmringd__http_ready(void);
/* ns until http_poll has work (0: now; INT64_MAX: only on a socket). */
int64_t shmringd__http_next_due(uint64_t now);

/* ---- TLS for tcp sinks (sink_tls.c) ---- */

struct sink_tls;

/* A TLS session over connected socket fd (SNI = sni unless NULL). 0 or
 * -ENOMEM. */
int shmringd__tls_open(int fd, const char *sni, struct sink_tls **out);
/* 1 done, 0 would block (call again), -1 failed. */
int shmringd__tls_handshake(struct sink_tls *t);
/* Bytes written (> 0), 0 would block, -1 failed. */
ssize_t shmringd__tls_write(struct sink_tls *t, const void *p, size_t n);
void shmringd__tls_free(struct sink_tls *t);
/* Per worker, at the end: the shared TLS context. */
void shmringd__tls_fini(void);

#endif
