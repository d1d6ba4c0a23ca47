/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what the gateway (or anything that can write the
 * rings and the instance directory) hands the log and rate-limiting plugins
 * and the credentials loader. Byte 0, mod 4, picks the surface:
 *
 *   "0" log            up to '\n' the config (JSON text), the rest a log
 *                      entry (JSON text) through the log hook and the
 *                      daemon's real io_uring sink. A "path" is taken
 *                      relative to a private temp dir, the only entry of
 *                      plugin_file_dirs, so the path rules get exercised
 *                      without writing outside it.
 *   "1" rate-limiting  config + snapshot (JSON text) through conf_new and
 *                      the access hook, counting in the shared region.
 *                      Configs naming redis are skipped (no network here).
 *   "2" shared region  the counter table (rl_table.c) over hostile bytes:
 *                      the first 576 bytes are a 4-bucket table as another
 *                      process could have left it, the rest are ops
 *                      (9 bytes each: kind, then a key or time step).
 *   "3" credentials    a credentials file's text through the loader's
 *                      parser (shmring_creds_parse) and the duplicate check.
 *
 * Refusals are fine; crashes, sanitizer reports, leaks and hangs are not.
 */
#include "daemon.h"
#include "harness.h"
#include "rl_table.h"
#include "shmring_creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct harness H_LOG, H_RL;
static struct shmringd_worker_stats WS;
static char g_dir[] = "/tmp/shmring-fuzz-XXXXXX";

static void remove_dir(void)
{
	shmringd__sinks_drain(shmring_now_ns() + 1000000000ull);
	shmringd__shared_remove_all(g_dir);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[256];
	struct shmringd_sink_opts o = {.batch_bytes = 4096, .flush_ms = 10, .max_bytes = 1u << 16};
	if (!mkdtemp(g_dir) || shmringd__file_dirs_set(g_dir, err, sizeof(err)) < 0 ||
	    shmringd__sinks_init(&o, &WS) < 0)
		abort();
	shmringd__shared_setup(g_dir, 0600);
	atexit(remove_dir);
	harness_open(&H_LOG, LOG_SO);
	harness_open(&H_RL, RATE_LIMITING_SO);
	return 0;
}

static int unpack_json(const json_t *j, msgpack_sbuffer *sb, msgpack_unpacked *u)
{
	harness_pack_json(sb, j);
	return msgpack_unpack_next(u, sb->data, sb->size, NULL) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

/* "path": "x" becomes "<g_dir>/x" (the fuzzer cannot know g_dir). */
static void confine_path(json_t *cfg)
{
	const char *p = json_string_value(json_object_get(cfg, "path"));
	if (!p)
		return;
	char full[512];
	snprintf(full, sizeof(full), "%s/%.400s", g_dir, p);
	json_object_set_new(cfg, "path", json_string(full));
}

/* Surfaces 0 and 1: conf_new on the config, then the entry or snapshot. */
static void plugin_input(struct harness *h, const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len);
	size_t cfg_len = nl ? (size_t)(nl - text) : len;
	if (h == &H_RL && memmem(text, cfg_len, "redis", 5))
		return;
	json_t *cfg = json_loadb(text, cfg_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!cfg)
		return;
	json_t *body = nl ? json_loadb(nl + 1, len - cfg_len - 1, JSON_ALLOW_NUL, NULL) : NULL;
	if (!body)
		body = json_object();
	if (h == &H_LOG && json_is_object(cfg))
		confine_path(cfg);
	msgpack_sbuffer sb1, sb2;
	msgpack_unpacked u1, u2;
	msgpack_sbuffer_init(&sb1);
	msgpack_sbuffer_init(&sb2);
	msgpack_unpacked_init(&u1);
	msgpack_unpacked_init(&u2);
	void *conf = NULL;
	char err[512];
	if (unpack_json(cfg, &sb1, &u1) == 0 &&
	    h->p->conf_new(h->wstate, &u1.data, &conf, err, sizeof(err)) == 0) {
		memset(sb1.data, 0x5a, sb1.size); /* config views die with the record */
		if (h == &H_LOG) {
			if (unpack_json(body, &sb2, &u2) == 0) {
				struct shmring_log_record rec = {
				    .req_id = 1, .conf_id = 1, .entry = &u2.data};
				h->p->log(conf, &rec);
			}
			shmringd__sinks_poll(shmring_now_ns());
		} else {
			json_object_set_new(body, "conf", json_integer(1));
			struct shmring_request req;
			memset(&req, 0, sizeof(req));
			if (json_is_object(body) && unpack_json(body, &sb2, &u2) == 0 &&
			    shmringd__request_decode(&req, &u2.data) == 0) {
				req.phase = SHMRING_PHASE_ACCESS;
				shmringd__reply_begin(h->rep, 1u << 20);
				int rc = h->p->access(conf, &req, h->rep);
				shmringd__reply_finish(h->rep, rc < 0 ? "plugin error" : NULL);
			}
		}
		h->p->conf_free(conf);
	}
	msgpack_unpacked_destroy(&u1);
	msgpack_unpacked_destroy(&u2);
	msgpack_sbuffer_destroy(&sb1);
	msgpack_sbuffer_destroy(&sb2);
	json_decref(cfg);
	json_decref(body);
}

/* Surface 2: the table over hostile bytes. Ops, 9 bytes each: kind, then
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

/* Surface 3: a credentials file's text. */
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
	const char *text = (const char *)data + 1;
	switch (data[0] % 4) {
	case 0:
		plugin_input(&H_LOG, text, size - 1);
		break;
	case 1:
		plugin_input(&H_RL, text, size - 1);
		break;
	case 2:
		region_input(data + 1, size - 1);
		break;
	default:
		creds_input(text, size - 1);
		break;
	}
	return 0;
}
