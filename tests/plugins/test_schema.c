/* SPDX-License-Identifier: MIT */
/* The schema pass before conf_new (worker/host_schema.c), on schema_probe.so:
 * defaults filled in (nested records too), only declared fields passed on in
 * their declared order, the gateway's fields dropped, Lua's integral doubles
 * taken as integers, and each kind of refusal naming its field. On
 * schema_probe_kong.so: Kong's typedefs, gt, sets, shorthands and entity
 * checks, each refusal in Kong's words. On schema_probe_v1.so: a plugin
 * built with the first, shorter field layout still gets its schema. Also
 * the test library's trace of a hook's request reads, declared or not. */
#include "harness.h"
#include "schema_layout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

static struct shmring_test H, K, V;

/* What conf_new got for json, as compact JSON with keys in the given order. */
static char *given_to(struct shmring_test *t, const char *json)
{
	harness_conf_ok(t, json);
	const msgpack_sbuffer *sb = t->conf;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, NULL), MSGPACK_UNPACK_SUCCESS);
	json_t *j = shmring_test_msgpack_json(&u.data);
	msgpack_unpacked_destroy(&u);
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return s;
}

static void expect_of(struct shmring_test *t, const char *json, const char *want)
{
	char *got = given_to(t, json);
	if (strcmp(got, want))
		fail_msg("config %s\n  gave %s\n  want %s", json, got, want);
	free(got);
}

static void expect(const char *json, const char *want)
{
	expect_of(&H, json, want);
}

static void defaults(void **state)
{
	expect("{\"name\":\"x\"}", "{\"name\":\"x\",\"mode\":\"a\",\"count\":3,\"ratio\":0.5,"
	                           "\"tags\":[],\"limits\":{\"policy\":\"local\"}}");
	/* Lua's empty table for a record, nil for a field: the defaults. */
	expect("{\"name\":\"x\",\"limits\":[],\"mode\":null}",
	       "{\"name\":\"x\",\"mode\":\"a\",\"count\":3,\"ratio\":0.5,\"tags\":[],"
	       "\"limits\":{\"policy\":\"local\"}}");
}

static void values(void **state)
{
	/* Declared order, the gateway's fail_open dropped, 7.0 an integer. */
	expect("{\"fail_open\":true,\"tags\":[\"p\",\"q\"],\"on\":true,\"count\":7.0,"
	       "\"limits\":{\"second\":5,\"policy\":\"redis\"},\"ratio\":2,\"name\":\"x\","
	       "\"mode\":\"b\"}",
	       "{\"name\":\"x\",\"mode\":\"b\",\"count\":7,\"ratio\":2,\"on\":true,"
	       "\"tags\":[\"p\",\"q\"],\"limits\":{\"second\":5,\"policy\":\"redis\"}}");
	/* Lua's empty table for an array. */
	expect("{\"name\":\"x\",\"tags\":{}}", "{\"name\":\"x\",\"mode\":\"a\",\"count\":3,"
	                                       "\"ratio\":0.5,\"tags\":[],\"limits\":{\"policy\":"
	                                       "\"local\"}}");
}

static void refusals(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	    {"{}", "schema-probe: config.name is required"},
	    {"{\"name\":\"123456789\"}", "config.name must have at most 8 characters"},
	    {"{\"name\":7}", "config.name must be a string"},
	    {"{\"name\":\"x\",\"mode\":\"c\"}",
	     "config.mode must be one of \"a\", \"b\" (got \"c\")"},
	    {"{\"name\":\"x\",\"count\":11}", "config.count must be between 1 and 10"},
	    {"{\"name\":\"x\",\"count\":2.5}", "config.count must be an integer"},
	    {"{\"name\":\"x\",\"ratio\":\"1\"}", "config.ratio must be a number"},
	    {"{\"name\":\"x\",\"on\":\"yes\"}", "config.on must be a boolean"},
	    {"{\"name\":\"x\",\"tags\":[\"a\",\"b\",\"c\"]}",
	     "config.tags must have at most 2 elements"},
	    {"{\"name\":\"x\",\"tags\":[\"a\",\"\"]}", "config.tags[2]: length must be at least 1"},
	    {"{\"name\":\"x\",\"tags\":\"a\"}", "config.tags must be an array"},
	    {"{\"name\":\"x\",\"limits\":5}", "config.limits must be a record (a map)"},
	    {"{\"name\":\"x\",\"limits\":{\"second\":0}}",
	     "config.limits.second must be between 1 and 100"},
	    {"{\"name\":\"x\",\"limits\":{\"minute\":1}}", "unknown config field 'limits.minute'"},
	    {"{\"name\":\"x\",\"colour\":1}", "schema-probe: unknown config field 'colour'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		harness_conf_refused(&H, cases[i].json, cases[i].want);
}

static void kong_refusals(void **state)
{
	static const struct {
		const char *json, *want;
	} cases[] = {
	    {"{}", "schema-probe-kong: at least one of these fields must be non-empty: "
	           "'config.hdr', 'config.path', 'config.url', 'config.redis.host'"},
	    {"{\"hdr\":\"a b\"}", "schema-probe-kong: config.hdr: bad header name 'a b', "
	                          "allowed characters are A-Z, a-z, 0-9, '_', and '-'"},
	    {"{\"hdr\":\"\"}", "config.hdr: length must be at least 1"},
	    {"{\"path\":\"x\"}", "config.path: should start with: /"},
	    {"{\"path\":\"/a//b\"}", "config.path: must not have empty segments"},
	    {"{\"path\":\"/a b\"}", "config.path: invalid path: '/a b' (characters outside "
	                            "of the reserved list of RFC 3986 found)"},
	    {"{\"path\":\"/a%zz\"}", "config.path: invalid url-encoded value: '%zz'"},
	    {"{\"hdr\":\"h\",\"host\":\"h:80\"}", "config.host: must not have a port"},
	    {"{\"hdr\":\"h\",\"host\":\"a/b\"}", "config.host: invalid value: a/b"},
	    {"{\"hdr\":\"h\",\"port\":70000}", "config.port: value should be between 0 and 65535"},
	    {"{\"hdr\":\"h\",\"port\":-1}", "config.port: value should be between 0 and 65535"},
	    {"{\"hdr\":\"h\",\"sni\":\"10.0.0.1\"}", "config.sni: must not be an IP"},
	    {"{\"hdr\":\"h\",\"sni\":\"[::1]\"}", "config.sni: must not be an IP"},
	    {"{\"hdr\":\"h\",\"sni\":\"a.b:443\"}", "config.sni: must not have a port"},
	    {"{\"hdr\":\"h\",\"sni\":\"a b\"}", "config.sni: invalid value: a b"},
	    {"{\"url\":\"localhost/x\"}", "config.url: missing scheme in url"},
	    {"{\"url\":\"http:///x\"}", "config.url: missing host in url"},
	    {"{\"url\":\"http://u@:80/x\"}", "config.url: missing host in url"},
	    {"{\"hdr\":\"h\",\"above\":0.5}", "config.above: value must be greater than 0.5"},
	    {"{\"hdr\":\"h\",\"uniq\":[\"x\",1]}", "config.uniq[2] must be a string"},
	    {"{\"hdr\":\"h\",\"uniq\":\"x\"}", "config.uniq must be an array"},
	    {"{\"host\":\"h\",\"url\":\"http://h\"}",
	     "schema-probe-kong: only one or none of these fields must be set: 'config.host', "
	     "'config.url'"},
	    {"{\"hdr\":\"h\",\"mode\":\"a\"}", "config.redis.host: required field missing"},
	    {"{\"hdr\":\"h\",\"mode\":\"b\",\"uniq\":[\"y\"]}",
	     "config.uniq: expected to contain: x"},
	    {"{\"hdr\":\"h\",\"mode\":\"b\",\"uniq\":[\"x\"],\"level\":2}",
	     "config.mode: value must be c"},
	    {"{\"hdr\":\"h\",\"mode\":\"c\",\"level\":6}", "config.hdr: expected one of: X-A, X-B"},
	    {"{\"hdr\":\"X-A\",\"mode\":\"c\",\"level\":10,\"above\":1}",
	     "config.above: value must be greater than 2"},
	    /* both names, different values: Kong's refusal */
	    {"{\"redis_host\":\"r\",\"redis\":{\"host\":\"s\"}}",
	     "config.redis_host: both deprecated and new field are used but their values mismatch: "
	     "redis_host = r vs redis.host = s"},
	    {"{\"old_path\":\"/a\",\"path\":\"/b\"}",
	     "config.old_path: both deprecated and new field are used but their values mismatch: "
	     "old_path = /a vs path = /b"},
	    {"{\"redis_host\":5}", "config.redis.host must be a string"},
	    {"[1]", "schema-probe-kong: config must be a record (a map)"},
	    {"{\"hdr\":\"h\",\"hdrs\":{\"Host\":\"a\"}}",
	     "config.hdrs: cannot contain 'Host' header"},
	    {"{\"hdr\":\"h\",\"hdrs\":{\"a b\":\"x\"}}", "config.hdrs: bad header name 'a b'"},
	    {"{\"hdr\":\"h\",\"hdrs\":{\"X\":1}}", "config.hdrs.X must be a string"},
	    {"{\"hdr\":\"h\",\"hdrs\":[1]}", "config.hdrs must be a map"},
	    {"{\"hdr\":\"h\",\"ratio\":0.8}", "config.ratio must be between 0.25 and 0.75"},
	    {"{\"hdr\":\"h\",\"conc\":0}", "config.conc must be one of \"-1\", \"1\" (got \"0\")"},
	    /* a config that sets `other` goes through that variant */
	    {"{\"other\":5}", "schema-probe-kong: config.other must be a string"},
	    {"{\"other\":\"x\",\"hdr\":\"h\"}", "schema-probe-kong: unknown config field 'hdr'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		harness_conf_refused(&K, cases[i].json, cases[i].want);
}

static void kong_accepted(void **state)
{
	/* Shorthands moved to their place, into a record given or not. */
	expect_of(&K, "{\"redis_host\":\"r\"}", "{\"redis\":{\"host\":\"r\",\"port\":6379}}");
	expect_of(&K, "{\"redis\":{\"port\":1},\"redis_host\":\"r\"}",
	          "{\"redis\":{\"host\":\"r\",\"port\":1}}");
	expect_of(&K, "{\"redis\":[],\"redis_host\":\"r\"}",
	          "{\"redis\":{\"host\":\"r\",\"port\":6379}}");
	expect_of(&K, "{\"old_path\":\"/a\"}", "{\"path\":\"/a\"}");
	/* both names with the same value: taken, as Kong takes it */
	expect_of(&K, "{\"redis_host\":\"r\",\"redis\":{\"host\":\"r\"}}",
	          "{\"redis\":{\"host\":\"r\",\"port\":6379}}");
	/* A set keeps the first of equal values; typedefs' good values. */
	expect_of(&K,
	          "{\"uniq\":[\"x\",\"y\",\"x\"],\"url\":\"http://u:p@h:8080/x?y#z\",\"port\":0,"
	          "\"sni\":\"a.example\",\"path\":\"/a%20b/c:d@e\"}",
	          "{\"path\":\"/a%20b/c:d@e\",\"port\":0,\"sni\":\"a.example\","
	          "\"url\":\"http://u:p@h:8080/x?y#z\",\"uniq\":[\"x\",\"y\"]}");
	expect_of(&K, "{\"hdr\":\"X_1-b\",\"host\":\"[::1]\"}",
	          "{\"hdr\":\"X_1-b\",\"host\":\"[::1]\"}");
	expect_of(&K, "{\"hdr\":\"h\",\"host\":\"10.0.0.1\",\"above\":0.75}",
	          "{\"hdr\":\"h\",\"host\":\"10.0.0.1\",\"above\":0.75}");
	/* Kong's conditional: a then_field left unset is only refused when
	 * then_match says required. */
	expect_of(&K, "{\"hdr\":\"h\",\"mode\":\"b\"}", "{\"hdr\":\"h\",\"mode\":\"b\"}");
	/* map, fractional bounds, an integer's one_of, a field Kong does not see */
	expect_of(&K,
	          "{\"wire_name\":\"w\",\"conc\":-1,\"ratio\":0.5,\"hdrs\":{\"X-A\":\"1\"},"
	          "\"hdr\":\"h\"}",
	          "{\"hdr\":\"h\",\"hdrs\":{\"X-A\":\"1\"},\"ratio\":0.5,\"conc\":-1,"
	          "\"wire_name\":\"w\"}");
	expect_of(&K, "{\"hdr\":\"h\",\"hdrs\":[]}", "{\"hdr\":\"h\",\"hdrs\":{}}");
	expect_of(&K, "{\"other\":\"x\"}", "{\"other\":\"x\",\"n\":5}");
}

static void older_layout(void **state)
{
	expect_of(&V, "{\"name\":\"x\"}", "{\"name\":\"x\",\"tags\":[\"t\"],\"limits\":{}}");
	harness_conf_refused(&V, "{}", "schema-probe-v1: config.name is required");
	harness_conf_refused(&V, "{\"name\":\"x\",\"limits\":{\"second\":10}}",
	                     "config.limits.second must be between 0 and 9");
	harness_conf_refused(&V, "{\"name\":\"x\",\"tags\":[\"\"]}",
	                     "config.tags[1]: length must be at least 1");
}

/* shmringd's Lua patterns (a declared `match`) against what LuaJIT's
 * string.match says (the table was made with it): one 0/1 per string. */
static void lua_patterns(void **state)
{
	static const char *const pattern_strings[] = {"GET", "get", "a:b", "ab",  "/x?y", "/x/y",
	                                              "",    "aaa", "xby", "a.b", "]a]",  "abbc",
	                                              "ac",  "  ",  "fF",  "a-b", "b",    "aXXb"};
	static const struct {
		const char *pattern, *want;
	} cases[] = {
	    {"^%u+$", "100000000000000000"},     {"^[^:]+:.*$", "001000000000000000"},
	    {"^/[^?]*$", "000001000000000000"},  {"a.-b", "001100000101000101"},
	    {"^a*$", "000000110000000000"},      {"^[%w_-]+$", "110100011001101111"},
	    {"x?y", "000011001000000000"},       {"^[]a]+$", "000000010010000000"},
	    {"^[^%d]+$", "111111011111111111"},  {"%.", "000000000100000000"},
	    {"^ab+c?$", "000100000001000000"},   {"[a-c]", "001100011111100111"},
	    {"^%s*$", "000000100000010000"},     {"^%x%x$", "000100000000101000"},
	    {"^[%a%-]+$", "110100011001101111"}, {"^a-$", "000000110000000000"},
	    {"b$", "001100000100000111"},        {"^$", "000000100000000000"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t j = 0; j < sizeof(pattern_strings) / sizeof(pattern_strings[0]); j++) {
			const char *str = pattern_strings[j];
			int got = shmringd__lua_match(cases[i].pattern, str, strlen(str));
			if (got != cases[i].want[j] - '0')
				fail_msg("string.match(\"%s\", \"%s\"): got %d", str,
				         cases[i].pattern, got);
		}
	assert_int_equal(shmringd__lua_match("(a)", "a", 1), -1); /* captures: not run */
	assert_int_equal(shmringd__lua_match("%b()", "()", 2), -1);
}

static void reads(void **state)
{
	harness_conf_ok(&H, "{\"name\":\"x\"}");
	assert_int_equal(
	    shmring_test_call(&H, SHMRING_PHASE_ACCESS,
	                      "{\"headers\":{\"x-declared\":\"1\"},\"query\":{\"q\":\"2\"}}"),
	    0);
	char *got = json_dumps(shmring_test_reads(&H), JSON_COMPACT | JSON_PRESERVE_ORDER);
	const char *want =
	    "[{\"read\":\"header\",\"name\":\"X-Declared\",\"found\":1,\"declared\":true},"
	    "{\"read\":\"header\",\"name\":\"x-undeclared\",\"found\":0,\"declared\":false},"
	    "{\"read\":\"query\",\"name\":\"q\",\"found\":1,\"declared\":true}]";
	if (strcmp(got, want))
		fail_msg("reads %s, want %s", got, want);
	free(got);
	assert_int_equal(shmring_test_undeclared_reads(&H), 1);
}

int main(void)
{
	shmring_test_open(&H, PLUGIN_SO);
	shmring_test_open(&K, KONG_SO);
	shmring_test_open(&V, V1_SO);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),      cmocka_unit_test(values),
	    cmocka_unit_test(refusals),      cmocka_unit_test(kong_refusals),
	    cmocka_unit_test(kong_accepted), cmocka_unit_test(older_layout),
	    cmocka_unit_test(lua_patterns),  cmocka_unit_test(reads),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	shmring_test_close(&V);
	shmring_test_close(&K);
	shmring_test_close(&H);
	return rc;
}
