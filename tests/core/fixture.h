/* SPDX-License-Identifier: MIT */
/*
 * cmocka fixture for single-process ring tests: one instance with one
 * channel, opened once as CLIENT (SQ producer, CQ consumer) and once as
 * SERVER (SQ consumer, CQ producer), plus a raw mapping of the channel file.
 * The two-process tests use the bare instance (inst_setup_sized).
 */
#ifndef SHMRING_TESTS_CORE_FIXTURE_H
#define SHMRING_TESTS_CORE_FIXTURE_H

#include "core/core_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define FX_RING 4096u

struct fx {
	struct tinst t;
	struct shmring_chan *cl; /* client: produces SQ, consumes CQ */
	struct shmring_chan *sv; /* server: consumes SQ, produces CQ */
	uint8_t *raw;            /* the channel file, mapped a third time */
	size_t raw_size;
};

static inline int fx_setup_sized(void **state, uint32_t ring)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (tinst_create(&f->t, 1, ring, ring) < 0 ||
	    shmring_chan_open(f->t.inst, 0, SHMRING_CLIENT, &f->cl) < 0 ||
	    shmring_chan_open(f->t.inst, 0, SHMRING_SERVER, &f->sv) < 0 ||
	    !(f->raw = raw_map(&f->t, 0, &f->raw_size))) {
		fprintf(stderr, "fixture setup failed in %s\n", f->t.dir);
		return -1;
	}
	*state = f;
	return 0;
}

static inline int fx_setup(void **state)
{
	return fx_setup_sized(state, FX_RING);
}

static inline int fx_teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	shmring_chan_close(f->cl);
	shmring_chan_close(f->sv);
	if (f->raw)
		munmap(f->raw, f->raw_size);
	tinst_destroy(&f->t);
	free(f);
	return 0;
}

/* The fixture of the two-process tests (test_stress, test_death): only the
 * instance, with one channel of `ring` bytes each way that no process has
 * opened yet (each process attaches and opens its own side); *state is its
 * struct tinst, removed by inst_teardown whether the test passed or not. */
static inline int inst_setup_sized(void **state, uint32_t ring)
{
	struct tinst *t = calloc(1, sizeof(*t));
	if (!t || tinst_create(t, 1, ring, ring) < 0)
		return -1;
	*state = t;
	return 0;
}

static inline int inst_teardown(void **state)
{
	struct tinst *t = *state;
	if (t) {
		tinst_destroy(t);
		free(t);
	}
	return 0;
}

/* Deterministic payload byte i of a record tagged seed. */
static inline uint8_t fx_byte(uint64_t seed, uint32_t i)
{
	return (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

/* Claim, fill with the seed's pattern, commit (no publish). */
static inline int fx_put(struct shmring_chan *c, uint32_t len, uint16_t type, uint64_t seed)
{
	struct shmring_claim cl;
	int rc = shmring_claim(c, len, &cl);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < len; i++)
		cl.payload[i] = fx_byte(seed, i);
	return shmring_commit(c, &cl, len, type, (uint16_t)seed, seed);
}

/* Peek one record and check that it is the one fx_put wrote. */
static inline void fx_expect(struct shmring_chan *c, uint32_t len, uint16_t type, uint64_t seed)
{
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(c, &rec), 0);
	assert_int_equal(rec.len, len);
	assert_int_equal(rec.type, type);
	assert_int_equal(rec.flags, (uint16_t)seed);
	assert_true(rec.req_id == seed);
	for (uint32_t i = 0; i < len; i++)
		if (rec.payload[i] != fx_byte(seed, i))
			fail_msg("payload byte %u of record %llu differs", i,
			         (unsigned long long)seed);
}

#endif
