/* SPDX-License-Identifier: MIT */
/* rate-limiting through its hooks: every config error, Kong's headers and
 * block body, windows aligned to UTC periods, token-bucket refill, limit_by,
 * and exact counting with many threads in several forked processes sharing
 * one counter table (the daemon's shared region, here a temp dir). The
 * plugin's clock is pinned with shmring_rl_test_set_clock(). A table whose
 * every slot is live is counted as exhausted (shmringctl stats, metrics)
 * and handled by fault_tolerant; once those windows expire it counts again. */
#include "daemon.h"
#include "harness.h"
#include "rl_table.h"

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000ull

static struct shmring_test H;
static char tmpdir[64];
static void (*set_clock)(uint64_t);

static uint64_t utc(int y, int mon, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mon - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = s};
	return (uint64_t)timegm(&tm) * NS;
}

static int setup(void **state)
{
	shmring_test_open(&H, PLUGIN_SO);
	set_clock = (void (*)(uint64_t))dlsym(H.dl, "shmring_rl_test_set_clock");
	assert_non_null(set_clock);
	return 0;
}

static int teardown(void **state)
{
	set_clock(0);
	shmring_test_close(&H);
	return 0;
}

/* The exit action, or NULL. */
static json_t *exit_action(void)
{
	return shmring_test_action_op(&H, SHMRING_ACT_EXIT, 0);
}

/* A response header the reply sets (SET_RESP_HEADER, or the exit's map). */
static const char *resp_header(const char *name)
{
	json_t *x = exit_action();
	if (x) {
		const char *k;
		json_t *v;
		json_object_foreach(json_array_get(x, 3), k, v)
		{
			if (!strcasecmp(k, name))
				return json_string_value(v);
		}
		return NULL;
	}
	const char *v = NULL;
	for (int i = 0; (x = shmring_test_action_op(&H, SHMRING_ACT_SET_RESP_HEADER, i)); i++)
		if (!strcasecmp(json_string_value(json_array_get(x, 1)), name))
			v = json_string_value(json_array_get(x, 2));
	return v;
}

static void expect_header(const char *name, const char *want)
{
	const char *v = resp_header(name);
	if (!want && v)
		fail_msg("%s is set (%s) in %s", name, v, shmring_test_reply_text(&H));
	if (want && (!v || strcmp(v, want)))
		fail_msg("%s is %s, expected %s, in %s", name, v ? v : "(unset)", want,
		         shmring_test_reply_text(&H));
}

/* One ACCESS call; returns the exit status, or 0 if let through. */
static int call(const char *snapshot)
{
	int rc = shmring_test_call(&H, SHMRING_PHASE_ACCESS, snapshot);
	if (rc != 0)
		fail_msg("access failed (%d): %s", rc, shmring_test_reply_text(&H));
	json_t *x = exit_action();
	return x ? (int)json_integer_value(json_array_get(x, 1)) : 0;
}

#define IP(a) "{\"client_ip\":\"" a "\",\"route_id\":\"r-" a "\"}"

/* ---- config --------------------------------------------------------------------- */

static void config_errors(void **state)
{
	harness_conf_refused(&H, "{}",
	                     "at least one of these fields must be non-empty: 'config.second', "
	                     "'config.minute', 'config.hour', 'config.day', 'config.month', "
	                     "'config.year'");
	harness_conf_refused(&H, "{\"limit_by\":\"ip\"}", "at least one of");
	harness_conf_refused(
	    &H, "{\"second\":10,\"minute\":5}",
	    "The limit for minute(5.0) cannot be lower than the limit for second(10.0)");
	harness_conf_refused(&H, "{\"hour\":10,\"year\":9}", "limit for year(9.0)");
	harness_conf_refused(&H, "{\"second\":0}", "config.second: value must be greater than 0");
	harness_conf_refused(&H, "{\"minute\":-3}", "config.minute: value must be greater than 0");
	harness_conf_refused(&H, "{\"hour\":1.5}", "config.hour must be a whole number");
	harness_conf_refused(&H, "{\"day\":\"10\"}", "config.day must be a number");
	harness_conf_refused(&H, "{\"month\":4294967295}", "between 1 and 4294967294");
	harness_conf_refused(&H, "{\"second\":1,\"secnd\":2}", "unknown config field 'secnd'");
	harness_conf_refused(&H, "{\"second\":1,\"limit_by\":\"user\"}",
	                     "config.limit_by must be one of \"consumer\", \"credential\", "
	                     "\"ip\", \"service\", \"header\", \"path\" (got \"user\")");
	harness_conf_refused(&H, "{\"second\":1,\"limit_by\":\"header\"}",
	                     "config.header_name: required field missing");
	harness_conf_refused(&H, "{\"second\":1,\"limit_by\":\"header\",\"header_name\":\"a b\"}",
	                     "config.header_name: bad header name 'a b', allowed characters are "
	                     "A-Z, a-z, 0-9, '_', and '-'");
	harness_conf_refused(&H, "{\"second\":1,\"limit_by\":\"path\"}",
	                     "config.path: required field missing");
	harness_conf_refused(&H, "{\"second\":1,\"limit_by\":\"path\",\"path\":\"x\"}",
	                     "config.path: should start with: /");
	harness_conf_refused(&H, "{\"second\":1,\"policy\":\"cluster\"}",
	                     "config.policy must be one of \"local\", \"redis\"");
	harness_conf_refused(&H, "{\"second\":1,\"policy\":\"memcached\"}",
	                     "config.policy must be one of");
	harness_conf_refused(&H, "{\"second\":1,\"algorithm\":\"leaky\"}",
	                     "config.algorithm must be one of");
	harness_conf_refused(&H, "{\"second\":1,\"error_code\":700}",
	                     "config.error_code must be an integer between 100 and 599");
	harness_conf_refused(&H, "{\"second\":1,\"error_message\":5}",
	                     "config.error_message must be");
	harness_conf_refused(&H, "{\"second\":1,\"fault_tolerant\":\"yes\"}",
	                     "config.fault_tolerant must be a boolean");
	harness_conf_refused(&H, "{\"second\":1,\"hide_client_headers\":1}",
	                     "config.hide_client_headers must be a boolean");
	harness_conf_refused(&H, "{\"second\":1,\"policy\":\"redis\"}",
	                     "config.redis.host: required field missing");
	harness_conf_refused(&H, "{\"second\":1,\"redis\":5}",
	                     "config.redis must be a record (a map)");
	harness_conf_refused(&H, "{\"second\":1,\"redis\":{\"hots\":\"x\"}}",
	                     "unknown config field 'redis.hots'");
	harness_conf_refused(&H, "{\"second\":1,\"redis\":{\"host\":\"h\",\"port\":70000}}",
	                     "config.redis.port: value should be between 0 and 65535");
	/* Kong's older flat fields are moved into the record first. */
	harness_conf_refused(&H, "{\"second\":1,\"redis_port\":0}",
	                     "config.redis.port must be an integer between 1 and 65535");
	harness_conf_refused(&H, "{\"second\":1,\"redis\":{\"port\":1},\"redis_port\":2}",
	                     "config.redis_port: both deprecated and new field are used but their "
	                     "values mismatch: redis_port = 2 vs redis.port = 1");
	harness_conf_refused(&H, "{\"second\":1,\"policy\":\"redis\",\"redis_port\":1}",
	                     "config.redis.host: required field missing");
	harness_conf_refused(&H, "{\"second\":1,\"redis\":{\"host\":\"h\",\"ssl\":1}}",
	                     "config.redis.ssl must be");
	harness_conf_refused(&H, "{\"second\":1,\"redis\":{\"host\":\"h\",\"ssl_verify\":\"yes\"}}",
	                     "config.redis.ssl_verify must be");
	harness_conf_refused(&H, "{\"second\":1,\"redis\":{\"host\":\"h\",\"server_name\":\"\"}}",
	                     "config.redis.server_name: length must be at least 1");
	harness_conf_refused(&H, "{\"second\":1,\"sync_rate\":-2}",
	                     "config.sync_rate must be seconds");
	harness_conf_refused(&H, "{\"second\":1,\"sync_rate\":\"1\"}",
	                     "config.sync_rate must be a number");
	harness_conf_refused(&H, "{\"second\":1,\"sync_rate\":0.001}", "at least 0.01 s");
	harness_conf_refused(&H,
	                     "{\"day\":3000000000,\"algorithm\":\"token-bucket\",\"policy\":"
	                     "\"redis\",\"redis\":{\"host\":\"127.0.0.1\"}}",
	                     "a limit is at most 2147483647");
	harness_conf_refused(&H, "[1,2]", "config must be a record (a map)");
	/* Accepted shapes: Kong's nulls for unset fields, floats that are
	 * whole numbers, the defaults. */
	harness_conf_ok(&H, "{\"second\":5,\"minute\":null,\"hour\":100.0,\"limit_by\":\"ip\","
	                    "\"policy\":\"local\",\"fault_tolerant\":true,\"sync_rate\":-1}");
	harness_conf_ok(&H, "{\"second\":5,\"minute\":5}");
	harness_conf_ok(&H, "{\"year\":1,\"algorithm\":\"token-bucket\"}");
	harness_conf_ok(&H, "{\"second\":1,\"algorithm\":\"token-bucket\",\"policy\":\"redis\","
	                    "\"redis\":{\"host\":\"127.0.0.1\"}}");
}

/* Every field with every JSON type, alone and beside a valid limit: a clear
 * error or a config, never a crash (ASan/UBSan builds). */
static void config_any_type(void **state)
{
	static const char *const fields[] = {"second",
	                                     "minute",
	                                     "hour",
	                                     "day",
	                                     "month",
	                                     "year",
	                                     "limit_by",
	                                     "header_name",
	                                     "path",
	                                     "policy",
	                                     "fault_tolerant",
	                                     "hide_client_headers",
	                                     "error_code",
	                                     "error_message",
	                                     "redis",
	                                     "sync_rate",
	                                     "algorithm",
	                                     "redis_host",
	                                     "redis_port",
	                                     "redis_password",
	                                     "redis_database",
	                                     "redis_timeout",
	                                     "redis_ssl",
	                                     "redis_ssl_verify",
	                                     "redis_server_name",
	                                     "retry_after_jitter_max",
	                                     NULL};
	static const char *const values[] = {"0",
	                                     "1",
	                                     "-1",
	                                     "7",
	                                     "1.5",
	                                     "1e300",
	                                     "-1e300",
	                                     "4294967295",
	                                     "9223372036854775807",
	                                     "\"\"",
	                                     "\"x\"",
	                                     "\"redis\"",
	                                     "\"header\"",
	                                     "\"token-bucket\"",
	                                     "true",
	                                     "false",
	                                     "null",
	                                     "[]",
	                                     "[1,2]",
	                                     "{}",
	                                     "{\"host\":1}",
	                                     "{\"host\":\"h\",\"port\":\"p\"}",
	                                     NULL};
	char cfg[256];
	for (int f = 0; fields[f]; f++) {
		for (int v = 0; values[v]; v++) {
			for (int with_limit = 0; with_limit < 2; with_limit++) {
				snprintf(cfg, sizeof(cfg), "{%s\"%s\":%s}",
				         with_limit && strcmp(fields[f], "minute")
				             ? "\"minute\":10,"
				             : "",
				         fields[f], values[v]);
				int rc = shmring_test_conf(&H, cfg);
				if (rc < 0 && !strstr(H.err, "rate-limiting: "))
					fail_msg("%s refused without a message: '%s'", cfg, H.err);
				if (rc == 0)
					assert_int_equal(call(IP("10.9.9.9")) / 100 % 10 >= 0, 1);
			}
		}
	}
}

/* ---- headers, block, windows ------------------------------------------------------ */

static void headers_and_block(void **state)
{
	uint64_t t0 = utc(2026, 1, 1, 12, 0, 10) + NS / 2; /* 12:00:10.5 */
	set_clock(t0);
	harness_conf_ok(&H, "{\"second\":3,\"minute\":10,\"limit_by\":\"ip\"}");
	const char *rem_s[] = {"2", "1", "0"}, *rem_m[] = {"9", "8", "7"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(call(IP("10.0.0.1")), 0);
		expect_header("X-RateLimit-Limit-Second", "3");
		expect_header("X-RateLimit-Remaining-Second", rem_s[i]);
		expect_header("X-RateLimit-Limit-Minute", "10");
		expect_header("X-RateLimit-Remaining-Minute", rem_m[i]);
		/* RateLimit-*: the period with the least remaining. */
		expect_header("RateLimit-Limit", "3");
		expect_header("RateLimit-Remaining", rem_s[i]);
		expect_header("RateLimit-Reset", "1");
		expect_header("Retry-After", NULL);
	}
	assert_int_equal(call(IP("10.0.0.1")), 429);
	json_t *x = exit_action();
	assert_string_equal(json_string_value(json_array_get(x, 2)),
	                    "{\"message\":\"API rate limit exceeded\"}");
	expect_header("Retry-After", "1");
	expect_header("X-RateLimit-Remaining-Second", "0");
	expect_header("X-RateLimit-Remaining-Minute", "7"); /* the refused one was not counted */
	expect_header("RateLimit-Remaining", "0");
	expect_header("Content-Type", "application/json; charset=utf-8");
	/* Another client has its own counters. */
	assert_int_equal(call(IP("10.0.0.2")), 0);
	expect_header("X-RateLimit-Remaining-Second", "2");
	/* Next second: the second window is new, the minute goes on. */
	set_clock(t0 + NS);
	assert_int_equal(call(IP("10.0.0.1")), 0);
	expect_header("X-RateLimit-Remaining-Second", "2");
	expect_header("X-RateLimit-Remaining-Minute", "6");
	/* Minute exhausted while the second still has room: blocked by the
	 * minute, Retry-After = until the minute ends (12:01:00 - 12:00:12.5). */
	for (int s = 2; s < 5; s++) {
		set_clock(t0 + (uint64_t)s * NS);
		for (int i = 0; i < 2; i++)
			assert_int_equal(call(IP("10.0.0.1")), 0);
	}
	set_clock(t0 + 5 * NS);
	assert_int_equal(call(IP("10.0.0.1")), 429);
	expect_header("X-RateLimit-Remaining-Minute", "0");
	expect_header("X-RateLimit-Remaining-Second", "3");
	expect_header("Retry-After", "45");
	expect_header("RateLimit-Reset", "45");
	set_clock(utc(2026, 1, 1, 12, 1, 0));
	assert_int_equal(call(IP("10.0.0.1")), 0);
	expect_header("X-RateLimit-Remaining-Minute", "9");
}

static void hide_headers_and_custom_error(void **state)
{
	set_clock(utc(2026, 3, 1, 0, 0, 0));
	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"ip\",\"hide_client_headers\":true,"
	                    "\"error_code\":503,\"error_message\":\"slow \\\"down\\\"\\n\"}");
	assert_int_equal(call(IP("10.1.0.1")), 0);
	assert_int_equal(shmring_test_count_op(&H, SHMRING_ACT_SET_RESP_HEADER), 0);
	assert_int_equal(call(IP("10.1.0.1")), 503);
	assert_string_equal(json_string_value(json_array_get(exit_action(), 2)),
	                    "{\"message\":\"slow \\\"down\\\"\\u000a\"}");
	expect_header("Retry-After", "60");
	expect_header("X-RateLimit-Limit-Minute", NULL);
	expect_header("RateLimit-Remaining", NULL);
	/* Kong's retry_after_jitter_max: Retry-After = reset + 0..max */
	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"ip\",\"retry_after_jitter_max\":5}");
	assert_int_equal(call(IP("10.1.0.2")), 0);
	int seen[6] = {0};
	for (int i = 0; i < 200; i++) {
		assert_int_equal(call(IP("10.1.0.2")), 429);
		long v = strtol(resp_header("Retry-After"), NULL, 10);
		if (v < 60 || v > 65)
			fail_msg("Retry-After %ld outside 60..65", v);
		seen[v - 60] = 1;
	}
	for (int i = 0; i < 6; i++)
		if (!seen[i])
			fail_msg("jitter never gave %d", i);
	harness_conf_refused(&H, "{\"minute\":1,\"retry_after_jitter_max\":-1}",
	                     "config.retry_after_jitter_max must be between 0 and 86400");
}

/* Windows are UTC calendar periods: a minute ends at :00, a month at the
 * 1st of the next month (28 days for February 2026), a year on Jan 1. */
static void window_alignment(void **state)
{
	harness_conf_ok(&H, "{\"minute\":2,\"month\":3,\"year\":4,\"limit_by\":\"ip\"}");
	set_clock(utc(2026, 1, 31, 23, 59, 59) + 900000000ull); /* .9 s before February */
	assert_int_equal(call(IP("10.2.0.1")), 0);
	expect_header("X-RateLimit-Remaining-Month", "2");
	assert_int_equal(call(IP("10.2.0.1")), 0);
	assert_int_equal(call(IP("10.2.0.1")), 429); /* the minute is full */
	expect_header("Retry-After", "1");
	set_clock(utc(2026, 2, 1, 0, 0, 0));
	assert_int_equal(call(IP("10.2.0.1")), 0);
	expect_header("X-RateLimit-Remaining-Minute", "1");
	expect_header("X-RateLimit-Remaining-Month", "2"); /* February is new */
	expect_header("X-RateLimit-Remaining-Year", "1");
	assert_int_equal(call(IP("10.2.0.1")), 0);
	set_clock(utc(2026, 2, 15, 0, 0, 0));
	assert_int_equal(call(IP("10.2.0.1")), 429); /* the year is full */
	expect_header("X-RateLimit-Remaining-Year", "0");
	expect_header("X-RateLimit-Remaining-Month", "1");
	/* until 2027-01-01 */
	char want[32];
	snprintf(want, sizeof(want), "%llu",
	         (unsigned long long)((utc(2027, 1, 1, 0, 0, 0) - utc(2026, 2, 15, 0, 0, 0)) / NS));
	expect_header("Retry-After", want);
	set_clock(utc(2027, 1, 1, 0, 0, 0));
	assert_int_equal(call(IP("10.2.0.1")), 0);
	expect_header("X-RateLimit-Remaining-Year", "3");
	/* A month's reset runs to the calendar month's end. */
	snprintf(want, sizeof(want), "%llu",
	         (unsigned long long)((utc(2027, 2, 1, 0, 0, 0) - utc(2027, 1, 1, 0, 0, 0)) / NS));
	harness_conf_ok(&H, "{\"month\":5,\"limit_by\":\"ip\"}");
	assert_int_equal(call(IP("10.2.0.9")), 0);
	expect_header("RateLimit-Reset", want);
}

static void token_bucket_refill(void **state)
{
	uint64_t t0 = utc(2026, 5, 5, 5, 5, 5);
	set_clock(t0);
	harness_conf_ok(&H, "{\"second\":10,\"algorithm\":\"token-bucket\",\"limit_by\":\"ip\"}");
	/* burst = the limit */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(call(IP("10.3.0.1")), 0);
		char want[8];
		snprintf(want, sizeof(want), "%d", 9 - i);
		expect_header("X-RateLimit-Remaining-Second", want);
	}
	assert_int_equal(call(IP("10.3.0.1")), 429);
	expect_header("Retry-After", "1");
	/* one token per 100 ms, lazily */
	set_clock(t0 + 99 * 1000000ull);
	assert_int_equal(call(IP("10.3.0.1")), 429);
	set_clock(t0 + 100 * 1000000ull);
	assert_int_equal(call(IP("10.3.0.1")), 0);
	expect_header("X-RateLimit-Remaining-Second", "0");
	assert_int_equal(call(IP("10.3.0.1")), 429);
	set_clock(t0 + 350 * 1000000ull); /* 2.5 tokens more */
	assert_int_equal(call(IP("10.3.0.1")), 0);
	assert_int_equal(call(IP("10.3.0.1")), 0);
	assert_int_equal(call(IP("10.3.0.1")), 429);
	/* no window edge: a second later the bucket is full again, not more */
	set_clock(t0 + 5 * NS);
	int passed = 0;
	for (int i = 0; i < 15; i++)
		passed += call(IP("10.3.0.1")) == 0;
	assert_int_equal(passed, 10);
	/* two periods: both buckets must have a token */
	set_clock(t0);
	harness_conf_ok(
	    &H, "{\"second\":5,\"minute\":6,\"algorithm\":\"token-bucket\",\"limit_by\":\"ip\"}");
	passed = 0;
	for (int s = 0; s < 3; s++) {
		set_clock(t0 + (uint64_t)s * NS);
		for (int i = 0; i < 5; i++)
			passed += call(IP("10.3.0.2")) == 0;
	}
	/* s=0: 5 (the second's burst), s=1: 1 (the minute's 6th), s=2: none:
	 * the minute refills one token per 10 s */
	assert_int_equal(passed, 6);
}

static void limit_by_kinds(void **state)
{
	set_clock(utc(2026, 6, 1, 0, 0, 0));
	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"header\",\"header_name\":\"X-Tenant\"}");
	assert_int_equal(call("{\"client_ip\":\"1.1.1.1\",\"headers\":{\"x-tenant\":\"a\"}}"), 0);
	assert_int_equal(call("{\"client_ip\":\"1.1.1.2\",\"headers\":{\"x-tenant\":\"a\"}}"), 429);
	assert_int_equal(call("{\"client_ip\":\"1.1.1.1\",\"headers\":{\"x-tenant\":\"b\"}}"), 0);
	/* no header: the client IP */
	assert_int_equal(call("{\"client_ip\":\"1.1.1.3\"}"), 0);
	assert_int_equal(call("{\"client_ip\":\"1.1.1.3\"}"), 429);

	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"consumer\"}");
	assert_int_equal(call("{\"client_ip\":\"2.0.0.1\",\"consumer\":{\"id\":\"c1\"}}"), 0);
	assert_int_equal(call("{\"client_ip\":\"2.0.0.2\",\"consumer\":{\"id\":\"c1\"}}"), 429);
	/* no consumer: the credential, as Kong */
	assert_int_equal(call("{\"client_ip\":\"2.0.0.1\",\"credential\":\"cr1\"}"), 0);
	assert_int_equal(call("{\"client_ip\":\"2.0.0.3\",\"credential\":\"cr1\"}"), 429);

	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"credential\"}");
	assert_int_equal(call("{\"client_ip\":\"3.0.0.1\",\"credential\":\"k\"}"), 0);
	assert_int_equal(call("{\"client_ip\":\"3.0.0.2\",\"credential\":\"k\"}"), 429);

	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"service\"}");
	assert_int_equal(call("{\"client_ip\":\"4.0.0.1\",\"service_id\":\"s\"}"), 0);
	assert_int_equal(call("{\"client_ip\":\"4.0.0.2\",\"service_id\":\"s\"}"), 429);

	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"path\",\"path\":\"/a\"}");
	assert_int_equal(call("{\"client_ip\":\"5.0.0.1\",\"path\":\"/a\"}"), 0);
	assert_int_equal(call("{\"client_ip\":\"5.0.0.2\",\"path\":\"/a\"}"), 429);
	/* another path: the client IP */
	assert_int_equal(call("{\"client_ip\":\"5.0.0.2\",\"path\":\"/b\"}"), 0);

	/* routes are counted apart (Kong keys by route and service) */
	harness_conf_ok(&H, "{\"minute\":1,\"limit_by\":\"ip\"}");
	assert_int_equal(call("{\"client_ip\":\"6.0.0.1\",\"route_id\":\"r1\"}"), 0);
	assert_int_equal(call("{\"client_ip\":\"6.0.0.1\",\"route_id\":\"r2\"}"), 0);
	assert_int_equal(call("{\"client_ip\":\"6.0.0.1\",\"route_id\":\"r1\"}"), 429);
}

/* ---- exactness across threads and processes -------------------------------------------- */

#define PROCS 4
#define THREADS 3

struct shared_counts {
	pthread_barrier_t barrier; /* PROCS * THREADS parties */
	uint64_t passed[8];        /* per phase */
	uint64_t refused[8];
	uint64_t errors;
};

struct hammer {
	struct shared_counts *sc;
	const char *config;
	int phases;
	int per_phase; /* calls per thread per phase */
	uint64_t t0;
};

static void *hammer_thread(void *arg)
{
	struct hammer *hm = arg;
	struct shmring_test h;
	shmring_test_open(&h, PLUGIN_SO);
	if (shmring_test_conf(&h, hm->config) != 0)
		__atomic_fetch_add(&hm->sc->errors, 1, __ATOMIC_RELAXED);
	for (int ph = 0; ph < hm->phases; ph++) {
		pthread_barrier_wait(&hm->sc->barrier);
		for (int i = 0; i < hm->per_phase; i++) {
			if (shmring_test_call(
			        &h, SHMRING_PHASE_ACCESS,
			        "{\"client_ip\":\"9.9.9.9\",\"route_id\":\"hammer\"}") != 0) {
				__atomic_fetch_add(&hm->sc->errors, 1, __ATOMIC_RELAXED);
				continue;
			}
			json_t *x = shmring_test_action_op(&h, SHMRING_ACT_EXIT, 0);
			__atomic_fetch_add(x ? &hm->sc->refused[ph] : &hm->sc->passed[ph], 1,
			                   __ATOMIC_RELAXED);
		}
		pthread_barrier_wait(&hm->sc->barrier);
	}
	shmring_test_close(&h);
	return NULL;
}

/* One forked "worker": THREADS threads, each with its own plugin state and
 * config (as several channels), all on the process's pinned clock. */
static void hammer_process(struct hammer *hm)
{
	pthread_t th[THREADS];
	set_clock(hm->t0); /* the .so stays loaded: H is open in this process */
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, hammer_thread, hm);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
}

static struct shared_counts *run_hammer(const char *config, int phases, int per_phase, uint64_t t0,
                                        uint64_t step_ns)
{
	struct shared_counts *sc =
	    mmap(NULL, sizeof(*sc), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sc != MAP_FAILED);
	memset(sc, 0, sizeof(*sc));
	pthread_barrierattr_t ba;
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	/* Each phase forks fresh processes with their clock pinned to the
	 * phase's second; the barrier starts all their threads at once. */
	pthread_barrier_init(&sc->barrier, &ba, PROCS * THREADS);
	struct hammer hm = {sc, config, 1, per_phase, t0};
	pid_t pid[PROCS];
	for (int ph = 0; ph < phases; ph++) {
		hm.t0 = t0 + (uint64_t)ph * step_ns;
		for (int p = 0; p < PROCS; p++) {
			pid[p] = fork();
			assert_true(pid[p] >= 0);
			if (pid[p] == 0) {
				hammer_process(&hm);
				_exit(0);
			}
		}
		for (int p = 0; p < PROCS; p++) {
			int st;
			assert_int_equal(waitpid(pid[p], &st, 0), pid[p]);
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
		/* the children counted in slot 0: move it to this phase's slot */
		sc->passed[ph + 1] = sc->passed[0];
		sc->refused[ph + 1] = sc->refused[0];
		sc->passed[0] = sc->refused[0] = 0;
	}
	return sc;
}

static void exact_across_processes(void **state)
{
	uint64_t t0 = utc(2026, 7, 1, 10, 0, 0);
	/* One period: exactly the limit passes among 4 x 3 x 300 calls. */
	struct shared_counts *sc =
	    run_hammer("{\"minute\":1000,\"limit_by\":\"ip\"}", 1, 300, t0, 0);
	assert_int_equal(sc->errors, 0);
	assert_int_equal(sc->passed[1], 1000);
	assert_int_equal(sc->refused[1], PROCS * THREADS * 300 - 1000);
	munmap(sc, sizeof(*sc));

	/* Two periods, three seconds: 400 per second, then the minute (1000)
	 * refuses while the second still has room: what the second took is
	 * given back, and exactly 1000 pass in all. */
	sc = run_hammer("{\"second\":400,\"minute\":1000,\"limit_by\":\"ip\"}", 3, 100,
	                utc(2026, 7, 1, 11, 0, 0), NS);
	assert_int_equal(sc->errors, 0);
	assert_int_equal(sc->passed[1], 400);
	assert_int_equal(sc->passed[2], 400);
	assert_int_equal(sc->passed[3], 200);
	munmap(sc, sizeof(*sc));

	/* Token bucket: the burst, exactly. */
	sc = run_hammer("{\"hour\":777,\"limit_by\":\"ip\",\"algorithm\":\"token-bucket\"}", 1, 300,
	                t0, 0);
	assert_int_equal(sc->errors, 0);
	assert_int_equal(sc->passed[1], 777);
	munmap(sc, sizeof(*sc));
}

/* ---- a full table ------------------------------------------------------------------ */

/* Every slot of the shared table: key `key` with state `state`. */
static void fill_table(uint64_t key, uint64_t state)
{
	size_t bytes = rl_table_bytes(1ull << 16); /* RL_NBUCKETS */
	void *mem;
	assert_int_equal(shmring_shared_region("rate-limiting-v2", bytes, &mem), 0);
	struct rl_bucket *b = (struct rl_bucket *)((char *)mem + sizeof(struct rl_header));
	for (size_t i = 0; i < (1u << 16); i++)
		for (int j = 0; j < RL_SLOTS; j++)
			b[i].slot[j] = (struct rl_slot){key, state};
}

static void full_table_is_counted(void **state)
{
	uint64_t now = utc(2026, 3, 1, 12, 0, 0) + NS / 2;
	uint64_t now_rel_s = now / NS - RL_EPOCH;
	set_clock(now);
	/* Live windows of some other key everywhere: no slot for anyone. */
	fill_table(4, (now_rel_s + 100) << 32 | 1);
	harness_conf_ok(&H, "{\"second\":5,\"limit_by\":\"ip\"}");
	assert_int_equal(call(IP("192.0.2.7")), 0); /* fault_tolerant: let through */
	assert_int_equal(H.rep->exhausted, 1);
	json_t *log = shmring_test_action_op(&H, SHMRING_ACT_LOG, 0);
	assert_non_null(log);
	assert_non_null(strstr(json_string_value(json_array_get(log, 2)), "counter table full"));
	expect_header("X-RateLimit-Remaining-Second", NULL);
	harness_conf_ok(&H, "{\"second\":5,\"limit_by\":\"ip\",\"fault_tolerant\":false}");
	assert_int_equal(call(IP("192.0.2.7")), 500);
	assert_int_equal(H.rep->exhausted, 1);
	/* Those windows ended two seconds ago: reclaimed, counted again. */
	fill_table(4, (now_rel_s - 1) << 32 | 1);
	assert_int_equal(call(IP("192.0.2.7")), 0);
	assert_int_equal(H.rep->exhausted, 0);
	expect_header("X-RateLimit-Remaining-Second", "4");
	fill_table(0, 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/shmring-rl-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	/* The daemon maps <shm_dir>/plugin-<name>.shm; here a temp dir. */
	shmringd__shared_setup(tmpdir, 0600);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(config_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(config_any_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(headers_and_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(hide_headers_and_custom_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(window_alignment, setup, teardown),
	    cmocka_unit_test_setup_teardown(token_bucket_refill, setup, teardown),
	    cmocka_unit_test_setup_teardown(limit_by_kinds, setup, teardown),
	    cmocka_unit_test_setup_teardown(exact_across_processes, setup, teardown),
	    cmocka_unit_test_setup_teardown(full_table_is_counted, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	shmringd__shared_remove_all(tmpdir);
	rmdir(tmpdir);
	return rc;
}
