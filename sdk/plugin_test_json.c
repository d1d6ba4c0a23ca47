/* SPDX-License-Identifier: MIT */
/* The harness's JSON <-> msgpack conversions (harness.h). Apart from
 * harness.c so that tests which run a plugin linked in (tests/jwt) can use
 * them without the dlopen runner and its shmringd__log. */
#include "shmring/plugin_test.h"

#include "common/msgpack_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *why)
{
	fprintf(stderr, "shmring_test: msgpack -> JSON: %s\n", why);
	abort();
}

static void pack_json(msgpack_packer *pk, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		msgpack_pack_map(pk, (uint32_t)json_object_size(j));
		json_object_foreach((json_t *)j, k, v)
		{
			msgpack_pack_str_with_body(pk, k, strlen(k));
			pack_json(pk, v);
		}
		break;
	}
	case JSON_ARRAY:
		msgpack_pack_array(pk, (uint32_t)json_array_size(j));
		for (size_t i = 0; i < json_array_size(j); i++)
			pack_json(pk, json_array_get(j, i));
		break;
	case JSON_STRING:
		msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		break;
	case JSON_NULL:
		msgpack_pack_nil(pk);
		break;
	}
}

void shmring_test_pack_json(msgpack_sbuffer *sb, const json_t *j)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	pack_json(&pk, j);
}

json_t *shmring_test_msgpack_json(const msgpack_object *o)
{
	json_t *j = shmring__msgpack_json(o, 0);
	if (!j)
		die("not JSON-like (binary, extension, non-string map key, integer past "
		    "INT64_MAX or nesting deeper than 32)");
	return j;
}

int shmring_test_json_msgpack(const char *text, msgpack_sbuffer *sb, msgpack_unpacked *u, char *err,
                              size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!j) {
		snprintf(err, errlen, "%s", je.text);
		return -1;
	}
	shmring_test_pack_json(sb, j);
	json_decref(j);
	if (msgpack_unpack_next(u, sb->data, sb->size, NULL) != MSGPACK_UNPACK_SUCCESS) {
		snprintf(err, errlen, "msgpack of it does not decode");
		return -1;
	}
	return 0;
}
