/* SPDX-License-Identifier: MIT */
/* shmringctl schema NAME|FILE.so [--kong | --markdown] [--plugin-dir DIRS]:
 * a plugin's declared config schema (struct shmring_field) written out as
 * the Kong stub's schema.lua, or as the docs' field table. The plugin is
 * dlopen'ed lazily (its shmring_* calls stay unresolved, nothing of it
 * runs), so this works without a daemon. */
#include "shmring_plugin.h"

#include <dlfcn.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

int shmringctl__schema(int argc, char **argv);

static const char *const type_names[] = {
    [SHMRING_FIELD_STRING] = "string", [SHMRING_FIELD_INTEGER] = "integer",
    [SHMRING_FIELD_NUMBER] = "number", [SHMRING_FIELD_BOOLEAN] = "boolean",
    [SHMRING_FIELD_ARRAY] = "array",   [SHMRING_FIELD_RECORD] = "record",
};

static const char *type_name(uint32_t t)
{
	return t < sizeof(type_names) / sizeof(type_names[0]) && type_names[t] ? type_names[t]
	                                                                       : "?";
}

static void lua_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
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
			fprintf(f, "%s%s = ", first ? " " : ", ", k);
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

/* One field's attributes: `type = ..., required = ..., ...` (records span
 * lines, at indent). */
static void lua_attrs(FILE *f, const struct shmring_field *d, int indent)
{
	fprintf(f, "type = \"%s\"", type_name(d->type));
	if (d->flags & SHMRING_FIELD_REQUIRED)
		fputs(", required = true", f);
	if (d->def) {
		json_error_t je;
		json_t *j = json_loads(d->def, JSON_DECODE_ANY, &je);
		fputs(", default = ", f);
		if (j)
			lua_value(f, j);
		else
			fputs("nil --[[ not JSON ]]", f);
		json_decref(j);
	}
	if (d->len_min)
		fprintf(f, ", len_min = %u", d->len_min);
	if (d->len_max)
		fprintf(f, ", len_max = %u", d->len_max);
	if (d->match) {
		fputs(", match = ", f);
		lua_string(f, d->match);
	}
	if (d->one_of) {
		fputs(", one_of = {", f);
		for (const char *const *o = d->one_of; *o; o++) {
			fputs(o == d->one_of ? " " : ", ", f);
			lua_string(f, *o);
		}
		fputs(" }", f);
	}
	if (d->flags & SHMRING_FIELD_BETWEEN)
		fprintf(f, ", between = { %lld, %lld }", (long long)d->min, (long long)d->max);
	if (d->type == SHMRING_FIELD_ARRAY && d->elements) {
		fputs(", elements = { ", f);
		lua_attrs(f, d->elements, indent);
		fputs(" }", f);
	}
	if (d->type == SHMRING_FIELD_RECORD) {
		fputs(", fields = {\n", f);
		lua_fields(f, d->fields, indent + 4);
		fprintf(f, "%*s}", indent, "");
	}
}

static void lua_fields(FILE *f, const struct shmring_field *fields, int indent)
{
	for (const struct shmring_field *d = fields; d && d->name; d++) {
		fprintf(f, "%*s{ %s = { ", indent, "", d->name);
		lua_attrs(f, d, indent);
		fputs(" } },\n", f);
	}
}

static void kong_schema(FILE *f, const struct shmring_plugin *p, const struct shmring_field *schema)
{
	fprintf(f,
	        "-- Schema of the shmring-%s Kong plugin, generated from the config schema\n"
	        "-- its C plugin declares (`shmringctl schema %s --kong > schema.lua`):\n"
	        "-- change the C declaration, then regenerate this file.\n"
	        "local typedefs = require(\"kong.db.schema.typedefs\")\n"
	        "\n"
	        "return {\n"
	        "    name = \"shmring-%s\",\n"
	        "    fields = {\n"
	        "        { protocols = typedefs.protocols_http },\n"
	        "        { config = {\n"
	        "            type = \"record\",\n"
	        "            fields = {\n",
	        p->name, p->name, p->name);
	lua_fields(f, schema, 16);
	fputs("            },\n"
	      "        } },\n"
	      "    },\n"
	      "}\n",
	      f);
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
		fprintf(f, " %s%s%s |", d->def ? "`" : "", d->def ? d->def : "",
		        d->def                                ? "`"
		        : (d->flags & SHMRING_FIELD_REQUIRED) ? "required"
		                                              : "");
		if (d->one_of)
			for (const char *const *o = d->one_of; *o; o++)
				fprintf(f, "%s`%s`", o == d->one_of ? " one of " : ", ", *o);
		if (d->flags & SHMRING_FIELD_BETWEEN)
			fprintf(f, " %lld..%lld", (long long)d->min, (long long)d->max);
		if (d->match)
			fprintf(f, " matching `%s`", d->match);
		if (d->len_min || d->len_max) {
			fprintf(f, " length %u..", d->len_min);
			if (d->len_max)
				fprintf(f, "%u", d->len_max);
		}
		fprintf(f, " | %s%s |\n", d->doc ? d->doc : "",
		        d->flags & SHMRING_FIELD_GATEWAY ? " (the gateway's)" : "");
		if (d->type == SHMRING_FIELD_RECORD) {
			char sub[260];
			snprintf(sub, sizeof(sub), "%s.", name);
			md_fields(f, d->fields, sub);
		}
	}
}

int shmringctl__schema(int argc, char **argv)
{
	const char *what = NULL, *dirs = SHMRING_PLUGIN_DIR;
	int markdown = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kong"))
			markdown = 0;
		else if (!strcmp(argv[i], "--markdown"))
			markdown = 1;
		else if (!strcmp(argv[i], "--plugin-dir") && i + 1 < argc)
			dirs = argv[++i];
		else if (argv[i][0] != '-' && !what)
			what = argv[i];
		else {
			fprintf(stderr,
			        "usage: shmringctl schema NAME|FILE.so [--kong | --markdown] "
			        "[--plugin-dir DIRS]\n");
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
	int rc = 1;
	if (!p || p->abi_version != SHMRING_PLUGIN_ABI_VERSION)
		fprintf(stderr, "shmringctl schema: %s: no descriptor of plugin ABI %u\n", path,
		        SHMRING_PLUGIN_ABI_VERSION);
	else if (p->struct_size < offsetof(struct shmring_plugin, config) + sizeof(p->config) ||
	         !p->config)
		fprintf(stderr, "shmringctl schema: plugin %s declares no config schema\n",
		        p->name);
	else {
		if (markdown) {
			printf(
			    "| field | type | default | allowed | what |\n|---|---|---|---|---|\n");
			md_fields(stdout, p->config, "");
		} else {
			kong_schema(stdout, p, p->config);
		}
		rc = 0;
	}
	dlclose(dl);
	return rc;
}
