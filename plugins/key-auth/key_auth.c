/* SPDX-License-Identifier: MIT */
/*
 * key-auth: Kong's key-auth plugin (3.x behaviour) as a shmring C plugin.
 *
 * Config (Kong's field names): key_names (["apikey"]), key_in_header (true),
 * key_in_query (true), key_in_body (false), hide_credentials (false),
 * anonymous (consumer id or
 * username), run_on_preflight (true), realm (unset), plus shmring's
 * consumers (inline, credentials format) and credentials_file.
 *
 * Responses, as Kong >= 3.6: 401 {"message":"No API key found in request"},
 * {"message":"Unauthorized"} for an unknown key, {"message":"Duplicate API
 * key found"} for a key sent twice, each with `WWW-Authenticate: Key` or
 * `Key realm="<realm>"`. On success: AUTHENTICATE (consumer + credential id,
 * kept by the gateway for later phases) and the upstream headers
 * X-Consumer-ID, X-Consumer-Custom-ID, X-Consumer-Username,
 * X-Credential-Identifier, X-Anonymous-Consumer, each set or cleared like
 * Kong's set_consumer (clearing stops a client from forging them).
 *
 * Where the credentials come from: with neither consumers nor
 * credentials_file, from the gateway (under Kong: Kong's own, through the
 * Admin API, decK, DB-less or hybrid), asked for with shmring_entity_get as
 * Kong's key-auth loads them (credential by key, with its consumer; the
 * anonymous consumer by id or username) and kept by the daemon. Otherwise
 * from the config and the file, as follows.
 *
 * key_in_body: the body as kong.request.get_body reads it (JSON object,
 * form, multipart/form-data by Content-Type); a body that is absent,
 * unparsable, of another type or that the gateway could not send (larger
 * than its body_max) holds no key, as Kong's key-auth treats get_body's
 * errors. With hide_credentials the key's field is removed and the body
 * re-encoded (kong.service.request.set_body): JSON compact, a form sorted
 * by name, multipart with its boundary and the other parts as they were.
 *
 * Key lookup: an open-addressing table built once per config (and per
 * credentials-file version), keyed by XXH3-64 of the key with a random
 * per-table seed; a slot matches only if the full 64-bit hash and the length
 * match and CRYPTO_memcmp (constant time) says equal. The seed keeps an
 * attacker from steering keys into one bucket or timing the probe.
 */
#include "shmring_creds.h"
#include "shmring_pc.h"
#include "shmring_plugin.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#define PLUGIN "key-auth"
#define MAX_QUERY_ARGS 512

/* ---- the key table --------------------------------------------------------- */

struct key_slot {
	uint64_t hash;                            /* XXH3-64 of the key with the table's seed */
	const struct shmring_creds_keyauth *cred; /* NULL: empty slot */
	const struct shmring_creds_consumer *consumer;
};

/* One credentials version: what the inline and file consumers give. */
struct key_table {
	struct shmring_creds file; /* consumers from the file */
	struct key_slot *slots;    /* mask + 1 slots */
	size_t mask;
	uint64_t seed;
	const struct shmring_creds_consumer *anonymous; /* resolved, or NULL */
};

struct key_auth_conf {
	struct shmring_pc_strv key_names;
	/* key_names[i] with '_' as '-' (len 0 if it has no '_'): Kong finds
	 * headers through ngx.req.get_headers(), which also tries that form. */
	struct shmring_str *dashed;
	bool key_in_header, key_in_query, key_in_body, hide_credentials, run_on_preflight;
	char *anonymous; /* consumer id or username; NULL if unset */
	char *www_auth;  /* "Key" or "Key realm=\"...\"" */
	struct shmring_creds inline_creds;
	struct shmring_file_watch watch; /* path NULL without credentials_file */
	bool from_gateway;               /* no consumers, no file: shmring_entity_get */
	struct key_table *table;
	char *query_buf; /* scratch for hide_credentials (reused) */
	size_t query_cap;
	char *body_buf; /* scratch: decoded form fields, then a re-encoded body */
	size_t body_cap;
};

static void table_free(struct key_table *t)
{
	if (!t)
		return;
	free(t->slots);
	shmring_creds_free(&t->file);
	free(t);
}

static uint64_t key_hash(const struct key_table *t, const char *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, t->seed);
}

static void table_insert(struct key_table *t, const struct shmring_creds_consumer *k,
                         const struct shmring_creds_keyauth *cred)
{
	uint64_t h = key_hash(t, cred->key, cred->key_len);
	size_t i = h & t->mask;
	while (t->slots[i].cred)
		i = (i + 1) & t->mask;
	t->slots[i] = (struct key_slot){h, cred, k};
}

/* The slot of key, or NULL. Constant time in the key's content for the
 * final comparison; the probe itself depends only on the seeded hash. */
static const struct key_slot *table_find(const struct key_table *t, struct shmring_str key)
{
	if (!t->slots)
		return NULL;
	uint64_t h = key_hash(t, key.ptr, key.len);
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		const struct key_slot *s = &t->slots[i];
		if (!s->cred)
			return NULL;
		if (s->hash == h && s->cred->key_len == key.len &&
		    CRYPTO_memcmp(s->cred->key, key.ptr, key.len) == 0)
			return s;
	}
}

/* Build a table over the inline consumers plus `file` (taken over, even on
 * failure). Rejects duplicates and an unknown anonymous consumer. */
static struct key_table *table_build(const struct key_auth_conf *c, struct shmring_creds *file,
                                     char *err, size_t errlen)
{
	struct key_table *t = calloc(1, sizeof(*t));
	if (!t) {
		shmring_creds_free(file);
		snprintf(err, errlen, PLUGIN ": out of memory");
		return NULL;
	}
	t->file = *file;
	memset(file, 0, sizeof(*file));

	/* Uniqueness across inline + file: check a merged view. */
	struct shmring_creds all;
	if (shmring_creds_join(&c->inline_creds, &t->file, &all) < 0)
		goto nomem;
	size_t n = all.n, nkeys = 0;
	/* Every key needs a credential id: it is X-Credential-Identifier and
	 * what later plugins see as the request's credential. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < all.v[i].n_keyauth; j++)
			if (!all.v[i].keyauth[j].id) {
				/* A credentials file's values are never quoted back. */
				char who[160];
				if (all.v[i].from_file)
					snprintf(who, sizeof(who),
					         "a consumer of credentials_file");
				else
					snprintf(who, sizeof(who), "consumer '%.128s'",
					         all.v[i].id);
				snprintf(err, errlen,
				         PLUGIN ": %s: keyauth_credentials[%zu].id is "
				                "required (it is sent as X-Credential-Identifier)",
				         who, j);
				free(all.v);
				table_free(t);
				return NULL;
			}
	int rc = shmring_creds_check_unique(&all, err, errlen);
	if (rc < 0) {
		/* The message starts with "credentials:": say which plugin. */
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, PLUGIN ": %s", tmp);
		free(all.v);
		table_free(t);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		nkeys += all.v[i].n_keyauth;
	if (c->anonymous && !c->from_gateway) {
		t->anonymous = shmring_creds_find(&all, c->anonymous);
		if (!t->anonymous) {
			snprintf(err, errlen,
			         PLUGIN
			         ": config.anonymous names consumer '%.128s', which is neither "
			         "an id nor a username of the configured consumers",
			         c->anonymous);
			free(all.v);
			table_free(t);
			return NULL;
		}
		/* all.v is a temporary copy: point into the owning arrays. */
		size_t idx = (size_t)(t->anonymous - all.v);
		t->anonymous = idx < c->inline_creds.n ? &c->inline_creds.v[idx]
		                                       : &t->file.v[idx - c->inline_creds.n];
	}
	free(all.v);
	if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
		t->seed = XXH3_64bits(&t, sizeof(t)) ^ shmring_pc_now_ns(); /* defensive */
	if (nkeys) {
		size_t cap = 16;
		while (cap < 2 * nkeys)
			cap *= 2;
		if (!(t->slots = calloc(cap, sizeof(*t->slots))))
			goto nomem;
		t->mask = cap - 1;
		const struct shmring_creds *src[2] = {&c->inline_creds, &t->file};
		for (int s = 0; s < 2; s++)
			for (size_t i = 0; i < src[s]->n; i++)
				for (size_t j = 0; j < src[s]->v[i].n_keyauth; j++)
					table_insert(t, &src[s]->v[i], &src[s]->v[i].keyauth[j]);
	}
	return t;
nomem:
	free(all.v);
	table_free(t);
	snprintf(err, errlen, PLUGIN ": out of memory");
	return NULL;
}

/* Load the credentials file (if configured) and build a table. */
static struct key_table *table_load(struct key_auth_conf *c, char *err, size_t errlen)
{
	struct shmring_creds file = {0};
	if (c->watch.path) {
		char why[512];
		int rc = shmring_creds_load_file(&file, c->watch.path, &c->watch.stamp, why,
		                                 sizeof(why));
		if (rc < 0) {
			shmring_creds_free(&file);
			snprintf(err, errlen, PLUGIN ": %s", why);
			return NULL;
		}
	}
	return table_build(c, &file, err, errlen);
}

/* ---- config ------------------------------------------------------------------ */

/* The config: Kong's key-auth fields, plus consumers of its own (inline or
 * a credentials_file). conf_new keeps what the schema cannot say: at least
 * one key name and one place to look, a realm that fits a quoted header. */
static const struct shmring_field key_name = {.type = SHMRING_FIELD_STRING,
                                              .kong_typedef = SHMRING_TYPEDEF_HEADER_NAME};
#define KEY_AUTH_FLAG(field, on)                                                                   \
	{                                                                                          \
		.name = field, .type = SHMRING_FIELD_BOOLEAN, .flags = SHMRING_FIELD_REQUIRED,     \
		.def = (on) ? "true" : "false"                                                     \
	}
static const struct shmring_field key_auth_config[] = {
    {.name = "key_names",
     .type = SHMRING_FIELD_ARRAY,
     .flags = SHMRING_FIELD_REQUIRED,
     .def = "[\"apikey\"]",
     .elements = &key_name},
    KEY_AUTH_FLAG("hide_credentials", false),
    {.name = "anonymous", .type = SHMRING_FIELD_STRING},
    KEY_AUTH_FLAG("key_in_header", true),
    KEY_AUTH_FLAG("key_in_query", true),
    KEY_AUTH_FLAG("key_in_body", false),
    KEY_AUTH_FLAG("run_on_preflight", true),
    {.name = "realm", .type = SHMRING_FIELD_STRING},
    {.name = "consumers", .type = SHMRING_FIELD_ARRAY, .elements = &shmring_creds_consumer},
    SHMRING_CREDS_FILE_FIELDS,
    SHMRING_GATEWAY_FIELDS("false"),
    {.name = NULL}};

static const char *const default_key_names[] = {"apikey", NULL};

static void conf_free(void *p)
{
	struct key_auth_conf *c = p;
	if (!c)
		return;
	shmring_pc_strv_free(&c->key_names);
	free(c->dashed);
	free(c->anonymous);
	free(c->www_auth);
	shmring_creds_free(&c->inline_creds);
	free(c->watch.path);
	table_free(c->table);
	free(c->query_buf);
	free(c->body_buf);
	free(c);
}

static int conf_new(void *wstate, const msgpack_object *cfg, void **out, char *err, size_t errlen)
{
	*out = NULL;
	struct key_auth_conf *c = calloc(1, sizeof(*c));
	char *realm = NULL;
	int64_t reload_ms = 1000;
	int rc;
	if (!c) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	if ((rc = shmring_pc_strv(shmring_pc_field(cfg, "key_names"), PLUGIN, "config.key_names",
	                          default_key_names, &c->key_names, err, errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "key_in_header", true, &c->key_in_header, err,
	                          errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "key_in_query", true, &c->key_in_query, err,
	                          errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "key_in_body", false, &c->key_in_body, err,
	                          errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "hide_credentials", false, &c->hide_credentials, err,
	                          errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "run_on_preflight", true, &c->run_on_preflight, err,
	                          errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "anonymous", NULL, true, &c->anonymous, err,
	                            errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "realm", NULL, false, &realm, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "credentials_file", NULL, true, &c->watch.path,
	                            err, errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "reload_interval_ms", 1000, 0, 3600000, &reload_ms,
	                         err, errlen)) < 0)
		goto fail;
	rc = -EINVAL;
	if (c->key_names.n == 0) {
		snprintf(err, errlen, PLUGIN ": config.key_names must name at least one key");
		goto fail;
	}
	for (size_t i = 0; i < c->key_names.n; i++) {
		if (!shmring_pc_header_name_ok(c->key_names.v[i])) {
			snprintf(err, errlen,
			         PLUGIN
			         ": config.key_names[%zu] '%.64s' is not a valid header name",
			         i, c->key_names.v[i].ptr);
			goto fail;
		}
		/* Headers arrive lower-case; keep the configured name for the
		 * query (exact match, like Kong) and compare headers
		 * case-insensitively through shmring_req_header. */
	}
	size_t bytes = 0;
	for (size_t i = 0; i < c->key_names.n; i++)
		bytes += c->key_names.v[i].len + 1;
	if (!(c->dashed = malloc(c->key_names.n * sizeof(*c->dashed) + bytes)))
		goto nomem;
	char *d = (char *)(c->dashed + c->key_names.n);
	for (size_t i = 0; i < c->key_names.n; i++) {
		struct shmring_str n = c->key_names.v[i];
		c->dashed[i] = (struct shmring_str){d, memchr(n.ptr, '_', n.len) ? n.len : 0};
		for (size_t j = 0; j < n.len; j++)
			d[j] = n.ptr[j] == '_' ? '-' : n.ptr[j];
		d[n.len] = '\0';
		d += n.len + 1;
	}
	if (!c->key_in_header && !c->key_in_query && !c->key_in_body) {
		snprintf(err, errlen,
		         PLUGIN
		         ": config.key_in_header, config.key_in_query and config.key_in_body "
		         "are all false: no key could ever be found");
		goto fail;
	}
	if (realm && (strchr(realm, '"') || strchr(realm, '\\') || strchr(realm, '\r') ||
	              strchr(realm, '\n'))) {
		snprintf(err, errlen,
		         PLUGIN ": config.realm must not contain '\"', '\\' or newlines");
		goto fail;
	}
	if (realm) {
		size_t n = strlen(realm) + sizeof("Key realm=\"\"");
		if (!(c->www_auth = malloc(n)))
			goto nomem;
		snprintf(c->www_auth, n, "Key realm=\"%s\"", realm);
	} else if (!(c->www_auth = strdup("Key"))) {
		goto nomem;
	}
	if ((rc = shmring_creds_add_config(&c->inline_creds, cfg, PLUGIN, err, errlen)) < 0)
		goto fail;
	c->from_gateway = !c->watch.path && c->inline_creds.n == 0;
	c->watch.interval_ns = (uint64_t)reload_ms * 1000000u;
	if (!(c->table = table_load(c, err, errlen)))
		goto fail;
	c->watch.next_check_ns = shmring_pc_now_ns() + c->watch.interval_ns;
	free(realm);
	*out = c;
	return 0;
nomem:
	snprintf(err, errlen, PLUGIN ": out of memory");
	rc = -ENOMEM;
fail:
	free(realm);
	conf_free(c);
	return rc < 0 ? rc : -EINVAL;
}

/* shmring_creds_maybe_reload's step: the new table, or the old one kept. */
static int reload_table(void *arg, char *err, size_t errlen)
{
	struct key_auth_conf *c = arg;
	struct key_table *t = table_load(c, err, errlen);
	if (!t)
		return -EINVAL;
	table_free(c->table);
	c->table = t;
	return 0;
}

/* ---- access ------------------------------------------------------------------ */

/* A consumer and credential as Kong's set_consumer() takes them; empty
 * strings are absent fields, an empty credential an anonymous login. */
struct login {
	struct shmring_str id, username, custom_id, credential;
};

/* Kong's set_consumer(): authenticate, then the upstream headers. */
static int set_consumer(struct shmring_reply *rep, const struct login *l)
{
	int rc = shmring_reply_authenticate(rep, l->id, l->username, l->custom_id, l->credential);
	rc |= shmring_creds_set_consumer_headers(rep, l->id, l->custom_id, l->username,
	                                         l->credential, l->credential.len == 0);
	return rc ? -EMSGSIZE : 0;
}

static struct login login_of(const struct shmring_creds_consumer *k,
                             const struct shmring_creds_keyauth *cred)
{
	return (struct login){shmring_cstr(k->id), shmring_cstr(k->username),
	                      shmring_cstr(k->custom_id), shmring_cstr(cred ? cred->id : NULL)};
}

/* A consumer entity from the gateway ({id, username, custom_id}) as a
 * login; false if it has no id. */
static bool consumer_login(const msgpack_object *k, struct login *l)
{
	*l = (struct login){0};
	if (!k || k->type != MSGPACK_OBJECT_MAP || !shmring_map_str(k, SHMRING_LIT("id"), &l->id) ||
	    !l->id.len)
		return false;
	shmring_map_str(k, SHMRING_LIT("username"), &l->username);
	shmring_map_str(k, SHMRING_LIT("custom_id"), &l->custom_id);
	return true;
}

/* authenticate()'s result when the gateway has not answered yet. */
#define PENDING 2

/* Kong's load_credential + load_consumer, through the gateway: the
 * credential of key is {id, consumer = {id, username, custom_id}}. */
static int gateway_find(const struct key_auth_conf *c, const struct shmring_request *req,
                        struct shmring_str key, struct login *l)
{
	const msgpack_object *cred;
	int rc = shmring_entity_get(req, SHMRING_ENTITY_KEYAUTH_CREDENTIAL, key, &cred);
	if (rc == SHMRING_ENTITY_PENDING) {
		/* Ask for the anonymous consumer in the same round trip. */
		const msgpack_object *anon;
		if (c->anonymous)
			shmring_entity_get(req, SHMRING_ENTITY_CONSUMER, shmring_cstr(c->anonymous),
			                   &anon);
		return PENDING;
	}
	if (rc <= 0)
		return rc;
	struct shmring_str id = {0};
	if (!shmring_map_str(cred, SHMRING_LIT("id"), &id) || !id.len ||
	    !consumer_login(shmring_map_get(cred, SHMRING_LIT("consumer")), l))
		return 0; /* defensive: the gateway sends both */
	l->credential = id;
	return 1;
}

static int unauthorized(const struct key_auth_conf *c, struct shmring_reply *rep,
                        struct shmring_str body)
{
	struct shmring_header h[2] = {
	    {SHMRING_LIT("WWW-Authenticate"), shmring_cstr(c->www_auth)},
	    {SHMRING_LIT("Content-Type"), SHMRING_LIT("application/json; charset=utf-8")},
	};
	return shmring_reply_exit(rep, 401, body, h, 2);
}

#define BODY_NO_KEY SHMRING_LIT("{\"message\":\"No API key found in request\"}")
#define BODY_UNAUTHORIZED SHMRING_LIT("{\"message\":\"Unauthorized\"}")
#define BODY_DUPLICATE SHMRING_LIT("{\"message\":\"Duplicate API key found\"}")

/* A failed authentication: 0, with the 401 in the reply unless quiet
 * (anonymous fallback); < 0 if the reply could not take it. */
static int fail(const struct key_auth_conf *c, struct shmring_reply *rep, bool quiet,
                struct shmring_str body)
{
	if (quiet)
		return 0;
	int rc = unauthorized(c, rep, body);
	return rc < 0 ? rc : 0;
}

/* Drop arg `name` from the query (hide_credentials): rebuilt from the
 * snapshot's args, which carries all of them (the plugin declares "*"). */
static int clear_query_arg(struct key_auth_conf *c, const struct shmring_request *req,
                           struct shmring_reply *rep, struct shmring_str name)
{
	struct shmring_pc_arg args[MAX_QUERY_ARGS];
	size_t n = 0, m = 0, len;
	if (shmring_pc_args_from_map(req->query, args, &n, MAX_QUERY_ARGS) < 0) {
		shmring_reply_error(rep, SHMRING_LIT(PLUGIN ": more than 512 query args"));
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++)
		if (!shmring_str_eq(args[i].name, name))
			args[m++] = args[i];
	if (shmring_pc_args_encode(args, m, &c->query_buf, &c->query_cap, &len) < 0)
		return -ENOMEM;
	return shmring_reply_set_query(rep, (struct shmring_str){c->query_buf, len});
}

/* ---- key_in_body ---------------------------------------------------------------- */

/* The body as kong.request.get_body gives it, parsed on first use in a
 * request. type NONE stands for Kong's EMPTY (no usable body). */
struct body {
	bool parsed;
	enum shmring_pc_body_type type;
	struct shmring_str ct; /* the Content-Type */
	json_t *json;          /* JSON: an object or an array */
	size_t n;              /* form args / multipart parts */
	struct shmring_str boundary;
};

/* Fields of a form or multipart body (a worker runs one hook at a time). */
static struct shmring_pc_arg form_args[SHMRING_PC_BODY_MAX_FIELDS];
static struct shmring_pc_part parts[SHMRING_PC_BODY_MAX_FIELDS];

static int body_parse(struct key_auth_conf *c, const struct shmring_request *req, struct body *b)
{
	b->parsed = true;
	struct shmring_str raw;
	if (shmring_req_body(req, &raw) != 1 ||
	    !shmring_req_header(req, SHMRING_LIT("content-type"), &b->ct))
		return 0;
	switch (shmring_pc_body_type_of(b->ct)) {
	case SHMRING_PC_BODY_JSON:
		b->json = shmring_pc_json_decode(raw);
		if (b->json && (json_is_object(b->json) || json_is_array(b->json)))
			b->type = SHMRING_PC_BODY_JSON;
		break;
	case SHMRING_PC_BODY_FORM:
		if (shmring_pc_reserve(&c->body_buf, &c->body_cap, raw.len + 1) < 0)
			return -ENOMEM;
		if (shmring_pc_form_decode(raw, c->body_buf, form_args, SHMRING_PC_BODY_MAX_FIELDS,
		                           &b->n) == 0)
			b->type = SHMRING_PC_BODY_FORM;
		break;
	case SHMRING_PC_BODY_MULTIPART:
		if (shmring_pc_multipart_boundary(b->ct, &b->boundary) == 0 &&
		    shmring_pc_multipart_parse(raw, b->boundary, parts, SHMRING_PC_BODY_MAX_FIELDS,
		                               &b->n) == 0)
			b->type = SHMRING_PC_BODY_MULTIPART;
		break;
	default:
		break;
	}
	return 0;
}

/* body[name] as Kong's key-auth sees it: 1 a string (in *v), 2 a table (a
 * duplicate key), 0 anything else. */
static int body_key(const struct body *b, struct shmring_str name, struct shmring_str *v)
{
	int found = 0;
	switch (b->type) {
	case SHMRING_PC_BODY_JSON: {
		json_t *x =
		    json_is_object(b->json) ? json_object_getn(b->json, name.ptr, name.len) : NULL;
		if (json_is_string(x)) {
			*v = (struct shmring_str){json_string_value(x), json_string_length(x)};
			return 1;
		}
		return json_is_object(x) || json_is_array(x) ? 2 : 0;
	}
	case SHMRING_PC_BODY_FORM:
		/* get_post_args: a repeated name is a table, a flag is true */
		for (size_t i = 0; i < b->n; i++) {
			if (!shmring_str_eq(form_args[i].name, name))
				continue;
			if (found++)
				return 2;
			*v = form_args[i].value;
		}
		for (size_t i = 0; i < b->n && found == 1; i++)
			if (shmring_str_eq(form_args[i].name, name) && form_args[i].flag)
				return 0;
		return found;
	case SHMRING_PC_BODY_MULTIPART:
		/* get_all_with_arrays: a repeated name is an array */
		for (size_t i = 0; i < b->n; i++) {
			if (!shmring_str_eq(parts[i].name, name))
				continue;
			if (found++)
				return 2;
			*v = parts[i].value;
		}
		return found;
	default:
		return 0;
	}
}

/* hide_credentials: body[name] = nil, then kong.service.request.set_body. */
static int body_hide(struct key_auth_conf *c, struct body *b, struct shmring_reply *rep,
                     struct shmring_str name)
{
	size_t len = 0, m = 0;
	int rc = 0;
	switch (b->type) {
	case SHMRING_PC_BODY_JSON:
		if (json_is_object(b->json)) {
			char key[SHMRING_PC_MAX_STR + 1];
			snprintf(key, sizeof(key), "%.*s", (int)name.len, name.ptr);
			json_object_del(b->json, key);
		}
		rc = shmring_pc_json_encode(b->json, &c->query_buf, &c->query_cap, &len);
		break;
	case SHMRING_PC_BODY_FORM:
		for (size_t i = 0; i < b->n; i++)
			if (!shmring_str_eq(form_args[i].name, name))
				form_args[m++] = form_args[i];
		b->n = m;
		rc = shmring_pc_args_encode(form_args, m, &c->query_buf, &c->query_cap, &len);
		break;
	case SHMRING_PC_BODY_MULTIPART:
		for (size_t i = 0; i < b->n; i++)
			if (!shmring_str_eq(parts[i].name, name))
				parts[m++] = parts[i];
		b->n = m;
		rc = shmring_pc_multipart_encode(parts, m, b->boundary, &c->query_buf,
		                                 &c->query_cap, &len);
		break;
	default:
		return 0; /* Kong: EMPTY is left alone */
	}
	if (rc < 0)
		return rc;
	return shmring_reply_set_body(rep, (struct shmring_str){c->query_buf, len});
}

/* The credential of key and its consumer, then Kong's set_consumer():
 * 1 authenticated, 0 failed (as fail()), PENDING, or < 0. */
static int identify(struct key_auth_conf *c, const struct shmring_request *req,
                    struct shmring_reply *rep, bool quiet, struct shmring_str key)
{
	struct login l;
	if (c->from_gateway) {
		int rc = gateway_find(c, req, key, &l);
		if (rc < 0 || rc == PENDING)
			return rc;
		if (rc == 0)
			return fail(c, rep, quiet, BODY_UNAUTHORIZED);
	} else {
		const struct key_slot *s = table_find(c->table, key);
		if (!s)
			return fail(c, rep, quiet, BODY_UNAUTHORIZED);
		l = login_of(s->consumer, s->cred);
	}
	int rc = set_consumer(rep, &l);
	return rc < 0 ? rc : 1;
}

/* Kong's do_authentication(): 1 authenticated, 0 failed (exit added to the
 * reply unless `quiet`, for the anonymous fallback), < 0 error. */
static int authenticate(struct key_auth_conf *c, const struct shmring_request *req,
                        struct shmring_reply *rep, bool quiet)
{
	struct shmring_str key = {NULL, 0};
	bool found = false;
	struct body body = {0};
	struct shmring_str hidden = {NULL, 0}; /* the key's name, with hide_credentials */
	int rc = 0;
	for (size_t i = 0; i < c->key_names.n && !found && rc == 0; i++) {
		struct shmring_str name = c->key_names.v[i], hname = name, v;
		bool have = false, dup = false;
		if (c->key_in_header) {
			have = shmring_req_header(req, name, &v);
			if (!have && c->dashed[i].len) {
				hname = c->dashed[i];
				have = shmring_req_header(req, hname, &v);
			}
			struct shmring_str second;
			dup = have && shmring_req_header_nth(req, hname, 1, &second);
		}
		if (!have && c->key_in_query) {
			const msgpack_object *q = shmring_map_get(req->query, name);
			if (q && q->type == MSGPACK_OBJECT_ARRAY) {
				have = dup = q->via.array.size > 1;
				if (q->via.array.size == 1)
					q = &q->via.array.ptr[0];
			}
			if (q && !dup && q->type == MSGPACK_OBJECT_STR) {
				have = true;
				v = (struct shmring_str){q->via.str.ptr, q->via.str.size};
			}
			/* `?apikey` (a flag) is not a string: Kong goes on. */
		}
		if (!have && !dup && c->key_in_body) {
			if (!body.parsed && (rc = body_parse(c, req, &body)) < 0)
				break;
			int r = body_key(&body, name, &v);
			have = r == 1;
			dup = r == 2;
		}
		if (dup) {
			json_decref(body.json);
			return fail(c, rep, quiet, BODY_DUPLICATE);
		}
		if (have) {
			key = v;
			found = true;
			if (c->hide_credentials) {
				/* Kong clears the arg whether or not the key came
				 * from the query; only rebuild if it is there. */
				if (shmring_map_get(req->query, name))
					rc = clear_query_arg(c, req, rep, name);
				if (rc == 0)
					rc = shmring_reply_clear_req_header(rep, hname);
				if (rc == 0 && c->key_in_body && !body.parsed)
					rc = body_parse(c, req, &body);
				hidden = name;
			}
		}
	}
	if (rc == 0)
		rc = key.len ? identify(c, req, rep, quiet, key) : fail(c, rep, quiet, BODY_NO_KEY);
	/* The key may point into the JSON body: the body changes after the
	 * look-up. Kong hides it before the look-up, which matters only for a
	 * failed one: that ends the request, or goes on as the anonymous
	 * consumer with the body hidden all the same. */
	if ((rc == 0 || rc == 1) && hidden.ptr && c->key_in_body) {
		int hrc = body_hide(c, &body, rep, hidden);
		rc = hrc < 0 ? hrc : rc;
	}
	json_decref(body.json);
	return rc;
}

/* Kong's set_anonymous_consumer(): a 500 when the gateway has no such
 * consumer. 0, PENDING, or < 0 if the reply could not take it. */
static int set_anonymous(const struct key_auth_conf *c, const struct shmring_request *req,
                         struct shmring_reply *rep)
{
	struct login l;
	if (!c->from_gateway) {
		l = login_of(c->table->anonymous, NULL);
		return set_consumer(rep, &l);
	}
	const msgpack_object *k;
	int rc = shmring_entity_get(req, SHMRING_ENTITY_CONSUMER, shmring_cstr(c->anonymous), &k);
	if (rc < 0 || rc == SHMRING_ENTITY_PENDING)
		return rc < 0 ? rc : PENDING;
	if (rc == 0 || !consumer_login(k, &l))
		return shmring_creds_anonymous_missing(rep, c->anonymous);
	return set_consumer(rep, &l);
}

static int key_auth_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	struct key_auth_conf *c = conf;
	if (!c->run_on_preflight && shmring_str_eq(req->method, SHMRING_LIT("OPTIONS")))
		return 0;
	if (c->anonymous && req->credential.len)
		return 0; /* logical OR with another auth plugin: already done */
	shmring_creds_maybe_reload(&c->watch, rep, reload_table, c);
	if (!c->anonymous)
		return authenticate(c, req, rep, false) < 0 ? -1 : 0;
	int rc = authenticate(c, req, rep, true);
	if (rc < 0)
		return -1;
	if (rc == 0 && set_anonymous(c, req, rep) < 0)
		return -1;
	return 0;
}

static const char *const needs_all[] = {SHMRING_NEED_ALL, NULL};

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "key-auth",
    .version = "1.0.0",
    .phases = SHMRING_PHASE_ACCESS,
    /* key_names are configurable and hide_credentials rebuilds the whole
     * query: the snapshot must carry every header and query arg. */
    .needs_headers = needs_all,
    .needs_query = needs_all,
    .conf_new = conf_new,
    .conf_free = conf_free,
    .access = key_auth_access,
    .config = key_auth_config,
    .config_flags = SHMRING_CONFIG_NO_CONSUMER,
};
