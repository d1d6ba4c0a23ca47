/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what plugins read that is not their config: bytes
 * another process left in the shared counter table, and the text of a
 * credentials file. Byte 0, mod 2, picks one ("0" and "1" in ASCII):
 *
 *   even  the counter table (rl_table.c) over hostile bytes: the first 576
 *         bytes are a 4-bucket table as another process could have left it
 *         (lock words, keys, states, counters: anything), the rest are ops,
 *         9 bytes each (see region_input). Every operation must end: a lock
 *         word naming a live process is given up on, not spun on.
 *   odd   a credentials file's text through the loader's parser
 *         (shmring_creds_parse) and the duplicate check.
 *
 * The plugins' configs and inputs are fuzz_plugins.c's. Crashes, sanitizer
 * reports, leaks and hangs fail; refusals are fine.
 */
#include "rl_table.h"
#include "shmring_creds.h"

#include <stdlib.h>
#include <string.h>

/* The table over hostile bytes. Ops, 9 bytes each: kind, then
 * a u64 argument: 0 key = arg (bit 0: token bucket), 1 time += arg mod
 * 10 s, 2 rl_slot_get + rl_take, 3 rl_peek, 4 rl_give_back, 5
 * rl_count_in, 6 rl_set_count, 7 rl_host_id. */
static void region_input(const uint8_t *d, size_t n)
{
	enum { BUCKETS = 4 };
	static uint64_t mem[(sizeof(struct rl_header) + BUCKETS * sizeof(struct rl_bucket)) / 8];
	size_t bytes = sizeof(mem), have = n < bytes ? n : bytes;
	memset(mem, 0, bytes);
	memcpy(mem, d, have);
	mem[0] = RL_MAGIC; /* else attach refuses, and that is all it does */
	struct rl_table t;
	if (rl_table_attach(&t, mem, bytes) < 0)
		abort();
	uint64_t key = 2, now = (RL_EPOCH + 1000) * 1000000000ull, undo = 0;
	struct rl_slot *s = NULL;
	for (size_t i = have; i + 9 <= n; i += 9) {
		uint64_t arg;
		memcpy(&arg, d + i + 1, 8);
		bool tb = key & 1, stale;
		struct rl_limit l = {.token_bucket = tb,
		                     .limit = 1 + arg % 1000,
		                     .period_ns = 1000000000ull,
		                     .t_ns = 1000000000ull / (1 + arg % 1000) + 1,
		                     .window_end = now / 1000000000ull - RL_EPOCH + 1};
		uint64_t rem, reset;
		switch (d[i] % 8) {
		case 0:
			key = arg ? arg : 2;
			s = NULL;
			break;
		case 1:
			now += arg % 10000000000ull;
			break;
		case 2:
			if ((s = rl_slot_get(&t, key, now)))
				rl_take(s, key, &l, now, &rem, &reset, &stale, &undo);
			break;
		case 3:
			if (s)
				rl_peek(s, key, &l, now, &rem, &reset, &stale);
			break;
		case 4:
			if (s)
				rl_give_back(s, key, &l, undo);
			break;
		case 5:
			if (s)
				rl_count_in(s, key, l.window_end);
			break;
		case 6:
			if (s)
				rl_set_count(s, key, l.window_end, arg);
			break;
		default:
			rl_host_id(&t);
			break;
		}
	}
}

/* A credentials file's text. */
static void creds_input(const char *text, size_t len)
{
	struct shmring_creds c = {0};
	char err[512];
	if (shmring_creds_parse(&c, text, len, "fuzz.json", err, sizeof(err)) == 0)
		shmring_creds_check_unique(&c, err, sizeof(err));
	shmring_creds_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 16)
		return 0;
	if (data[0] % 2 == 0)
		region_input(data + 1, size - 1);
	else
		creds_input((const char *)data + 1, size - 1);
	return 0;
}
