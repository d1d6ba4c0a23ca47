/* SPDX-License-Identifier: MIT */
/* The plugin host: configs through the plugin's declared schema (struct
 * shmring_field, shmring_plugin.h) before conf_new. The config is checked
 * and rewritten as a new map holding exactly the declared fields, in their
 * declared order, defaults filled in; conf_new gets that map. */
#include "daemon.h"
#include "shmring/plugin_test.h" /* shmring_test_pack_json: defaults are JSON */

#include <errno.h>
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fill {
	const char *plugin;
	msgpack_sbuffer *sb;
	msgpack_packer pk;
	char *err;
	size_t errlen;
};

static int refuse(struct fill *f, const char *path, const char *what)
{
	snprintf(f->err, f->errlen, "%s: config.%s %s", f->plugin, path, what);
	return -EINVAL;
}

/* A refusal in Kong's words, after the field: "config.second: value must
 * be greater than 0". */
static int refuse_kong(struct fill *f, const char *path, const char *what)
{
	snprintf(f->err, f->errlen, "%s: config.%s: %s", f->plugin, path, what);
	return -EINVAL;
}

static bool all_of(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && (!s[i] || !strchr(extra, s[i])))
			return false;
	return n > 0;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

/* "...:123" at the end, and no other ':' (an IPv6 address is not a port). */
static bool ends_in_port(const char *s, size_t n)
{
	const char *c = memchr(s, ':', n);
	size_t after = c ? n - (size_t)(c + 1 - s) : 0;
	return c && !memchr(c + 1, ':', after) && digits(c + 1, after);
}

/* [v6] or v6 without the brackets: hex digits and ':' (with at least one ':'
 * when colon_needed). */
static bool ipv6_like(const char *s, size_t n, bool colon_needed)
{
	if (n && s[0] == '[')
		s++, n--;
	if (n && s[n - 1] == ']')
		n--;
	bool colon = false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ':')
			colon = true;
		else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return n > 0 && (colon || !colon_needed);
}

static bool ipv4_like(const char *s, size_t n)
{
	int dots = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.' && i > 0 && s[i - 1] != '.')
			dots++;
		else if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return dots == 3 && n && s[n - 1] != '.';
}

/* The rule of Kong's typedef td for the string s (what its custom_validator,
 * starts_with and match_none check), with Kong's message; NULL: allowed. */
static const char *typedef_problem(uint32_t td, const char *s, size_t n, char *buf, size_t len)
{
	int w = n > 64 ? 64 : (int)n;
	switch (td) {
	case SHMRING_TYPEDEF_HEADER_NAME:
		if (all_of(s, n, "_-"))
			return NULL;
		snprintf(buf, len,
		         "bad header name '%.*s', allowed characters are A-Z, a-z, 0-9, '_', and "
		         "'-'",
		         w, s);
		return buf;
	case SHMRING_TYPEDEF_PATH:
		if (!n || s[0] != '/')
			return "should start with: /";
		for (size_t i = 0; i + 1 < n; i++)
			if (s[i] == '/' && s[i + 1] == '/')
				return "must not have empty segments";
		if (!all_of(s, n, ".-_~/%:@!$&'()*+,;=")) {
			snprintf(buf, len,
			         "invalid path: '%.*s' (characters outside of the reserved list of "
			         "RFC 3986 found)",
			         w, s);
			return buf;
		}
		for (size_t i = 0; i < n; i++) {
			if (s[i] != '%')
				continue;
			if (i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
			    isxdigit((unsigned char)s[i + 2])) {
				i += 2;
				continue;
			}
			snprintf(buf, len, "invalid url-encoded value: '%.*s'",
			         (int)(n - i < 3 ? n - i : 3), s + i);
			return buf;
		}
		return NULL;
	case SHMRING_TYPEDEF_HOST:
		if (ends_in_port(s, n))
			return "must not have a port";
		if (all_of(s, n, ".-_") || ipv6_like(s, n, false))
			return NULL;
		snprintf(buf, len, "invalid value: %.*s", w, s);
		return buf;
	case SHMRING_TYPEDEF_SNI:
		if (ipv4_like(s, n) || ipv6_like(s, n, true))
			return "must not be an IP";
		if (ends_in_port(s, n))
			return "must not have a port";
		if (all_of(s, n, ".-_"))
			return NULL;
		snprintf(buf, len, "invalid value: %.*s", w, s);
		return buf;
	case SHMRING_TYPEDEF_URL: {
		size_t i = 0;
		while (i < n && (isalnum((unsigned char)s[i]) || (s[i] && strchr("+.-", s[i]))))
			i++;
		if (!i || !isalpha((unsigned char)s[0]) || n - i < 3 || memcmp(s + i, "://", 3))
			return "missing scheme in url";
		const char *a = s + i + 3, *end = s + n;
		size_t an = 0;
		while (a + an < end && !strchr("/?#", a[an]))
			an++;
		for (size_t k = an; k-- > 0;) /* user info ends at the last '@' */
			if (a[k] == '@') {
				a += k + 1, an -= k + 1;
				break;
			}
		const char *colon = memchr(a, ':', an);
		size_t after = colon ? an - (size_t)(colon + 1 - a) : 0;
		if (colon && (!after || digits(colon + 1, after)))
			an = (size_t)(colon - a);
		return an ? NULL : "missing host in url";
	}
	default:
		return NULL;
	}
}

static bool str_is(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       !memcmp(o->via.str.ptr, s, n);
}

/* Lua's empty table arrives as an empty map or an empty array. */
static bool empty_table(const msgpack_object *o)
{
	return (o->type == MSGPACK_OBJECT_MAP && o->via.map.size == 0) ||
	       (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 0);
}

static int fill_record(struct fill *f, const struct shmring_field *fields, const msgpack_object *in,
                       const char *path);

static int pack_default(struct fill *f, const struct shmring_field *d, const char *path)
{
	json_error_t je;
	json_t *j = json_loads(d->def, JSON_DECODE_ANY, &je);
	if (!j)
		return refuse(f, path, "has a default that is not JSON (a plugin bug)");
	shmring_test_pack_json(f->sb, j);
	json_decref(j);
	return 0;
}

static int check_len(struct fill *f, const struct shmring_field *d, size_t n, const char *path,
                     const char *unit)
{
	char what[128];
	if (d->len_min && n < d->len_min) {
		if (d->len_min == 1)
			return refuse(f, path, "must not be empty");
		snprintf(what, sizeof(what), "must have at least %u %s", d->len_min, unit);
		return refuse(f, path, what);
	}
	if (d->len_max && n > d->len_max) {
		snprintf(what, sizeof(what), "must have at most %u %s", d->len_max, unit);
		return refuse(f, path, what);
	}
	return 0;
}

static int check_between(struct fill *f, const struct shmring_field *d, double v, const char *path)
{
	char what[128];
	if ((d->flags & SHMRING_FIELD_GT) && !(v > d->gt)) {
		snprintf(what, sizeof(what), "value must be greater than %.17g", d->gt);
		return refuse_kong(f, path, what);
	}
	if ((d->flags & SHMRING_FIELD_BETWEEN_REAL) && !(v >= d->real_min && v <= d->real_max)) {
		snprintf(what, sizeof(what), "must be between %g and %g", d->real_min, d->real_max);
		return refuse(f, path, what);
	}
	if (d->kong_typedef == SHMRING_TYPEDEF_PORT && !(v >= 0 && v <= 65535))
		return refuse_kong(f, path, "value should be between 0 and 65535");
	if (!(d->flags & SHMRING_FIELD_BETWEEN) || (v >= (double)d->min && v <= (double)d->max))
		return 0;
	snprintf(what, sizeof(what), "must be between %lld and %lld", (long long)d->min,
	         (long long)d->max);
	return refuse(f, path, what);
}

/* v (a string) among d's one_of. */
static int check_one_of(struct fill *f, const struct shmring_field *d, const msgpack_object *v,
                        const char *path)
{
	for (const char *const *o = d->one_of; *o; o++)
		if (str_is(v, *o))
			return 0;
	char what[512];
	size_t n = (size_t)snprintf(what, sizeof(what), "must be one of");
	for (const char *const *o = d->one_of; *o && n < sizeof(what); o++)
		n += (size_t)snprintf(what + n, sizeof(what) - n, "%s \"%s\"",
		                      o == d->one_of ? "" : ",", *o);
	if (n < sizeof(what))
		snprintf(what + n, sizeof(what) - n, " (got \"%.*s\")",
		         v->via.str.size > 64 ? 64 : (int)v->via.str.size, v->via.str.ptr);
	return refuse(f, path, what);
}

/* None of d's match_none patterns in v (a string): Kong's message. */
static int check_match_none(struct fill *f, const struct shmring_field *d, const msgpack_object *v,
                            const char *path)
{
	for (const struct shmring_match_none *m = d->match_none; m && m->pattern; m++) {
		int found = shmringd__lua_match(m->pattern, v->via.str.ptr, v->via.str.size);
		if (found < 0)
			return refuse(f, path,
			              "has a match_none pattern shmringd cannot run (a "
			              "plugin bug)");
		if (found)
			return refuse_kong(f, path, m->err);
	}
	return 0;
}

/* A set keeps the first of equal values (Kong's sets). */
static bool seen_before(const msgpack_object *e, uint32_t i)
{
	for (uint32_t j = 0; j < i; j++)
		if (msgpack_object_equal(e[j], e[i]))
			return true;
	return false;
}

/* Check v against d and pack it. */
static int pack_value(struct fill *f, const struct shmring_field *d, const msgpack_object *v,
                      const char *path)
{
	switch (d->type) {
	case SHMRING_FIELD_STRING: {
		if (v->type != MSGPACK_OBJECT_STR)
			return refuse(f, path, "must be a string");
		/* Kong's order: one_of, then the length (a string is never empty
		 * unless the field says len_min = 0), then the patterns */
		int rc = 0;
		if (d->one_of && (rc = check_one_of(f, d, v, path)) < 0)
			return rc;
		if (!v->via.str.size && !(d->flags & SHMRING_FIELD_EMPTY_OK))
			return refuse_kong(f, path, "length must be at least 1");
		if ((rc = check_len(f, d, v->via.str.size, path, "characters")) < 0)
			return rc;
		if ((rc = check_match_none(f, d, v, path)) < 0)
			return rc;
		if (d->match) {
			int m = shmringd__lua_match(d->match, v->via.str.ptr, v->via.str.size);
			char what[128];
			if (m < 0)
				return refuse(f, path,
				              "has a match pattern shmringd cannot run (a "
				              "plugin bug)");
			snprintf(what, sizeof(what), "invalid value: %.*s",
			         v->via.str.size > 64 ? 64 : (int)v->via.str.size, v->via.str.ptr);
			if (!m)
				return refuse_kong(f, path, what);
		}
		char buf[256];
		const char *why = typedef_problem(d->kong_typedef, v->via.str.ptr, v->via.str.size,
		                                  buf, sizeof(buf));
		if (why)
			return refuse_kong(f, path, why);
		return msgpack_pack_object(&f->pk, *v);
	}
	case SHMRING_FIELD_INTEGER: {
		int64_t i;
		char num[32];
		if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
			i = (int64_t)v->via.u64;
		else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			i = v->via.i64;
		else if (v->type == MSGPACK_OBJECT_FLOAT64 && v->via.f64 == floor(v->via.f64) &&
		         fabs(v->via.f64) < 9e15) /* Lua numbers are doubles */
			i = (int64_t)v->via.f64;
		else
			return refuse(f, path, "must be an integer");
		int rc = check_between(f, d, (double)i, path);
		snprintf(num, sizeof(num), "%lld", (long long)i);
		msgpack_object as_text = {.type = MSGPACK_OBJECT_STR,
		                          .via.str = {.size = (uint32_t)strlen(num), .ptr = num}};
		if (rc == 0 && d->one_of) /* an integer's one_of: its values in decimal */
			rc = check_one_of(f, d, &as_text, path);
		return rc < 0 ? rc : msgpack_pack_int64(&f->pk, i);
	}
	case SHMRING_FIELD_NUMBER: {
		double x;
		if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			x = (double)v->via.u64;
		else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			x = (double)v->via.i64;
		else if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
			x = v->via.f64;
		else
			return refuse(f, path, "must be a number");
		int rc = check_between(f, d, x, path);
		return rc < 0 ? rc : msgpack_pack_object(&f->pk, *v);
	}
	case SHMRING_FIELD_BOOLEAN:
		if (v->type != MSGPACK_OBJECT_BOOLEAN)
			return refuse(f, path, "must be a boolean");
		return msgpack_pack_object(&f->pk, *v);
	case SHMRING_FIELD_ARRAY:
	case SHMRING_FIELD_SET: {
		if (empty_table(v)) {
			int rc = check_len(f, d, 0, path, "elements");
			return rc < 0 ? rc : msgpack_pack_array(&f->pk, 0);
		}
		if (v->type != MSGPACK_OBJECT_ARRAY)
			return refuse(f, path, "must be an array");
		int rc = check_len(f, d, v->via.array.size, path, "elements");
		if (rc < 0)
			return rc;
		const msgpack_object *e = v->via.array.ptr;
		uint32_t n = v->via.array.size, kept = 0;
		for (uint32_t i = 0; i < n; i++)
			kept += !(d->type == SHMRING_FIELD_SET && seen_before(e, i));
		msgpack_pack_array(&f->pk, kept);
		for (uint32_t i = 0; i < n; i++) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s[%u]", path, i + 1);
			if (d->type == SHMRING_FIELD_SET && seen_before(e, i))
				continue;
			if ((rc = pack_value(f, d->elements, &e[i], sub)) < 0)
				return rc;
		}
		return 0;
	}
	case SHMRING_FIELD_MAP: {
		if (empty_table(v))
			return msgpack_pack_map(&f->pk, 0);
		if (v->type != MSGPACK_OBJECT_MAP)
			return refuse(f, path, "must be a map");
		msgpack_pack_map(&f->pk, v->via.map.size);
		for (uint32_t i = 0; i < v->via.map.size; i++) {
			const msgpack_object *k = &v->via.map.ptr[i].key;
			char sub[256];
			int rc = d->keys ? pack_value(f, d->keys, k, path)
			                 : msgpack_pack_object(&f->pk, *k);
			if (rc < 0)
				return rc;
			snprintf(sub, sizeof(sub), "%s.%.*s", path,
			         k->type == MSGPACK_OBJECT_STR ? (int)k->via.str.size : 1,
			         k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "?");
			if ((rc = d->elements
			              ? pack_value(f, d->elements, &v->via.map.ptr[i].val, sub)
			              : msgpack_pack_object(&f->pk, v->via.map.ptr[i].val)) < 0)
				return rc;
		}
		return 0;
	}
	case SHMRING_FIELD_RECORD:
		if (!empty_table(v) && v->type != MSGPACK_OBJECT_MAP)
			return refuse(f, path, "must be a record (a map)");
		return fill_record(f, d->fields, v->type == MSGPACK_OBJECT_MAP ? v : NULL, path);
	default:
		return refuse(f, path, "has an unknown schema type (a plugin bug)");
	}
}

static const msgpack_object *lookup(const msgpack_object *in, const char *name)
{
	for (uint32_t i = 0; in && i < in->via.map.size; i++)
		if (str_is(&in->via.map.ptr[i].key, name))
			return in->via.map.ptr[i].val.type == MSGPACK_OBJECT_NIL
			           ? NULL
			           : &in->via.map.ptr[i].val;
	return NULL;
}

/* A record field with no value still gets a map when it has a default or is
 * required: its own fields' defaults. */
static bool record_filled(const struct shmring_field *d)
{
	return d->type == SHMRING_FIELD_RECORD && (d->def || (d->flags & SHMRING_FIELD_REQUIRED));
}

static int fill_record(struct fill *f, const struct shmring_field *fields, const msgpack_object *in,
                       const char *path)
{
	char sub[256];
	for (uint32_t i = 0; in && i < in->via.map.size; i++) {
		const msgpack_object *k = &in->via.map.ptr[i].key;
		const struct shmring_field *d = fields;
		while (d && d->name && !str_is(k, d->name))
			d++;
		if (!d || !d->name) {
			int n = k->type == MSGPACK_OBJECT_STR ? (int)k->via.str.size : 1;
			snprintf(f->err, f->errlen, "%s: unknown config field '%s%s%.*s'",
			         f->plugin, path, path[0] ? "." : "", n > 64 ? 64 : n,
			         k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : "?");
			return -EINVAL;
		}
	}
	uint32_t n = 0;
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		if ((d->flags & SHMRING_FIELD_GATEWAY) || d->shorthand_for)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", d->name);
		if (lookup(in, d->name) || d->def || record_filled(d))
			n++;
		else if (d->flags & SHMRING_FIELD_REQUIRED)
			return refuse(f, sub, "is required");
	}
	msgpack_pack_map(&f->pk, n);
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		if ((d->flags & SHMRING_FIELD_GATEWAY) || d->shorthand_for)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", d->name);
		const msgpack_object *v = lookup(in, d->name);
		int rc = 0;
		if (!v && !d->def && !record_filled(d))
			continue;
		msgpack_pack_str_with_body(&f->pk, d->name, strlen(d->name));
		if (v)
			rc = pack_value(f, d, v, sub);
		else if (d->type == SHMRING_FIELD_RECORD)
			rc = fill_record(f, d->fields, NULL, sub);
		else
			rc = pack_default(f, d, sub);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- shorthands: older spellings moved to their place first ---- */

struct moved {
	const char *rec; /* the record it moves into, NULL: the config itself */
	size_t rec_len;
	const char *key; /* its name there */
	const msgpack_object *v;
};

static bool key_is(const msgpack_object *k, const char *s, size_t n)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       !memcmp(k->via.str.ptr, s, n);
}

static bool is_shorthand(const struct shmring_field *fields, const msgpack_object *k)
{
	for (const struct shmring_field *d = fields; d && d->name; d++)
		if (d->shorthand_for && str_is(k, d->name))
			return true;
	return false;
}

/* The moved values that go into record rec (the map val, or a new one). */
static void pack_merged(msgpack_packer *pk, const msgpack_object *val, const struct moved *mv,
                        int n, const char *rec, size_t rec_len)
{
	uint32_t size = val && val->type == MSGPACK_OBJECT_MAP ? val->via.map.size : 0;
	for (int i = 0; i < n; i++)
		size += mv[i].rec && mv[i].rec_len == rec_len && !memcmp(mv[i].rec, rec, rec_len);
	msgpack_pack_map(pk, size);
	for (uint32_t i = 0; val && val->type == MSGPACK_OBJECT_MAP && i < val->via.map.size; i++) {
		msgpack_pack_object(pk, val->via.map.ptr[i].key);
		msgpack_pack_object(pk, val->via.map.ptr[i].val);
	}
	for (int i = 0; i < n; i++) {
		if (!mv[i].rec || mv[i].rec_len != rec_len || memcmp(mv[i].rec, rec, rec_len))
			continue;
		msgpack_pack_str_with_body(pk, mv[i].key, strlen(mv[i].key));
		msgpack_pack_object(pk, *mv[i].v);
	}
}

static const msgpack_object *at_path(const msgpack_object *cfg, const char *dotted);

/* A scalar as Lua's tostring writes it, in buf. */
static const char *lua_tostring(const msgpack_object *v, char *buf, size_t len)
{
	switch (v->type) {
	case MSGPACK_OBJECT_STR:
		snprintf(buf, len, "%.*s", v->via.str.size > 64 ? 64 : (int)v->via.str.size,
		         v->via.str.ptr);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		snprintf(buf, len, "%llu", (unsigned long long)v->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		snprintf(buf, len, "%lld", (long long)v->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		snprintf(buf, len, "%.14g", v->via.f64);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		snprintf(buf, len, "%s", v->via.boolean ? "true" : "false");
		break;
	default:
		snprintf(buf, len, "table");
	}
	return buf;
}

/* The config with every shorthand given moved to its place, packed into sb;
 * 0 (nothing packed when none is given) or -EINVAL when a value is given
 * under both names and they differ (Kong's rule; when they agree, the
 * shorthand is left for fill_record to drop). */
static int move_shorthands(struct fill *f, const struct shmring_field *fields,
                           const msgpack_object *in, msgpack_sbuffer *sb, bool *packed)
{
	struct moved mv[32];
	int n = 0;
	*packed = false;
	for (const struct shmring_field *d = fields; d && d->name && n < 32; d++) {
		const msgpack_object *v = d->shorthand_for ? lookup(in, d->name) : NULL;
		if (!v)
			continue;
		const msgpack_object *now = at_path(in, d->shorthand_for);
		if (now && now->type != MSGPACK_OBJECT_NIL) {
			/* Kong: both set is fine when they agree (the new field is
			 * kept), refused when they differ */
			if (msgpack_object_equal(*now, *v))
				continue;
			char a[80], b[80], what[256];
			snprintf(
			    what, sizeof(what),
			    "both deprecated and new field are used but their values mismatch: "
			    "%s = %s vs %s = %s",
			    d->name, lua_tostring(v, a, sizeof(a)), d->shorthand_for,
			    lua_tostring(now, b, sizeof(b)));
			return refuse_kong(f, d->name, what);
		}
		const char *dot = strrchr(d->shorthand_for, '.');
		mv[n++] = (struct moved){.rec = dot ? d->shorthand_for : NULL,
		                         .rec_len = dot ? (size_t)(dot - d->shorthand_for) : 0,
		                         .key = dot ? dot + 1 : d->shorthand_for,
		                         .v = v};
	}
	if (!n)
		return 0;
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	/* Records a value moves into that the config does not have yet. */
	const struct moved *fresh[32];
	int nfresh = 0, top = 0;
	for (int i = 0; i < n; i++) {
		bool have = false;
		for (int j = 0; j < nfresh && mv[i].rec; j++)
			have |= fresh[j]->rec_len == mv[i].rec_len &&
			        !memcmp(fresh[j]->rec, mv[i].rec, mv[i].rec_len);
		for (uint32_t k = 0; mv[i].rec && k < in->via.map.size; k++)
			have |= key_is(&in->via.map.ptr[k].key, mv[i].rec, mv[i].rec_len);
		if (!mv[i].rec)
			top++;
		else if (!have)
			fresh[nfresh++] = &mv[i];
	}
	uint32_t size = (uint32_t)(top + nfresh);
	for (uint32_t k = 0; k < in->via.map.size; k++)
		size += !is_shorthand(fields, &in->via.map.ptr[k].key);
	msgpack_pack_map(&pk, size);
	for (uint32_t k = 0; k < in->via.map.size; k++) {
		const msgpack_object *key = &in->via.map.ptr[k].key, *val = &in->via.map.ptr[k].val;
		if (is_shorthand(fields, key))
			continue;
		msgpack_pack_object(&pk, *key);
		bool into = false;
		for (int i = 0; i < n && key->type == MSGPACK_OBJECT_STR; i++)
			into |= mv[i].rec && key_is(key, mv[i].rec, mv[i].rec_len);
		/* A map, Lua's empty table or nil takes the moved values; anything
		 * else stays as it was, for the type check to refuse. */
		if (into && (val->type == MSGPACK_OBJECT_MAP || val->type == MSGPACK_OBJECT_NIL ||
		             empty_table(val)))
			pack_merged(&pk, val, mv, n, key->via.str.ptr, key->via.str.size);
		else
			msgpack_pack_object(&pk, *val);
	}
	for (int i = 0; i < nfresh; i++) {
		msgpack_pack_str_with_body(&pk, fresh[i]->rec, fresh[i]->rec_len);
		pack_merged(&pk, NULL, mv, n, fresh[i]->rec, fresh[i]->rec_len);
	}
	for (int i = 0; i < n; i++) {
		if (mv[i].rec)
			continue;
		msgpack_pack_str_with_body(&pk, mv[i].key, strlen(mv[i].key));
		msgpack_pack_object(&pk, *mv[i].v);
	}
	*packed = true;
	return 0;
}

/* ---- entity checks, on the filled config ---- */

/* The value at a dotted path ("redis.host") of the config; NULL if unset. */
static const msgpack_object *at_path(const msgpack_object *cfg, const char *dotted)
{
	const msgpack_object *v = cfg;
	char part[64];
	while (v && *dotted) {
		size_t n = strcspn(dotted, ".");
		if (v->type != MSGPACK_OBJECT_MAP || n >= sizeof(part))
			return NULL;
		memcpy(part, dotted, n);
		part[n] = '\0';
		v = lookup(v, part);
		dotted += n + (dotted[n] == '.');
	}
	return v;
}

static bool as_number(const msgpack_object *v, double *x)
{
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		*x = (double)v->via.u64;
	else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*x = (double)v->via.i64;
	else if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
		*x = v->via.f64;
	else
		return false;
	return true;
}

/* Why v does not match m, in Kong's words; NULL: it does. */
static const char *match_problem(const struct shmring_match *m, const msgpack_object *v, char *buf,
                                 size_t len)
{
	double x;
	if (m->eq && !str_is(v, m->eq)) {
		snprintf(buf, len, "value must be %s", m->eq);
		return buf;
	}
	if (m->one_of) {
		bool ok = false;
		size_t n = (size_t)snprintf(buf, len, "expected one of: ");
		for (const char *const *o = m->one_of; *o; o++) {
			ok |= str_is(v, *o);
			if (n < len)
				n += (size_t)snprintf(buf + n, len - n, "%s%s",
				                      o == m->one_of ? "" : ", ", *o);
		}
		if (!ok)
			return buf;
	}
	if ((m->flags & SHMRING_MATCH_GT) && !(as_number(v, &x) && x > m->gt)) {
		snprintf(buf, len, "value must be greater than %.17g", m->gt);
		return buf;
	}
	if (m->contains) {
		bool ok = false;
		for (uint32_t i = 0; v->type == MSGPACK_OBJECT_ARRAY && i < v->via.array.size; i++)
			ok |= str_is(&v->via.array.ptr[i], m->contains);
		if (!ok) {
			snprintf(buf, len, "expected to contain: %s", m->contains);
			return buf;
		}
	}
	return NULL;
}

/* 'config.a', 'config.b' */
static void field_list(char *buf, size_t len, const char *const *fields)
{
	size_t n = 0;
	buf[0] = '\0';
	for (const char *const *f = fields; *f && n < len; f++)
		n += (size_t)snprintf(buf + n, len - n, "%s'config.%s'", f == fields ? "" : ", ",
		                      *f);
}

static int run_checks(const char *plugin, const struct shmring_check *checks,
                      const msgpack_object *cfg, char *err, size_t errlen)
{
	char buf[512], list[400];
	for (const struct shmring_check *c = checks; c && c->kind; c++) {
		int set = 0;
		switch (c->kind) {
		case SHMRING_CHECK_AT_LEAST_ONE_OF:
		case SHMRING_CHECK_MUTUALLY_EXCLUSIVE:
			for (const char *const *f = c->fields; f && *f; f++)
				set += at_path(cfg, *f) != NULL;
			if (c->kind == SHMRING_CHECK_AT_LEAST_ONE_OF ? set > 0 : set <= 1)
				break;
			field_list(list, sizeof(list), c->fields);
			snprintf(err, errlen, "%s: %s: %s", plugin,
			         c->kind == SHMRING_CHECK_AT_LEAST_ONE_OF
			             ? "at least one of these fields must be non-empty"
			             : "only one or none of these fields must be set",
			         list);
			return -EINVAL;
		case SHMRING_CHECK_CONDITIONAL: {
			const msgpack_object *iv = at_path(cfg, c->if_field);
			if (!iv || match_problem(&c->if_match, iv, buf, sizeof(buf)))
				break;
			const msgpack_object *tv = at_path(cfg, c->then_field);
			const char *why = tv ? match_problem(&c->then_match, tv, buf, sizeof(buf))
			                  : (c->then_match.flags & SHMRING_MATCH_REQUIRED)
			                      ? "required field missing"
			                      : NULL;
			if (!why)
				break;
			snprintf(err, errlen, "%s: config.%s: %s", plugin, c->then_field, why);
			return -EINVAL;
		}
		default:
			snprintf(err, errlen, "%s: config check of unknown kind %u (a plugin bug)",
			         plugin, c->kind);
			return -EINVAL;
		}
	}
	return 0;
}

int shmringd__config_fill(const struct shmring_plugin *d, const struct shmringd_schema *chosen,
                          const msgpack_object *config, msgpack_sbuffer *sb, msgpack_unpacked *out,
                          char *err, size_t errlen)
{
	const struct shmring_field *schema = chosen->fields;
	if (config->type != MSGPACK_OBJECT_MAP && config->type != MSGPACK_OBJECT_NIL &&
	    !empty_table(config)) {
		snprintf(err, errlen, "%s: config must be a record (a map)", d->name);
		return -EINVAL;
	}
	struct fill f = {.plugin = d->name, .sb = sb, .err = err, .errlen = errlen};
	msgpack_packer_init(&f.pk, sb, msgpack_sbuffer_write);
	const msgpack_object *in = config->type == MSGPACK_OBJECT_MAP ? config : NULL;
	msgpack_sbuffer moved_sb;
	msgpack_sbuffer_init(&moved_sb);
	msgpack_unpacked moved;
	msgpack_unpacked_init(&moved);
	bool packed = false;
	int rc = in ? move_shorthands(&f, schema, in, &moved_sb, &packed) : 0;
	if (rc == 0 && packed) {
		if (msgpack_unpack_next(&moved, moved_sb.data, moved_sb.size, NULL) ==
		    MSGPACK_UNPACK_SUCCESS)
			in = &moved.data;
		else
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = fill_record(&f, schema, in, "");
	msgpack_unpacked_destroy(&moved);
	msgpack_sbuffer_destroy(&moved_sb);
	if (rc == 0 && msgpack_unpack_next(out, sb->data, sb->size, NULL) != MSGPACK_UNPACK_SUCCESS)
		rc = -ENOMEM;
	if (rc == -ENOMEM)
		snprintf(err, errlen, "%s: config could not be rebuilt", d->name);
	if (rc == 0)
		rc = run_checks(d->name, chosen->checks, &out->data, err, errlen);
	return rc;
}

int shmringd__conf_new(const struct shmring_plugin *d, void *wstate, const msgpack_object *config,
                       void **conf, char *err, size_t errlen)
{
	*conf = NULL;
	struct shmringd_schema schema;
	if (shmringd__plugin_schema(d, NULL, config, &schema) < 0)
		return d->conf_new ? d->conf_new(wstate, config, conf, err, errlen) : 0;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int rc = shmringd__config_fill(d, &schema, config, &sb, &u, err, errlen);
	if (rc == 0 && d->conf_new)
		rc = d->conf_new(wstate, &u.data, conf, err, errlen);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}
