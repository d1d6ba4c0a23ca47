/* SPDX-License-Identifier: MIT */
/* key-auth's credentials file through a real shmringd: a replaced file is
 * picked up by the next request (reload_interval_ms 0), and a SIGHUP reload
 * re-reads it for a config that never checks it by itself; a path outside
 * the daemon's plugin_file_dirs, or a link, is refused. Requests go through
 * the rings exactly as the gateway sends them (tests/daemon/client.h). */
#include "client.h"
#include "shmring_plugin.h" /* the action codes */

/* The value under key in a msgpack map, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
	size_t n = strlen(key);
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    !memcmp(k->via.str.ptr, key, n))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

static char creds[400];

static void write_creds(const char *consumer, const char *key)
{
	char tmp[420];
	snprintf(tmp, sizeof(tmp), "%s.tmp", creds);
	FILE *f = fopen(tmp, "w");
	CHECK(f, "creds file");
	fprintf(f,
	        "{\"consumers\":[{\"id\":\"%s-id\",\"username\":\"%s\","
	        "\"keyauth_credentials\":[{\"id\":\"%s-cred\",\"key\":\"%s\"}]}]}",
	        consumer, consumer, consumer, key);
	fclose(f);
	CHECK(rename(tmp, creds) == 0, "rename: %s", strerror(errno));
}

struct conf_arg {
	uint64_t id;
	uint64_t interval_ms;
};

static void fill_conf(struct shmring_mpw *w, void *arg)
{
	struct conf_arg *a = arg;
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, a->id);
	shmring_mpw_cstr(w, "plugin");
	shmring_mpw_cstr(w, "key-auth");
	shmring_mpw_cstr(w, "config");
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "credentials_file");
	shmring_mpw_cstr(w, creds);
	shmring_mpw_cstr(w, "reload_interval_ms");
	shmring_mpw_uint(w, a->interval_ms);
}

struct access_arg {
	uint64_t conf;
	const char *key;
};

static void fill_access(struct shmring_mpw *w, void *arg)
{
	struct access_arg *a = arg;
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, a->conf);
	shmring_mpw_cstr(w, "method");
	shmring_mpw_cstr(w, "GET");
	shmring_mpw_cstr(w, "headers");
	shmring_mpw_map(w, 1);
	shmring_mpw_cstr(w, "apikey");
	shmring_mpw_cstr(w, a->key);
}

static void register_conf(struct shmring_chan *c, struct tc_reply *r, uint64_t req,
                          struct conf_arg *a)
{
	char e[512];
	tc_send(c, SHMRING_REC_CONF, req, fill_conf, a);
	tc_expect(c, r, req, 5 * SEC);
	CHECK(r->s == SHMRING_REPLY_OK, "CONF refused: %s", tc_err(r, e, sizeof(e)));
}

/* The consumer username AUTHENTICATE names, or "401", "s=<n>". */
static const char *access_result(struct shmring_chan *c, struct tc_reply *r, uint64_t req,
                                 uint64_t conf, const char *key)
{
	static char out[128];
	struct access_arg a = {conf, key};
	tc_send(c, SHMRING_REC_ACCESS, req, fill_access, &a);
	tc_expect(c, r, req, 5 * SEC);
	if (r->s != SHMRING_REPLY_OK) {
		snprintf(out, sizeof(out), "s=%llu", (unsigned long long)r->s);
		return out;
	}
	const msgpack_object *acts = map_get(r->root, "a");
	CHECK(acts && acts->type == MSGPACK_OBJECT_ARRAY, "reply without actions");
	for (uint32_t i = 0; i < acts->via.array.size; i++) {
		const msgpack_object *x = &acts->via.array.ptr[i];
		CHECK(x->type == MSGPACK_OBJECT_ARRAY && x->via.array.size >= 2, "bad action");
		uint64_t op = x->via.array.ptr[0].via.u64;
		if (op == SHMRING_ACT_EXIT) {
			snprintf(out, sizeof(out), "%llu",
			         (unsigned long long)x->via.array.ptr[1].via.u64);
			return out;
		}
		if (op == SHMRING_ACT_AUTHENTICATE) {
			const msgpack_object *u = map_get(&x->via.array.ptr[1], "username");
			CHECK(u && u->type == MSGPACK_OBJECT_STR, "AUTHENTICATE without username");
			snprintf(out, sizeof(out), "%.*s", (int)u->via.str.size, u->via.str.ptr);
			return out;
		}
	}
	return "no decision";
}

int main(void)
{
	tc_init("keyauth-daemon");
	snprintf(creds, sizeof(creds), "%s/credentials.json", tc_dir);
	write_creds("alice", "key-1");
	const char *args[] = {"--workers", "1", "--channels", "2", "--plugins", "key-auth", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	uint64_t req = 1;

	/* conf 1 checks the file on every request; conf 2 never does. */
	struct conf_arg watching = {1, 0}, frozen = {2, 3600000};
	register_conf(c, &r, req++, &watching);
	register_conf(c, &r, req++, &frozen);
	const char *got;
	CHECK(!strcmp(got = access_result(c, &r, req++, 1, "key-1"), "alice"), "key-1: %s", got);
	CHECK(!strcmp(got = access_result(c, &r, req++, 1, "key-2"), "401"), "key-2: %s", got);

	/* A replaced file: the next request of conf 1 sees it. */
	write_creds("bob", "key-2");
	CHECK(!strcmp(got = access_result(c, &r, req++, 1, "key-2"), "bob"), "key-2: %s", got);
	CHECK(!strcmp(got = access_result(c, &r, req++, 1, "key-1"), "401"), "key-1: %s", got);
	/* conf 2 kept what it loaded at CONF time. */
	CHECK(!strcmp(got = access_result(c, &r, req++, 2, "key-1"), "alice"), "frozen: %s", got);

	/* SIGHUP: workers restart, the gateway re-registers, the file is read. */
	write_creds("carol", "key-3");
	CHECK(kill(tc_pid, SIGHUP) == 0, "SIGHUP");
	uint64_t deadline = tc_now() + 10 * SEC;
	while (!tc_log_contains("reload: done")) {
		CHECK(tc_now() < deadline, "reload not done in time");
		usleep(2000);
	}
	got = access_result(c, &r, req++, 2, "key-3");
	CHECK(!strcmp(got, "s=2"), "after SIGHUP the conf is unknown (s=2), got %s", got);
	register_conf(c, &r, req++, &frozen);
	CHECK(!strcmp(got = access_result(c, &r, req++, 2, "key-3"), "carol"), "key-3: %s", got);
	CHECK(!strcmp(got = access_result(c, &r, req++, 2, "key-1"), "401"), "key-1: %s", got);

	/* A broken file at CONF time: refused with the reason. */
	FILE *f = fopen(creds, "w");
	CHECK(f, "creds");
	fputs("{\"consumers\": [", f);
	fclose(f);
	struct conf_arg broken = {3, 0};
	char e[512];
	tc_send(c, SHMRING_REC_CONF, req, fill_conf, &broken);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR && strstr(tc_err(&r, e, sizeof(e)), "credentials file"),
	      "broken file: s=%llu e=%s", (unsigned long long)r.s, e);

	/* The daemon's plugin_file_dirs (tc_spawn: the test's dir): a file
	 * outside it, or a link inside it to one outside, is not opened. */
	snprintf(creds, sizeof(creds), "/etc/hostname");
	tc_send(c, SHMRING_REC_CONF, req, fill_conf, &broken);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == 1 &&
	          strstr(tc_err(&r, e, sizeof(e)), "not below a directory the daemon allows"),
	      "outside plugin_file_dirs: s=%llu e=%s", (unsigned long long)r.s, e);
	snprintf(creds, sizeof(creds), "%s/link.json", tc_dir);
	CHECK(symlink("/etc/hostname", creds) == 0, "symlink");
	tc_send(c, SHMRING_REC_CONF, req, fill_conf, &broken);
	tc_expect(c, &r, req++, 5 * SEC);
	CHECK(r.s == 1 && strstr(tc_err(&r, e, sizeof(e)), "symbolic links are not followed"),
	      "a link: s=%llu e=%s", (unsigned long long)r.s, e);

	return tc_stop(inst, c);
}
