/* SPDX-License-Identifier: MIT */
/*
 * request-transformer: Kong's request-transformer (3.x) for headers, the
 * query string, the body, replace.uri and http_method, as a shmring C
 * plugin.
 *
 * Kong's order: uri, method, headers (remove, rename, replace, add,
 * append), body (same order; multipart: rename, remove, replace, add),
 * querystring (same order). Kong's rules: replace only if present,
 * add only if absent, append always; header names compare
 * case-insensitively, query names exactly; the Host header can be replaced
 * but not added; a query rename of an absent arg removes the target (as
 * Kong's `qs[new] = qs[old]; qs[old] = nil` does).
 *
 * Values are templates: `$(headers.x_foo)`, `$(headers["x-foo"])`,
 * `$(query_params.bar)`, `$(query_params["bar"])`, `$(uri_captures.name)`,
 * `$(uri_captures[1])`, `$(shared.key)` (and the ["..."] forms), each
 * optionally followed by `or "default"`, and `$("literal")`. They read the
 * original request and are parsed once, in conf_new; anything else (Lua
 * expressions) is refused there. A missing value renders as "" (use
 * `or "..."`).
 *
 * Bodies (the gateway sends one only for a config with body rules, or
 * http_method GET/HEAD/TRACE, and a Content-Type naming JSON, form or
 * multipart: lua/shmring/plugins.lua): JSON through jansson, forms and
 * multipart through plugins/common/body.c, with Kong's rules (remove,
 * rename and replace only for a non-empty body; in JSON false counts as
 * unset). json_types (Kong Enterprise's request-transformer-advanced)
 * types the JSON values of replace/add/append by index. A body that
 * changed is sent whole (SET_BODY) with its Content-Length. A body that is
 * not JSON, or not a JSON object, goes on untouched as in Kong; a
 * multipart body that is not one (truncated, a part without a name) or a
 * form or multipart body of more than SHMRING_PC_BODY_MAX_FIELDS fields
 * is answered 400, and one the gateway could not send (past its body_max)
 * 413: docs/plugins.md lists what Kong does instead.
 *
 * Reply: CLEAR_REQ_HEADER for every header Kong would clear, then
 * SET_REQ_HEADER (+ ADD_REQ_HEADER for further values) for every header
 * whose value changed, SET_QUERY with the whole rebuilt query (names
 * sorted, like Kong's encode_args) when any querystring rule exists,
 * SET_PATH for replace.uri, SET_METHOD for http_method, SET_BODY and
 * Content-Length for a changed body.
 */
#define _GNU_SOURCE /* memmem */
#include "rt_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- conf-lifetime strings ------------------------------------------------ */

/* Every string of a parsed config lives in one arena freed with it. */
struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	_Alignas(16) char data[];
};

static char *arena_alloc(struct arena_block **head, size_t n)
{
	n = (n + 15) & ~(size_t)15; /* every allocation aligned for any struct */
	struct arena_block *b = *head;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 4096 ? n : 4096;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = *head;
		b->used = 0;
		b->cap = cap;
		*head = b;
	}
	char *p = b->data + b->used;
	b->used += n;
	return p;
}

static void arena_free(struct arena_block *b)
{
	while (b) {
		struct arena_block *n = b->next;
		free(b);
		b = n;
	}
}

static const char *const op_names[OP_KINDS] = {"remove", "rename", "replace", "add", "append"};

struct parse_ctx {
	struct rt_conf *c;
	char *err;
	size_t errlen;
	const char *where; /* "config.add.headers[2]" */
};

static int perr(struct parse_ctx *p, const char *fmt, const char *detail)
{
	char msg[400];
	snprintf(msg, sizeof(msg), fmt, detail);
	snprintf(p->err, p->errlen, PLUGIN ": %s: %s", p->where, msg);
	return -EINVAL;
}

static struct shmring_str keep(struct parse_ctx *p, const char *s, size_t n)
{
	char *d = arena_alloc(&p->c->arena, n + 1);
	if (!d)
		return (struct shmring_str){NULL, 0};
	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	return (struct shmring_str){d, n};
}

static const char *skip_ws(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* A quoted string at s ("..." or '...', no escapes); advances *s past it. */
static int quoted(const char **s, const char *e, struct shmring_str *out)
{
	const char *q = *s;
	if (q >= e || (*q != '"' && *q != '\''))
		return -1;
	const char *end = memchr(q + 1, *q, (size_t)(e - q - 1));
	if (!end)
		return -1;
	*out = (struct shmring_str){q + 1, (size_t)(end - q - 1)};
	*s = end + 1;
	return 0;
}

static int ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* One expression between $( and ): ref [or "dflt"] | "literal". */
static int parse_expr(struct parse_ctx *p, const char *s, const char *e, struct part *out)
{
	static const char usage[] =
	    "unsupported template expression '$(%s)': use $(headers.NAME), "
	    "$(headers[\"NAME\"]), $(query_params.NAME), $(query_params[\"NAME\"]), "
	    "$(uri_captures.NAME), $(uri_captures[N]), $(shared.NAME) (and the [\"NAME\"] "
	    "forms), optionally followed by or \"default\", or $(\"literal\")";
	char shown[200];
	snprintf(shown, sizeof(shown), "%.*s", (int)(e - s > 150 ? 150 : e - s), s);
	s = skip_ws(s, e);
	struct shmring_str lit;
	const char *t = s;
	if (quoted(&t, e, &lit) == 0) {
		if (skip_ws(t, e) != e)
			return perr(p, usage, shown);
		out->kind = PART_LITERAL;
		out->text = keep(p, lit.ptr, lit.len);
		return out->text.ptr ? 0 : -ENOMEM;
	}
	enum part_kind kind;
	if ((size_t)(e - s) > 7 && !memcmp(s, "headers", 7) && !ident_char(s[7])) {
		kind = PART_HEADER;
		s += 7;
	} else if ((size_t)(e - s) > 12 && !memcmp(s, "query_params", 12) && !ident_char(s[12])) {
		kind = PART_QUERY;
		s += 12;
	} else if ((size_t)(e - s) > 12 && !memcmp(s, "uri_captures", 12) && !ident_char(s[12])) {
		kind = PART_URI_CAPTURE;
		s += 12;
	} else if ((size_t)(e - s) > 6 && !memcmp(s, "shared", 6) && !ident_char(s[6])) {
		kind = PART_SHARED;
		s += 6;
	} else {
		return perr(p, usage, shown);
	}
	struct shmring_str name;
	if (*s == '.') {
		const char *n = ++s;
		while (s < e && ident_char(*s))
			s++;
		if (s == n)
			return perr(p, usage, shown);
		name = (struct shmring_str){n, (size_t)(s - n)};
	} else if (*s == '[') {
		s = skip_ws(s + 1, e);
		const char *digits = s;
		while (kind == PART_URI_CAPTURE && s < e && *s >= '0' && *s <= '9')
			s++;
		/* uri_captures[1]: a numbered group (the snapshot's key "1") */
		if (s > digits && s - digits <= 3)
			name = (struct shmring_str){digits, (size_t)(s - digits)};
		else if ((s = digits, quoted(&s, e, &name) < 0) || name.len == 0)
			return perr(p, usage, shown);
		s = skip_ws(s, e);
		if (s >= e || *s != ']')
			return perr(p, usage, shown);
		s++;
	} else {
		return perr(p, usage, shown);
	}
	struct shmring_str dflt = {"", 0};
	s = skip_ws(s, e);
	if (s < e) {
		if ((size_t)(e - s) < 3 || memcmp(s, "or", 2) || (s[2] != ' ' && s[2] != '\t'))
			return perr(p, usage, shown);
		s = skip_ws(s + 2, e);
		if (quoted(&s, e, &dflt) < 0 || skip_ws(s, e) != e)
			return perr(p, usage, shown);
	}
	out->kind = kind;
	out->text = keep(p, name.ptr, name.len);
	out->dflt = keep(p, dflt.ptr, dflt.len);
	if (!out->text.ptr || !out->dflt.ptr)
		return -ENOMEM;
	if (kind == PART_HEADER) {
		/* Like ngx.req.get_headers(): lower-case, '_' means '-'. */
		char *d = (char *)out->text.ptr;
		shmring_pc_lower(d, d, out->text.len);
		for (size_t i = 0; i < out->text.len; i++)
			if (d[i] == '_')
				d[i] = '-';
	}
	return 0;
}

/* Parse a value into parts (literal runs and $(...) expressions). */
static int parse_tpl(struct parse_ctx *p, const char *s, size_t len, struct tpl *out)
{
	struct part parts[64];
	size_t n = 0;
	const char *e = s + len, *lit = s;
	while (s < e) {
		const char *d = NULL;
		for (const char *x = s; x + 1 < e; x++)
			if (x[0] == '$' && x[1] == '(') {
				d = x;
				break;
			}
		if (!d)
			break;
		/* The matching ')' outside quotes. */
		const char *x = d + 2, *close = NULL;
		int depth = 1;
		char q = 0;
		for (; x < e && !close; x++) {
			if (q) {
				if (*x == q)
					q = 0;
			} else if (*x == '"' || *x == '\'') {
				q = *x;
			} else if (*x == '(') {
				depth++;
			} else if (*x == ')' && --depth == 0) {
				close = x;
			}
		}
		if (!close)
			/* d points into the config, which has no NUL: copy it. */
			return perr(p, "unterminated template '%s' (a '$(' without its ')')",
			            keep(p, d, (size_t)(e - d)).ptr ?: "");
		/* Room for this literal and expression, and the trailing literal. */
		if (n + 3 > sizeof(parts) / sizeof(parts[0]))
			return perr(p, "%s", "more than 31 templates in one value");
		if (d > lit)
			parts[n++] =
			    (struct part){PART_LITERAL, keep(p, lit, (size_t)(d - lit)), {NULL, 0}};
		int rc = parse_expr(p, d + 2, close, &parts[n]);
		if (rc < 0)
			return rc;
		n++;
		s = lit = close + 1;
	}
	if (e > lit || n == 0)
		parts[n++] =
		    (struct part){PART_LITERAL, keep(p, lit, (size_t)(e - lit)), {NULL, 0}};
	out->parts = (struct part *)arena_alloc(&p->c->arena, n * sizeof(struct part));
	if (!out->parts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!parts[i].text.ptr)
			return -ENOMEM;
	memcpy(out->parts, parts, n * sizeof(struct part));
	out->n = n;
	return 0;
}

/* One "name[:value]" entry of a rule list, split like Kong's
 * `^([^:]+):*(.-)$`. */
static int parse_op(struct parse_ctx *p, int kind, int is_header, struct shmring_str entry,
                    struct op *op)
{
	const char *colon = entry.len ? memchr(entry.ptr, ':', entry.len) : NULL;
	size_t nlen = colon ? (size_t)(colon - entry.ptr) : entry.len;
	if (nlen == 0)
		return perr(p, "%s", "the name before ':' is empty");
	struct shmring_str name = {entry.ptr, nlen};
	if (is_header && !shmring_pc_header_name_ok(name))
		return perr(p, "'%s' is not a valid header name",
		            keep(p, name.ptr, name.len).ptr ?: "");
	const char *v = colon ? colon : entry.ptr + entry.len;
	while (v < entry.ptr + entry.len && *v == ':')
		v++;
	struct shmring_str value = {v, (size_t)(entry.ptr + entry.len - v)};
	op->name = keep(p, name.ptr, name.len);
	if (!op->name.ptr)
		return -ENOMEM;
	switch (kind) {
	case OP_REMOVE:
		return 0;
	case OP_RENAME:
		if (!colon || value.len == 0)
			return perr(p, "%s", "a rename must be 'old:new'");
		if (memmem(value.ptr, value.len, "$(", 2))
			return perr(p, "%s", "a rename target is a name, not a template");
		if (is_header && !shmring_pc_header_name_ok(value))
			return perr(p, "'%s' is not a valid header name",
			            keep(p, value.ptr, value.len).ptr ?: "");
		op->new_name = keep(p, value.ptr, value.len);
		return op->new_name.ptr ? 0 : -ENOMEM;
	default:
		if (!colon)
			return perr(p, "%s", "must be 'name:value'");
		if (value.len == 0)
			return 0; /* Kong: a nil value, the rule does nothing */
		op->has_value = 1;
		return parse_tpl(p, value.ptr, value.len, &op->value);
	}
}

static int parse_list(struct parse_ctx *p, const msgpack_object *section, const char *sname,
                      int kind, const char *field, int is_header, struct op_list *out)
{
	char where[96];
	snprintf(where, sizeof(where), "config.%s.%s", sname, field);
	struct shmring_pc_strv sv;
	int rc = shmring_pc_strv(shmring_pc_field(section, field), PLUGIN, where, NULL, &sv, p->err,
	                         p->errlen);
	if (rc < 0)
		return rc;
	if (sv.n) {
		out->v = (struct op *)arena_alloc(&p->c->arena, sv.n * sizeof(struct op));
		if (!out->v) {
			shmring_pc_strv_free(&sv);
			return -ENOMEM;
		}
		memset(out->v, 0, sv.n * sizeof(struct op));
	}
	for (size_t i = 0; i < sv.n && rc == 0; i++) {
		char w[136];
		snprintf(w, sizeof(w), "%s[%zu]", where, i);
		p->where = w;
		rc = parse_op(p, kind, is_header, sv.v[i], &out->v[i]);
		out->n = i + 1;
	}
	shmring_pc_strv_free(&sv);
	return rc;
}

/* The config, declared once: shmringd checks it and fills in the defaults
 * before rt_conf_new, and the Kong schema is made from it (`shmringctl
 * schema request-transformer --kong`). Kong's fields, plus `json_types`
 * (Kong Enterprise's). */
static const struct shmring_field rt_string = {.type = SHMRING_FIELD_STRING};
static const struct shmring_field rt_colon_string = {.type = SHMRING_FIELD_STRING,
                                                     .match = "^[^:]+:.*$"};
static const char *const rt_json_type_names[] = {"boolean", "number", "string", NULL};
static const struct shmring_field rt_json_type = {.type = SHMRING_FIELD_STRING,
                                                  .one_of = rt_json_type_names};
#define RT_LIST(field, elem)                                                                       \
	{                                                                                          \
		.name = field, .type = SHMRING_FIELD_ARRAY, .flags = SHMRING_FIELD_REQUIRED,       \
		.def = "[]", .elements = &(elem)                                                   \
	}
static const struct shmring_field rt_remove[] = {
    RT_LIST("body", rt_string),
    RT_LIST("headers", rt_string),
    RT_LIST("querystring", rt_string),
    {.name = NULL},
};
static const struct shmring_field rt_rename[] = {
    RT_LIST("body", rt_colon_string),
    RT_LIST("headers", rt_colon_string),
    RT_LIST("querystring", rt_colon_string),
    {.name = NULL},
};
static const struct shmring_field rt_replace[] = {
    RT_LIST("body", rt_colon_string),        RT_LIST("headers", rt_colon_string),
    RT_LIST("querystring", rt_colon_string), {.name = "uri", .type = SHMRING_FIELD_STRING},
    RT_LIST("json_types", rt_json_type),     {.name = NULL},
};
static const struct shmring_field rt_add[] = {
    RT_LIST("body", rt_colon_string),
    RT_LIST("headers", rt_colon_string),
    RT_LIST("querystring", rt_colon_string),
    RT_LIST("json_types", rt_json_type),
    {.name = NULL},
};
#define RT_SECTION(field, list)                                                                    \
	{                                                                                          \
		.name = field, .type = SHMRING_FIELD_RECORD, .flags = SHMRING_FIELD_REQUIRED,      \
		.fields = list                                                                     \
	}
static const struct shmring_field rt_config[] = {
    {.name = "http_method", .type = SHMRING_FIELD_STRING, .match = "^%u+$"},
    RT_SECTION("remove", rt_remove),
    RT_SECTION("rename", rt_rename),
    RT_SECTION("replace", rt_replace),
    RT_SECTION("add", rt_add),
    RT_SECTION("append", rt_add),
    SHMRING_GATEWAY_FIELDS("false"),
    {.name = NULL},
};

static void rt_conf_free(void *conf)
{
	struct rt_conf *c = conf;
	if (!c)
		return;
	arena_free(c->arena);
	free(c->render);
	free(c->query_buf);
	free(c->body_buf);
	free(c->form_buf);
	free(c);
}

/* config.<section>.json_types: one type name per body rule (by index). */
static int parse_json_types(struct parse_ctx *p, const msgpack_object *sec, int k)
{
	char where[64];
	snprintf(where, sizeof(where), "config.%s.json_types", op_names[k]);
	struct shmring_pc_strv sv;
	int rc = shmring_pc_strv(shmring_pc_field(sec, "json_types"), PLUGIN, where, NULL, &sv,
	                         p->err, p->errlen);
	if (rc < 0 || sv.n == 0) {
		if (rc == 0)
			shmring_pc_strv_free(&sv);
		return rc;
	}
	uint8_t *t = (uint8_t *)arena_alloc(&p->c->arena, sv.n);
	for (size_t i = 0; t && i < sv.n && rc == 0; i++) {
		if (shmring_str_eq(sv.v[i], SHMRING_LIT("string")))
			t[i] = JT_STRING;
		else if (shmring_str_eq(sv.v[i], SHMRING_LIT("boolean")))
			t[i] = JT_BOOLEAN;
		else if (shmring_str_eq(sv.v[i], SHMRING_LIT("number")))
			t[i] = JT_NUMBER;
		else {
			p->where = where;
			rc = perr(p, "'%s' is not one of boolean, number, string", sv.v[i].ptr);
		}
	}
	p->c->json_types[k] = t;
	p->c->njson_types[k] = sv.n;
	shmring_pc_strv_free(&sv);
	return t ? rc : -ENOMEM;
}

static int rt_conf_new(void *wstate, const msgpack_object *cfg, void **out, char *err,
                       size_t errlen)
{
	*out = NULL;
	struct rt_conf *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	struct parse_ctx p = {c, err, errlen, "config"};
	char *method = NULL;
	int rc = shmring_pc_strdup(cfg, PLUGIN, "http_method", NULL, true, &method, err, errlen);
	if (rc == 0 && method) {
		size_t n = strlen(method);
		for (size_t i = 0; i < n && rc == 0; i++)
			if (!((method[i] >= 'A' && method[i] <= 'Z') ||
			      (method[i] >= 'a' && method[i] <= 'z')))
				rc = -EINVAL;
		if (rc < 0 || n > 32) {
			rc = -EINVAL;
			snprintf(err, errlen,
			         PLUGIN ": config.http_method must be a method name (letters only, "
			                "e.g. POST)");
		}
		if (rc == 0) {
			for (size_t i = 0; i < n; i++)
				if (method[i] >= 'a' && method[i] <= 'z')
					method[i] = (char)(method[i] - 32);
			c->method = keep(&p, method, n);
		}
	}
	for (int k = 0; k < OP_KINDS && rc == 0; k++) {
		/* The schema made each section a map of its declared lists. */
		const msgpack_object *sec = shmring_pc_field(cfg, op_names[k]);
		if (rc == 0)
			rc = parse_list(&p, sec, op_names[k], k, "headers", 1, &c->headers[k]);
		if (rc == 0)
			rc = parse_list(&p, sec, op_names[k], k, "body", 0, &c->body[k]);
		if (rc == 0 && c->body[k].n)
			c->any_body = 1;
		if (rc == 0 && k >= OP_REPLACE)
			rc = parse_json_types(&p, sec, k);
		if (rc == 0)
			rc = parse_list(&p, sec, op_names[k], k, "querystring", 0, &c->query[k]);
		if (rc == 0 && c->query[k].n)
			c->any_query = 1;
		if (rc == 0 && k == OP_REPLACE) {
			char *uri = NULL;
			rc = shmring_pc_strdup(sec, PLUGIN " (config.replace)", "uri", NULL, false,
			                       &uri, err, errlen);
			if (rc == 0 && uri) {
				if (uri[0] != '/' && uri[0] != '$') {
					snprintf(err, errlen,
					         PLUGIN ": config.replace.uri must start with '/'");
					rc = -EINVAL;
				} else {
					p.where = "config.replace.uri";
					rc = parse_tpl(&p, uri, strlen(uri), &c->uri);
					c->has_uri = rc == 0;
				}
			}
			free(uri);
		}
	}
	free(method);
	if (rc == -ENOMEM)
		snprintf(err, errlen, PLUGIN ": out of memory");
	if (rc < 0) {
		rt_conf_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- per request ---------------------------------------------------------------- */
/* Values rendered into c->render are stored as offsets first (the buffer
 * may move while rendering), then fixed up. Simpler: render into a buffer
 * sized once per request to the worst case (see render_reserve). */
static int render_reserve(struct rt_conf *c, size_t need)
{
	if (need <= c->render_cap)
		return 0;
	size_t cap = c->render_cap ? c->render_cap : 4096;
	while (cap < need)
		cap *= 2;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	free(c->render);
	c->render = b;
	c->render_cap = cap;
	return 0;
}

static struct shmring_str lookup(const struct shmring_request *req, const struct part *pt)
{
	struct shmring_str v = {NULL, 0};
	if (pt->kind == PART_URI_CAPTURE || pt->kind == PART_SHARED) {
		const msgpack_object *env = shmring_map_get(
		    req->root,
		    pt->kind == PART_SHARED ? SHMRING_LIT("shared") : SHMRING_LIT("uri_captures"));
		if (shmring_map_str(env, pt->text, &v))
			return v;
	} else if (pt->kind == PART_HEADER) {
		if (shmring_req_header(req, pt->text, &v))
			return v;
	} else {
		int r = shmring_req_query(req, pt->text, &v);
		if (r == 1)
			return v;
		if (r == 2)
			return SHMRING_LIT("true");
	}
	return pt->dflt;
}

static size_t tpl_max_len(const struct shmring_request *req, const struct tpl *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += t->parts[i].kind == PART_LITERAL ? t->parts[i].text.len
		                                      : lookup(req, &t->parts[i]).len;
	return n;
}

/* Render t at c->render + c->render_len (room reserved beforehand). */
struct shmring_str rt_render(struct rt_conf *c, const struct shmring_request *req,
                             const struct tpl *t)
{
	if (t->n == 1 && t->parts[0].kind == PART_LITERAL)
		return t->parts[0].text; /* no copy for plain values */
	char *d = c->render + c->render_len;
	size_t o = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct shmring_str s =
		    t->parts[i].kind == PART_LITERAL ? t->parts[i].text : lookup(req, &t->parts[i]);
		if (s.len)
			memcpy(d + o, s.ptr, s.len);
		o += s.len;
	}
	c->render_len += o;
	return (struct shmring_str){d, o};
}

static int reserve_all(struct rt_conf *c, const struct shmring_request *req)
{
	size_t need = 1;
	for (int k = 0; k < OP_KINDS; k++) {
		for (size_t i = 0; i < c->headers[k].n; i++)
			need += tpl_max_len(req, &c->headers[k].v[i].value);
		for (size_t i = 0; i < c->query[k].n; i++)
			need += tpl_max_len(req, &c->query[k].v[i].value);
		for (size_t i = 0; i < c->body[k].n; i++)
			need += tpl_max_len(req, &c->body[k].v[i].value);
	}
	if (c->has_uri)
		need += tpl_max_len(req, &c->uri);
	c->render_len = 0;
	return render_reserve(c, need);
}

static struct item *find(struct work *w, struct shmring_str name, int ci)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->items[i].present && (ci ? shmring_pc_str_eq_ci(w->items[i].name, name)
		                               : shmring_str_eq(w->items[i].name, name)))
			return &w->items[i];
	return NULL;
}

/* The item for name (present or not), added if new; NULL if full. */
struct item *rt_slot(struct work *w, struct shmring_str name, int ci)
{
	for (size_t i = 0; i < w->n; i++)
		if (ci ? shmring_pc_str_eq_ci(w->items[i].name, name)
		       : shmring_str_eq(w->items[i].name, name))
			return &w->items[i];
	if (w->n >= MAX_ITEMS)
		return NULL;
	struct item *it = &w->items[w->n++];
	memset(it, 0, sizeof(*it));
	it->name = name;
	return it;
}

static int set_one(struct work *w, struct item *it, struct shmring_str v)
{
	if (w->npool >= sizeof(w->pool) / sizeof(w->pool[0]))
		return -E2BIG;
	w->pool[w->npool] = v;
	it->vals = &w->pool[w->npool++];
	it->nvals = 1;
	it->present = 1;
	it->changed = 1;
	it->flag = 0;
	return 0;
}

int rt_append_one(struct work *w, struct item *it, struct shmring_str v)
{
	if (!it->present || it->nvals == 0)
		return set_one(w, it, v);
	size_t n = it->nvals + 1;
	if (w->npool + n > sizeof(w->pool) / sizeof(w->pool[0]))
		return -E2BIG;
	struct shmring_str *nv = &w->pool[w->npool];
	memcpy(nv, it->vals, it->nvals * sizeof(*nv));
	nv[it->nvals] = v;
	w->npool += n;
	it->vals = nv;
	it->nvals = (uint32_t)n;
	it->changed = 1;
	it->flag = 0;
	return 0;
}

/* Load a snapshot map (headers or query) into items. */
static int load(struct work *w, const msgpack_object *map, int skip_host)
{
	w->n = 0;
	w->npool = 0;
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			continue;
		struct shmring_str name = {k->via.str.ptr, k->via.str.size};
		if (skip_host && shmring_pc_str_eq_ci(name, SHMRING_LIT("host")))
			continue; /* Kong: headers.host = nil */
		if (w->n >= MAX_ITEMS)
			return -E2BIG;
		struct item *it = &w->items[w->n++];
		memset(it, 0, sizeof(*it));
		it->name = name;
		const msgpack_object *vs = v;
		uint32_t nv = 1;
		if (v->type == MSGPACK_OBJECT_ARRAY) {
			vs = v->via.array.ptr;
			nv = v->via.array.size;
		}
		it->vals = &w->pool[w->npool];
		for (uint32_t j = 0; j < nv; j++) {
			if (vs[j].type == MSGPACK_OBJECT_BOOLEAN && vs[j].via.boolean) {
				it->flag = 1; /* `?flag` */
				continue;
			}
			if (vs[j].type != MSGPACK_OBJECT_STR)
				continue;
			if (w->npool >= sizeof(w->pool) / sizeof(w->pool[0]))
				return -E2BIG;
			w->pool[w->npool++] =
			    (struct shmring_str){vs[j].via.str.ptr, vs[j].via.str.size};
			it->nvals++;
		}
		it->present = it->nvals > 0 || it->flag;
	}
	return 0;
}

static int transform_headers(struct work *w)
{
	struct rt_conf *c = w->c;
	const struct shmring_request *req = w->req;
	int rc = load(w, req->headers, 1);
	struct item *it;
	for (size_t i = 0; i < c->headers[OP_REMOVE].n && rc == 0; i++)
		if ((it = find(w, c->headers[OP_REMOVE].v[i].name, 1))) {
			it->present = 0;
			it->cleared = 1;
		}
	for (size_t i = 0; i < c->headers[OP_RENAME].n && rc == 0; i++) {
		const struct op *op = &c->headers[OP_RENAME].v[i];
		if (!(it = find(w, op->name, 1)))
			continue;
		struct shmring_str *vals = it->vals;
		uint32_t nvals = it->nvals;
		/* A case-only rename still clears the old spelling (Kong). */
		int same = shmring_str_eq(op->name, op->new_name);
		if (!same) {
			it->present = 0;
			it->cleared = 1;
		}
		struct item *dst = rt_slot(w, op->new_name, 1);
		if (!dst)
			return -E2BIG;
		dst->name = op->new_name;
		dst->vals = vals;
		dst->nvals = nvals;
		dst->present = 1;
		dst->changed = !same;
	}
	for (size_t i = 0; i < c->headers[OP_REPLACE].n && rc == 0; i++) {
		const struct op *op = &c->headers[OP_REPLACE].v[i];
		if (!op->has_value)
			continue;
		it = find(w, op->name, 1);
		if (!it && shmring_pc_str_eq_ci(op->name, SHMRING_LIT("host")))
			it = rt_slot(w, op->name, 1);
		if (it)
			rc = set_one(w, it, rt_render(c, req, &op->value));
	}
	for (size_t i = 0; i < c->headers[OP_ADD].n && rc == 0; i++) {
		const struct op *op = &c->headers[OP_ADD].v[i];
		if (!op->has_value || find(w, op->name, 1) ||
		    shmring_pc_str_eq_ci(op->name, SHMRING_LIT("host")))
			continue;
		if (!(it = rt_slot(w, op->name, 1)))
			return -E2BIG;
		it->name = op->name;
		rc = set_one(w, it, rt_render(c, req, &op->value));
	}
	for (size_t i = 0; i < c->headers[OP_APPEND].n && rc == 0; i++) {
		const struct op *op = &c->headers[OP_APPEND].v[i];
		if (!op->has_value)
			continue;
		if (!(it = rt_slot(w, op->name, 1)))
			return -E2BIG;
		if (!it->present)
			it->name = op->name;
		rc = rt_append_one(w, it, rt_render(c, req, &op->value));
	}
	return rc;
}

static int emit_headers(struct work *w, struct shmring_reply *rep)
{
	int rc = 0;
	for (size_t i = 0; i < w->n && rc == 0; i++)
		if (w->items[i].cleared)
			rc = shmring_reply_clear_req_header(rep, w->items[i].name);
	for (size_t i = 0; i < w->n && rc == 0; i++) {
		const struct item *it = &w->items[i];
		if (!it->present || !it->changed)
			continue;
		for (uint32_t j = 0; j < it->nvals && rc == 0; j++)
			rc = j == 0 ? shmring_reply_set_req_header(rep, it->name, it->vals[0])
			            : shmring_reply_add_req_header(rep, it->name, it->vals[j]);
	}
	return rc;
}

/* The query rules, after the form body's fields when http_method moves
 * them there; SET_QUERY only if either applied. */
static int transform_query(struct work *w, struct shmring_reply *rep)
{
	struct rt_conf *c = w->c;
	const struct shmring_request *req = w->req;
	int rc = load(w, req->query, 0);
	int merged = rc == 0 ? rt_method_body_to_query(w) : 0;
	if (merged < 0)
		return merged;
	if (!c->any_query && !merged)
		return 0;
	struct item *it;
	for (size_t i = 0; i < c->query[OP_REMOVE].n && rc == 0; i++)
		if ((it = find(w, c->query[OP_REMOVE].v[i].name, 0)))
			it->present = 0;
	for (size_t i = 0; i < c->query[OP_RENAME].n && rc == 0; i++) {
		const struct op *op = &c->query[OP_RENAME].v[i];
		struct item *src = find(w, op->name, 0);
		struct item *dst = rt_slot(w, op->new_name, 0);
		if (!dst)
			return -E2BIG;
		if (dst == src)
			continue;
		dst->name = op->new_name;
		if (src) {
			dst->vals = src->vals;
			dst->nvals = src->nvals;
			dst->flag = src->flag;
			dst->present = 1;
			src->present = 0;
		} else {
			dst->present = 0; /* qs[new] = qs[old] (nil) */
		}
	}
	for (size_t i = 0; i < c->query[OP_REPLACE].n && rc == 0; i++) {
		const struct op *op = &c->query[OP_REPLACE].v[i];
		if (op->has_value && (it = find(w, op->name, 0)))
			rc = set_one(w, it, rt_render(c, req, &op->value));
	}
	for (size_t i = 0; i < c->query[OP_ADD].n && rc == 0; i++) {
		const struct op *op = &c->query[OP_ADD].v[i];
		if (!op->has_value || find(w, op->name, 0))
			continue;
		if (!(it = rt_slot(w, op->name, 0)))
			return -E2BIG;
		rc = set_one(w, it, rt_render(c, req, &op->value));
	}
	for (size_t i = 0; i < c->query[OP_APPEND].n && rc == 0; i++) {
		const struct op *op = &c->query[OP_APPEND].v[i];
		if (!op->has_value)
			continue;
		if (!(it = rt_slot(w, op->name, 0)))
			return -E2BIG;
		rc = rt_append_one(w, it, rt_render(c, req, &op->value));
	}
	if (rc < 0)
		return rc;
	/* Rebuild: one arg per value (a flag that got values loses it). */
	struct shmring_pc_arg args[MAX_ITEMS * 2];
	size_t n = 0, len;
	for (size_t i = 0; i < w->n; i++) {
		const struct item *x = &w->items[i];
		if (!x->present)
			continue;
		if (x->nvals == 0 && x->flag && n < MAX_ITEMS * 2)
			args[n++] = (struct shmring_pc_arg){x->name, {NULL, 0}, 1};
		for (uint32_t j = 0; j < x->nvals && n < MAX_ITEMS * 2; j++)
			args[n++] = (struct shmring_pc_arg){x->name, x->vals[j], 0};
	}
	if (shmring_pc_args_encode(args, n, &c->query_buf, &c->query_cap, &len) < 0)
		return -ENOMEM;
	return shmring_reply_set_query(rep, (struct shmring_str){c->query_buf, len});
}

static int rt_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	struct rt_conf *c = conf;
	int rc = reserve_all(c, req);
	if (rc < 0)
		return rc;
	if (c->has_uri)
		rc = shmring_reply_set_path(rep, rt_render(c, req, &c->uri));
	if (rc == 0 && c->method.len)
		rc = shmring_reply_set_method(rep, c->method);
	/* Both transforms share the work area: headers are emitted before
	 * the query reuses it. The area is large (items + pools): static,
	 * since a worker runs one hook at a time. */
	static struct work w;
	w.c = c;
	w.req = req;
	if (rc == 0)
		rc = transform_headers(&w);
	if (rc == 0)
		rc = emit_headers(&w, rep);
	if (rc == 0 && c->any_body) {
		/* Kong's transform_body reads the Content-Type back after
		 * the header rules set the headers (a rule may add it). */
		const struct item *it = find(&w, SHMRING_LIT("content-type"), 1);
		struct shmring_str ct =
		    it && it->nvals ? it->vals[0] : (struct shmring_str){NULL, 0};
		rc = rt_transform_body(c, req, ct, rep);
		if (rc == -EFBIG || rc == -EBADMSG || rc == -E2BIG)
			return rt_body_refused(rep, rc);
	}
	if (rc == 0)
		rc = transform_query(&w, rep);
	if (rc == -E2BIG)
		shmring_reply_error(rep,
		                    SHMRING_LIT(PLUGIN ": more than 512 headers or query args"));
	return rc;
}

static const char *const needs_all[] = {SHMRING_NEED_ALL, NULL};

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "request-transformer",
    .version = "1.0.0",
    .phases = SHMRING_PHASE_ACCESS | SHMRING_PHASE_REWRITE,
    /* Rules and templates may name any header or arg, and a query rule
     * rebuilds the whole query: every header and arg is needed. */
    .needs_headers = needs_all,
    .needs_query = needs_all,
    .conf_new = rt_conf_new,
    .config = rt_config,
    .conf_free = rt_conf_free,
    .access = rt_access,
    .rewrite = rt_access,
};
