/* SPDX-License-Identifier: MIT */
/*
 * TLS for tcp sinks (Kong's tcp-log `tls` and `tls_sni`): an OpenSSL
 * session over the sink's connected non-blocking socket. sink.c drives it
 * from the worker loop: a step that would block returns "again" and is
 * retried at the next loop turn (sinks_next_due asks for 1 ms turns while
 * a handshake or a write is pending), so the loop never waits on a peer.
 * These sinks write through OpenSSL rather than io_uring: the bytes on the
 * wire are OpenSSL's records.
 *
 * As Kong's tcp-log (sslhandshake(true, tls_sni, false)): SNI when a name
 * is given, and no certificate verification.
 */
#include "sink_internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>

struct sink_tls {
	SSL *ssl;
};

static SSL_CTX *ctx; /* per worker, made with the first TLS sink */

int shmringd__tls_open(int fd, const char *sni, struct sink_tls **out)
{
	*out = NULL;
	if (!ctx) {
		ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx)
			return -ENOMEM;
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
		                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	}
	struct sink_tls *t = calloc(1, sizeof(*t));
	if (!t || !(t->ssl = SSL_new(ctx)) || SSL_set_fd(t->ssl, fd) != 1 ||
	    (sni && SSL_set_tlsext_host_name(t->ssl, sni) != 1)) {
		shmringd__tls_free(t);
		ERR_clear_error();
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

/* 0: the call would block; -1: the session failed. */
static int again_or_failed(struct sink_tls *t, int r)
{
	int e = SSL_get_error(t->ssl, r);
	ERR_clear_error();
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

int shmringd__tls_handshake(struct sink_tls *t)
{
	int r = SSL_connect(t->ssl);
	return r == 1 ? 1 : again_or_failed(t, r);
}

ssize_t shmringd__tls_write(struct sink_tls *t, const void *p, size_t n)
{
	int r = SSL_write(t->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	return r > 0 ? r : again_or_failed(t, r);
}

void shmringd__tls_free(struct sink_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* no close_notify: the peer may be gone */
	free(t);
}

void shmringd__tls_fini(void)
{
	SSL_CTX_free(ctx);
	ctx = NULL;
}
