/* SPDX-License-Identifier: MIT */
/*
 * request-transformer's body rules (Kong's transform_body and the body half
 * of transform_method): JSON through jansson, forms and multipart through
 * plugins/common/body.c. The rest of the plugin, and what the rules mean
 * for Kong users, is in request_transformer.c's first comment.
 */
#include "rt_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kong's transform_body, by content type. Each returns 1 with the new body
 * in c->body_buf (*len bytes), 0 to leave the body alone, or < 0: -EBADMSG
 * (a body that is not what its Content-Type says and cannot be left as
 * is), -E2BIG (too many fields), -ENOMEM. */

/* A JSON value as Lua sees it: nil and false are "not set" (Kong tests
 * `if parameters[name]`). */
static int truthy(const json_t *v)
{
	return v && !json_is_false(v);
}

/* A rule's value as JSON: a string, or what json_types[i] says. NULL for a
 * number that does not parse (Lua's tonumber gives nil). */
static json_t *typed(const struct rt_conf *c, int k, size_t i, struct shmring_str v)
{
	int t = i < c->njson_types[k] ? c->json_types[k][i] : JT_STRING;
	if (t == JT_BOOLEAN)
		return json_boolean(shmring_str_eq(v, SHMRING_LIT("true")));
	if (t == JT_NUMBER) {
		char tmp[64], *end;
		if (v.len == 0 || v.len >= sizeof(tmp))
			return NULL;
		memcpy(tmp, v.ptr, v.len);
		tmp[v.len] = '\0';
		/* An integer stays one (cjson would print 42, not 42.0). */
		errno = 0;
		long long n = strtoll(tmp, &end, 10);
		if (!*end && !errno)
			return json_integer((json_int_t)n);
		double d = strtod(tmp, &end);
		/* json_real refuses inf and nan: NULL, as tonumber's nil. */
		return *end ? NULL : json_real(d);
	}
	return json_stringn(v.ptr, v.len);
}

/* Kong's append_value: a string becomes [old, v], an array grows, anything
 * else is replaced by [v] (an object gets v under "1", as table.insert on a
 * Lua hash table and cjson do). Steals v. */
static int json_append(json_t *obj, const char *name, json_t *v)
{
	json_t *old = json_object_get(obj, name);
	if (json_is_array(old))
		return json_array_append_new(old, v);
	if (json_is_object(old))
		return json_object_set_new(old, "1", v);
	json_t *a = json_array();
	if (json_is_string(old))
		json_array_append(a, old);
	json_array_append_new(a, v);
	return json_object_set_new(obj, name, a);
}

static int body_json(struct rt_conf *c, const struct shmring_request *req, struct shmring_str raw,
                     size_t *len)
{
	json_t *obj = raw.len ? shmring_pc_json_decode(raw) : json_object();
	if (!obj)
		return 0; /* Kong: a body that is not JSON is left alone */
	if (!json_is_object(obj)) {
		json_decref(obj); /* an array or a scalar: nothing to name */
		return 0;
	}
	int changed = 0;
	char name[SHMRING_PC_MAX_STR + 1], to[SHMRING_PC_MAX_STR + 1];
#define CNAME(buf, s) snprintf(buf, sizeof(buf), "%.*s", (int)(s).len, (s).ptr)
	for (size_t i = 0; raw.len && i < c->body[OP_REMOVE].n; i++, changed = 1) {
		CNAME(name, c->body[OP_REMOVE].v[i].name);
		json_object_del(obj, name);
	}
	for (size_t i = 0; raw.len && i < c->body[OP_RENAME].n; i++) {
		const struct op *op = &c->body[OP_RENAME].v[i];
		CNAME(name, op->name);
		CNAME(to, op->new_name);
		json_t *v = json_object_get(obj, name);
		if (strcmp(name, to) == 0 || !truthy(v))
			continue;
		json_object_set(obj, to, v);
		json_object_del(obj, name);
		changed = 1;
	}
	for (int k = OP_REPLACE; k <= OP_APPEND; k++) {
		if (k == OP_REPLACE && !raw.len)
			continue;
		for (size_t i = 0; i < c->body[k].n; i++) {
			const struct op *op = &c->body[k].v[i];
			CNAME(name, op->name);
			int there = truthy(json_object_get(obj, name));
			if ((k == OP_REPLACE && !there) || (k == OP_ADD && there))
				continue;
			changed = 1;
			json_t *v =
			    op->has_value ? typed(c, k, i, rt_render(c, req, &op->value)) : NULL;
			if (!v)
				continue; /* Kong sets nil: no change */
			if (k == OP_APPEND)
				json_append(obj, name, v);
			else
				json_object_set_new(obj, name, v);
		}
	}
#undef CNAME
	int rc = changed ? shmring_pc_json_encode(obj, &c->body_buf, &c->body_cap, len) : 0;
	json_decref(obj);
	return rc < 0 ? rc : changed;
}

/* Form fields being transformed (a worker runs one hook at a time). */
#define MAX_BODY_FIELDS (SHMRING_PC_BODY_MAX_FIELDS + 64)
static struct shmring_pc_arg fields[MAX_BODY_FIELDS];
static struct shmring_pc_part parts[MAX_BODY_FIELDS];

static size_t form_drop(size_t n, struct shmring_str name)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!shmring_str_eq(fields[i].name, name))
			fields[m++] = fields[i];
	return m;
}

static const struct shmring_pc_arg *form_find(size_t n, struct shmring_str name)
{
	for (size_t i = 0; i < n; i++)
		if (shmring_str_eq(fields[i].name, name))
			return &fields[i];
	return NULL;
}

/* 1 if every field named name is a flag (`?name`, Lua's true). */
static int only_flags(size_t n, struct shmring_str name)
{
	for (size_t i = 0; i < n; i++)
		if (shmring_str_eq(fields[i].name, name) && !fields[i].flag)
			return 0;
	return 1;
}

static int form_put(size_t *n, struct shmring_str name, struct shmring_str value)
{
	if (*n >= MAX_BODY_FIELDS)
		return -E2BIG;
	fields[(*n)++] = (struct shmring_pc_arg){name, value, 0};
	return 0;
}

/* Decode a form body into fields[]; *n fields. */
static int form_load(struct rt_conf *c, struct shmring_str raw, size_t *n)
{
	if (shmring_pc_reserve(&c->form_buf, &c->form_cap, raw.len + 1) < 0)
		return -ENOMEM;
	return shmring_pc_form_decode(raw, c->form_buf, fields, SHMRING_PC_BODY_MAX_FIELDS, n);
}

static int body_form(struct rt_conf *c, const struct shmring_request *req, struct shmring_str raw,
                     size_t *len)
{
	size_t n;
	int rc = form_load(c, raw, &n), changed = 0;
	for (size_t i = 0; rc == 0 && raw.len && i < c->body[OP_REMOVE].n; i++, changed = 1)
		n = form_drop(n, c->body[OP_REMOVE].v[i].name);
	for (size_t i = 0; rc == 0 && raw.len && i < c->body[OP_RENAME].n; i++) {
		const struct op *op = &c->body[OP_RENAME].v[i];
		if (shmring_str_eq(op->name, op->new_name) || !form_find(n, op->name))
			continue;
		n = form_drop(n, op->new_name);
		for (size_t j = 0; j < n; j++)
			if (shmring_str_eq(fields[j].name, op->name))
				fields[j].name = op->new_name;
		changed = 1;
	}
	for (int k = OP_REPLACE; rc == 0 && k <= OP_APPEND; k++) {
		if (k == OP_REPLACE && !raw.len)
			continue;
		for (size_t i = 0; rc == 0 && i < c->body[k].n; i++) {
			const struct op *op = &c->body[k].v[i];
			const struct shmring_pc_arg *there = form_find(n, op->name);
			if ((k == OP_REPLACE && !there) || (k == OP_ADD && there))
				continue;
			changed = 1;
			if (!op->has_value)
				continue;
			/* replace: one value; append to a lone flag: Kong's
			 * append_value(true, v) is {v} */
			if (k == OP_REPLACE || (k == OP_APPEND && there && only_flags(n, op->name)))
				n = form_drop(n, op->name);
			rc = form_put(&n, op->name, rt_render(c, req, &op->value));
		}
	}
	if (rc < 0 || !changed)
		return rc;
	rc = shmring_pc_args_encode(fields, n, &c->body_buf, &c->body_cap, len);
	return rc < 0 ? rc : 1;
}

static const struct shmring_pc_part *part_find(size_t n, struct shmring_str name)
{
	for (size_t i = n; i-- > 0;)
		if (shmring_str_eq(parts[i].name, name))
			return &parts[i];
	return NULL;
}

static size_t part_drop(size_t n, struct shmring_str name)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!shmring_str_eq(parts[i].name, name))
			parts[m++] = parts[i];
	return m;
}

/* lua-multipart's set_simple: the part of that name becomes a plain field
 * where it is, or a new one goes at the end. */
static int part_set_simple(size_t *n, struct shmring_str name, struct shmring_str value)
{
	struct shmring_pc_part *pt = (struct shmring_pc_part *)part_find(*n, name);
	if (!pt) {
		if (*n >= MAX_BODY_FIELDS)
			return -E2BIG;
		pt = &parts[(*n)++];
	}
	*pt = (struct shmring_pc_part){name, {NULL, 0}, value, 1};
	return 0;
}

/* Kong's transform_multipart_body: rename, remove, replace, add (append
 * does nothing for multipart in Kong). */
static int body_multipart(struct rt_conf *c, const struct shmring_request *req,
                          struct shmring_str raw, struct shmring_str ct, size_t *len)
{
	struct shmring_str b;
	size_t n = 0;
	if (shmring_pc_multipart_boundary(ct, &b) < 0)
		return 0; /* no boundary: nothing to write back with */
	int rc =
	    raw.len ? shmring_pc_multipart_parse(raw, b, parts, SHMRING_PC_BODY_MAX_FIELDS, &n) : 0;
	int changed = 0;
	for (size_t i = 0; rc == 0 && raw.len && i < c->body[OP_RENAME].n; i++) {
		const struct op *op = &c->body[OP_RENAME].v[i];
		const struct shmring_pc_part *old = part_find(n, op->name);
		if (!old || shmring_str_eq(op->name, op->new_name))
			continue;
		struct shmring_str v = old->value;
		if ((rc = part_set_simple(&n, op->new_name, v)) == 0)
			n = part_drop(n, op->name);
		changed = 1;
	}
	for (size_t i = 0; rc == 0 && raw.len && i < c->body[OP_REMOVE].n; i++, changed = 1)
		n = part_drop(n, c->body[OP_REMOVE].v[i].name);
	for (int k = OP_REPLACE; rc == 0 && k <= OP_ADD; k++) {
		if (k == OP_REPLACE && !raw.len)
			continue;
		for (size_t i = 0; rc == 0 && i < c->body[k].n; i++) {
			const struct op *op = &c->body[k].v[i];
			int there = part_find(n, op->name) != NULL;
			if ((k == OP_REPLACE && !there) || (k == OP_ADD && there))
				continue;
			changed = 1;
			if (!op->has_value)
				continue;
			n = part_drop(n, op->name);
			rc = part_set_simple(&n, op->name, rt_render(c, req, &op->value));
		}
	}
	if (rc < 0 || !changed)
		return rc;
	rc = shmring_pc_multipart_encode(parts, n, b, &c->body_buf, &c->body_cap, len);
	return rc < 0 ? rc : 1;
}

/* Kong's transform_body: the new body and its Content-Length, or an exit
 * for a body this plugin cannot transform. */
int rt_transform_body(struct rt_conf *c, const struct shmring_request *req, struct shmring_str ct,
                      struct shmring_reply *rep)
{
	struct shmring_str raw;
	if (!ct.ptr)
		return 0;
	enum shmring_pc_body_type type = shmring_pc_body_type_named(ct);
	if (type == SHMRING_PC_BODY_NONE)
		return 0;
	int got = shmring_req_body(req, &raw);
	if (got == 0)
		return 0; /* defensive: the gateway sends it for these types */
	if (got < 0)
		return -EFBIG;
	size_t len = 0;
	int rc = type == SHMRING_PC_BODY_JSON   ? body_json(c, req, raw, &len)
	         : type == SHMRING_PC_BODY_FORM ? body_form(c, req, raw, &len)
	                                        : body_multipart(c, req, raw, ct, &len);
	if (rc <= 0)
		return rc;
	char cl[24];
	int n = snprintf(cl, sizeof(cl), "%zu", len);
	rc = shmring_reply_set_body(rep, (struct shmring_str){c->body_buf, len});
	return rc ? rc
	          : shmring_reply_set_req_header(rep, SHMRING_LIT("Content-Length"),
	                                         (struct shmring_str){cl, (size_t)n});
}

/* A body this plugin cannot transform: 413 past the gateway's body_max,
 * 400 for a multipart body that is not one or too many fields. */
int rt_body_refused(struct shmring_reply *rep, int why)
{
	static const struct shmring_header json_ct = {
	    SHMRING_LIT("Content-Type"), SHMRING_LIT("application/json; charset=utf-8")};
	struct shmring_str msg =
	    why == -EFBIG   ? SHMRING_LIT("{\"message\":\"Request body too large\"}")
	    : why == -E2BIG ? SHMRING_LIT("{\"message\":\"Request body has too many fields\"}")
	                    : SHMRING_LIT("{\"message\":\"Invalid multipart/form-data body\"}");
	/* The header actions before it are moot: the request ends here. */
	return shmring_reply_exit(rep, why == -EFBIG ? 413 : 400, msg, &json_ct, 1);
}

/* Kong's transform_method for GET, HEAD and TRACE: a form body's fields
 * join the query (after the query's own values). Adds them to w's query
 * items; 1 if there were any. */
int rt_method_body_to_query(struct work *w)
{
	struct rt_conf *c = w->c;
	struct shmring_str ct, raw;
	if (!shmring_str_eq(c->method, SHMRING_LIT("GET")) &&
	    !shmring_str_eq(c->method, SHMRING_LIT("HEAD")) &&
	    !shmring_str_eq(c->method, SHMRING_LIT("TRACE")))
		return 0;
	if (!shmring_req_header(w->req, SHMRING_LIT("content-type"), &ct) ||
	    shmring_pc_body_type_named(ct) != SHMRING_PC_BODY_FORM ||
	    shmring_req_body(w->req, &raw) != 1)
		return 0;
	size_t n;
	int rc = form_load(c, raw, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct item *it = rt_slot(w, fields[i].name, 0);
		if (!it)
			return -E2BIG;
		if (fields[i].flag && !it->present) {
			it->present = it->flag = 1;
			continue;
		}
		rc = rt_append_one(w, it, fields[i].value);
	}
	return rc < 0 ? rc : n > 0;
}
