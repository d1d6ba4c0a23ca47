/* SPDX-License-Identifier: MIT */
/* A plugin's declared config schema as this build lays it out
 * (schema_layout.h). The descriptor's struct_size says which
 * shmring_plugin.h a plugin was built with: one whose descriptor ends before
 * config_checks has the first, shorter struct shmring_field. */
#include "schema_layout.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Plugins built before config_checks was appended have the fields without
 * kong_typedef and what follows: this many bytes each. */
#define FIELD_V1_SIZE offsetof(struct shmring_field, kong_typedef)

static bool has_checks_member(const struct shmring_plugin *d)
{
	return d->struct_size >=
	       offsetof(struct shmring_plugin, config_checks) + sizeof(d->config_checks);
}

static const struct shmring_field *upgrade_list(const unsigned char *v1);

/* One field of the older layout into the current one (the new members 0). */
static void upgrade_one(struct shmring_field *to, const unsigned char *v1)
{
	memset(to, 0, sizeof(*to));
	memcpy(to, v1, FIELD_V1_SIZE);
	if (to->elements) {
		struct shmring_field *e = malloc(sizeof(*e));
		if (e)
			upgrade_one(e, (const unsigned char *)to->elements);
		to->elements = e;
	}
	if (to->fields)
		to->fields = upgrade_list((const unsigned char *)to->fields);
}

static const struct shmring_field *upgrade_list(const unsigned char *v1)
{
	size_t n = 0;
	while (((const struct shmring_field *)(const void *)(v1 + n * FIELD_V1_SIZE))->name)
		n++;
	struct shmring_field *out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++)
		upgrade_one(&out[i], v1 + i * FIELD_V1_SIZE);
	return out;
}

/* An older plugin's fields, upgraded once per descriptor and kept for the
 * life of the process (plugins are never unloaded while it runs). */
static struct {
	const struct shmring_field *from, *to;
} upgraded[32];
static pthread_mutex_t upgraded_lock = PTHREAD_MUTEX_INITIALIZER;

const struct shmring_field *shmringd__plugin_config_schema(const struct shmring_plugin *d)
{
	if (d->struct_size < offsetof(struct shmring_plugin, config) + sizeof(d->config) ||
	    !d->config)
		return NULL;
	if (has_checks_member(d))
		return d->config;
	const struct shmring_field *to = NULL;
	pthread_mutex_lock(&upgraded_lock);
	size_t i = 0;
	while (i < sizeof(upgraded) / sizeof(upgraded[0]) && upgraded[i].from &&
	       upgraded[i].from != d->config)
		i++;
	if (i < sizeof(upgraded) / sizeof(upgraded[0])) {
		if (!upgraded[i].from) {
			upgraded[i].from = d->config;
			upgraded[i].to = upgrade_list((const unsigned char *)d->config);
		}
		to = upgraded[i].to;
	}
	pthread_mutex_unlock(&upgraded_lock);
	return to;
}

static bool has_variants_member(const struct shmring_plugin *d)
{
	return d->struct_size >=
	       offsetof(struct shmring_plugin, config_variants) + sizeof(d->config_variants);
}

static bool sets(const msgpack_object *config, const char *field)
{
	for (uint32_t i = 0;
	     config && config->type == MSGPACK_OBJECT_MAP && i < config->via.map.size; i++) {
		const msgpack_object *k = &config->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(field) &&
		    !memcmp(k->via.str.ptr, field, k->via.str.size))
			return config->via.map.ptr[i].val.type != MSGPACK_OBJECT_NIL;
	}
	return false;
}

int shmringd__plugin_schema(const struct shmring_plugin *d, const char *stub,
                            const msgpack_object *config, struct shmringd_schema *out)
{
	*out = (struct shmringd_schema){0};
	const struct shmring_config_variant *v = has_variants_member(d) ? d->config_variants : NULL;
	for (; v && v->stub; v++) {
		if (stub ? !strcmp(stub, v->stub) : sets(config, v->when_field)) {
			*out = (struct shmringd_schema){.stub = v->stub,
			                                .fields = v->fields,
			                                .checks = v->checks,
			                                .kong_validator = v->kong_validator,
			                                .flags = v->flags};
			return v->fields ? 0 : -ENOENT;
		}
	}
	if (stub && strcmp(stub, d->name))
		return -ENOENT;
	out->fields = shmringd__plugin_config_schema(d);
	if (has_checks_member(d)) {
		out->checks = d->config_checks;
		out->kong_validator = d->config_kong_validator;
		out->flags = d->config_flags;
	}
	return out->fields ? 0 : -ENOENT;
}
