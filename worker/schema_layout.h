/* SPDX-License-Identifier: MIT */
/* A plugin's declared config schema as this build lays it out: the
 * descriptor's fields and entity checks, whichever shmring_plugin.h the
 * plugin was built with. Used by the daemon's schema pass (host_schema.c)
 * and by shmringctl schema (schema_gen.c). */
#ifndef SHMRINGD_SCHEMA_LAYOUT_H
#define SHMRINGD_SCHEMA_LAYOUT_H

#include "shmring_plugin.h"

#include <msgpack.h>

/* The plugin's config fields in this build's layout (NULL: none, or a
 * descriptor from before them); a plugin built with the older, shorter
 * field gets a copy upgraded once and kept for the life of the process. */
const struct shmring_field *shmringd__plugin_config_schema(const struct shmring_plugin *d);
/* One config schema of a plugin, for one Kong stub: the plugin's own
 * (stub NULL) or one of its config_variants. */
struct shmringd_schema {
	const char *stub; /* NULL: the plugin's own, shmring-<name> */
	const struct shmring_field *fields;
	const struct shmring_check *checks; /* NULL: none */
	const char *kong_validator;         /* NULL: none */
	uint32_t flags;                     /* SHMRING_CONFIG_* */
};
/* d's schema for the Kong stub named stub (NULL: its own); or, with stub
 * NULL and a config, the one shmringd takes that config through (the first
 * variant whose when_field the config sets, else its own). 0, or -ENOENT:
 * the plugin declares none such. */
int shmringd__plugin_schema(const struct shmring_plugin *d, const char *stub,
                            const msgpack_object *config, struct shmringd_schema *out);

/* Whether the Lua pattern matches somewhere in s[0..n) (string.match(s,
 * pattern) ~= nil): 1 or 0; -1 for a pattern with what shmringd does not
 * run (captures, %b, %f: lua_pattern.c). */
int shmringd__lua_match(const char *pattern, const char *s, size_t n);

/* The schema pass alone (host_schema.c), as shmringd runs it before
 * conf_new: config checked against one of d's schemas and
 * rebuilt, defaults filled in, into sb, unpacked into *out (the caller
 * inits and destroys both). 0, or -EINVAL / -ENOMEM with err set. */
int shmringd__config_fill(const struct shmring_plugin *d, const struct shmringd_schema *schema,
                          const msgpack_object *config, msgpack_sbuffer *sb, msgpack_unpacked *out,
                          char *err, size_t errlen);

#endif
