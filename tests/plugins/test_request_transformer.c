/* SPDX-License-Identifier: MIT */
/* request-transformer: Kong's order and rules for headers and query,
 * templates, replace.uri, http_method, and every config error. */
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

/* The reply's actions must be exactly `want` (compact JSON). */
static void expect_actions(const char *want)
{
	char *got = json_dumps(shmring_test_actions(&H), JSON_COMPACT);
	if (!got || strcmp(got, want))
		fail_msg("actions\n  got  %s\n  want %s\n  (reply %s)", got ? got : "(none)", want,
		         shmring_test_reply_text(&H));
	free(got);
}

static void run(const char *snapshot)
{
	if (shmring_test_call(&H, SHMRING_PHASE_ACCESS, snapshot) != 0)
		fail_msg("access failed: %s", shmring_test_reply_text(&H));
}

static void empty_config_does_nothing(void **state)
{
	harness_conf_ok(&H, "{}");
	run("{\"headers\":{\"a\":\"1\"},\"query\":{\"q\":\"1\"}}");
	expect_actions("[]");
	harness_conf_ok(&H,
	                "{\"add\":{\"headers\":[],\"querystring\":{},\"body\":[]},\"remove\":{}}");
	run("{\"headers\":{\"a\":\"1\"}}");
	expect_actions("[]");
}

static void typical_demo_config(void **state)
{
	harness_conf_ok(
	    &H,
	    "{\"add\":{\"headers\":[\"x-added-by:shmring\"],\"querystring\":[\"added:1\"]},"
	    "\"remove\":{\"headers\":[\"x-remove-me\"]},"
	    "\"rename\":{\"headers\":[\"x-old-name:x-new-name\"],\"querystring\":[\"old:new\"]}}");
	run("{\"headers\":{\"x-remove-me\":\"bye\",\"x-old-name\":\"v\",\"accept\":\"*/*\"},"
	    "\"query\":{\"old\":\"o\",\"keep\":\"k k\"}}");
	expect_actions("[[3,\"x-remove-me\"],[3,\"x-old-name\"],[1,\"x-new-name\",\"v\"],"
	               "[1,\"x-added-by\",\"shmring\"],[5,\"added=1&keep=k%20k&new=o\"]]");
}

static void headers_replace_add_append_rules(void **state)
{
	harness_conf_ok(&H, "{\"replace\":{\"headers\":[\"x-r:new\",\"x-absent:no\"]},"
	                    "\"add\":{\"headers\":[\"x-a:added\",\"X-Present:no\"]},"
	                    "\"append\":{\"headers\":[\"x-p2:two\",\"x-new:one\"]}}");
	run("{\"headers\":{\"x-r\":\"old\",\"x-present\":\"yes\",\"x-p2\":\"one\"}}");
	/* replace only if present, add only if absent (case-insensitive),
	 * append always (to the existing value or as a new header). */
	expect_actions("[[1,\"x-r\",\"new\"],[1,\"x-p2\",\"one\"],[2,\"x-p2\",\"two\"],"
	               "[1,\"x-a\",\"added\"],[1,\"x-new\",\"one\"]]");
}

static void headers_order_remove_then_add(void **state)
{
	/* remove runs before add: the header is cleared, then set anew. */
	harness_conf_ok(
	    &H, "{\"remove\":{\"headers\":[\"x-a\"]},\"add\":{\"headers\":[\"x-a:fresh\"]}}");
	run("{\"headers\":{\"x-a\":\"stale\"}}");
	expect_actions("[[3,\"x-a\"],[1,\"x-a\",\"fresh\"]]");
	/* rename runs before replace: replace sees the new name. */
	harness_conf_ok(
	    &H, "{\"rename\":{\"headers\":[\"x-a:x-b\"]},\"replace\":{\"headers\":[\"x-b:r\"]}}");
	run("{\"headers\":{\"x-a\":\"v\"}}");
	expect_actions("[[3,\"x-a\"],[1,\"x-b\",\"r\"]]");
	/* rename of an absent header does nothing. */
	run("{\"headers\":{\"x-c\":\"v\"}}");
	expect_actions("[]");
	/* a multi-valued header keeps its values through a rename */
	run("{\"headers\":{\"x-a\":[\"1\",\"2\"]}}");
	expect_actions("[[3,\"x-a\"],[1,\"x-b\",\"r\"]]");
	harness_conf_ok(&H, "{\"rename\":{\"headers\":[\"x-a:x-b\"]}}");
	run("{\"headers\":{\"x-a\":[\"1\",\"2\"]}}");
	expect_actions("[[3,\"x-a\"],[1,\"x-b\",\"1\"],[2,\"x-b\",\"2\"]]");
	/* case-only rename: cleared and set with the new spelling */
	harness_conf_ok(&H, "{\"rename\":{\"headers\":[\"x-a:X-A\"]}}");
	run("{\"headers\":{\"x-a\":\"v\"}}");
	expect_actions("[[3,\"X-A\"],[1,\"X-A\",\"v\"]]");
}

static void host_header(void **state)
{
	harness_conf_ok(&H, "{\"add\":{\"headers\":[\"host:evil\"]}}");
	run("{\"headers\":{}}");
	expect_actions("[]");
	harness_conf_ok(&H, "{\"replace\":{\"headers\":[\"host:upstream.example\"]}}");
	run("{\"headers\":{\"host\":\"client.example\"}}");
	expect_actions("[[1,\"host\",\"upstream.example\"]]");
	run("{}");
	expect_actions("[[1,\"host\",\"upstream.example\"]]");
}

static void templates(void **state)
{
	harness_conf_ok(
	    &H,
	    "{\"add\":{\"headers\":[\"x-1:$(headers.x_user)\",\"x-2:<$(headers[\\\"x-user\\\"])>\","
	    "\"x-3:$(query_params.id)\",\"x-4:$(query_params[\\\"missing\\\"] or \\\"dflt\\\")\","
	    "\"x-5:[$(headers.nope)]\",\"x-6:$(\\\"$(not a template)\\\")\","
	    "\"x-7:a$(headers.x_user)b$(query_params.id)c\",\"x-8:$(query_params.flag)\"]}}");
	run("{\"headers\":{\"x-user\":\"alice\"},\"query\":{\"id\":\"42\",\"flag\":true}}");
	expect_actions("[[1,\"x-1\",\"alice\"],[1,\"x-2\",\"<alice>\"],[1,\"x-3\",\"42\"],"
	               "[1,\"x-4\",\"dflt\"],[1,\"x-5\",\"[]\"],[1,\"x-6\",\"$(not a template)\"],"
	               "[1,\"x-7\",\"aaliceb42c\"],[1,\"x-8\",\"true\"]]");
	/* Templates read the original request, not the transformed one. */
	harness_conf_ok(
	    &H, "{\"remove\":{\"headers\":[\"x-user\"]},\"add\":{\"headers\":[\"x-who:$(headers.x_"
	        "user)\"]}}");
	run("{\"headers\":{\"x-user\":\"bob\"}}");
	expect_actions("[[3,\"x-user\"],[1,\"x-who\",\"bob\"]]");
	/* Kong's uri_captures (named, numbered) and kong.ctx.shared, from the
	 * snapshot's uri_captures and shared maps. */
	harness_conf_ok(&H, "{\"add\":{\"headers\":[\"x-1:$(uri_captures.user)\","
	                    "\"x-2:$(uri_captures[2])\",\"x-3:$(uri_captures[\\\"user\\\"])\","
	                    "\"x-4:$(shared.tenant)\",\"x-5:$(shared[\\\"nope\\\"] or \\\"d\\\")\","
	                    "\"x-6:$(uri_captures[9] or \\\"none\\\")\"]}}");
	run("{\"uri_captures\":{\"0\":\"/u/alice/"
	    "7\",\"1\":\"alice\",\"user\":\"alice\",\"2\":\"7\"},"
	    "\"shared\":{\"tenant\":\"acme\"}}");
	expect_actions("[[1,\"x-1\",\"alice\"],[1,\"x-2\",\"7\"],[1,\"x-3\",\"alice\"],"
	               "[1,\"x-4\",\"acme\"],[1,\"x-5\",\"d\"],[1,\"x-6\",\"none\"]]");
}

static void querystring_rules(void **state)
{
	harness_conf_ok(
	    &H, "{\"remove\":{\"querystring\":[\"r\"]},\"rename\":{\"querystring\":[\"o:n\",\"gone:"
	        "t\"]},"
	        "\"replace\":{\"querystring\":[\"p:new\",\"absent:x\"]},"
	        "\"add\":{\"querystring\":[\"a:1\",\"p:no\"]},\"append\":{\"querystring\":[\"p:2\","
	        "\"z:$(headers.h)\"]}}");
	run("{\"headers\":{\"h\":\"v w\"},\"query\":{\"r\":\"x\",\"o\":\"1\",\"t\":\"dropped\","
	    "\"p\":\"old\",\"f\":true,\"m\":[\"b\",\"a\"]}}");
	/* rename of an absent arg removes the target (Kong's qs[new]=qs[old]) */
	expect_actions("[[5,\"a=1&f&m=b&m=a&n=1&p=new&p=2&z=v%20w\"]]");
	/* any querystring rule rebuilds the query, even when nothing changed */
	harness_conf_ok(&H, "{\"remove\":{\"querystring\":[\"nothing\"]}}");
	run("{\"query\":{\"b\":\"2\",\"a\":\"1\"}}");
	expect_actions("[[5,\"a=1&b=2\"]]");
	run("{}");
	expect_actions("[[5,\"\"]]");
}

static void uri_and_method(void **state)
{
	harness_conf_ok(
	    &H,
	    "{\"replace\":{\"uri\":\"/v2/$(query_params.user)/items\"},\"http_method\":\"POST\"}");
	run("{\"method\":\"GET\",\"path\":\"/v1\",\"query\":{\"user\":\"u1\"}}");
	expect_actions("[[4,\"/v2/u1/items\"],[6,\"POST\"]]");
	harness_conf_ok(&H, "{\"replace\":{\"uri\":\"/fixed\"}}");
	run("{}");
	expect_actions("[[4,\"/fixed\"]]");
	/* Kong's typedefs.http_method: upper case only. */
	harness_conf_refused(&H, "{\"http_method\":\"post\"}",
	                     "request-transformer: config.http_method: invalid value: post");
}

static void rewrite_phase_too(void **state)
{
	harness_conf_ok(&H, "{\"add\":{\"headers\":[\"x:y\"]}}");
	assert_int_equal(shmring_test_call(&H, SHMRING_PHASE_REWRITE, "{}"), 0);
	expect_actions("[[1,\"x\",\"y\"]]");
}

/* 31 templates, each after a literal, plus a trailing literal fill the
 * parser's 63 parts exactly; a 32nd is refused, never written past the end
 * (found by fuzz_plugins: the trailing literal overflowed the stack array). */
static void template_count_limit(void **state)
{
	char conf[4096], *p = conf;
	p += sprintf(p, "{\"add\":{\"headers\":[\"x:");
	for (int i = 0; i < 31; i++)
		p += sprintf(p, "a$(headers.h%d)", i);
	sprintf(p, "z\"]}}");
	harness_conf_ok(&H, conf);
	p = conf + sprintf(conf, "{\"add\":{\"headers\":[\"x:");
	for (int i = 0; i < 32; i++)
		p += sprintf(p, "a$(headers.h%d)", i);
	sprintf(p, "z\"]}}");
	harness_conf_refused(&H, conf, "more than 31 templates in one value");
}

static void config_errors(void **state)
{
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"x:$(headers.x\"]}}",
	                     "config.add.headers[0]: unterminated template");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"x:$(router_matches.id)\"]}}",
	                     "unsupported template expression '$(router_matches.id)'");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"x:$(uri_captures[1234])\"]}}",
	                     "unsupported template");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"x:$(headers)\"]}}",
	                     "unsupported template");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"x:$(headers.a or b)\"]}}",
	                     "unsupported template");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"x:$(headers[\\\"a\\\"]\"]}}",
	                     "unterminated template");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"x:$(os.execute('x'))\"]}}",
	                     "unsupported template");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"novalue\"]}}",
	                     "config.add.headers[1]: invalid value: novalue");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\":v\"]}}",
	                     "config.add.headers[1]: invalid value: :v");
	harness_conf_refused(&H, "{\"add\":{\"headers\":[\"bad name:v\"]}}",
	                     "'bad name' is not a valid header");
	harness_conf_refused(&H, "{\"rename\":{\"headers\":[\"x-a\"]}}",
	                     "config.rename.headers[1]: invalid value: x-a");
	harness_conf_refused(&H, "{\"rename\":{\"headers\":[\"x-a:$(headers.b)\"]}}",
	                     "a rename target is a name, not a template");
	harness_conf_refused(&H, "{\"add\":{\"body\":[\"novalue\"]}}",
	                     "config.add.body[1]: invalid value: novalue");
	harness_conf_refused(&H, "{\"append\":{\"json_types\":[\"date\"]}}",
	                     "config.append.json_types");
	harness_conf_refused(&H, "{\"add\":{\"uri\":\"/x\"}}", "unknown config field 'add.uri'");
	harness_conf_refused(&H, "{\"add\":{\"header\":[\"a:b\"]}}",
	                     "request-transformer: unknown config field 'add.header'");
	harness_conf_refused(&H, "{\"adds\":{}}", "unknown config field 'adds'");
	harness_conf_refused(&H, "{\"add\":[\"a:b\"]}", "config.add must be a record (a map)");
	harness_conf_refused(&H, "{\"add\":{\"headers\":\"a:b\"}}",
	                     "config.add.headers must be an array");
	harness_conf_refused(&H, "{\"http_method\":\"PO ST\"}",
	                     "config.http_method: invalid value: PO ST");
	harness_conf_refused(&H, "{\"http_method\":\"\"}",
	                     "config.http_method: length must be at least 1");
	harness_conf_refused(&H, "{\"replace\":{\"uri\":\"no-slash\"}}",
	                     "config.replace.uri must start with '/'");
	harness_conf_refused(&H, "{\"replace\":{\"uri\":\"/$(nope)\"}}",
	                     "config.replace.uri: unsupported template");
}

/* Odd snapshots (wrong types, huge counts) get an answer, never a crash. */
static void hostile_snapshots(void **state)
{
	harness_conf_ok(&H, "{\"rename\":{\"headers\":[\"a:b\"],\"querystring\":[\"a:b\"]},"
	                    "\"add\":{\"headers\":[\"x:$(headers.a)$(query_params.a)\"]},"
	                    "\"append\":{\"querystring\":[\"a:1\"]}}");
	run("{\"headers\":{\"a\":42,\"b\":[1,null,\"s\"],\"c\":{\"x\":1}},"
	    "\"query\":{\"a\":false,\"b\":[true,\"v\"],\"c\":null}}");
	json_t *a = shmring_test_actions(&H);
	assert_non_null(a);
	/* 600 headers: more than the plugin handles; a clear error reply. */
	size_t cap = 600 * 32 + 64, o = 0;
	char *big = malloc(cap);
	o += (size_t)snprintf(big + o, cap - o, "{\"headers\":{");
	for (int i = 0; i < 600; i++)
		o += (size_t)snprintf(big + o, cap - o, "%s\"h%d\":\"v\"", i ? "," : "", i);
	snprintf(big + o, cap - o, "}}");
	assert_true(shmring_test_call(&H, SHMRING_PHASE_ACCESS, big) < 0);
	assert_int_equal(json_integer_value(json_object_get(H.reply, "s")), 1);
	assert_string_equal(json_string_value(json_object_get(H.reply, "e")),
	                    "request-transformer: more than 512 headers or query args");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_config_does_nothing),
	    cmocka_unit_test(template_count_limit),
	    cmocka_unit_test(typical_demo_config),
	    cmocka_unit_test(headers_replace_add_append_rules),
	    cmocka_unit_test(headers_order_remove_then_add),
	    cmocka_unit_test(host_header),
	    cmocka_unit_test(templates),
	    cmocka_unit_test(querystring_rules),
	    cmocka_unit_test(uri_and_method),
	    cmocka_unit_test(rewrite_phase_too),
	    cmocka_unit_test(config_errors),
	    cmocka_unit_test(hostile_snapshots),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
