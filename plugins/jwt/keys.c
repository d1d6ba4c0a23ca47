/* SPDX-License-Identifier: MIT */
/* Credentials of the jwt plugin, from three sources merged into one
 * keyring: `credentials` (jwt's own inline list, a msgpack array of
 * {consumer, key, algorithm, secret, rsa_public_key, id}), and, in the
 * shared format of plugins/common (docs/plugins.md "Credentials"), the
 * inline `consumers` and the `credentials_file`.
 *
 * Every credential is prepared here, once: the HMAC key set in an
 * EVP_MAC_CTX, the PEM parsed into an EVP_PKEY and checked against the
 * algorithm (type, curve, RSA size), the digest fetched. The request path
 * then only looks a key up (xxh3, open addressing) and verifies. */
#define _GNU_SOURCE /* memmem */
#include "jwt_internal.h"
#include "shmring_creds.h"
#include "shmring_pc.h"

#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAX_CREDS (1u << 20)

/* ---- small helpers --------------------------------------------------------- */

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A string field (ptr, len) independent of the source format. */
struct sv {
	const char *p;
	size_t n;
	bool set; /* present and a string */
	bool bad; /* present but not a string (nor nil/null) */
};

static struct sv mp_str(const msgpack_object *map, const char *key)
{
	struct sv v = {0};
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return v;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    memcmp(k->via.str.ptr, key, kl) == 0) {
			const msgpack_object *x = &map->via.map.ptr[i].val;
			if (x->type == MSGPACK_OBJECT_STR) {
				v.p = x->via.str.ptr;
				v.n = x->via.str.size;
				v.set = true;
			} else if (x->type != MSGPACK_OBJECT_NIL) {
				v.bad = true;
			}
			return v;
		}
	}
	return v;
}

static const msgpack_object *mp_get(const msgpack_object *map, const char *key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    memcmp(k->via.str.ptr, key, kl) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

/* ---- the builder ------------------------------------------------------------ */

struct builder {
	struct jwt_keyring *kr;
	size_t cap_creds, cap_consumers;
	size_t *cred_consumer; /* consumer index per cred until pointers are fixed */
	EVP_MAC *hmac;
	bool secret_is_base64;
	char *err;
	size_t errlen;
	const char *where; /* names the entry in messages: where_buf or "?" */
	bool from_file;    /* the entry was read from a credentials file: its values
	                    * are never quoted back (where names its position) */
	char where_buf[PATH_MAX + 128];
};

static int add_consumer(struct builder *b, struct sv id, struct sv username, struct sv custom_id)
{
	struct jwt_keyring *kr = b->kr;
	if (id.bad || username.bad || custom_id.bad) {
		errf(b->err, b->errlen,
		     "jwt: %s: consumer id, username and custom_id must be strings", b->where);
		return -EINVAL;
	}
	if ((!id.set || id.n == 0) && (!username.set || username.n == 0)) {
		errf(b->err, b->errlen, "jwt: %s: the consumer needs an id or a username",
		     b->where);
		return -EINVAL;
	}
	if (id.n > 256 || username.n > 256 || custom_id.n > 256) {
		errf(b->err, b->errlen, "jwt: %s: consumer fields are limited to 256 bytes",
		     b->where);
		return -EINVAL;
	}
	if (kr->nconsumers == b->cap_consumers) {
		size_t cap = b->cap_consumers ? b->cap_consumers * 2 : 8;
		void *p = realloc(kr->consumers, cap * sizeof(*kr->consumers));
		if (!p)
			goto oom;
		kr->consumers = p;
		b->cap_consumers = cap;
	}
	struct jwt_consumer *c = &kr->consumers[kr->nconsumers];
	memset(c, 0, sizeof(*c));
	kr->nconsumers++;
	if ((id.set && id.n && !(c->id = shmring_pc_strndup(id.p, id.n))) ||
	    (username.set && username.n &&
	     !(c->username = shmring_pc_strndup(username.p, username.n))) ||
	    (custom_id.set && custom_id.n &&
	     !(c->custom_id = shmring_pc_strndup(custom_id.p, custom_id.n))))
		goto oom;
	return 0;
oom:
	errf(b->err, b->errlen, "jwt: out of memory");
	return -ENOMEM;
}

/* Parse and check a PEM public key for alg. */
static EVP_PKEY *load_pem(struct builder *b, const char *key, enum jwt_alg alg, struct sv pem)
{
	const struct jwt_alg_info *ai = jwt__alg_info(alg);
	if (!pem.set || pem.n == 0) {
		errf(b->err, b->errlen,
		     "jwt: %s (key %s): algorithm %s needs rsa_public_key (a PEM public key)",
		     b->where, key, ai->name);
		return NULL;
	}
	if (pem.n > JWT_MAX_PEM) {
		errf(b->err, b->errlen, "jwt: %s (key %s): rsa_public_key is larger than %u bytes",
		     b->where, key, JWT_MAX_PEM);
		return NULL;
	}
	BIO *bio = BIO_new_mem_buf(pem.p, (int)pem.n);
	EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (!pk) {
		bool priv = memmem(pem.p, pem.n, "PRIVATE KEY", 11) != NULL;
		errf(b->err, b->errlen,
		     "jwt: %s (key %s): rsa_public_key is not a PEM public key%s", b->where, key,
		     priv
		         ? " (it is a private key: give the public key, -----BEGIN PUBLIC KEY-----)"
		         : " (expected -----BEGIN PUBLIC KEY-----)");
		return NULL;
	}
	const char *want = NULL;
	bool ok = false;
	switch (ai->fam) {
	case JWT_FAM_RSA:
		want = "an RSA key";
		ok = EVP_PKEY_is_a(pk, "RSA");
		break;
	case JWT_FAM_PSS:
		want = "an RSA key";
		ok = EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS");
		break;
	case JWT_FAM_ECDSA: {
		char group[64] = "";
		size_t gl = 0;
		want = ai->ec_nid == NID_X9_62_prime256v1 ? "an EC key on P-256"
		       : ai->ec_nid == NID_secp384r1      ? "an EC key on P-384"
		                                          : "an EC key on P-521";
		ok = EVP_PKEY_is_a(pk, "EC") &&
		     EVP_PKEY_get_group_name(pk, group, sizeof(group), &gl) == 1 &&
		     strcmp(group, OBJ_nid2sn(ai->ec_nid)) == 0;
		break;
	}
	case JWT_FAM_EDDSA:
		want = "an Ed25519 or Ed448 key";
		ok = EVP_PKEY_is_a(pk, "ED25519") || EVP_PKEY_is_a(pk, "ED448");
		break;
	case JWT_FAM_HMAC:
		break;
	}
	ERR_clear_error();
	if (!ok) {
		errf(b->err, b->errlen, "jwt: %s (key %s): algorithm %s needs %s in rsa_public_key",
		     b->where, key, ai->name, want);
		EVP_PKEY_free(pk);
		return NULL;
	}
	if ((ai->fam == JWT_FAM_RSA || ai->fam == JWT_FAM_PSS) &&
	    EVP_PKEY_get_bits(pk) < JWT_MIN_RSA_BITS) {
		errf(b->err, b->errlen,
		     "jwt: %s (key %s): RSA key of %d bits; at least %d required", b->where, key,
		     EVP_PKEY_get_bits(pk), JWT_MIN_RSA_BITS);
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

static int add_cred(struct builder *b, size_t consumer, struct sv id, struct sv key,
                    struct sv algorithm, struct sv secret, struct sv pem)
{
	struct jwt_keyring *kr = b->kr;
	if (key.bad || !key.set || key.n == 0) {
		errf(
		    b->err, b->errlen,
		    "jwt: %s: key must be a non-empty string (the key claim value that selects it)",
		    b->where);
		return -EINVAL;
	}
	if (key.n > JWT_MAX_KEY) {
		errf(b->err, b->errlen, "jwt: %s: key is longer than %u bytes", b->where,
		     JWT_MAX_KEY);
		return -EINVAL;
	}
	char keyc[64], algc[48];
	if (b->from_file) {
		snprintf(keyc, sizeof(keyc), "not shown");
		snprintf(algc, sizeof(algc), "not shown");
	} else {
		snprintf(keyc, sizeof(keyc), "'%.*s%s'", (int)(key.n > 48 ? 48 : key.n), key.p,
		         key.n > 48 ? "..." : "");
		snprintf(algc, sizeof(algc), "'%.*s'", (int)(algorithm.n > 32 ? 32 : algorithm.n),
		         algorithm.set ? algorithm.p : "");
	}
	if (id.bad || algorithm.bad || secret.bad || pem.bad) {
		errf(b->err, b->errlen,
		     "jwt: %s (key %s): id, algorithm, secret and rsa_public_key must be strings",
		     b->where, keyc);
		return -EINVAL;
	}
	enum jwt_alg alg = JWT_HS256; /* Kong's default */
	if (algorithm.set) {
		alg = jwt__alg_by_name(algorithm.p, algorithm.n);
		if (alg == JWT_ALG_NONE_) {
			errf(b->err, b->errlen,
			     "jwt: %s (key %s): unknown algorithm %s (HS256, HS384, HS512, "
			     "RS256, "
			     "RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA)",
			     b->where, keyc, algc);
			return -EINVAL;
		}
	}
	if (kr->ncreds >= MAX_CREDS) {
		errf(b->err, b->errlen, "jwt: more than %u credentials", MAX_CREDS);
		return -E2BIG;
	}
	if (kr->ncreds == b->cap_creds) {
		size_t cap = b->cap_creds ? b->cap_creds * 2 : 8;
		void *p = realloc(kr->creds, cap * sizeof(*kr->creds));
		void *q = realloc(b->cred_consumer, cap * sizeof(*b->cred_consumer));
		if (p)
			kr->creds = p;
		if (q)
			b->cred_consumer = q;
		if (!p || !q) {
			errf(b->err, b->errlen, "jwt: out of memory");
			return -ENOMEM;
		}
		b->cap_creds = cap;
	}
	struct jwt_cred *c = &kr->creds[kr->ncreds];
	memset(c, 0, sizeof(*c));
	b->cred_consumer[kr->ncreds] = consumer;
	kr->ncreds++; /* from here on, keyring_free releases what c holds */
	c->alg = alg;
	c->key_len = key.n;
	c->key = shmring_pc_strndup(key.p, key.n);
	c->id = id.set && id.n ? shmring_pc_strndup(id.p, id.n) : shmring_pc_strndup(key.p, key.n);
	if (!c->key || !c->id) {
		errf(b->err, b->errlen, "jwt: out of memory");
		return -ENOMEM;
	}
	const struct jwt_alg_info *ai = jwt__alg_info(alg);
	if (ai->fam == JWT_FAM_HMAC) {
		if (!secret.set || secret.n == 0) {
			errf(b->err, b->errlen,
			     "jwt: %s (key %s): algorithm %s needs a non-empty secret", b->where,
			     keyc, ai->name);
			return -EINVAL;
		}
		if (secret.n > JWT_MAX_SECRET * 2) {
			errf(b->err, b->errlen, "jwt: %s (key %s): secret is longer than %u bytes",
			     b->where, keyc, JWT_MAX_SECRET);
			return -EINVAL;
		}
		uint8_t raw[JWT_MAX_SECRET * 2];
		const uint8_t *k = (const uint8_t *)secret.p;
		size_t kl = secret.n;
		if (b->secret_is_base64) {
			ssize_t m = jwt__b64_decode_lenient(secret.p, secret.n, raw);
			if (m <= 0) {
				errf(b->err, b->errlen,
				     "jwt: %s (key %s): secret is not valid base64 "
				     "(secret_is_base64 is on)",
				     b->where, keyc);
				return -EINVAL;
			}
			k = raw;
			kl = (size_t)m;
		}
		if (kl > JWT_MAX_SECRET) {
			errf(b->err, b->errlen, "jwt: %s (key %s): secret is longer than %u bytes",
			     b->where, keyc, JWT_MAX_SECRET);
			return -EINVAL;
		}
		OSSL_PARAM params[2] = {
		    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)ai->digest, 0),
		    OSSL_PARAM_construct_end(),
		};
		c->hmac = EVP_MAC_CTX_new(b->hmac);
		int ok = c->hmac && EVP_MAC_init(c->hmac, k, kl, params) == 1;
		OPENSSL_cleanse(raw, sizeof(raw));
		if (!ok) {
			ERR_clear_error();
			errf(b->err, b->errlen, "jwt: %s (key %s): OpenSSL refused the HMAC key",
			     b->where, keyc);
			return -EINVAL;
		}
		return 0;
	}
	c->pkey = load_pem(b, keyc, alg, pem);
	if (!c->pkey)
		return -EINVAL;
	if (ai->digest && !(c->md = EVP_MD_fetch(NULL, ai->digest, NULL))) {
		ERR_clear_error();
		errf(b->err, b->errlen, "jwt: OpenSSL has no digest %s", ai->digest);
		return -EINVAL;
	}
	return 0;
}

/* ---- sources ------------------------------------------------------------------ */

static int from_msgpack(struct builder *b, const msgpack_object *arr)
{
	if (arr->type == MSGPACK_OBJECT_NIL ||
	    (arr->type == MSGPACK_OBJECT_MAP && arr->via.map.size == 0))
		return 0; /* an empty Lua table */
	if (arr->type != MSGPACK_OBJECT_ARRAY) {
		errf(b->err, b->errlen, "jwt: config.credentials must be a list of credentials");
		return -EINVAL;
	}
	char *where = b->where_buf;
	size_t wl = sizeof(b->where_buf);
	b->where = where;
	for (uint32_t i = 0; i < arr->via.array.size; i++) {
		const msgpack_object *o = &arr->via.array.ptr[i];
		snprintf(where, wl, "config.credentials[%u]", i + 1);
		if (o->type != MSGPACK_OBJECT_MAP) {
			errf(b->err, b->errlen, "jwt: %s must be a map", where);
			return -EINVAL;
		}
		const msgpack_object *cons = mp_get(o, "consumer");
		int rc;
		if (cons && cons->type == MSGPACK_OBJECT_MAP) {
			rc = add_consumer(b, mp_str(cons, "id"), mp_str(cons, "username"),
			                  mp_str(cons, "custom_id"));
		} else {
			errf(b->err, b->errlen,
			     "jwt: %s: consumer must be a map {id, username, custom_id}", where);
			rc = -EINVAL;
		}
		if (rc < 0)
			return rc;
		rc = add_cred(b, b->kr->nconsumers - 1, mp_str(o, "id"), mp_str(o, "key"),
		              mp_str(o, "algorithm"), mp_str(o, "secret"),
		              mp_str(o, "rsa_public_key"));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Consumers of the shared credentials format (plugins/common): every
 * consumer is kept (for `anonymous`), and each jwt secret becomes a cred. */
static int from_creds(struct builder *b, const struct shmring_creds *cs, const char *src)
{
	char *where = b->where_buf;
	size_t wl = sizeof(b->where_buf);
	b->where = where;
	for (size_t i = 0; i < cs->n; i++) {
		const struct shmring_creds_consumer *k = &cs->v[i];
		b->from_file = k->from_file;
		snprintf(where, wl, "%s: consumers[%zu]", src, i);
		struct sv id = {k->id, k->id ? strlen(k->id) : 0, k->id != NULL, false};
		struct sv un = {k->username, k->username ? strlen(k->username) : 0,
		                k->username != NULL, false};
		struct sv ci = {k->custom_id, k->custom_id ? strlen(k->custom_id) : 0,
		                k->custom_id != NULL, false};
		int rc = add_consumer(b, id, un.set ? un : id, ci);
		if (rc < 0)
			return rc;
		if (!un.set) /* the id stood in for the check only */ {
			free(b->kr->consumers[b->kr->nconsumers - 1].username);
			b->kr->consumers[b->kr->nconsumers - 1].username = NULL;
		}
		size_t cons = b->kr->nconsumers - 1;
		for (size_t j = 0; j < k->n_jwt; j++) {
			const struct shmring_creds_jwt *jw = &k->jwt[j];
			snprintf(where, wl, "%s: consumers[%zu].jwt_secrets[%zu]", src, i, j);
			struct sv jid = {jw->id, jw->id ? strlen(jw->id) : 0, jw->id != NULL,
			                 false};
			struct sv key = {jw->key, jw->key ? strlen(jw->key) : 0, jw->key != NULL,
			                 false};
			struct sv alg = {jw->algorithm, jw->algorithm ? strlen(jw->algorithm) : 0,
			                 jw->algorithm != NULL, false};
			struct sv sec = {jw->secret, jw->secret_len, jw->secret != NULL, false};
			struct sv pem = {jw->rsa_public_key,
			                 jw->rsa_public_key ? strlen(jw->rsa_public_key) : 0,
			                 jw->rsa_public_key != NULL, false};
			if ((rc = add_cred(b, cons, jid, key, alg, sec, pem)) < 0)
				return rc;
		}
	}
	b->where = "?";
	b->from_file = false;
	return 0;
}

/* ---- the index ------------------------------------------------------------------ */

static uint64_t key_hash(const struct jwt_keyring *kr, const char *key, size_t len)
{
	return XXH3_64bits_withSeed(key, len, kr->seed);
}

static int build_index(struct builder *b)
{
	struct jwt_keyring *kr = b->kr;
	uint32_t cap = 8;
	while (cap < kr->ncreds * 2)
		cap <<= 1;
	kr->index = calloc(cap, sizeof(*kr->index));
	if (!kr->index) {
		errf(b->err, b->errlen, "jwt: out of memory");
		return -ENOMEM;
	}
	kr->index_mask = cap - 1;
	for (size_t i = 0; i < kr->ncreds; i++) {
		const struct jwt_cred *c = &kr->creds[i];
		uint32_t s = (uint32_t)key_hash(kr, c->key, c->key_len) & kr->index_mask;
		while (kr->index[s]) {
			const struct jwt_cred *o = &kr->creds[kr->index[s] - 1];
			if (o->key_len == c->key_len && memcmp(o->key, c->key, c->key_len) == 0) {
				errf(b->err, b->errlen,
				     "jwt: duplicate credential key '%.64s' (keys select one "
				     "credential "
				     "each)",
				     c->key);
				return -EINVAL;
			}
			s = (s + 1) & kr->index_mask;
		}
		kr->index[s] = (uint32_t)i + 1;
	}
	return 0;
}

const struct jwt_cred *jwt__keyring_find(const struct jwt_keyring *kr, const char *key, size_t len)
{
	if (!kr || !kr->index)
		return NULL;
	uint32_t s = (uint32_t)key_hash(kr, key, len) & kr->index_mask;
	while (kr->index[s]) {
		const struct jwt_cred *c = &kr->creds[kr->index[s] - 1];
		if (c->key_len == len && memcmp(c->key, key, len) == 0)
			return c;
		s = (s + 1) & kr->index_mask;
	}
	return NULL;
}

const struct jwt_consumer *jwt__keyring_consumer(const struct jwt_keyring *kr, const char *name)
{
	if (!kr)
		return NULL;
	for (size_t i = 0; i < kr->nconsumers; i++)
		if (kr->consumers[i].id && strcmp(kr->consumers[i].id, name) == 0)
			return &kr->consumers[i];
	for (size_t i = 0; i < kr->nconsumers; i++)
		if (kr->consumers[i].username && strcmp(kr->consumers[i].username, name) == 0)
			return &kr->consumers[i];
	return NULL;
}

/* ---- build / free ------------------------------------------------------------ */

void jwt__keyring_free(struct jwt_keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->ncreds; i++) {
		struct jwt_cred *c = &kr->creds[i];
		free(c->key);
		free(c->id);
		EVP_MAC_CTX_free(c->hmac);
		EVP_PKEY_free(c->pkey);
		EVP_MD_free((EVP_MD *)c->md);
	}
	for (size_t i = 0; i < kr->nconsumers; i++) {
		free(kr->consumers[i].id);
		free(kr->consumers[i].username);
		free(kr->consumers[i].custom_id);
	}
	free(kr->creds);
	free(kr->consumers);
	free(kr->index);
	free(kr);
}

struct jwt_keyring *jwt__keyring_build(const msgpack_object *inline_creds,
                                       const struct shmring_creds *const *srcs,
                                       const char *const *src_names, size_t nsrc,
                                       bool secret_is_base64, char *err, size_t errlen)
{
	struct builder b = {
	    .secret_is_base64 = secret_is_base64, .err = err, .errlen = errlen, .where = "?"};
	b.kr = calloc(1, sizeof(*b.kr));
	b.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!b.kr || !b.hmac) {
		errf(err, errlen, "jwt: out of memory (or OpenSSL has no HMAC)");
		goto fail;
	}
	if (RAND_bytes((unsigned char *)&b.kr->seed, sizeof(b.kr->seed)) != 1)
		b.kr->seed = (uint64_t)(uintptr_t)b.kr ^ 0x9e3779b97f4a7c15ull;
	if (inline_creds && from_msgpack(&b, inline_creds) < 0)
		goto fail;
	for (size_t i = 0; i < nsrc; i++)
		if (srcs[i] && from_creds(&b, srcs[i], src_names[i]) < 0)
			goto fail;
	if (b.kr->ncreds == 0) {
		errf(err, errlen,
		     "jwt: no credentials: config.credentials and config.consumers hold no jwt "
		     "secret%s",
		     nsrc > 1 && srcs[1] ? " and the credentials_file has no jwt_secrets"
		                         : " and no credentials_file is set");
		goto fail;
	}
	for (size_t i = 0; i < b.kr->ncreds; i++)
		b.kr->creds[i].consumer = &b.kr->consumers[b.cred_consumer[i]];
	if (build_index(&b) < 0)
		goto fail;
	free(b.cred_consumer);
	EVP_MAC_free(b.hmac);
	return b.kr;
fail:
	free(b.cred_consumer);
	EVP_MAC_free(b.hmac);
	jwt__keyring_free(b.kr);
	return NULL;
}
