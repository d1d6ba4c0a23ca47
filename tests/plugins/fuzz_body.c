/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for request bodies: an arbitrary body (and Content-Type)
 * through the body parsers of plugins/common/body.c and through the two
 * plugins that read bodies, key-auth (key_in_body, hide_credentials) and
 * request-transformer (every body rule, json_types, http_method GET), as
 * the daemon runs their hooks. Input:
 *
 *   byte 0      (byte mod 4): 0 application/json, 1 a form, 2
 *               multipart/form-data; boundary=XyZ, 3 the Content-Type is
 *               the input up to the first '\n'
 *   the rest    the raw body (any bytes)
 *
 * Besides no crash, sanitizer report or leak: a multipart body that parses
 * must parse again, to the same fields, once written back.
 */
#include "daemon.h"
#include "harness.h"
#include "shmring_pc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct shmring_test KA, RT;
static void *ka_conf, *rt_conf;

static void *conf_of(struct shmring_test *h, const char *json)
{
	/* The daemon's way: schema checks and defaults, then conf_new. */
	if (shmring_test_conf(h, json) < 0) {
		fprintf(stderr, "fuzz_body: config refused: %s\n", h->err);
		abort();
	}
	return h->conf;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	shmring_test_open(&KA, KEY_AUTH_SO);
	shmring_test_open(&RT, REQUEST_TRANSFORMER_SO);
	ka_conf = conf_of(&KA, "{\"key_in_body\":true,\"hide_credentials\":true,"
	                       "\"consumers\":[{\"id\":\"a\",\"username\":\"u\","
	                       "\"keyauth_credentials\":[{\"id\":\"c\",\"key\":\"k\"}]}]}");
	rt_conf = conf_of(&RT, "{\"http_method\":\"GET\",\"remove\":{\"body\":[\"r\"]},"
	                       "\"rename\":{\"body\":[\"a:b\",\"b:a\"]},"
	                       "\"replace\":{\"body\":[\"x:$(headers.apikey)\"],"
	                       "\"json_types\":[\"number\"]},"
	                       "\"add\":{\"body\":[\"n:1.5\",\"t:true\",\"s:s\"],"
	                       "\"json_types\":[\"number\",\"boolean\"]},"
	                       "\"append\":{\"body\":[\"x:1\",\"x:2\",\"apikey:k\"]}}");
	return 0;
}

static void run(struct shmring_test *h, void *conf, struct shmring_str ct, struct shmring_str body)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "conf", 4);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_str_with_body(&pk, "method", 6);
	msgpack_pack_str_with_body(&pk, "POST", 4);
	msgpack_pack_str_with_body(&pk, "headers", 7);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "content-type", 12);
	msgpack_pack_str_with_body(&pk, ct.ptr, ct.len);
	msgpack_pack_str_with_body(&pk, "body", 4);
	msgpack_pack_str_with_body(&pk, body.ptr, body.len);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	struct shmring_request req;
	memset(&req, 0, sizeof(req));
	if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    shmringd__request_decode(&req, &u.data) == 0) {
		req.phase = SHMRING_PHASE_ACCESS;
		shmringd__reply_begin(h->rep, 1u << 20);
		int rc = h->p->access(conf, &req, h->rep);
		shmringd__reply_finish(h->rep, rc < 0 ? "plugin error" : NULL);
	}
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
}

/* A multipart body that parses parses again, the same, once written. */
static void multipart_round_trip(struct shmring_str ct, struct shmring_str body)
{
	static struct shmring_pc_part a[SHMRING_PC_BODY_MAX_FIELDS], b[SHMRING_PC_BODY_MAX_FIELDS];
	struct shmring_str bd;
	size_t na, nb, len, cap = 0;
	char *buf = NULL;
	if (shmring_pc_multipart_boundary(ct, &bd) < 0 ||
	    shmring_pc_multipart_parse(body, bd, a, SHMRING_PC_BODY_MAX_FIELDS, &na) < 0)
		return;
	if (shmring_pc_multipart_encode(a, na, bd, &buf, &cap, &len) < 0)
		abort();
	int rc = shmring_pc_multipart_parse((struct shmring_str){buf, len}, bd, b,
	                                    SHMRING_PC_BODY_MAX_FIELDS, &nb);
	/* No parts write nothing, which is no multipart body. */
	if (na == 0 ? len != 0 : rc != 0 || nb != na)
		abort();
	for (size_t i = 0; i < na && na; i++)
		if (!shmring_str_eq(a[i].name, b[i].name) ||
		    !shmring_str_eq(a[i].value, b[i].value))
			abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 17)
		return 0;
	static const char *const types[] = {"application/json", "application/x-www-form-urlencoded",
	                                    "multipart/form-data; boundary=XyZ"};
	struct shmring_str body = {(const char *)data + 1, size - 1}, ct;
	int which = data[0] % 4;
	if (which < 3) {
		ct = shmring_cstr(types[which]);
	} else {
		const char *nl = memchr(body.ptr, '\n', body.len);
		ct = (struct shmring_str){body.ptr, nl ? (size_t)(nl - body.ptr) : body.len};
		body.ptr += ct.len + (nl != NULL);
		body.len -= ct.len + (nl != NULL);
	}
	run(&KA, ka_conf, ct, body);
	run(&RT, rt_conf, ct, body);
	multipart_round_trip(ct, body);
	return 0;
}
