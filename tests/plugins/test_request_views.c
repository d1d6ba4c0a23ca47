/* SPDX-License-Identifier: MIT */
/* The request views of shmring_plugin.h that no built-in plugin reads,
 * on snapshots decoded by the daemon's own code (shmring_test_snapshot):
 * shmring_req_resp_header, the HEADER_FILTER response headers. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

static struct shmring_test H;

static int setup(void **state)
{
	(void)state;
	shmring_test_open(&H, PLUGIN_SO);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	shmring_test_close(&H);
	return 0;
}

static void assert_str(struct shmring_str s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

static void test_resp_header(void **state)
{
	(void)state;
	shmring_test_snapshot(
	    &H, SHMRING_PHASE_HEADER_FILTER,
	    "{\"status\": 200, \"resp_headers\": {\"content-type\": \"text/plain\","
	    " \"set-cookie\": [\"a=1\", \"b=2\"]}}");
	struct shmring_str v;
	assert_int_equal(shmring_req_resp_header(&H.req, SHMRING_LIT("content-type"), &v), 1);
	assert_str(v, "text/plain");
	/* Names match whatever their case. */
	assert_int_equal(shmring_req_resp_header(&H.req, SHMRING_LIT("Content-Type"), &v), 1);
	assert_str(v, "text/plain");
	/* A repeated header: its first value. */
	assert_int_equal(shmring_req_resp_header(&H.req, SHMRING_LIT("set-cookie"), &v), 1);
	assert_str(v, "a=1");
	/* Absent: 0, and the view is empty. */
	v = SHMRING_LIT("stale");
	assert_int_equal(shmring_req_resp_header(&H.req, SHMRING_LIT("x-absent"), &v), 0);
	assert_null(v.ptr);
	assert_int_equal(v.len, 0);
}

static void test_resp_header_without_resp_headers(void **state)
{
	(void)state;
	shmring_test_snapshot(&H, SHMRING_PHASE_HEADER_FILTER, "{\"status\": 204}");
	struct shmring_str v = SHMRING_LIT("stale");
	assert_int_equal(shmring_req_resp_header(&H.req, SHMRING_LIT("content-type"), &v), 0);
	assert_null(v.ptr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resp_header),
	    cmocka_unit_test(test_resp_header_without_resp_headers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
