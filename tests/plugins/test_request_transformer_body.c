/* SPDX-License-Identifier: MIT */
/* request-transformer's body rules: Kong's order (remove, rename, replace,
 * add, append; multipart: rename first, no append) and rules for JSON,
 * form and multipart bodies, json_types, Content-Length, http_method
 * moving a form body into the query, and the answers for bodies it cannot
 * transform. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
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

static void run(const char *snapshot)
{
	if (shmring_test_call(&H, SHMRING_PHASE_ACCESS, snapshot) != 0)
		fail_msg("access failed: %s", shmring_test_reply_text(&H));
}

/* Run access on a request with Content-Type ct and body (NULL: the
 * gateway sent body_error instead). */
static void run_body(const char *ct, const char *body)
{
	json_t *s = json_pack("{s:{s:s}}", "headers", "content-type", ct);
	if (body)
		json_object_set_new(s, "body", json_string(body));
	else
		json_object_set_new(s, "body_error", json_string("too large"));
	char *text = json_dumps(s, JSON_COMPACT);
	if (shmring_test_call(&H, SHMRING_PHASE_ACCESS, text) != 0)
		fail_msg("access failed: %s", shmring_test_reply_text(&H));
	free(text);
	json_decref(s);
}

/* The new body, or NULL if the reply leaves it alone; its Content-Length
 * must match. */
static const char *new_body(void)
{
	json_t *x = shmring_test_action_op(&H, SHMRING_ACT_SET_BODY, 0);
	if (!x) {
		assert_null(shmring_test_set_header(&H, "Content-Length"));
		return NULL;
	}
	const char *b = json_string_value(json_array_get(x, 1));
	char cl[24];
	snprintf(cl, sizeof(cl), "%zu", strlen(b));
	assert_string_equal(shmring_test_set_header(&H, "Content-Length"), cl);
	return b;
}

#define JSON_CT "application/json"
#define FORM_CT "application/x-www-form-urlencoded"
#define MP_CT "multipart/form-data; boundary=B"
#define PART(name, value)                                                                          \
	"--B\r\nContent-Disposition: form-data; name=\"" name "\"\r\n\r\n" value "\r\n"

static void json_rules_in_kong_order(void **state)
{
	harness_conf_ok(&H, "{\"remove\":{\"body\":[\"gone\"]},"
	                    "\"rename\":{\"body\":[\"old:new\"]},"
	                    "\"replace\":{\"body\":[\"r:replaced\",\"absent:x\"]},"
	                    "\"add\":{\"body\":[\"r:not-added\",\"a:added\",\"f:was-false\"]},"
	                    "\"append\":{\"body\":[\"a:more\",\"s:2\",\"l:3\",\"n:4\"]}}");
	run_body(JSON_CT "; charset=utf-8",
	         "{\"gone\":1,\"old\":{\"x\":1},\"r\":\"v\",\"f\":false,\"s\":\"1\",\"l\":[1,2],"
	         "\"n\":5}");
	/* rename keeps the value; replace only what is set; add what is not
	 * (false counts as unset, as `not parameters[name]` in Lua); append
	 * makes a list of a string, grows a list, and replaces anything
	 * else by a list. */
	assert_string_equal(new_body(),
	                    "{\"r\":\"replaced\",\"f\":\"was-false\",\"s\":[\"1\",\"2\"],"
	                    "\"l\":[1,2,\"3\"],\"n\":[\"4\"],\"new\":{\"x\":1},"
	                    "\"a\":[\"added\",\"more\"]}");
	/* An empty body: only add and append apply, to {}. */
	run_body(JSON_CT, "");
	assert_string_equal(new_body(),
	                    "{\"r\":\"not-added\",\"a\":[\"added\",\"more\"],\"f\":\"was-false\","
	                    "\"s\":[\"2\"],\"l\":[\"3\"],\"n\":[\"4\"]}");
}

static void json_types(void **state)
{
	harness_conf_ok(&H, "{\"add\":{\"body\":[\"b:true\",\"n:1.5\",\"i:42\",\"s:7\",\"bad:x\","
	                    "\"big:1e300\",\"huge:99999999999999999999\",\"inf:1e999\"],"
	                    "\"json_types\":[\"boolean\",\"number\",\"number\",\"string\","
	                    "\"number\",\"number\",\"number\",\"number\"]}}");
	run_body(JSON_CT, "{}");
	/* a number that does not parse, or an infinite one, is nil in Kong:
	 * nothing is added */
	assert_string_equal(new_body(), "{\"b\":true,\"n\":1.5,\"i\":42,\"s\":\"7\",\"big\":1e300,"
	                                "\"huge\":1e20}");
}

static void json_left_alone(void **state)
{
	harness_conf_ok(&H, "{\"add\":{\"body\":[\"a:1\"]}}");
	/* Kong's parse_json fails on these: the body goes on untouched. */
	run_body(JSON_CT, "{\"a\":");
	assert_null(new_body());
	run_body(JSON_CT, "[1,2]");
	assert_null(new_body());
	/* A type the plugin does not transform, or none at all. */
	run_body("text/plain", "{}");
	assert_null(new_body());
	assert_int_equal(shmring_test_call(&H, SHMRING_PHASE_ACCESS, "{\"body\":\"{}\"}"), 0);
	assert_null(new_body());
	/* Templates render into body values too. */
	harness_conf_ok(&H, "{\"add\":{\"body\":[\"who:$(headers[\\\"content-type\\\"])\"]}}");
	run_body(JSON_CT, "{}");
	assert_string_equal(new_body(), "{\"who\":\"application/json\"}");
}

/* Kong's spec "changes the HTTP method from GET to POST and adds JSON
 * body": the Content-Type a header rule adds is the body's. */
static void content_type_from_header_rules(void **state)
{
	harness_conf_ok(&H, "{\"http_method\":\"POST\",\"add\":{\"headers\":[\"Content-Type:"
	                    "application/json\"],\"body\":[\"body:somecontent\"]}}");
	run("{\"method\":\"GET\",\"body\":\"\"}");
	assert_string_equal(new_body(), "{\"body\":\"somecontent\"}");
	/* ... and one a rule removes is not. */
	harness_conf_ok(&H, "{\"remove\":{\"headers\":[\"content-type\"]},"
	                    "\"add\":{\"body\":[\"a:1\"]}}");
	run_body(JSON_CT, "{}");
	assert_null(new_body());
}

static void form_rules(void **state)
{
	harness_conf_ok(&H, "{\"remove\":{\"body\":[\"gone\"]},"
	                    "\"rename\":{\"body\":[\"old:new\"]},"
	                    "\"replace\":{\"body\":[\"r:replaced\"]},"
	                    "\"add\":{\"body\":[\"r:no\",\"a:added value\"]},"
	                    "\"append\":{\"body\":[\"r:2\",\"flag:set\"]}}");
	run_body(FORM_CT, "gone=1&old=a%20b&r=v&r=w&flag&keep=%zz");
	/* Sorted by name like Kong's encode_args; a repeated name keeps its
	 * order; a lone flag takes the appended value; a bad escape stays. */
	assert_string_equal(new_body(),
	                    "a=added%20value&flag=set&keep=%25zz&new=a%20b&r=replaced&r=2");
}

static void multipart_rules(void **state)
{
	harness_conf_ok(&H, "{\"remove\":{\"body\":[\"gone\"]},"
	                    "\"rename\":{\"body\":[\"old:new\"]},"
	                    "\"replace\":{\"body\":[\"r:replaced\"]},"
	                    "\"add\":{\"body\":[\"r:no\",\"a:added\"]},"
	                    "\"append\":{\"body\":[\"r:ignored\"]}}");
	run_body(
	    MP_CT,
	    PART("gone", "1") PART("old", "file data") PART(
	        "r",
	        "v") "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n"
	             "Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n--B--\r\n");
	/* A part that is not touched keeps its headers; renamed, replaced
	 * and added parts become plain fields (lua-multipart's set_simple);
	 * replaced ones move to the end; append does nothing (Kong). */
	assert_string_equal(
	    new_body(),
	    "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n"
	    "Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n" PART("new", "file data")
	        PART("r", "replaced") PART("a", "added") "--B--\r\n");
	/* The quoted boundary form, and an empty body: add only. */
	run_body("multipart/form-data; boundary=\"B\"", "");
	assert_string_equal(new_body(), PART("r", "no") PART("a", "added") "--B--\r\n");
}

static void hostile_bodies(void **state)
{
	harness_conf_ok(&H, "{\"add\":{\"body\":[\"a:1\"]}}");
	static const char *const bad_multipart[] = {
	    PART("x", "1"),                            /* truncated: no closing delimiter */
	    "--B\r\n\r\nvalue\r\n--B--\r\n",           /* a part without headers */
	    "--B\r\nX-Other: 1\r\n\r\nv\r\n--B--\r\n", /* a part without a name */
	    "no delimiter at all",
	    "--B\r\nContent-Disposition: form-data; name=\"x\"", /* headers never end */
	    "--Bx\r\n" PART("x", "1") "--B--\r\n",               /* a longer boundary */
	};
	for (size_t i = 0; i < sizeof(bad_multipart) / sizeof(bad_multipart[0]); i++) {
		run_body(MP_CT, bad_multipart[i]);
		json_t *x = shmring_test_action_op(&H, SHMRING_ACT_EXIT, 0);
		if (!x)
			fail_msg("no 400 for %s: %s", bad_multipart[i],
			         shmring_test_reply_text(&H));
		assert_int_equal(json_integer_value(json_array_get(x, 1)), 400);
		assert_string_equal(json_string_value(json_array_get(x, 2)),
		                    "{\"message\":\"Invalid multipart/form-data body\"}");
		assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_SET_BODY), 0);
	}
	/* A delimiter inside a value that is not at a line start is data. */
	run_body(MP_CT, PART("x", "a--B b") "--B--\r\n");
	assert_string_equal(new_body(), PART("x", "a--B b") PART("a", "1") "--B--\r\n");
	/* Too many fields: 400, never a crash or a silent cut. */
	size_t n = 1001; /* SHMRING_PC_BODY_MAX_FIELDS + 1 */
	char *many = malloc(n * 4 + 1), *p = many;
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%sx=", i ? "&" : "");
	run_body(FORM_CT, many);
	free(many);
	json_t *x = shmring_test_action_op(&H, SHMRING_ACT_EXIT, 0);
	assert_non_null(x);
	assert_int_equal(json_integer_value(json_array_get(x, 1)), 400);
	/* A body the gateway could not send (past its body_max): 413. */
	run_body(JSON_CT, NULL);
	x = shmring_test_action_op(&H, SHMRING_ACT_EXIT, 0);
	assert_non_null(x);
	assert_int_equal(json_integer_value(json_array_get(x, 1)), 413);
	assert_string_equal(json_string_value(json_array_get(x, 2)),
	                    "{\"message\":\"Request body too large\"}");
	/* Deeply nested JSON is refused by jansson's depth bound: left alone. */
	char deep[5000];
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	run_body(JSON_CT, deep);
	assert_null(new_body());
}

static void get_moves_form_body_into_query(void **state)
{
	harness_conf_ok(&H, "{\"http_method\":\"GET\"}");
	assert_int_equal(shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                                   "{\"headers\":{\"content-type\":\"" FORM_CT "\"},"
	                                   "\"query\":{\"q\":\"1\",\"b\":\"0\"},"
	                                   "\"body\":\"b=2&c=x+y\"}"),
	                 0);
	json_t *q = shmring_test_action_op(&H, SHMRING_ACT_SET_QUERY, 0);
	assert_non_null(q);
	assert_string_equal(json_string_value(json_array_get(q, 1)), "b=0&b=2&c=x%20y&q=1");
	/* POST leaves the query alone. */
	harness_conf_ok(&H, "{\"http_method\":\"POST\"}");
	run_body(FORM_CT, "b=2");
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_SET_QUERY), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_rules_in_kong_order),
	    cmocka_unit_test(json_types),
	    cmocka_unit_test(json_left_alone),
	    cmocka_unit_test(content_type_from_header_rules),
	    cmocka_unit_test(form_rules),
	    cmocka_unit_test(multipart_rules),
	    cmocka_unit_test(hostile_bodies),
	    cmocka_unit_test(get_moves_form_body_into_query),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
