/* SPDX-License-Identifier: MIT */
/*
 * bench_plugins: the cost of each plugin hook in-process, in ns per call on
 * one pinned core: the hook plus the daemon's reply builder (begin and
 * finish), on a snapshot decoded once (shmringd decodes each record once for
 * every plugin; that cost is in bench_daemon's round trip).
 *
 *   bench_plugins [--json PATH] [--only SUBSTRING] [--quick] [--cpu N]
 *
 * Cases are the table `cases` below: one row each, with the plugin (its .so
 * in PLUGIN_DIR), a config and a snapshot as JSON (or functions making
 * them). Add a plugin's rows there.
 * Each case: a warm-up, then 7 timed runs of about 50 ms; the median run
 * is reported, the min and max beside it.
 */
#include "daemon.h"
#include "bench_timing.h"
#include "harness.h"
#include "jwt_bench_tokens.h"

#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

struct bench_case {
	const char *name;   /* row name in the table and the JSON */
	const char *plugin; /* PLUGIN_DIR/<plugin>.so */
	uint32_t phase;
	const char *config;           /* JSON, or NULL with make_config */
	const char *snapshot;         /* JSON, or NULL with make_snapshot */
	char *(*make_config)(void);   /* malloc'd JSON */
	char *(*make_snapshot)(void); /* malloc'd JSON */
};

/* A browser-like request: the headers every "*"-declaring plugin gets. */
#define TYPICAL_HEADERS                                                                            \
	"\"host\":\"api.example.com\",\"user-agent\":\"Mozilla/5.0 (X11; Linux x86_64) "           \
	"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\","                     \
	"\"accept\":\"application/json\",\"accept-encoding\":\"gzip, deflate, br\","               \
	"\"accept-language\":\"en-US,en;q=0.9\",\"connection\":\"keep-alive\","                    \
	"\"x-forwarded-for\":\"203.0.113.7\",\"x-request-start\":\"1700000000.123\""

#define KEYAUTH_CONSUMERS 1000

/* key-auth with 1000 consumers, one key each (key-%04d). */
static char *keyauth_config(void)
{
	size_t cap = KEYAUTH_CONSUMERS * 160 + 64, o = 0;
	char *s = malloc(cap);
	o += (size_t)snprintf(s + o, cap - o, "{\"consumers\":[");
	for (int i = 0; i < KEYAUTH_CONSUMERS; i++)
		o += (size_t)snprintf(s + o, cap - o,
		                      "%s{\"id\":\"consumer-%04d\",\"username\":\"user%04d\","
		                      "\"keyauth_credentials\":[{\"id\":\"cred-%04d\",\"key\":"
		                      "\"key-%04d-0123456789abcdef0123456789abcdef\"}]}",
		                      i ? "," : "", i, i, i, i);
	snprintf(s + o, cap - o, "]}");
	return s;
}

/* jwt: one credential per algorithm (keys in tests/jwt/keys), tokens signed
 * at start-up (bench/jwt/jwt_bench_tokens.h). bench/jwt/bench_jwt puts the
 * same requests beside the OpenSSL-only floor. */
static char *jwt_config(int cache)
{
	char *rsa = jwt_bench_read_key("rsa2048.pub.pem");
	char *ec = jwt_bench_read_key("ec-P-256.pub.pem");
	json_t *c = json_pack(
	    "{s:b,s:[s],s:[{s:s,s:s,s:s,s:{s:s,s:s}},{s:s,s:s,s:s,s:{s:s,s:s}},"
	    "{s:s,s:s,s:s,s:{s:s,s:s}}]}",
	    "cache", cache, "claims_to_verify", "exp", "credentials", "key", "bench-hs",
	    "algorithm", "HS256", "secret", JWT_BENCH_HS_SECRET, "consumer", "id", "consumer-1",
	    "username", "alice", "key", "bench-rs", "algorithm", "RS256", "rsa_public_key", rsa,
	    "consumer", "id", "consumer-1", "username", "alice", "key", "bench-es", "algorithm",
	    "ES256", "rsa_public_key", ec, "consumer", "id", "consumer-1", "username", "alice");
	char *s = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	free(rsa);
	free(ec);
	return s;
}

static char *jwt_config_cache_on(void)
{
	return jwt_config(1);
}

static char *jwt_config_cache_off(void)
{
	return jwt_config(0);
}

static char *jwt_snapshot(const char *alg, const char *iss, const char *priv_name)
{
	EVP_PKEY *priv = priv_name ? jwt_bench_read_priv(priv_name) : NULL;
	char *tok = jwt_bench_token(alg, iss, priv);
	json_t *j = json_pack("{s:s,s:{s:s+}}", "method", "GET", "headers", "authorization",
	                      "Bearer ", tok);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(tok);
	EVP_PKEY_free(priv);
	return s;
}

static char *jwt_snapshot_hs256(void)
{
	return jwt_snapshot("HS256", "bench-hs", NULL);
}

static char *jwt_snapshot_rs256(void)
{
	return jwt_snapshot("RS256", "bench-rs", "rsa2048.pem");
}

static char *jwt_snapshot_es256(void)
{
	return jwt_snapshot("ES256", "bench-es", "ec-P-256.pem");
}

#define RL_SNAPSHOT "{\"client_ip\":\"203.0.113.7\",\"route_id\":\"bench-route\"}"

/* Snapshots run once before a case is timed: the gateway's answers, so the
 * gateway case times hits in the daemon's entity cache. */
static const struct {
	const char *name, *snapshot;
} warm_ups[] = {
    {"key-auth hit (gateway, entity cache)",
     "{\"headers\":{\"apikey\":\"key-0500-0123456789abcdef0123456789abcdef\"},\"entities\":[[2,"
     "\"key-0500-0123456789abcdef0123456789abcdef\",{\"id\":\"cred-0500\",\"consumer\":{"
     "\"id\":\"consumer-0500\",\"username\":\"user0500\"}}]]}"},
};

static const struct bench_case cases[] = {
    /* The floor: the smallest plugin (two actions) through the same path. */
    {"hello (floor)", "hello", SHMRING_PHASE_ACCESS, "{}", "{\"method\":\"GET\",\"path\":\"/x\"}",
     NULL, NULL},
    {"key-auth hit (1000 consumers)", "key-auth", SHMRING_PHASE_ACCESS, NULL,
     "{\"method\":\"GET\",\"headers\":{" TYPICAL_HEADERS
     ",\"apikey\":\"key-0500-0123456789abcdef0123456789abcdef\"},\"query\":{\"page\":\"2\"}}",
     keyauth_config, NULL},
    {"key-auth miss (1000 consumers)", "key-auth", SHMRING_PHASE_ACCESS, NULL,
     "{\"method\":\"GET\",\"headers\":{" TYPICAL_HEADERS
     ",\"apikey\":\"key-9999-0123456789abcdef0123456789abcdef\"},\"query\":{\"page\":\"2\"}}",
     keyauth_config, NULL},
    /* Credentials from the gateway, the daemon's entity cache warm: the
     * same request as "key-auth hit". */
    {"key-auth hit (gateway, entity cache)", "key-auth", SHMRING_PHASE_ACCESS, "{}",
     "{\"method\":\"GET\",\"headers\":{" TYPICAL_HEADERS
     ",\"apikey\":\"key-0500-0123456789abcdef0123456789abcdef\"},\"query\":{\"page\":\"2\"}}",
     NULL, NULL},
    {"key-auth no key", "key-auth", SHMRING_PHASE_ACCESS, NULL,
     "{\"method\":\"GET\",\"headers\":{" TYPICAL_HEADERS "},\"query\":{\"page\":\"2\"}}",
     keyauth_config, NULL},
    /* The demo's config: add 2 headers (one templated) and a query arg,
     * remove one, rename a header and a query arg. */
    {"request-transformer typical", "request-transformer", SHMRING_PHASE_ACCESS,
     "{\"add\":{\"headers\":[\"x-added-by:shmring\",\"x-client:$(headers.user_agent or "
     "\\\"unknown\\\")\"],\"querystring\":[\"added:1\"]},\"remove\":{\"headers\":[\"x-remove-"
     "me\"]},\"rename\":{\"headers\":[\"x-old-name:x-new-name\"],\"querystring\":[\"q:search\"]}}",
     "{\"method\":\"GET\",\"headers\":{" TYPICAL_HEADERS
     ",\"x-remove-me\":\"1\",\"x-old-name\":\"v\"},\"query\":{\"q\":\"shoes\",\"page\":\"2\"}}",
     NULL, NULL},
    {"request-transformer headers only", "request-transformer", SHMRING_PHASE_ACCESS,
     "{\"add\":{\"headers\":[\"x-added-by:shmring\"]},\"remove\":{\"headers\":[\"x-remove-me\"]}}",
     "{\"method\":\"GET\",\"headers\":{" TYPICAL_HEADERS ",\"x-remove-me\":\"1\"}}", NULL, NULL},
    /* The demo's body rules on a small JSON and form body (the gateway
     * sends the body only for such configs). */
    {"request-transformer JSON body", "request-transformer", SHMRING_PHASE_ACCESS,
     "{\"remove\":{\"body\":[\"password\"]},\"rename\":{\"body\":[\"user:username\"]},"
     "\"add\":{\"body\":[\"source:shmring\"]},\"append\":{\"body\":[\"tags:demo\"]}}",
     "{\"method\":\"POST\",\"headers\":{" TYPICAL_HEADERS ",\"content-type\":\"application/json\"},"
     "\"body\":\"{\\\"user\\\":\\\"alice\\\",\\\"password\\\":\\\"s3cret\\\","
     "\\\"role\\\":\\\"admin\\\",\\\"tags\\\":\\\"x\\\"}\"}",
     NULL, NULL},
    {"request-transformer form body", "request-transformer", SHMRING_PHASE_ACCESS,
     "{\"remove\":{\"body\":[\"password\"]},\"rename\":{\"body\":[\"user:username\"]},"
     "\"add\":{\"body\":[\"source:shmring\"]},\"append\":{\"body\":[\"tags:demo\"]}}",
     "{\"method\":\"POST\",\"headers\":{" TYPICAL_HEADERS
     ",\"content-type\":\"application/x-www-form-urlencoded\"},"
     "\"body\":\"user=alice&password=s3cret&role=admin&tags=x\"}",
     NULL, NULL},
    {"correlation-id uuid#counter", "correlation-id", SHMRING_PHASE_ACCESS, "{}",
     "{\"headers\":{" TYPICAL_HEADERS "}}", NULL, NULL},
    {"correlation-id uuid + echo", "correlation-id", SHMRING_PHASE_ACCESS,
     "{\"generator\":\"uuid\",\"echo_downstream\":true}", "{\"headers\":{" TYPICAL_HEADERS "}}",
     NULL, NULL},
    {"correlation-id incoming id", "correlation-id", SHMRING_PHASE_ACCESS,
     "{\"echo_downstream\":true}",
     "{\"headers\":{" TYPICAL_HEADERS ",\"kong-request-id\":\"abc-123\"}}", NULL, NULL},
    /* jwt: the same request verified every time (cache off) or answered
     * from the verified-token cache (cache on). */
    {"jwt HS256 cache off", "jwt", SHMRING_PHASE_ACCESS, NULL, NULL, jwt_config_cache_off,
     jwt_snapshot_hs256},
    {"jwt HS256 cache on", "jwt", SHMRING_PHASE_ACCESS, NULL, NULL, jwt_config_cache_on,
     jwt_snapshot_hs256},
    {"jwt RS256 cache off", "jwt", SHMRING_PHASE_ACCESS, NULL, NULL, jwt_config_cache_off,
     jwt_snapshot_rs256},
    {"jwt RS256 cache on", "jwt", SHMRING_PHASE_ACCESS, NULL, NULL, jwt_config_cache_on,
     jwt_snapshot_rs256},
    {"jwt ES256 cache off", "jwt", SHMRING_PHASE_ACCESS, NULL, NULL, jwt_config_cache_off,
     jwt_snapshot_es256},
    {"jwt ES256 cache on", "jwt", SHMRING_PHASE_ACCESS, NULL, NULL, jwt_config_cache_on,
     jwt_snapshot_es256},
    /* rate-limiting: one key, counters in the shared table (a temp dir
     * here, as the daemon's shm_dir); limits high enough to pass every
     * call, or 1 to refuse every call after the first (the 429 path). */
    {"rate-limiting fixed-window pass", "rate-limiting", SHMRING_PHASE_ACCESS,
     "{\"hour\":4000000000,\"limit_by\":\"ip\"}", RL_SNAPSHOT, NULL, NULL},
    {"rate-limiting fixed-window 3 periods", "rate-limiting", SHMRING_PHASE_ACCESS,
     "{\"second\":4000000000,\"minute\":4000000000,\"hour\":4000000000,"
     "\"limit_by\":\"ip\"}",
     RL_SNAPSHOT, NULL, NULL},
    {"rate-limiting fixed-window blocked", "rate-limiting", SHMRING_PHASE_ACCESS,
     "{\"hour\":1,\"limit_by\":\"ip\"}", RL_SNAPSHOT, NULL, NULL},
    {"rate-limiting token-bucket pass", "rate-limiting", SHMRING_PHASE_ACCESS,
     "{\"second\":4000000000,\"algorithm\":\"token-bucket\",\"limit_by\":\"ip\"}", RL_SNAPSHOT,
     NULL, NULL},
    {"rate-limiting token-bucket blocked", "rate-limiting", SHMRING_PHASE_ACCESS,
     "{\"year\":1,\"algorithm\":\"token-bucket\",\"limit_by\":\"ip\"}", RL_SNAPSHOT, NULL, NULL},
};

struct result {
	struct bench_runs t;
	uint64_t calls;
	uint32_t reply_bytes;
};

static int run_raw(void *h)
{
	shmring_test_run_raw(h);
	return 0;
}

static int run_case(const struct bench_case *c, int quick, struct result *r)
{
	char so[512];
	snprintf(so, sizeof(so), "%s/%s.so", PLUGIN_DIR, c->plugin);
	if (access(so, R_OK) != 0) {
		fprintf(stderr, "skip %s: %s not built\n", c->name, so);
		return -ENOENT;
	}
	struct shmring_test h;
	shmring_test_open(&h, so);
	char *cfg = c->make_config ? c->make_config() : NULL;
	char *snap = c->make_snapshot ? c->make_snapshot() : NULL;
	if (shmring_test_conf(&h, cfg ? cfg : c->config) != 0) {
		fprintf(stderr, "%s: conf refused: %s\n", c->name, h.err);
		exit(1);
	}
	for (size_t i = 0; i < sizeof(warm_ups) / sizeof(warm_ups[0]); i++)
		if (!strcmp(warm_ups[i].name, c->name)) {
			shmring_test_snapshot(&h, c->phase, warm_ups[i].snapshot);
			shmring_test_run(&h);
		}
	shmring_test_snapshot(&h, c->phase, snap ? snap : c->snapshot);
	/* Sanity: the case does what it says (an OK reply, not an error and
	 * not a look-up). */
	if (shmring_test_run(&h) != 0 || json_integer_value(json_object_get(h.reply, "s")) != 0) {
		fprintf(stderr, "%s: hook failed: %s\n", c->name, shmring_test_reply_text(&h));
		exit(1);
	}
	/* Warm up and size a run to ~50 ms (5 ms with --quick). */
	uint64_t n = 1000;
	double target = quick ? 5e6 : 5e7;
	for (;;) {
		double t0 = bench_now_ns(CLOCK_MONOTONIC);
		for (uint64_t i = 0; i < n; i++)
			r->reply_bytes = shmring_test_run_raw(&h);
		double dt = bench_now_ns(CLOCK_MONOTONIC) - t0;
		if (dt > target / 4 || n > (1u << 30))
			break;
		n *= 2;
	}
	n = (uint64_t)((double)n * target / 2 / (target / 4)); /* ~target per run */
	r->t = bench_time_runs(CLOCK_MONOTONIC, n, run_raw, &h);
	r->calls = n * BENCH_RUNS;
	shmring_test_close(&h);
	free(cfg);
	free(snap);
	return 0;
}

int main(int argc, char **argv)
{
	const char *json = NULL, *only = NULL;
	int quick = 0, cpu = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--cpu") && i + 1 < argc) {
			cpu = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--quick")) {
			quick = 1;
		} else {
			fprintf(stderr,
			        "usage: %s [--json PATH] [--only SUBSTRING] [--quick] [--cpu N]\n",
			        argv[0]);
			return 2;
		}
	}
	cpu = bench_pin(cpu);

	/* rate-limiting maps its counter table through shmring_shared_region:
	 * the daemon's shm_dir, here a temp dir removed at exit. */
	char shared_dir[] = "/tmp/shmring-bench-XXXXXX";
	if (mkdtemp(shared_dir))
		shmringd__shared_setup(shared_dir, 0600);

	json_t *rows = json_array();
	printf("%-38s %10s %10s %10s %8s\n", "case", "ns/call", "min", "max", "reply B");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bench_case *c = &cases[i];
		if (only && !strstr(c->name, only))
			continue;
		struct result r;
		if (run_case(c, quick, &r) < 0)
			continue;
		printf("%-38s %10.1f %10.1f %10.1f %8u\n", c->name, r.t.median_ns, r.t.min_ns,
		       r.t.max_ns, r.reply_bytes);
		fflush(stdout);
		json_array_append_new(rows, json_pack("{s:s, s:s, s:f, s:f, s:f, s:I, s:i}", "name",
		                                      c->name, "plugin", c->plugin, "ns_per_call",
		                                      r.t.median_ns, "min_ns", r.t.min_ns, "max_ns",
		                                      r.t.max_ns, "calls", (json_int_t)r.calls,
		                                      "reply_bytes", (int)r.reply_bytes));
	}
	shmringd__shared_remove_all(shared_dir);
	rmdir(shared_dir);
	if (json) {
		struct utsname u;
		uname(&u);
		char when[64];
		bench_utc_now(when, sizeof(when));
		json_t *doc =
		    json_pack("{s:s, s:s, s:{s:s, s:i, s:i}, s:s, s:o}", "bench", "plugins", "date",
		              when, "machine", "kernel", u.release, "ncpu",
		              (int)sysconf(_SC_NPROCESSORS_ONLN), "cpu", cpu, "what",
		              "hook + reply begin/finish in-process, snapshot decoded once; "
		              "median of 7 runs",
		              "rows", rows);
		if (json_dump_file(doc, json, JSON_INDENT(2)) != 0) {
			fprintf(stderr, "cannot write %s\n", json);
			return 1;
		}
		json_decref(doc);
		printf("\nwrote %s\n", json);
	} else {
		json_decref(rows);
	}
	return 0;
}
