/* SPDX-License-Identifier: MIT */
/* Request views of shmring_plugin.h on snapshots decoded by the daemon's
 * own code (shmring_test_snapshot): shmring_req_resp_header, the
 * HEADER_FILTER response headers (no built-in plugin reads them), and
 * shmring_req_connection with the checks of its fields. */
#include "daemon.h"
#include "harness.h"

#include <errno.h>
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

static void test_connection(void **state)
{
	(void)state;
	shmring_test_snapshot(&H, SHMRING_PHASE_ACCESS,
	                      "{\"connection\": {\"server_addr\": \"::1\", \"server_port\": 8000,"
	                      " \"worker_pid\": 4242, \"serial\": 9007199254740993,"
	                      " \"requests\": 3, \"time_ms\": 1733425000123}}");
	struct shmring_connection c;
	assert_int_equal(shmring_req_connection(&H.req, &c), 1);
	assert_str(c.server_addr, "::1");
	assert_int_equal(c.server_port, 8000);
	assert_int_equal(c.worker_pid, 4242);
	assert_true(c.serial == 9007199254740993ull); /* past a double's exact integers */
	assert_int_equal(c.requests, 3);
	assert_true(c.time_ms == 1733425000123ull);
}

static void test_connection_absent(void **state)
{
	(void)state;
	shmring_test_snapshot(&H, SHMRING_PHASE_ACCESS, "{\"method\": \"GET\"}");
	struct shmring_connection c = {.server_port = 1, .serial = 2};
	assert_int_equal(shmring_req_connection(&H.req, &c), 0);
	assert_null(c.server_addr.ptr);
	assert_int_equal(c.server_port, 0);
	assert_int_equal(c.serial, 0);
}

/* A connection field of the wrong type or out of range makes the record
 * malformed, as a wrong type of any other snapshot field does. */
static void test_connection_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "{\"conf\": 1, \"connection\": \"127.0.0.1-80\"}",
	    "{\"conf\": 1, \"connection\": {\"server_port\": \"80\"}}",
	    "{\"conf\": 1, \"connection\": {\"server_port\": 65536}}",
	    "{\"conf\": 1, \"connection\": {\"worker_pid\": -1}}",
	    "{\"conf\": 1, \"connection\": {\"server_addr\": 1}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msgpack_sbuffer sb;
		msgpack_unpacked u;
		char err[256];
		msgpack_sbuffer_init(&sb);
		msgpack_unpacked_init(&u);
		assert_int_equal(shmring_test_json_msgpack(bad[i], &sb, &u, err, sizeof(err)), 0);
		struct shmring_request req = {0};
		if (shmringd__request_decode(&req, &u.data) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
		msgpack_unpacked_destroy(&u);
		msgpack_sbuffer_destroy(&sb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resp_header),
	    cmocka_unit_test(test_resp_header_without_resp_headers),
	    cmocka_unit_test(test_connection),
	    cmocka_unit_test(test_connection_absent),
	    cmocka_unit_test(test_connection_malformed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
