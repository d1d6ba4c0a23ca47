/* SPDX-License-Identifier: MIT */
/* log: every config error has a clear message; entries become one JSON line
 * each in the file sink (through the daemon's real io_uring sinks, drained
 * as at a graceful stop); escaping of quotes, backslashes, control
 * characters, NUL and invalid UTF-8; correlation id from ctx; reopen after
 * a rotation; UDP datagrams without the newline. */
#include "daemon.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct shmring_test H;
static struct shmringd_worker_stats WS;
static char dir[] = "/tmp/shmring-test-log-XXXXXX";
static char path[256];

static int setup(void **state)
{
	shmring_test_open(&H, PLUGIN_SO);
	return 0;
}

static int teardown(void **state)
{
	shmring_test_close(&H);
	/* Sinks released by conf_free are freed once written. */
	shmringd__sinks_drain(shmring_now_ns() + 2000000000ull);
	shmringd__sinks_poll(shmring_now_ns());
	return 0;
}

/* Run the log hook on a msgpack entry. */
static int log_packed(const msgpack_sbuffer *sb)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, sb->data, sb->size, NULL), MSGPACK_UNPACK_SUCCESS);
	struct shmring_log_record rec = {.req_id = 1, .conf_id = H.conf_id, .entry = &u.data};
	int rc = H.p->log(H.conf, &rec);
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* Run the log hook on an entry written as JSON. */
static int log_json(const char *entry)
{
	json_error_t je;
	json_t *j = json_loads(entry, 0, &je);
	if (!j)
		fail_msg("bad test JSON %s: %s", entry, je.text);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	shmring_test_pack_json(&sb, j);
	json_decref(j);
	int rc = log_packed(&sb);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Write everything buffered, as a graceful stop does. */
static void drain(void)
{
	shmringd__sinks_drain(shmring_now_ns() + 2000000000ull);
}

/* The file's lines, each parsed (a line that does not parse fails). */
static json_t *read_lines(const char *p)
{
	FILE *f = fopen(p, "r");
	json_t *a = json_array();
	if (!f)
		return a;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			fail_msg("line without a newline: %s", line);
		json_error_t je;
		json_t *j =
		    json_loadb(line, (size_t)n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
		if (!j)
			fail_msg("line is not JSON (%s): %s", je.text, line);
		json_array_append_new(a, j);
	}
	free(line);
	fclose(f);
	return a;
}

static void fresh_path(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static void config_errors(void **state)
{
	harness_conf_refused(&H, "{}", "config.path: required field missing");
	harness_conf_refused(&H, "{\"sink\":\"ftp\",\"path\":\"/x\"}",
	                     "config.sink must be one of \"file\", \"tcp\", \"udp\" (got \"ftp\")");
	harness_conf_refused(&H, "{\"sink\":\"\"}", "config.sink");
	harness_conf_refused(&H, "{\"sink\":7}", "config.sink");
	harness_conf_refused(&H, "{\"path\":\"relative/x.log\"}",
	                     "config.path: invalid value: relative/x.log");
	harness_conf_refused(&H, "{\"path\":\"\"}", "config.path");
	harness_conf_refused(&H, "{\"path\":\"/tmp/a?b\"}", "config.path: invalid value: /tmp/a?b");
	harness_conf_refused(&H, "{\"path\":\"/tmp/nonexistent-dir-shmring/x.log\"}",
	                     "cannot open /tmp/nonexistent-dir-shmring/x.log");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"port\":80}",
	                     "config.host and config.port apply to the tcp and udp sinks");
	harness_conf_refused(&H, "{\"sink\":\"tcp\",\"host\":\"127.0.0.1\"}",
	                     "config.port: required field missing");
	harness_conf_refused(&H, "{\"sink\":\"udp\",\"port\":9}",
	                     "config.host: required field missing");
	harness_conf_refused(&H, "{\"sink\":\"tcp\",\"host\":\"local_host\",\"port\":9}",
	                     "config.host must be a host name or an IPv4 or IPv6 address");
	harness_conf_refused(&H, "{\"sink\":\"tcp\",\"host\":\"1::2::3\",\"port\":9}",
	                     "bad sink address");
	harness_conf_refused(&H, "{\"sink\":\"udp\",\"host\":\"127.0.0.1\",\"port\":70000}",
	                     "config.port must be between 1 and 65535");
	harness_conf_refused(&H,
	                     "{\"sink\":\"udp\",\"host\":\"127.0.0.1\",\"port\":9,\"path\":\"/x\"}",
	                     "config.path and config.reopen apply to the file sink");
	harness_conf_refused(&H,
	                     "{\"sink\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":9,\"reopen\":true}",
	                     "config.path and config.reopen apply to the file sink");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"reopen\":\"yes\"}",
	                     "config.reopen must be a boolean");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"max_batch_size\":0}",
	                     "config.max_batch_size must be between 1 and 1000000");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"max_batch_size\":1.5}",
	                     "config.max_batch_size must be an integer");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"flush_interval\":0}",
	                     "config.flush_interval must be between 0.001 and 3600");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"flush_interval\":\"1\"}",
	                     "config.flush_interval must be a number");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"flush_interval\":-2}",
	                     "config.flush_interval");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"max_buffered_bytes\":100}",
	                     "config.max_buffered_bytes must be between 4096 and 2147483648");
	harness_conf_refused(
	    &H, "{\"sink\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":9,\"keepalive\":-1}",
	    "config.keepalive must be a number between 0 and 3600000");
	harness_conf_refused(
	    &H, "{\"sink\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":9,\"tcp_timeout\":0}",
	    "config.tcp_timeout must be a number between 1 and 3600000");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"pth\":\"/y\"}",
	                     "unknown config field 'pth'");
	/* custom_fields_by_lua: the gateway runs the code; the daemon takes the
	 * declaration (Kong's typedefs.lua_code: non-empty names and code) */
	harness_conf_ok(&H, "{\"path\":\"/tmp/x.log\",\"custom_fields_by_lua\":{\"a.b\":"
	                    "\"return 1\"}}");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"custom_fields_by_lua\":{\"a\":\"\"}}",
	                     "config.custom_fields_by_lua.a");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"custom_fields_by_lua\":{\"a\":1}}",
	                     "config.custom_fields_by_lua.a");
	harness_conf_refused(&H,
	                     "{\"sink\":\"udp\",\"host\":\"127.0.0.1\",\"port\":9,\"tls\":true}",
	                     "config.tls and config.tls_sni apply to the tcp sink");
	harness_conf_refused(
	    &H,
	    "{\"sink\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":9,\"tls\":true,\"tls_sni\":\"a b\"}",
	    "config.tls_sni must be a host name");
	harness_conf_refused(&H, "{\"sink\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":9,\"tls\":1}",
	                     "config.tls must be a boolean");
	/* Kong's http-log fields select the http sink */
	harness_conf_refused(
	    &H, "{\"sink\":\"http\"}",
	    "config.sink must be one of \"file\", \"tcp\", \"udp\" (got \"http\")");
	harness_conf_refused(&H, "{\"http_endpoint\":\"ftp://x/\"}",
	                     "config.http_endpoint must be an http:// or https:// URL");
	/* a refused URL is not echoed with its credentials */
	harness_conf_refused(&H, "{\"http_endpoint\":\"http://bob:s3cret@x/ a\"}",
	                     "config.http_endpoint must be an http:// or https:// URL");
	if (strstr(H.err, "s3cret"))
		fail_msg("the refusal shows the URL's password: %s", H.err);
	harness_conf_refused(&H, "{\"http_endpoint\":\"http://x/\",\"method\":\"GET\"}",
	                     "config.method must be one of \"POST\", \"PUT\", \"PATCH\"");
	harness_conf_refused(&H,
	                     "{\"http_endpoint\":\"http://x/\",\"content_type\":\"text/plain\"}",
	                     "config.content_type must be one of");
	harness_conf_refused(&H, "{\"http_endpoint\":\"http://x/\",\"headers\":{\"host\":\"a\"}}",
	                     "config.headers: cannot contain 'Host' header");
	harness_conf_refused(
	    &H, "{\"http_endpoint\":\"http://x/\",\"headers\":{\"Content-Length\":\"1\"}}",
	    "cannot contain 'Content-Length' header");
	harness_conf_refused(&H,
	                     "{\"http_endpoint\":\"http://x/\",\"headers\":{\"X-A\":\"a\\nb\"}}",
	                     "config.headers.X-A must be a string without CR, LF or NUL");
	harness_conf_refused(&H, "{\"http_endpoint\":\"http://x/\",\"headers\":{\"X A\":\"a\"}}",
	                     "bad header name");
	harness_conf_refused(
	    &H, "{\"http_endpoint\":\"http://u:p@x/\",\"headers\":{\"authorization\":\"a\"}}",
	    "specifying both an 'Authorization' header and user info");
	harness_conf_refused(&H,
	                     "{\"http_endpoint\":\"http://x/\",\"queue\":{\"max_batch_size\":0}}",
	                     "config.queue.max_batch_size must be between 1 and 1000000");
	harness_conf_refused(&H, "{\"http_endpoint\":\"http://x/\",\"queue\":{\"max_entrie\":1}}",
	                     "unknown config field 'queue.max_entrie'");
	harness_conf_refused(
	    &H, "{\"http_endpoint\":\"http://x/\",\"queue\":{\"concurrency_limit\":0}}",
	    "config.queue.concurrency_limit must be one of \"-1\", \"1\" (got \"0\")");
	harness_conf_refused(&H, "{\"http_endpoint\":\"http://x/\",\"http_timeout\":0}",
	                     "config.http_timeout must be a number between 1 and");
	harness_conf_refused(&H, "{\"http_endpoint\":\"http://x/\",\"path\":\"/tmp/x.log\"}",
	                     "unknown config field 'path'");
	harness_conf_refused(&H, "{\"path\":\"/tmp/x.log\",\"queue\":{}}",
	                     "unknown config field 'queue'");
	harness_conf_ok(&H,
	                "{\"http_endpoint\":\"http://u:p@127.0.0.1:9/x?a=b\",\"method\":\"PATCH\","
	                "\"queue_size\":5,\"flush_timeout\":3,\"retry_count\":15,"
	                "\"headers\":{\"X-A\":\"b?&c\"},\"queue\":{\"max_bytes\":100}}");
	/* a refused config leaves nothing behind; a good one after it works */
	fresh_path("ok.log");
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
	         "{\"path\":\"%s\",\"max_batch_size\":10,\"flush_interval\":0.05,"
	         "\"max_buffered_bytes\":65536,\"reopen\":false}",
	         path);
	harness_conf_ok(&H, cfg);
	snprintf(cfg, sizeof(cfg), "{\"sink\":\"udp\",\"host\":\"::1\",\"port\":9}");
	harness_conf_ok(&H, cfg);
}

static void bad_entries(void **state)
{
	fresh_path("bad.log");
	char cfg[300];
	snprintf(cfg, sizeof(cfg), "{\"path\":\"%s\"}", path);
	harness_conf_ok(&H, cfg);
	/* not a map: an error (counted), not a crash, nothing written */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_int(&pk, 1);
	assert_int_equal(log_packed(&sb), -EINVAL);
	struct shmring_log_record rec = {.entry = NULL};
	assert_int_equal(H.p->log(H.conf, &rec), -EINVAL);
	/* odd values: binary, non-string keys, NaN, deep nesting (msgpack-c
	 * itself stops at 32 levels), ext */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 7);
	msgpack_pack_str_with_body(&pk, "nested", 6); /* skipped keys first and last */
	msgpack_pack_map(&pk, 5);
	msgpack_pack_nil(&pk);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_int(&pk, -7);
	msgpack_pack_true(&pk);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_str_with_body(&pk, "b", 1);
	msgpack_pack_double(&pk, 2.5);
	msgpack_pack_array(&pk, 0);
	msgpack_pack_int(&pk, 3);
	msgpack_pack_str_with_body(&pk, "bin", 3);
	msgpack_pack_bin_with_body(&pk, "a\0b", 3);
	msgpack_pack_int(&pk, 42);
	msgpack_pack_str_with_body(&pk, "int key", 7);
	msgpack_pack_nil(&pk);
	msgpack_pack_str_with_body(&pk, "nil key is skipped", 18);
	msgpack_pack_str_with_body(&pk, "nan", 3);
	msgpack_pack_double(&pk, 0.0 / 0.0);
	msgpack_pack_str_with_body(&pk, "deep", 4);
	for (int i = 0; i < 30; i++)
		msgpack_pack_array(&pk, 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "ext", 3);
	msgpack_pack_ext_with_body(&pk, "xy", 2, 5);
	assert_int_equal(log_packed(&sb), 0);
	msgpack_sbuffer_destroy(&sb);
	drain();
	json_t *lines = read_lines(path);
	assert_int_equal(json_array_size(lines), 1);
	json_t *e = json_array_get(lines, 0);
	json_t *bin = json_object_get(e, "bin");
	assert_int_equal(json_string_length(bin), 3);
	assert_memory_equal(json_string_value(bin), "a\0b", 3);
	assert_string_equal(json_string_value(json_object_get(e, "42")), "int key");
	assert_int_equal(json_object_size(e), 6);
	json_t *nested = json_object_get(e, "nested");
	assert_int_equal(json_object_size(nested), 2);
	assert_int_equal(json_integer_value(json_object_get(nested, "a")), -7);
	assert_true(json_real_value(json_object_get(nested, "b")) == 2.5);
	assert_true(json_is_null(json_object_get(e, "nan")));
	assert_true(json_is_null(json_object_get(e, "ext")));
	json_t *d = json_object_get(e, "deep");
	int depth = 0;
	while (json_is_array(d)) {
		d = json_array_get(d, 0);
		depth++;
	}
	assert_int_equal(json_integer_value(d), 1);
	assert_int_equal(depth, 30);
	json_decref(lines);
}

#define ENTRY                                                                                      \
	"{\"request\":{\"method\":\"GET\",\"uri\":\"/log?a=1\",\"url\":\"http://h:80/log?a=1\","   \
	"\"size\":80,\"querystring\":{\"a\":\"1\"},\"headers\":{\"host\":\"h\"}},"                 \
	"\"response\":{\"status\":200,\"size\":120,\"headers\":{\"content-type\":\"text/"          \
	"plain\"}},"                                                                               \
	"\"latencies\":{\"request\":3,\"kong\":1,\"proxy\":2},\"client_ip\":\"127.0.0.1\","        \
	"\"started_at\":1764160000123,\"route\":{\"id\":\"r1\"},\"service\":{\"id\":\"s1\"},"      \
	"\"upstream_uri\":\"/log?a=1\"%s}"

static void file_lines(void **state)
{
	fresh_path("requests.log");
	char cfg[300], entry[2048];
	snprintf(cfg, sizeof(cfg), "{\"path\":\"%s\"}", path);
	harness_conf_ok(&H, cfg);
	enum { N = 1000 };
	for (int i = 0; i < N; i++) {
		char extra[128] = "";
		if (i % 2) /* ctx's id replaces one the entry has */
			snprintf(
			    extra, sizeof(extra),
			    ",\"correlation_id\":\"old\",\"ctx\":{\"correlation_id\":\"id-%d\","
			    "\"other\":\"x\"}",
			    i);
		snprintf(entry, sizeof(entry), ENTRY, extra);
		assert_int_equal(log_json(entry), 0);
	}
	drain();
	json_t *lines = read_lines(path);
	assert_int_equal(json_array_size(lines), N);
	for (int i = 0; i < N; i++) {
		json_t *e = json_array_get(lines, (size_t)i);
		json_t *rq = json_object_get(e, "request");
		assert_string_equal(json_string_value(json_object_get(rq, "method")), "GET");
		assert_string_equal(json_string_value(json_object_get(rq, "uri")), "/log?a=1");
		assert_int_equal(json_integer_value(json_object_get(rq, "size")), 80);
		assert_int_equal(
		    json_integer_value(json_object_get(json_object_get(e, "response"), "status")),
		    200);
		assert_int_equal(
		    json_integer_value(json_object_get(json_object_get(e, "latencies"), "proxy")),
		    2);
		assert_int_equal(json_integer_value(json_object_get(e, "started_at")),
		                 1764160000123);
		assert_null(json_object_get(e, "ctx")); /* gateway state stays out */
		json_t *cid = json_object_get(e, "correlation_id");
		if (i % 2) {
			char want[32];
			snprintf(want, sizeof(want), "id-%d", i);
			assert_string_equal(json_string_value(cid), want);
		} else {
			assert_null(cid);
		}
	}
	json_decref(lines);
	assert_true(WS.sink_entries >= N);
}

/* Empty strings as msgpack-c may hand them over: size 0, pointer NULL. */
static void empty_strings(void **state)
{
	fresh_path("empty.log");
	char cfg[300];
	snprintf(cfg, sizeof(cfg), "{\"path\":\"%s\"}", path);
	harness_conf_ok(&H, cfg);
	msgpack_object empty = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 0, .ptr = NULL}};
	msgpack_object_kv hdr = {.key = empty, .val = empty};
	msgpack_object headers = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = 1, .ptr = &hdr}};
	msgpack_object_kv req_kv = {
	    .key = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 7, .ptr = "headers"}},
	    .val = headers};
	msgpack_object request = {.type = MSGPACK_OBJECT_MAP,
	                          .via.map = {.size = 1, .ptr = &req_kv}};
	msgpack_object_kv top_kv = {
	    .key = {.type = MSGPACK_OBJECT_STR, .via.str = {.size = 7, .ptr = "request"}},
	    .val = request};
	msgpack_object entry = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = 1, .ptr = &top_kv}};
	struct shmring_log_record rec = {.req_id = 1, .conf_id = H.conf_id, .entry = &entry};
	assert_int_equal(H.p->log(H.conf, &rec), 0);
	drain();
	json_t *lines = read_lines(path);
	assert_int_equal(json_array_size(lines), 1);
	json_t *h =
	    json_object_get(json_object_get(json_array_get(lines, 0), "request"), "headers");
	assert_string_equal(json_string_value(json_object_get(h, "")), "");
	json_decref(lines);
}

static void escaping(void **state)
{
	fresh_path("escape.log");
	char cfg[300];
	snprintf(cfg, sizeof(cfg), "{\"path\":\"%s\"}", path);
	harness_conf_ok(&H, cfg);
	static const char nasty[] = "q\"uo\\te\x01\x1f\n\r\t</script>\x7f";
	static const char bad_utf8[] = "a\xff"
	                               "b\xc3(\xe2\x82"
	                               "c\xed\xa0\x80"
	                               "d\xf4\x90\x80\x80"
	                               "e\xc0\xaf";
	static const char good_utf8[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "request", 7);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "headers", 7);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_str_with_body(&pk, "x-nasty", 7);
	msgpack_pack_str_with_body(&pk, nasty, sizeof(nasty) - 1);
	msgpack_pack_str_with_body(&pk, "x-latin1", 8);
	msgpack_pack_str_with_body(&pk, bad_utf8, sizeof(bad_utf8) - 1);
	msgpack_pack_str_with_body(&pk, "x-utf8", 6);
	msgpack_pack_str_with_body(&pk, good_utf8, sizeof(good_utf8) - 1);
	msgpack_pack_str_with_body(&pk, "x-nul", 5);
	msgpack_pack_str_with_body(&pk, "a\0b", 3);
	msgpack_pack_str_with_body(&pk, "x-\"key\xff", 7); /* names are escaped too */
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "one", 3);
	msgpack_pack_str_with_body(&pk, "two", 3);
	assert_int_equal(log_packed(&sb), 0);
	msgpack_sbuffer_destroy(&sb);
	drain();

	/* the raw line: one line, no raw control byte, valid UTF-8 JSON */
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char raw[4096];
	size_t n = fread(raw, 1, sizeof(raw), f);
	fclose(f);
	assert_true(n > 0 && raw[n - 1] == '\n');
	for (size_t i = 0; i + 1 < n; i++)
		if ((unsigned char)raw[i] < 0x20)
			fail_msg("raw control byte 0x%02x at %zu in %.*s", raw[i], i, (int)n, raw);
	json_t *lines = read_lines(path);
	assert_int_equal(json_array_size(lines), 1);
	json_t *h =
	    json_object_get(json_object_get(json_array_get(lines, 0), "request"), "headers");
	assert_string_equal(json_string_value(json_object_get(h, "x-nasty")), nasty);
	/* every byte that does not start a valid sequence became U+FFFD */
	assert_string_equal(json_string_value(json_object_get(h, "x-latin1")),
	                    "a\xef\xbf\xbd"
	                    "b\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd"
	                    "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                    "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                    "e\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(h, "x-utf8")), good_utf8);
	json_t *nul = json_object_get(h, "x-nul");
	assert_int_equal(json_string_length(nul), 3);
	assert_memory_equal(json_string_value(nul), "a\0b", 3);
	json_t *rep = json_object_get(h, "x-\"key\xef\xbf\xbd");
	assert_non_null(rep);
	assert_string_equal(json_string_value(json_array_get(rep, 1)), "two");
	json_decref(lines);
}

static void reopen_after_rotation(void **state)
{
	fresh_path("rotate.log");
	char rotated[300], cfg[400];
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	unlink(rotated);
	snprintf(cfg, sizeof(cfg), "{\"path\":\"%s\",\"reopen\":true}", path);
	harness_conf_ok(&H, cfg);
	assert_int_equal(log_json("{\"n\":1}"), 0);
	drain();
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(log_json("{\"n\":2}"), 0);
	drain();
	json_t *a = read_lines(rotated), *b = read_lines(path);
	assert_int_equal(json_array_size(a), 1);
	assert_int_equal(json_array_size(b), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "n")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(b, 0), "n")), 2);
	json_decref(a);
	json_decref(b);

	/* without reopen the descriptor follows the renamed file */
	fresh_path("norotate.log");
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	unlink(rotated);
	snprintf(cfg, sizeof(cfg), "{\"path\":\"%s\"}", path);
	harness_conf_ok(&H, cfg);
	assert_int_equal(log_json("{\"n\":1}"), 0);
	drain();
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(log_json("{\"n\":2}"), 0);
	drain();
	a = read_lines(rotated);
	assert_int_equal(json_array_size(a), 2);
	assert_int_equal(access(path, F_OK), -1);
	json_decref(a);
}

/* Poll the sinks (as the worker loop does, without draining) until path
 * has `want` lines or 2 s passed; the line count. */
static size_t poll_lines(const char *p, size_t want)
{
	uint64_t end = shmring_now_ns() + 2000000000ull;
	size_t n = 0;
	for (;;) {
		shmringd__sinks_poll(shmring_now_ns());
		json_t *a = read_lines(p);
		n = json_array_size(a);
		json_decref(a);
		if (n >= want || shmring_now_ns() > end)
			return n;
		usleep(1000);
	}
}

/* max_batch_size and flush_interval become the sink's batch_entries and
 * flush_ms: with an hour's interval a batch goes out when it holds
 * max_batch_size entries, not before. */
static void batch_by_count(void **state)
{
	fresh_path("count.log");
	char cfg[400];
	snprintf(cfg, sizeof(cfg), "{\"path\":\"%s\",\"max_batch_size\":3,\"flush_interval\":3600}",
	         path);
	harness_conf_ok(&H, cfg);
	assert_int_equal(log_json("{\"n\":1}"), 0);
	assert_int_equal(log_json("{\"n\":2}"), 0);
	/* not due: neither full (3) nor old (1 h); 50 ms of worker loop turns */
	for (int i = 0; i < 50; i++) {
		shmringd__sinks_poll(shmring_now_ns());
		usleep(1000);
	}
	assert_int_equal(poll_lines(path, 0), 0);
	assert_int_equal(log_json("{\"n\":3}"), 0);
	assert_int_equal(poll_lines(path, 3), 3);
}

/* The per-sink settings are checked by shmring_sink_open itself too (for
 * plugins that build specs by hand). */
static void sink_spec_params(void **state)
{
	static const struct {
		const char *spec, *want;
	} bad[] = {
	    {"file:/tmp/x.log?flush_ms=0", "flush_ms 1..3600000"},
	    {"file:/tmp/x.log?bogus=1", "unknown parameter or value out of range: bogus=1"},
	    {"file:/tmp/x.log?batch_entries", "parameter 'batch_entries' wants =<value>"},
	    {"file:/tmp/x.log?max_bytes=-5", "wants =<unsigned integer>"},
	    {"file:/tmp/x.log?max_bytes=100", "max_bytes 1024..2^31"},
	    {"file:/tmp/x.log?reopen=1&&flush_ms=5", "bad parameter list"},
	    {"tcp:127.0.0.1:9?reopen=1", "reopen applies to file sinks only"},
	    {"ftp:/x?reopen=1", "unknown sink"},
	    {"http://127.0.0.1:9/x?method=GET", "method must be POST, PUT or PATCH"},
	    {"http://127.0.0.1:9/x?header=NoColon", "header wants 'Name: value'"},
	    {"http://127.0.0.1:9/x?header=A%3A%0Db", "no CR or LF"},
	    {"http://127.0.0.1:9/x?timeout_ms=0", "out of range: timeout_ms=0"},
	    {"file:/tmp/x.log?timeout_ms=5", "unknown parameter"}, /* http only */
	    {"http://bob:secret@127.0.0.1:9/x?bogus=1", "sink 'http://127.0.0.1:9/x'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shmring_sink *sk = (struct shmring_sink *)1;
		char err[256] = "";
		if (shmring_sink_open(bad[i].spec, &sk, err, sizeof(err)) >= 0)
			fail_msg("sink spec %s accepted", bad[i].spec);
		assert_null(sk);
		if (!strstr(err, bad[i].want))
			fail_msg("sink spec %s: \"%s\", expected \"%s\" in it", bad[i].spec, err,
			         bad[i].want);
	}
	fresh_path("spec.log");
	char spec[400], err[256];
	snprintf(spec, sizeof(spec),
	         "file:%s?batch_bytes=512&batch_entries=0&flush_ms=20&max_bytes=4096&reopen=0",
	         path);
	struct shmring_sink *sk;
	assert_int_equal(shmring_sink_open(spec, &sk, err, sizeof(err)), 0);
	assert_int_equal(shmring_sink_write(sk, "{}\n", 3), 0);
	assert_int_equal(poll_lines(path, 1), 1); /* due after flush_ms, without a drain */
	shmring_sink_release(sk);
}

static void udp_datagrams(void **state)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	char cfg[200];
	snprintf(cfg, sizeof(cfg),
	         "{\"sink\":\"udp\",\"host\":\"127.0.0.1\",\"port\":%d,\"max_batch_size\":1}",
	         ntohs(a.sin_port));
	harness_conf_ok(&H, cfg);
	assert_int_equal(log_json("{\"n\":1,\"s\":\"x\"}"), 0);
	assert_int_equal(log_json("{\"n\":2}"), 0);
	drain();
	for (int i = 1; i <= 2; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, 2000), 1);
		char buf[256];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		assert_true(buf[n - 1] == '}'); /* a datagram is the entry, no newline */
		json_error_t je;
		json_t *j = json_loadb(buf, (size_t)n, 0, &je);
		assert_non_null(j);
		assert_int_equal(json_integer_value(json_object_get(j, "n")), i);
		json_decref(j);
	}
	close(fd);
}

/* A listening TCP socket on 127.0.0.1; its port in *port. */
static int tcp_listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Up to n bytes the sink sent to listener lfd (one connection), within 5 s. */
static size_t tcp_read(int lfd, char *buf, size_t n)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	int c = accept(lfd, NULL, NULL);
	assert_true(c >= 0);
	size_t got = 0;
	p.fd = c;
	while (got < n && poll(&p, 1, 500) == 1) {
		ssize_t k = recv(c, buf + got, n - got, 0);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(c);
	return got;
}

/* tcp-log's host may be a name: looked up off the loop, then connected. */
static void tcp_host_name(void **state)
{
	int port, lfd = tcp_listener(&port);
	char cfg[200];
	snprintf(cfg, sizeof(cfg), "{\"sink\":\"tcp\",\"host\":\"localhost\",\"port\":%d}", port);
	harness_conf_ok(&H, cfg);
	assert_int_equal(log_json("{\"n\":1}"), 0);
	assert_int_equal(log_json("{\"n\":2}"), 0);
	drain();
	char buf[256] = "";
	size_t got = tcp_read(lfd, buf, sizeof(buf) - 1);
	buf[got] = '\0';
	if (strcmp(buf, "{\"n\":1}\n{\"n\":2}\n") != 0)
		fail_msg("tcp by name: got \"%s\"", buf);
	close(lfd);
	/* a name that does not resolve: accepted (DNS may come back), counted */
	uint64_t errors = WS.sink_errors;
	harness_conf_ok(&H, "{\"sink\":\"tcp\",\"host\":\"no-such-host.invalid\",\"port\":9}");
	assert_int_equal(log_json("{\"n\":3}"), 0);
	for (int i = 0; i < 500 && WS.sink_errors == errors; i++) {
		usleep(10000);
		shmringd__sinks_poll(shmring_now_ns());
	}
	assert_true(WS.sink_errors > errors);
}

/* A sink that is down past its bound drops and counts, the hook still
 * returns 0 (nothing waits). */
static void tcp_down_drops_counted(void **state)
{
	/* a port nothing listens on (bound, never listened) */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	char cfg[200];
	snprintf(cfg, sizeof(cfg),
	         "{\"sink\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":%d,\"max_buffered_bytes\":"
	         "4096}",
	         ntohs(a.sin_port));
	harness_conf_ok(&H, cfg);
	uint64_t before = WS.sink_dropped;
	for (int i = 0; i < 200; i++)
		assert_int_equal(log_json("{\"request\":{\"method\":\"GET\",\"uri\":\"/x\"}}"), 0);
	/* 2048 bytes per buffer hold ~50 of these: the rest is dropped */
	assert_true(WS.sink_dropped - before >= 100);
	close(fd);
}

int main(void)
{
	int rc = harness_sinks_start(&WS);
	if (rc != 0)
		return rc;
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(config_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(file_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(escaping, setup, teardown),
	    cmocka_unit_test_setup_teardown(empty_strings, setup, teardown),
	    cmocka_unit_test_setup_teardown(reopen_after_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(batch_by_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(sink_spec_params, setup, teardown),
	    cmocka_unit_test_setup_teardown(udp_datagrams, setup, teardown),
	    cmocka_unit_test_setup_teardown(tcp_down_drops_counted, setup, teardown),
	    cmocka_unit_test_setup_teardown(tcp_host_name, setup, teardown),
	};
	rc = cmocka_run_group_tests_name("log", tests, NULL, NULL);
	shmringd__sinks_fini();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
