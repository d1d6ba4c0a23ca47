/* SPDX-License-Identifier: MIT */
/* The verified-token cache (layout and policy: jwt_internal.h). Only
 * successes go in; a lookup compares the whole token (in constant time,
 * after the 64-bit hash and length agree), so a collision can cost a miss
 * but never authenticate a different token. */
#include "jwt_internal.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define WAYS 4

/* 1 if a and b (n bytes) are equal; the time depends on n only. Eight
 * bytes per step: CRYPTO_memcmp's byte loop was the largest cost of a hit
 * on a 300-byte token. Reached only after a seeded 64-bit hash matched. */
static int ct_equal(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	uint64_t d = 0;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t u, v;
		memcpy(&u, x + i, 8);
		memcpy(&v, y + i, 8);
		d |= u ^ v;
	}
	for (; i < n; i++)
		d |= (uint64_t)(x[i] ^ y[i]);
	return d == 0;
}

int jwt__cache_init(struct jwt_cache *c, uint32_t capacity)
{
	memset(c, 0, sizeof(*c));
	uint32_t sets = 1;
	while ((uint64_t)sets * WAYS < capacity && sets < (1u << 24))
		sets <<= 1;
	c->e = calloc((size_t)sets * WAYS, sizeof(*c->e));
	if (!c->e)
		return -ENOMEM;
	c->set_mask = sets - 1;
	/* A per-cache random seed: nobody can aim tokens at one set. */
	if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1)
		c->seed = (uint64_t)(uintptr_t)c->e * 0x9e3779b97f4a7c15ull;
	return 0;
}

uint32_t jwt__cache_capacity(const struct jwt_cache *c)
{
	return c->e ? (c->set_mask + 1) * WAYS : 0;
}

void jwt__cache_flush(struct jwt_cache *c)
{
	if (!c->e)
		return;
	for (uint32_t i = 0; i < (c->set_mask + 1) * WAYS; i++) {
		c->e[i].cred = NULL;
		c->e[i].tok_len = 0;
		c->e[i].hash = 0;
	}
}

void jwt__cache_destroy(struct jwt_cache *c)
{
	if (c->e)
		for (uint32_t i = 0; i < (c->set_mask + 1) * WAYS; i++)
			free(c->e[i].tok);
	free(c->e);
	memset(c, 0, sizeof(*c));
}

static struct jwt_cache_entry *set_of(struct jwt_cache *c, uint64_t h)
{
	return &c->e[(size_t)(h & c->set_mask) * WAYS];
}

const struct jwt_cred *jwt__cache_get(struct jwt_cache *c, const char *tok, size_t len, int64_t now)
{
	if (!c->e)
		return NULL;
	uint64_t h = XXH3_64bits_withSeed(tok, len, c->seed);
	struct jwt_cache_entry *s = set_of(c, h);
	for (int w = 0; w < WAYS; w++) {
		struct jwt_cache_entry *e = &s[w];
		if (!e->cred || e->hash != h || e->tok_len != len || !ct_equal(e->tok, tok, len))
			continue;
		if (now >= e->expires) {
			/* Expired: free the slot; the caller verifies again. */
			e->cred = NULL;
			c->st.expired++;
			c->st.misses++;
			return NULL;
		}
		e->used = ++c->clock;
		c->st.hits++;
		return e->cred;
	}
	c->st.misses++;
	return NULL;
}

int jwt__cache_put(struct jwt_cache *c, const char *tok, size_t len, const struct jwt_cred *cred,
                   int64_t expires, int64_t now)
{
	if (!c->e || expires <= now || len == 0 || len > JWT_MAX_TOKEN)
		return 0;
	uint64_t h = XXH3_64bits_withSeed(tok, len, c->seed);
	struct jwt_cache_entry *s = set_of(c, h);
	/* Victim: an empty or dead slot, else the least recently used. */
	struct jwt_cache_entry *v = NULL;
	for (int w = 0; w < WAYS && !v; w++)
		if (!s[w].cred || now >= s[w].expires)
			v = &s[w];
	if (!v) {
		v = &s[0];
		for (int w = 1; w < WAYS; w++)
			if ((int32_t)(s[w].used - v->used) < 0)
				v = &s[w];
		c->st.evictions++;
	}
	if (v->tok_cap < len) {
		/* Grow in 256-byte steps so typical tokens reuse the slot. */
		uint32_t cap = (uint32_t)((len + 255) & ~(size_t)255);
		char *p = realloc(v->tok, cap);
		if (!p) {
			v->cred = NULL;
			return -ENOMEM;
		}
		v->tok = p;
		v->tok_cap = cap;
	}
	memcpy(v->tok, tok, len);
	v->tok_len = (uint32_t)len;
	v->hash = h;
	v->cred = cred;
	v->expires = expires;
	v->used = ++c->clock;
	c->st.inserts++;
	return 0;
}
