/* SPDX-License-Identifier: MIT */
/* CONF then ACCESS/REWRITE/HEADER_FILTER to hello; unknown conf id; bad
 * configs; malformed records and unknown types (answered and counted); the
 * CQ doorbell; conf tables dropped for a new channel owner; shmringctl; a
 * second instance on the same directory refused. */
#include "client.h"
#include "core/core_util.h" /* long_path */

static int str_is(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Check action i of reply r is [op, a, b]. */
static void check_action(const struct tc_reply *r, uint32_t i, uint64_t op, const char *a,
                         const char *b)
{
	const msgpack_object *acts = shmring_mp_get(r->root, "a");
	CHECK(acts && acts->type == MSGPACK_OBJECT_ARRAY, "reply has no action array");
	CHECK(i < acts->via.array.size, "missing action %u", i);
	const msgpack_object *x = &acts->via.array.ptr[i];
	CHECK(x->type == MSGPACK_OBJECT_ARRAY && x->via.array.size == 3, "action shape");
	CHECK(x->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	          x->via.array.ptr[0].via.u64 == op,
	      "action %u op", i);
	CHECK(str_is(&x->via.array.ptr[1], a) && str_is(&x->via.array.ptr[2], b), "action %u args",
	      i);
}

static void fill_hf(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, *(uint64_t *)arg);
	shmring_mpw_cstr(w, "status");
	shmring_mpw_uint(w, 200);
	shmring_mpw_cstr(w, "resp_headers");
	shmring_mpw_map(w, 0);
}

static void fill_no_conf(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 1);
	shmring_mpw_cstr(w, "path");
	shmring_mpw_cstr(w, "/x");
}

static void fill_log(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, *(uint64_t *)arg);
	shmring_mpw_cstr(w, "entry");
	shmring_mpw_map(w, 0);
}

int main(void)
{
	tc_init("basic");

	/* An instance directory longer than an instance can hold (but a valid
	 * path): refused before anything is created, no half-made tree. */
	static char longdir[PATH_MAX];
	long_path(longdir, sizeof(longdir), tc_dir, PATH_MAX - 20);
	const char *too_long[] = {"--shm-dir", longdir, NULL};
	CHECK(tc_wait_exit(tc_spawn(too_long), 10 * SEC) != 0,
	      "shmringd with a too long shm_dir must fail");
	snprintf(longdir, sizeof(longdir), "%s/long", tc_dir);
	CHECK(access(longdir, F_OK) < 0, "a too long shm_dir must not be half created (%s)",
	      longdir);
	CHECK(tc_log_contains("too long"), "the error names the cause");
	const char *args[] = {"--workers", "2", "--channels", "4", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(2, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim a channel");
	static struct tc_reply r;
	char e[512];
	uint64_t req = 1;

	/* CONF then ACCESS: the two hello actions. */
	struct tc_conf hello = {.id = 7, .plugin = "hello"};
	tc_register(c, &r, req++, &hello);
	uint64_t conf = 7;
	tc_send(c, SHMRING_REC_ACCESS, req, tc_fill_access, &conf);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "ACCESS failed: %s", tc_err(&r, e, sizeof(e)));
	check_action(&r, 0, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "World");
	check_action(&r, 1, SHMRING_ACT_SET_RESP_HEADER, "X-Hello", "World");

	/* REWRITE behaves like ACCESS for hello; HEADER_FILTER sets the
	 * response header. */
	tc_send(c, SHMRING_REC_REWRITE, req, tc_fill_access, &conf);
	tc_expect(c, &r, req++, 5 * SEC);
	check_action(&r, 0, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "World");
	tc_send(c, SHMRING_REC_HEADER_FILTER, req, fill_hf, &conf);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "HEADER_FILTER failed: %s", tc_err(&r, e, sizeof(e)));
	check_action(&r, 0, SHMRING_ACT_SET_RESP_HEADER, "X-Hello", "World");

	/* A config value, and re-registering the same id replaces it. */
	struct tc_conf custom = {.id = 7, .plugin = "hello", .k1 = "value", .v1 = "Moon"};
	tc_register(c, &r, req++, &custom);
	tc_send(c, SHMRING_REC_ACCESS, req, tc_fill_access, &conf);
	tc_expect(c, &r, req++, 5 * SEC);
	check_action(&r, 0, SHMRING_ACT_SET_REQ_HEADER, "X-Hello", "Moon");

	/* Unknown conf id: s = 2, for ACCESS and for a LOG with a req_id. */
	uint64_t unknown = 999;
	tc_send(c, SHMRING_REC_ACCESS, req, tc_fill_access, &unknown);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_UNKNOWN_CONF, "unknown conf answered s=%llu",
	      (unsigned long long)r.s);
	tc_send(c, SHMRING_REC_LOG, req, fill_log, &unknown);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_UNKNOWN_CONF, "unknown conf LOG answered s=%llu",
	      (unsigned long long)r.s);

	/* Refused configs: unknown plugin, bad value. */
	struct tc_conf nope = {.id = 8, .plugin = "no-such-plugin"};
	tc_send(c, SHMRING_REC_CONF, req, tc_fill_conf, &nope);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR && strstr(tc_err(&r, e, sizeof(e)), "unknown plugin"),
	      "unknown plugin: %s", e);
	struct tc_conf bad = {.id = 9, .plugin = "hello", .k1 = "value", .v1 = ""};
	tc_send(c, SHMRING_REC_CONF, req, tc_fill_conf, &bad);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR && strstr(tc_err(&r, e, sizeof(e)), "config.value"),
	      "bad config: %s", e);

	/* Malformed records: bad msgpack, truncated msgpack, a snapshot
	 * without conf, an unknown type. Each answered with s = 1. */
	struct shmringd_stats *st = tc_stats();
	uint32_t w = shmring_chan_index(c) % 2;
	uint64_t malformed0 = st->w[w].malformed;
	const uint8_t junk[] = {0xc1, 0xc1, 0xc1};
	const uint8_t truncated[] = {0x82, 0xa4, 'c', 'o', 'n', 'f'};
	tc_send_raw(c, SHMRING_REC_ACCESS, req, junk, sizeof(junk));
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR && strstr(tc_err(&r, e, sizeof(e)), "malformed"),
	      "junk: %s", e);
	tc_send_raw(c, SHMRING_REC_CONF, req, truncated, sizeof(truncated));
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR, "truncated answered s=%llu", (unsigned long long)r.s);
	tc_send(c, SHMRING_REC_ACCESS, req, fill_no_conf, NULL);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR, "no conf answered s=%llu", (unsigned long long)r.s);
	tc_send_raw(c, 77, req, junk, sizeof(junk));
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR && strstr(tc_err(&r, e, sizeof(e)), "unknown record type"),
	      "type: %s", e);
	tc_send_raw(c, SHMRING_REC_ACCESS, 0, junk, sizeof(junk)); /* req_id 0: no reply */
	tc_send(c, SHMRING_REC_ACCESS, req, tc_fill_access, &conf);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "the worker still serves after junk");
	CHECK(st->w[w].malformed - malformed0 == 5, "malformed counted %llu",
	      (unsigned long long)(st->w[w].malformed - malformed0));

	/* Garbage: random bytes and well-formed msgpack of the wrong shape,
	 * under every type. The worker answers each one that has a req_id,
	 * in order, and never dies (no restart). */
	uint64_t restarts0 = shmring_instance_worker_counters(inst, w)->restarts;
	uint64_t pid0 = shmring_instance_worker_counters(inst, w)->pid;
	static const uint8_t shapes[][32] = {
	    {0x81, 0xa4, 'c', 'o', 'n', 'f', 0xa1, 'x'}, /* conf: str */
	    {0x82, 0xa4, 'c', 'o', 'n', 'f', 0x07, 0xa7, 'h', 'e', 'a', 'd', 'e', 'r', 's', 0x92,
	     0x01, 0x02}, /* headers: array */
	    {0x82, 0xa4, 'c', 'o', 'n', 'f', 0x07, 0xa4, 'p', 'a', 't', 'h', 0xc0}, /* path nil */
	    {0x93, 0x01, 0x02, 0x03},                                               /* an array */
	    {0xc0},                                                                 /* nil */
	    {0x82, 0xa4, 'c', 'o', 'n', 'f', 0x07, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xff},
	    {0x83, 0xa4, 'c', 'o', 'n', 'f', 0x07, 0xa6, 'p', 'l', 'u', 'g', 'i', 'n',
	     0xa5, 'h',  'e', 'l', 'l', 'o', 0xa6, 'c',  'o', 'n', 'f', 'i'}, /* truncated CONF */
	};
	uint32_t seed = 12345;
	uint64_t first_garbage = req;
	for (int i = 0; i < 3000; i++) {
		uint8_t buf[64];
		uint32_t len;
		seed = seed * 1103515245u + 12345u;
		uint16_t type = (uint16_t)(1 + (seed >> 16) % 6); /* 1..5 and 6 (unknown) */
		if (i % 2) {
			len = 1 + (seed >> 8) % sizeof(buf);
			for (uint32_t k = 0; k < len; k++) {
				seed = seed * 1103515245u + 12345u;
				buf[k] = (uint8_t)(seed >> 16);
			}
		} else {
			const uint8_t *sh = shapes[(i / 2) % (sizeof(shapes) / sizeof(shapes[0]))];
			len = sizeof(shapes[0]);
			while (len > 1 && sh[len - 1] == 0)
				len--;
			memcpy(buf, sh, len);
		}
		/* LOG records get no reply when they parse (fire and forget):
		 * send them with req_id 0 and expect nothing. */
		if (type == SHMRING_REC_LOG) {
			tc_send_raw(c, type, 0, buf, len);
		} else {
			tc_send_raw(c, type, req++, buf, len);
		}
	}
	uint64_t answered = 0;
	while (answered < req - first_garbage) {
		CHECK(tc_recv(c, &r, 5 * SEC) == 0, "garbage %llu not answered",
		      (unsigned long long)answered);
		CHECK(r.req_id == first_garbage + answered, "garbage replies out of order");
		CHECK(r.s <= 2, "bad status %llu", (unsigned long long)r.s);
		answered++;
	}
	tc_send(c, SHMRING_REC_ACCESS, req, tc_fill_access, &conf);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "the worker still serves after garbage");
	CHECK(shmring_instance_worker_counters(inst, w)->restarts == restarts0 &&
	          shmring_instance_worker_counters(inst, w)->pid == pid0,
	      "the worker died on garbage");
	malformed0 = st->w[w].malformed;

	/* The doorbell: connect, arm, submit; one byte arrives. */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	CHECK(shmring_doorbell_path(inst, shmring_chan_index(c), path, sizeof(path)) > 0, "path");
	int bell = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	CHECK(connect(bell, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect doorbell: %s",
	      strerror(errno));
	for (int round = 0; round < 3; round++) {
		CHECK(shmring_doorbell_arm(c) == 0, "nothing should be waiting");
		tc_send(c, SHMRING_REC_ACCESS, req, tc_fill_access, &conf);
		struct pollfd pfd = {.fd = bell, .events = POLLIN};
		CHECK(poll(&pfd, 1, 5000) == 1, "doorbell did not ring");
		char b[16];
		CHECK(read(bell, b, sizeof(b)) >= 1, "doorbell read");
		tc_expect(c, &r, req++, 5 * SEC);
		CHECK(r.s == SHMRING_REPLY_OK, "reply after doorbell");
	}
	close(bell);

	/* A second daemon on the same directory refuses with a message. */
	pid_t second = tc_spawn(NULL);
	int rc = tc_wait_exit(second, 10 * SEC);
	CHECK(rc != 0, "second instance started");
	CHECK(tc_log_contains("already running on"), "no clear refusal message");

	/* A new owner (another process claims the channel) starts with no
	 * confs: conf 7 is unknown to it, and the old table was dropped. */
	uint32_t idx = shmring_chan_index(c);
	uint64_t changes0 = st->w[w].owner_changes;
	shmring_chan_release(c);
	pid_t child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		struct shmring_instance *ci;
		struct shmring_chan *cc;
		static struct tc_reply cr;
		if (shmring_instance_attach(tc_shm, &ci) < 0 || shmring_chan_claim(ci, &cc) < 0)
			_exit(10);
		if (shmring_chan_index(cc) != idx)
			_exit(11);
		tc_send(cc, SHMRING_REC_ACCESS, 1, tc_fill_access, &conf);
		tc_expect(cc, &cr, 1, 5 * SEC);
		_exit(cr.s == SHMRING_REPLY_UNKNOWN_CONF ? 0 : 12);
	}
	int cst;
	CHECK(waitpid(child, &cst, 0) == child && WIFEXITED(cst), "child");
	CHECK(WEXITSTATUS(cst) == 0, "new owner saw the old confs (child exit %d)",
	      WEXITSTATUS(cst));
	CHECK(st->w[w].owner_changes == changes0 + 1, "owner change not counted");
	CHECK(shmring_chan_claim(inst, &c) == 0 && shmring_chan_index(c) == idx, "claim again");

	/* shmringctl sees the same counters. */
	char cmd[600], out[65536];
	snprintf(cmd, sizeof(cmd), "%s --shm-dir %s stats --json", SHMRINGCTL_PATH, tc_shm);
	FILE *p = popen(cmd, "r");
	CHECK(p, "popen shmringctl");
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	CHECK(pclose(p) == 0, "shmringctl failed");
	CHECK(strstr(out, "\"malformed\":") && strstr(out, "\"unknown_conf\":3,") &&
	          strstr(out, "\"lat_hist_log2_ns\":[") &&
	          strstr(out, "{\"name\":\"hello\",\"calls\":"),
	      "shmringctl stats --json: %s", out);
	snprintf(cmd, sizeof(cmd), "%s --shm-dir %s stats >/dev/null", SHMRINGCTL_PATH, tc_shm);
	CHECK(system(cmd) == 0, "shmringctl table");

	shmring_chan_release(c);
	shmring_instance_close(inst, 0);
	kill(tc_pid, SIGTERM);
	CHECK(tc_wait_exit(tc_pid, 10 * SEC) == 0, "graceful stop exit code");
	struct stat sb;
	CHECK(stat(tc_shm, &sb) == 0, "dir kept");
	char ctl[400];
	snprintf(ctl, sizeof(ctl), "%s/ctl", tc_shm);
	CHECK(stat(ctl, &sb) < 0, "segments unlinked on stop");
	printf("ok\n");
	return 0;
}
