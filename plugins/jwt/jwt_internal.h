/* SPDX-License-Identifier: MIT */
/*
 * jwt_internal.h: the parts of the jwt plugin, shared by its files, its unit
 * tests, its fuzz target and its benchmark. Nothing here is exported from
 * jwt.so (the plugin exports only its descriptor); `jwt__` names cross
 * files, everything else is static.
 *
 *   b64.c    strict base64url (token parts) and the lenient base64 Kong
 *            accepts for `secret_is_base64` secrets
 *   token.c  split, decode and JSON-parse a compact JWS; verify its
 *            signature with a credential's prepared OpenSSL objects
 *   keys.c   credentials: parse (PEM once), index by key, load the
 *            credentials file
 *   cache.c  the bounded cache of verified tokens
 *   jwt.c    config, the access hook, the descriptor
 */
#ifndef SHMRING_JWT_INTERNAL_H
#define SHMRING_JWT_INTERNAL_H

#include <jansson.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- limits (every part of a token is bounded before it is decoded) ----- */

#define JWT_MAX_TOKEN 8192      /* whole compact token, bytes */
#define JWT_MAX_HEADER_B64 1024 /* encoded JOSE header */
#define JWT_MAX_SIG 1024        /* decoded signature (RSA-8192 is 1024) */
#define JWT_MAX_KEY 1024        /* credential key ("iss" value) */
#define JWT_MAX_SECRET 4096     /* HS secret, decoded */
#define JWT_MAX_PEM 16384       /* public key PEM text */
#define JWT_MIN_RSA_BITS 2048

/* ---- base64 (b64.c) ---------------------------------------------------- */

/* Bytes needed to decode n base64 characters (an upper bound). */
#define JWT_B64_DECODED_MAX(n) (((n) / 4) * 3 + 3)

/* Decode strict base64url (RFC 7515 section 2): alphabet A-Z a-z 0-9 - _,
 * no padding, no whitespace, length % 4 != 1, and the unused low bits of
 * the last character zero (one encoding per value: no malleability).
 * Writes at most JWT_B64_DECODED_MAX(len) bytes into out. Returns the
 * decoded length, or -1 on any violation. */
ssize_t jwt__b64url_decode(const char *in, size_t len, uint8_t *out);

/* Decode a secret the way Kong's `secret_is_base64` does: standard or URL
 * alphabet (not mixed is not required), '=' padding optional. Returns the
 * decoded length or -1. Not for token parts. */
ssize_t jwt__b64_decode_lenient(const char *in, size_t len, uint8_t *out);

/* ---- algorithms (token.c) ------------------------------------------------ */

enum jwt_alg {
	JWT_ALG_NONE_ = 0, /* not an algorithm: "none" is never accepted */
	JWT_HS256,
	JWT_HS384,
	JWT_HS512,
	JWT_RS256,
	JWT_RS384,
	JWT_RS512,
	JWT_ES256,
	JWT_ES384,
	JWT_ES512,
	JWT_PS256,
	JWT_PS384,
	JWT_PS512,
	JWT_EDDSA,
	JWT_ALG_COUNT_
};

enum jwt_family { JWT_FAM_HMAC, JWT_FAM_RSA, JWT_FAM_ECDSA, JWT_FAM_PSS, JWT_FAM_EDDSA };

struct jwt_alg_info {
	const char *name; /* JOSE "alg" value */
	enum jwt_family fam;
	const char *digest; /* OpenSSL digest name, NULL for EdDSA */
	unsigned ec_size;   /* ECDSA: bytes of r and of s in the JOSE signature */
	int ec_nid;         /* ECDSA: the curve the key must be on */
};

/* The algorithm named name[0..len), or JWT_ALG_NONE_ (unknown, or "none"). */
enum jwt_alg jwt__alg_by_name(const char *name, size_t len);
const struct jwt_alg_info *jwt__alg_info(enum jwt_alg alg);

/* ---- credentials (keys.c) ------------------------------------------------ */

struct jwt_consumer {
	char *id;        /* may be NULL; at least one of id/username is set */
	char *username;  /* may be NULL */
	char *custom_id; /* may be NULL */
};

/* One jwt secret, prepared once: the HMAC context holds the key, the
 * EVP_PKEY is parsed from PEM and checked against the algorithm. */
struct jwt_cred {
	char *key; /* the key claim value that selects it */
	size_t key_len;
	char *id; /* credential id (authenticate); defaults to key */
	enum jwt_alg alg;
	const struct jwt_consumer *consumer; /* owned by the keyring */
	EVP_MAC_CTX *hmac;                   /* HS*: initialised with the secret */
	EVP_PKEY *pkey;                      /* RS/PS/ES/EdDSA */
	const EVP_MD *md;                    /* fetched once; NULL for HS and EdDSA */
};

/* An immutable set of credentials indexed by key (open addressing). */
struct jwt_keyring {
	struct jwt_cred *creds;
	size_t ncreds;
	struct jwt_consumer *consumers;
	size_t nconsumers;
	uint32_t *index; /* slot -> cred number + 1, 0 = empty */
	uint32_t index_mask;
	uint64_t seed; /* xxh3 seed of the index */
};

/* Build credentials from the msgpack array of `credentials` (may be NULL)
 * and nsrc consumer sets of the shared credentials format (plugins/common:
 * inline `consumers`, the credentials file; entries may be NULL), named in
 * messages by src_names. Everything is copied. Returns a new keyring, or
 * NULL with the reason in err. secret_is_base64 applies to HS secrets. */
struct shmring_creds;
struct jwt_keyring *jwt__keyring_build(const msgpack_object *inline_creds,
                                       const struct shmring_creds *const *srcs,
                                       const char *const *src_names, size_t nsrc,
                                       bool secret_is_base64, char *err, size_t errlen);
void jwt__keyring_free(struct jwt_keyring *kr);
const struct jwt_cred *jwt__keyring_find(const struct jwt_keyring *kr, const char *key, size_t len);
/* A consumer by id, else by username; NULL if unknown. */
const struct jwt_consumer *jwt__keyring_consumer(const struct jwt_keyring *kr, const char *name);

/* ---- tokens (token.c) -------------------------------------------------- */

/* Why a token was refused; the messages are Kong's (jwt.c maps them). */
enum jwt_parse_err {
	JWT_OK = 0,
	JWT_E_TOO_LARGE, /* "Bad token; too large" (ours: a size limit) */
	JWT_E_JSON,      /* "Bad token; invalid JSON" */
	JWT_E_ALG,       /* "Bad token; invalid alg" */
	JWT_E_SIGNATURE, /* "Bad token; invalid signature" (not base64url) */
};

/* A parsed compact JWS. header and claims are owned (json_decref via
 * jwt__token_clear); the other fields point into the token text or sig. */
struct jwt_token {
	const char *signing_input; /* header.claims, inside the token */
	size_t signing_len;
	json_t *header; /* JSON object */
	json_t *claims; /* JSON object */
	enum jwt_alg alg;
	uint8_t sig[JWT_MAX_SIG];
	size_t sig_len;
};

/* Parsed JOSE headers by their exact base64url text. The tokens of one
 * issuer share one header, so its jansson parse (about a third of a
 * verification without the cache) is done once. An entry holds a reference
 * to a header object that nobody modifies; replaced round-robin. */
#define JWT_HDR_CACHE 4
struct jwt_header_cache {
	struct {
		char *b64; /* owned copy of the header part */
		size_t len;
		json_t *hdr; /* one reference */
	} e[JWT_HDR_CACHE];
	unsigned next; /* the entry to replace next */
};
void jwt__header_cache_clear(struct jwt_header_cache *hc);

/* Parse tok[0..len) (no signature check); hc may be NULL. On failure the
 * token holds no JSON and the result says why. */
enum jwt_parse_err jwt__token_parse(const char *tok, size_t len, struct jwt_token *t,
                                    struct jwt_header_cache *hc);
void jwt__token_clear(struct jwt_token *t);

/* Verify t's signature with cred (t->alg must already equal cred->alg).
 * md_ctx is a reusable context. 1 if valid, 0 if not. */
int jwt__token_verify(const struct jwt_token *t, const struct jwt_cred *cred, EVP_MD_CTX *md_ctx);

/* ECDSA: JOSE r||s (2 * n bytes) to a DER ECDSA-Sig-Value. Returns the DER
 * length or -1. out must hold 2 * n + 16 bytes. */
int jwt__ecdsa_jose_to_der(const uint8_t *sig, size_t sig_len, unsigned n, uint8_t *out,
                           size_t outlen);

/* ---- the verified-token cache (cache.c) ---------------------------------- */

/*
 * A fixed-size, 4-way set-associative cache: a token hashes (xxh3, seeded
 * per cache) to one set of 4 entries; within the set the least recently
 * used entry is replaced. An entry keeps a copy of the exact token bytes
 * (a hash match alone never authenticates), the credential it verified
 * with, and the time it stops being valid (never later than the token's
 * exp). Capacity is rounded up to a multiple of 4 (power-of-two sets).
 */
struct jwt_cache_entry {
	uint64_t hash;
	int64_t expires;             /* unix seconds; the entry is dead at >= */
	const struct jwt_cred *cred; /* NULL = empty slot */
	char *tok;                   /* owned copy, tok_cap bytes */
	uint32_t tok_len;
	uint32_t tok_cap;
	uint32_t used; /* LRU stamp within the set */
};

struct jwt_cache_stats {
	uint64_t hits, misses, expired, inserts, evictions;
};

struct jwt_cache {
	struct jwt_cache_entry *e;
	uint32_t set_mask; /* number of sets - 1 */
	uint32_t clock;    /* LRU stamp source */
	uint64_t seed;
	struct jwt_cache_stats st;
};

/* 0 or -ENOMEM. capacity >= 1. */
int jwt__cache_init(struct jwt_cache *c, uint32_t capacity);
void jwt__cache_destroy(struct jwt_cache *c);
/* Drop every entry (credentials changed). */
void jwt__cache_flush(struct jwt_cache *c);
/* The credential a still-valid cached token verified with, or NULL. */
const struct jwt_cred *jwt__cache_get(struct jwt_cache *c, const char *tok, size_t len,
                                      int64_t now);
/* Remember that tok verified with cred until `expires` (ignored if
 * expires <= now). 0 or -ENOMEM (then nothing is cached). */
int jwt__cache_put(struct jwt_cache *c, const char *tok, size_t len, const struct jwt_cred *cred,
                   int64_t expires, int64_t now);
uint32_t jwt__cache_capacity(const struct jwt_cache *c);

/* The cache of a config made by the plugin's conf_new (tests, benchmark). */
struct jwt_cache *jwt__conf_cache(void *conf);

/* ---- clock (jwt.c) -------------------------------------------------------- */

/* Unix seconds. Tests set jwt__fake_now (non-zero) to pin the clock. */
extern int64_t jwt__fake_now;
int64_t jwt__now(void);

#endif
