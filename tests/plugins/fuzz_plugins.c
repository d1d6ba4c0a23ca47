/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for key-auth, request-transformer and correlation-id:
 * arbitrary configs through conf_new (templates, rule lists, consumers) and,
 * when one is accepted, arbitrary snapshots through the hooks. Input:
 *
 *   byte 0        plugin, mod 3 (ASCII "0" key-auth, "1" request-transformer,
 *                 "2" correlation-id)
 *   up to '\n'    the config, as JSON text
 *   the rest      the snapshot, as JSON text (an object; "conf" is added)
 *
 * JSON text (converted to msgpack as the gateway would send it) lets the
 * fuzzer reach deep config shapes quickly. Refusals are fine; crashes,
 * sanitizer reports and leaks are not.
 */
#include "daemon.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static struct harness H[3];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	harness_open(&H[0], KEY_AUTH_SO);
	harness_open(&H[1], REQUEST_TRANSFORMER_SO);
	harness_open(&H[2], CORRELATION_ID_SO);
	return 0;
}

static int unpack_json(const json_t *j, msgpack_sbuffer *sb, msgpack_unpacked *u)
{
	harness_pack_json(sb, j);
	return msgpack_unpack_next(u, sb->data, sb->size, NULL) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 1 << 16)
		return 0;
	struct harness *h = &H[data[0] % 3];
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	const char *nl = memchr(text, '\n', len);
	size_t cfg_len = nl ? (size_t)(nl - text) : len;
	json_t *cfg = json_loadb(text, cfg_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!cfg)
		return 0;
	json_t *snap = nl ? json_loadb(nl + 1, len - cfg_len - 1, JSON_ALLOW_NUL, NULL) : NULL;
	if (!snap)
		snap = json_object();

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
		/* The config views die with the record, as in the daemon. */
		memset(sb1.data, 0x5a, sb1.size);
		json_object_set_new(snap, "conf", json_integer(1));
		struct shmring_request req;
		memset(&req, 0, sizeof(req));
		if (json_is_object(snap) && unpack_json(snap, &sb2, &u2) == 0 &&
		    shmringd__request_decode(&req, &u2.data) == 0) {
			static const uint32_t phases[] = {SHMRING_PHASE_ACCESS,
			                                  SHMRING_PHASE_HEADER_FILTER};
			for (int i = 0; i < 2; i++) {
				if (!(h->p->phases & phases[i]))
					continue;
				req.phase = phases[i];
				/* As handle_phase: hostile "entities" answers too. */
				if (shmringd__entity_begin(h->entities, &u2.data) < 0) {
					shmringd__entity_end(NULL);
					break;
				}
				shmringd__reply_begin(h->rep, 1u << 20);
				int rc = phases[i] == SHMRING_PHASE_ACCESS
				             ? h->p->access(conf, &req, h->rep)
				             : h->p->header_filter(conf, &req, h->rep);
				if (!shmringd__entity_end(h->rep))
					shmringd__reply_finish(h->rep,
					                       rc < 0 ? "plugin error" : NULL);
			}
		}
		h->p->conf_free(conf);
	}
	msgpack_unpacked_destroy(&u1);
	msgpack_unpacked_destroy(&u2);
	msgpack_sbuffer_destroy(&sb1);
	msgpack_sbuffer_destroy(&sb2);
	json_decref(cfg);
	json_decref(snap);
	return 0;
}
