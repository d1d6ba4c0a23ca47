/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the jwt plugin's token handling: the input is used
 * (1) as a token for the parser and the decoders directly, and (2) as the
 * Authorization header / jwt query arg / cookie of a request through the
 * access hook, with a config holding one credential per algorithm (so
 * signatures are verified, claims checked, the cache exercised). Seeds:
 * tests/jwt/corpus (tokens from gen_fixtures.py). */
#include "daemon.h"
#include "harness.h"
#include "jwt_internal.h"
#include "shmring_plugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"

extern const struct shmring_plugin shmring_plugin;

void shmringd__log(const char *fmt, ...)
{
	(void)fmt;
}

static void *conf;
static EVP_MD_CTX *md_ctx;

static void pack_str(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, p, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	json_t *j = json_loads(FX_CONFIG, 0, NULL);
	json_object_set_new(j, "cookie_names", json_pack("[s]", "t"));
	json_object_set_new(j, "cache_size", json_integer(64));
	/* The fixture config (JSON) as msgpack, through jansson. */
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	shmring_test_pack_json(&sb, j);
	json_decref(j);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	char err[512];
	if (msgpack_unpack_next(&u, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS ||
	    shmring_plugin.conf_new(NULL, &u.data, &conf, err, sizeof(err)) < 0)
		abort();
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	md_ctx = EVP_MD_CTX_new();
	jwt__fake_now = FX_NOW;
	return 0;
}

static void run_access(const uint8_t *data, size_t size, int where)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pack_str(&pk, "conf", 4);
	msgpack_pack_uint64(&pk, 1);
	pack_str(&pk, "method", 6);
	pack_str(&pk, "GET", 3);
	if (where == 0) {
		pack_str(&pk, "headers", 7);
		msgpack_pack_map(&pk, 1);
		pack_str(&pk, "authorization", 13);
		msgpack_pack_str(&pk, size + 7);
		msgpack_pack_str_body(&pk, "Bearer ", 7);
		msgpack_pack_str_body(&pk, data, size);
	} else if (where == 1) {
		pack_str(&pk, "query", 5);
		msgpack_pack_map(&pk, 1);
		pack_str(&pk, "jwt", 3);
		pack_str(&pk, data, size);
	} else {
		pack_str(&pk, "headers", 7);
		msgpack_pack_map(&pk, 1);
		pack_str(&pk, "cookie", 6);
		pack_str(&pk, data, size);
	}
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	if (msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS) {
		struct shmring_request req;
		memset(&req, 0, sizeof(req));
		req.phase = SHMRING_PHASE_ACCESS;
		if (shmringd__request_decode(&req, &u.data) == 0) {
			struct shmring_reply rep;
			memset(&rep, 0, sizeof(rep));
			shmringd__reply_begin(&rep, 1u << 20);
			int rc = shmring_plugin.access(conf, &req, &rep);
			shmringd__reply_finish(&rep, rc < 0 ? "plugin error" : NULL);
			free(rep.buf);
		}
	}
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 3 * JWT_MAX_TOKEN)
		return 0;
	const char *tok = (const char *)data;
	uint8_t out[JWT_B64_DECODED_MAX(3 * JWT_MAX_TOKEN)];
	jwt__b64url_decode(tok, size, out);
	jwt__b64_decode_lenient(tok, size, out);

	/* Half the inputs through a header cache that lives across inputs. */
	static struct jwt_header_cache hc;
	struct jwt_token t;
	if (jwt__token_parse(tok, size, &t, size % 2 ? &hc : NULL) == JWT_OK) {
		/* The parse must hold what the verifier relies on. */
		if (t.alg == JWT_ALG_NONE_ || !json_is_object(t.header) ||
		    !json_is_object(t.claims) || t.sig_len == 0 || t.sig_len > JWT_MAX_SIG ||
		    t.signing_len >= size)
			abort();
		jwt__token_clear(&t);
	}
	/* Vary the time a little so exp/nbf/cache expiry paths all run. */
	jwt__fake_now = FX_NOW + (size % 3 == 0 ? 0 : 700);
	run_access(data, size, (int)(size % 3));
	return 0;
}
