/* SPDX-License-Identifier: MIT */
/* Ring basics in one process: empty, one record, full, exact fit, wrap with
 * padding (every distance to the end, including 8 bytes), claim misuse. */
#include "core/fixture.h"

#define SQ_DATA RAW_HDR_BYTES

static void test_empty(void **state)
{
	struct fx *f = *state;
	struct shmring_rec rec;
	memset(&rec, 0xab, sizeof(rec));
	assert_int_equal(shmring_peek(f->sv, &rec), SHMRING_EMPTY);
	/* out-parameters are written on every return path */
	assert_null(rec.payload);
	assert_int_equal(rec.len, 0);
	assert_int_equal(shmring_ready(f->sv), 0);
	assert_int_equal(shmring_ready(f->cl), 0);
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), 0);
	assert_int_equal(shmring_space(f->cl), FX_RING);
	assert_int_equal(shmring_chan_max_payload(f->cl), FX_RING / 2 - SHMRING_REC_HDR);
	/* publishing nothing changes nothing */
	assert_int_equal(shmring_publish(f->cl), 0);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), 0);
	assert_int_equal(shmring_peek(f->sv, &rec), SHMRING_EMPTY);
}

static void test_one_record_each_way(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fx_put(f->cl, 5, SHMRING_REC_ACCESS, 42), 0);
	/* committed, not published: invisible */
	assert_int_equal(shmring_ready(f->sv), 0);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), 0);
	assert_int_equal(shmring_publish(f->cl), 0);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), rec_bytes(5));
	assert_int_equal(shmring_ready(f->sv), 1);
	fx_expect(f->sv, 5, SHMRING_REC_ACCESS, 42);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), SHMRING_EMPTY);
	/* not released yet: the producer still sees the space used */
	assert_int_equal(shmring_space(f->cl), FX_RING - rec_bytes(5));
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), rec_bytes(5));
	assert_int_equal(shmring_space(f->cl), FX_RING);

	/* the record header bytes are where shmring.h says */
	assert_true(raw_load64(f->raw, SQ_DATA) == rec_word(5, SHMRING_REC_ACCESS, 42));
	assert_true(raw_load64(f->raw, SQ_DATA + 8) == 42);

	/* CQ: server -> client, through shmring_send */
	assert_int_equal(shmring_send(f->sv, SHMRING_REC_REPLY, 7, "hello", 5), 0);
	assert_int_equal(shmring_publish(f->sv), 0); /* doorbell not armed */
	assert_int_equal(shmring_peek(f->cl, &rec), 0);
	assert_int_equal(rec.len, 5);
	assert_int_equal(rec.type, SHMRING_REC_REPLY);
	assert_true(rec.req_id == 7);
	assert_memory_equal(rec.payload, "hello", 5);
	shmring_release(f->cl);
	assert_int_equal(raw_load64(f->raw, RAW_CQ_HEAD), rec_bytes(5));

	/* counters: each side counts what it produced and consumed */
	const struct shmring_chan_counters *cc = shmring_chan_counters(f->cl, SHMRING_CLIENT);
	const struct shmring_chan_counters *sc = shmring_chan_counters(f->cl, SHMRING_SERVER);
	assert_int_equal(cc->records, 1);
	assert_int_equal(cc->bytes, 5);
	assert_int_equal(cc->consumed, 1);
	assert_int_equal(sc->records, 1);
	assert_int_equal(sc->consumed, 1);
	assert_ptr_equal(shmring_chan_my_counters(f->sv),
	                 shmring_chan_counters(f->sv, SHMRING_SERVER));
}

static void test_zero_length_and_max(void **state)
{
	struct fx *f = *state;
	uint32_t max = shmring_chan_max_payload(f->cl);
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->cl, max + 1, &cl), -EMSGSIZE);
	assert_null(cl.payload);
	assert_int_equal(shmring_claim(f->cl, UINT32_MAX, &cl), -EMSGSIZE);
	assert_int_equal(fx_put(f->cl, 0, SHMRING_REC_LOG, 1), 0);
	assert_int_equal(fx_put(f->cl, max, SHMRING_REC_LOG, 2), 0);
	shmring_publish(f->cl);
	fx_expect(f->sv, 0, SHMRING_REC_LOG, 1);
	fx_expect(f->sv, max, SHMRING_REC_LOG, 2);
	shmring_release(f->sv);
}

/* Fill the ring to the last byte with 64-byte records; the next claim is
 * SHMRING_FULL (and counted) until the consumer releases. */
static void test_full_and_exact_fit(void **state)
{
	struct fx *f = *state;
	const uint32_t len = 64 - SHMRING_REC_HDR;
	uint32_t n = FX_RING / 64;
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(fx_put(f->cl, len, SHMRING_REC_ACCESS, i), 0);
	assert_int_equal(shmring_space(f->cl), 0);
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->cl, 0, &cl), SHMRING_FULL);
	assert_null(cl.payload);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->full, 1);
	shmring_publish(f->cl);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), FX_RING);

	/* read but not released: still full */
	fx_expect(f->sv, len, SHMRING_REC_ACCESS, 0);
	assert_int_equal(shmring_claim(f->cl, 0, &cl), SHMRING_FULL);
	shmring_release(f->sv);
	/* one record's space is back: exactly one record of the same size fits
	 * (exact fit at the end of the ring is not possible here, the ring
	 * wraps to offset 0 with no padding) */
	assert_int_equal(fx_put(f->cl, len, SHMRING_REC_ACCESS, n), 0);
	assert_int_equal(shmring_claim(f->cl, 0, &cl), SHMRING_FULL);
	shmring_publish(f->cl);
	for (uint32_t i = 1; i <= n; i++)
		fx_expect(f->sv, len, SHMRING_REC_ACCESS, i);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), SHMRING_EMPTY);
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), FX_RING + 64);
	assert_int_equal(shmring_space(f->cl), FX_RING);
}

/* Move the producer (and consumer) to position pos with records of at most
 * max payload, each read and released. */
static void advance_to(struct fx *f, uint64_t pos, uint64_t *seed)
{
	uint32_t max = shmring_chan_max_payload(f->cl);
	uint64_t at = raw_load64(f->raw, RAW_SQ_TAIL);
	while (at < pos) {
		uint64_t left = pos - at;
		uint32_t total = left > rec_bytes(max) ? rec_bytes(max) : (uint32_t)left;
		/* never leave a gap smaller than one header */
		if (left - total != 0 && left - total < SHMRING_REC_HDR)
			total -= SHMRING_REC_HDR;
		assert_true(total >= SHMRING_REC_HDR);
		uint32_t off = (uint32_t)(at % FX_RING);
		assert_true(total <= FX_RING - off); /* the caller picks pos to avoid padding */
		assert_int_equal(fx_put(f->cl, total - SHMRING_REC_HDR, 9, *seed), 0);
		shmring_publish(f->cl);
		fx_expect(f->sv, total - SHMRING_REC_HDR, 9, *seed);
		shmring_release(f->sv);
		(*seed)++;
		at += total;
	}
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), pos);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), pos);
}

/* A record that ends exactly at the end of the ring needs no padding. */
static void test_exact_fit_at_end(void **state)
{
	struct fx *f = *state;
	uint64_t seed = 100;
	advance_to(f, FX_RING - 256, &seed);
	assert_int_equal(fx_put(f->cl, 256 - SHMRING_REC_HDR, 3, 1), 0);
	assert_int_equal(fx_put(f->cl, 10, 3, 2), 0); /* at offset 0, no padding */
	shmring_publish(f->cl);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), FX_RING + rec_bytes(10));
	assert_true(raw_load64(f->raw, SQ_DATA + FX_RING - 256) ==
	            rec_word(256 - SHMRING_REC_HDR, 3, 1));
	assert_true(raw_load64(f->raw, SQ_DATA) == rec_word(10, 3, 2));
	fx_expect(f->sv, 256 - SHMRING_REC_HDR, 3, 1);
	fx_expect(f->sv, 10, 3, 2);
	shmring_release(f->sv);
}

/* Wrap with padding for every distance to the end from 8 to 256 bytes, with
 * a record one size class larger than that distance. */
static void test_wrap_with_padding(void **state)
{
	struct fx *f = *state;
	uint64_t seed = 1000;
	for (uint32_t to_end = 8; to_end <= 256; to_end += 8) {
		uint64_t at = raw_load64(f->raw, RAW_SQ_TAIL);
		uint64_t ring_start = (at + FX_RING) & ~(uint64_t)(FX_RING - 1);
		if (ring_start - at < to_end + 512)
			ring_start += FX_RING;
		advance_to(f, ring_start - to_end, &seed);
		/* a record one byte bigger than what is left before the end */
		uint32_t len = to_end >= SHMRING_REC_HDR ? to_end - SHMRING_REC_HDR + 1 : 1;
		uint64_t before = raw_load64(f->raw, RAW_SQ_TAIL);
		assert_int_equal(fx_put(f->cl, len, 4, seed), 0);
		shmring_publish(f->cl);
		uint64_t after = raw_load64(f->raw, RAW_SQ_TAIL);
		assert_int_equal(after - before, to_end + rec_bytes(len));
		/* the padding record: type 0, len = bytes to the end */
		assert_true(raw_load64(f->raw, SQ_DATA + FX_RING - to_end) ==
		            rec_word(to_end, SHMRING_REC_PAD, 0));
		/* the real record at offset 0 */
		assert_true(raw_load64(f->raw, SQ_DATA) == rec_word(len, 4, (uint16_t)seed));
		fx_expect(f->sv, len, 4, seed);
		shmring_release(f->sv);
		assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), after);
		seed++;
	}
}

/* The 8-bytes-to-end case in detail: the padding is a bare 8-byte word, and
 * the payload pointer of the record behind it is at the start of the ring. */
static void test_wrap_eight_bytes_to_end(void **state)
{
	struct fx *f = *state;
	/* 2048 + 2040 = 4088: eight bytes before the end */
	assert_int_equal(fx_put(f->cl, 2048 - SHMRING_REC_HDR, 1, 1), 0);
	assert_int_equal(fx_put(f->cl, 2040 - SHMRING_REC_HDR, 1, 2), 0);
	shmring_publish(f->cl);
	struct shmring_rec first;
	assert_int_equal(shmring_peek(f->sv, &first), 0);
	const uint8_t *base = first.payload - SHMRING_REC_HDR;
	fx_expect(f->sv, 2040 - SHMRING_REC_HDR, 1, 2);
	shmring_release(f->sv);
	/* the claim itself must take the padding into account */
	assert_int_equal(fx_put(f->cl, 0, 2, 3), 0);
	shmring_publish(f->cl);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), FX_RING + SHMRING_REC_HDR);
	assert_true(raw_load64(f->raw, SQ_DATA + FX_RING - 8) == rec_word(8, SHMRING_REC_PAD, 0));
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), 0);
	assert_ptr_equal(rec.payload, base + SHMRING_REC_HDR);
	assert_int_equal(rec.len, 0);
	assert_true(rec.req_id == 3);
	shmring_release(f->sv);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), FX_RING + SHMRING_REC_HDR);
}

/* Padding needs room too: with the consumer lagging, a claim that fits but
 * whose padding does not is SHMRING_FULL. */
static void test_padding_counts_as_used(void **state)
{
	struct fx *f = *state;
	uint64_t seed = 1;
	advance_to(f, FX_RING - 64, &seed);
	/* 3 records of 1024 from offset 4032: pad 64, then records at 0, 1024, 2048 */
	assert_int_equal(fx_put(f->cl, 1024 - SHMRING_REC_HDR, 1, 10), 0);
	assert_int_equal(fx_put(f->cl, 1024 - SHMRING_REC_HDR, 1, 11), 0);
	assert_int_equal(fx_put(f->cl, 1024 - SHMRING_REC_HDR, 1, 12), 0);
	/* used: 64 + 3072 = 3136; free 960; a 960-byte record fits */
	assert_int_equal(shmring_space(f->cl), FX_RING - 64 - 3072);
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->cl, 960 - SHMRING_REC_HDR + 1, &cl), SHMRING_FULL);
	assert_int_equal(fx_put(f->cl, 960 - SHMRING_REC_HDR, 1, 13), 0);
	assert_int_equal(shmring_space(f->cl), 0);
	shmring_publish(f->cl);
	for (uint64_t s = 10; s <= 13; s++)
		fx_expect(f->sv, s == 13 ? 960 - SHMRING_REC_HDR : 1024 - SHMRING_REC_HDR, 1, s);
	shmring_release(f->sv);
}

static void test_claim_misuse(void **state)
{
	struct fx *f = *state;
	struct shmring_claim cl, cl2;
	/* commit without a claim */
	cl.payload = NULL;
	cl.cap = 0;
	assert_int_equal(shmring_commit(f->cl, &cl, 0, 1, 0, 0), -EINVAL);
	/* one claim at a time */
	assert_int_equal(shmring_claim(f->cl, 100, &cl), 0);
	assert_int_equal(shmring_claim(f->cl, 100, &cl2), -EBUSY);
	assert_null(cl2.payload);
	/* committing more than claimed, or a padding type, drops the claim */
	assert_int_equal(shmring_commit(f->cl, &cl, 101, 1, 0, 0), -EINVAL);
	assert_int_equal(shmring_commit(f->cl, &cl, 10, 1, 0, 0), -EINVAL);
	assert_int_equal(shmring_claim(f->cl, 100, &cl), 0);
	assert_int_equal(shmring_commit(f->cl, &cl, 10, SHMRING_REC_PAD, 0, 0), -EINVAL);
	/* abort leaves nothing behind */
	assert_int_equal(shmring_claim(f->cl, 100, &cl), 0);
	memset(cl.payload, 0xee, 100);
	shmring_abort(f->cl, &cl);
	assert_null(cl.payload);
	shmring_publish(f->cl);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), SHMRING_EMPTY);
	/* committing less than claimed shrinks the record */
	assert_int_equal(shmring_claim(f->cl, 1000, &cl), 0);
	memcpy(cl.payload, "abc", 3);
	assert_int_equal(shmring_commit(f->cl, &cl, 3, 2, 5, 6), 0);
	assert_null(cl.payload);
	shmring_publish(f->cl);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), rec_bytes(3));
	assert_int_equal(shmring_peek(f->sv, &rec), 0);
	assert_int_equal(rec.len, 3);
	assert_int_equal(rec.flags, 5);
	assert_memory_equal(rec.payload, "abc", 3);
	shmring_release(f->sv);
}

/* A shrunken commit after a claim that padded: the padding stays, the record
 * is at offset 0 and the consumer skips the padding. */
static void test_shrink_after_padding(void **state)
{
	struct fx *f = *state;
	uint64_t seed = 1;
	advance_to(f, FX_RING - 32, &seed);
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->cl, 100, &cl), 0);
	cl.payload[0] = 'x';
	assert_int_equal(shmring_commit(f->cl, &cl, 1, 2, 0, 77), 0);
	shmring_publish(f->cl);
	assert_int_equal(raw_load64(f->raw, RAW_SQ_TAIL), FX_RING + rec_bytes(1));
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), 0);
	assert_int_equal(rec.len, 1);
	assert_true(rec.req_id == 77);
	assert_int_equal(rec.payload[0], 'x');
	shmring_release(f->sv);
}

/* Many records of pseudo-random sizes through a small ring, in one process,
 * with random batch sizes: every padding position the sizes produce. */
static void test_random_sizes_single_process(void **state)
{
	struct fx *f = *state;
	uint64_t rnd = 12345, sent = 0, got = 0;
	uint32_t max = shmring_chan_max_payload(f->cl);
	uint32_t lens[64];
	while (got < 20000) {
		uint32_t batch = 1 + (uint32_t)(splitmix64(&rnd) % 16), n = 0;
		while (n < batch) {
			uint32_t len = (uint32_t)(splitmix64(&rnd) % (max + 1));
			if (splitmix64(&rnd) & 1)
				len &= 63;
			lens[(sent + n) % 64] = len;
			int rc = fx_put(f->cl, len, 1, sent + n);
			if (rc == SHMRING_FULL)
				break;
			assert_int_equal(rc, 0);
			n++;
			if (sent + n - got >= 64)
				break;
		}
		shmring_publish(f->cl);
		sent += n;
		while (got < sent) {
			fx_expect(f->sv, lens[got % 64], 1, got);
			got++;
			if (splitmix64(&rnd) % 3 == 0)
				shmring_release(f->sv);
		}
		shmring_release(f->sv);
	}
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), raw_load64(f->raw, RAW_SQ_TAIL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_empty, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_one_record_each_way, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_zero_length_and_max, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_full_and_exact_fit, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_exact_fit_at_end, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_wrap_with_padding, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_wrap_eight_bytes_to_end, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_padding_counts_as_used, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_claim_misuse, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_shrink_after_padding, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_random_sizes_single_process, fx_setup,
	                                    fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
