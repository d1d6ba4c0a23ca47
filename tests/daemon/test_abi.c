/* SPDX-License-Identifier: MIT */
/* A plugin built for another ABI version is refused with a clear message:
 * fatal when named in `plugins` or found by scanning plugin_dir, skipped
 * (and CONF for it answered with the reason) with allow_plugin_errors. A
 * plugin_dir that cannot be read is fatal too. The minimal example of the
 * header loads and answers. */
#include "client.h"

int main(void)
{
	tc_init("abi");
	static struct tc_reply r;
	char e[512];

	const char *dirs = PLUGIN_DIRS ":" BAD_PLUGIN_DIR;

	/* Named explicitly: shmringd refuses to start. */
	const char *strict[] = {"--plugin-dir", dirs, "--plugins", "hello,badabi", NULL};
	tc_pid = tc_spawn(strict);
	int rc = tc_wait_exit(tc_pid, 10 * SEC);
	CHECK(rc == 2, "shmringd with a bad plugin exited %d", rc);
	CHECK(tc_log_contains("badabi.so: plugin ABI version 99, this shmringd speaks version 1"),
	      "no clear ABI message");

	/* Found by scanning: refused too, by default. */
	const char *scan_strict[] = {"--plugin-dir", dirs, NULL};
	tc_pid = tc_spawn(scan_strict);
	rc = tc_wait_exit(tc_pid, 10 * SEC);
	CHECK(rc == 2, "shmringd scanning a bad plugin exited %d", rc);

	/* A plugin_dir that does not exist: refused, the path in the message. */
	const char *missing[] = {"--plugin-dir", PLUGIN_DIRS ":" BAD_PLUGIN_DIR "-missing", NULL};
	tc_pid = tc_spawn(missing);
	rc = tc_wait_exit(tc_pid, 10 * SEC);
	CHECK(rc == 2, "shmringd with a missing plugin_dir exited %d", rc);
	CHECK(tc_log_contains("plugin_dir " BAD_PLUGIN_DIR "-missing: No such file or directory"),
	      "no message naming the missing plugin_dir");

	/* Allowed: the others load; CONF for it says why not. */
	const char *scan[] = {"--plugin-dir", dirs,        "--allow-plugin-errors",
	                      "on",           "--workers", "1",
	                      "--channels",   "2",         NULL};
	tc_pid = tc_spawn(scan);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	CHECK(tc_log_contains("refusing plugin"), "refusal not logged");
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	struct tc_conf bad = {.id = 1, .plugin = "badabi"};
	tc_send(c, SHMRING_REC_CONF, 1, tc_fill_conf, &bad);
	tc_expect(c, &r, 1, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR && strstr(tc_err(&r, e, sizeof(e)), "ABI version 99"),
	      "CONF badabi: %s", e);
	struct tc_conf hello = {.id = 2, .plugin = "hello"};
	tc_register(c, &r, 2, &hello);

	/* The header's minimal example (no conf_new) loads and answers. */
	struct tc_conf minimal = {.id = 3, .plugin = "minimal", .k1 = "any", .v1 = "thing"};
	tc_register(c, &r, 3, &minimal);
	uint64_t id = 3;
	tc_send(c, SHMRING_REC_ACCESS, 4, tc_fill_access, &id);
	tc_expect(c, &r, 4, 5 * SEC);
	const msgpack_object *a = shmring_mp_get(r.root, "a");
	CHECK(r.s == SHMRING_REPLY_OK && a && a->type == MSGPACK_OBJECT_ARRAY &&
	          a->via.array.size == 1,
	      "minimal plugin reply");
	return tc_stop(inst, c);
}
