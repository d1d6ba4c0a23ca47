/* SPDX-License-Identifier: MIT */
/* Base64 decoders of the jwt plugin. OpenSSL's EVP_DecodeBlock is standard
 * base64 (other alphabet, padding, whitespace skipping), which is wrong for
 * JWS parts: they are base64url without padding (RFC 7515 section 2), and
 * accepting anything else would let several texts stand for one token. */
#include "jwt_internal.h"

#include <string.h>

/* Character -> 6-bit value; 0x40 = not in the alphabet. Two tables so the
 * strict decoder never sees '+', '/' or '='. */
#define X 0x40
static const uint8_t url_tab[256] = {
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,  X,  0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63,
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
};
#undef X

/* Decode len characters with tab (all already checked to be < 64 by the
 * caller's loop); len % 4 != 1. Returns the byte count; with strict_tail,
 * -1 if the unused low bits of a final partial group are not zero (one
 * token, one text), else they are ignored (as ngx.decode_base64 does). */
static ssize_t decode_groups(const char *in, size_t len, uint8_t *out, const uint8_t *tab,
                             bool strict_tail)
{
	size_t o = 0, i = 0;
	for (; i + 4 <= len; i += 4) {
		uint32_t v = (uint32_t)tab[(uint8_t)in[i]] << 18 |
		             (uint32_t)tab[(uint8_t)in[i + 1]] << 12 |
		             (uint32_t)tab[(uint8_t)in[i + 2]] << 6 | tab[(uint8_t)in[i + 3]];
		out[o++] = (uint8_t)(v >> 16);
		out[o++] = (uint8_t)(v >> 8);
		out[o++] = (uint8_t)v;
	}
	size_t rest = len - i;
	if (rest == 2) {
		uint32_t a = tab[(uint8_t)in[i]], b = tab[(uint8_t)in[i + 1]];
		if (strict_tail && (b & 0x0f))
			return -1;
		out[o++] = (uint8_t)(a << 2 | b >> 4);
	} else if (rest == 3) {
		uint32_t a = tab[(uint8_t)in[i]], b = tab[(uint8_t)in[i + 1]],
		         c = tab[(uint8_t)in[i + 2]];
		if (strict_tail && (c & 0x03))
			return -1;
		out[o++] = (uint8_t)(a << 2 | b >> 4);
		out[o++] = (uint8_t)(b << 4 | c >> 2);
	}
	return (ssize_t)o;
}

ssize_t jwt__b64url_decode(const char *in, size_t len, uint8_t *out)
{
	if (len % 4 == 1)
		return -1;
	uint8_t bad = 0;
	for (size_t i = 0; i < len; i++)
		bad |= url_tab[(uint8_t)in[i]];
	if (bad & 0x40)
		return -1;
	return decode_groups(in, len, out, url_tab, true);
}

ssize_t jwt__b64_decode_lenient(const char *in, size_t len, uint8_t *out)
{
	/* Kong: url characters mapped to the standard ones, padding added,
	 * then ngx.decode_base64. Same set accepted here, without copying. */
	while (len > 0 && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -1;
	uint8_t tab[256];
	memcpy(tab, url_tab, sizeof(tab));
	tab['+'] = 62;
	tab['/'] = 63;
	for (size_t i = 0; i < len; i++)
		if (tab[(uint8_t)in[i]] & 0x40)
			return -1;
	return decode_groups(in, len, out, tab, false);
}
