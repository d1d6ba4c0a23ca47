/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: hostile shared memory against the ring consumer (and the
 * producer's view of the consumer's head), and hostile msgpack against
 * shmring_mpr_parse(). Nothing may crash, read or write outside the ring, or
 * loop: every operation is bounded by the input's length.
 *
 * Input layout (little-endian):
 *
 *   0   u8  flags    bit0: the consumer is the CLIENT (reads CQ), else the
 *                    SERVER (reads SQ); bit1: positions are used raw (any
 *                    value), else aligned to 8
 *   1   u8  nops     number of op bytes at the end of the input
 *   2   u16 unused
 *   4   u32 in_len   consumer ring: tail - head
 *   8   u64 in_head  consumer ring: head
 *   16  u32 out_used producer ring: tail - head
 *   20  u32 unused
 *   24  u64 out_head producer ring: head
 *   32  ...          ring bytes, copied into the consumer ring from head on
 *   end - nops       op bytes (see run_op)
 *
 * The whole input, and every record payload peeked, is also parsed as
 * msgpack. The instance lives in a fresh directory under /dev/shm, removed
 * at exit.
 */
#include "internal.h" /* the private view, to check results against its bounds */
#include "shmring/mp.h"
#include "core/core_util.h"

#include <stdlib.h>

#define RING 4096u
#define HDR 32u

static struct tinst g_t;
static uint8_t *g_raw;
static size_t g_raw_size;
static struct shmring_mpr g_mpr;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_ring: check failed: %s (line %d)\n", #cond,          \
			        __LINE__);                                                         \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

static void cleanup(void)
{
	shmring_mpr_destroy(&g_mpr);
	if (g_raw)
		munmap(g_raw, g_raw_size);
	tinst_destroy(&g_t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (tinst_create(&g_t, 1, RING, RING) < 0 || !(g_raw = raw_map(&g_t, 0, &g_raw_size)) ||
	    shmring_mpr_init(&g_mpr) < 0) {
		fprintf(stderr, "fuzz_ring: setup failed\n");
		abort();
	}
	atexit(cleanup);
	return 0;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* What the library may hand out: inside the ring, header before it, within
 * the documented maximum, and private positions that stay sane. */
static void check_rec(const struct shmring__ring *r, const struct shmring_rec *rec)
{
	CHECK(rec->payload >= r->data + SHMRING_REC_HDR);
	CHECK(rec->len <= r->max_payload);
	CHECK(rec->payload + rec->len <= r->data + r->size);
	CHECK(rec->type != SHMRING_REC_PAD);
	CHECK(((uintptr_t)(rec->payload - r->data) & 7) == 0);
}

static void check_positions(const struct shmring__ring *r)
{
	CHECK(r->head <= r->tail_cache);
	CHECK(r->tail_cache - r->head <= r->size);
	CHECK((r->head & 7) == 0);
}

static void parse_mp(const void *p, uint32_t len)
{
	int rc = shmring_mpr_parse(&g_mpr, p, len);
	CHECK(rc == 0 || rc == -EBADMSG);
	if (rc == 0 && g_mpr.root.type == MSGPACK_OBJECT_MAP) {
		uint64_t u;
		const char *s;
		uint32_t slen;
		shmring_mp_get_uint(&g_mpr.root, "conf", &u);
		if (shmring_mp_get_str(&g_mpr.root, "plugin", &s, &slen) == 0)
			CHECK((const uint8_t *)s >= (const uint8_t *)p &&
			      (const uint8_t *)s + slen <= (const uint8_t *)p + len);
	}
}

static void run_op(struct shmring_chan *c, size_t in_pos_off, size_t in_data, size_t out_head_off,
                   uint8_t op, uint32_t i)
{
	struct shmring__ring *in = &c->in, *out = &c->out;
	uint32_t arg = op >> 3;
	switch (op & 7) {
	case 0: {
		struct shmring_rec rec;
		int rc = shmring_peek(c, &rec);
		CHECK(rc == 0 || rc == SHMRING_EMPTY || rc == -EPROTO);
		if (rc == 0) {
			check_rec(in, &rec);
			parse_mp(rec.payload, rec.len);
		} else {
			CHECK(rec.payload == NULL && rec.len == 0);
		}
		break;
	}
	case 1:
		shmring_release(c);
		break;
	case 2: {
		int rc = shmring_ready(c);
		CHECK(rc == 0 || rc == 1 || rc == -EPROTO);
		break;
	}
	case 3: {
		int rc = shmring_doorbell_arm(c);
		CHECK(rc == 0 || rc == 1 || rc == -EPROTO);
		if (arg & 1)
			shmring_doorbell_disarm(c);
		break;
	}
	case 4: /* the hostile producer moves its tail on */
		raw_store64(g_raw, in_pos_off, raw_load64(g_raw, in_pos_off) + arg * 8u);
		break;
	case 5: { /* produce into the other ring, against a hostile head */
		struct shmring_claim cl;
		uint32_t len = arg * 72u;
		int rc = shmring_claim(c, len, &cl);
		CHECK(rc == 0 || rc == SHMRING_FULL || rc == -EPROTO || rc == -EMSGSIZE ||
		      rc == -EPIPE);
		if (rc == 0) {
			CHECK(cl.payload >= out->data + SHMRING_REC_HDR &&
			      cl.payload + len <= out->data + out->size);
			memset(cl.payload, (int)i, len);
			CHECK(shmring_commit(c, &cl, len / 2, 1, 0, i) == 0);
			shmring_publish(c);
		}
		break;
	}
	case 6: /* the hostile consumer of the other ring moves its head */
		raw_store64(g_raw, out_head_off, raw_load64(g_raw, out_head_off) + arg * 8u);
		break;
	case 7: /* bytes change under the consumer's feet */
		g_raw[in_data + ((i * 8u + arg * 136u) & (RING - 1))] ^= (uint8_t)(op | 1);
		break;
	}
	if (!c->broken)
		check_positions(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1)
		parse_mp(data + 1, (uint32_t)(size - 1 > UINT32_MAX ? UINT32_MAX : size - 1));
	if (size < HDR)
		return 0;
	uint8_t flags = data[0];
	size_t nops = data[1];
	if (nops > size - HDR)
		nops = size - HDR;
	bool client = flags & 1, raw_pos = flags & 2;
	uint64_t in_head = rd64(data + 8), out_head = rd64(data + 24);
	uint64_t in_len = rd32(data + 4), out_used = rd32(data + 16);
	if (!raw_pos) {
		in_head &= ~7ull;
		out_head &= ~7ull;
		in_len &= 0x3ff8;
		out_used &= 0x1ff8;
	}

	/* Lay out the segment: the consumer ring's bytes from head on, the
	 * positions of both rings. */
	size_t in_data = client ? RAW_HDR_BYTES + RING : RAW_HDR_BYTES;
	size_t out_data = client ? RAW_HDR_BYTES : RAW_HDR_BYTES + RING;
	size_t in_tail_off = client ? RAW_CQ_TAIL : RAW_SQ_TAIL;
	size_t in_head_off = client ? RAW_CQ_HEAD : RAW_SQ_HEAD;
	size_t out_tail_off = client ? RAW_SQ_TAIL : RAW_CQ_TAIL;
	size_t out_head_off = client ? RAW_SQ_HEAD : RAW_CQ_HEAD;
	memset(g_raw + RAW_HDR_BYTES, 0, 2 * RING);
	const uint8_t *ring = data + HDR;
	size_t ring_len = size - HDR - nops;
	if (ring_len > RING)
		ring_len = RING;
	for (size_t k = 0; k < ring_len; k++)
		g_raw[in_data + ((in_head + k) & (RING - 1))] = ring[k];
	(void)out_data;
	raw_store64(g_raw, in_head_off, in_head);
	raw_store64(g_raw, in_tail_off, in_head + in_len);
	raw_store64(g_raw, out_head_off, out_head);
	raw_store64(g_raw, out_tail_off, out_head + out_used);
	raw_store32(g_raw, RAW_CQ_ARMED, 0);
	raw_store32(g_raw, RAW_CLOSED, 0);

	struct shmring_chan *c;
	int rc = shmring_chan_open(g_t.inst, 0, client ? SHMRING_CLIENT : SHMRING_SERVER, &c);
	CHECK(rc == 0 || rc == -EPROTO);
	if (rc < 0)
		return 0;
	const uint8_t *ops = data + size - nops;
	for (uint32_t i = 0; i < nops; i++)
		run_op(c, in_tail_off, in_data, out_head_off, ops[i], i);
	/* drain what is left: at most one record per 16 bytes, then empty or
	 * broken; a consumer that loops forever trips this bound */
	struct shmring_rec rec;
	uint32_t n = 0;
	while (shmring_peek(c, &rec) == 0) {
		check_rec(&c->in, &rec);
		CHECK(++n <= RING / SHMRING_REC_HDR + 1);
	}
	shmring_release(c);
	shmring_chan_close(c);
	return 0;
}
