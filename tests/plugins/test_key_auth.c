/* SPDX-License-Identifier: MIT */
/* key-auth: every response of Kong's key-auth, every config error, the
 * credentials file and its reload. */
#include "daemon.h"
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONSUMERS                                                                                  \
	"\"consumers\":[{\"id\":\"c-1\",\"username\":\"demo\",\"keyauth_credentials\":"            \
	"[{\"id\":\"cred-1\",\"key\":\"demo-key\"}]},"                                             \
	"{\"id\":\"c-2\",\"custom_id\":\"cust-2\",\"keyauth_credentials\":"                        \
	"[{\"id\":\"cred-2\",\"key\":\"other-key\"},{\"id\":\"cred-3\",\"key\":\"k3\"}]},"         \
	"{\"id\":\"anon\",\"username\":\"anonymous\"}]"

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

/* conf_new must refuse json with a message containing want, and not leak
 * a key in it. */
static void conf_refused(const char *json, const char *want)
{
	harness_conf_refused(&H, json, want);
	if (strstr(H.err, "demo-key"))
		fail_msg("error message leaks a key: %s", H.err);
}

/* The reply must be one EXIT with status, body and WWW-Authenticate. */
static void expect_401(const char *body, const char *www)
{
	json_t *x = shmring_test_action_op(&H, SHMRING_ACT_EXIT, 0);
	if (!x)
		fail_msg("no exit in %s", shmring_test_reply_text(&H));
	assert_int_equal(json_integer_value(json_array_get(x, 1)), 401);
	assert_string_equal(json_string_value(json_array_get(x, 2)), body);
	json_t *hdrs = json_array_get(x, 3);
	assert_string_equal(json_string_value(json_object_get(hdrs, "WWW-Authenticate")), www);
	assert_string_equal(json_string_value(json_object_get(hdrs, "Content-Type")),
	                    "application/json; charset=utf-8");
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_AUTHENTICATE), 0);
	assert_null(shmring_test_set_header(&H, "X-Consumer-ID"));
}

/* The reply must be NEED_ENTITIES asking for exactly `want` (a JSON array
 * of [kind, key]), in order. */
static void expect_lookups(const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	assert_non_null(w);
	if (json_integer_value(json_object_get(H.reply, "s")) != SHMRING_REPLY_NEED_ENTITIES)
		fail_msg("not NEED_ENTITIES: %s", shmring_test_reply_text(&H));
	json_t *a = shmring_test_actions(&H);
	assert_int_equal(json_array_size(a), json_array_size(w));
	for (size_t i = 0; i < json_array_size(w); i++) {
		json_t *x = json_array_get(a, i), *y = json_array_get(w, i);
		assert_int_equal(json_integer_value(json_array_get(x, 0)), SHMRING_ACT_LOOKUP);
		assert_int_equal(json_integer_value(json_array_get(x, 1)),
		                 json_integer_value(json_array_get(y, 0)));
		assert_string_equal(json_string_value(json_array_get(x, 2)),
		                    json_string_value(json_array_get(y, 1)));
	}
	json_decref(w);
}

static void expect_consumer(const char *id, const char *username, const char *custom_id,
                            const char *cred)
{
	json_t *a = shmring_test_action_op(&H, SHMRING_ACT_AUTHENTICATE, 0);
	if (!a)
		fail_msg("no authenticate in %s", shmring_test_reply_text(&H));
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_EXIT), 0);
	json_t *consumer = json_array_get(a, 1);
	assert_string_equal(json_string_value(json_object_get(consumer, "id")), id);
	assert_string_equal(shmring_test_set_header(&H, "X-Consumer-ID"), id);
	if (username) {
		assert_string_equal(json_string_value(json_object_get(consumer, "username")),
		                    username);
		assert_string_equal(shmring_test_set_header(&H, "X-Consumer-Username"), username);
	} else {
		assert_null(json_object_get(consumer, "username"));
		assert_true(shmring_test_cleared(&H, "X-Consumer-Username"));
	}
	if (custom_id) {
		assert_string_equal(shmring_test_set_header(&H, "X-Consumer-Custom-ID"), custom_id);
	} else {
		assert_true(shmring_test_cleared(&H, "X-Consumer-Custom-ID"));
	}
	if (cred) {
		assert_string_equal(json_string_value(json_array_get(a, 2)), cred);
		assert_string_equal(shmring_test_set_header(&H, "X-Credential-Identifier"), cred);
		assert_true(shmring_test_cleared(&H, "X-Anonymous-Consumer"));
		assert_null(shmring_test_set_header(&H, "X-Anonymous-Consumer"));
	} else {
		assert_true(json_is_null(json_array_get(a, 2)));
		assert_true(shmring_test_cleared(&H, "X-Credential-Identifier"));
		assert_string_equal(shmring_test_set_header(&H, "X-Anonymous-Consumer"), "true");
	}
}

static void key_in_header_authenticates(void **state)
{
	harness_conf_ok(&H, "{" CONSUMERS "}");
	assert_int_equal(
	    shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                      "{\"method\":\"GET\",\"headers\":{\"apikey\":\"demo-key\"}}"),
	    0);
	expect_consumer("c-1", "demo", NULL, "cred-1");
	/* The key stays visible upstream without hide_credentials. */
	assert_false(shmring_test_cleared(&H, "apikey"));
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_SET_QUERY), 0);
}

static void key_in_query_authenticates(void **state)
{
	harness_conf_ok(&H, "{" CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"query\":{\"apikey\":\"other-key\"}}");
	expect_consumer("c-2", NULL, "cust-2", "cred-2");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"query\":{\"apikey\":\"k3\"}}");
	expect_consumer("c-2", NULL, "cust-2", "cred-3");
}

static void header_wins_over_query(void **state)
{
	harness_conf_ok(&H, "{" CONSUMERS "}");
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{\"headers\":{\"apikey\":\"demo-key\"},\"query\":{\"apikey\":\"nope\"}}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
}

static void no_key_is_401(void **state)
{
	harness_conf_ok(&H, "{" CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"x-other\":\"demo-key\"}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	/* An empty key counts as none. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"\"}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	/* A flag (?apikey) is not a key. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"query\":{\"apikey\":true}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
}

static void wrong_key_is_401_unauthorized(void **state)
{
	harness_conf_ok(&H, "{" CONSUMERS "}");
	const char *wrong[] = {
	    "{\"headers\":{\"apikey\":\"demo-kez\"}}", "{\"headers\":{\"apikey\":\"demo-key \"}}",
	    "{\"headers\":{\"apikey\":\"demo-ke\"}}",  "{\"headers\":{\"apikey\":\"DEMO-KEY\"}}",
	    "{\"query\":{\"apikey\":\"x\"}}",
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		shmring_test_call(&H, SHMRING_PHASE_ACCESS, wrong[i]);
		expect_401("{\"message\":\"Unauthorized\"}", "Key");
	}
}

static void realm_in_www_authenticate(void **state)
{
	harness_conf_ok(&H, "{\"realm\":\"shmring\"," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key realm=\"shmring\"");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"bad\"}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Key realm=\"shmring\"");
}

static void duplicate_key_in_request_is_401(void **state)
{
	harness_conf_ok(&H, "{" CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":[\"demo-key\",\"demo-key\"]}}");
	expect_401("{\"message\":\"Duplicate API key found\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"query\":{\"apikey\":[\"a\",\"demo-key\"]}}");
	expect_401("{\"message\":\"Duplicate API key found\"}", "Key");
}

static void key_names_in_order_and_case_insensitive_headers(void **state)
{
	harness_conf_ok(&H, "{\"key_names\":[\"X-API-Key\",\"token\"]," CONSUMERS "}");
	/* Headers arrive lower-case in the snapshot. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"x-api-key\":\"demo-key\"}}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"query\":{\"token\":\"other-key\"}}");
	expect_consumer("c-2", NULL, "cust-2", "cred-2");
	/* apikey is no longer a key name. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"demo-key\"}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
}

/* Like ngx.req.get_headers(): a key name with '_' also finds the '-' header. */
static void underscore_key_name_finds_dashed_header(void **state)
{
	harness_conf_ok(&H,
	                "{\"key_names\":[\"api_key\"],\"hide_credentials\":true," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"api-key\":\"demo-key\"}}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	assert_true(shmring_test_cleared(&H, "api-key"));
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"api_key\":\"other-key\"}}");
	expect_consumer("c-2", NULL, "cust-2", "cred-2");
	/* The query name stays exact. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"query\":{\"api-key\":\"demo-key\"}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
}

static void key_in_header_false_ignores_headers(void **state)
{
	harness_conf_ok(&H, "{\"key_in_header\":false," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"demo-key\"}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	harness_conf_ok(&H, "{\"key_in_query\":false," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"query\":{\"apikey\":\"demo-key\"}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
}

static void hide_credentials(void **state)
{
	harness_conf_ok(&H, "{\"hide_credentials\":true," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"demo-key\"}}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	assert_true(shmring_test_cleared(&H, "apikey"));
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_SET_QUERY), 0);

	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"query\":{\"apikey\":\"demo-key\",\"b\":\"x y\",\"a\":[\"1\",\"2\"],"
	                  "\"flag\":true}}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	json_t *q = shmring_test_action_op(&H, SHMRING_ACT_SET_QUERY, 0);
	assert_non_null(q);
	assert_string_equal(json_string_value(json_array_get(q, 1)), "a=1&a=2&b=x%20y&flag");

	/* Key in the header, same name in the query: both go (Kong). */
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{\"headers\":{\"apikey\":\"demo-key\"},\"query\":{\"apikey\":\"x\",\"z\":\"1\"}}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	assert_true(shmring_test_cleared(&H, "apikey"));
	q = shmring_test_action_op(&H, SHMRING_ACT_SET_QUERY, 0);
	assert_non_null(q);
	assert_string_equal(json_string_value(json_array_get(q, 1)), "z=1");
}

static void preflight(void **state)
{
	harness_conf_ok(&H, "{\"run_on_preflight\":false," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"method\":\"OPTIONS\"}");
	assert_int_equal(json_array_size(shmring_test_actions(&H)), 0);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"method\":\"GET\"}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	/* Default: preflight requests are authenticated too. */
	harness_conf_ok(&H, "{" CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"method\":\"OPTIONS\"}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
}

static void anonymous(void **state)
{
	harness_conf_ok(&H, "{\"anonymous\":\"anonymous\"," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	expect_consumer("anon", "anonymous", NULL, NULL);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"wrong\"}}");
	expect_consumer("anon", "anonymous", NULL, NULL);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"demo-key\"}}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	/* Logical OR: an earlier auth plugin already set a credential. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"credential\":\"jwt-cred\",\"consumer\":{\"id\":\"x\"}}");
	assert_int_equal(json_array_size(shmring_test_actions(&H)), 0);
	/* By id works too. */
	harness_conf_ok(&H, "{\"anonymous\":\"anon\"," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	expect_consumer("anon", "anonymous", NULL, NULL);
}

/* The body set by the last reply (set_body), or NULL. */
static const char *set_body(void)
{
	json_t *x = shmring_test_action_op(&H, SHMRING_ACT_SET_BODY, 0);
	return x ? json_string_value(json_array_get(x, 1)) : NULL;
}

#define CT(t) "\"headers\":{\"content-type\":\"" t "\"}"

/* key_in_body, as kong.request.get_body reads the three body types. */
static void key_in_body(void **state)
{
	harness_conf_ok(&H, "{\"key_in_body\":true," CONSUMERS "}");
	/* JSON, form, multipart: the key authenticates */
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{" CT("application/json") ",\"body\":\"{\\\"apikey\\\":\\\"demo-key\\\"}\"}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	assert_null(set_body()); /* no hide_credentials: the body is left alone */
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{" CT("application/x-www-form-urlencoded; charset=utf-8") ",\"body\":\"a=1&apikey="
	                                                               "demo%2Dkey\"}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{" CT("multipart/form-data; boundary=XyZ") ",\"body\":\"--XyZ\\r\\nContent-"
	                                                "Disposition: form-data; "
	                                                "name=\\\"apikey\\\"\\r\\n\\r\\ndemo-"
	                                                "key\\r\\n--XyZ--\\r\\n\"}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	/* A header key comes first; the body is not even parsed. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":\"other-key\",\"content-type\":"
	                  "\"application/json\"},\"body\":\"{bad\"}");
	expect_consumer("c-2", NULL, "cust-2", "cred-2");
	/* Kong's EMPTY: bad JSON, a JSON string, another type, no
	 * Content-Type, a body the gateway could not send, a truncated
	 * multipart body: no key. */
	static const char *const empty[] = {
	    "{" CT("application/json") ",\"body\":\"{\\\"apikey\\\":\"}",
	    "{" CT("application/json") ",\"body\":\"\\\"demo-key\\\"\"}",
	    "{" CT("text/plain") ",\"body\":\"apikey=demo-key\"}",
	    "{\"body\":\"apikey=demo-key\"}",
	    "{" CT("application/x-www-form-urlencoded") ",\"body_error\":\"too large\"}",
	    "{" CT(
	        "multipart/form-data; boundary=XyZ") ",\"body\":\"--XyZ\\r\\nContent-Disposition: "
	                                             "form-data; "
	                                             "name=\\\"apikey\\\"\\r\\n\\r\\ndemo-key\"}",
	};
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		shmring_test_call(&H, SHMRING_PHASE_ACCESS, empty[i]);
		expect_401("{\"message\":\"No API key found in request\"}", "Key");
	}
	/* A table is a duplicate key (Kong: type(v) == "table"); a number or
	 * a flag is no key. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{" CT("application/json") ",\"body\":\"{\\\"apikey\\\":[\\\"a\\\"]}\"}");
	expect_401("{\"message\":\"Duplicate API key found\"}", "Key");
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{" CT("application/x-www-form-urlencoded") ",\"body\":\"apikey=a&apikey=b\"}");
	expect_401("{\"message\":\"Duplicate API key found\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{" CT("application/x-www-form-urlencoded") ",\"body\":\"apikey\"}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{" CT("application/json") ",\"body\":\"{\\\"apikey\\\":5}\"}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");

	/* hide_credentials: the field leaves the body, the rest is kept. */
	harness_conf_ok(&H, "{\"key_in_body\":true,\"hide_credentials\":true," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{" CT("application/json") ",\"body\":\"{\\\"a\\\": 1, "
	                                             "\\\"apikey\\\":\\\"demo-key\\\"}\"}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	assert_string_equal(set_body(), "{\"a\":1}");
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{" CT("application/x-www-form-urlencoded") ",\"body\":\"z=2&apikey=demo-key&b=a+b\"}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	assert_string_equal(set_body(), "b=a%20b&z=2");
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{" CT(
	        "multipart/form-data; boundary=XyZ") ",\"body\":\"--XyZ\\r\\nContent-Disposition: "
	                                             "form-data; "
	                                             "name=\\\"apikey\\\"\\r\\n\\r\\ndemo-"
	                                             "key\\r\\n--XyZ\\r\\n"
	                                             "Content-Disposition: form-data; "
	                                             "name=\\\"f\\\"; filename=\\\"a.txt\\\"\\r\\n"
	                                             "Content-Type: "
	                                             "text/"
	                                             "plain\\r\\n\\r\\nhello\\r\\n--XyZ--"
	                                             "\\r\\n\"}");
	expect_consumer("c-1", "demo", NULL, "cred-1");
	assert_string_equal(set_body(), "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
	                                "filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n"
	                                "hello\r\n--XyZ--\r\n");
	/* The key came from a header: the body is re-encoded all the same. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":\"demo-key\",\"content-type\":"
	                  "\"application/json\"},\"body\":\"{ \\\"a\\\" : [1, 2.5] }\"}");
	assert_string_equal(set_body(), "{\"a\":[1,2.5]}");
	assert_int_equal(shmring_test_cleared(&H, "apikey"), 1);
	/* An unparsable body is left alone. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":\"demo-key\",\"content-type\":"
	                  "\"application/json\"},\"body\":\"{\"}");
	assert_null(set_body());
}

static void config_errors(void **state)
{
	conf_refused("{\"key_names\":[]," CONSUMERS "}", "key_names must name at least one key");
	conf_refused("{\"key_names\":{}," CONSUMERS "}", "key_names must name at least one key");
	conf_refused("{\"key_names\":\"apikey\"," CONSUMERS "}",
	             "config.key_names must be an array");
	conf_refused("{\"key_names\":[\"bad name\"]," CONSUMERS "}",
	             "config.key_names[1]: bad header name 'bad name', allowed characters are "
	             "A-Z, a-z, 0-9, '_', and '-'");
	conf_refused("{\"key_in_header\":false,\"key_in_query\":false," CONSUMERS "}",
	             "are all false");
	conf_refused("{\"hide_credentials\":\"yes\"," CONSUMERS "}",
	             "config.hide_credentials must be a boolean");
	conf_refused("{\"key_name\":[\"apikey\"]," CONSUMERS "}",
	             "unknown config field 'key_name'");
	conf_refused("{\"consumers\":{\"id\":\"x\"}}", "config.consumers must be an array");
	conf_refused("{\"anonymous\":\"nobody\"," CONSUMERS "}",
	             "config.anonymous names consumer 'nobody'");
	conf_refused("{\"realm\":\"a\\\"b\"," CONSUMERS "}", "config.realm must not contain");
	conf_refused("{\"consumers\":[{\"id\":\"x\"}]}", "consumers[0] needs a username or a "
	                                                 "custom_id");
	conf_refused("{\"consumers\":[{\"username\":\"x\"}]}",
	             "config.consumers[1].id is required");
	conf_refused("{\"consumers\":[{\"id\":\"x\",\"username\":\"u\",\"keyauth_credentials\":"
	             "[{\"id\":\"c\",\"key\":\"\"}]}]}",
	             "config.consumers[1].keyauth_credentials[1].key: length must be at least 1");
	conf_refused("{\"consumers\":[{\"id\":\"x\",\"username\":\"u\",\"keyauth_credentials\":"
	             "[{\"id\":\"c\",\"kye\":\"k\"}]}]}",
	             "unknown config field 'consumers[1].keyauth_credentials[1].kye'");
	conf_refused("{\"consumers\":[{\"id\":\"x\",\"username\":\"u\",\"keyauth_credentials\":"
	             "[{\"key\":\"k\"}]}]}",
	             "config.consumers[1].keyauth_credentials[1].id is required");
	conf_refused("{\"consumers\":[{\"id\":\"x\",\"username\":\"u\",\"keyauth_credentials\":"
	             "[{\"id\":\"c\",\"key\":42}]}]}",
	             "config.consumers[1].keyauth_credentials[1].key must be a string");
	/* Duplicate keys: within a consumer and across consumers. */
	conf_refused("{\"consumers\":[{\"id\":\"a\",\"username\":\"a\",\"keyauth_credentials\":"
	             "[{\"id\":\"1\",\"key\":\"demo-key\"},{\"id\":\"2\",\"key\":\"demo-key\"}]}]}",
	             "duplicate key-auth key");
	conf_refused("{\"consumers\":[{\"id\":\"a\",\"username\":\"a\",\"keyauth_credentials\":"
	             "[{\"id\":\"1\",\"key\":\"demo-key\"}]},{\"id\":\"b\",\"username\":\"b\","
	             "\"keyauth_credentials\":[{\"id\":\"2\",\"key\":\"demo-key\"}]}]}",
	             "duplicate key-auth key (consumer 'b'");
	conf_refused("{\"consumers\":[{\"id\":\"a\",\"username\":\"a\"},{\"id\":\"a\","
	             "\"username\":\"b\"}]}",
	             "duplicate consumer id 'a'");
	conf_refused("{\"consumers\":[{\"id\":\"a\",\"username\":\"u\"},{\"id\":\"b\","
	             "\"username\":\"u\"}]}",
	             "duplicate consumer username 'u'");
	conf_refused("{\"credentials_file\":\"/tmp/nonexistent-shmring/creds.json\"}",
	             "cannot open /tmp/nonexistent-shmring/creds.json: No such file");
	conf_refused("[1,2]", "config must be a record (a map)");
}

/* ---- credentials file -------------------------------------------------------- */

static char dir[] = "/tmp/shmring-keyauth-XXXXXX";

static void write_file(const char *name, const char *content)
{
	char path[256], tmp[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	/* rename: a new inode, like a config manager replacing the file. */
	assert_int_equal(rename(tmp, path), 0);
}

static void credentials_file_and_reload(void **state)
{
	assert_non_null(mkdtemp(dir));
	write_file("creds.json", "{\"consumers\":[{\"id\":\"f-1\",\"username\":\"filed\","
	                         "\"keyauth_credentials\":[{\"id\":\"fc-1\",\"key\":\"file-key\"}],"
	                         "\"jwt_secrets\":[{\"key\":\"iss-1\",\"secret\":\"s\"}]}]}");
	char conf[512];
	snprintf(conf, sizeof(conf),
	         "{\"credentials_file\":\"%s/creds.json\",\"reload_interval_ms\":0," CONSUMERS "}",
	         dir);
	harness_conf_ok(&H, conf);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"file-key\"}}");
	expect_consumer("f-1", "filed", NULL, "fc-1");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"demo-key\"}}");
	expect_consumer("c-1", "demo", NULL, "cred-1"); /* inline ones still there */

	/* A new version: the old key goes, a new one comes. */
	write_file("creds.json",
	           "{\"consumers\":[{\"id\":\"f-2\",\"username\":\"filed2\","
	           "\"keyauth_credentials\":[{\"id\":\"fc-2\",\"key\":\"new-key\"}]}]}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"new-key\"}}");
	expect_consumer("f-2", "filed2", NULL, "fc-2");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"file-key\"}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Key");

	/* A broken version is refused, logged once, and the last good one stays. */
	write_file("creds.json", "{\"consumers\":[{\"id\":\"f-3\"");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"new-key\"}}");
	expect_consumer("f-2", "filed2", NULL, "fc-2");
	json_t *log = shmring_test_action_op(&H, SHMRING_ACT_LOG, 0);
	assert_non_null(log);
	assert_non_null(
	    strstr(json_string_value(json_array_get(log, 2)), "keeping the previous credentials"));
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"new-key\"}}");
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_LOG), 0);

	/* A version that duplicates an inline key is refused too. */
	write_file("creds.json",
	           "{\"consumers\":[{\"id\":\"f-4\",\"username\":\"f4\","
	           "\"keyauth_credentials\":[{\"id\":\"x\",\"key\":\"demo-key\"}]}]}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"new-key\"}}");
	expect_consumer("f-2", "filed2", NULL, "fc-2");
	log = shmring_test_action_op(&H, SHMRING_ACT_LOG, 0);
	assert_non_null(log);
	assert_non_null(
	    strstr(json_string_value(json_array_get(log, 2)), "duplicate key-auth key"));

	/* Without the inline consumers, that file alone is fine. */
	snprintf(conf, sizeof(conf), "{\"credentials_file\":\"%s/creds.json\"}", dir);
	harness_conf_ok(&H, conf);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"demo-key\"}}");
	expect_consumer("f-4", "f4", NULL, "x");
}

static void bad_files_refused_at_conf(void **state)
{
	char conf[512];
	snprintf(conf, sizeof(conf), "{\"credentials_file\":\"%s/bad.json\"}", dir);
	write_file("bad.json", "{\"consumers\":[{\"id\":\"f\",\"username\":\"u\",\"id\":\"g\"}]}");
	conf_refused(conf, "duplicate object key");
	write_file("bad.json", "{\"consumer\":[]}");
	conf_refused(conf, "an unknown top-level field (expected"); /* not quoted */
	write_file("bad.json", "[]");
	conf_refused(conf, "expected {\"consumers\": [...]}");
	write_file("bad.json", "{\"consumers\":[{\"id\":\"f\",\"username\":\"u\","
	                       "\"keyauth_credentials\":[{\"id\":\"a\",\"key\":\"demo-key\"},"
	                       "{\"id\":\"b\",\"key\":\"demo-key\"}]}]}");
	conf_refused(conf, "duplicate key-auth key");
	write_file("bad.json", "not json");
	conf_refused(conf, "line 1");
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Odd snapshots (wrong types, huge counts) get an answer, never a crash. */
static void hostile_snapshots(void **state)
{
	harness_conf_ok(&H, "{\"hide_credentials\":true," CONSUMERS "}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":42}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":[7]},\"query\":{\"apikey\":{\"a\":1}}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"query\":{\"apikey\":[]}}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
	/* 600 query args with hide_credentials: the rebuild refuses clearly. */
	size_t cap = 600 * 32 + 64, o = 0;
	char *big = malloc(cap);
	o += (size_t)snprintf(big + o, cap - o, "{\"query\":{\"apikey\":\"demo-key\"");
	for (int i = 0; i < 600; i++)
		o += (size_t)snprintf(big + o, cap - o, ",\"q%d\":\"v\"", i);
	snprintf(big + o, cap - o, "}}");
	assert_true(shmring_test_call(&H, SHMRING_PHASE_ACCESS, big) < 0);
	assert_int_equal(json_integer_value(json_object_get(H.reply, "s")), 1);
	assert_string_equal(json_string_value(json_object_get(H.reply, "e")),
	                    "key-auth: more than 512 query args");
	free(big);
}

/* ---- credentials from the gateway (no consumers, no file) ---------------- */

#define GW_CRED                                                                                    \
	"[2,\"gw-key\",{\"id\":\"cred-gw\",\"consumer\":{\"id\":\"c-gw\","                         \
	"\"username\":\"gw-user\",\"custom_id\":\"gw-cust\"}}]"

static void gateway_miss_then_answer_then_hit(void **state)
{
	(void)state;
	harness_conf_ok(&H, "{\"hide_credentials\":true}");
	/* A miss: the hook's own actions (hide_credentials) give way to one
	 * look-up. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"gw-key\"}}");
	expect_lookups("[[2,\"gw-key\"]]");
	/* The resent record carries the answer. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":\"gw-key\"},\"entities\":[" GW_CRED "]}");
	expect_consumer("c-gw", "gw-user", "gw-cust", "cred-gw");
	assert_true(shmring_test_cleared(&H, "apikey"));
	/* A hit: no look-up, no answer needed. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"gw-key\"}}");
	expect_consumer("c-gw", "gw-user", "gw-cust", "cred-gw");
	/* Still Kong's answers without a key. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{}");
	expect_401("{\"message\":\"No API key found in request\"}", "Key");
}

static void gateway_negative_answer_is_kept(void **state)
{
	(void)state;
	harness_conf_ok(&H, "{}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"nope\"}}");
	expect_lookups("[[2,\"nope\"]]");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":\"nope\"},\"entities\":[[2,\"nope\",null]]}");
	expect_401("{\"message\":\"Unauthorized\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"nope\"}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Key");
	/* An answer marked "this request only" (false) is used, not kept. */
	shmring_test_call(
	    &H, SHMRING_PHASE_ACCESS,
	    "{\"headers\":{\"apikey\":\"once\"},\"entities\":[[2,\"once\",null,false]]}");
	expect_401("{\"message\":\"Unauthorized\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"once\"}}");
	expect_lookups("[[2,\"once\"]]");
}

static void gateway_anonymous_in_the_same_round_trip(void **state)
{
	(void)state;
	harness_conf_ok(&H, "{\"anonymous\":\"anon-user\"}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"bad\"}}");
	expect_lookups("[[2,\"bad\"],[1,\"anon-user\"]]");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                  "{\"headers\":{\"apikey\":\"bad\"},\"entities\":[[2,\"bad\",null],"
	                  "[1,\"anon-user\",{\"id\":\"c-anon\",\"username\":\"anon-user\"}]]}");
	expect_consumer("c-anon", "anon-user", NULL, NULL);
	/* An anonymous consumer the gateway does not have: Kong's 500. */
	harness_conf_ok(&H, "{\"anonymous\":\"ghost\"}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"entities\":[[1,\"ghost\",null]]}");
	json_t *x = shmring_test_action_op(&H, SHMRING_ACT_EXIT, 0);
	assert_non_null(x);
	assert_int_equal(json_integer_value(json_array_get(x, 1)), 500);
	assert_string_equal(json_string_value(json_array_get(x, 2)),
	                    "{\"message\":\"anonymous consumer ghost is configured but doesn't "
	                    "exist\"}");
}

static void gateway_cache_is_bounded(void **state)
{
	(void)state;
	harness_conf_ok(&H, "{}");
	char snap[256];
	for (int i = 0; i < 10 * SHMRING_TEST_ENTITY_CACHE; i++) {
		snprintf(snap, sizeof(snap),
		         "{\"headers\":{\"apikey\":\"rnd-%d\"},\"entities\":[[2,\"rnd-%d\",null]]}",
		         i, i);
		shmring_test_call(&H, SHMRING_PHASE_ACCESS, snap);
		expect_401("{\"message\":\"Unauthorized\"}", "Key");
		assert_true(shmringd__entity_cache_count(H.entities) <= SHMRING_TEST_ENTITY_CACHE);
	}
	assert_int_equal(shmringd__entity_cache_count(H.entities), SHMRING_TEST_ENTITY_CACHE);
	/* The newest stay, the oldest went. */
	snprintf(snap, sizeof(snap), "{\"headers\":{\"apikey\":\"rnd-%d\"}}",
	         10 * SHMRING_TEST_ENTITY_CACHE - 1);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, snap);
	expect_401("{\"message\":\"Unauthorized\"}", "Key");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"headers\":{\"apikey\":\"rnd-0\"}}");
	expect_lookups("[[2,\"rnd-0\"]]");
}

/* The cache is bounded in bytes too (entity_cache_entries x 2 KiB, what a
 * channel's memory budget charges for it): large answers leave room for
 * fewer of them. */
static void gateway_cache_bytes_are_bounded(void **state)
{
	(void)state;
	harness_conf_ok(&H, "{}");
	static char snap[8192], name[6001];
	memset(name, 'n', sizeof(name) - 1);
	for (int i = 0; i < SHMRING_TEST_ENTITY_CACHE; i++) {
		snprintf(snap, sizeof(snap),
		         "{\"headers\":{\"apikey\":\"big-%d\"},\"entities\":[[2,\"big-%d\","
		         "{\"id\":\"cred-%d\",\"key\":\"big-%d\",\"consumer\":{\"id\":\"c-%d\","
		         "\"username\":\"%s\"}}]]}",
		         i, i, i, i, i, name);
		shmring_test_call(&H, SHMRING_PHASE_ACCESS, snap);
	}
	uint32_t n = shmringd__entity_cache_count(H.entities);
	assert_true(n > 0);
	assert_true((uint64_t)n * 6000 <= shmringd__entity_cache_bytes(SHMRING_TEST_ENTITY_CACHE));
}

/* FORGET as the daemon applies it. */
static void forget(const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	shmring_test_pack_json(&sb, j);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(shmringd__entity_forget(H.entities, &u.data), 0);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	json_decref(j);
}

static void gateway_forget(void **state)
{
	(void)state;
	harness_conf_ok(&H, "{}");
	const char *with_answer =
	    "{\"headers\":{\"apikey\":\"gw-key\"},\"entities\":[" GW_CRED "]}";
	const char *plain = "{\"headers\":{\"apikey\":\"gw-key\"}}";
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, with_answer);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, plain);
	expect_consumer("c-gw", "gw-user", "gw-cust", "cred-gw");
	/* The credential itself. */
	forget("{\"entities\":[[2,\"gw-key\"]]}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, plain);
	expect_lookups("[[2,\"gw-key\"]]");
	/* Its consumer: a credential answered with it goes too. */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, with_answer);
	forget("{\"entities\":[[1,\"c-gw\"]]}");
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, plain);
	expect_lookups("[[2,\"gw-key\"]]");
	/* Everything (a declarative reload). */
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, with_answer);
	forget("{\"all\":true}");
	assert_int_equal(shmringd__entity_cache_count(H.entities), 0);
	shmring_test_call(&H, SHMRING_PHASE_ACCESS, plain);
	expect_lookups("[[2,\"gw-key\"]]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(key_in_header_authenticates),
	    cmocka_unit_test(gateway_cache_bytes_are_bounded),
	    cmocka_unit_test(key_in_query_authenticates),
	    cmocka_unit_test(header_wins_over_query),
	    cmocka_unit_test(no_key_is_401),
	    cmocka_unit_test(wrong_key_is_401_unauthorized),
	    cmocka_unit_test(realm_in_www_authenticate),
	    cmocka_unit_test(duplicate_key_in_request_is_401),
	    cmocka_unit_test(key_names_in_order_and_case_insensitive_headers),
	    cmocka_unit_test(underscore_key_name_finds_dashed_header),
	    cmocka_unit_test(key_in_header_false_ignores_headers),
	    cmocka_unit_test(hide_credentials),
	    cmocka_unit_test(key_in_body),
	    cmocka_unit_test(preflight),
	    cmocka_unit_test(anonymous),
	    cmocka_unit_test(config_errors),
	    cmocka_unit_test(credentials_file_and_reload),
	    cmocka_unit_test(bad_files_refused_at_conf),
	    cmocka_unit_test(hostile_snapshots),
	    cmocka_unit_test(gateway_miss_then_answer_then_hit),
	    cmocka_unit_test(gateway_negative_answer_is_kept),
	    cmocka_unit_test(gateway_anonymous_in_the_same_round_trip),
	    cmocka_unit_test(gateway_cache_is_bounded),
	    cmocka_unit_test(gateway_forget),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
