/* SPDX-License-Identifier: MIT */
/* A test plugin with a config schema of every kind of field; its conf_new
 * keeps the config it was given, as msgpack, so test_schema.c can see what
 * shmringd's schema pass made of a config. Its access hook reads a declared
 * and an undeclared header and a query arg (the test library's read trace). */
#include "shmring_plugin.h"

#include <stdlib.h>
#include <string.h>

static const char *const modes[] = {"a", "b", NULL};
static const struct shmring_field limits[] = {
    {.name = "second",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .min = 1,
     .max = 100},
    {.name = "policy", .type = SHMRING_FIELD_STRING, .def = "\"local\""},
    {.name = NULL}};
static const struct shmring_field tag = {.type = SHMRING_FIELD_STRING, .len_min = 1};
static const struct shmring_field config[] = {
    {.name = "name", .type = SHMRING_FIELD_STRING, .flags = SHMRING_FIELD_REQUIRED, .len_max = 8},
    {.name = "mode", .type = SHMRING_FIELD_STRING, .def = "\"a\"", .one_of = modes},
    {.name = "count",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "3",
     .min = 1,
     .max = 10},
    {.name = "ratio", .type = SHMRING_FIELD_NUMBER, .def = "0.5"},
    {.name = "on", .type = SHMRING_FIELD_BOOLEAN},
    {.name = "tags", .type = SHMRING_FIELD_ARRAY, .def = "[]", .len_max = 2, .elements = &tag},
    {.name = "limits",
     .type = SHMRING_FIELD_RECORD,
     .flags = SHMRING_FIELD_REQUIRED,
     .fields = limits},
    {.name = "fail_open",
     .type = SHMRING_FIELD_BOOLEAN,
     .flags = SHMRING_FIELD_GATEWAY,
     .def = "false"},
    {.name = NULL}};

static int probe_conf_new(void *wstate, const msgpack_object *cfg, void **out, char *err,
                          size_t errlen)
{
	msgpack_sbuffer *sb = msgpack_sbuffer_new();
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, *cfg);
	*out = sb;
	return 0;
}

static void probe_conf_free(void *conf)
{
	if (conf)
		msgpack_sbuffer_free(conf);
}

static int probe_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	struct shmring_str v;
	shmring_req_header(req, SHMRING_LIT("X-Declared"), &v);
	shmring_req_header(req, SHMRING_LIT("x-undeclared"), &v);
	shmring_req_query(req, SHMRING_LIT("q"), &v);
	return 0;
}

static const char *const needs_headers[] = {"x-declared", NULL};
static const char *const needs_query[] = {SHMRING_NEED_ALL, NULL};

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "schema-probe",
    .phases = SHMRING_PHASE_ACCESS,
    .needs_headers = needs_headers,
    .needs_query = needs_query,
    .conf_new = probe_conf_new,
    .conf_free = probe_conf_free,
    .access = probe_access,
    .config = config,
};
