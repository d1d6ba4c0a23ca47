/* SPDX-License-Identifier: MIT */
/*
 * One blocking connection to Redis, over TCP or TLS, for rl_redis.c.
 *
 * hiredis formats the commands and parses the replies (redisvFormatCommand,
 * redisReader); this file moves the bytes, through OpenSSL when ssl is set.
 * Why not hiredis' own connection: the hiredis of Debian 12 (0.14) has no
 * TLS; 1.x's hiredis_ssl would replace the transport half of this file.
 *
 * Every wait is bounded by the endpoint's timeout: the name's look-up
 * (getaddrinfo_a; one that times out is left to finish on its own), the
 * connect, the TLS
 * handshake, and each reply (sending the queued commands and reading the
 * reply, together); a reply is at most 1 MiB and arrays of at most 65536
 * elements. A link that failed once is not used again: the caller frees it
 * and connects anew.
 */
#ifndef RL_REDIS_LINK_H
#define RL_REDIS_LINK_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

struct rl_link;

struct rl_link_opts {
	const char *host; /* a name or an IP literal */
	int port;
	int timeout_ms;
	bool ssl;
	bool ssl_verify;         /* the chain against the trust store (below) */
	const char *server_name; /* TLS: SNI and the name checked; NULL: none */
};

/* Connect (and handshake). The trust store for ssl_verify is OpenSSL's
 * default one (the system's; SSL_CERT_FILE / SSL_CERT_DIR in shmringd's
 * environment override it). NULL on failure, with why in err. The caller
 * owns the link (rl_link_free). */
struct rl_link *rl_link_connect(const struct rl_link_opts *o, char *err, size_t errlen);
void rl_link_free(struct rl_link *l);

/* Queue a command (hiredis' format: "HSET %s %s %llu"); sent by the next
 * rl_link_reply. 0, or -1 (out of memory). */
int rl_link_append(struct rl_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send what is queued, then the next reply. 0 and *out (the caller frees it
 * with freeReplyObject), or -1 (I/O error, timeout, protocol error). */
int rl_link_reply(struct rl_link *l, redisReply **out);
/* One command and its reply: the reply (caller frees), or NULL on failure.
 * An error reply is returned as such. */
redisReply *rl_link_command(struct rl_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
