/* SPDX-License-Identifier: MIT */
/* Hostile memory: every kind of corrupt position and record header is an
 * error (-EPROTO), counted once, sticky, and never a crash or a loop. The
 * test plays the hostile peer by writing the channel file directly at the
 * offsets documented in shmring.h. */
#include "core/fixture.h"

#define SQ_DATA RAW_HDR_BYTES
#define CQ_DATA (RAW_HDR_BYTES + FX_RING)

static uint64_t corrupt_count(struct fx *f, enum shmring_role side)
{
	return shmring_chan_counters(f->sv, side)->corrupt;
}

/* The server's SQ consumer must now report the ring corrupt, count it once,
 * and stay broken; a release may give back valid records (or a valid
 * padding) read before the corrupt one, never more: the shared head ends at
 * most at bad_pos. */
static void expect_sq_corrupt_at(struct fx *f, uint64_t bad_pos)
{
	uint64_t head = raw_load64(f->raw, RAW_SQ_HEAD);
	uint64_t before = corrupt_count(f, SHMRING_SERVER);
	struct shmring_rec rec;
	memset(&rec, 0x5a, sizeof(rec));
	assert_int_equal(shmring_peek(f->sv, &rec), -EPROTO);
	assert_null(rec.payload);
	assert_int_equal(rec.len, 0);
	assert_int_equal(corrupt_count(f, SHMRING_SERVER), before + 1);
	/* sticky, counted once */
	assert_int_equal(shmring_peek(f->sv, &rec), -EPROTO);
	assert_int_equal(shmring_ready(f->sv), -EPROTO);
	assert_int_equal(corrupt_count(f, SHMRING_SERVER), before + 1);
	shmring_release(f->sv);
	assert_in_range(raw_load64(f->raw, RAW_SQ_HEAD), head, bad_pos > head ? bad_pos : head);
	/* the broken side refuses to produce as well */
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->sv, 8, &cl), -EPROTO);
}

static void expect_sq_corrupt(struct fx *f)
{
	expect_sq_corrupt_at(f, raw_load64(f->raw, RAW_SQ_HEAD));
}

/* Legitimately move SQ to pos (records read and released). */
static void sq_advance(struct fx *f, uint64_t pos)
{
	uint64_t at = raw_load64(f->raw, RAW_SQ_TAIL), seed = 0;
	while (at < pos) {
		uint64_t left = pos - at;
		uint32_t total = left > 2048 ? 2048 : (uint32_t)left;
		if (left - total != 0 && left - total < SHMRING_REC_HDR)
			total -= SHMRING_REC_HDR;
		assert_int_equal(fx_put(f->cl, total - SHMRING_REC_HDR, 1, seed), 0);
		shmring_publish(f->cl);
		fx_expect(f->sv, total - SHMRING_REC_HDR, 1, seed);
		shmring_release(f->sv);
		seed++;
		at += total;
	}
	assert_int_equal(raw_load64(f->raw, RAW_SQ_HEAD), pos);
}

static void put_raw(struct fx *f, size_t ring_data, uint64_t pos, uint64_t w0, uint64_t req_id)
{
	size_t off = ring_data + (size_t)(pos & (FX_RING - 1));
	raw_store64(f->raw, off, w0);
	if ((pos & (FX_RING - 1)) <= FX_RING - 16)
		raw_store64(f->raw, off + 8, req_id);
}

static void test_tail_behind_head(void **state)
{
	struct fx *f = *state;
	sq_advance(f, 512);
	raw_store64(f->raw, RAW_SQ_TAIL, 504);
	expect_sq_corrupt(f);
}

static void test_tail_too_far_ahead(void **state)
{
	struct fx *f = *state;
	sq_advance(f, 512);
	put_raw(f, SQ_DATA, 512, rec_word(8, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, 512 + FX_RING + 8);
	expect_sq_corrupt(f);
}

static void test_tail_wraps_64bit(void **state)
{
	struct fx *f = *state;
	raw_store64(f->raw, RAW_SQ_TAIL, UINT64_MAX - 7);
	expect_sq_corrupt(f);
}

static void test_tail_unaligned(void **state)
{
	struct fx *f = *state;
	put_raw(f, SQ_DATA, 0, rec_word(0, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, 20);
	expect_sq_corrupt(f);
}

static void test_pad_at_offset_zero(void **state)
{
	struct fx *f = *state;
	put_raw(f, SQ_DATA, 0, rec_word(FX_RING, SHMRING_REC_PAD, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING);
	expect_sq_corrupt(f);
}

static void test_pad_with_wrong_len(void **state)
{
	struct fx *f = *state;
	sq_advance(f, FX_RING - 64);
	/* 32 instead of the 64 bytes to the end */
	put_raw(f, SQ_DATA, FX_RING - 64, rec_word(32, SHMRING_REC_PAD, 0), 0);
	put_raw(f, SQ_DATA, FX_RING - 32, rec_word(0, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING + 16);
	expect_sq_corrupt(f);
}

static void test_pad_longer_than_ring(void **state)
{
	struct fx *f = *state;
	sq_advance(f, FX_RING - 64);
	put_raw(f, SQ_DATA, FX_RING - 64, rec_word(UINT32_MAX, SHMRING_REC_PAD, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING + 16);
	expect_sq_corrupt(f);
}

static void test_pad_past_tail(void **state)
{
	struct fx *f = *state;
	sq_advance(f, FX_RING - 64);
	put_raw(f, SQ_DATA, FX_RING - 64, rec_word(64, SHMRING_REC_PAD, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING - 56); /* only the pad word published */
	expect_sq_corrupt(f);
}

static void test_two_pads_in_a_row(void **state)
{
	struct fx *f = *state;
	sq_advance(f, FX_RING - 64);
	put_raw(f, SQ_DATA, FX_RING - 64, rec_word(64, SHMRING_REC_PAD, 0), 0);
	put_raw(f, SQ_DATA, 0, rec_word(FX_RING, SHMRING_REC_PAD, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING + 64);
	expect_sq_corrupt_at(f, FX_RING);
}

static void test_len_over_max_payload(void **state)
{
	struct fx *f = *state;
	uint32_t max = shmring_chan_max_payload(f->sv);
	put_raw(f, SQ_DATA, 0, rec_word(max + 1, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING);
	expect_sq_corrupt(f);
}

static void test_len_huge(void **state)
{
	struct fx *f = *state;
	put_raw(f, SQ_DATA, 0, rec_word(UINT32_MAX, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING);
	expect_sq_corrupt(f);
}

static void test_record_crossing_the_end(void **state)
{
	struct fx *f = *state;
	sq_advance(f, FX_RING - 64);
	put_raw(f, SQ_DATA, FX_RING - 64, rec_word(100, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING - 64 + rec_bytes(100));
	expect_sq_corrupt(f);
}

static void test_header_in_last_eight_bytes(void **state)
{
	struct fx *f = *state;
	sq_advance(f, FX_RING - 8);
	/* a zero-length record needs 16 bytes; only 8 are left */
	put_raw(f, SQ_DATA, FX_RING - 8, rec_word(0, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, FX_RING + 8);
	expect_sq_corrupt(f);
}

static void test_record_past_tail(void **state)
{
	struct fx *f = *state;
	put_raw(f, SQ_DATA, 0, rec_word(100, 1, 0), 0);
	raw_store64(f->raw, RAW_SQ_TAIL, 16);
	expect_sq_corrupt(f);
}

/* Good records before a bad one are delivered; the bad one is not. Fixing the
 * bytes afterwards does not un-break the channel. */
static void test_corrupt_in_mid_batch(void **state)
{
	struct fx *f = *state;
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(fx_put(f->cl, 40, 1, i), 0);
	shmring_publish(f->cl);
	uint64_t third = 2 * rec_bytes(40);
	put_raw(f, SQ_DATA, third, rec_word(4000, 1, 0), 0);
	fx_expect(f->sv, 40, 1, 0);
	fx_expect(f->sv, 40, 1, 1);
	shmring_release(f->sv);
	expect_sq_corrupt(f);
	put_raw(f, SQ_DATA, third, rec_word(40, 1, 2), 2);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), -EPROTO);
	/* a fresh open over sane positions works again */
	shmring_chan_close(f->sv);
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_SERVER, &f->sv), 0);
	fx_expect(f->sv, 40, 1, 2);
}

/* The client's CQ consumer is checked the same way (and counts on its own
 * counter line). */
static void test_cq_corrupt_counted_by_client(void **state)
{
	struct fx *f = *state;
	put_raw(f, CQ_DATA, 0, rec_word(FX_RING, SHMRING_REC_REPLY, 0), 0);
	raw_store64(f->raw, RAW_CQ_TAIL, FX_RING);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->cl, &rec), -EPROTO);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->corrupt, 1);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_SERVER)->corrupt, 0);
	assert_int_equal(shmring_doorbell_arm(f->cl), -EPROTO);
}

/* The producer checks the consumer's head when it re-reads it. */
static void fill_sq(struct fx *f)
{
	for (uint32_t i = 0; i < FX_RING / 64; i++)
		assert_int_equal(fx_put(f->cl, 48, 1, i), 0);
	shmring_publish(f->cl);
}

static void expect_claim_corrupt(struct fx *f)
{
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->cl, 48, &cl), -EPROTO);
	assert_null(cl.payload);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->corrupt, 1);
	assert_int_equal(shmring_claim(f->cl, 0, &cl), -EPROTO);
	assert_int_equal(shmring_chan_counters(f->cl, SHMRING_CLIENT)->corrupt, 1);
}

static void test_head_ahead_of_tail(void **state)
{
	struct fx *f = *state;
	fill_sq(f);
	raw_store64(f->raw, RAW_SQ_HEAD, FX_RING + 64);
	expect_claim_corrupt(f);
}

static void test_head_unaligned(void **state)
{
	struct fx *f = *state;
	fill_sq(f);
	raw_store64(f->raw, RAW_SQ_HEAD, 68);
	expect_claim_corrupt(f);
}

static void test_head_moves_back(void **state)
{
	struct fx *f = *state;
	fill_sq(f);
	fx_expect(f->sv, 48, 1, 0);
	fx_expect(f->sv, 48, 1, 1);
	shmring_release(f->sv);
	/* refresh the producer's copy (128) */
	assert_int_equal(fx_put(f->cl, 48, 1, 99), 0);
	assert_int_equal(fx_put(f->cl, 48, 1, 99), 0);
	raw_store64(f->raw, RAW_SQ_HEAD, 64);
	expect_claim_corrupt(f);
}

/* Opening a channel checks the geometry and the positions once. */
static void expect_open_fails(struct fx *f, size_t off, int width, uint64_t bad, int err)
{
	uint64_t saved = width == 8 ? raw_load64(f->raw, off) : raw_load32(f->raw, off);
	if (width == 8)
		raw_store64(f->raw, off, bad);
	else
		raw_store32(f->raw, off, (uint32_t)bad);
	struct shmring_chan *c = (struct shmring_chan *)1;
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_SERVER, &c), err);
	assert_null(c);
	c = (struct shmring_chan *)1;
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_CLIENT, &c), err);
	assert_null(c);
	if (width == 8)
		raw_store64(f->raw, off, saved);
	else
		raw_store32(f->raw, off, (uint32_t)saved);
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_SERVER, &c), 0);
	shmring_chan_close(c);
}

static void test_open_checks_header(void **state)
{
	struct fx *f = *state;
	expect_open_fails(f, RAW_MAGIC, 8, 0x1234, -EPROTO);
	expect_open_fails(f, RAW_ABI, 4, SHMRING_ABI_VERSION + 1, -EPROTO);
	expect_open_fails(f, RAW_INDEX, 4, 3, -EPROTO);
	expect_open_fails(f, RAW_SQ_SIZE, 4, FX_RING + 8, -EPROTO);
	expect_open_fails(f, RAW_SQ_SIZE, 4, FX_RING * 2, -EPROTO); /* seg_size disagrees */
	expect_open_fails(f, RAW_CQ_SIZE, 4, 2048, -EPROTO);
	expect_open_fails(f, RAW_SQ_OFF, 4, 0, -EPROTO);
	expect_open_fails(f, RAW_CQ_OFF, 4, RAW_HDR_BYTES, -EPROTO);
	expect_open_fails(f, RAW_SEG_SIZE, 8, UINT64_MAX, -EPROTO);
	expect_open_fails(f, RAW_EPOCH, 8, shmring_instance_epoch(f->t.inst) + 1, -ESTALE);
}

static void test_open_checks_positions(void **state)
{
	struct fx *f = *state;
	raw_store64(f->raw, RAW_SQ_HEAD, 16);
	raw_store64(f->raw, RAW_SQ_TAIL, 8);
	struct shmring_chan *c;
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_SERVER, &c), -EPROTO);
	raw_store64(f->raw, RAW_SQ_TAIL, 16 + FX_RING + 8);
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_CLIENT, &c), -EPROTO);
	raw_store64(f->raw, RAW_SQ_TAIL, 20);
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_SERVER, &c), -EPROTO);
	raw_store64(f->raw, RAW_SQ_TAIL, 16);
	raw_store64(f->raw, RAW_CQ_HEAD, 4);
	raw_store64(f->raw, RAW_CQ_TAIL, 4);
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_CLIENT, &c), -EPROTO);
	raw_store64(f->raw, RAW_CQ_HEAD, 1ull << 40);
	raw_store64(f->raw, RAW_CQ_TAIL, (1ull << 40) + 64);
	/* any sane pair is accepted, wherever the free-running positions are */
	assert_int_equal(shmring_chan_open(f->t.inst, 0, SHMRING_CLIENT, &c), 0);
	shmring_chan_close(c);
}

/* A hostile server_slot cannot make a client's publish write out of bounds. */
static void test_hostile_server_slot(void **state)
{
	struct fx *f = *state;
	raw_store32(f->raw, RAW_SERVER_SLOT, UINT32_MAX);
	assert_int_equal(fx_put(f->cl, 8, 1, 1), 0);
	assert_int_equal(shmring_publish(f->cl), 0);
	raw_store32(f->raw, RAW_SERVER_SLOT, SHMRING_MAX_WORKERS);
	assert_int_equal(fx_put(f->cl, 8, 1, 2), 0);
	assert_int_equal(shmring_publish(f->cl), 0);
	fx_expect(f->sv, 8, 1, 1);
	fx_expect(f->sv, 8, 1, 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_tail_behind_head),
	    T(test_tail_too_far_ahead),
	    T(test_tail_wraps_64bit),
	    T(test_tail_unaligned),
	    T(test_pad_at_offset_zero),
	    T(test_pad_with_wrong_len),
	    T(test_pad_longer_than_ring),
	    T(test_pad_past_tail),
	    T(test_two_pads_in_a_row),
	    T(test_len_over_max_payload),
	    T(test_len_huge),
	    T(test_record_crossing_the_end),
	    T(test_header_in_last_eight_bytes),
	    T(test_record_past_tail),
	    T(test_corrupt_in_mid_batch),
	    T(test_cq_corrupt_counted_by_client),
	    T(test_head_ahead_of_tail),
	    T(test_head_unaligned),
	    T(test_head_moves_back),
	    T(test_open_checks_header),
	    T(test_open_checks_positions),
	    T(test_hostile_server_slot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
