/* SPDX-License-Identifier: MIT */
/* Tokens and keys for the jwt benchmarks (bench/jwt/bench_jwt.c and the jwt
 * rows of bench/plugins/bench_plugins.c): signed at start-up with OpenSSL
 * and the test keys in tests/jwt/keys (KEY_DIR), base64url-encoded by
 * tests/jwt/b64url_encode.h. Exits on any failure:
 * these are benchmark fixtures, not library code. */
#ifndef SHMRING_JWT_BENCH_TOKENS_H
#define SHMRING_JWT_BENCH_TOKENS_H

#include "b64url_encode.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JWT_BENCH_HS_SECRET "bench-secret-0123456789abcdef0123456789abcdef"

/* The text of KEY_DIR/name (malloc'd). */
static inline char *jwt_bench_read_key(const char *name)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", KEY_DIR, name);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		exit(1);
	}
	char *buf = calloc(1, 16384);
	size_t n = fread(buf, 1, 16383, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static inline EVP_PKEY *jwt_bench_read_priv(const char *name)
{
	char *pem = jwt_bench_read_key(name);
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	free(pem);
	if (!k) {
		fprintf(stderr, "cannot read private key %s\n", name);
		exit(1);
	}
	return k;
}

/* A token (malloc'd) for iss with alg (HS256, RS256 or ES256), valid for a
 * day, claims like a typical access token. priv is NULL for HS256. */
static inline char *jwt_bench_token(const char *alg, const char *iss, EVP_PKEY *priv)
{
	char hdr[64], claims[256], si[1024], h64[128], c64[400];
	snprintf(hdr, sizeof(hdr), "{\"typ\":\"JWT\",\"alg\":\"%s\"}", alg);
	snprintf(claims, sizeof(claims),
	         "{\"iss\":\"%s\",\"sub\":\"alice\",\"name\":\"Alice Example\",\"iat\":%lld,"
	         "\"exp\":%lld,\"scope\":\"read write\"}",
	         iss, (long long)time(NULL), (long long)time(NULL) + 86400);
	b64url_encode((const unsigned char *)hdr, strlen(hdr), h64);
	b64url_encode((const unsigned char *)claims, strlen(claims), c64);
	snprintf(si, sizeof(si), "%s.%s", h64, c64);
	unsigned char sig[1024];
	size_t sl = sizeof(sig);
	if (!priv) {
		if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, JWT_BENCH_HS_SECRET,
		               strlen(JWT_BENCH_HS_SECRET), (const unsigned char *)si, strlen(si),
		               sig, sizeof(sig), &sl))
			exit(1);
	} else {
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		if (EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, priv) != 1 ||
		    EVP_DigestSign(m, sig, &sl, (const unsigned char *)si, strlen(si)) != 1)
			exit(1);
		EVP_MD_CTX_free(m);
		if (!strcmp(alg, "ES256")) {
			/* DER -> JOSE r||s */
			const unsigned char *p = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
			const BIGNUM *r, *s;
			ECDSA_SIG_get0(es, &r, &s);
			BN_bn2binpad(r, sig, 32);
			BN_bn2binpad(s, sig + 32, 32);
			sl = 64;
			ECDSA_SIG_free(es);
		}
	}
	char s64[1400];
	b64url_encode(sig, sl, s64);
	char *tok = malloc(strlen(si) + strlen(s64) + 2);
	sprintf(tok, "%s.%s", si, s64);
	return tok;
}

#endif
