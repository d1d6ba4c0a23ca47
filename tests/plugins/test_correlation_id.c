/* SPDX-License-Identifier: MIT */
/* correlation-id: generators, an incoming id kept, echo_downstream, the id
 * in ctx for later phases, and config errors. */
#include "harness.h"

#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

static struct shmring_test H;

static int setup(void **state)
{
	shmring_test_open(&H, PLUGIN_SO);
	return 0;
}

static int teardown(void **state)
{
	shmring_test_close(&H);
	return 0;
}

static void assert_matches(const char *s, const char *re)
{
	regex_t r;
	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	int rc = regexec(&r, s, 0, NULL, 0);
	regfree(&r);
	if (rc)
		fail_msg("'%s' does not match /%s/", s, re);
}

/* The id the access reply set upstream (and checks ctx agrees). */
static const char *generated(const char *header)
{
	const char *v = shmring_test_set_header(&H, header);
	if (!v)
		fail_msg("no %s set in %s", header, shmring_test_reply_text(&H));
	json_t *ctx = shmring_test_action_op(&H, SHMRING_ACT_SET_CTX, 0);
	assert_non_null(ctx);
	assert_string_equal(json_string_value(json_array_get(ctx, 1)), "correlation_id");
	assert_string_equal(json_string_value(json_array_get(ctx, 2)), v);
	return v;
}

#define UUID_RE "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

static void uuid_generator(void **state)
{
	harness_conf_ok(&H, "{\"generator\":\"uuid\"}");
	char first[64];
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	snprintf(first, sizeof(first), "%s", generated("Kong-Request-ID"));
	assert_matches(first, "^" UUID_RE "$");
	/* No echo by default (Kong's default). */
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_SET_RESP_HEADER), 0);
	/* Many in a row are distinct (crosses a random-buffer refill). */
	for (int i = 0; i < 600; i++) {
		shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
		const char *v = generated("Kong-Request-ID");
		assert_matches(v, "^" UUID_RE "$");
		assert_string_not_equal(v, first);
	}
}

static void uuid_counter_generator_is_default(void **state)
{
	harness_conf_ok(&H, "{}");
	char a[80], b[80];
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	snprintf(a, sizeof(a), "%s", generated("Kong-Request-ID"));
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	snprintf(b, sizeof(b), "%s", generated("Kong-Request-ID"));
	assert_matches(a, "^" UUID_RE "#[0-9]+$");
	/* Same worker UUID, next counter. */
	assert_memory_equal(a, b, 37);
	unsigned long na = strtoul(a + 37, NULL, 10), nb = strtoul(b + 37, NULL, 10);
	assert_int_equal(nb, na + 1);
}

/* Kong's "%s-%s-%d-%s-%s-%0.3f" of server_addr, server_port, the nginx
 * worker's pid, connection, connection_requests and ngx.now(). */
static void tracker_generator(void **state)
{
	harness_conf_ok(&H, "{\"generator\":\"tracker\"}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"connection\":{\"server_addr\":\"10.0.0.7\",\"server_port\":8000,"
	                  "\"worker_pid\":4242,\"serial\":17,\"requests\":2,"
	                  "\"time_ms\":1733425000007}}");
	assert_string_equal(generated("Kong-Request-ID"), "10.0.0.7-8000-4242-17-2-1733425000.007");
	/* A whole second: ".000", as "%0.3f" prints it. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"connection\":{\"server_addr\":\"::1\",\"server_port\":443,"
	                  "\"worker_pid\":1,\"serial\":1,\"requests\":1,"
	                  "\"time_ms\":1733425001000}}");
	assert_string_equal(generated("Kong-Request-ID"), "::1-443-1-1-1-1733425001.000");
}

/* Without the connection fields (a gateway that does not send them) the
 * tracker cannot be Kong's: an error reply that says why, which the
 * plugin's fail_open (true by default) turns into a request without id. */
static void tracker_without_connection(void **state)
{
	harness_conf_ok(&H, "{\"generator\":\"tracker\"}");
	assert_true(shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}") < 0);
	assert_string_equal(shmring_test_reply_error(&H),
	                    "correlation-id: the tracker generator needs the snapshot's "
	                    "connection fields");
	/* An incoming id needs no generator. */
	assert_int_equal(shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                                   "{\"headers\":{\"kong-request-id\":\"abc\"}}"),
	                 0);
}

static void incoming_id_kept(void **state)
{
	harness_conf_ok(&H, "{\"header_name\":\"X-Request-Id\",\"echo_downstream\":true}");
	/* Headers arrive lower-case; the name compares case-insensitively. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"x-request-id\":\"abc-123\"}}");
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_SET_REQ_HEADER), 0);
	json_t *ctx = shmring_test_action_op(&H, SHMRING_ACT_SET_CTX, 0);
	assert_string_equal(json_string_value(json_array_get(ctx, 2)), "abc-123");
	json_t *echo = shmring_test_action_op(&H, SHMRING_ACT_SET_RESP_HEADER, 0);
	assert_non_null(echo);
	assert_string_equal(json_string_value(json_array_get(echo, 1)), "X-Request-Id");
	assert_string_equal(json_string_value(json_array_get(echo, 2)), "abc-123");
	/* An empty one is replaced, like Kong. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"x-request-id\":\"\"}}");
	assert_matches(generated("X-Request-Id"), "^" UUID_RE "#[0-9]+$");
	/* Another header of the same name prefix does not count. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"x-request-id-2\":\"zzz\"}}");
	generated("X-Request-Id");
}

static void echo_downstream(void **state)
{
	harness_conf_ok(&H, "{\"echo_downstream\":true,\"generator\":\"uuid\"}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	const char *id = generated("Kong-Request-ID");
	json_t *echo = shmring_test_action_op(&H, SHMRING_ACT_SET_RESP_HEADER, 0);
	assert_non_null(echo);
	assert_string_equal(json_string_value(json_array_get(echo, 1)), "Kong-Request-ID");
	assert_string_equal(json_string_value(json_array_get(echo, 2)), id);

	/* HEADER_FILTER echoes the id kept in ctx. */
	assert_int_equal(
	    shmring_test_call(&H, SHMRING_PHASE_HEADER_FILTER,
	                      "{\"status\":200,\"ctx\":{\"correlation_id\":\"from-access\"}}"),
	    0);
	echo = shmring_test_action_op(&H, SHMRING_ACT_SET_RESP_HEADER, 0);
	assert_non_null(echo);
	assert_string_equal(json_string_value(json_array_get(echo, 2)), "from-access");
	/* Without a kept id, nothing. */
	shmring_test_call(&H, SHMRING_PHASE_HEADER_FILTER, "{\"status\":200}");
	assert_int_equal(json_array_size(shmring_test_actions(&H)), 0);
	/* Without echo_downstream, header_filter adds nothing. */
	harness_conf_ok(&H, "{}");
	shmring_test_call(&H, SHMRING_PHASE_HEADER_FILTER,
	                  "{\"status\":200,\"ctx\":{\"correlation_id\":\"x\"}}");
	assert_int_equal(json_array_size(shmring_test_actions(&H)), 0);
}

static void config_errors(void **state)
{
	harness_conf_refused(
	    &H, "{\"generator\":\"uuid4\"}",
	    "config.generator must be one of \"uuid\", \"uuid#counter\", \"tracker\" "
	    "(got \"uuid4\")");
	harness_conf_refused(&H, "{\"generator\":\"\"}",
	                     "config.generator must be one of \"uuid\", \"uuid#counter\", "
	                     "\"tracker\" (got \"\")");
	harness_conf_refused(&H, "{\"generator\":1}", "config.generator must be a string");
	harness_conf_refused(&H, "{\"header_name\":\"bad header\"}",
	                     "config.header_name 'bad header' is not a valid header name");
	harness_conf_refused(&H, "{\"header_name\":\"\"}",
	                     "config.header_name: length must be at least 1");
	harness_conf_refused(&H, "{\"echo_downstream\":\"yes\"}",
	                     "config.echo_downstream must be a boolean");
	harness_conf_refused(&H, "{\"echo\":true}", "unknown config field 'echo'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(uuid_generator),
	    cmocka_unit_test(uuid_counter_generator_is_default),
	    cmocka_unit_test(tracker_generator),
	    cmocka_unit_test(tracker_without_connection),
	    cmocka_unit_test(incoming_id_kept),
	    cmocka_unit_test(echo_downstream),
	    cmocka_unit_test(config_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
