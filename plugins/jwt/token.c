/* SPDX-License-Identifier: MIT */
/* Compact JWS parsing and signature verification (RFC 7515, RFC 7518).
 *
 * A token is three base64url parts joined by '.': header, claims,
 * signature. Every part is bounded before it is decoded, header and claims
 * are parsed by jansson (duplicate keys refused, so `{"alg":"HS256",
 * "alg":"none"}` cannot mean two things), and "alg" must name one of the
 * algorithms below: "none" is not one of them. Which algorithm is *used* is
 * decided by the credential (jwt.c refuses a token whose alg differs). */
#include "jwt_internal.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

static const struct jwt_alg_info algs[JWT_ALG_COUNT_] = {
    [JWT_ALG_NONE_] = {"none", JWT_FAM_HMAC, NULL, 0, 0},
    [JWT_HS256] = {"HS256", JWT_FAM_HMAC, "SHA256", 0, 0},
    [JWT_HS384] = {"HS384", JWT_FAM_HMAC, "SHA384", 0, 0},
    [JWT_HS512] = {"HS512", JWT_FAM_HMAC, "SHA512", 0, 0},
    [JWT_RS256] = {"RS256", JWT_FAM_RSA, "SHA256", 0, 0},
    [JWT_RS384] = {"RS384", JWT_FAM_RSA, "SHA384", 0, 0},
    [JWT_RS512] = {"RS512", JWT_FAM_RSA, "SHA512", 0, 0},
    [JWT_ES256] = {"ES256", JWT_FAM_ECDSA, "SHA256", 32, NID_X9_62_prime256v1},
    [JWT_ES384] = {"ES384", JWT_FAM_ECDSA, "SHA384", 48, NID_secp384r1},
    [JWT_ES512] = {"ES512", JWT_FAM_ECDSA, "SHA512", 66, NID_secp521r1},
    [JWT_PS256] = {"PS256", JWT_FAM_PSS, "SHA256", 0, 0},
    [JWT_PS384] = {"PS384", JWT_FAM_PSS, "SHA384", 0, 0},
    [JWT_PS512] = {"PS512", JWT_FAM_PSS, "SHA512", 0, 0},
    [JWT_EDDSA] = {"EdDSA", JWT_FAM_EDDSA, NULL, 0, 0},
};

enum jwt_alg jwt__alg_by_name(const char *name, size_t len)
{
	for (int a = JWT_HS256; a < JWT_ALG_COUNT_; a++)
		if (strlen(algs[a].name) == len && memcmp(algs[a].name, name, len) == 0)
			return (enum jwt_alg)a;
	return JWT_ALG_NONE_;
}

const struct jwt_alg_info *jwt__alg_info(enum jwt_alg alg)
{
	return (unsigned)alg < JWT_ALG_COUNT_ ? &algs[alg] : &algs[0];
}

void jwt__token_clear(struct jwt_token *t)
{
	json_decref(t->header);
	json_decref(t->claims);
	t->header = t->claims = NULL;
}

/* Decode one base64url part and parse it as a JSON object. */
static json_t *part_json(const char *p, size_t n, uint8_t *scratch)
{
	ssize_t m = jwt__b64url_decode(p, n, scratch);
	if (m <= 0)
		return NULL;
	json_t *j = json_loadb((const char *)scratch, (size_t)m, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void jwt__header_cache_clear(struct jwt_header_cache *hc)
{
	for (unsigned i = 0; i < JWT_HDR_CACHE; i++) {
		free(hc->e[i].b64);
		json_decref(hc->e[i].hdr);
		hc->e[i].b64 = NULL;
		hc->e[i].hdr = NULL;
		hc->e[i].len = 0;
	}
	hc->next = 0;
}

/* The header object for the base64url text p[0..n): from hc, or parsed
 * (and then remembered in hc). A new reference, or NULL if invalid. */
static json_t *header_json(const char *p, size_t n, uint8_t *scratch, struct jwt_header_cache *hc)
{
	if (hc)
		for (unsigned i = 0; i < JWT_HDR_CACHE; i++)
			if (hc->e[i].hdr && hc->e[i].len == n && memcmp(hc->e[i].b64, p, n) == 0)
				return json_incref(hc->e[i].hdr);
	json_t *j = part_json(p, n, scratch);
	if (!j || !hc)
		return j;
	char *copy = malloc(n ? n : 1);
	if (!copy)
		return j; /* not remembered; still a valid header */
	memcpy(copy, p, n);
	unsigned i = hc->next;
	hc->next = (i + 1) % JWT_HDR_CACHE;
	free(hc->e[i].b64);
	json_decref(hc->e[i].hdr);
	hc->e[i].b64 = copy;
	hc->e[i].len = n;
	hc->e[i].hdr = json_incref(j);
	return j;
}

enum jwt_parse_err jwt__token_parse(const char *tok, size_t len, struct jwt_token *t,
                                    struct jwt_header_cache *hc)
{
	t->header = t->claims = NULL;
	t->alg = JWT_ALG_NONE_;
	t->sig_len = 0;
	if (len > JWT_MAX_TOKEN)
		return JWT_E_TOO_LARGE;
	const char *d1 = memchr(tok, '.', len);
	if (!d1)
		return JWT_E_JSON;
	const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	if (!d2)
		return JWT_E_JSON;
	size_t hlen = (size_t)(d1 - tok);
	size_t clen = (size_t)(d2 - d1 - 1);
	const char *s = d2 + 1;
	size_t slen = len - (size_t)(s - tok);
	if (hlen > JWT_MAX_HEADER_B64)
		return JWT_E_TOO_LARGE;
	if (slen > JWT_MAX_SIG / 3 * 4 + 2)
		return JWT_E_TOO_LARGE;

	/* Header and claims decode into one scratch buffer (<= 6 KiB). */
	uint8_t scratch[JWT_B64_DECODED_MAX(JWT_MAX_TOKEN)];
	t->header = header_json(tok, hlen, scratch, hc);
	if (!t->header)
		return JWT_E_JSON;
	t->claims = part_json(d1 + 1, clen, scratch);
	if (!t->claims) {
		jwt__token_clear(t);
		return JWT_E_JSON;
	}
	json_t *alg = json_object_get(t->header, "alg");
	if (!json_is_string(alg) ||
	    (t->alg = jwt__alg_by_name(json_string_value(alg), json_string_length(alg))) ==
	        JWT_ALG_NONE_) {
		jwt__token_clear(t);
		return JWT_E_ALG;
	}
	/* A third '.' makes the signature part invalid base64url. */
	ssize_t m = jwt__b64url_decode(s, slen, t->sig);
	if (m <= 0) {
		jwt__token_clear(t);
		return JWT_E_SIGNATURE;
	}
	t->sig_len = (size_t)m;
	t->signing_input = tok;
	t->signing_len = (size_t)(d2 - tok);
	return JWT_OK;
}

/* Minimal DER for an INTEGER holding the unsigned big-endian v[0..n). */
static size_t der_uint(const uint8_t *v, size_t n, uint8_t *out)
{
	while (n > 1 && v[0] == 0) {
		v++;
		n--;
	}
	size_t pad = (v[0] & 0x80) ? 1 : 0;
	size_t o = 0;
	out[o++] = 0x02;
	out[o++] = (uint8_t)(n + pad); /* n <= 66: short form */
	if (pad)
		out[o++] = 0;
	memcpy(out + o, v, n);
	return o + n;
}

int jwt__ecdsa_jose_to_der(const uint8_t *sig, size_t sig_len, unsigned n, uint8_t *out,
                           size_t outlen)
{
	if (n == 0 || n > 66 || sig_len != 2u * n || outlen < 2u * n + 16)
		return -1;
	uint8_t body[2 * 66 + 8];
	size_t b = der_uint(sig, n, body);
	b += der_uint(sig + n, n, body + b);
	size_t o = 0;
	out[o++] = 0x30;
	if (b < 0x80) {
		out[o++] = (uint8_t)b;
	} else {
		out[o++] = 0x81;
		out[o++] = (uint8_t)b;
	}
	memcpy(out + o, body, b);
	return (int)(o + b);
}

static int verify_hmac(const struct jwt_token *t, const struct jwt_cred *cred)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;
	/* Re-initialising with a NULL key keeps the key set at config time. */
	if (!EVP_MAC_init(cred->hmac, NULL, 0, NULL) ||
	    !EVP_MAC_update(cred->hmac, (const uint8_t *)t->signing_input, t->signing_len) ||
	    !EVP_MAC_final(cred->hmac, mac, &maclen, sizeof(mac)))
		return 0;
	return maclen == t->sig_len && CRYPTO_memcmp(mac, t->sig, maclen) == 0;
}

int jwt__token_verify(const struct jwt_token *t, const struct jwt_cred *cred, EVP_MD_CTX *md_ctx)
{
	if (t->alg != cred->alg || t->alg == JWT_ALG_NONE_)
		return 0;
	const struct jwt_alg_info *ai = jwt__alg_info(cred->alg);
	if (ai->fam == JWT_FAM_HMAC)
		return cred->hmac ? verify_hmac(t, cred) : 0;
	if (!cred->pkey)
		return 0;

	const uint8_t *sig = t->sig;
	size_t sig_len = t->sig_len;
	uint8_t der[2 * 66 + 16];
	if (ai->fam == JWT_FAM_ECDSA) {
		/* JOSE carries r||s at fixed width; OpenSSL wants DER. */
		int n = jwt__ecdsa_jose_to_der(t->sig, t->sig_len, ai->ec_size, der, sizeof(der));
		if (n < 0)
			return 0;
		sig = der;
		sig_len = (size_t)n;
	}
	EVP_MD_CTX_reset(md_ctx);
	EVP_PKEY_CTX *pctx = NULL;
	if (EVP_DigestVerifyInit(md_ctx, &pctx, cred->md, NULL, cred->pkey) != 1) {
		ERR_clear_error();
		return 0;
	}
	if (ai->fam == JWT_FAM_PSS) {
		/* RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash. */
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, cred->md) != 1)
			return 0;
	} else if (ai->fam == JWT_FAM_RSA) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
			return 0;
	}
	int ok = EVP_DigestVerify(md_ctx, sig, sig_len, (const uint8_t *)t->signing_input,
	                          t->signing_len);
	/* A refused signature leaves reasons on the thread's error queue. */
	if (ok != 1)
		ERR_clear_error();
	return ok == 1;
}
