/* SPDX-License-Identifier: MIT */
/*
 * The built-in plugins' tests use the installed plugin test library
 * (shmring/plugin_test.h, sdk/) directly; this header adds what only this
 * tree's tests need: the daemon's log sinks and cmocka conf checks.
 */
#ifndef SHMRING_TEST_HARNESS_H
#define SHMRING_TEST_HARNESS_H

#include "shmring/plugin_test.h"

/* Start the daemon's io_uring log sinks (default sizes) counting into ws,
 * for a test that runs the log plugin: 0, or 77 (the test's skip code)
 * after printing why when io_uring is unavailable here. */
struct shmringd_worker_stats;
int harness_sinks_start(struct shmringd_worker_stats *ws);

/* ---- cmocka checks (harness_cmocka.c; the test links cmocka) ------------- */

/* conf_new must accept json; else the test fails with its message. */
void harness_conf_ok(struct shmring_test *h, const char *json);
/* conf_new must refuse json with a message holding `want`. */
void harness_conf_refused(struct shmring_test *h, const char *json, const char *want);

#endif
