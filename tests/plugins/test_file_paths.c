/* SPDX-License-Identifier: MIT */
/*
 * Paths in plugin configs (key-auth's credentials_file, log's path) are
 * opened as the daemon's plugin_file_dirs allows: only below an allowed
 * directory, no symbolic link in any component, no "..", never blocking on
 * a FIFO, only regular files; and an error never quotes the file (key-auth
 * and jwt, which read the same credentials format).
 *
 * Layout under a temp dir:
 *   allowed/            the only entry of plugin_file_dirs
 *     sub/creds.json    a good credentials file
 *     link.json  -> ../outside/creds.json
 *     linkdir    -> ../outside
 *     link.log   -> ../outside/target.log
 *     fifo               a FIFO nobody opens from the other side
 *     bad.json, unknown.json  broken files holding a "secret"
 *   outside/creds.json, outside/target.log
 * Every refusal is also a hang guard: alarm() ends a test stuck in open().
 */
#include "daemon.h"
#include "harness.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "s3cr3t-token-in-file"

static char base[] = "/tmp/shmring-paths-XXXXXX";
static char allowed[300];
static struct shmring_test H;
static struct shmringd_worker_stats WS;

static void put(const char *rel, const char *content)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void link_to(const char *target, const char *rel)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	assert_int_equal(symlink(target, p), 0);
}

#define GOOD_CREDS                                                                                 \
	"{\"consumers\":[{\"id\":\"c1\",\"username\":\"u1\","                                      \
	"\"keyauth_credentials\":[{\"id\":\"kc1\",\"key\":\"key-from-the-file\"}]}]}"

/* conf_new with {"<field>": "<base>/<rel>"} refused with `want` in the
 * message, never quoting the secret, within the alarm. */
static void refused(const char *field, const char *rel, const char *want)
{
	char conf[600];
	snprintf(conf, sizeof(conf), "{\"%s\":\"%s/%s\"}", field, base, rel);
	alarm(5);
	harness_conf_refused(&H, conf, want);
	alarm(0);
	if (strstr(H.err, SECRET) || strstr(H.err, "key-from-the-file"))
		fail_msg("the error quotes the file: %s", H.err);
}

static void accepted(const char *field, const char *rel)
{
	char conf[600];
	snprintf(conf, sizeof(conf), "{\"%s\":\"%s/%s\"}", field, base, rel);
	alarm(5);
	harness_conf_ok(&H, conf);
	alarm(0);
}

static void credentials_file(void **state)
{
	(void)state;
	shmring_test_open(&H, KEY_AUTH_SO);
	accepted("credentials_file", "allowed/sub/creds.json");
	refused("credentials_file", "outside/creds.json",
	        "is not below a directory the daemon allows");
	refused("credentials_file", "allowed/link.json", "symbolic links are not followed");
	refused("credentials_file", "allowed/linkdir/creds.json",
	        "symbolic links are not followed");
	refused("credentials_file", "allowed/../outside/creds.json", "'..'");
	refused("credentials_file", "allowed//sub/creds.json", "'//'");
	refused("credentials_file", "allowed/fifo", "not a regular file");
	refused("credentials_file", "allowed/sub", "not a regular file");
	refused("credentials_file", "allowed/bad.json", "line 1");
	refused("credentials_file", "allowed/unknown.json", "unknown field");
	refused("credentials_file", "allowed/top.json", "unknown top-level field");
	refused("credentials_file", "allowed/noid.json", "keyauth_credentials[0].id is required");
	refused("credentials_file", "allowed/dup.json", "duplicate consumer id");
	shmring_test_close(&H);
	/* jwt reads the same files: its messages name positions too. */
	shmring_test_open(&H, JWT_SO);
	refused("credentials_file", "allowed/jwt.json",
	        "consumers[0].jwt_secrets[0] (key not shown)");
	shmring_test_close(&H);
}

static void log_path(void **state)
{
	(void)state;
	shmring_test_open(&H, LOG_SO);
	accepted("path", "allowed/ok.log");
	refused("path", "outside/x.log", "is not below a directory the daemon allows");
	refused("path", "allowed/link.log", "symbolic links are not followed");
	refused("path", "allowed/linkdir/x.log", "symbolic links are not followed");
	refused("path", "allowed/fifo", "not a regular file");
	struct stat st;
	char p[400];
	snprintf(p, sizeof(p), "%s/outside/target.log", base);
	assert_int_equal(stat(p, &st), -1); /* the link was not followed to create it */
	snprintf(p, sizeof(p), "%s/outside/x.log", base);
	assert_int_equal(stat(p, &st), -1);
	shmring_test_close(&H);
	shmringd__sinks_drain(shmring_now_ns() + 2000000000ull);
}

/* The list itself: absolute directories only; an empty list allows
 * nothing; a trailing slash is the same directory. */
static void dirs_list(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(shmringd__file_dirs_set("relative/dir", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not an absolute directory"));
	shmring_test_open(&H, KEY_AUTH_SO);
	assert_int_equal(shmringd__file_dirs_set("", err, sizeof(err)), 0);
	refused("credentials_file", "allowed/sub/creds.json", "is not below a directory");
	char list[400];
	snprintf(list, sizeof(list), "/nonexistent-shmring:%s/", allowed);
	assert_int_equal(shmringd__file_dirs_set(list, err, sizeof(err)), 0);
	accepted("credentials_file", "allowed/sub/creds.json");
	shmring_test_close(&H);
}

int main(void)
{
	int rc = harness_sinks_start(&WS);
	if (rc != 0)
		return rc;
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	char p[400];
	const char *dirs[] = {"allowed", "allowed/sub", "outside"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", base, dirs[i]);
		if (mkdir(p, 0700) < 0)
			return 1;
	}
	snprintf(p, sizeof(p), "%s/allowed/fifo", base);
	if (mkfifo(p, 0600) < 0)
		return 1;
	put("allowed/sub/creds.json", GOOD_CREDS);
	put("outside/creds.json", GOOD_CREDS);
	put("allowed/bad.json", "{\"consumers\": [" SECRET "]}");
	put("allowed/unknown.json",
	    "{\"consumers\":[{\"id\":\"c\",\"username\":\"u\",\"" SECRET "\":1}]}");
	put("allowed/top.json", "{\"" SECRET "\":[]}");
	put("allowed/noid.json", "{\"consumers\":[{\"id\":\"" SECRET "\",\"username\":\"u\","
	                         "\"keyauth_credentials\":[{\"key\":\"kk\"}]}]}");
	put("allowed/dup.json", "{\"consumers\":[{\"id\":\"" SECRET "\",\"username\":\"u\"},"
	                        "{\"id\":\"" SECRET "\",\"username\":\"v\"}]}");
	put("allowed/jwt.json", "{\"consumers\":[{\"id\":\"c\",\"username\":\"u\","
	                        "\"jwt_secrets\":[{\"key\":\"" SECRET "\",\"algorithm\":\"" SECRET
	                        "\",\"secret\":\"s\"}]}]}");
	link_to("../outside/creds.json", "allowed/link.json");
	link_to("../outside", "allowed/linkdir");
	link_to("../outside/target.log", "allowed/link.log");
	snprintf(allowed, sizeof(allowed), "%s/allowed", base);
	char err[256];
	if (shmringd__file_dirs_set(allowed, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(credentials_file),
	    cmocka_unit_test(log_path),
	    cmocka_unit_test(dirs_list),
	};
	rc = cmocka_run_group_tests_name("file_paths", tests, NULL, NULL);
	shmringd__sinks_fini();
	snprintf(p, sizeof(p), "rm -rf %s", base);
	if (system(p) != 0)
		rc = 1;
	return rc;
}
