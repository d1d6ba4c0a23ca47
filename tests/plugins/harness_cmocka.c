/* SPDX-License-Identifier: MIT */
/* The harness's cmocka checks (harness.h, "cmocka checks"): apart from
 * harness.c so that the benchmark and the fuzz target, which link the
 * harness without cmocka, do not pull them in. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

void harness_conf_ok(struct shmring_test *h, const char *json)
{
	if (shmring_test_conf(h, json) != 0)
		fail_msg("conf_new refused %s: %s", json, h->err);
}

void harness_conf_refused(struct shmring_test *h, const char *json, const char *want)
{
	if (shmring_test_conf(h, json) >= 0)
		fail_msg("conf_new accepted %s", json);
	if (!strstr(h->err, want))
		fail_msg("conf_new error for %s is \"%s\", expected \"%s\" in it", json, h->err,
		         want);
}
