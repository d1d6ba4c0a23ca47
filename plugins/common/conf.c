/* SPDX-License-Identifier: MIT */
/* Config readers over the CONF map, and msgpack -> jansson for JSON-like
 * values (msgpack_json.h). */
#include "shmring_pc.h"

#include "msgpack_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_eq(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       (n == 0 || memcmp(k->via.str.ptr, s, n) == 0);
}

/* An empty Lua table is encoded as an empty map: accept it where an array
 * or a map is expected. */
static int is_empty_table(const msgpack_object *o)
{
	return (o->type == MSGPACK_OBJECT_MAP && o->via.map.size == 0) ||
	       (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 0);
}

int shmring_pc_check_fields(const msgpack_object *cfg, const char *plugin, const char *const *known,
                            char *err, size_t errlen)
{
	if (!cfg || cfg->type == MSGPACK_OBJECT_NIL || is_empty_table(cfg))
		return 0;
	if (cfg->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "%s: config must be a map", plugin);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < cfg->via.map.size; i++) {
		const msgpack_object *k = &cfg->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR) {
			snprintf(err, errlen, "%s: config keys must be strings", plugin);
			return -EINVAL;
		}
		int found = 0;
		for (const char *const *p = known; *p && !found; p++)
			found = key_eq(k, *p);
		if (!found) {
			snprintf(err, errlen, "%s: unknown config field '%.*s'", plugin,
			         (int)(k->via.str.size > 64 ? 64 : k->via.str.size),
			         k->via.str.ptr);
			return -EINVAL;
		}
	}
	return 0;
}

const msgpack_object *shmring_pc_field(const msgpack_object *cfg, const char *key)
{
	if (!cfg || cfg->type != MSGPACK_OBJECT_MAP)
		return NULL;
	const msgpack_object *v = shmring_map_get(cfg, shmring_cstr(key));
	return v && v->type != MSGPACK_OBJECT_NIL ? v : NULL;
}

int shmring_pc_bool(const msgpack_object *cfg, const char *plugin, const char *key, bool def,
                    bool *out, char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, key);
	*out = def;
	if (!v)
		return 0;
	if (v->type != MSGPACK_OBJECT_BOOLEAN) {
		snprintf(err, errlen, "%s: config.%s must be a boolean", plugin, key);
		return -EINVAL;
	}
	*out = v->via.boolean;
	return 0;
}

int shmring_pc_int(const msgpack_object *cfg, const char *plugin, const char *key, int64_t def,
                   int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, key);
	*out = def;
	if (!v)
		return 0;
	int64_t x;
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
		x = (int64_t)v->via.u64;
	else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		x = v->via.i64;
	else
		goto bad;
	if (x < min || x > max)
		goto bad;
	*out = x;
	return 0;
bad:
	snprintf(err, errlen, "%s: config.%s must be an integer between %lld and %lld", plugin, key,
	         (long long)min, (long long)max);
	return -EINVAL;
}

double shmring_pc_number(const msgpack_object *v)
{
	if (!v)
		return NAN;
	switch (v->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return (double)v->via.u64;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return (double)v->via.i64;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return v->via.f64;
	default:
		return NAN;
	}
}

char *shmring_pc_strndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		if (n)
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

int shmring_pc_strdup(const msgpack_object *cfg, const char *plugin, const char *key,
                      const char *def, bool nonempty, char **out, char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, key);
	*out = NULL;
	if (!v) {
		if (def && !(*out = strdup(def)))
			goto nomem;
		return 0;
	}
	if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > SHMRING_PC_MAX_STR ||
	    (nonempty && v->via.str.size == 0) ||
	    (v->via.str.size && memchr(v->via.str.ptr, '\0', v->via.str.size))) {
		snprintf(err, errlen, "%s: config.%s must be a %sstring of at most %d bytes",
		         plugin, key, nonempty ? "non-empty " : "", SHMRING_PC_MAX_STR);
		return -EINVAL;
	}
	if (!(*out = shmring_pc_strndup(v->via.str.ptr, v->via.str.size)))
		goto nomem;
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory", plugin);
	return -ENOMEM;
}

int shmring_pc_strv(const msgpack_object *val, const char *plugin, const char *what,
                    const char *const *def, struct shmring_pc_strv *out, char *err, size_t errlen)
{
	out->n = 0;
	out->v = NULL;
	size_t n = 0, bytes = 0;
	if (val && val->type == MSGPACK_OBJECT_NIL)
		val = NULL;
	if (val && is_empty_table(val)) {
		n = 0;
	} else if (val) {
		if (val->type != MSGPACK_OBJECT_ARRAY) {
			snprintf(err, errlen, "%s: %s must be an array of strings", plugin, what);
			return -EINVAL;
		}
		n = val->via.array.size;
		if (n > SHMRING_PC_MAX_ARRAY) {
			snprintf(err, errlen, "%s: %s has more than %d entries", plugin, what,
			         SHMRING_PC_MAX_ARRAY);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			const msgpack_object *e = &val->via.array.ptr[i];
			if (e->type != MSGPACK_OBJECT_STR || e->via.str.size > SHMRING_PC_MAX_STR ||
			    (e->via.str.size && memchr(e->via.str.ptr, '\0', e->via.str.size))) {
				snprintf(err, errlen,
				         "%s: %s[%zu] must be a string of at most %d bytes", plugin,
				         what, i, SHMRING_PC_MAX_STR);
				return -EINVAL;
			}
			bytes += e->via.str.size + 1;
		}
	} else if (def) {
		for (; def[n]; n++)
			bytes += strlen(def[n]) + 1;
	}
	if (n == 0)
		return 0;
	char *mem = malloc(n * sizeof(struct shmring_str) + bytes);
	if (!mem) {
		snprintf(err, errlen, "%s: out of memory", plugin);
		return -ENOMEM;
	}
	struct shmring_str *v = (struct shmring_str *)mem;
	char *p = mem + n * sizeof(struct shmring_str);
	for (size_t i = 0; i < n; i++) {
		const char *s;
		size_t len;
		if (val) {
			s = val->via.array.ptr[i].via.str.ptr;
			len = val->via.array.ptr[i].via.str.size;
		} else {
			s = def[i];
			len = strlen(s);
		}
		if (len)
			memcpy(p, s, len);
		p[len] = '\0';
		v[i] = (struct shmring_str){p, len};
		p += len + 1;
	}
	out->v = v;
	out->n = n;
	return 0;
}

void shmring_pc_strv_free(struct shmring_pc_strv *sv)
{
	free(sv->v); /* one allocation: the array and the strings */
	sv->v = NULL;
	sv->n = 0;
}

json_t *shmring_pc_to_json(const msgpack_object *o, const char *plugin, const char *what, char *err,
                           size_t errlen)
{
	json_t *j = shmring__msgpack_json(o, 0);
	if (!j)
		snprintf(
		    err, errlen,
		    "%s: %s holds a value that is not JSON-like (binary, extension, non-string "
		    "map key or nesting deeper than 32)",
		    plugin, what);
	return j;
}

void shmring_pc_lower(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = src[i];
		dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
}

int shmring_pc_str_eq_ci(struct shmring_str a, struct shmring_str b)
{
	if (a.len != b.len)
		return 0;
	for (size_t i = 0; i < a.len; i++) {
		char x = a.ptr[i], y = b.ptr[i];
		if (x >= 'A' && x <= 'Z')
			x = (char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

int shmring_pc_header_name_ok(struct shmring_str s)
{
	if (s.len == 0 || s.len > 256)
		return 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (!strchr("!#$%&'*+-.^_`|~", c) || c == '\0')
			return 0;
	}
	return 1;
}
