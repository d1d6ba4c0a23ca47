/* SPDX-License-Identifier: MIT */
/* A base64url encoder (RFC 4648 section 5, no padding), written apart from
 * the plugin's decoder (plugins/jwt/b64.c) so that tests/jwt and the jwt
 * benchmarks make tokens without relying on the code under test. */
#ifndef SHMRING_TESTS_JWT_B64URL_ENCODE_H
#define SHMRING_TESTS_JWT_B64URL_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* n bytes of in into out, NUL-terminated (out needs 4 * ceil(n / 3) + 1
 * bytes); the length without the NUL. */
static inline size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = t[v & 63];
	}
	if (n - i == 1) {
		out[o++] = t[in[i] >> 2];
		out[o++] = t[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		out[o++] = t[v >> 10];
		out[o++] = t[(v >> 4) & 63];
		out[o++] = t[(v & 15) << 2];
	}
	out[o] = '\0';
	return o;
}

#endif
