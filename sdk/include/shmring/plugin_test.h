/* SPDX-License-Identifier: MIT */
/*
 * shmring/plugin_test.h: run a plugin's hooks in-process, the way shmringd
 * does, from any test runner (cmocka, a plain main(), ...).
 *
 * The test program links libshmring_plugin_test (CMake: the imported target
 * shmring::plugin_test of find_package(shmring); pkg-config:
 * shmring-plugin-test), which holds the daemon's own plugin host: the
 * request decoder and views, the reply builder, the file policy, shared
 * regions. shmring_test_open() dlopens the plugin's .so, whose shmring_*
 * calls then resolve against the test program (it is linked with
 * -rdynamic, which both the CMake target and the .pc add).
 *
 *     struct shmring_test t;
 *     shmring_test_open(&t, "build/hello.so");
 *     if (shmring_test_conf(&t, "{\"value\": \"x\"}") < 0)
 *             printf("refused: %s\n", t.err);     // the daemon's message
 *     shmring_test_call(&t, SHMRING_PHASE_ACCESS,
 *                       "{\"method\": \"GET\", \"path\": \"/\","
 *                       " \"headers\": {\"x-a\": \"1\"}}");
 *     const char *v = shmring_test_set_header(&t, "x-hello");
 *     json_t *exit = shmring_test_action(&t, "exit", 0);
 *     shmring_test_close(&t);
 *
 * Configs and request snapshots are JSON text, converted to msgpack
 * (objects -> maps, arrays -> arrays, integers -> ints, true/false -> bool,
 * null -> nil). A snapshot's keys are those of docs/protocol.md: method,
 * scheme, host, path, client_ip, route_id, service_id, consumer (a map: id,
 * username, custom_id), credential, headers, query, ctx, status,
 * resp_headers, connection (a map: server_addr, server_port, worker_pid,
 * serial, requests, time_ms). A reply is decoded back into JSON: {"s":0,"a":[[op, ...],
 * ...]} or {"s":1,"e":"message"}; actions are found by name: the names of
 * enum shmring_action_op in lower case without the prefix ("set_req_header",
 * "exit", "set_ctx", "log", ...).
 *
 * The config views a plugin gets in conf_new are overwritten once it
 * returns, as the daemon's die with the record, so a plugin that keeps a
 * view fails its test. Build the plugin and the test with
 * -fsanitize=address (the generated project's SANITIZE option) or run the
 * test under valgrind to check its memory.
 */
#ifndef SHMRING_PLUGIN_TEST_H
#define SHMRING_PLUGIN_TEST_H

#include "shmring/shmring_plugin.h"

#include <jansson.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct shmring_reply;
struct shmringd_entity_cache;

/* Entries of a test's entity cache (shmring_entity_get). */
#define SHMRING_TEST_ENTITY_CACHE 64

/* Read the fields, do not write them. */
struct shmring_test {
	void *dl;
	const struct shmring_plugin *p; /* the plugin's descriptor */
	void *wstate;
	void *conf;
	int have_conf;
	uint64_t conf_id;
	char err[1024]; /* the last conf_new error, as the daemon reports it */
	json_t *reply;  /* the last reply, decoded: {"s":0,"a":[...]} or {"s":1,"e":...} */
	struct shmring_reply *rep;
	/* The last snapshot (kept decoded so benchmarks can replay it). */
	msgpack_sbuffer snap_buf;
	msgpack_unpacked snap;
	struct shmring_request req;
	/* What the last hook read through the request views, in order:
	 * [{"read": "header"|"query"|"ctx"|"resp_header", "name": ...,
	 *   "found": 0|1|2, "declared": true|false}, ...] */
	json_t *reads;
	/* Entities "the gateway" answered (snapshot key "entities"), as a
	 * channel of shmringd keeps them. */
	struct shmringd_entity_cache *entities;
};

/* Append j as msgpack to sb (objects -> maps, ...; see above). */
void shmring_test_pack_json(msgpack_sbuffer *sb, const json_t *j);
/* JSON text as msgpack: sb (initialized by the caller) gets the bytes, u
 * (initialized) the object decoded from them. 0, or -1 with why in err. */
int shmring_test_json_msgpack(const char *text, msgpack_sbuffer *sb, msgpack_unpacked *u, char *err,
                              size_t errlen);
/* A new JSON value for msgpack (ints up to INT64_MAX, floats, strings,
 * arrays, maps with string keys, nil, bool, nested at most 32 deep;
 * anything else aborts). The caller owns it. */
json_t *shmring_test_msgpack_json(const msgpack_object *o);

/* Load the plugin at so_path, check its descriptor as the daemon does and
 * run its init; aborts the test (with the reason on stderr) on failure. */
void shmring_test_open(struct shmring_test *t, const char *so_path);
void shmring_test_close(struct shmring_test *t);

/* conf_new with a JSON config; returns its result, message in t->err.
 * Replaces (conf_free) the previous config. */
int shmring_test_conf(struct shmring_test *t, const char *json_config);

/* Decode a JSON snapshot for `phase` (SHMRING_PHASE_*) into t->req. */
void shmring_test_snapshot(struct shmring_test *t, uint32_t phase, const char *json_snapshot);
/* Run the hook of t->req's phase on t->req and decode the reply into
 * t->reply. Returns the hook's result. */
int shmring_test_run(struct shmring_test *t);
/* shmring_test_snapshot + shmring_test_run. */
int shmring_test_call(struct shmring_test *t, uint32_t phase, const char *json_snapshot);

/* Run the log hook on a JSON log entry (Kong's log serializer map: request,
 * response, latencies, ...; docs/protocol.md). Returns the hook's result. */
int shmring_test_log(struct shmring_test *t, const char *json_entry);

/* Start the daemon's io_uring log sinks (shmring_sink_open and friends)
 * with their default sizes, for a plugin that writes to one: 0, or -errno
 * when io_uring is unavailable here (a test then skips). */
int shmring_test_sinks_start(void);
/* Write out everything appended to the sinks so far (a test then reads the
 * file); waits at most two seconds. */
void shmring_test_sinks_flush(void);

/* Benchmark path: hook + reply begin/finish on the decoded t->req, no JSON
 * decoding of the reply. Returns the reply's payload length. */
uint32_t shmring_test_run_raw(struct shmring_test *t);

/* The action op of a name ("set_req_header", "exit", ...), or -1. */
int shmring_test_op(const char *name);
/* The reply's actions array (borrowed), or NULL for an error reply. */
json_t *shmring_test_actions(const struct shmring_test *t);
/* The n-th (0-based) action named `name`, [op, args...], or NULL (borrowed). */
json_t *shmring_test_action(const struct shmring_test *t, const char *name, int n);
/* Number of actions named `name`. */
int shmring_test_count(const struct shmring_test *t, const char *name);
/* The same two by op number (enum shmring_action_op). */
json_t *shmring_test_action_op(const struct shmring_test *t, int op, int n);
int shmring_test_count_op(const struct shmring_test *t, int op);
/* The value a set_req_header action gives `name` (case-insensitive, last
 * one wins), or NULL; the same for set_resp_header. */
const char *shmring_test_set_header(const struct shmring_test *t, const char *name);
const char *shmring_test_set_resp_header(const struct shmring_test *t, const char *name);
/* 1 if a clear_req_header action names `name`. */
int shmring_test_cleared(const struct shmring_test *t, const char *name);
/* The message of an error reply ({"s":1,"e":...}), or NULL. */
const char *shmring_test_reply_error(const struct shmring_test *t);
/* The last hook's request reads (t->reads), and how many of them asked for
 * a header, query arg or response header its descriptor does not declare
 * (needs_headers, ...): under a gateway those are never in the snapshot,
 * so such a read always finds nothing. */
json_t *shmring_test_reads(const struct shmring_test *t);
int shmring_test_undeclared_reads(const struct shmring_test *t);
/* The reply as compact JSON text (static buffer), for messages. */
const char *shmring_test_reply_text(const struct shmring_test *t);

#ifdef __cplusplus
}
#endif
#endif
