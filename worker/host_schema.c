/* SPDX-License-Identifier: MIT */
/* The plugin host: configs through the plugin's declared schema (struct
 * shmring_field, shmring_plugin.h) before conf_new. The config is checked
 * and rewritten as a new map holding exactly the declared fields, in their
 * declared order, defaults filled in; conf_new gets that map. */
#include "daemon.h"
#include "shmring/plugin_test.h" /* shmring_test_pack_json: defaults are JSON */

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

const struct shmring_field *shmringd__plugin_config_schema(const struct shmring_plugin *d)
{
	if (d->struct_size < offsetof(struct shmring_plugin, config) + sizeof(d->config))
		return NULL;
	return d->config;
}

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
	if (!(d->flags & SHMRING_FIELD_BETWEEN) || (v >= (double)d->min && v <= (double)d->max))
		return 0;
	char what[128];
	snprintf(what, sizeof(what), "must be between %lld and %lld", (long long)d->min,
	         (long long)d->max);
	return refuse(f, path, what);
}

/* Check v against d and pack it. */
static int pack_value(struct fill *f, const struct shmring_field *d, const msgpack_object *v,
                      const char *path)
{
	switch (d->type) {
	case SHMRING_FIELD_STRING: {
		if (v->type != MSGPACK_OBJECT_STR)
			return refuse(f, path, "must be a string");
		int rc = check_len(f, d, v->via.str.size, path, "characters");
		if (rc < 0)
			return rc;
		if (d->one_of) {
			bool ok = false;
			for (const char *const *o = d->one_of; *o && !ok; o++)
				ok = str_is(v, *o);
			if (!ok) {
				char what[512];
				size_t n = (size_t)snprintf(what, sizeof(what), "must be one of");
				for (const char *const *o = d->one_of; *o && n < sizeof(what); o++)
					n += (size_t)snprintf(what + n, sizeof(what) - n,
					                      "%s \"%s\"",
					                      o == d->one_of ? "" : ",", *o);
				if (n < sizeof(what))
					snprintf(what + n, sizeof(what) - n, " (got \"%.*s\")",
					         v->via.str.size > 64 ? 64 : (int)v->via.str.size,
					         v->via.str.ptr);
				return refuse(f, path, what);
			}
		}
		return msgpack_pack_object(&f->pk, *v);
	}
	case SHMRING_FIELD_INTEGER: {
		int64_t i;
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
	case SHMRING_FIELD_ARRAY: {
		if (empty_table(v)) {
			int rc = check_len(f, d, 0, path, "elements");
			return rc < 0 ? rc : msgpack_pack_array(&f->pk, 0);
		}
		if (v->type != MSGPACK_OBJECT_ARRAY)
			return refuse(f, path, "must be an array");
		int rc = check_len(f, d, v->via.array.size, path, "elements");
		if (rc < 0)
			return rc;
		msgpack_pack_array(&f->pk, v->via.array.size);
		for (uint32_t i = 0; i < v->via.array.size; i++) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s[%u]", path, i + 1);
			if ((rc = pack_value(f, d->elements, &v->via.array.ptr[i], sub)) < 0)
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
		if (d->flags & SHMRING_FIELD_GATEWAY)
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", d->name);
		if (lookup(in, d->name) || d->def || record_filled(d))
			n++;
		else if (d->flags & SHMRING_FIELD_REQUIRED)
			return refuse(f, sub, "is required");
	}
	msgpack_pack_map(&f->pk, n);
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		if (d->flags & SHMRING_FIELD_GATEWAY)
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

int shmringd__conf_new(const struct shmring_plugin *d, void *wstate, const msgpack_object *config,
                       void **conf, char *err, size_t errlen)
{
	const struct shmring_field *schema = shmringd__plugin_config_schema(d);
	*conf = NULL;
	if (!schema)
		return d->conf_new ? d->conf_new(wstate, config, conf, err, errlen) : 0;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	struct fill f = {.plugin = d->name, .sb = &sb, .err = err, .errlen = errlen};
	msgpack_packer_init(&f.pk, &sb, msgpack_sbuffer_write);
	int rc = fill_record(&f, schema, config->type == MSGPACK_OBJECT_MAP ? config : NULL, "");
	if (rc == 0 && d->conf_new) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS) {
			snprintf(err, errlen, "%s: config could not be rebuilt", d->name);
			rc = -EINVAL;
		} else {
			rc = d->conf_new(wstate, &u.data, conf, err, errlen);
		}
		msgpack_unpacked_destroy(&u);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}
