/* SPDX-License-Identifier: MIT */
/*
 * msgpack -> jansson, written once: the built-in plugins read JSON-like
 * config values with it (shmring_pc_to_json, plugins/common/conf.c) and the
 * plugin test library decodes replies with it (shmring_test_msgpack_json,
 * sdk/plugin_test_json.c). A static inline in a header because the two
 * users end up in different binaries (each plugin .so, the host) that
 * export nothing to each other.
 *
 * The log plugin's JSON writer (plugins/log/log.c) is not this: it writes
 * text straight into a log line and makes the best of any value.
 */
#ifndef SHMRING_MSGPACK_JSON_H
#define SHMRING_MSGPACK_JSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>

/* Deeper values are not JSON-like (a bound on the recursion). */
#define SHMRING_MSGPACK_JSON_MAX_DEPTH 32

/* A new jansson value with the content of o (depth: 0 for the top value),
 * or NULL when o is not JSON-like: binary, an extension, a map key that is
 * not a string, an integer past INT64_MAX, nesting deeper than
 * SHMRING_MSGPACK_JSON_MAX_DEPTH; or out of memory. An empty map becomes an
 * empty object. The caller owns the reference. */
static inline json_t *shmring__msgpack_json(const msgpack_object *o, int depth)
{
	if (depth > SHMRING_MSGPACK_JSON_MAX_DEPTH)
		return NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return NULL;
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY: {
		json_t *a = json_array();
		for (uint32_t i = 0; a && i < o->via.array.size; i++) {
			json_t *x = shmring__msgpack_json(&o->via.array.ptr[i], depth + 1);
			if (!x || json_array_append_new(a, x) < 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		json_t *m = json_object();
		for (uint32_t i = 0; m && i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			json_t *x;
			if (k->type != MSGPACK_OBJECT_STR ||
			    !(x = shmring__msgpack_json(&o->via.map.ptr[i].val, depth + 1)) ||
			    json_object_setn_new_nocheck(m, k->via.str.ptr, k->via.str.size, x) <
			        0) {
				json_decref(m);
				return NULL;
			}
		}
		return m;
	}
	default:
		return NULL;
	}
}

#endif
