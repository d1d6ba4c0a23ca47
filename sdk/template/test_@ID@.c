/* SPDX-License-Identifier: MIT */
/*
 * Unit test of the @NAME@ plugin: its hooks run in-process, without nginx or
 * shmringd, through the plugin test library (shmring/plugin_test.h).
 * Exit 0 = pass, 77 = skipped, 1 = fail (CTest's conventions).
 */
#include <shmring/plugin_test.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                      \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static void test_defaults(struct shmring_test *t)
{
	CHECK(shmring_test_conf(t, "{}") == 0, "conf_new refused {}: %s", t->err);
	int rc = shmring_test_call(
	    t, SHMRING_PHASE_ACCESS,
	    "{\"method\": \"GET\", \"path\": \"/\", \"client_ip\": \"127.0.0.1\"}");
	CHECK(rc == 0, "access returned %d", rc);
	const char *v = shmring_test_set_header(t, "X-@NAME@");
	CHECK(v && !strcmp(v, "hello"), "upstream header: %s", shmring_test_reply_text(t));
	v = shmring_test_set_resp_header(t, "X-@NAME@");
	CHECK(v && !strcmp(v, "hello"), "response header: %s", shmring_test_reply_text(t));
	CHECK(shmring_test_count(t, "exit") == 0, "no exit: %s", shmring_test_reply_text(t));
	/* Under a gateway only what the descriptor declares is in the snapshot. */
	CHECK(shmring_test_undeclared_reads(t) == 0, "reads undeclared: %s",
	      json_dumps(shmring_test_reads(t), JSON_COMPACT));
}

static void test_config(struct shmring_test *t)
{
	CHECK(shmring_test_conf(t, "{\"header\": \"X-Team\", \"value\": \"blue\"}") == 0, "%s",
	      t->err);
	shmring_test_call(t, SHMRING_PHASE_ACCESS, "{\"method\": \"GET\", \"path\": \"/a\"}");
	const char *v = shmring_test_set_header(t, "x-team");
	CHECK(v && !strcmp(v, "blue"), "configured header: %s", shmring_test_reply_text(t));

	/* Refused configs say what is wrong, as nginx/Kong will show it. */
	CHECK(shmring_test_conf(t, "{\"value\": 7}") < 0 &&
	          strstr(t->err, "config.value must be a string"),
	      "value 7: \"%s\"", t->err);
	CHECK(shmring_test_conf(t, "{\"header\": \"\"}") < 0 &&
	          strstr(t->err, "config.header: length must be at least 1"),
	      "empty header: \"%s\"", t->err);
	CHECK(shmring_test_conf(t, "{\"colour\": \"x\"}") < 0 &&
	          strstr(t->err, "unknown config field 'colour'"),
	      "unknown key: \"%s\"", t->err);
	CHECK(shmring_test_conf(t, "{\"log_to\": \"file:/etc/passwd\"}") < 0 &&
	          strstr(t->err, "config.log_to"),
	      "a file outside plugin_file_dirs: \"%s\"", t->err);
}

static void test_log(struct shmring_test *t)
{
	if (shmring_test_sinks_start() < 0) {
		printf("log hook not run: io_uring is unavailable here\n");
		return;
	}
	char path[] = "/tmp/test_@ID@-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp");
	close(fd);
	char conf[256];
	snprintf(conf, sizeof(conf), "{\"log_to\": \"file:%s\"}", path);
	CHECK(shmring_test_conf(t, conf) == 0, "%s", t->err);
	int rc = shmring_test_log(t, "{\"request\": {\"method\": \"GET\", \"uri\": \"/a?b=1\"},"
	                             " \"response\": {\"status\": 200}}");
	CHECK(rc == 0, "log returned %d", rc);
	shmring_test_sinks_flush();
	char line[256] = "";
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
	}
	CHECK(!strcmp(line, "200 GET /a?b=1\n"), "log line: \"%s\"", line);
	unlink(path);
}

int main(void)
{
	struct shmring_test t;
	shmring_test_open(&t, PLUGIN_SO);
	test_defaults(&t);
	test_config(&t);
	test_log(&t);
	shmring_test_close(&t);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
