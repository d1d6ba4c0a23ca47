/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the plugins' configs and inputs: arbitrary configs
 * through the daemon's schema pass and conf_new (templates, rule lists,
 * consumers, limits, sinks; shorthands, entity checks, patterns) and,
 * when one is accepted, an arbitrary snapshot through the request hooks or,
 * for log, an arbitrary entry through the log hook and the daemon's real
 * io_uring sink. Input:
 *
 *   byte 0        plugin: (byte - '0') mod 5: "0" key-auth, "1"
 *                 request-transformer, "2" correlation-id, "3"
 *                 rate-limiting, "4" log
 *   up to '\n'    the config, as JSON text
 *   the rest      the snapshot ("conf" is added) or log entry, as JSON text
 *
 * JSON text (converted to msgpack as the gateway would send it) lets the
 * fuzzer reach deep config shapes quickly. rate-limiting counts in the
 * shared region (a private temp dir); configs naming redis are skipped (no
 * network here). A log "path" is taken relative to that dir, the only entry
 * of plugin_file_dirs, so the path rules are exercised without writing
 * elsewhere. Refusals are fine; crashes, sanitizer reports and leaks are not.
 */
#include "daemon.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KEY_AUTH, REQUEST_TRANSFORMER, CORRELATION_ID, RATE_LIMITING, LOG, NPLUGINS };

static struct shmring_test H[NPLUGINS];
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
	char err[256];
	struct shmringd_sink_opts o = {.batch_bytes = 4096, .flush_ms = 10, .max_bytes = 1u << 16};
	if (!mkdtemp(g_dir) || shmringd__file_dirs_set(g_dir, err, sizeof(err)) < 0 ||
	    shmringd__sinks_init(&o, &WS) < 0)
		abort();
	shmringd__shared_setup(g_dir, 0600);
	atexit(remove_dir);
	shmring_test_open(&H[KEY_AUTH], KEY_AUTH_SO);
	shmring_test_open(&H[REQUEST_TRANSFORMER], REQUEST_TRANSFORMER_SO);
	shmring_test_open(&H[CORRELATION_ID], CORRELATION_ID_SO);
	shmring_test_open(&H[RATE_LIMITING], RATE_LIMITING_SO);
	shmring_test_open(&H[LOG], LOG_SO);
	return 0;
}

static int unpack_json(const json_t *j, msgpack_sbuffer *sb, msgpack_unpacked *u)
{
	shmring_test_pack_json(sb, j);
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

/* The request hooks on a snapshot, as the daemon's dispatcher runs them. */
static void run_request_hooks(struct shmring_test *h, void *conf, const msgpack_object *snap)
{
	struct shmring_request req;
	memset(&req, 0, sizeof(req));
	if (shmringd__request_decode(&req, snap) < 0)
		return;
	static const uint32_t phases[] = {SHMRING_PHASE_ACCESS, SHMRING_PHASE_HEADER_FILTER};
	for (int i = 0; i < 2; i++) {
		if (!(h->p->phases & phases[i]))
			continue;
		req.phase = phases[i];
		/* As handle_phase: hostile "entities" answers too. */
		if (shmringd__entity_begin(h->entities, snap) < 0) {
			shmringd__entity_end(NULL);
			return;
		}
		shmringd__reply_begin(h->rep, 1u << 20);
		int rc = phases[i] == SHMRING_PHASE_ACCESS
		             ? h->p->access(conf, &req, h->rep)
		             : h->p->header_filter(conf, &req, h->rep);
		if (!shmringd__entity_end(h->rep))
			shmringd__reply_finish(h->rep, rc < 0 ? "plugin error" : NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 1 << 16)
		return 0;
	int which = (uint8_t)(data[0] - '0') % NPLUGINS;
	struct shmring_test *h = &H[which];
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	const char *nl = memchr(text, '\n', len);
	size_t cfg_len = nl ? (size_t)(nl - text) : len;
	if (which == RATE_LIMITING && memmem(text, cfg_len, "redis", 5))
		return 0;
	json_t *cfg = json_loadb(text, cfg_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!cfg)
		return 0;
	json_t *body = nl ? json_loadb(nl + 1, len - cfg_len - 1, JSON_ALLOW_NUL, NULL) : NULL;
	if (!body)
		body = json_object();
	if (which == LOG && json_is_object(cfg))
		confine_path(cfg);
	if (which != LOG && json_is_object(body))
		json_object_set_new(body, "conf", json_integer(1));

	msgpack_sbuffer sb1, sb2;
	msgpack_unpacked u1, u2;
	msgpack_sbuffer_init(&sb1);
	msgpack_sbuffer_init(&sb2);
	msgpack_unpacked_init(&u1);
	msgpack_unpacked_init(&u2);
	void *conf = NULL;
	char err[512];
	if (unpack_json(cfg, &sb1, &u1) == 0 &&
	    shmringd__conf_new(h->p, h->wstate, &u1.data, &conf, err, sizeof(err)) == 0) {
		/* The config views die with the record, as in the daemon. */
		memset(sb1.data, 0x5a, sb1.size);
		if (unpack_json(body, &sb2, &u2) == 0) {
			if (which == LOG) {
				struct shmring_log_record rec = {
				    .req_id = 1, .conf_id = 1, .entry = &u2.data};
				h->p->log(conf, &rec);
				shmringd__sinks_poll(shmring_now_ns());
			} else if (json_is_object(body)) {
				run_request_hooks(h, conf, &u2.data);
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
	return 0;
}
