/* SPDX-License-Identifier: MIT */
/*
 * The built-in plugins' tests on the installed plugin test library
 * (shmring/plugin_test.h, sdk/), under their short names, plus what only
 * this tree's tests need: the daemon's log sinks and cmocka conf checks.
 */
#ifndef SHMRING_TEST_HARNESS_H
#define SHMRING_TEST_HARNESS_H

#include "shmring/plugin_test.h"

#define harness shmring_test
#define harness_pack_json shmring_test_pack_json
#define harness_msgpack_json shmring_test_msgpack_json
#define harness_open shmring_test_open
#define harness_close shmring_test_close
#define harness_conf shmring_test_conf
#define harness_snapshot shmring_test_snapshot
#define harness_run shmring_test_run
#define harness_call shmring_test_call
#define harness_run_raw shmring_test_run_raw
#define harness_actions shmring_test_actions
#define harness_action shmring_test_action_op
#define harness_count shmring_test_count_op
#define harness_set_header shmring_test_set_header
#define harness_cleared shmring_test_cleared
#define harness_reply_text shmring_test_reply_text
#define HARNESS_ENTITY_CACHE SHMRING_TEST_ENTITY_CACHE

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
