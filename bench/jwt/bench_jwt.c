/* SPDX-License-Identifier: MIT */
/*
 * bench_jwt: what the jwt plugin's access hook costs per request, in ns per
 * call on one pinned core, and how far that is above the cryptographic
 * floor.
 *
 *   bench_jwt [--json PATH] [--quick] [--cpu N] [--only ALG]
 *
 * Rows, for HS256, RS256 (2048-bit) and ES256 (P-256):
 *   cache off   the hook on a request whose token is verified every time:
 *               find the token, strict base64url, two jansson parses, key
 *               lookup, signature, claims, consumer headers, reply built
 *   cache on    the same request, answered from the verified-token cache
 *   openssl     the floor: only the signature check, with the key already
 *               parsed and the signature already decoded (EVP_MAC with the
 *               key set, or EVP_DigestVerifyInit + EVP_DigestVerify)
 * and the ratio cache-off / openssl. The hook runs as shmringd runs it:
 * the snapshot is decoded once (by the daemon's own decoder), then per call
 * reply begin, access, reply finish (the daemon's reply builder, host_reply.c).
 * Each row: warm-up, 7 timed runs of ~50 ms (5 ms with --quick) of this
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID, robust when other processes
 * share the core), median.
 * Tokens are signed at start-up with the keys in tests/jwt/keys.
 */
#include "daemon.h"
#include "jwt_internal.h"
#include "shmring_plugin.h"
#include "jwt_bench_tokens.h"
#include "bench_timing.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern const struct shmring_plugin shmring_plugin;

void shmringd__log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define HS_SECRET JWT_BENCH_HS_SECRET

/* ---- msgpack building ------------------------------------------------------ */

static void pstr(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void *make_conf(int cache, const char *rsa_pub, const char *ec_pub)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pstr(&pk, "cache");
	cache ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
	pstr(&pk, "claims_to_verify");
	msgpack_pack_array(&pk, 1);
	pstr(&pk, "exp");
	pstr(&pk, "credentials");
	msgpack_pack_array(&pk, 3);
	const char *rows[3][4] = {{"bench-hs", "HS256", "secret", HS_SECRET},
	                          {"bench-rs", "RS256", "rsa_public_key", rsa_pub},
	                          {"bench-es", "ES256", "rsa_public_key", ec_pub}};
	for (int i = 0; i < 3; i++) {
		msgpack_pack_map(&pk, 4);
		pstr(&pk, "key");
		pstr(&pk, rows[i][0]);
		pstr(&pk, "algorithm");
		pstr(&pk, rows[i][1]);
		pstr(&pk, rows[i][2]);
		pstr(&pk, rows[i][3]);
		pstr(&pk, "consumer");
		msgpack_pack_map(&pk, 2);
		pstr(&pk, "id");
		pstr(&pk, "7f3c1d2e-0000-4000-8000-000000000001");
		pstr(&pk, "username");
		pstr(&pk, "alice");
	}
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	msgpack_unpack_next(&u, sb.data, sb.size, &off);
	void *conf = NULL;
	char err[512];
	if (shmring_plugin.conf_new(NULL, &u.data, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "conf refused: %s\n", err);
		exit(1);
	}
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return conf;
}

/* A browser-like snapshot: jwt's declared parts only, as the stub sends. */
struct snap {
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	struct shmring_request req;
};

static void make_snap(struct snap *s, const char *tok)
{
	msgpack_sbuffer_init(&s->sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &s->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pstr(&pk, "conf");
	msgpack_pack_uint64(&pk, 1);
	pstr(&pk, "method");
	pstr(&pk, "GET");
	pstr(&pk, "headers");
	msgpack_pack_map(&pk, 1);
	pstr(&pk, "authorization");
	char *v = malloc(strlen(tok) + 8);
	sprintf(v, "Bearer %s", tok);
	pstr(&pk, v);
	free(v);
	msgpack_unpacked_init(&s->u);
	size_t off = 0;
	msgpack_unpack_next(&s->u, s->sb.data, s->sb.size, &off);
	memset(&s->req, 0, sizeof(s->req));
	s->req.phase = SHMRING_PHASE_ACCESS;
	if (shmringd__request_decode(&s->req, &s->u.data) != 0)
		exit(1);
}

/* ---- the timed bodies -------------------------------------------------------- */

struct hook_arg {
	void *conf;
	struct snap *snap;
	struct shmring_reply rep;
};

static int run_hook(void *p)
{
	struct hook_arg *a = p;
	shmringd__reply_begin(&a->rep, 1u << 20);
	int rc = shmring_plugin.access(a->conf, &a->snap->req, &a->rep);
	shmringd__reply_finish(&a->rep, rc < 0 ? "plugin error" : NULL);
	return a->rep.nact == 6 ? 0 : -1; /* 5 header actions + authenticate */
}

struct floor_arg {
	const char *si;
	size_t si_len;
	uint8_t sig[512];
	size_t sig_len;
	EVP_MAC_CTX *mac; /* HS256, key set */
	EVP_PKEY *pub;    /* RS256 / ES256 */
	EVP_MD_CTX *md_ctx;
};

static int run_floor(void *p)
{
	struct floor_arg *f = p;
	if (f->mac) {
		uint8_t m[64];
		size_t ml = 0;
		EVP_MAC_init(f->mac, NULL, 0, NULL);
		EVP_MAC_update(f->mac, (const uint8_t *)f->si, f->si_len);
		EVP_MAC_final(f->mac, m, &ml, sizeof(m));
		return ml == f->sig_len && CRYPTO_memcmp(m, f->sig, ml) == 0 ? 0 : -1;
	}
	EVP_MD_CTX_reset(f->md_ctx);
	if (EVP_DigestVerifyInit(f->md_ctx, NULL, EVP_sha256(), NULL, f->pub) != 1)
		return -1;
	return EVP_DigestVerify(f->md_ctx, f->sig, f->sig_len, (const uint8_t *)f->si, f->si_len) ==
	               1
	           ? 0
	           : -1;
}

static void floor_init(struct floor_arg *f, const char *tok, const char *alg, const char *pub_pem)
{
	memset(f, 0, sizeof(*f));
	const char *d2 = strrchr(tok, '.');
	f->si = tok;
	f->si_len = (size_t)(d2 - tok);
	uint8_t raw[512];
	ssize_t n = jwt__b64url_decode(d2 + 1, strlen(d2 + 1), raw);
	if (n <= 0)
		exit(1);
	if (!strcmp(alg, "ES256")) {
		int m = jwt__ecdsa_jose_to_der(raw, (size_t)n, 32, f->sig, sizeof(f->sig));
		if (m < 0)
			exit(1);
		f->sig_len = (size_t)m;
	} else {
		memcpy(f->sig, raw, (size_t)n);
		f->sig_len = (size_t)n;
	}
	if (!pub_pem) {
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		f->mac = EVP_MAC_CTX_new(mac);
		OSSL_PARAM params[2] = {
		    OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		    OSSL_PARAM_construct_end(),
		};
		EVP_MAC_init(f->mac, (const uint8_t *)HS_SECRET, strlen(HS_SECRET), params);
		EVP_MAC_free(mac);
	} else {
		BIO *b = BIO_new_mem_buf(pub_pem, -1);
		f->pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		BIO_free(b);
		f->md_ctx = EVP_MD_CTX_new();
	}
	if (run_floor(f) != 0) {
		fprintf(stderr, "floor %s does not verify\n", alg);
		exit(1);
	}
}

/* Thread CPU time, not wall time: on a shared 2-core VM the wall clock
 * also counts the time other processes had the core. */
#define CLOCK CLOCK_THREAD_CPUTIME_ID

static struct bench_runs timeit(int (*fn)(void *), void *arg, int quick)
{
	if (fn(arg) != 0) {
		fprintf(stderr, "the benchmarked call fails\n");
		exit(1);
	}
	double target = quick ? 5e6 : 5e7;
	uint64_t n = 16;
	for (;;) {
		double t0 = bench_now_ns(CLOCK);
		for (uint64_t i = 0; i < n; i++)
			fn(arg);
		if (bench_now_ns(CLOCK) - t0 > target / 4 || n > (1u << 30))
			break;
		n *= 2;
	}
	return bench_time_runs(CLOCK, n * 4, fn, arg);
}

int main(int argc, char **argv)
{
	const char *json = NULL, *only = NULL;
	int quick = 0, cpu = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--cpu") && i + 1 < argc)
			cpu = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr,
			        "usage: %s [--json PATH] [--quick] [--cpu N] [--only ALG]\n",
			        argv[0]);
			return 2;
		}
	}
	cpu = bench_pin(cpu);

	char *rsa_pub = jwt_bench_read_key("rsa2048.pub.pem"),
	     *ec_pub = jwt_bench_read_key("ec-P-256.pub.pem");
	EVP_PKEY *rsa = jwt_bench_read_priv("rsa2048.pem"),
	         *ec = jwt_bench_read_priv("ec-P-256.pem");
	void *conf_on = make_conf(1, rsa_pub, ec_pub), *conf_off = make_conf(0, rsa_pub, ec_pub);
	struct {
		const char *alg, *iss, *pub;
		EVP_PKEY *priv;
	} algs[] = {{"HS256", "bench-hs", NULL, NULL},
	            {"RS256", "bench-rs", rsa_pub, rsa},
	            {"ES256", "bench-es", ec_pub, ec}};

	json_t *rows = json_array();
	printf("%-26s %12s %12s %12s %8s\n", "case", "ns/call", "min", "max", "x floor");
	for (size_t i = 0; i < 3; i++) {
		if (only && !strstr(algs[i].alg, only))
			continue;
		char *tok = jwt_bench_token(algs[i].alg, algs[i].iss, algs[i].priv);
		struct snap s;
		make_snap(&s, tok);
		struct floor_arg fl;
		floor_init(&fl, tok, algs[i].alg, algs[i].pub);
		struct hook_arg on = {conf_on, &s, {0}}, off = {conf_off, &s, {0}};
		struct bench_runs r_floor = timeit(run_floor, &fl, quick);
		struct bench_runs r_off = timeit(run_hook, &off, quick);
		struct bench_runs r_on = timeit(run_hook, &on, quick);
		struct {
			const char *what;
			struct bench_runs r;
		} out[3] = {{"openssl (floor)", r_floor}, {"cache off", r_off}, {"cache on", r_on}};
		for (int k = 0; k < 3; k++) {
			char name[64];
			snprintf(name, sizeof(name), "jwt %s %s", algs[i].alg, out[k].what);
			double ratio = out[k].r.median_ns / r_floor.median_ns;
			printf("%-26s %12.1f %12.1f %12.1f %8.2f\n", name, out[k].r.median_ns,
			       out[k].r.min_ns, out[k].r.max_ns, ratio);
			json_array_append_new(
			    rows, json_pack("{s:s,s:s,s:s,s:f,s:f,s:f,s:f}", "name", name, "alg",
			                    algs[i].alg, "what", out[k].what, "ns_per_call",
			                    out[k].r.median_ns, "min_ns", out[k].r.min_ns, "max_ns",
			                    out[k].r.max_ns, "ratio_to_floor", ratio));
		}
		free(on.rep.buf);
		free(off.rep.buf);
		EVP_MAC_CTX_free(fl.mac);
		EVP_PKEY_free(fl.pub);
		EVP_MD_CTX_free(fl.md_ctx);
		free(tok);
		msgpack_unpacked_destroy(&s.u);
		msgpack_sbuffer_destroy(&s.sb);
	}
	if (json) {
		struct utsname u;
		uname(&u);
		char when[64];
		bench_utc_now(when, sizeof(when));
		json_t *doc = json_pack(
		    "{s:s,s:s,s:{s:s,s:i,s:i,s:s},s:s,s:o}", "bench", "jwt", "date", when,
		    "machine", "kernel", u.release, "ncpu", (int)sysconf(_SC_NPROCESSORS_ONLN),
		    "cpu", cpu, "openssl", OpenSSL_version(OPENSSL_VERSION), "what",
		    "jwt access hook + reply begin/finish in-process (snapshot "
		    "decoded once) vs the "
		    "signature check alone in OpenSSL; thread CPU time, median of 7 runs",
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
	shmring_plugin.conf_free(conf_on);
	shmring_plugin.conf_free(conf_off);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	free(rsa_pub);
	free(ec_pub);
	return 0;
}
