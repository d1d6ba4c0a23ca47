/* SPDX-License-Identifier: MIT */
/*
 * jwt: Kong's jwt plugin in C. Verifies a JWS compact token (HS*, RS*, ES*,
 * PS*, EdDSA) from the request against the credential its key claim names,
 * then marks the request authenticated and tells the upstream who the
 * consumer is, with Kong's config field names, statuses, bodies and headers
 * (docs/plugins.md, "jwt").
 *
 * Per request (access):
 *   preflight / already-authenticated short cuts (run_on_preflight, anonymous)
 *   -> find the token (uri_param_names, cookie_names, header_names; Kong's order)
 *   -> verified-token cache: a hit skips everything below
 *   -> parse (strict base64url, jansson) -> key claim -> credential -> alg ==
 *      credential's alg -> signature -> exp / nbf / maximum_expiration
 *   -> consumer headers + AUTHENTICATE, or Kong's 401 (or the anonymous consumer)
 *
 * Everything expensive (PEM parsing, HMAC key setup, digest fetches, the
 * credential index, the 401 bodies) happens once, in conf_new.
 *
 * With no credentials, consumers or credentials_file of its own, the jwt
 * secrets come from the gateway (under Kong: Kong's, as Kong's jwt loads
 * them): asked for by key with shmring_entity_get, each prepared once when
 * it arrives and kept per config (gw_keys) until the gateway says entities
 * changed (shmring_entity_generation), which also empties the
 * verified-token cache: a rotated secret stops verifying old tokens.
 */
#include "jwt_internal.h"
#include "shmring_creds.h"
#include "shmring_pc.h"
#include "shmring_plugin.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_NAMES 16
#define MAX_NAME_LEN 256
#define DEFAULT_CACHE_SIZE 4096
#define MAX_CACHE_SIZE (1u << 22)
#define DEFAULT_CACHE_TTL 300

int64_t jwt__fake_now;

int64_t jwt__now(void)
{
	if (jwt__fake_now)
		return jwt__fake_now;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts); /* vDSO: no syscall */
	return (int64_t)ts.tv_sec;
}

/* The 401 bodies (Kong's wording), built once per config. */
enum body {
	B_UNAUTHORIZED, /* no token */
	B_MULTIPLE,     /* several different tokens */
	B_UNRECOGNIZABLE,
	B_TOO_LARGE,
	B_BAD_JSON,
	B_BAD_ALG,
	B_BAD_SIG_B64,
	B_NO_KEY_CLAIM, /* "No mandatory '<key_claim_name>' in claims" */
	B_EMPTY_KEY_CLAIM,
	B_NO_CREDENTIAL, /* "No credentials found for given '<key_claim_name>'" */
	B_INVALID_ALG,
	B_INVALID_SIG,
	B_COUNT_
};

struct names {
	char *v[MAX_NAMES];
	size_t len[MAX_NAMES];
	size_t n;
};

struct jwt_conf {
	struct names header_names; /* lower-case */
	struct names uri_param_names;
	struct names cookie_names;
	char *key_claim_name;
	bool secret_is_base64;
	bool run_on_preflight;
	bool verify_exp, verify_nbf;
	int64_t maximum_expiration; /* seconds, 0 = off */
	char *anonymous;            /* NULL = off */
	char *www_base;             /* `Bearer` or `Bearer realm="..."` */
	char *www_error;            /* www_base + ` error="invalid_token"` */
	char *body[B_COUNT_];

	/* Credentials: `credentials` (re-packed msgpack, kept for reloads),
	 * `consumers` (parsed once) and the file (watch.path, NULL = none);
	 * kr is the current keyring built from all three. */
	msgpack_sbuffer inline_creds;
	struct shmring_creds inline_consumers;
	struct shmring_file_watch watch;
	struct jwt_keyring *kr;

	bool cache_on;
	int64_t cache_ttl; /* seconds an entry lives at most */
	struct jwt_cache cache;
	struct jwt_header_cache hdr_cache; /* parsed JOSE headers, by their text */
	EVP_MD_CTX *md_ctx;                /* reused by every asymmetric verify */

	bool from_gateway;   /* no credentials of its own: shmring_entity_get */
	uint64_t entity_gen; /* shmring_entity_generation that gw was built at */
	struct gw_keys *gw;  /* from_gateway: prepared secrets, made on first use */
};

/* Secrets the gateway answered, one single-credential keyring each, by
 * key (open addressing, FNV-1a: only keys the gateway knows get in). At
 * GW_MAX it starts again empty. */
#define GW_MAX 256
struct gw_keys {
	struct jwt_keyring *slot[2 * GW_MAX]; /* NULL: empty */
	size_t n;
};

/* authenticate()'s result when the gateway has not answered yet. */
#define PENDING 2

/* ---- config ---------------------------------------------------------------- */

static int cfg_int(const msgpack_object *cfg, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out, char *err, size_t errlen)
{
	const msgpack_object *o = shmring_pc_field(cfg, key);
	*out = def;
	if (!o)
		return 0;
	double v = shmring_pc_number(o);
	if (!(v >= (double)lo && v <= (double)hi)) {
		snprintf(err, errlen, "jwt: config.%s must be a number between %lld and %lld", key,
		         (long long)lo, (long long)hi);
		return -EINVAL;
	}
	*out = (int64_t)v;
	return 0;
}

/* An optional string; *out stays NULL when absent. */
static int cfg_str(const msgpack_object *cfg, const char *key, size_t maxlen, char **out, char *err,
                   size_t errlen)
{
	const msgpack_object *o = shmring_pc_field(cfg, key);
	*out = NULL;
	if (!o)
		return 0;
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > maxlen ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size)) {
		snprintf(err, errlen,
		         "jwt: config.%s must be a non-empty string of at most %zu bytes", key,
		         maxlen);
		return -EINVAL;
	}
	*out = strndup(o->via.str.ptr, o->via.str.size);
	if (!*out) {
		snprintf(err, errlen, "jwt: out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void names_free(struct names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->v[i]);
	n->n = 0;
}

/* A list of names (a Kong "set" of strings); absent = the default list. */
static int cfg_names(const msgpack_object *cfg, const char *key, const char *def, bool lower,
                     struct names *out, char *err, size_t errlen)
{
	const msgpack_object *o = shmring_pc_field(cfg, key);
	out->n = 0;
	if (!o) {
		if (def) {
			out->v[0] = strdup(def);
			out->len[0] = strlen(def);
			out->n = out->v[0] ? 1 : 0;
		}
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_MAP && o->via.map.size == 0)
		return 0; /* an empty Lua table */
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > MAX_NAMES) {
		snprintf(err, errlen, "jwt: config.%s must be a list of at most %d names", key,
		         MAX_NAMES);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *x = &o->via.array.ptr[i];
		if (x->type != MSGPACK_OBJECT_STR || x->via.str.size == 0 ||
		    x->via.str.size > MAX_NAME_LEN) {
			snprintf(
			    err, errlen,
			    "jwt: config.%s[%u] must be a non-empty string of at most %d bytes",
			    key, i + 1, MAX_NAME_LEN);
			names_free(out);
			return -EINVAL;
		}
		char *s = strndup(x->via.str.ptr, x->via.str.size);
		if (!s) {
			snprintf(err, errlen, "jwt: out of memory");
			names_free(out);
			return -ENOMEM;
		}
		if (lower)
			for (char *p = s; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
		out->v[out->n] = s;
		out->len[out->n] = x->via.str.size;
		out->n++;
	}
	return 0;
}

/* {"message":"<msg>"} with msg JSON-escaped (it may hold key_claim_name). */
static char *message_body(const char *msg)
{
	json_t *j = json_pack("{s:s}", "message", msg);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

static int build_bodies(struct jwt_conf *c)
{
	char buf[MAX_NAME_LEN + 64];
	static const char *fixed[B_COUNT_] = {
	    [B_UNAUTHORIZED] = "Unauthorized",
	    [B_MULTIPLE] = "Multiple tokens provided",
	    [B_UNRECOGNIZABLE] = "Unrecognizable token",
	    [B_TOO_LARGE] = "Bad token; too large",
	    [B_BAD_JSON] = "Bad token; invalid JSON",
	    [B_BAD_ALG] = "Bad token; invalid alg",
	    [B_BAD_SIG_B64] = "Bad token; invalid signature",
	    [B_INVALID_ALG] = "Invalid algorithm",
	    [B_INVALID_SIG] = "Invalid signature",
	};
	for (int i = 0; i < B_COUNT_; i++) {
		const char *m = fixed[i];
		if (i == B_NO_KEY_CLAIM) {
			snprintf(buf, sizeof(buf), "No mandatory '%s' in claims",
			         c->key_claim_name);
			m = buf;
		} else if (i == B_EMPTY_KEY_CLAIM) {
			snprintf(buf, sizeof(buf), "Invalid '%s' in claims", c->key_claim_name);
			m = buf;
		} else if (i == B_NO_CREDENTIAL) {
			snprintf(buf, sizeof(buf), "No credentials found for given '%s'",
			         c->key_claim_name);
			m = buf;
		}
		if (!(c->body[i] = message_body(m)))
			return -ENOMEM;
	}
	return 0;
}

static void jwt_conf_free(void *conf)
{
	struct jwt_conf *c = conf;
	if (!c)
		return;
	names_free(&c->header_names);
	names_free(&c->uri_param_names);
	names_free(&c->cookie_names);
	free(c->key_claim_name);
	free(c->anonymous);
	free(c->www_base);
	free(c->www_error);
	for (int i = 0; i < B_COUNT_; i++)
		free(c->body[i]);
	/* The inline credentials hold HMAC secrets. */
	if (c->inline_creds.data)
		OPENSSL_cleanse(c->inline_creds.data, c->inline_creds.size);
	msgpack_sbuffer_destroy(&c->inline_creds);
	shmring_creds_free(&c->inline_consumers);
	free(c->watch.path);
	jwt__keyring_free(c->kr);
	if (c->gw)
		for (size_t i = 0; i < 2 * GW_MAX; i++)
			jwt__keyring_free(c->gw->slot[i]);
	free(c->gw);
	jwt__cache_destroy(&c->cache);
	jwt__header_cache_clear(&c->hdr_cache);
	EVP_MD_CTX_free(c->md_ctx);
	free(c);
}

/* Build a keyring from the inline credentials and the file (read now).
 * Consumer ids, usernames and custom_ids must be unique across the inline
 * consumers and the file, jwt keys across everything; `anonymous` must
 * name a known consumer. */
static struct jwt_keyring *keyring_load(struct jwt_conf *c, char *err, size_t errlen)
{
	struct shmring_creds file = {0}, all = {0};
	struct jwt_keyring *kr = NULL;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	if (c->watch.path) {
		char why[512];
		if (shmring_creds_load_file(&file, c->watch.path, &c->watch.stamp, why,
		                            sizeof(why)) < 0) {
			snprintf(err, errlen, "jwt: %s", why);
			goto out;
		}
	}
	if (shmring_creds_join(&c->inline_consumers, &file, &all) < 0) {
		snprintf(err, errlen, "jwt: out of memory");
		goto out;
	}
	if (all.n) {
		char why[512];
		if (shmring_creds_check_unique(&all, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "jwt: %s", why);
			goto out;
		}
	}
	const msgpack_object *inl = NULL;
	size_t off = 0;
	if (c->inline_creds.size) {
		if (msgpack_unpack_next(&u, c->inline_creds.data, c->inline_creds.size, &off) !=
		    MSGPACK_UNPACK_SUCCESS) {
			snprintf(err, errlen, "jwt: config.credentials could not be re-read");
			goto out;
		}
		inl = &u.data;
	}
	const struct shmring_creds *srcs[2] = {&c->inline_consumers, c->watch.path ? &file : NULL};
	const char *names[2] = {"config.consumers", c->watch.path ? c->watch.path : ""};
	kr = jwt__keyring_build(inl, srcs, names, 2, c->secret_is_base64, err, errlen);
	if (kr && c->anonymous && !jwt__keyring_consumer(kr, c->anonymous)) {
		snprintf(
		    err, errlen,
		    "jwt: config.anonymous names consumer '%.128s', which is neither an id nor a "
		    "username of the configured consumers",
		    c->anonymous);
		jwt__keyring_free(kr);
		kr = NULL;
	}
out:
	free(all.v);
	shmring_creds_free(&file);
	msgpack_unpacked_destroy(&u);
	return kr;
}

/* The config: Kong's jwt fields, plus credentials of its own and the
 * verified-token cache. conf_new keeps what the schema cannot say: name
 * counts and lengths, a realm that fits in a quoted header value, the
 * credentials' keys and secrets. */
static const struct shmring_field jwt_string = {.type = SHMRING_FIELD_STRING};
static const char *const jwt_claims[] = {"exp", "nbf", NULL};
static const struct shmring_field jwt_claim = {.type = SHMRING_FIELD_STRING, .one_of = jwt_claims};
static const struct shmring_field jwt_config[] = {
    {.name = "uri_param_names",
     .type = SHMRING_FIELD_SET,
     .def = "[\"jwt\"]",
     .elements = &jwt_string},
    {.name = "cookie_names", .type = SHMRING_FIELD_SET, .def = "[]", .elements = &jwt_string},
    {.name = "header_names",
     .type = SHMRING_FIELD_SET,
     .def = "[\"authorization\"]",
     .elements = &jwt_string},
    {.name = "key_claim_name", .type = SHMRING_FIELD_STRING, .def = "\"iss\""},
    {.name = "secret_is_base64", .type = SHMRING_FIELD_BOOLEAN, .def = "false"},
    {.name = "claims_to_verify", .type = SHMRING_FIELD_SET, .elements = &jwt_claim},
    {.name = "anonymous", .type = SHMRING_FIELD_STRING},
    {.name = "run_on_preflight", .type = SHMRING_FIELD_BOOLEAN, .def = "true"},
    {.name = "maximum_expiration",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "0",
     .min = 0,
     .max = 31536000},
    {.name = "realm", .type = SHMRING_FIELD_STRING},
    {.name = "consumers", .type = SHMRING_FIELD_ARRAY, .elements = &shmring_creds_consumer},
    {.name = "credentials", .type = SHMRING_FIELD_ARRAY, .elements = &shmring_creds_jwt_credential},
    SHMRING_CREDS_FILE_FIELDS,
    {.name = "cache", .type = SHMRING_FIELD_BOOLEAN, .def = "true"},
    {.name = "cache_size",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "4096",
     .min = 1,
     .max = MAX_CACHE_SIZE},
    {.name = "cache_ttl",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "300",
     .min = 1,
     .max = 86400},
    SHMRING_GATEWAY_FIELDS("false"),
    {.name = NULL}};
static const struct shmring_check jwt_checks[] = {{.kind = SHMRING_CHECK_CONDITIONAL,
                                                   .if_field = "maximum_expiration",
                                                   .if_match = {.flags = SHMRING_MATCH_GT, .gt = 0},
                                                   .then_field = "claims_to_verify",
                                                   .then_match = {.contains = "exp"}},
                                                  {.kind = 0}};

static int jwt_conf_new(void *wstate, const msgpack_object *config, void **out, char *err,
                        size_t errlen)
{
	*out = NULL;
	if (!config || config->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "jwt: the config must be a map");
		return -EINVAL;
	}
	struct jwt_conf *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "jwt: out of memory");
		return -ENOMEM;
	}
	msgpack_sbuffer_init(&c->inline_creds);
	int rc;
	int64_t max_exp = 0, cache_size = 0, cache_ttl = 0, reload_ms = 0;
	char *realm = NULL;
	if ((rc = cfg_names(config, "header_names", "authorization", true, &c->header_names, err,
	                    errlen)) < 0 ||
	    (rc = cfg_names(config, "uri_param_names", "jwt", false, &c->uri_param_names, err,
	                    errlen)) < 0 ||
	    (rc = cfg_names(config, "cookie_names", NULL, false, &c->cookie_names, err, errlen)) <
	        0 ||
	    (rc = cfg_str(config, "key_claim_name", MAX_NAME_LEN, &c->key_claim_name, err,
	                  errlen)) < 0 ||
	    (rc = shmring_pc_bool(config, "jwt", "secret_is_base64", false, &c->secret_is_base64,
	                          err, errlen)) < 0 ||
	    (rc = shmring_pc_bool(config, "jwt", "run_on_preflight", true, &c->run_on_preflight,
	                          err, errlen)) < 0 ||
	    (rc = cfg_int(config, "maximum_expiration", 0, 0, 31536000, &max_exp, err, errlen)) <
	        0 ||
	    (rc = cfg_str(config, "anonymous", MAX_NAME_LEN, &c->anonymous, err, errlen)) < 0 ||
	    (rc = cfg_str(config, "realm", MAX_NAME_LEN, &realm, err, errlen)) < 0 ||
	    (rc = cfg_str(config, "credentials_file", 4000, &c->watch.path, err, errlen)) < 0 ||
	    (rc = cfg_int(config, "reload_interval_ms", 1000, 0, 3600000, &reload_ms, err,
	                  errlen)) < 0 ||
	    (rc = shmring_pc_bool(config, "jwt", "cache", true, &c->cache_on, err, errlen)) < 0 ||
	    (rc = cfg_int(config, "cache_size", DEFAULT_CACHE_SIZE, 1, MAX_CACHE_SIZE, &cache_size,
	                  err, errlen)) < 0 ||
	    (rc = cfg_int(config, "cache_ttl", DEFAULT_CACHE_TTL, 1, 86400, &cache_ttl, err,
	                  errlen)) < 0)
		goto fail;
	c->maximum_expiration = max_exp;
	c->cache_ttl = cache_ttl;
	if (!c->key_claim_name && !(c->key_claim_name = strdup("iss"))) {
		rc = -ENOMEM;
		goto fail;
	}

	/* claims_to_verify: the schema let only "exp" and "nbf" in. */
	const msgpack_object *cv = shmring_pc_field(config, "claims_to_verify");
	for (uint32_t i = 0; cv && cv->type == MSGPACK_OBJECT_ARRAY && i < cv->via.array.size;
	     i++) {
		const msgpack_object *x = &cv->via.array.ptr[i];
		bool nbf = x->type == MSGPACK_OBJECT_STR && x->via.str.size == 3 &&
		           memcmp(x->via.str.ptr, "nbf", 3) == 0;
		c->verify_nbf |= nbf;
		c->verify_exp |= !nbf;
	}

	/* WWW-Authenticate values (realm cannot hold a quote: it is quoted). */
	bool realm_bad = false;
	for (const char *p = realm; p && *p; p++)
		realm_bad |= *p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f;
	if (realm_bad) {
		snprintf(err, errlen,
		         "jwt: config.realm must not contain '\"', '\\' or control characters");
		rc = -EINVAL;
		goto fail;
	}
	size_t wl = (realm ? strlen(realm) : 0) + 64;
	c->www_base = malloc(wl);
	c->www_error = malloc(wl);
	if (!c->www_base || !c->www_error) {
		rc = -ENOMEM;
		goto fail;
	}
	if (realm)
		snprintf(c->www_base, wl, "Bearer realm=\"%s\"", realm);
	else
		snprintf(c->www_base, wl, "Bearer");
	snprintf(c->www_error, wl, "%s error=\"invalid_token\"", c->www_base);
	free(realm);
	realm = NULL;
	if ((rc = build_bodies(c)) < 0)
		goto fail;

	/* Credentials: keep the inline ones (packed) for file reloads. */
	const msgpack_object *creds = shmring_pc_field(config, "credentials");
	if (creds) {
		msgpack_packer pk;
		msgpack_packer_init(&pk, &c->inline_creds, msgpack_sbuffer_write);
		if (msgpack_pack_object(&pk, *creds) != 0) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if ((rc = shmring_creds_add_config(&c->inline_consumers, config, "jwt", err, errlen)) < 0)
		goto fail;
	c->watch.interval_ns = (uint64_t)reload_ms * 1000000u;
	c->from_gateway = !creds && !c->inline_consumers.n && !c->watch.path;
	if (!c->from_gateway && !(c->kr = keyring_load(c, err, errlen))) {
		rc = -EINVAL;
		goto fail;
	}
	c->watch.next_check_ns = shmring_pc_now_ns() + c->watch.interval_ns;
	if (c->cache_on && jwt__cache_init(&c->cache, (uint32_t)cache_size) < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	if (!(c->md_ctx = EVP_MD_CTX_new())) {
		rc = -ENOMEM;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "jwt: out of memory");
	free(realm);
	jwt_conf_free(c);
	return rc < 0 ? rc : -EINVAL;
}

/* shmring_creds_maybe_reload's step: a new keyring, or the old one kept. */
static int reload_keyring(void *arg, char *err, size_t errlen)
{
	struct jwt_conf *c = arg;
	struct jwt_keyring *kr = keyring_load(c, err, errlen);
	if (!kr)
		return -EINVAL;
	/* Cache entries point at the old credentials: drop them first. */
	jwt__cache_flush(&c->cache);
	jwt__keyring_free(c->kr);
	c->kr = kr;
	return 0;
}

/* ---- finding the token ---------------------------------------------------- */

enum find { FIND_NONE, FIND_ONE, FIND_MULTIPLE, FIND_UNRECOGNIZABLE };

struct found {
	enum find what;
	struct shmring_str tok;
};

static void found_add(struct found *f, const char *p, size_t n)
{
	if (n == 0 || f->what == FIND_UNRECOGNIZABLE)
		return;
	if (f->what == FIND_NONE) {
		f->what = FIND_ONE;
		f->tok = (struct shmring_str){p, n};
	} else if (f->what == FIND_ONE && (f->tok.len != n || memcmp(f->tok.ptr, p, n) != 0)) {
		f->what = FIND_MULTIPLE;
	}
}

/* Kong's `\s*[Bb]earer\s+(.+)` (unanchored, first match). */
static void bearer(struct found *f, struct shmring_str v)
{
	for (size_t i = 0; i + 6 < v.len; i++) {
		if ((v.ptr[i] != 'B' && v.ptr[i] != 'b') || memcmp(v.ptr + i + 1, "earer", 5) != 0)
			continue;
		size_t j = i + 6, ws = j;
		while (j < v.len && (v.ptr[j] == ' ' || v.ptr[j] == '\t'))
			j++;
		if (j == ws || j >= v.len)
			continue;
		found_add(f, v.ptr + j, v.len - j);
		return;
	}
}

/* The first `name=value` of a Cookie header, as nginx's $cookie_<name>. */
static int cookie_get(struct shmring_str h, const char *name, size_t nl, struct shmring_str *val)
{
	size_t i = 0;
	while (i < h.len) {
		while (i < h.len &&
		       (h.ptr[i] == ' ' || h.ptr[i] == '\t' || h.ptr[i] == ';' || h.ptr[i] == ','))
			i++;
		size_t start = i;
		while (i < h.len && h.ptr[i] != ';' && h.ptr[i] != ',')
			i++;
		size_t end = i;
		if (end - start > nl && h.ptr[start + nl] == '=' &&
		    strncasecmp(h.ptr + start, name, nl) == 0) {
			size_t vs = start + nl + 1, ve = end;
			while (ve > vs && (h.ptr[ve - 1] == ' ' || h.ptr[ve - 1] == '\t'))
				ve--;
			*val = (struct shmring_str){h.ptr + vs, ve - vs};
			return 1;
		}
	}
	return 0;
}

static void find_token(const struct jwt_conf *c, const struct shmring_request *req, struct found *f)
{
	f->what = FIND_NONE;
	for (size_t i = 0; i < c->uri_param_names.n; i++) {
		const msgpack_object *v =
		    shmring_map_get(req->query, (struct shmring_str){c->uri_param_names.v[i],
		                                                     c->uri_param_names.len[i]});
		if (!v)
			continue;
		uint32_t n = v->type == MSGPACK_OBJECT_ARRAY ? v->via.array.size : 1;
		for (uint32_t k = 0; k < n; k++) {
			const msgpack_object *x =
			    v->type == MSGPACK_OBJECT_ARRAY ? &v->via.array.ptr[k] : v;
			if (x->type == MSGPACK_OBJECT_STR)
				found_add(f, x->via.str.ptr, x->via.str.size);
			else if (x->type == MSGPACK_OBJECT_BOOLEAN && x->via.boolean)
				f->what = FIND_UNRECOGNIZABLE; /* `?jwt` without a value */
		}
	}
	if (c->cookie_names.n) {
		struct shmring_str cookie, val;
		for (size_t k = 0; shmring_req_header_nth(req, SHMRING_LIT("cookie"), k, &cookie);
		     k++)
			for (size_t i = 0; i < c->cookie_names.n; i++)
				if (cookie_get(cookie, c->cookie_names.v[i], c->cookie_names.len[i],
				               &val))
					found_add(f, val.ptr, val.len);
	}
	for (size_t i = 0; i < c->header_names.n; i++) {
		struct shmring_str v;
		if (shmring_req_header(
		        req, (struct shmring_str){c->header_names.v[i], c->header_names.len[i]},
		        &v))
			bearer(f, v);
	}
}

/* ---- replies ----------------------------------------------------------------- */

static struct shmring_str S(const char *s) {
	return shmring_cstr(s);
}

/* Kong's set_consumer(): consumer headers, credential header, authenticate. */
static int
set_consumer(struct shmring_reply *rep, const struct jwt_consumer *cons,
             const struct jwt_cred *cred)
{
	int rc = shmring_creds_set_consumer_headers(
	    rep, S(cons ? cons->id : NULL), S(cons ? cons->custom_id : NULL),
	    S(cons ? cons->username : NULL), S(cred ? cred->key : NULL), !cred);
	rc |= shmring_reply_authenticate(rep, S(cons && cons->id ? cons->id : ""),
	                                 S(cons && cons->username ? cons->username : ""),
	                                 S(cons && cons->custom_id ? cons->custom_id : ""),
	                                 S(cred ? cred->id : ""));
	return rc ? -EMSGSIZE : 0;
}

struct failure {
	const char *body;
	const char *www; /* WWW-Authenticate value */
	char claims_body[128];
};

static int fail_with(struct failure *f, const struct jwt_conf *c, enum body b)
{
	f->body = c->body[b];
	f->www = b == B_UNAUTHORIZED ? c->www_base : c->www_error;
	return 0;
}

/* A numeric claim: 1 and *v if a JSON number, 0 if absent, -1 otherwise. */
static int num_claim(json_t *claims, const char *name, double *v)
{
	json_t *x = json_object_get(claims, name);
	if (!x)
		return 0;
	if (!json_is_number(x))
		return -1;
	*v = json_number_value(x);
	return 1;
}

/* ---- secrets from the gateway ---------------------------------------------- */

static size_t gw_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
	return (size_t)(h & (2 * GW_MAX - 1));
}

/* Drop every prepared secret and, since its entries point at them, the
 * verified-token cache. */
static void gw_flush(struct jwt_conf *c)
{
	jwt__cache_flush(&c->cache);
	if (!c->gw)
		return;
	for (size_t i = 0; i < 2 * GW_MAX; i++)
		jwt__keyring_free(c->gw->slot[i]);
	memset(c->gw, 0, sizeof(*c->gw));
}

static size_t gw_slot(const struct gw_keys *g, const char *key, size_t len)
{
	size_t i = gw_hash(key, len);
	while (g->slot[i] && (g->slot[i]->creds[0].key_len != len ||
	                      memcmp(g->slot[i]->creds[0].key, key, len) != 0))
		i = (i + 1) & (2 * GW_MAX - 1);
	return i;
}

/* The gateway's secret for key, prepared: 1 (*out set), 0 (none, or one
 * that cannot be used: logged), PENDING, or < 0. */
static int gw_cred(struct jwt_conf *c, const struct shmring_request *req, struct shmring_reply *rep,
                   const char *key, size_t len, const struct jwt_cred **out)
{
	if (!c->gw && !(c->gw = calloc(1, sizeof(*c->gw))))
		return -ENOMEM;
	size_t i = gw_slot(c->gw, key, len);
	if (c->gw->slot[i]) {
		*out = &c->gw->slot[i]->creds[0];
		return 1;
	}
	const msgpack_object *secret, *anon;
	int rc = shmring_entity_get(req, SHMRING_ENTITY_JWT_SECRET, (struct shmring_str){key, len},
	                            &secret);
	if (rc == SHMRING_ENTITY_PENDING) {
		if (c->anonymous) /* the same round trip */
			shmring_entity_get(req, SHMRING_ENTITY_CONSUMER, S(c->anonymous), &anon);
		return PENDING;
	}
	if (rc <= 0)
		return rc;
	/* The answer has the shape of one `credentials` entry. */
	msgpack_object list = {.type = MSGPACK_OBJECT_ARRAY,
	                       .via.array = {.size = 1, .ptr = (msgpack_object *)secret}};
	char err[512];
	struct jwt_keyring *kr =
	    jwt__keyring_build(&list, NULL, NULL, 0, c->secret_is_base64, err, sizeof(err));
	if (!kr || kr->creds[0].key_len != len || memcmp(kr->creds[0].key, key, len) != 0) {
		if (kr)
			snprintf(err, sizeof(err), "jwt: the gateway's secret has another key");
		shmring_reply_log(rep, SHMRING_LOG_ERR, S(err));
		jwt__keyring_free(kr);
		return 0;
	}
	if (c->gw->n >= GW_MAX) {
		gw_flush(c);
		i = gw_slot(c->gw, key, len);
	}
	c->gw->slot[i] = kr;
	c->gw->n++;
	*out = &kr->creds[0];
	return 1;
}

/* Kong's jwt with anonymous and no valid token: the gateway's consumer,
 * or Kong's 500 when it has none. 0, or < 0 if the reply could not take it. */
static int gw_anonymous(const struct jwt_conf *c, const struct shmring_request *req,
                        struct shmring_reply *rep)
{
	const msgpack_object *k;
	int rc = shmring_entity_get(req, SHMRING_ENTITY_CONSUMER, S(c->anonymous), &k);
	if (rc < 0 || rc == SHMRING_ENTITY_PENDING)
		return rc < 0 ? rc : 0;
	struct shmring_str id = {0}, username = {0}, custom_id = {0};
	if (rc == 0 || !shmring_map_str(k, SHMRING_LIT("id"), &id) || !id.len)
		return shmring_creds_anonymous_missing(rep, c->anonymous);
	shmring_map_str(k, SHMRING_LIT("username"), &username);
	shmring_map_str(k, SHMRING_LIT("custom_id"), &custom_id);
	int r = shmring_creds_set_consumer_headers(rep, id, custom_id, username,
	                                           (struct shmring_str){0}, true);
	r |= shmring_reply_authenticate(rep, id, username, custom_id, (struct shmring_str){0});
	return r ? -EMSGSIZE : 0;
}

/* Verify the token; 1 = authenticated (*cred set), 0 = refused (f set),
 * PENDING (the gateway is asked for the secret), < 0 error. */
static int verify(struct jwt_conf *c, const struct shmring_request *req, struct shmring_reply *rep,
                  struct shmring_str tok, int64_t now, const struct jwt_cred **out,
                  struct failure *f)
{
	if (c->cache_on) {
		const struct jwt_cred *hit = jwt__cache_get(&c->cache, tok.ptr, tok.len, now);
		if (hit) {
			*out = hit;
			return 1;
		}
	}
	struct jwt_token t;
	switch (jwt__token_parse(tok.ptr, tok.len, &t, &c->hdr_cache)) {
	case JWT_OK:
		break;
	case JWT_E_TOO_LARGE:
		return fail_with(f, c, B_TOO_LARGE);
	case JWT_E_JSON:
		return fail_with(f, c, B_BAD_JSON);
	case JWT_E_ALG:
		return fail_with(f, c, B_BAD_ALG);
	case JWT_E_SIGNATURE:
		return fail_with(f, c, B_BAD_SIG_B64);
	}
	int ok = 0;
	/* The key claim: claims first, then the JOSE header (Kong's order). */
	json_t *k = json_object_get(t.claims, c->key_claim_name);
	if (!k)
		k = json_object_get(t.header, c->key_claim_name);
	const struct jwt_cred *cred = NULL;
	if (!k || json_is_null(k)) {
		fail_with(f, c, B_NO_KEY_CLAIM);
		goto out;
	}
	if (!json_is_string(k) || json_string_length(k) == 0) {
		fail_with(f, c, B_EMPTY_KEY_CLAIM);
		goto out;
	}
	if (c->from_gateway) {
		int rc = gw_cred(c, req, rep, json_string_value(k), json_string_length(k), &cred);
		if (rc < 0 || rc == PENDING) {
			ok = rc;
			goto out;
		}
	} else {
		cred = jwt__keyring_find(c->kr, json_string_value(k), json_string_length(k));
	}
	if (!cred) {
		fail_with(f, c, B_NO_CREDENTIAL);
		goto out;
	}
	/* The credential decides the algorithm: no "none", no HS/RS swap. */
	if (t.alg != cred->alg) {
		fail_with(f, c, B_INVALID_ALG);
		goto out;
	}
	if (!jwt__token_verify(&t, cred, c->md_ctx)) {
		fail_with(f, c, B_INVALID_SIG);
		goto out;
	}

	/* Registered claims, with Kong's error object. */
	double exp = 0, nbf = 0;
	int has_exp = num_claim(t.claims, "exp", &exp);
	const char *exp_err = NULL, *nbf_err = NULL;
	if (c->verify_exp) {
		if (has_exp != 1)
			exp_err = "must be a number";
		else if (exp <= (double)now)
			exp_err = "token expired";
	}
	if (c->verify_nbf) {
		int has_nbf = num_claim(t.claims, "nbf", &nbf);
		if (has_nbf != 1)
			nbf_err = "must be a number";
		else if (nbf > (double)now)
			nbf_err = "token not valid yet";
	}
	if (!exp_err && !nbf_err && c->maximum_expiration > 0 &&
	    (has_exp != 1 || exp - (double)now > (double)c->maximum_expiration))
		exp_err = "exceeds maximum allowed expiration";
	if (exp_err || nbf_err) {
		if (exp_err && nbf_err)
			snprintf(f->claims_body, sizeof(f->claims_body),
			         "{\"exp\":\"%s\",\"nbf\":\"%s\"}", exp_err, nbf_err);
		else
			snprintf(f->claims_body, sizeof(f->claims_body), "{\"%s\":\"%s\"}",
			         exp_err ? "exp" : "nbf", exp_err ? exp_err : nbf_err);
		f->body = f->claims_body;
		f->www = c->www_error;
		goto out;
	}

	ok = 1;
	*out = cred;
	if (c->cache_on) {
		/* Never past exp: the entry dies at ceil(exp), when exp <= now
		 * starts to hold. */
		int64_t until = now + c->cache_ttl;
		if (has_exp == 1 && isfinite(exp) && ceil(exp) < (double)until)
			until = (int64_t)ceil(exp);
		jwt__cache_put(&c->cache, tok.ptr, tok.len, cred, until, now);
	}
out:
	jwt__token_clear(&t);
	return ok;
}

static int jwt_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	struct jwt_conf *c = conf;
	if (!c)
		return -EINVAL;
	if (!c->run_on_preflight && req->method.len == 7 &&
	    memcmp(req->method.ptr, "OPTIONS", 7) == 0)
		return 0;
	/* anonymous = logical OR with other auth plugins: a credential from
	 * an earlier one (kong.client.get_credential()) means done. */
	if (c->anonymous && req->credential.len > 0)
		return 0;
	int64_t now = jwt__now();
	shmring_creds_maybe_reload(&c->watch, rep, reload_keyring, c);
	if (c->from_gateway) {
		uint64_t gen = shmring_entity_generation(req);
		if (gen != c->entity_gen) {
			gw_flush(c);
			c->entity_gen = gen;
		}
	}

	struct failure f = {0};
	struct found tok;
	find_token(c, req, &tok);
	const struct jwt_cred *cred = NULL;
	int ok = 0;
	switch (tok.what) {
	case FIND_NONE:
		fail_with(&f, c, B_UNAUTHORIZED);
		break;
	case FIND_MULTIPLE:
		fail_with(&f, c, B_MULTIPLE);
		break;
	case FIND_UNRECOGNIZABLE:
		fail_with(&f, c, B_UNRECOGNIZABLE);
		break;
	case FIND_ONE:
		if (tok.tok.len > JWT_MAX_TOKEN)
			fail_with(&f, c, B_TOO_LARGE);
		else
			ok = verify(c, req, rep, tok.tok, now, &cred, &f);
		break;
	}
	if (ok < 0)
		return ok;
	if (ok == PENDING)
		return 0;
	if (ok)
		return set_consumer(rep, cred->consumer, cred);
	if (c->anonymous && c->from_gateway)
		return gw_anonymous(c, req, rep);
	if (c->anonymous) {
		const struct jwt_consumer *a = jwt__keyring_consumer(c->kr, c->anonymous);
		struct jwt_consumer by_id = {.id = c->anonymous};
		return set_consumer(rep, a ? a : &by_id, NULL);
	}
	struct shmring_header h = {SHMRING_LIT("WWW-Authenticate"), S(f.www)};
	struct shmring_header hs[2] = {
	    h, {SHMRING_LIT("Content-Type"), SHMRING_LIT("application/json; charset=utf-8")}};
	return shmring_reply_exit(rep, 401, S(f.body), hs, 2);
}

struct jwt_cache *jwt__conf_cache(void *conf)
{
	return conf ? &((struct jwt_conf *)conf)->cache : NULL;
}

static const char *const needs_headers[] = {"authorization", "cookie", NULL};
static const char *const needs_query[] = {"jwt", NULL};

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "jwt",
    .version = "1.0.0",
    .phases = SHMRING_PHASE_ACCESS,
    /* The defaults of header_names / cookie_names / uri_param_names; the
     * Kong stub sends the configured names instead (shmring-jwt/handler.lua). */
    .needs_headers = needs_headers,
    .needs_query = needs_query,
    .conf_new = jwt_conf_new,
    .conf_free = jwt_conf_free,
    .access = jwt_access,
    .config = jwt_config,
    .config_checks = jwt_checks,
    .config_flags = SHMRING_CONFIG_NO_CONSUMER,
};
