/* SPDX-License-Identifier: MIT */
/* shmringctl schema NAME|FILE.so [--kong | --markdown | --config JSON]
 * [--plugin-dir DIRS]: a plugin's declared config schema (struct
 * shmring_field) written out as the Kong stub's schema.lua, or as the docs'
 * field table; or a config through it as shmringd takes it (what conf_new
 * would get, as JSON, or the refusal). The plugin is
 * dlopen'ed lazily (its shmring_* calls stay unresolved, nothing of it
 * runs), so this works without a daemon. */
#include "schema_layout.h"
#include "shmring/plugin_test.h" /* JSON <-> msgpack */

#include <dlfcn.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int shmringctl__schema(int argc, char **argv);

static const char *const type_names[] = {
    [SHMRING_FIELD_STRING] = "string", [SHMRING_FIELD_INTEGER] = "integer",
    [SHMRING_FIELD_NUMBER] = "number", [SHMRING_FIELD_BOOLEAN] = "boolean",
    [SHMRING_FIELD_ARRAY] = "array",   [SHMRING_FIELD_RECORD] = "record",
    [SHMRING_FIELD_SET] = "set",       [SHMRING_FIELD_MAP] = "map",
};

static const char *const typedef_names[] = {
    [SHMRING_TYPEDEF_HEADER_NAME] = "header_name",
    [SHMRING_TYPEDEF_PATH] = "path",
    [SHMRING_TYPEDEF_HOST] = "host",
    [SHMRING_TYPEDEF_PORT] = "port",
    [SHMRING_TYPEDEF_SNI] = "sni",
    [SHMRING_TYPEDEF_URL] = "url",
    [SHMRING_TYPEDEF_LUA_CODE] = "lua_code",
};

/* Kong's typedef of d, or NULL. */
static const char *typedef_name(const struct shmring_field *d)
{
	uint32_t t = d->kong_typedef;
	return t < sizeof(typedef_names) / sizeof(typedef_names[0]) ? typedef_names[t] : NULL;
}

static const char *type_name(uint32_t t)
{
	return t < sizeof(type_names) / sizeof(type_names[0]) && type_names[t] ? type_names[t]
	                                                                       : "?";
}

/* A Lua string literal: quotes and backslashes escaped, control bytes as
 * \ddd, so no declared string can end the literal or the line. */
static void lua_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x20 || *c == 0x7f)
			fprintf(f, "\\%03u", *c);
		else if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

/* A name written bare into the schema.lua (a field, a table key) must be a
 * Lua name and not a keyword: anything else would be Lua source of the
 * plugin's choosing in a file Kong loads, or a file that does not load. */
static bool lua_name_ok(const char *s, size_t n)
{
	static const char *const keywords[] = {
	    "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
	    "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
	    "repeat",   "return", "then", "true", "until",  "while", NULL};
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	for (const char *const *k = keywords; *k; k++)
		if (strlen(*k) == n && !memcmp(*k, s, n))
			return false;
	return true;
}

/* A dotted field path of an entity check ("redis.host"): Lua names. */
static bool lua_path_ok(const char *s)
{
	for (;;) {
		size_t n = strcspn(s, ".");
		if (!lua_name_ok(s, n))
			return false;
		if (!s[n])
			return true;
		s += n + 1;
	}
}

/* A table key from a JSON default: bare when it is a Lua name, else ["..."]. */
static void lua_key(FILE *f, const char *k)
{
	if (lua_name_ok(k, strlen(k))) {
		fputs(k, f);
	} else {
		fputc('[', f);
		lua_string(f, k);
		fputc(']', f);
	}
}

/* A NULL-terminated list of strings as a Lua table: { "a", "b" }. */
static void lua_strings(FILE *f, const char *const *list)
{
	fputs("{", f);
	for (const char *const *o = list; *o; o++) {
		fputs(o == list ? " " : ", ", f);
		lua_string(f, *o);
	}
	fputs(" }", f);
}

/* A JSON value as a Lua literal. */
static void lua_value(FILE *f, const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		lua_string(f, json_string_value(j));
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		break;
	case JSON_REAL:
		fprintf(f, "%.17g", json_real_value(j));
		break;
	case JSON_TRUE:
		fputs("true", f);
		break;
	case JSON_FALSE:
		fputs("false", f);
		break;
	case JSON_ARRAY: {
		fputs("{", f);
		for (size_t i = 0; i < json_array_size(j); i++) {
			fputs(i ? ", " : " ", f);
			lua_value(f, json_array_get(j, i));
		}
		fputs(json_array_size(j) ? " }" : "}", f);
		break;
	}
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		int first = 1;
		fputs("{", f);
		json_object_foreach((json_t *)j, k, v)
		{
			fputs(first ? " " : ", ", f);
			lua_key(f, k);
			fputs(" = ", f);
			lua_value(f, v);
			first = 0;
		}
		fputs(first ? "}" : " }", f);
		break;
	}
	case JSON_NULL:
		fputs("nil", f);
		break;
	}
}

static void lua_fields(FILE *f, const struct shmring_field *fields, int indent);
static void lua_def(FILE *f, const struct shmring_field *d, int indent);

/* A map's keys or values left undeclared: strings, as Kong's maps mostly are. */
static const struct shmring_field any_string = {.type = SHMRING_FIELD_STRING};

/* ", " before every item but the first. */
static const char *sep(int *first)
{
	const char *s = *first ? "" : ", ";
	*first = 0;
	return s;
}

/* One field's attributes: `type = ..., required = ..., ...` (records span
 * lines, at indent); without `type` for a typedef's overrides. */
static void lua_attrs(FILE *f, const struct shmring_field *d, int indent, int with_type)
{
	int first = 1;
	if (with_type)
		fprintf(f, "%stype = \"%s\"", sep(&first), type_name(d->type));
	if (d->flags & SHMRING_FIELD_REQUIRED)
		fprintf(f, "%srequired = true", sep(&first));
	if (d->def) {
		json_error_t je;
		json_t *j = json_loads(d->def, JSON_DECODE_ANY, &je);
		fprintf(f, "%sdefault = ", sep(&first));
		if (j)
			lua_value(f, j);
		else
			fputs("nil --[[ not JSON ]]", f);
		json_decref(j);
	}
	if (d->len_min)
		fprintf(f, "%slen_min = %u", sep(&first), d->len_min);
	else if (d->flags & SHMRING_FIELD_EMPTY_OK)
		fprintf(f, "%slen_min = 0", sep(&first));
	if (d->len_max)
		fprintf(f, "%slen_max = %u", sep(&first), d->len_max);
	if (d->match) {
		fprintf(f, "%smatch = ", sep(&first));
		lua_string(f, d->match);
	}
	if (d->one_of && d->type == SHMRING_FIELD_INTEGER) { /* decimal values */
		fprintf(f, "%sone_of = {", sep(&first));
		for (const char *const *o = d->one_of; *o; o++)
			fprintf(f, "%s%s", o == d->one_of ? " " : ", ", *o);
		fputs(" }", f);
	} else if (d->one_of) {
		fprintf(f, "%sone_of = ", sep(&first));
		lua_strings(f, d->one_of);
	}
	if (d->match_none) {
		fprintf(f, "%smatch_none = {", sep(&first));
		for (const struct shmring_match_none *m = d->match_none; m->pattern; m++) {
			fputs(m == d->match_none ? " { pattern = " : ", { pattern = ", f);
			lua_string(f, m->pattern);
			fputs(", err = ", f);
			lua_string(f, m->err);
			fputs(" }", f);
		}
		fputs(" }", f);
	}
	if (d->flags & SHMRING_FIELD_BETWEEN)
		fprintf(f, "%sbetween = { %lld, %lld }", sep(&first), (long long)d->min,
		        (long long)d->max);
	if (d->flags & SHMRING_FIELD_BETWEEN_REAL)
		fprintf(f, "%sbetween = { %.17g, %.17g }", sep(&first), d->real_min, d->real_max);
	if (d->flags & SHMRING_FIELD_GT)
		fprintf(f, "%sgt = %.17g", sep(&first), d->gt);
	if ((d->type == SHMRING_FIELD_ARRAY || d->type == SHMRING_FIELD_SET) && d->elements) {
		fprintf(f, "%selements = ", sep(&first));
		lua_def(f, d->elements, indent);
	}
	if (d->type == SHMRING_FIELD_MAP && with_type) { /* a typedef has its own */
		fprintf(f, "%skeys = ", sep(&first));
		lua_def(f, d->keys ? d->keys : &any_string, indent);
		fprintf(f, ", values = ");
		lua_def(f, d->elements ? d->elements : &any_string, indent);
	}
	if (d->type == SHMRING_FIELD_RECORD) {
		fprintf(f, "%sfields = {\n", sep(&first));
		lua_fields(f, d->fields, indent + 4);
		fprintf(f, "%*s}", indent, "");
	}
}

/* A field's definition: `{ type = ... }`, or Kong's typedef with the
 * field's own attributes as overrides: `typedefs.port { default = 6379 }`. */
static void lua_def(FILE *f, const struct shmring_field *d, int indent)
{
	const char *td = typedef_name(d);
	if (!td) {
		fputs("{ ", f);
		lua_attrs(f, d, indent, 1);
		fputs(" }", f);
		return;
	}
	fprintf(f, "typedefs.%s", td);
	char *over = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&over, &n);
	if (m) {
		lua_attrs(m, d, indent, 0);
		fclose(m);
	}
	if (over && n)
		fprintf(f, " { %s }", over);
	free(over);
}

static void lua_fields(FILE *f, const struct shmring_field *fields, int indent)
{
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		if (d->shorthand_for || (d->flags & SHMRING_FIELD_NOT_IN_KONG))
			continue; /* shmringd's, or a shorthand (lua_shorthands) */
		fprintf(f, "%*s{ %s = ", indent, "", d->name);
		lua_def(f, d, indent);
		fputs(" },\n", f);
	}
}

static void lua_match(FILE *f, const char *name, const struct shmring_match *m)
{
	int first = 1;
	fprintf(f, "%s = {", name);
	if (m->eq) {
		fprintf(f, "%s eq = ", sep(&first));
		lua_string(f, m->eq);
	}
	if (m->one_of) {
		fprintf(f, "%s one_of = ", sep(&first));
		lua_strings(f, m->one_of);
	}
	if (m->flags & SHMRING_MATCH_GT)
		fprintf(f, "%s gt = %.17g", sep(&first), m->gt);
	if (m->contains) {
		fprintf(f, "%s contains = ", sep(&first));
		lua_string(f, m->contains);
	}
	if (m->flags & SHMRING_MATCH_REQUIRED)
		fprintf(f, "%s required = true", sep(&first));
	fputs(" }", f);
}

/* The config's entity checks, on the plugin schema: "config." before every
 * field name, as Kong's own plugins write them. */
static void lua_checks(FILE *f, const struct shmring_check *checks)
{
	if (!checks || !checks->kind)
		return;
	fputs("    entity_checks = {\n", f);
	for (const struct shmring_check *c = checks; c->kind; c++) {
		if (c->kind == SHMRING_CHECK_CONDITIONAL) {
			fputs("        { conditional = {\n            if_field = \"config.", f);
			fprintf(f, "%s\", ", c->if_field);
			lua_match(f, "if_match", &c->if_match);
			fprintf(f, ",\n            then_field = \"config.%s\", ", c->then_field);
			lua_match(f, "then_match", &c->then_match);
			fputs(",\n        } },\n", f);
			continue;
		}
		fprintf(f, "        { %s = {",
		        c->kind == SHMRING_CHECK_AT_LEAST_ONE_OF ? "at_least_one_of"
		                                                 : "mutually_exclusive");
		for (const char *const *n = c->fields; n && *n; n++)
			fprintf(f, "%s\"config.%s\"", n == c->fields ? " " : ", ", *n);
		fputs(" } },\n", f);
	}
	fputs("    },\n", f);
}

/* What in a declaration cannot be written into a schema.lua as a Lua name
 * or a number (see lua_name_ok): NULL, or a message naming it. */
static const char *fields_problem(const struct shmring_field *fields, const char *prefix, char *buf,
                                  size_t len)
{
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		if (!lua_name_ok(d->name, strlen(d->name))) {
			snprintf(buf, len, "field name '%s%.64s' is not a Lua name", prefix,
			         d->name);
			return buf;
		}
		if (d->one_of && d->type == SHMRING_FIELD_INTEGER)
			for (const char *const *o = d->one_of; *o; o++) {
				const char *c = *o + (**o == '-');
				if (!*c || strspn(c, "0123456789") != strlen(c)) {
					snprintf(
					    buf, len,
					    "field '%s%.64s': integer one_of entry '%.32s' is not "
					    "a decimal number",
					    prefix, d->name, *o);
					return buf;
				}
			}
		if (d->shorthand_for && !lua_path_ok(d->shorthand_for)) {
			snprintf(
			    buf, len,
			    "field '%s%.64s': shorthand_for '%.64s' is not a path of Lua names",
			    prefix, d->name, d->shorthand_for);
			return buf;
		}
		char inner[256];
		snprintf(inner, sizeof(inner), "%s%.64s.", prefix, d->name);
		const char *why = fields_problem(d->fields, inner, buf, len);
		if (!why && d->elements)
			why = fields_problem(d->elements->fields, inner, buf, len);
		if (why)
			return why;
	}
	return NULL;
}

static const char *declaration_problem(const struct shmringd_schema *s, char *buf, size_t len)
{
	if (s->stub &&
	    (!*s->stub || strlen(s->stub) > 63 ||
	     strspn(s->stub, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(s->stub))) {
		snprintf(buf, len, "variant stub name '%.64s' must match [a-z0-9_-]{1,63}",
		         s->stub);
		return buf;
	}
	const char *why = fields_problem(s->fields, "", buf, len);
	for (const struct shmring_check *c = s->checks; !why && c && c->kind; c++) {
		const char *bad = NULL;
		if (c->kind == SHMRING_CHECK_CONDITIONAL) {
			if (!c->if_field || !lua_path_ok(c->if_field))
				bad = c->if_field ? c->if_field : "(none)";
			else if (!c->then_field || !lua_path_ok(c->then_field))
				bad = c->then_field ? c->then_field : "(none)";
		}
		for (const char *const *n = c->fields; !bad && n && *n; n++)
			if (!lua_path_ok(*n))
				bad = *n;
		if (bad) {
			snprintf(buf, len, "entity check field '%.64s' is not a path of Lua names",
			         bad);
			why = buf;
		}
	}
	return why;
}

/* The fields declared as older names (shorthand_for) as Kong's
 * shorthand_fields of the config record, in the deprecated form Kong 3.6+
 * gives rate-limiting's flat redis_* fields: the value is checked against
 * the shorthand's own type, moved to its place by `func` (the new field
 * wins when both are set), refused when both are set and differ. */
static void lua_shorthands(FILE *f, const char *stub, const struct shmring_field *fields)
{
	int any = 0;
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		if (!d->shorthand_for)
			continue;
		if (!any++)
			fputs("            shorthand_fields = {\n", f);
		fprintf(f, "                { %s = {\n                    ", d->name);
		lua_attrs(f, d, 20, 1);
		fputs(",\n                    deprecation = {\n"
		      "                        replaced_with = { { path = {",
		      f);
		const char *part = d->shorthand_for;
		for (int first = 1; *part; first = 0) {
			size_t n = strcspn(part, ".");
			fprintf(f, "%s\"%.*s\"", first ? " " : ", ", (int)n, part);
			part += n + (part[n] == '.');
		}
		fprintf(f,
		        " } } },\n"
		        "                        message = \"shmring-%s: config.%s is deprecated, "
		        "please use config.%s instead\",\n"
		        "                        removal_in_version = \"4.0\",\n"
		        "                    },\n"
		        "                    func = function(value)\n"
		        "                        return ",
		        stub, d->name, d->shorthand_for);
		int depth = 0;
		for (part = d->shorthand_for; *part; depth++) {
			size_t n = strcspn(part, ".");
			fprintf(f, "{ %.*s = ", (int)n, part);
			part += n + (part[n] == '.');
		}
		fputs("value", f);
		while (depth--)
			fputs(" }", f);
		fputs("\n                    end,\n                } },\n", f);
	}
	if (any)
		fputs("            },\n", f);
}

static void kong_schema(FILE *f, const struct shmring_plugin *p, const struct shmringd_schema *s)
{
	const char *stub = s->stub ? s->stub : p->name;
	fprintf(f,
	        "-- Schema of the shmring-%s Kong plugin, generated from the config schema\n"
	        "-- its C plugin declares (`shmringctl schema %s%s%s --kong > schema.lua`):\n"
	        "-- change the C declaration, then regenerate this file.\n"
	        "local typedefs = require(\"kong.db.schema.typedefs\")\n"
	        "\n"
	        "return {\n"
	        "    name = \"shmring-%s\",\n"
	        "    fields = {\n",
	        stub, p->name, s->stub ? " --variant " : "", s->stub ? s->stub : "", stub);
	if (s->flags & SHMRING_CONFIG_NO_CONSUMER)
		fputs("        { consumer = typedefs.no_consumer },\n", f);
	fputs("        { protocols = typedefs.protocols_http },\n"
	      "        { config = {\n"
	      "            type = \"record\",\n"
	      "            fields = {\n",
	      f);
	lua_fields(f, s->fields, 16);
	fputs("            },\n", f);
	lua_shorthands(f, stub, s->fields);
	if (s->kong_validator)
		fprintf(f, "            custom_validator = %s,\n", s->kong_validator);
	fputs("        } },\n"
	      "    },\n",
	      f);
	lua_checks(f, s->checks);
	fputs("}\n", f);
}

/* Text in a markdown table cell: '|' escaped and control bytes written as
 * \n, \xHH, so a declared string never ends its cell or its row. */
static void md_text(FILE *f, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '\n')
			fputs("\\n", f);
		else if (*c < 0x20 || *c == 0x7f)
			fprintf(f, "\\x%02x", *c);
		else if (*c == '|')
			fputs("\\|", f);
		else
			fputc(*c, f);
	}
}

/* A declared string as a code span in a cell (``s`` when it holds a backtick). */
static void md_code(FILE *f, const char *s)
{
	const char *fence = strchr(s, '`') ? "`` " : "`";
	fputs(fence, f);
	md_text(f, s);
	fputs(strchr(s, '`') ? " ``" : "`", f);
}

static void md_fields(FILE *f, const struct shmring_field *fields, const char *prefix)
{
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		char name[256];
		snprintf(name, sizeof(name), "%s%s", prefix, d->name);
		fprintf(f, "| `%s` | %s%s%s |", name, type_name(d->type),
		        d->type == SHMRING_FIELD_ARRAY && d->elements ? " of " : "",
		        d->type == SHMRING_FIELD_ARRAY && d->elements ? type_name(d->elements->type)
		                                                      : "");
		fputc(' ', f);
		if (d->def)
			md_code(f, d->def);
		else if (d->flags & SHMRING_FIELD_REQUIRED)
			fputs("required", f);
		fputs(" |", f);
		if (d->one_of)
			for (const char *const *o = d->one_of; *o; o++) {
				fputs(o == d->one_of ? " one of " : ", ", f);
				md_code(f, *o);
			}
		if (d->flags & SHMRING_FIELD_BETWEEN)
			fprintf(f, " %lld..%lld", (long long)d->min, (long long)d->max);
		if (d->match) {
			fputs(" matching ", f);
			md_code(f, d->match);
		}
		if (d->len_min || d->len_max) {
			fprintf(f, " length %u..", d->len_min);
			if (d->len_max)
				fprintf(f, "%u", d->len_max);
		}
		fputs(" | ", f);
		md_text(f, d->doc ? d->doc : "");
		if (d->flags & SHMRING_FIELD_GATEWAY)
			fputs(" (the gateway's)", f);
		if (d->shorthand_for)
			fprintf(f, " (an older name of `%s`)", d->shorthand_for);
		if (d->flags & SHMRING_FIELD_NOT_IN_KONG)
			fputs(" (not in the Kong schema)", f);
		fputs(" |\n", f);
		if (d->type == SHMRING_FIELD_RECORD) {
			char sub[260];
			snprintf(sub, sizeof(sub), "%s.", name);
			md_fields(f, d->fields, sub);
		}
	}
}

/* config_json through p's schema s (the variant's if one is named, else
 * the one shmringd would choose for it): 0 and the config conf_new would
 * get on stdout, or 1 and the refusal on stderr. */
static int config_through(const struct shmring_plugin *p, const struct shmringd_schema *s,
                          const char *variant, const char *config_json)
{
	msgpack_sbuffer in_sb, out_sb;
	msgpack_unpacked in, out;
	msgpack_sbuffer_init(&in_sb);
	msgpack_sbuffer_init(&out_sb);
	msgpack_unpacked_init(&in);
	msgpack_unpacked_init(&out);
	char err[512];
	struct shmringd_schema chosen = *s;
	int rc = shmring_test_json_msgpack(config_json, &in_sb, &in, err, sizeof(err)) < 0;
	if (!rc && !variant) /* as shmringd chooses: by the config */
		shmringd__plugin_schema(p, NULL, &in.data, &chosen);
	rc = rc || shmringd__config_fill(p, &chosen, &in.data, &out_sb, &out, err, sizeof(err)) < 0;
	if (rc) {
		fprintf(stderr, "%s\n", err);
	} else {
		json_t *j = shmring_test_msgpack_json(&out.data);
		char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("%s\n", text ? text : "");
		free(text);
		json_decref(j);
	}
	msgpack_unpacked_destroy(&out);
	msgpack_unpacked_destroy(&in);
	msgpack_sbuffer_destroy(&out_sb);
	msgpack_sbuffer_destroy(&in_sb);
	return rc;
}

int shmringctl__schema(int argc, char **argv)
{
	const char *what = NULL, *dirs = SHMRING_PLUGIN_DIR, *config_json = NULL, *variant = NULL;
	int markdown = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kong"))
			markdown = 0;
		else if (!strcmp(argv[i], "--markdown"))
			markdown = 1;
		else if (!strcmp(argv[i], "--variant") && i + 1 < argc)
			variant = argv[++i];
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config_json = argv[++i];
		else if (!strcmp(argv[i], "--plugin-dir") && i + 1 < argc)
			dirs = argv[++i];
		else if (argv[i][0] != '-' && !what)
			what = argv[i];
		else {
			fprintf(stderr,
			        "usage: shmringctl schema NAME|FILE.so [--variant STUB] [--kong | "
			        "--markdown | --config JSON] [--plugin-dir DIRS]\n");
			return 2;
		}
	}
	if (!what) {
		fprintf(stderr, "shmringctl schema: which plugin? (a name or a .so file)\n");
		return 2;
	}
	char path[4096] = "";
	if (strchr(what, '/')) {
		snprintf(path, sizeof(path), "%s", what);
	} else {
		/* NAME.so in the first directory of the ':'-separated list that has it. */
		for (const char *s = dirs; *s && !path[0];) {
			size_t n = strcspn(s, ":");
			snprintf(path, sizeof(path), "%.*s/%s.so", (int)n, s, what);
			FILE *probe = fopen(path, "r");
			if (probe)
				fclose(probe);
			else
				path[0] = '\0';
			s += n + (s[n] == ':');
		}
		if (!path[0]) {
			fprintf(stderr, "shmringctl schema: no %s.so in %s\n", what, dirs);
			return 1;
		}
	}
	void *dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (!dl) {
		fprintf(stderr, "shmringctl schema: %s\n", dlerror());
		return 1;
	}
	const struct shmring_plugin *p = dlsym(dl, SHMRING_PLUGIN_SYMBOL);
	struct shmringd_schema s;
	char whybuf[256];
	const char *why;
	int rc = 1;
	if (!p || p->abi_version != SHMRING_PLUGIN_ABI_VERSION)
		fprintf(stderr, "shmringctl schema: %s: no descriptor of plugin ABI %u\n", path,
		        SHMRING_PLUGIN_ABI_VERSION);
	else if (shmringd__plugin_schema(p, variant ? variant : p->name, NULL, &s) < 0)
		fprintf(stderr, "shmringctl schema: plugin %s declares no config schema%s%s\n",
		        p->name, variant ? " for the stub " : "", variant ? variant : "");
	else if (config_json)
		rc = config_through(p, &s, variant, config_json);
	else if ((why = declaration_problem(&s, whybuf, sizeof(whybuf))))
		fprintf(stderr, "shmringctl schema: plugin %s: %s\n", p->name, why);
	else {
		if (markdown) {
			printf(
			    "| field | type | default | allowed | what |\n|---|---|---|---|---|\n");
			md_fields(stdout, s.fields, "");
		} else {
			kong_schema(stdout, p, &s);
		}
		rc = 0;
	}
	dlclose(dl);
	return rc;
}
