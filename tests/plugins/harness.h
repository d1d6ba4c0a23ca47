/* SPDX-License-Identifier: MIT */
/*
 * A test (and benchmark) harness that runs a plugin's hooks in-process the
 * way shmringd does: dlopen the built .so (its shmring_* host calls resolve
 * against this executable, which links worker/host_*.c through shmring_host
 * and exports it), CONF through conf_new, snapshots decoded by the daemon's
 * own shmringd__request_decode, replies built by the daemon's reply builder
 * and decoded back into JSON for assertions.
 *
 * Configs and snapshots are written as JSON text for readability and
 * converted to msgpack (objects -> maps, arrays -> arrays, integers ->
 * ints, true/false -> bool, null -> nil).
 */
#ifndef SHMRING_TEST_HARNESS_H
#define SHMRING_TEST_HARNESS_H

#include "shmring_plugin.h"

#include <jansson.h>
#include <stdint.h>

struct shmring_reply;
struct shmringd_entity_cache;

struct harness {
	void *dl;
	const struct shmring_plugin *p;
	void *wstate;
	void *conf;
	int have_conf;
	uint64_t conf_id;
	char err[1024]; /* the last conf_new error */
	json_t *reply;  /* the last reply, decoded: {"s":0,"a":[...]} or {"s":1,"e":...} */
	struct shmring_reply *rep;
	/* The last snapshot (kept decoded so benchmarks can replay it). */
	msgpack_sbuffer snap_buf;
	msgpack_unpacked snap;
	struct shmring_request req;
	/* Entities "the gateway" answered (snapshot key "entities"), as a
	 * channel of shmringd keeps them. */
	struct shmringd_entity_cache *entities;
};

/* Entries of the harness's entity cache. */
#define HARNESS_ENTITY_CACHE 64

/* Append j as msgpack to sb (objects -> maps, ...; see above). */
void harness_pack_json(msgpack_sbuffer *sb, const json_t *j);
/* A new JSON value for a reply's msgpack (ints, strings, arrays, maps with
 * string keys, nil, bool; anything else aborts). The caller owns it. */
json_t *harness_msgpack_json(const msgpack_object *o);

/* Load the plugin at path and run its init; aborts the test on failure. */
void harness_open(struct harness *h, const char *so_path);
void harness_close(struct harness *h);

/* conf_new with a JSON config; returns its result, message in h->err.
 * Replaces (conf_free) the previous config. */
int harness_conf(struct harness *h, const char *json_config);

/* Decode a JSON snapshot (without "conf": added) for `phase` into h->req. */
void harness_snapshot(struct harness *h, uint32_t phase, const char *json_snapshot);
/* Run the hook of h->req's phase on h->req; decode the reply into
 * h->reply. Returns the hook's result. */
int harness_run(struct harness *h);
/* harness_snapshot + harness_run. */
int harness_call(struct harness *h, uint32_t phase, const char *json_snapshot);

/* Benchmark path: hook + reply begin/finish on the decoded h->req, no JSON
 * decoding of the reply. Returns the reply's payload length. */
uint32_t harness_run_raw(struct harness *h);

/* The reply's actions array (borrowed), or NULL for an error reply. */
json_t *harness_actions(const struct harness *h);
/* The n-th (0-based) action with this op, or NULL (borrowed). */
json_t *harness_action(const struct harness *h, int op, int n);
/* Number of actions with this op. */
int harness_count(const struct harness *h, int op);
/* The value a SET_REQ_HEADER (op 1) action gives `name` (case-insensitive,
 * last one wins), or NULL. */
const char *harness_set_header(const struct harness *h, const char *name);
/* 1 if a CLEAR_REQ_HEADER action names `name`. */
int harness_cleared(const struct harness *h, const char *name);
/* The reply as compact JSON text (static buffer), for messages. */
const char *harness_reply_text(const struct harness *h);

/* Start the daemon's io_uring log sinks (default sizes) counting into ws,
 * for a test that runs the log plugin: 0, or 77 (the test's skip code)
 * after printing why when io_uring is unavailable here. */
struct shmringd_worker_stats;
int harness_sinks_start(struct shmringd_worker_stats *ws);

/* ---- cmocka checks (harness_cmocka.c; the test links cmocka) ------------- */

/* conf_new must accept json; else the test fails with its message. */
void harness_conf_ok(struct harness *h, const char *json);
/* conf_new must refuse json with a message holding `want`. */
void harness_conf_refused(struct harness *h, const char *json, const char *want);

#endif
