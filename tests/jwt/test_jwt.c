/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the jwt plugin, on its hooks directly: the plugin's sources
 * are linked into this program together with the daemon's host code
 * (worker/host_request.c and host_reply.c), so a config goes
 * through conf_new, a snapshot through shmringd__request_decode and the hook,
 * and the reply is decoded back from the msgpack the daemon would send.
 *
 * Tokens come from tests/jwt/fixtures.h, made by other implementations
 * (Python's hmac, the openssl command line; tests/jwt/gen_fixtures.py), and
 * from the RFC 7515 / RFC 7519 examples. The plugin's clock is pinned with
 * jwt__fake_now.
 */
#include "daemon.h"
#include "harness.h"
#include "jwt_internal.h"
#include "shmring_plugin.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "b64url_encode.h"
#include "fixtures.h"

extern const struct shmring_plugin shmring_plugin;

/* The plugin host logs through this; the daemon defines it in master.c. */
void shmringd__log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- JSON <-> msgpack (the plugin harness's conversions) ---------------------- */

/* Unpack JSON text as msgpack into u (caller destroys). */
static void json_to_mp(const char *text, msgpack_sbuffer *sb, msgpack_unpacked *u)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		fail_msg("bad JSON in test: %s: %s", je.text, text);
	msgpack_sbuffer_init(sb);
	shmring_test_pack_json(sb, j);
	json_decref(j);
	msgpack_unpacked_init(u);
	size_t off = 0;
	assert_int_equal(msgpack_unpack_next(u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
}

/* ---- config and calls --------------------------------------------------------- */

static char conf_err[1024];

/* A JSON config as the daemon takes it (schema, then conf_new): the conf,
 * or NULL with conf_err set. */
static void *conf_json(const char *text)
{
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	json_to_mp(text, &sb, &u);
	void *conf = NULL;
	conf_err[0] = '\0';
	int rc =
	    shmringd__conf_new(&shmring_plugin, NULL, &u.data, &conf, conf_err, sizeof(conf_err));
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	if (rc < 0) {
		assert_null(conf);
		assert_true(conf_err[0] != '\0');
		return NULL;
	}
	assert_int_equal(rc, 0);
	return conf;
}

static void *conf_ok(const char *text)
{
	void *c = conf_json(text);
	if (!c)
		fail_msg("conf refused: %s", conf_err);
	return c;
}

static void conf_refused(const char *text, const char *expect)
{
	void *c = conf_json(text);
	if (c) {
		shmring_plugin.conf_free(c);
		fail_msg("conf accepted, expected an error containing '%s': %s", expect, text);
	}
	if (!strstr(conf_err, expect))
		fail_msg("error '%s' does not contain '%s'", conf_err, expect);
}

/* The decoded reply of the last call. */
static json_t *reply;

static json_t *action(int op, int n)
{
	json_t *a = json_object_get(reply, "a");
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x)
	{
		if (json_integer_value(json_array_get(x, 0)) == op && n-- == 0)
			return x;
	}
	return NULL;
}

static int n_actions(void)
{
	return (int)json_array_size(json_object_get(reply, "a"));
}

/* The entities "the gateway" answered, kept as one channel of shmringd
 * keeps them (snapshot key "entities"; misses become NEED_ENTITIES). */
static struct shmringd_entity_cache *entities;

/* Run access with a JSON snapshot (without "conf"); returns the hook's rc. */
static int call(void *conf, const char *snapshot)
{
	char text[65536];
	size_t n = strlen(snapshot);
	assert_true(n + 32 < sizeof(text) && snapshot[0] == '{');
	snprintf(text, sizeof(text), "{\"conf\":1%s%s", n > 2 ? "," : "", snapshot + 1);
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	json_to_mp(text, &sb, &u);
	struct shmring_request req;
	memset(&req, 0, sizeof(req));
	req.phase = SHMRING_PHASE_ACCESS;
	assert_int_equal(shmringd__request_decode(&req, &u.data), 0);
	struct shmring_reply rep;
	memset(&rep, 0, sizeof(rep));
	if (!entities)
		entities = shmringd__entity_cache_new(64);
	assert_int_equal(shmringd__entity_begin(entities, &u.data), 0);
	shmringd__reply_begin(&rep, 1u << 20);
	int rc = shmring_plugin.access(conf, &req, &rep);
	uint32_t len = shmringd__entity_end(&rep)
	                   ? rep.len
	                   : shmringd__reply_finish(&rep, rc < 0 ? "plugin error" : NULL);
	msgpack_unpacked r;
	msgpack_unpacked_init(&r);
	size_t off = 0;
	assert_int_equal(msgpack_unpack_next(&r, (const char *)rep.buf, len, &off),
	                 MSGPACK_UNPACK_SUCCESS);
	json_decref(reply);
	reply = shmring_test_msgpack_json(&r.data);
	msgpack_unpacked_destroy(&r);
	free(rep.buf);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Call with `Authorization: Bearer <tok>`. */
static int call_bearer(void *conf, const char *tok)
{
	json_t *s = json_pack("{s:s,s:{s:s+}}", "method", "GET", "headers", "authorization",
	                      "Bearer ", tok);
	char *text = json_dumps(s, JSON_COMPACT);
	int rc = call(conf, text);
	free(text);
	json_decref(s);
	return rc;
}

static const char *reply_text(void)
{
	static char buf[4096];
	char *s = json_dumps(reply, JSON_COMPACT);
	snprintf(buf, sizeof(buf), "%s", s ? s : "?");
	free(s);
	return buf;
}

/* The reply is an EXIT 401 with this body and WWW-Authenticate value. */
static void expect_401(const char *body, const char *www)
{
	json_t *x = action(SHMRING_ACT_EXIT, 0);
	if (!x)
		fail_msg("expected a 401, got %s", reply_text());
	assert_int_equal(json_integer_value(json_array_get(x, 1)), 401);
	const char *got = json_string_value(json_array_get(x, 2));
	if (!got || strcmp(got, body) != 0)
		fail_msg("body %s, expected %s", got ? got : "(none)", body);
	const char *w =
	    json_string_value(json_object_get(json_array_get(x, 3), "WWW-Authenticate"));
	if (!w || strcmp(w, www) != 0)
		fail_msg("WWW-Authenticate %s, expected %s", w ? w : "(none)", www);
}

#define INVALID_TOKEN "Bearer error=\"invalid_token\""

/* The value the reply sets upstream header name to, or NULL. */
static const char *set_header(const char *name)
{
	const char *v = NULL;
	for (int i = 0;; i++) {
		json_t *x = action(SHMRING_ACT_SET_REQ_HEADER, i);
		if (!x)
			return v;
		if (strcasecmp(json_string_value(json_array_get(x, 1)), name) == 0)
			v = json_string_value(json_array_get(x, 2));
	}
}

static int cleared(const char *name)
{
	for (int i = 0;; i++) {
		json_t *x = action(SHMRING_ACT_CLEAR_REQ_HEADER, i);
		if (!x)
			return 0;
		if (strcasecmp(json_string_value(json_array_get(x, 1)), name) == 0)
			return 1;
	}
}

/* Authenticated as consumer id (or username when id is NULL). */
static void expect_authenticated(const char *id, const char *username, const char *cred_id)
{
	json_t *x = action(SHMRING_ACT_AUTHENTICATE, 0);
	if (!x || action(SHMRING_ACT_EXIT, 0))
		fail_msg("expected success, got %s", reply_text());
	json_t *cons = json_array_get(x, 1);
	if (id)
		assert_string_equal(json_string_value(json_object_get(cons, "id")), id);
	if (username)
		assert_string_equal(json_string_value(json_object_get(cons, "username")), username);
	if (cred_id)
		assert_string_equal(json_string_value(json_array_get(x, 2)), cred_id);
}

/* The last AUTHENTICATE carried no credential (the anonymous consumer). */
static void expect_no_credential(void)
{
	json_t *x = action(SHMRING_ACT_AUTHENTICATE, 0);
	assert_non_null(x);
	assert_true(json_is_null(json_array_get(x, 2)));
}

/* ---- base64url (b64url_encode.h) ----------------------------------------------- */

static void test_b64url_strict(void **state)
{
	uint8_t out[64];
	struct {
		const char *in;
		ssize_t n;
		const char *want;
	} v[] = {
	    {"", 0, ""},          {"Zg", 1, "f"},        {"Zm8", 2, "fo"},
	    {"Zm9v", 3, "foo"},   {"Zm9vYg", 4, "foob"}, {"-_-_", 3, "\xfb\xff\xbf"},
	    {"Zg==", -1, NULL},   {"Zm8=", -1, NULL},    {"Z", -1, NULL},
	    {"Zh", -1, NULL}, /* non-zero unused bits: a second text for "f" */
	    {"Zm9", -1, NULL},    {"+/+/", -1, NULL},    {"Zm 9v", -1, NULL},
	    {"Zm9v\n", -1, NULL}, {"Zm9.", -1, NULL},    {"\xc3\xa9xx", -1, NULL},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ssize_t n = jwt__b64url_decode(v[i].in, strlen(v[i].in), out);
		if (n != v[i].n)
			fail_msg("'%s': %zd, expected %zd", v[i].in, n, v[i].n);
		if (n > 0)
			assert_memory_equal(out, v[i].want, (size_t)n);
	}
	/* Round trips of every length and byte value, and every single-char
	 * change of an encoding either fails or decodes differently. */
	uint8_t raw[48], dec[48];
	char enc[80];
	for (size_t len = 0; len <= sizeof(raw); len++) {
		for (size_t i = 0; i < len; i++)
			raw[i] = (uint8_t)(i * 37 + len * 11);
		size_t el = b64url_encode(raw, len, enc);
		assert_int_equal(jwt__b64url_decode(enc, el, dec), (ssize_t)len);
		assert_memory_equal(dec, raw, len);
	}
	for (int c = 0; c < 256; c++) {
		char s[4] = {'Q', 'U', 'J', (char)c};
		bool in_alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		                   (c >= '0' && c <= '9') || c == '-' || c == '_';
		assert_int_equal(jwt__b64url_decode(s, 4, out) == 3, in_alphabet);
	}
}

static void test_b64_lenient(void **state)
{
	uint8_t out[64];
	assert_int_equal(jwt__b64_decode_lenient("Zm9vYg==", 8, out), 4);
	assert_memory_equal(out, "foob", 4);
	assert_int_equal(jwt__b64_decode_lenient("Zm9vYg", 6, out), 4);
	assert_int_equal(jwt__b64_decode_lenient("+/+/", 4, out), 3);
	assert_int_equal(jwt__b64_decode_lenient("-_-_", 4, out), 3);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
	assert_int_equal(jwt__b64_decode_lenient("Zm9v!", 5, out), -1);
	assert_int_equal(jwt__b64_decode_lenient("Z", 1, out), -1);
	/* Non-zero unused bits of the last group are ignored here (as
	 * ngx.decode_base64 does), where the strict decoder refuses them. */
	assert_int_equal(jwt__b64_decode_lenient("Zm9vYh", 6, out), 4);
	assert_memory_equal(out, "foob", 4);
	assert_int_equal(jwt__b64url_decode("Zm9vYh", 6, out), -1);
	assert_int_equal(jwt__b64_decode_lenient("Zm9vYmF", 7, out), 5);
	assert_memory_equal(out, "fooba", 5);
	assert_int_equal(jwt__b64url_decode("Zm9vYmF", 7, out), -1);
}

static void test_ecdsa_der(void **state)
{
	uint8_t sig[64], der[160];
	memset(sig, 0, 64);
	sig[31] = 1;                /* r = 1 */
	memset(sig + 32, 0xff, 32); /* s = 2^256-1: needs a 0 pad byte */
	int n = jwt__ecdsa_jose_to_der(sig, 64, 32, der, sizeof(der));
	uint8_t want[] = {0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00};
	assert_int_equal(n, 2 + 3 + 2 + 33);
	assert_memory_equal(der, want, sizeof(want));
	assert_int_equal(jwt__ecdsa_jose_to_der(sig, 63, 32, der, sizeof(der)), -1);
	uint8_t big[132];
	memset(big, 0x80, sizeof(big));
	n = jwt__ecdsa_jose_to_der(big, 132, 66, der, sizeof(der));
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[1], 0x81); /* long form: 2 * (2 + 67) = 138 */
	assert_int_equal(der[2], 138);
	assert_int_equal(n, 141);
}

/* The descriptor declares what lua/shmring/plugins.lua sends for jwt
 * (test_jwt_stub.lua checks the catalog side against the same lists). */
static void test_descriptor(void **state)
{
	assert_int_equal(shmring_plugin.abi_version, SHMRING_PLUGIN_ABI_VERSION);
	assert_string_equal(shmring_plugin.name, "jwt");
	assert_int_equal(shmring_plugin.phases, SHMRING_PHASE_ACCESS);
	assert_string_equal(shmring_plugin.needs_headers[0], "authorization");
	assert_string_equal(shmring_plugin.needs_headers[1], "cookie");
	assert_null(shmring_plugin.needs_headers[2]);
	assert_string_equal(shmring_plugin.needs_query[0], "jwt");
	assert_null(shmring_plugin.needs_query[1]);
	assert_non_null(shmring_plugin.conf_new);
	assert_non_null(shmring_plugin.conf_free);
	assert_non_null(shmring_plugin.access);
}

/* ---- the fixture tokens -------------------------------------------------------- */

static void test_fixture_cases(void **state)
{
	jwt__fake_now = FX_NOW;
	for (int cache = 0; cache < 2; cache++) {
		char cfg[sizeof(FX_CONFIG) + 64];
		snprintf(cfg, sizeof(cfg), "{\"cache\":%s,%s", cache ? "true" : "false",
		         FX_CONFIG + 1);
		void *conf = conf_ok(cfg);
		for (size_t i = 0; i < sizeof(FX_CASES) / sizeof(FX_CASES[0]); i++) {
			const struct fx_case *k = &FX_CASES[i];
			/* Twice: the second time a valid token comes from the cache. */
			for (int round = 0; round < 2; round++) {
				print_message("  %-58s cache=%d round=%d\n", k->name, cache, round);
				assert_int_equal(call_bearer(conf, k->token), 0);
				if (k->body) {
					expect_401(k->body, INVALID_TOKEN);
					continue;
				}
				char cid[64];
				snprintf(cid, sizeof(cid), "c-%s", k->alg);
				if (strcmp(k->alg, "EdDSA") == 0)
					expect_authenticated(NULL, "user-EdDSA", "k-EdDSA");
				else
					expect_authenticated(cid, NULL, NULL);
				char key[64];
				snprintf(key, sizeof(key), "k-%s", k->alg);
				assert_string_equal(set_header("X-Credential-Identifier"), key);
				assert_true(cleared("X-Anonymous-Consumer"));
			}
		}
		struct jwt_cache *jc = jwt__conf_cache(conf);
		if (cache) {
			/* Every valid case hit on its second round; no failure went in. */
			size_t valid = 0;
			for (size_t i = 0; i < sizeof(FX_CASES) / sizeof(FX_CASES[0]); i++)
				valid += FX_CASES[i].body == NULL;
			assert_int_equal(jc->st.inserts, valid);
			assert_int_equal(jc->st.hits, valid);
		} else {
			assert_int_equal(jwt__cache_capacity(jc), 0);
		}
		shmring_plugin.conf_free(conf);
	}
}

static void test_consumer_headers(void **state)
{
	jwt__fake_now = FX_NOW;
	void *conf = conf_ok(FX_CONFIG);
	for (size_t i = 0; i < sizeof(FX_CASES) / sizeof(FX_CASES[0]); i++) {
		if (strcmp(FX_CASES[i].name, "valid HS256") == 0) {
			call_bearer(conf, FX_CASES[i].token);
			expect_authenticated("c-HS256", "user-HS256", "cred-HS256");
			assert_string_equal(set_header("X-Consumer-ID"), "c-HS256");
			assert_string_equal(set_header("X-Consumer-Username"), "user-HS256");
			assert_string_equal(set_header("X-Consumer-Custom-ID"), "custom-HS256");
			assert_string_equal(set_header("X-Credential-Identifier"), "k-HS256");
			/* Claims are not forwarded (Kong does not either). */
			assert_int_equal(n_actions(), 6);
		}
		if (strcmp(FX_CASES[i].name, "valid ES256") == 0) {
			call_bearer(conf, FX_CASES[i].token);
			assert_true(cleared("X-Consumer-Username"));
			assert_true(cleared("X-Consumer-Custom-ID"));
		}
	}
	shmring_plugin.conf_free(conf);
}

/* ---- the RFC examples ------------------------------------------------------------- */

static void test_rfc7515_a1(void **state)
{
	char cfg[1024];
	snprintf(cfg, sizeof(cfg),
	         "{\"secret_is_base64\":true,\"claims_to_verify\":[\"exp\"],\"cache_ttl\":3600,"
	         "\"credentials\":[{\"key\":\"joe\",\"algorithm\":\"HS256\",\"secret\":\"%s\","
	         "\"consumer\":{\"id\":\"joe\",\"username\":\"joe\"}}]}",
	         FX_RFC7515_A1_K);
	void *conf = conf_ok(cfg);
	jwt__fake_now = 1300819000;
	call_bearer(conf, FX_RFC7515_A1_TOKEN);
	expect_authenticated("joe", "joe", "joe");
	call_bearer(conf, FX_RFC7515_A1_TOKEN); /* cached */
	expect_authenticated("joe", "joe", "joe");
	assert_int_equal(jwt__conf_cache(conf)->st.hits, 1);
	/* exp = 1300819380: the cache entry dies then, and the token with it. */
	jwt__fake_now = 1300819379;
	call_bearer(conf, FX_RFC7515_A1_TOKEN);
	expect_authenticated("joe", NULL, NULL);
	assert_int_equal(jwt__conf_cache(conf)->st.hits, 2);
	jwt__fake_now = 1300819380;
	call_bearer(conf, FX_RFC7515_A1_TOKEN);
	expect_401("{\"exp\":\"token expired\"}", INVALID_TOKEN);
	assert_int_equal(jwt__conf_cache(conf)->st.expired, 1);
	/* RFC 7519 6.1: the same claims, unsecured ("alg":"none"). */
	jwt__fake_now = 1300819000;
	call_bearer(conf, FX_RFC7519_UNSECURED);
	expect_401("{\"message\":\"Bad token; invalid alg\"}", INVALID_TOKEN);
	shmring_plugin.conf_free(conf);

	/* Without secret_is_base64 the key is the text itself: no match. */
	snprintf(cfg, sizeof(cfg),
	         "{\"credentials\":[{\"key\":\"joe\",\"secret\":\"%s\",\"consumer\":{\"id\":"
	         "\"joe\",\"username\":\"joe\"}}]}",
	         FX_RFC7515_A1_K);
	conf = conf_ok(cfg);
	call_bearer(conf, FX_RFC7515_A1_TOKEN);
	expect_401("{\"message\":\"Invalid signature\"}", INVALID_TOKEN);
	shmring_plugin.conf_free(conf);
}

/* ---- where the token comes from --------------------------------------------------- */

static const char *valid_hs256(void)
{
	for (size_t i = 0; i < sizeof(FX_CASES) / sizeof(FX_CASES[0]); i++)
		if (strcmp(FX_CASES[i].name, "valid HS256") == 0)
			return FX_CASES[i].token;
	fail();
	return NULL;
}

static void test_token_sources(void **state)
{
	jwt__fake_now = FX_NOW;
	const char *tok = valid_hs256();
	char cfg[sizeof(FX_CONFIG) + 256], snap[4096];
	snprintf(cfg, sizeof(cfg),
	         "{\"cookie_names\":[\"session\"],\"header_names\":[\"Authorization\",\"x-token\"],"
	         "\"realm\":\"api\",%s",
	         FX_CONFIG + 1);
	void *conf = conf_ok(cfg);
	const char *www_err = "Bearer realm=\"api\" error=\"invalid_token\"";

	call(conf, "{\"method\":\"GET\"}");
	expect_401("{\"message\":\"Unauthorized\"}", "Bearer realm=\"api\"");

	snprintf(snap, sizeof(snap), "{\"query\":{\"jwt\":\"%s\"}}", tok);
	call(conf, snap);
	expect_authenticated("c-HS256", NULL, NULL);

	snprintf(snap, sizeof(snap), "{\"headers\":{\"cookie\":\"a=b; session=%s; c=d\"}}", tok);
	call(conf, snap);
	expect_authenticated("c-HS256", NULL, NULL);

	snprintf(snap, sizeof(snap), "{\"headers\":{\"x-token\":\"bearer   %s\"}}", tok);
	call(conf, snap);
	expect_authenticated("c-HS256", NULL, NULL);

	/* The same token twice is one token; two different ones are refused. */
	snprintf(
	    snap, sizeof(snap),
	    "{\"query\":{\"jwt\":[\"%s\",\"%s\"]},\"headers\":{\"authorization\":\"Bearer %s\"}}",
	    tok, tok, tok);
	call(conf, snap);
	expect_authenticated("c-HS256", NULL, NULL);
	snprintf(snap, sizeof(snap),
	         "{\"query\":{\"jwt\":\"%s\"},\"headers\":{\"authorization\":\"Bearer %sx\"}}", tok,
	         tok);
	call(conf, snap);
	expect_401("{\"message\":\"Multiple tokens provided\"}", www_err);

	call(conf, "{\"query\":{\"jwt\":true}}");
	expect_401("{\"message\":\"Unrecognizable token\"}", www_err);
	call(conf, "{\"headers\":{\"authorization\":\"Basic dXNlcjpwYXNz\"}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Bearer realm=\"api\"");
	call(conf, "{\"headers\":{\"authorization\":\"Bearer\"}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Bearer realm=\"api\"");
	call(conf, "{\"headers\":{\"cookie\":\"sessionx=1; session=\"}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Bearer realm=\"api\"");
	shmring_plugin.conf_free(conf);
}

/* ---- malformed and oversized tokens -------------------------------------------- */

static void test_malformed(void **state)
{
	jwt__fake_now = FX_NOW;
	void *conf = conf_ok(FX_CONFIG);
	const char *hs = valid_hs256();
	const char *dot1 = strchr(hs, '.'), *dot2 = strchr(dot1 + 1, '.');
	char buf[20000];
	static const char *bad_json = "{\"message\":\"Bad token; invalid JSON\"}";
	struct {
		const char *tok;
		const char *body;
	} v[] = {
	    {"x", bad_json},
	    {"a.b", bad_json},
	    {"..", bad_json},
	    {"e30.e30.", "{\"message\":\"Bad token; invalid alg\"}"}, /* {} . {} */
	    {"W10.e30.c2ln", bad_json},                               /* [] as header */
	    {"eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", bad_json},      /* claims "not json" */
	    {"eyJhbGciOiJIUzI1NiJ9=.e30.c2ln", bad_json},             /* padding */
	    {"eyJhbGciOiJIUzI1NiJ9.e30.c2ln.more",
	     "{\"message\":\"Bad token; invalid signature\"}"},
	    {"eyJhbGciOiJIUzI1NiJ9.e30.c2l+", "{\"message\":\"Bad token; invalid signature\"}"},
	    {"eyJhbGciOjF9.e30.c2ln", "{\"message\":\"Bad token; invalid alg\"}"}, /* alg: 1 */
	    {"eyJhbGciOiJoczI1NiJ9.e30.c2ln",
	     "{\"message\":\"Bad token; invalid alg\"}"}, /* hs256 */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		print_message("  %s\n", v[i].tok);
		call_bearer(conf, v[i].tok);
		expect_401(v[i].body, INVALID_TOKEN);
	}
	/* Signature with padding, or a doubled dot. */
	snprintf(buf, sizeof(buf), "%s=", hs);
	call_bearer(conf, buf);
	expect_401("{\"message\":\"Bad token; invalid signature\"}", INVALID_TOKEN);
	snprintf(buf, sizeof(buf), "%.*s.%s", (int)(dot1 - hs), hs, dot1);
	call_bearer(conf, buf);
	expect_401(bad_json, INVALID_TOKEN);
	/* A whitespace inside the claims part. */
	snprintf(buf, sizeof(buf), "%.*s %s", (int)(dot2 - hs - 2), hs, dot2 - 2);
	call_bearer(conf, buf);
	expect_401(bad_json, INVALID_TOKEN);

	/* Oversized: whole token, header part, signature part. */
	memset(buf, 'A', sizeof(buf));
	buf[9000] = '\0';
	memcpy(buf, hs, strlen(hs));
	call_bearer(conf, buf);
	expect_401("{\"message\":\"Bad token; too large\"}", INVALID_TOKEN);
	memset(buf, 'e', 2000);
	snprintf(buf + 2000, sizeof(buf) - 2000, "%s", dot1);
	call_bearer(conf, buf);
	expect_401("{\"message\":\"Bad token; too large\"}", INVALID_TOKEN);
	size_t n = (size_t)(dot2 - hs) + 1;
	memcpy(buf, hs, n);
	memset(buf + n, 'A', 2000);
	buf[n + 2000] = '\0';
	call_bearer(conf, buf);
	expect_401("{\"message\":\"Bad token; too large\"}", INVALID_TOKEN);
	/* Deeply nested claims: jansson refuses them (depth limit), no crash. */
	char *deep = malloc(8192);
	char *enc = malloc(12000);
	memset(deep, '[', 5000);
	size_t el = b64url_encode((const uint8_t *)deep, 5000, enc);
	snprintf(buf, sizeof(buf), "eyJhbGciOiJIUzI1NiJ9.%.*s.c2ln", (int)el, enc);
	call_bearer(conf, buf);
	expect_401(bad_json, INVALID_TOKEN);
	el = b64url_encode((const uint8_t *)deep, 3000, enc);
	snprintf(buf, sizeof(buf), "eyJhbGciOiJIUzI1NiJ9.%.*s.c2ln", (int)el, enc);
	call_bearer(conf, buf);
	expect_401(bad_json, INVALID_TOKEN);
	free(deep);
	free(enc);
	assert_int_equal(jwt__conf_cache(conf)->st.inserts, 0);
	shmring_plugin.conf_free(conf);
}

/* ---- config errors --------------------------------------------------------------- */

static void test_config_errors(void **state)
{
	char cfg[8192];
	conf_refused("{\"credentials\":[]}", "no credentials");
	conf_refused("{\"credentials\":{}}", "no credentials");
	conf_refused("{\"credentials\":[{\"key\":\"k\",\"algorithm\":\"HS999\",\"secret\":\"s\","
	             "\"consumer\":{\"id\":\"c\",\"username\":\"c\"}}]}",
	             "config.credentials[1].algorithm must be one of \"HS256\"");
	conf_refused("{\"credentials\":[{\"key\":\"k\",\"algorithm\":\"none\",\"secret\":\"s\","
	             "\"consumer\":{\"id\":\"c\",\"username\":\"c\"}}]}",
	             "(got \"none\")");
	conf_refused(
	    "{\"credentials\":[{\"key\":\"k\",\"consumer\":{\"id\":\"c\",\"username\":\"c\"}}]}",
	    "needs a non-empty secret");
	conf_refused("{\"credentials\":[{\"key\":\"\",\"secret\":\"s\",\"consumer\":{\"id\":\"c\","
	             "\"username\":\"c\"}}]}",
	             "config.credentials[1].key: length must be at least 1");
	/* The consumer record is required: filled in empty, then refused. */
	conf_refused("{\"credentials\":[{\"key\":\"k\",\"secret\":\"s\"}]}",
	             "needs an id or a username");
	conf_refused("{\"credentials\":[{\"key\":\"k\",\"secret\":\"s\",\"consumer\":{}}]}",
	             "needs an id or a username");
	conf_refused(
	    "{\"credentials\":[{\"key\":\"k\",\"secret\":\"s\",\"consumer\":{\"id\":\"a\","
	    "\"username\":\"a\"}},"
	    "{\"key\":\"k\",\"secret\":\"t\",\"consumer\":{\"id\":\"b\",\"username\":\"b\"}}]}",
	    "duplicate credential key 'k'");
	conf_refused("{\"credentials\":[{\"key\":\"k\",\"algorithm\":\"RS256\",\"consumer\":{"
	             "\"id\":\"c\",\"username\":\"c\"}}]}",
	             "needs rsa_public_key");
	conf_refused("{\"credentials\":[{\"key\":\"k\",\"algorithm\":\"RS256\",\"consumer\":{"
	             "\"id\":\"c\",\"username\":\"c\"},"
	             "\"rsa_public_key\":\"-----BEGIN PUBLIC KEY-----\\ngarbage\\n-----END PUBLIC "
	             "KEY-----\\n\"}]}",
	             "not a PEM public key");
	/* A private key where the public one belongs. */
	FILE *f = fopen(SRC_DIR "/keys/rsa2048.pem", "r");
	assert_non_null(f);
	char pem[4096];
	size_t pl = fread(pem, 1, sizeof(pem) - 1, f);
	fclose(f);
	pem[pl] = '\0';
	json_t *j = json_pack("{s:[{s:s,s:s,s:{s:s},s:s}]}", "credentials", "key", "k", "algorithm",
	                      "RS256", "consumer", "id", "c", "rsa_public_key", pem);
	char *t = json_dumps(j, JSON_COMPACT);
	conf_refused(t, "it is a private key");
	free(t);
	json_decref(j);
	struct {
		const char *alg, *pem, *expect;
	} mism[] = {
	    {"RS256", FX_RSA1024_PUB, "RSA key of 1024 bits; at least 2048"},
	    {"RS256", FX_EC256_PUB, "needs an RSA key"},
	    {"PS256", FX_ED25519_PUB, "needs an RSA key"},
	    {"ES384", FX_EC256_PUB, "needs an EC key on P-384"},
	    {"ES256", FX_RSA_PUB, "needs an EC key on P-256"},
	    {"EdDSA", FX_RSA_PUB, "needs an Ed25519 or Ed448 key"},
	};
	for (size_t i = 0; i < sizeof(mism) / sizeof(mism[0]); i++) {
		j = json_pack("{s:[{s:s,s:s,s:{s:s},s:s}]}", "credentials", "key", "k", "algorithm",
		              mism[i].alg, "consumer", "id", "c", "rsa_public_key", mism[i].pem);
		t = json_dumps(j, JSON_COMPACT);
		conf_refused(t, mism[i].expect);
		free(t);
		json_decref(j);
	}
	const char *cred = "\"credentials\":[{\"key\":\"k\",\"secret\":\"s\",\"consumer\":{\"id\":"
	                   "\"c\",\"username\":\"c\"}}]";
	struct {
		const char *field, *expect;
	} bad[] = {
	    {"\"maximum_expiration\":60,\"claims_to_verify\":[\"nbf\"]",
	     "jwt: config.claims_to_verify: expected to contain: exp"},
	    {"\"maximum_expiration\":-1",
	     "config.maximum_expiration must be between 0 and 31536000"},
	    {"\"claims_to_verify\":[\"iat\"]",
	     "config.claims_to_verify[1] must be one of \"exp\", \"nbf\""},
	    {"\"claims_to_verify\":\"exp\"", "config.claims_to_verify must be an array"},
	    {"\"header_names\":\"authorization\"", "config.header_names must be an array"},
	    {"\"uri_param_names\":[\"\"]", "config.uri_param_names[1]: length must be at least 1"},
	    {"\"key_claim_name\":\"\"", "config.key_claim_name: length must be at least 1"},
	    {"\"secret_is_base64\":\"yes\"", "config.secret_is_base64 must be a boolean"},
	    {"\"secret_is_base64\":true,\"x\":1", "unknown config field 'x'"},
	    {"\"cache_size\":0", "config.cache_size must be between 1 and 4194304"},
	    {"\"anonymous\":\"ghost\"", "config.anonymous names consumer 'ghost'"},
	    {"\"credentials_file\":\"/nonexistent/creds.json\"", "/nonexistent/creds.json"},
	    {"\"realm\":\"a\\\"b\"", "config.realm must not contain"},
	    {"\"realm\":\"a\\r\\nX-Injected: 1\"", "config.realm must not contain"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cfg, sizeof(cfg), "{%s,%s}", bad[i].field, cred);
		conf_refused(cfg, bad[i].expect);
	}
	conf_refused("{\"secret_is_base64\":true,\"credentials\":[{\"key\":\"k\",\"secret\":\"!!\","
	             "\"consumer\":{\"id\":\"c\",\"username\":\"c\"}}]}",
	             "secret is not valid base64");
	/* The config's own type. */
	msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
	void *conf = NULL;
	assert_true(shmring_plugin.conf_new(NULL, &nil, &conf, conf_err, sizeof(conf_err)) < 0);
	assert_non_null(strstr(conf_err, "must be a map"));
}

/* ---- cache behaviour --------------------------------------------------------------- */

/* A token for the HS256 fixture credential, signed here with OpenSSL's HMAC
 * (the fixtures already cover cross-implementation signing). */
static void hs256_token(const char *claims, char *out, size_t outlen)
{
	char h[64], c[1024], s[64];
	size_t hl = b64url_encode((const uint8_t *)"{\"alg\":\"HS256\"}", 15, h);
	size_t cl = b64url_encode((const uint8_t *)claims, strlen(claims), c);
	char si[1200];
	int n = snprintf(si, sizeof(si), "%.*s.%.*s", (int)hl, h, (int)cl, c);
	uint8_t mac[32];
	size_t ml = sizeof(mac);
	static const char key[] = "secret-for-HS256-0123456789abcdef";
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, strlen(key),
	                          (const uint8_t *)si, (size_t)n, mac, sizeof(mac), &ml));
	size_t sl = b64url_encode(mac, ml, s);
	snprintf(out, outlen, "%s.%.*s", si, (int)sl, s);
}

static void test_cache(void **state)
{
	jwt__fake_now = FX_NOW;
	char cfg[sizeof(FX_CONFIG) + 64];
	snprintf(cfg, sizeof(cfg), "{\"cache_size\":4,\"cache_ttl\":100,%s", FX_CONFIG + 1);
	void *conf = conf_ok(cfg);
	struct jwt_cache *jc = jwt__conf_cache(conf);
	assert_int_equal(jwt__cache_capacity(jc), 4);
	char tok[5][1280], claims[256];
	for (int i = 0; i < 5; i++) {
		snprintf(claims, sizeof(claims),
		         "{\"iss\":\"k-HS256\",\"n\":%d,\"nbf\":1,\"exp\":%d}", i, FX_NOW + 1000);
		hs256_token(claims, tok[i], sizeof(tok[i]));
	}
	for (int i = 0; i < 4; i++) {
		call_bearer(conf, tok[i]);
		expect_authenticated("c-HS256", NULL, NULL);
	}
	assert_int_equal(jc->st.inserts, 4);
	assert_int_equal(jc->st.hits, 0);
	call_bearer(conf, tok[0]); /* tok[0] becomes the most recent */
	assert_int_equal(jc->st.hits, 1);
	call_bearer(conf, tok[4]); /* evicts the least recent: tok[1] */
	assert_int_equal(jc->st.evictions, 1);
	call_bearer(conf, tok[0]);
	assert_int_equal(jc->st.hits, 2);
	call_bearer(conf, tok[1]);
	expect_authenticated("c-HS256", NULL, NULL);
	assert_int_equal(jc->st.hits, 2); /* miss, verified again */

	/* cache_ttl bounds entries of tokens whose exp is far away. */
	uint64_t hits = jc->st.hits;
	jwt__fake_now = FX_NOW + 99;
	call_bearer(conf, tok[1]);
	assert_int_equal(jc->st.hits, hits + 1);
	jwt__fake_now = FX_NOW + 100;
	call_bearer(conf, tok[1]);
	assert_int_equal(jc->st.hits, hits + 1);
	assert_true(jc->st.expired >= 1);

	/* An entry never outlives exp (a fractional one here: dead at ceil). */
	snprintf(claims, sizeof(claims), "{\"iss\":\"k-HS256\",\"nbf\":1,\"exp\":%d.5}",
	         FX_NOW + 110);
	char t2[1280];
	hs256_token(claims, t2, sizeof(t2));
	call_bearer(conf, t2);
	call_bearer(conf, t2);
	hits = jc->st.hits;
	jwt__fake_now = FX_NOW + 110;
	call_bearer(conf, t2); /* exp 110.5 > 110: still valid, cached */
	expect_authenticated("c-HS256", NULL, NULL);
	assert_int_equal(jc->st.hits, hits + 1);
	jwt__fake_now = FX_NOW + 111;
	call_bearer(conf, t2);
	expect_401("{\"exp\":\"token expired\"}", INVALID_TOKEN);
	assert_int_equal(jc->st.hits, hits + 1);

	/* Failures never enter: the same bad token twice is two misses. */
	uint64_t inserts = jc->st.inserts;
	snprintf(claims, sizeof(claims), "{\"iss\":\"k-HS256\",\"nbf\":1,\"exp\":%d}", FX_NOW);
	hs256_token(claims, t2, sizeof(t2));
	call_bearer(conf, t2);
	call_bearer(conf, t2);
	expect_401("{\"exp\":\"token expired\"}", INVALID_TOKEN);
	assert_int_equal(jc->st.inserts, inserts);
	shmring_plugin.conf_free(conf);

	/* Direct: a hash match is not enough, the bytes must match. */
	struct jwt_cache c;
	assert_int_equal(jwt__cache_init(&c, 1), 0);
	struct jwt_cred dummy = {0};
	assert_int_equal(jwt__cache_put(&c, "abc", 3, &dummy, 10, 5), 0);
	assert_ptr_equal(jwt__cache_get(&c, "abc", 3, 6), &dummy);
	assert_null(jwt__cache_get(&c, "abd", 3, 6));
	assert_null(jwt__cache_get(&c, "abc", 3, 10));
	assert_int_equal(jwt__cache_put(&c, "old", 3, &dummy, 5, 5), 0); /* dead on arrival */
	assert_null(jwt__cache_get(&c, "old", 3, 5));
	jwt__cache_destroy(&c);
}

static void test_header_cache(void **state)
{
	struct jwt_header_cache hc = {0};
	struct jwt_token t;
	/* {"alg":"HS256"} and {"alg":"HS384"}, the same claims {}. */
	const char *a = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", *b = "eyJhbGciOiJIUzM4NCJ9.e30.c2ln";
	assert_int_equal(jwt__token_parse(a, strlen(a), &t, &hc), JWT_OK);
	json_t *first = t.header;
	assert_int_equal(t.alg, JWT_HS256);
	jwt__token_clear(&t);
	assert_int_equal(jwt__token_parse(a, strlen(a), &t, &hc), JWT_OK);
	assert_ptr_equal(t.header, first); /* parsed once */
	jwt__token_clear(&t);
	/* One byte of difference is another header. */
	assert_int_equal(jwt__token_parse(b, strlen(b), &t, &hc), JWT_OK);
	assert_int_equal(t.alg, JWT_HS384);
	jwt__token_clear(&t);
	/* Invalid headers are not remembered; "alg":"none" is, but refused. */
	assert_int_equal(jwt__token_parse("bm9wZQ.e30.c2ln", 15, &t, &hc), JWT_E_JSON);
	const char *none = "eyJhbGciOiJub25lIn0.e30.c2ln";
	for (int i = 0; i < 2; i++)
		assert_int_equal(jwt__token_parse(none, strlen(none), &t, &hc), JWT_E_ALG);
	assert_null(t.header);
	/* Round robin past the capacity: a is parsed anew, still right. */
	const char *more[] = {"eyJhbGciOiJIUzUxMiJ9.e30.c2ln", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
	                      "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(jwt__token_parse(more[i], strlen(more[i]), &t, &hc), JWT_OK);
		jwt__token_clear(&t);
	}
	assert_int_equal(jwt__token_parse(a, strlen(a), &t, &hc), JWT_OK);
	assert_int_equal(t.alg, JWT_HS256);
	jwt__token_clear(&t);
	jwt__header_cache_clear(&hc);
}

/* ---- anonymous, preflight, credentials file --------------------------------------- */

static void test_anonymous_and_preflight(void **state)
{
	jwt__fake_now = FX_NOW;
	void *conf = conf_ok("{\"anonymous\":\"guest\",\"run_on_preflight\":false,"
	                     "\"consumers\":[{\"id\":\"guest-id\",\"username\":\"guest\"}],"
	                     "\"credentials\":[{\"key\":\"k-HS256\",\"secret\":\"secret-for-HS256-"
	                     "0123456789abcdef\","
	                     "\"consumer\":{\"id\":\"c-HS256\"}}]}");
	call(conf, "{\"method\":\"GET\"}");
	expect_authenticated("guest-id", "guest", NULL);
	expect_no_credential();
	assert_string_equal(set_header("X-Anonymous-Consumer"), "true");
	assert_true(cleared("X-Credential-Identifier"));
	call_bearer(conf, "garbage");
	expect_authenticated("guest-id", NULL, NULL);
	call_bearer(conf, valid_hs256());
	expect_authenticated("c-HS256", NULL, "k-HS256");
	/* Already authenticated by another plugin: nothing to do. */
	call(conf, "{\"method\":\"GET\",\"credential\":\"other\"}");
	assert_int_equal(n_actions(), 0);
	/* An anonymous consumer from an earlier plugin has no credential: try. */
	call(conf, "{\"method\":\"GET\",\"consumer\":{\"id\":\"someone\"}}");
	expect_authenticated("guest-id", "guest", NULL);
	/* Preflight skipped. */
	call(conf, "{\"method\":\"OPTIONS\"}");
	assert_int_equal(n_actions(), 0);
	shmring_plugin.conf_free(conf);

	conf = conf_ok(FX_CONFIG);
	call(conf, "{\"method\":\"OPTIONS\"}");
	expect_401("{\"message\":\"Unauthorized\"}", "Bearer");
	shmring_plugin.conf_free(conf);
}

/* ---- secrets from the gateway (no credentials of its own) ------------------- */

#define GW_SECRET(secret)                                                                          \
	"[3,\"k-HS256\",{\"id\":\"cred-gw\",\"key\":\"k-HS256\",\"algorithm\":\"HS256\","          \
	"\"secret\":\"" secret "\",\"consumer\":{\"id\":\"c-gw\",\"username\":\"gw\"}}]"

/* The reply is NEED_ENTITIES with exactly one LOOKUP of kind for key. */
static void expect_lookup(int kind, const char *key)
{
	if (json_integer_value(json_object_get(reply, "s")) != SHMRING_REPLY_NEED_ENTITIES)
		fail_msg("expected NEED_ENTITIES, got %s", reply_text());
	json_t *x = action(SHMRING_ACT_LOOKUP, 0);
	assert_non_null(x);
	assert_int_equal(json_integer_value(json_array_get(x, 1)), kind);
	assert_string_equal(json_string_value(json_array_get(x, 2)), key);
}

/* FORGET as the daemon applies it. */
static void forget(const char *text)
{
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	json_to_mp(text, &sb, &u);
	assert_int_equal(shmringd__entity_forget(entities, &u.data), 0);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

static void test_gateway_secrets(void **state)
{
	jwt__fake_now = FX_NOW;
	void *conf = conf_ok("{}");
	const char *tok = valid_hs256();
	char snap[4096];
	call_bearer(conf, tok);
	expect_lookup(SHMRING_ENTITY_JWT_SECRET, "k-HS256");
	snprintf(snap, sizeof(snap),
	         "{\"headers\":{\"authorization\":\"Bearer %s\"},\"entities\":[" GW_SECRET(
	             "secret-for-HS256-0123456789abcdef") "]}",
	         tok);
	call(conf, snap);
	expect_authenticated("c-gw", "gw", "cred-gw");
	assert_string_equal(set_header("X-Credential-Identifier"), "k-HS256");
	/* Kept: no look-up, no answer needed (and the token is cached). */
	call_bearer(conf, tok);
	expect_authenticated("c-gw", "gw", "cred-gw");

	/* Rotated in the gateway: the old token must not verify from the
	 * verified-token cache once the secret is forgotten. */
	forget("{\"entities\":[[3,\"k-HS256\"]]}");
	call_bearer(conf, tok);
	expect_lookup(SHMRING_ENTITY_JWT_SECRET, "k-HS256");
	snprintf(snap, sizeof(snap),
	         "{\"headers\":{\"authorization\":\"Bearer %s\"},\"entities\":[" GW_SECRET(
	             "a-new-secret-0123456789abcdef012345") "]}",
	         tok);
	call(conf, snap);
	expect_401("{\"message\":\"Invalid signature\"}", INVALID_TOKEN);
	call_bearer(conf, tok);
	expect_401("{\"message\":\"Invalid signature\"}", INVALID_TOKEN);

	/* An unknown key: Kong's message, kept as unknown. */
	forget("{\"all\":true}");
	call_bearer(conf, tok);
	expect_lookup(SHMRING_ENTITY_JWT_SECRET, "k-HS256");
	snprintf(
	    snap, sizeof(snap),
	    "{\"headers\":{\"authorization\":\"Bearer %s\"},\"entities\":[[3,\"k-HS256\",null]]}",
	    tok);
	call(conf, snap);
	expect_401("{\"message\":\"No credentials found for given 'iss'\"}", INVALID_TOKEN);
	shmring_plugin.conf_free(conf);

	/* anonymous: asked for in the same round trip as the secret. */
	conf = conf_ok("{\"anonymous\":\"guest\"}");
	forget("{\"all\":true}");
	call_bearer(conf, tok);
	json_t *second = action(SHMRING_ACT_LOOKUP, 1);
	assert_non_null(second);
	assert_int_equal(json_integer_value(json_array_get(second, 1)), SHMRING_ENTITY_CONSUMER);
	assert_string_equal(json_string_value(json_array_get(second, 2)), "guest");
	snprintf(
	    snap, sizeof(snap),
	    "{\"headers\":{\"authorization\":\"Bearer %s\"},\"entities\":[[3,\"k-HS256\",null],"
	    "[1,\"guest\",{\"id\":\"guest-id\",\"username\":\"guest\"}]]}",
	    tok);
	call(conf, snap);
	expect_authenticated("guest-id", "guest", NULL);
	expect_no_credential();
	shmring_plugin.conf_free(conf);
}

static void write_file(const char *path, const char *text)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

static void test_credentials_file(void **state)
{
	jwt__fake_now = FX_NOW;
	char path[] = "/tmp/jwt-creds-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	json_t *j = json_pack("{s:[{s:s,s:s,s:s,s:[{s:s,s:s}]},{s:s,s:s,s:[{s:s,s:s,s:s,s:s}]}]}",
	                      "consumers", "id", "c-1", "username", "alice", "custom_id", "cust-1",
	                      "jwt_secrets", "key", "k-HS256", "secret",
	                      "secret-for-HS256-0123456789abcdef", "id", "c-2", "username", "bob",
	                      "jwt_secrets", "id", "cred-rs", "key", "k-RS256", "algorithm",
	                      "RS256", "rsa_public_key", FX_RSA_PUB);
	char *text = json_dumps(j, JSON_INDENT(1));
	json_decref(j);
	write_file(path, text);
	free(text);

	char cfg[512];
	snprintf(cfg, sizeof(cfg), "{\"credentials_file\":\"%s\",\"reload_interval_ms\":0}", path);
	void *conf = conf_ok(cfg);
	const char *rs = NULL;
	for (size_t i = 0; i < sizeof(FX_CASES) / sizeof(FX_CASES[0]); i++)
		if (strcmp(FX_CASES[i].name, "valid RS256") == 0)
			rs = FX_CASES[i].token;
	call_bearer(conf, valid_hs256());
	expect_authenticated("c-1", "alice", "k-HS256");
	assert_string_equal(set_header("X-Consumer-Custom-ID"), "cust-1");
	call_bearer(conf, rs);
	expect_authenticated("c-2", "bob", "cred-rs");

	/* A new secret for k-HS256: the cached token must stop working. */
	write_file(path, "{\"consumers\":[{\"id\":\"c-1\",\"username\":\"alice\",\"jwt_secrets\":"
	                 "[{\"key\":\"k-HS256\",\"secret\":\"rotated\"}]}]}");
	call_bearer(conf, valid_hs256());
	expect_401("{\"message\":\"Invalid signature\"}", INVALID_TOKEN);
	call_bearer(conf, rs);
	expect_401("{\"message\":\"No credentials found for given 'iss'\"}", INVALID_TOKEN);

	/* A broken file keeps the previous credentials and logs why. */
	write_file(path, "{\"consumers\": [ oops");
	call_bearer(conf, rs);
	expect_401("{\"message\":\"No credentials found for given 'iss'\"}", INVALID_TOKEN);
	json_t *log = action(SHMRING_ACT_LOG, 0);
	assert_non_null(log);
	assert_non_null(
	    strstr(json_string_value(json_array_get(log, 2)), "keeping the previous credentials"));
	shmring_plugin.conf_free(conf);
	unlink(path);
}

/* ---- hostile request shapes -------------------------------------------------------- */

static void test_hostile_requests(void **state)
{
	jwt__fake_now = FX_NOW;
	char cfg[sizeof(FX_CONFIG) + 64];
	snprintf(cfg, sizeof(cfg), "{\"cookie_names\":[\"t\"],%s", FX_CONFIG + 1);
	void *conf = conf_ok(cfg);
	char *big = malloc(40000);
	memset(big, 'a', 39999);
	big[39999] = '\0';
	call_bearer(conf, big);
	expect_401("{\"message\":\"Bad token; too large\"}", INVALID_TOKEN);
	/* Headers and query args of the wrong types are simply absent. */
	call(conf, "{\"headers\":{\"authorization\":7,\"cookie\":[1,2]},\"query\":{\"jwt\":{}}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Bearer");
	call(conf, "{\"headers\":{\"cookie\":\";;;=;t;t=\"}}");
	expect_401("{\"message\":\"Unauthorized\"}", "Bearer");
	free(big);
	shmring_plugin.conf_free(conf);
	/* A NULL conf is an error, not a crash. */
	assert_true(call(NULL, "{}") < 0);
}

int main(void)
{
	/* As shmringd with plugin_file_dirs = /tmp: the credentials file of
	 * test_credentials_file lives there. */
	char err[256];
	if (shmringd__file_dirs_set("/tmp", err, sizeof(err)) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64url_strict),
	    cmocka_unit_test(test_b64_lenient),
	    cmocka_unit_test(test_ecdsa_der),
	    cmocka_unit_test(test_descriptor),
	    cmocka_unit_test(test_fixture_cases),
	    cmocka_unit_test(test_consumer_headers),
	    cmocka_unit_test(test_rfc7515_a1),
	    cmocka_unit_test(test_token_sources),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_header_cache),
	    cmocka_unit_test(test_anonymous_and_preflight),
	    cmocka_unit_test(test_credentials_file),
	    cmocka_unit_test(test_hostile_requests),
	    cmocka_unit_test(test_gateway_secrets),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(reply);
	shmringd__entity_cache_free(entities);
	return rc;
}
