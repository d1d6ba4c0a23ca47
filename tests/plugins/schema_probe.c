/* SPDX-License-Identifier: MIT */
/* A test plugin with a config schema of every kind of field; its conf_new
 * keeps the config it was given, as msgpack, so test_schema.c can see what
 * shmringd's schema pass made of a config. Its access hook reads a declared
 * and an undeclared header and a query arg (the test library's read trace).
 * Built as is; with PROBE_KONG, a schema of Kong's typedefs, gt, sets,
 * shorthands and entity checks; with PROBE_V1, the first schema as a plugin
 * built before those existed lays it out; with PROBE_HOSTILE (and
 * PROBE_BAD_NAME), declarations shmringctl schema must escape or refuse. */
#include "shmring_plugin.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(PROBE_KONG)
#define PROBE_NAME "schema-probe-kong"
static const struct shmring_field string = {.type = SHMRING_FIELD_STRING};
static const char *const modes[] = {"a", "b", "c", NULL};
static const char *const conc[] = {"-1", "1", NULL};
static const struct shmring_match_none no_host[] = {
    {"^[Hh][Oo][Ss][Tt]$", "cannot contain 'Host' header"}, {NULL, NULL}};
static const struct shmring_field hdr_key = {.type = SHMRING_FIELD_STRING,
                                             .kong_typedef = SHMRING_TYPEDEF_HEADER_NAME,
                                             .match_none = no_host};
static const struct shmring_field redis[] = {
    {.name = "host", .type = SHMRING_FIELD_STRING},
    {.name = "port", .type = SHMRING_FIELD_INTEGER, .def = "6379"},
    {.name = NULL}};
static const struct shmring_field config[] = {
    {.name = "hdr", .type = SHMRING_FIELD_STRING, .kong_typedef = SHMRING_TYPEDEF_HEADER_NAME},
    {.name = "path", .type = SHMRING_FIELD_STRING, .kong_typedef = SHMRING_TYPEDEF_PATH},
    {.name = "host", .type = SHMRING_FIELD_STRING, .kong_typedef = SHMRING_TYPEDEF_HOST},
    {.name = "port", .type = SHMRING_FIELD_INTEGER, .kong_typedef = SHMRING_TYPEDEF_PORT},
    {.name = "sni", .type = SHMRING_FIELD_STRING, .kong_typedef = SHMRING_TYPEDEF_SNI},
    {.name = "url", .type = SHMRING_FIELD_STRING, .kong_typedef = SHMRING_TYPEDEF_URL},
    {.name = "above", .type = SHMRING_FIELD_NUMBER, .flags = SHMRING_FIELD_GT, .gt = 0.5},
    {.name = "uniq", .type = SHMRING_FIELD_SET, .elements = &string},
    {.name = "mode", .type = SHMRING_FIELD_STRING, .one_of = modes},
    {.name = "level", .type = SHMRING_FIELD_NUMBER},
    {.name = "redis", .type = SHMRING_FIELD_RECORD, .fields = redis},
    {.name = "redis_host", .type = SHMRING_FIELD_STRING, .shorthand_for = "redis.host"},
    {.name = "old_path", .type = SHMRING_FIELD_STRING, .shorthand_for = "path"},
    {.name = "hdrs", .type = SHMRING_FIELD_MAP, .keys = &hdr_key, .elements = &string},
    {.name = "ratio",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_BETWEEN_REAL,
     .real_min = 0.25,
     .real_max = 0.75},
    {.name = "conc", .type = SHMRING_FIELD_INTEGER, .one_of = conc},
    {.name = "wire_name", .type = SHMRING_FIELD_STRING, .flags = SHMRING_FIELD_NOT_IN_KONG},
    {.name = NULL}};
/* Another stub's config, for a config that sets `other`. */
static const struct shmring_field other[] = {
    {.name = "other", .type = SHMRING_FIELD_STRING, .flags = SHMRING_FIELD_REQUIRED},
    {.name = "n", .type = SHMRING_FIELD_INTEGER, .def = "5"},
    {.name = NULL}};
static const struct shmring_config_variant variants[] = {
    {.stub = "schema-probe-other", .when_field = "other", .fields = other}, {.stub = NULL}};
static const char *const one_needed[] = {"hdr", "path", "url", "redis.host", NULL};
static const char *const exclusive[] = {"host", "url", NULL};
static const char *const b_or_c[] = {"b", "c", NULL};
static const char *const headers[] = {"X-A", "X-B", NULL};
static const struct shmring_check checks[] = {
    {.kind = SHMRING_CHECK_AT_LEAST_ONE_OF, .fields = one_needed},
    {.kind = SHMRING_CHECK_MUTUALLY_EXCLUSIVE, .fields = exclusive},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "mode",
     .if_match = {.eq = "a"},
     .then_field = "redis.host",
     .then_match = {.flags = SHMRING_MATCH_REQUIRED}},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "mode",
     .if_match = {.one_of = b_or_c},
     .then_field = "uniq",
     .then_match = {.contains = "x"}},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "level",
     .if_match = {.flags = SHMRING_MATCH_GT, .gt = 1},
     .then_field = "mode",
     .then_match = {.eq = "c"}},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "level",
     .if_match = {.flags = SHMRING_MATCH_GT, .gt = 5},
     .then_field = "hdr",
     .then_match = {.one_of = headers}},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "level",
     .if_match = {.flags = SHMRING_MATCH_GT, .gt = 9},
     .then_field = "above",
     .then_match = {.flags = SHMRING_MATCH_GT, .gt = 2}},
    {.kind = 0}};
#elif defined(PROBE_HOSTILE)
/* Declared strings that would end a Lua literal or a line if written raw,
 * and (PROBE_BAD_NAME) a field name that is Lua source: shmringctl schema
 * must write the first faithfully and refuse the second. */
#if defined(PROBE_BAD_NAME)
#define PROBE_NAME "schema-probe-bad-name"
#define HOSTILE_FIELD "x = os.exit(3), y"
#else
#define PROBE_NAME "schema-probe-hostile"
#define HOSTILE_FIELD "mode"
#endif
static const char *const modes[] = {"a\"]] os.exit(3) --", "line\nbreak", "bell\a\\", NULL};
static const struct shmring_field config[] = {
    {.name = HOSTILE_FIELD, .type = SHMRING_FIELD_STRING, .one_of = modes},
    {.name = "pat", .type = SHMRING_FIELD_STRING, .match = "^[%w\n\"]+$"},
    {.name = "tbl",
     .type = SHMRING_FIELD_MAP,
     .def = "{\"a key\": \"v\\u0001\", \"end\": 1, \"ok\": true}",
     .keys = &(const struct shmring_field){.type = SHMRING_FIELD_STRING},
     .elements = &(const struct shmring_field){.type = SHMRING_FIELD_STRING}},
    {.name = NULL}};
#elif !defined(PROBE_V1)

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
#endif

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

#if defined(PROBE_V1)
/* The first struct shmring_field, before kong_typedef was appended: an
 * older plugin's descriptor ends before config_checks and points at these. */
struct field_v1 {
	const char *name;
	uint32_t type, flags;
	const char *def;
	const char *const *one_of;
	const char *match;
	int64_t min, max;
	uint32_t len_min, len_max;
	const struct field_v1 *elements, *fields;
	const char *doc;
};
_Static_assert(sizeof(struct field_v1) == offsetof(struct shmring_field, kong_typedef),
               "the first layout is the current one's beginning");
#define PROBE_NAME "schema-probe-v1"
#define PROBE_STRUCT_SIZE offsetof(struct shmring_plugin, config_checks)
static const struct field_v1 v1_limits[] = {
    {.name = "second", .type = SHMRING_FIELD_INTEGER, .flags = SHMRING_FIELD_BETWEEN, .max = 9},
    {.name = NULL}};
static const struct field_v1 v1_tag = {.type = SHMRING_FIELD_STRING, .len_min = 1};
static const struct field_v1 v1_config[] = {
    {.name = "name", .type = SHMRING_FIELD_STRING, .flags = SHMRING_FIELD_REQUIRED},
    {.name = "tags", .type = SHMRING_FIELD_ARRAY, .def = "[\"t\"]", .elements = &v1_tag},
    {.name = "limits", .type = SHMRING_FIELD_RECORD, .def = "{}", .fields = v1_limits},
    {.name = NULL}};
#define PROBE_CONFIG ((const struct shmring_field *)(const void *)v1_config)
#else
#define PROBE_STRUCT_SIZE sizeof(struct shmring_plugin)
#define PROBE_CONFIG config
#endif
#ifndef PROBE_NAME
#define PROBE_NAME "schema-probe"
#endif

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = PROBE_STRUCT_SIZE,
    .name = PROBE_NAME,
    .phases = SHMRING_PHASE_ACCESS,
    .needs_headers = needs_headers,
    .needs_query = needs_query,
    .conf_new = probe_conf_new,
    .conf_free = probe_conf_free,
    .access = probe_access,
    .config = PROBE_CONFIG,
#if defined(PROBE_KONG)
    .config_checks = checks,
    .config_variants = variants,
#endif
};
