/* SPDX-License-Identifier: MIT */
/* log: Kong's http-log config, read into an HTTP sink spec (log_http.c). */
#ifndef LOG_HTTP_H
#define LOG_HTTP_H

#include "shmring_plugin.h"

#include <stddef.h>

/* custom_fields_by_lua (Kong's loggers' typedefs.lua_code): evaluated by
 * the gateway, which sends the values within each entry (lua/shmring/
 * custom_fields.lua); the daemon only checks the declaration. */
extern const struct shmring_field log_lua_code; /* a non-empty string */
#define LOG_CUSTOM_FIELDS                                                                          \
	{                                                                                          \
		.name = "custom_fields_by_lua", .type = SHMRING_FIELD_MAP,                         \
		.kong_typedef = SHMRING_TYPEDEF_LUA_CODE, .keys = &log_lua_code,                   \
		.elements = &log_lua_code                                                          \
	}

/* The log plugin's config variants: the shmring-http-log stub's (Kong's
 * http-log), taken when a config sets http_endpoint; {.stub = NULL}-ended. */
extern const struct shmring_config_variant log_http_variants[];

/* Kong's http-log config cfg as the spec of an HTTP sink (worker/sink.c:
 * "<url>?method=..&header=..") in spec[len]. 0, or -EINVAL / -E2BIG with
 * the reason in err. */
int log_http_spec(const msgpack_object *cfg, char *spec, size_t len, char *err, size_t errlen);

#endif
