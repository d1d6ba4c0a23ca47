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
/* Its entity checks, Kong validator and SHMRING_CONFIG_* flags (NULL / 0:
 * none, or a descriptor from before them). */
const struct shmring_check *shmringd__plugin_config_checks(const struct shmring_plugin *d);
const char *shmringd__plugin_kong_validator(const struct shmring_plugin *d);
uint32_t shmringd__plugin_config_flags(const struct shmring_plugin *d);

/* Whether the Lua pattern matches somewhere in s[0..n) (string.match(s,
 * pattern) ~= nil): 1 or 0; -1 for a pattern with what shmringd does not
 * run (captures, %b, %f: lua_pattern.c). */
int shmringd__lua_match(const char *pattern, const char *s, size_t n);

/* The schema pass alone (host_schema.c), as shmringd runs it before
 * conf_new: config checked against d's schema (which it must have) and
 * rebuilt, defaults filled in, into sb, unpacked into *out (the caller
 * inits and destroys both). 0, or -EINVAL / -ENOMEM with err set. */
int shmringd__config_fill(const struct shmring_plugin *d, const msgpack_object *config,
                          msgpack_sbuffer *sb, msgpack_unpacked *out, char *err, size_t errlen);

#endif
