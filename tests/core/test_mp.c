/* SPDX-License-Identifier: MIT */
/* msgpack helpers: writing in place (overflow is -EMSGSIZE and never writes
 * past cap), parsing exactly one value (truncated or trailing bytes are
 * -EBADMSG), strings that point into the buffer, typed lookups, and hostile
 * input (huge container counts, deep nesting). */
#include "core/fixture.h"
#include "shmring/client.h"
#include "shmring/mp.h"

static int write_sample(struct shmring_mpw *w)
{
	shmring_mpw_map(w, 8);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, 7);
	shmring_mpw_cstr(w, "plugin");
	shmring_mpw_str(w, "hello-world", 5); /* "hello" */
	shmring_mpw_cstr(w, "neg");
	shmring_mpw_int(w, -123456789);
	shmring_mpw_cstr(w, "pi");
	shmring_mpw_double(w, 3.25);
	shmring_mpw_cstr(w, "yes");
	shmring_mpw_bool(w, 1);
	shmring_mpw_cstr(w, "no");
	shmring_mpw_nil(w);
	shmring_mpw_cstr(w, "list");
	shmring_mpw_array(w, 2);
	shmring_mpw_uint(w, UINT64_MAX);
	shmring_mpw_raw(w, "\xa2hi", 3); /* pre-encoded "hi" */
	shmring_mpw_cstr(w, "big");
	char big[300];
	memset(big, 'x', sizeof(big));
	shmring_mpw_str(w, big, sizeof(big));
	return shmring_mpw_finish(w);
}

static void test_write_and_read_back(void **state)
{
	(void)state;
	uint8_t buf[1024];
	struct shmring_mpw w;
	shmring_mpw_init(&w, buf, sizeof(buf));
	int len = write_sample(&w);
	assert_true(len > 0 && len < (int)sizeof(buf));

	struct shmring_mpr r;
	assert_int_equal(shmring_mpr_init(&r), 0);
	assert_int_equal(shmring_mpr_parse(&r, buf, (uint32_t)len), 0);
	assert_int_equal(r.root.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(r.root.via.map.size, 8);
	uint64_t u;
	assert_int_equal(shmring_mp_get_uint(&r.root, "conf", &u), 0);
	assert_int_equal(u, 7);
	const char *s;
	uint32_t slen;
	assert_int_equal(shmring_mp_get_str(&r.root, "plugin", &s, &slen), 0);
	assert_int_equal(slen, 5);
	assert_memory_equal(s, "hello", 5);
	/* zero copy: the string points into the buffer */
	assert_true((const uint8_t *)s > buf && (const uint8_t *)s + slen <= buf + len);
	const msgpack_object *o = shmring_mp_get(&r.root, "neg");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
	assert_true(o->via.i64 == -123456789);
	o = shmring_mp_get(&r.root, "pi");
	assert_non_null(o);
	assert_true(o->type == MSGPACK_OBJECT_FLOAT64 && o->via.f64 == 3.25);
	o = shmring_mp_get(&r.root, "yes");
	assert_true(o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean);
	o = shmring_mp_get(&r.root, "no");
	assert_true(o && o->type == MSGPACK_OBJECT_NIL);
	o = shmring_mp_get(&r.root, "list");
	assert_true(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2);
	assert_true(o->via.array.ptr[0].via.u64 == UINT64_MAX);
	assert_int_equal(o->via.array.ptr[1].type, MSGPACK_OBJECT_STR);
	assert_memory_equal(o->via.array.ptr[1].via.str.ptr, "hi", 2);
	assert_int_equal(shmring_mp_get_str(&r.root, "big", &s, &slen), 0);
	assert_int_equal(slen, 300);
	assert_true((const uint8_t *)s > buf && (const uint8_t *)s + slen <= buf + len);

	/* typed lookups: absent / wrong type; outputs always written */
	assert_int_equal(shmring_mp_get_uint(&r.root, "absent", &u), -ENOENT);
	assert_int_equal(u, 0);
	u = 99;
	assert_int_equal(shmring_mp_get_uint(&r.root, "plugin", &u), -EBADMSG);
	assert_int_equal(u, 0);
	assert_int_equal(shmring_mp_get_uint(&r.root, "neg", &u), -EBADMSG);
	assert_int_equal(shmring_mp_get_str(&r.root, "conf", &s, &slen), -EBADMSG);
	assert_null(s);
	assert_int_equal(slen, 0);
	assert_int_equal(shmring_mp_get_str(&r.root, "absent", &s, &slen), -ENOENT);
	assert_null(shmring_mp_get(o, "x")); /* not a map */
	assert_null(shmring_mp_get(NULL, "x"));

	/* the reader is reused record after record */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(shmring_mpr_parse(&r, buf, (uint32_t)len), 0);
	shmring_mpr_destroy(&r);
}

static void test_overflow(void **state)
{
	(void)state;
	uint8_t full[1024];
	struct shmring_mpw w;
	shmring_mpw_init(&w, full, sizeof(full));
	int need = write_sample(&w);
	assert_true(need > 0);
	/* every cap below what is needed: -EMSGSIZE, and not one byte past cap */
	uint8_t buf[1024 + 16];
	for (int cap = 0; cap < need; cap++) {
		memset(buf, 0xcc, sizeof(buf));
		shmring_mpw_init(&w, buf, (uint32_t)cap);
		assert_int_equal(write_sample(&w), -EMSGSIZE);
		assert_true(w.overflow);
		assert_true(w.len <= (uint32_t)cap);
		for (size_t i = (size_t)cap; i < sizeof(buf); i++)
			if (buf[i] != 0xcc)
				fail_msg("cap %d: byte %zu written", cap, i);
		/* whatever was written is a prefix of the real encoding */
		assert_memory_equal(buf, full, w.len);
	}
	shmring_mpw_init(&w, buf, (uint32_t)need);
	assert_int_equal(write_sample(&w), need);
	assert_memory_equal(buf, full, (size_t)need);
	/* once overflowed, later (smaller) writes are ignored */
	shmring_mpw_init(&w, buf, 4);
	shmring_mpw_str(&w, "0123456789", 10);
	assert_int_equal(w.len, 1); /* the str header fit, its body did not */
	shmring_mpw_nil(&w);
	assert_int_equal(w.len, 1);
	assert_int_equal(shmring_mpw_finish(&w), -EMSGSIZE);
}

static void test_truncated_and_trailing(void **state)
{
	(void)state;
	uint8_t buf[1024 + 1];
	struct shmring_mpw w;
	shmring_mpw_init(&w, buf, 1024);
	int len = write_sample(&w);
	struct shmring_mpr r;
	assert_int_equal(shmring_mpr_init(&r), 0);
	for (int n = 0; n < len; n++) {
		assert_int_equal(shmring_mpr_parse(&r, buf, (uint32_t)n), -EBADMSG);
		assert_int_equal(r.root.type, MSGPACK_OBJECT_NIL);
	}
	buf[len] = 0xc0; /* one trailing nil */
	assert_int_equal(shmring_mpr_parse(&r, buf, (uint32_t)len + 1), -EBADMSG);
	assert_int_equal(shmring_mpr_parse(&r, buf, (uint32_t)len), 0);
	/* reserved byte 0xc1 is never valid */
	assert_int_equal(shmring_mpr_parse(&r, "\xc1", 1), -EBADMSG);
	shmring_mpr_destroy(&r);
}

/* Five bytes claiming 4 billion elements must be refused without asking
 * the allocator for ~100 GB. */
static void test_hostile_counts(void **state)
{
	(void)state;
	struct shmring_mpr r;
	assert_int_equal(shmring_mpr_init(&r), 0);
	assert_int_equal(shmring_mpr_parse(&r, "\xdd\xff\xff\xff\xff", 5), -EBADMSG);
	assert_int_equal(shmring_mpr_parse(&r, "\xdf\xff\xff\xff\xff", 5), -EBADMSG);
	assert_int_equal(shmring_mpr_parse(&r, "\x91\xdd\xff\xff\xff\xff", 6), -EBADMSG);
	assert_int_equal(shmring_mpr_parse(&r, "\xdc\xff\xff\xc0\xc0", 5), -EBADMSG);
	assert_int_equal(shmring_mpr_parse(&r,
	                                   "\xdb\xff\xff\xff\xff"
	                                   "abc",
	                                   8),
	                 -EBADMSG);
	assert_int_equal(shmring_mpr_parse(&r,
	                                   "\xc6\xff\xff\xff\xff"
	                                   "abc",
	                                   8),
	                 -EBADMSG);
	assert_int_equal(shmring_mpr_parse(&r,
	                                   "\xc9\xff\xff\xff\xff\x01"
	                                   "abc",
	                                   9),
	                 -EBADMSG);
	/* the largest legal count for the bytes given still parses */
	assert_int_equal(shmring_mpr_parse(&r, "\x93\xc0\xc0\xc0", 4), 0);
	assert_int_equal(r.root.via.array.size, 3);
	assert_int_equal(shmring_mpr_parse(&r, "\xdc\x00\x02\xc0\xc0", 5), 0);
	shmring_mpr_destroy(&r);
}

/* Nesting deeper than msgpack-c's stack is -EBADMSG (as mp.h says), not a
 * crash; nesting within it parses. */
static void test_deep_nesting(void **state)
{
	(void)state;
	uint8_t buf[4096];
	struct shmring_mpr r;
	assert_int_equal(shmring_mpr_init(&r), 0);
	for (int depth = 1; depth < 2000; depth += depth < 40 ? 1 : 97) {
		for (int i = 0; i < depth; i++)
			buf[i] = 0x91; /* [ */
		buf[depth] = 0xc0;
		int rc = shmring_mpr_parse(&r, buf, (uint32_t)depth + 1);
		if (depth <= 32)
			assert_int_equal(rc, 0);
		else
			assert_int_equal(rc, -EBADMSG);
	}
	/* empty containers at the limit are nesting too */
	memset(buf, 0x91, 32);
	buf[32] = 0x90;
	assert_int_equal(shmring_mpr_parse(&r, buf, 33), -EBADMSG);
	buf[32] = 0x80;
	assert_int_equal(shmring_mpr_parse(&r, buf, 33), -EBADMSG);
	shmring_mpr_destroy(&r);
}

/* msgpack written straight into a claimed record, read back from the ring
 * with strings pointing into the ring. */
static void test_in_the_ring(void **state)
{
	struct fx *f = *state;
	struct shmring_claim cl;
	assert_int_equal(shmring_claim(f->cl, 512, &cl), 0);
	struct shmring_mpw w;
	shmring_mpw_init(&w, cl.payload, cl.cap);
	shmring_mpw_map(&w, 1);
	shmring_mpw_cstr(&w, "path");
	shmring_mpw_cstr(&w, "/jwt");
	int len = shmring_mpw_finish(&w);
	assert_true(len > 0);
	assert_int_equal(shmring_commit(f->cl, &cl, (uint32_t)len, SHMRING_REC_ACCESS, 0, 9), 0);
	shmring_publish(f->cl);
	struct shmring_rec rec;
	assert_int_equal(shmring_peek(f->sv, &rec), 0);
	struct shmring_mpr r;
	assert_int_equal(shmring_mpr_init(&r), 0);
	assert_int_equal(shmring_mpr_parse(&r, rec.payload, rec.len), 0);
	const char *s;
	uint32_t slen;
	assert_int_equal(shmring_mp_get_str(&r.root, "path", &s, &slen), 0);
	assert_int_equal(slen, 4);
	assert_memory_equal(s, "/jwt", 4);
	assert_true((const uint8_t *)s >= rec.payload &&
	            (const uint8_t *)s < rec.payload + rec.len);
	shmring_mpr_destroy(&r);
	shmring_release(f->sv);
}

static int is_str(const msgpack_object *o, const char *want)
{
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(want) &&
	       memcmp(o->via.str.ptr, want, o->via.str.size) == 0;
}

/* A pair as OpenResty hands it out; v NULL: an arg without "=". */
static struct shmring_client_ngx_pair pair(const char *k, const char *v)
{
	struct shmring_client_ngx_pair p = {{(int)strlen(k), k}, {-1, NULL}};
	if (v) {
		p.value.len = (int)strlen(v);
		p.value.data = v;
	}
	return p;
}

/* The snapshot's "*" headers / query args from OpenResty's pair array
 * (shmring_client_put_pairs): what the Lua table of get_headers() /
 * get_uri_args() would encode to. A name seen once maps to its value, an
 * arg without "=" to true; a repeated name (anywhere in the array) to the
 * array of its values in order, a valueless arg there as "true"; an empty
 * value stays an empty string. */
static void test_ngx_pairs(void **state)
{
	(void)state;
	const struct shmring_client_ngx_pair p[] = {
	    pair("host", "example"), pair("apikey", "one"),   pair("flag", NULL),
	    pair("apikey", "two"),   pair("empty", ""),       pair("multi", NULL),
	    pair("multi", "x"),      pair("apikey", "three"),
	};
	uint8_t buf[512];
	struct shmring_mpw w;
	shmring_mpw_init(&w, buf, sizeof(buf));
	shmring_client_put_pairs(&w, p, sizeof(p) / sizeof(p[0]));
	int len = shmring_mpw_finish(&w);
	assert_true(len > 0);
	struct shmring_mpr r;
	assert_int_equal(shmring_mpr_init(&r), 0);
	assert_int_equal(shmring_mpr_parse(&r, buf, (uint32_t)len), 0);
	assert_int_equal(r.root.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(r.root.via.map.size, 5); /* host apikey flag empty multi */
	assert_true(is_str(shmring_mp_get(&r.root, "host"), "example"));
	assert_true(is_str(shmring_mp_get(&r.root, "empty"), ""));
	const msgpack_object *o = shmring_mp_get(&r.root, "flag");
	assert_true(o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean);
	o = shmring_mp_get(&r.root, "apikey");
	assert_true(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 3);
	assert_true(is_str(&o->via.array.ptr[0], "one"));
	assert_true(is_str(&o->via.array.ptr[1], "two"));
	assert_true(is_str(&o->via.array.ptr[2], "three"));
	o = shmring_mp_get(&r.root, "multi");
	assert_true(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2);
	assert_true(is_str(&o->via.array.ptr[0], "true"));
	assert_true(is_str(&o->via.array.ptr[1], "x"));

	/* none: an empty map */
	shmring_mpw_init(&w, buf, sizeof(buf));
	shmring_client_put_pairs(&w, NULL, 0);
	len = shmring_mpw_finish(&w);
	assert_int_equal(shmring_mpr_parse(&r, buf, (uint32_t)len), 0);
	assert_true(r.root.type == MSGPACK_OBJECT_MAP && r.root.via.map.size == 0);
	shmring_mpr_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_and_read_back),
	    cmocka_unit_test(test_overflow),
	    cmocka_unit_test(test_truncated_and_trailing),
	    cmocka_unit_test(test_hostile_counts),
	    cmocka_unit_test(test_deep_nesting),
	    cmocka_unit_test(test_ngx_pairs),
	    cmocka_unit_test_setup_teardown(test_in_the_ring, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
