/* SPDX-License-Identifier: MIT */
/* Batches: many commits, one publish (one store to the shared tail); many
 * peeks, one release (one store to the shared head). */
#include "core/fixture.h"

static void test_publish_once_many_records(void **state)
{
	struct fx *f = *state;
	const uint32_t n = 40;
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(fx_put(f->cl, i * 3, SHMRING_REC_LOG, i), 0);
		/* nothing reaches shared memory's tail before publish */
		assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), 0);
		assert_int_equal(shmring_ready(f->sv), 0);
	}
	uint64_t expect_tail = 0;
	for (uint32_t i = 0; i < n; i++)
		expect_tail += rec_bytes(i * 3);
	assert_int_equal(shmring_publish(f->cl), 0);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), expect_tail);
	/* a second publish with nothing new is a no-op */
	assert_int_equal(shmring_publish(f->cl), 0);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), expect_tail);

	/* consume the batch: the head moves only on release */
	for (uint32_t i = 0; i < n; i++) {
		fx_expect(f->sv, i * 3, SHMRING_REC_LOG, i);
		assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), 0);
	}
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), SHMRING_EMPTY);
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), expect_tail);
	assert_int_equal(shmring_chan_counters(f->sv, SHMRING_SERVER)->consumed, n);
	assert_int_equal(shmring_chan_counters(f->sv, SHMRING_CLIENT)->records, n);
}

/* A batch published while the consumer is half-way through the previous one:
 * the consumer sees the new records only after its private tail copy runs
 * out, and in order. */
static void test_interleaved_batches(void **state)
{
	struct fx *f = *state;
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(fx_put(f->cl, 100, 1, i), 0);
	shmring_publish(f->cl);
	for (uint32_t i = 0; i < 5; i++)
		fx_expect(f->sv, 100, 1, i);
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), 5 * rec_bytes(100));
	for (uint32_t i = 10; i < 20; i++)
		assert_int_equal(fx_put(f->cl, 100, 1, i), 0);
	shmring_publish(f->cl);
	for (uint32_t i = 5; i < 20; i++)
		fx_expect(f->sv, 100, 1, i);
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), 20 * rec_bytes(100));
}

/* A batch that wraps: the padding and the records behind it travel in the
 * same publish. */
static void test_batch_across_the_end(void **state)
{
	struct fx *f = *state;
	/* 3 x 1200 = 3600, then records of 400 bytes: 3600+400 = 4000, then
	 * a 400-byte record does not fit in the last 96 bytes: padding */
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(fx_put(f->cl, 1200 - SHMRING_REC_HDR, 1, i), 0);
	shmring_publish(f->cl);
	for (uint32_t i = 0; i < 3; i++)
		fx_expect(f->sv, 1200 - SHMRING_REC_HDR, 1, i);
	shmring_release(f->sv);
	for (uint32_t i = 3; i < 8; i++)
		assert_int_equal(fx_put(f->cl, 400 - SHMRING_REC_HDR, 1, i), 0);
	shmring_publish(f->cl);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), 4096 + 4 * 400);
	for (uint32_t i = 3; i < 8; i++)
		fx_expect(f->sv, 400 - SHMRING_REC_HDR, 1, i);
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), 4096 + 4 * 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_publish_once_many_records, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_interleaved_batches, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_batch_across_the_end, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
