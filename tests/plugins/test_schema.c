/* SPDX-License-Identifier: MIT */
/* The schema pass before conf_new (worker/host_schema.c), on schema_probe.so:
 * defaults filled in (nested records too), only declared fields passed on in
 * their declared order, the gateway's fields dropped, Lua's integral doubles
 * taken as integers, and each kind of refusal naming its field. Also the
 * test library's trace of a hook's request reads, declared or not. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

static struct shmring_test H;

/* What conf_new got for json, as compact JSON with keys in the given order. */
static char *given(const char *json)
{
	harness_conf_ok(&H, json);
	const msgpack_sbuffer *sb = H.conf;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, NULL), MSGPACK_UNPACK_SUCCESS);
	json_t *j = shmring_test_msgpack_json(&u.data);
	msgpack_unpacked_destroy(&u);
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	return s;
}

static void expect(const char *json, const char *want)
{
	char *got = given(json);
	if (strcmp(got, want))
		fail_msg("config %s\n  gave %s\n  want %s", json, got, want);
	free(got);
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
	    {"{\"name\":\"x\",\"tags\":[\"a\",\"\"]}", "config.tags[2] must not be empty"},
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
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(values),
	    cmocka_unit_test(refusals),
	    cmocka_unit_test(reads),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	shmring_test_close(&H);
	return rc;
}
