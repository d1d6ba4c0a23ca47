/* SPDX-License-Identifier: MIT */
/*
 * shmring_plugin.h: the C plugin ABI of shmringd.
 *
 * A plugin is a shared object (`<name>.so` in the daemon's plugin directory)
 * that exports ONE symbol, `shmring_plugin` (SHMRING_PLUGIN_SYMBOL), a
 * `const struct shmring_plugin` descriptor. Everything else a plugin needs
 * from the daemon is a function declared below (resolved against shmringd at
 * dlopen time; do not link libshmring into a plugin for these).
 *
 * Minimal plugin (see plugins/hello/hello.c for the full example):
 *
 *     #include <shmring/shmring_plugin.h>    // installed path; in-tree:
 *                                            // "shmring_plugin.h"
 *
 *     static int hello_access(void *conf, const struct shmring_request *req,
 *                             struct shmring_reply *rep)
 *     {
 *             shmring_reply_set_req_header(rep, SHMRING_LIT("X-Hello"),
 *                                          SHMRING_LIT("World"));
 *             return 0;
 *     }
 *
 *     SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
 *             .abi_version = SHMRING_PLUGIN_ABI_VERSION,
 *             .struct_size = sizeof(struct shmring_plugin),
 *             .name = "hello",
 *             .phases = SHMRING_PHASE_ACCESS,
 *             .access = hello_access,
 *     };
 *
 * Build: `cc -shared -fPIC -o hello.so hello.c $(pkg-config --cflags
 * shmring-plugin)`, or with CMake `find_package(shmring)` and
 * `shmring_add_plugin(hello SOURCES hello.c)` (inside this repo: the same
 * call, cmake/ShmringHelpers.cmake); `shmring-plugin-new NAME` writes a
 * whole project (docs/writing-plugins.md). Copy hello.so into the daemon's
 * plugin_dir (`pkg-config --variable=plugindir shmring-plugin`). Leave the
 * shmring_* functions below undefined: shmringd exports them. Check it, and
 * a config for it, with `shmringd --check hello.so '{"value": "x"}'`.
 *
 * ---------------------------------------------------------------------------
 * Life cycle, per shmringd worker process (each worker loads every plugin on
 * its own; nothing is shared between workers):
 *
 *   dlopen -> check abi_version/struct_size/name -> init(&wstate)
 *   for each CONF record:  conf_new(wstate, config, &conf, err)  (a config is
 *                          registered per channel and conf id; re-registering
 *                          an id calls conf_free on the old one first)
 *   for each ACCESS / REWRITE / HEADER_FILTER record: the hook, with the conf
 *   for each LOG record:   log(conf, entry)
 *   conf_free(conf)        when replaced, when the channel gets a new nginx
 *                          worker as owner, and at worker exit
 *   fini(wstate)           at worker exit (graceful stop, SIGHUP reload)
 *
 * Threading: every hook of a worker runs on that worker's single thread. A
 * hook must not block: no sleeping, no synchronous network or disk I/O (use
 * the log sinks below for output). A hook that takes long delays every
 * request on the channels that worker serves; one that does not return for
 * watchdog_ms (default 10 s) gets the worker killed and restarted. A worker
 * that crashes is restarted too; any record that crashes two workers in a
 * row is answered with an error instead of being retried (in practice a
 * CONF: after a restart a request record's conf id is unknown, so it is
 * answered "unknown conf" before a hook runs).
 *
 * Memory: every view (struct shmring_str, msgpack_object) handed to a hook
 * points into the daemon's private copy of the record (taken once, before it
 * is checked: the gateway cannot change it under the hook) or into its
 * per-record zone, and is valid ONLY until the hook returns. Copy what you keep (e.g. in conf_new,
 * copy the strings of the config you need). The reply builder copies its
 * arguments, so passing views of the request to it is fine.
 *
 * Errors: hooks return 0 on success or a negative value on failure. On
 * failure, or after shmring_reply_error(), the reply to nginx is
 * `{s = 1, e = <message>}` where the message is what the hook passed to
 * shmring_reply_error() (or "plugin error"), and the plugin's error counter
 * is bumped (`shmringctl stats`). The actions added before are discarded.
 * A policy decision such as "401 Unauthorized" is not an error: answer it
 * with shmring_reply_exit() and return 0.
 *
 * Wire protocol behind all of this: docs/protocol.md.
 * ---------------------------------------------------------------------------
 */
#ifndef SHMRING_PLUGIN_H
#define SHMRING_PLUGIN_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "shmring/protocol.h" /* record types, action ops, reply statuses */

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of this header. shmringd refuses (with
 * a message naming both versions) a plugin whose abi_version differs. */
#define SHMRING_PLUGIN_ABI_VERSION 1u
/* The one symbol each plugin exports. */
#define SHMRING_PLUGIN_SYMBOL "shmring_plugin"
/* Mark the descriptor exported even under -fvisibility=hidden. */
#define SHMRING_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Functions implemented by shmringd for plugins. */
#ifndef SHMRING_HOST_API
#define SHMRING_HOST_API __attribute__((visibility("default")))
#endif

/* ---- strings ------------------------------------------------------------ */

/* A byte string that is NOT NUL-terminated (it usually points into the ring).
 * ptr may be NULL when len is 0. */
struct shmring_str {
	const char *ptr;
	size_t len;
};

/* A shmring_str from a string literal, without strlen. */
#define SHMRING_LIT(s) ((struct shmring_str){(s), sizeof(s) - 1})

/* A shmring_str from a NUL-terminated C string (NULL gives the empty one). */
static inline struct shmring_str shmring_cstr(const char *s)
{
	struct shmring_str r = {s, 0};
	if (s)
		while (s[r.len])
			r.len++;
	return r;
}

/* 1 if a equals b byte for byte. */
static inline int shmring_str_eq(struct shmring_str a, struct shmring_str b)
{
	if (a.len != b.len)
		return 0;
	for (size_t i = 0; i < a.len; i++)
		if (a.ptr[i] != b.ptr[i])
			return 0;
	return 1;
}

/* ---- the descriptor ----------------------------------------------------- */

/* Phases, as bits of shmring_plugin.phases. A record for a phase the plugin
 * did not declare is answered `{s = 1, e = "plugin X has no Y phase"}`. */
enum shmring_phase {
	SHMRING_PHASE_ACCESS = 1u << 0,
	SHMRING_PHASE_REWRITE = 1u << 1,
	SHMRING_PHASE_HEADER_FILTER = 1u << 2,
	SHMRING_PHASE_LOG = 1u << 3,
};

/* In a `needs_*` list: "every one of them" (the Lua stub then sends all
 * headers / all query args). Use as the only entry: {SHMRING_NEED_ALL, NULL}. */
#define SHMRING_NEED_ALL "*"

struct shmring_request;
struct shmring_reply;
struct shmring_log_record;

/* ---- the config schema ---------------------------------------------------- */

/*
 * A plugin declares its config once, here, as a list of fields (the
 * descriptor's `config`). shmringd checks every config against it and fills
 * in the defaults before conf_new, which so sees every declared field with a
 * value of the declared type (or absent, for an optional field without a
 * default) and nothing else; a refusal names the field ("hello: config.value
 * must be a string"). `shmringctl schema NAME --kong` writes the Kong
 * schema.lua from the same list, and `--markdown` the docs' field table.
 * Checks the schema cannot say (a file that opens, an order between fields)
 * stay in conf_new; for Kong, a plugin writes such a check once more in Lua
 * (`config_kong_validator`) so its Kong schema refuses the same configs.
 *
 *     static const char *const generators[] = {"uuid", "tracker", NULL};
 *     static const struct shmring_field config[] = {
 *             {.name = "header_name", .type = SHMRING_FIELD_STRING,
 *              .def = "\"X-Id\"", .len_min = 1},
 *             {.name = "generator", .type = SHMRING_FIELD_STRING,
 *              .flags = SHMRING_FIELD_REQUIRED, .def = "\"uuid\"",
 *              .one_of = generators},
 *             {.name = "limit", .type = SHMRING_FIELD_INTEGER,
 *              .flags = SHMRING_FIELD_BETWEEN, .min = 1, .max = 100},
 *             SHMRING_GATEWAY_FIELDS("false"),
 *             {.name = NULL}};
 */
enum shmring_field_type {
	SHMRING_FIELD_STRING = 1,
	SHMRING_FIELD_INTEGER = 2,
	SHMRING_FIELD_NUMBER = 3,
	SHMRING_FIELD_BOOLEAN = 4,
	SHMRING_FIELD_ARRAY = 5,  /* of `elements` */
	SHMRING_FIELD_RECORD = 6, /* of `fields` (a nested map) */
	SHMRING_FIELD_SET = 7,    /* an array of `elements`, repeated values dropped (Kong's set) */
	SHMRING_FIELD_MAP = 8,    /* string `keys` to `elements` values (Kong's map) */
};
/* shmring_field.kong_typedef: one of Kong's typedefs (kong.db.schema.typedefs),
 * written as `typedefs.NAME` in the Kong schema (with the field's own
 * attributes as overrides) and checked by shmringd with Kong's rule and
 * message. The field's `type` is still set: string, or integer for PORT. */
enum shmring_kong_typedef {
	SHMRING_TYPEDEF_NONE = 0,
	SHMRING_TYPEDEF_HEADER_NAME = 1, /* A-Z a-z 0-9 _ - */
	SHMRING_TYPEDEF_PATH = 2,        /* starts with '/', RFC 3986 characters, no "//" */
	SHMRING_TYPEDEF_HOST = 3,        /* a name or an IP, no port */
	SHMRING_TYPEDEF_PORT = 4,        /* integer 0..65535 */
	SHMRING_TYPEDEF_SNI = 5,         /* a host name, not an IP, no port */
	SHMRING_TYPEDEF_URL = 6,         /* scheme://host... */
	/* a MAP of names to Lua code (non-empty strings): the gateway's schema
	 * compiles the code (Kong's sandbox), shmringd only checks the strings */
	SHMRING_TYPEDEF_LUA_CODE = 7,
};
/* shmring_field.flags */
#define SHMRING_FIELD_REQUIRED (1u << 0) /* refused when absent (after the default) */
#define SHMRING_FIELD_BETWEEN (1u << 1)  /* min <= value <= max (integers, numbers) */
/* The gateway's, not the plugin's (fail_open, timeout): in the Kong schema,
 * never passed to conf_new. */
#define SHMRING_FIELD_GATEWAY (1u << 2)
#define SHMRING_FIELD_GT (1u << 3) /* value > gt (integers, numbers) */
/* real_min <= value <= real_max: `between` with fractions (numbers) */
#define SHMRING_FIELD_BETWEEN_REAL (1u << 4)
/* Taken by shmringd but not written in the Kong schema: a field the Kong
 * stub sends under another name than its schema's (http-log's timeout is
 * sent as http_timeout, the stub keeping `timeout` for itself). */
#define SHMRING_FIELD_NOT_IN_KONG (1u << 5)
/* strings: "" is a value (Kong's len_min = 0); every other string field
 * refuses it, as Kong's do by default */
#define SHMRING_FIELD_EMPTY_OK (1u << 6)

/* The gateway's two fields, which end every plugin's Kong schema: fail_open
 * (its default, "true" or "false": skip the plugin when the daemon cannot
 * answer) and timeout (ms the gateway waits, 1..60000, default 250). */
#define SHMRING_GATEWAY_FIELDS(fail_open_default)                                                  \
	{.name = "fail_open",                                                                      \
	 .type = SHMRING_FIELD_BOOLEAN,                                                            \
	 .flags = SHMRING_FIELD_GATEWAY,                                                           \
	 .def = fail_open_default,                                                                 \
	 .doc = "skip the plugin when the daemon cannot answer"},                                  \
	{                                                                                          \
		.name = "timeout", .type = SHMRING_FIELD_INTEGER,                                  \
		.flags = SHMRING_FIELD_GATEWAY | SHMRING_FIELD_BETWEEN, .def = "250", .min = 1,    \
		.max = 60000, .doc = "ms the gateway waits for the answer"                         \
	}

/* A Lua pattern a string must not hold, and the message (match_none). */
struct shmring_match_none {
	const char *pattern; /* NULL ends a list */
	const char *err;
};

struct shmring_field {
	const char *name; /* NULL ends a list */
	uint32_t type;    /* enum shmring_field_type */
	uint32_t flags;   /* SHMRING_FIELD_* */
	/* The default as JSON text ("\"X-Hello\"", "250", "true", "[]"); NULL:
	 * none. */
	const char *def;
	const char *const *one_of; /* strings: NULL-terminated allowed values */
	/* strings: a Lua pattern Kong's schema checks (`match`); shmringd does
	 * not evaluate it, so conf_new enforces the same rule itself. */
	const char *match;
	int64_t min, max;                     /* with SHMRING_FIELD_BETWEEN */
	uint32_t len_min, len_max;            /* strings: bytes, arrays: elements; 0: no bound */
	const struct shmring_field *elements; /* ARRAY: the elements' type (name unused) */
	const struct shmring_field *fields;   /* RECORD: its fields, {.name = NULL}-ended */
	const char *doc;                      /* one line for the docs' field table */
	/* Appended with config_checks: a plugin whose descriptor ends before
	 * config_checks was built without these (shmringd reads its fields so). */
	uint32_t kong_typedef; /* enum shmring_kong_typedef */
	uint32_t reserved_;    /* 0 */
	double gt;             /* with SHMRING_FIELD_GT */
	/* An older spelling of the field at this dotted path ("redis.host"),
	 * Kong's shorthand: shmringd moves a value given here to there before
	 * anything else (refusing both set to different values); the Kong
	 * schema has it among its deprecated shorthand_fields. */
	const char *shorthand_for;
	double real_min, real_max; /* with SHMRING_FIELD_BETWEEN_REAL */
	/* MAP: the keys' type (a string field); `elements` is the values'. */
	const struct shmring_field *keys;
	/* strings: refused when one of these Lua patterns is found in the
	 * value, with its message (Kong's match_none); {NULL}-ended. */
	const struct shmring_match_none *match_none;
};

/* An entity check on the config (Kong's entity_checks, written on the plugin
 * schema with "config." before every field name). Field names are dotted
 * from the config: "redis.host". shmringd runs them on the config with its
 * defaults filled in, after the fields' own checks, with Kong's messages. */
enum shmring_check_kind {
	SHMRING_CHECK_AT_LEAST_ONE_OF = 1,    /* one of `fields` is set */
	SHMRING_CHECK_MUTUALLY_EXCLUSIVE = 2, /* at most one of `fields` is set */
	SHMRING_CHECK_CONDITIONAL = 3,        /* if if_field matches, then_field must match */
};
/* One side of a conditional check: each attribute that is set must hold. */
struct shmring_match {
	const char *eq;            /* a string equal to this */
	const char *const *one_of; /* a string, one of these (NULL-terminated) */
	const char *contains;      /* an array or set holding this string */
	uint32_t flags;            /* SHMRING_MATCH_* */
	uint32_t reserved_;        /* 0 */
	double gt;                 /* with SHMRING_MATCH_GT: a number above it */
};
#define SHMRING_MATCH_REQUIRED (1u << 0) /* then_match: then_field must be set */
#define SHMRING_MATCH_GT (1u << 1)
struct shmring_check {
	uint32_t kind;             /* enum shmring_check_kind; 0 ends a list */
	uint32_t reserved_;        /* 0 */
	const char *const *fields; /* AT_LEAST_ONE_OF, MUTUALLY_EXCLUSIVE: NULL-terminated */
	const char *if_field, *then_field; /* CONDITIONAL */
	struct shmring_match if_match, then_match;
};
/* shmring_plugin.config_flags */
#define SHMRING_CONFIG_NO_CONSUMER (1u << 0) /* Kong: not for a consumer (typedefs.no_consumer) */

struct shmring_plugin {
	/* SHMRING_PLUGIN_ABI_VERSION at the time the plugin was built. */
	uint32_t abi_version;
	/* sizeof(struct shmring_plugin) at build time; lets later ABI
	 * versions append fields. */
	uint32_t struct_size;
	/* Unique plugin name: [a-z0-9_-]{1,63}, the name CONF records use
	 * ("plugin" key). Conventionally the .so is named <name>.so. */
	const char *name;
	/* Free-form plugin version, shown in logs; may be NULL. */
	const char *version;
	/* SHMRING_PHASE_* bits this plugin implements; each needs its hook. */
	uint32_t phases;
	uint32_t reserved0_; /* 0 */

	/* What the snapshot must carry, beyond the fixed fields (method,
	 * scheme, host, path, client_ip, consumer, credential, route_id,
	 * service_id, ctx, status). NULL-terminated lists of lower-case names,
	 * NULL for none, {SHMRING_NEED_ALL, NULL} for all. The Lua stub of the
	 * plugin sends exactly these; the daemon does not filter. */
	const char *const *needs_headers;      /* request headers */
	const char *const *needs_query;        /* query args */
	const char *const *needs_resp_headers; /* HEADER_FILTER: response headers */

	/* Per worker process, once, before any other hook; optional. Store
	 * per-worker state in *wstate (passed to conf_new). Return < 0 to
	 * refuse: the worker then answers every CONF for this plugin with the
	 * message written to err (NUL-terminated, at most errlen bytes). */
	int (*init)(void **wstate, char *err, size_t errlen);
	/* Per worker process, once, at exit; optional. */
	void (*fini)(void *wstate);

	/* Validate and prepare a config (the "config" map of a CONF record;
	 * msgpack type MAP, possibly empty). On success return 0 and store the
	 * plugin's own parsed config in *conf (may stay NULL). On failure
	 * return < 0 and write why into err (NUL-terminated, <= errlen bytes):
	 * nginx receives it as the CONF reply's "e". Optional: without it every
	 * config is accepted and the hooks get conf == NULL. */
	int (*conf_new)(void *wstate, const msgpack_object *config, void **conf, char *err,
	                size_t errlen);
	/* Free what conf_new made; optional (called with conf == NULL too). */
	void (*conf_free)(void *conf);

	/* Request phases: read the request through `req`, answer through
	 * `rep`. Return 0, or < 0 on failure (see "Errors" above). */
	int (*access)(void *conf, const struct shmring_request *req, struct shmring_reply *rep);
	int (*rewrite)(void *conf, const struct shmring_request *req, struct shmring_reply *rep);
	int (*header_filter)(void *conf, const struct shmring_request *req,
	                     struct shmring_reply *rep);
	/* LOG records: fire and forget, there is no reply. Hand output to a
	 * log sink (below). The return value is only counted (< 0 = error). */
	int (*log)(void *conf, const struct shmring_log_record *rec);

	/* Appended within ABI 1 (struct_size tells whether a plugin has it):
	 * the config schema, ended by {.name = NULL}; NULL: none (conf_new gets the
	 * config as it came). See "the config schema" above. */
	const struct shmring_field *config;
	/* Appended within ABI 1 with the fields' kong_typedef and gt (see
	 * there): the config's entity checks, {.kind = 0}-ended, NULL for none. */
	const struct shmring_check *config_checks;
	/* A check conf_new makes that the schema cannot say, as the Lua source
	 * of Kong's custom_validator for the config record (`function(config)
	 * ... return true end`, or a name the schema.lua defines); NULL: none.
	 * shmringd never runs it: conf_new refuses the same configs in C. */
	const char *config_kong_validator;
	uint32_t config_flags; /* SHMRING_CONFIG_* */
	uint32_t reserved1_;   /* 0 */
	/* Appended within ABI 1 after config_flags: the configs of other Kong
	 * stubs this plugin serves (the log plugin serves shmring-http-log),
	 * {.stub = NULL}-ended; NULL: none. shmringd takes a config through
	 * the first variant whose `when_field` it sets, else through `config`. */
	const struct shmring_config_variant *config_variants;
};

/* Another config schema of a plugin, for the Kong stub `shmring-<stub>`:
 * its fields, checks, Kong validator and flags as the descriptor's config_*
 * are for the plugin's own stub. `shmringctl schema NAME --variant STUB`. */
struct shmring_config_variant {
	const char *stub;       /* NULL ends a list */
	const char *when_field; /* a config that sets this field is this variant's */
	const struct shmring_field *fields;
	const struct shmring_check *checks;
	const char *kong_validator;
	uint32_t flags;     /* SHMRING_CONFIG_* */
	uint32_t reserved_; /* 0 */
};

/* ---- request views (ACCESS, REWRITE, HEADER_FILTER) --------------------- */

/* The snapshot of one request, decoded in place from the record. Missing
 * string fields have len 0; missing maps are NULL. The maps are msgpack
 * views (type MSGPACK_OBJECT_MAP); prefer the lookup functions below. */
struct shmring_request {
	uint32_t phase;   /* SHMRING_PHASE_* of this record */
	uint32_t channel; /* channel index (one nginx worker) */
	uint64_t req_id;  /* the client's request id */
	uint64_t conf_id; /* the "conf" id this record named */
	struct shmring_str method, scheme, host, path;
	struct shmring_str client_ip;
	struct shmring_str route_id, service_id;
	struct shmring_str consumer_id, consumer_username, consumer_custom_id;
	struct shmring_str credential;
	uint32_t status; /* HEADER_FILTER: response status, else 0 */
	uint32_t reserved_;
	const msgpack_object *headers;      /* declared request headers */
	const msgpack_object *query;        /* declared query args */
	const msgpack_object *ctx;          /* values set by SET_CTX earlier */
	const msgpack_object *resp_headers; /* HEADER_FILTER: response headers */
	const msgpack_object *root;         /* the whole snapshot map */
};

/* Look up a request header by lower-case name. Returns 1 and the first
 * value in *val if present (a header sent several times arrives as an
 * array; use shmring_req_header_nth for the others), 0 if absent (val is
 * then empty). Headers the plugin did not declare are never present. */
SHMRING_HOST_API int shmring_req_header(const struct shmring_request *req, struct shmring_str name,
                                        struct shmring_str *val);
/* The i-th value (0-based) of a possibly repeated request header; 1 or 0. */
SHMRING_HOST_API int shmring_req_header_nth(const struct shmring_request *req,
                                            struct shmring_str name, size_t i,
                                            struct shmring_str *val);
/* Query argument by name. Returns 1 with the (first) value, 2 if the arg is
 * present without a value (`?flag`, val empty), 0 if absent. */
SHMRING_HOST_API int shmring_req_query(const struct shmring_request *req, struct shmring_str name,
                                       struct shmring_str *val);
/* A ctx value set by an earlier phase (SET_CTX); 1 or 0. */
SHMRING_HOST_API int shmring_req_ctx(const struct shmring_request *req, struct shmring_str key,
                                     struct shmring_str *val);
/* HEADER_FILTER: a response header by lower-case name; 1 or 0. */
SHMRING_HOST_API int shmring_req_resp_header(const struct shmring_request *req,
                                             struct shmring_str name, struct shmring_str *val);
/* The request body, raw as the client sent it (no decoding of any kind).
 * The gateway reads and sends it only for a config that needs it (the
 * plugin's entry in lua/shmring/plugins.lua says which: `body(conf,
 * host)`), so most snapshots have none. Returns 1 with the body in *body
 * (possibly empty), 0 when the snapshot carries none, -EFBIG when the
 * gateway could not send it: larger than its `body_max` (docs/gateway.md,
 * "Request bodies"), or unreadable. */
SHMRING_HOST_API int shmring_req_body(const struct shmring_request *req, struct shmring_str *body);
/* The connection a request came on, as the gateway's nginx worker sees it
 * (nginx's variables of the same names): what Kong's correlation-id
 * `tracker` joins. */
struct shmring_connection {
	struct shmring_str server_addr; /* $server_addr: the address that accepted it */
	uint32_t server_port;           /* $server_port */
	uint32_t worker_pid;            /* the nginx worker's pid (ngx.worker.pid()) */
	uint64_t serial;                /* $connection: nginx's serial number of it */
	uint64_t requests;              /* $connection_requests: this one included */
	/* ngx.now() when the gateway took the snapshot, in ms since the epoch
	 * (nginx's cached time: ms resolution). */
	uint64_t time_ms;
};
/* The snapshot's connection fields: 1 and *conn filled, or 0 (conn zeroed)
 * when the snapshot has none. They are sent only to a plugin whose catalog
 * entry names the `connection` field (lua/shmring/plugins.lua, or its Kong
 * stub's `fields`): every other snapshot stays as small as before. */
SHMRING_HOST_API int shmring_req_connection(const struct shmring_request *req,
                                            struct shmring_connection *conn);
/* Generic: a string (or first string of an array) in a msgpack map by key;
 * 1 or 0. Works on any map view above and on configs in conf_new. */
SHMRING_HOST_API int shmring_map_str(const msgpack_object *map, struct shmring_str key,
                                     struct shmring_str *val);
/* Generic: the value under key in a msgpack map, or NULL. */
SHMRING_HOST_API const msgpack_object *shmring_map_get(const msgpack_object *map,
                                                       struct shmring_str key);

/* ---- the reply builder ---------------------------------------------------- */

/* Actions, in the order they are added, become the REPLY's "a" array; each
 * call writes one enum shmring_action_op (shmring/protocol.h). Every builder
 * call copies its arguments, returns 0, or -ENOMEM / -EMSGSIZE if the reply
 * grew past the channel's record size (the reply then becomes an error
 * reply). */

/* Upstream request (what the gateway sends to the service). */
SHMRING_HOST_API int shmring_reply_set_req_header(struct shmring_reply *rep,
                                                  struct shmring_str name,
                                                  struct shmring_str value);
SHMRING_HOST_API int shmring_reply_add_req_header(struct shmring_reply *rep,
                                                  struct shmring_str name,
                                                  struct shmring_str value);
SHMRING_HOST_API int shmring_reply_clear_req_header(struct shmring_reply *rep,
                                                    struct shmring_str name);
/* Path without the query string. */
SHMRING_HOST_API int shmring_reply_set_path(struct shmring_reply *rep, struct shmring_str path);
/* Raw query string, without the '?'. */
SHMRING_HOST_API int shmring_reply_set_query(struct shmring_reply *rep, struct shmring_str query);
SHMRING_HOST_API int shmring_reply_set_method(struct shmring_reply *rep, struct shmring_str method);

/* Replace the upstream request body (raw bytes); the gateway sets
 * Content-Length to its length (kong.service.request.set_raw_body /
 * ngx.req.set_body_data). Only on a request whose snapshot carried the
 * body (shmring_req_body() == 1). */
SHMRING_HOST_API int shmring_reply_set_body(struct shmring_reply *rep, struct shmring_str body);

/* Downstream response (what the client receives). From ACCESS these are
 * saved by the Lua side and applied in its header_filter. */
SHMRING_HOST_API int shmring_reply_set_resp_header(struct shmring_reply *rep,
                                                   struct shmring_str name,
                                                   struct shmring_str value);
SHMRING_HOST_API int shmring_reply_add_resp_header(struct shmring_reply *rep,
                                                   struct shmring_str name,
                                                   struct shmring_str value);

/* A response header for shmring_reply_exit(). */
struct shmring_header {
	struct shmring_str name;
	struct shmring_str value;
};
/* Short-circuit the request: the gateway answers `status` with `body`
 * (may be empty) and the given headers (nheaders may be 0, headers NULL).
 * Actions added after an exit are still sent but the Lua side stops
 * applying at the exit. */
SHMRING_HOST_API int shmring_reply_exit(struct shmring_reply *rep, uint32_t status,
                                        struct shmring_str body,
                                        const struct shmring_header *headers, size_t nheaders);

/* A value for later phases of the same request (arrives in req->ctx). */
SHMRING_HOST_API int shmring_reply_set_ctx(struct shmring_reply *rep, struct shmring_str key,
                                           struct shmring_str value);
/* Mark the request authenticated (kong.client.authenticate). Empty strings
 * are sent as nil; credential may be empty. */
SHMRING_HOST_API int shmring_reply_authenticate(struct shmring_reply *rep,
                                                struct shmring_str consumer_id,
                                                struct shmring_str username,
                                                struct shmring_str custom_id,
                                                struct shmring_str credential);

enum shmring_log_level {
	SHMRING_LOG_ERR = 0,
	SHMRING_LOG_WARN = 1,
	SHMRING_LOG_INFO = 2,
	SHMRING_LOG_DEBUG = 3,
};
/* A message for the gateway's error log (kong.log / ngx.log). */
SHMRING_HOST_API int shmring_reply_log(struct shmring_reply *rep, enum shmring_log_level level,
                                       struct shmring_str msg);

/* Turn the reply into `{s = 1, e = msg}` (drops the actions added so far).
 * Usually followed by `return -1`. */
SHMRING_HOST_API int shmring_reply_error(struct shmring_reply *rep, struct shmring_str msg);

/* Count this request as one the plugin could not handle normally because a
 * bounded resource of its own was exhausted (a full counter table); the
 * reply still applies its failure policy. Shown per plugin as `exhausted`
 * in `shmringctl stats` and as shmring_plugin_exhausted_total in the
 * metrics, so an operator sees a table that is too small. */
SHMRING_HOST_API void shmring_reply_exhausted(struct shmring_reply *rep);

/* ---- entities the gateway holds (consumers, credentials) ------------------ */

/*
 * An auth plugin that does not hold its consumers and credentials itself
 * asks the gateway for them, by kind (enum shmring_entity_kind,
 * shmring/protocol.h) and key: under Kong the answer is what Kong's own
 * plugin would load (kong.cache over the DAO), so the Admin API, decK,
 * DB-less and hybrid all apply. The daemon keeps the answers per channel
 * (negative ones too, a bounded LRU) until the gateway says they changed.
 *
 * From a phase hook only. Returns
 *   1  found: *val is the entity, a msgpack map (docs/protocol.md,
 *      "Entities", has the fields per kind), valid until the hook returns;
 *   0  the gateway has none (*val is nil);
 *   SHMRING_ENTITY_PENDING  not known yet: finish the hook without acting on
 *      the answer (return 0). The daemon drops this reply, asks the gateway
 *      for every pending key in one record and runs the hook again on the
 *      resent record, where the call answers 1 or 0. Ask for everything
 *      the request could need before returning, so one round trip does;
 *   -EINVAL (bad kind, empty key or longer than 4096 bytes), -ENOSPC (more
 *   than 8 misses in one hook), -ENOTSUP (outside a phase hook).
 */
#define SHMRING_ENTITY_PENDING 2
SHMRING_HOST_API int shmring_entity_get(const struct shmring_request *req,
                                        enum shmring_entity_kind kind, struct shmring_str key,
                                        const msgpack_object **val);
/* A number that changes whenever the gateway said entities changed (on the
 * request's channel; 0 outside a phase hook). A plugin that keeps something
 * built from entities (jwt: prepared keys, verified tokens) drops it when
 * this moves. */
SHMRING_HOST_API uint64_t shmring_entity_generation(const struct shmring_request *req);

/* ---- LOG records ---------------------------------------------------------- */

/* One LOG record: `entry` is the log map that nginx sent (Kong's log
 * serializer fields), valid until the hook returns. */
struct shmring_log_record {
	uint32_t channel;
	uint32_t reserved_;
	uint64_t req_id;
	uint64_t conf_id;
	const msgpack_object *entry; /* MSGPACK_OBJECT_MAP, or NIL if absent */
};

/* ---- files named by a config --------------------------------------------- */

/*
 * Open a file that a plugin config names (a credentials file, a log file).
 * Configs come from the gateway, so the daemon decides what they may reach:
 * path must be absolute and lie below one of the directories of the
 * daemon's `plugin_file_dirs` (docs/daemon.md), with no ".", ".." or empty
 * component. No symbolic link is followed, in any component; the open never
 * blocks (O_NONBLOCK: a FIFO is refused, not waited on); the result must be
 * a regular file. flags: open(2) flags (O_RDONLY, O_WRONLY | O_APPEND |
 * O_CREAT, ...), mode: for O_CREAT. Returns the descriptor (O_CLOEXEC, the
 * caller closes it) or -errno with why in err: the path and the reason,
 * never anything read from the file. Use it for every file a config names,
 * and say nothing of a file's contents in conf_new's errors either.
 */
SHMRING_HOST_API int shmring_file_open(const char *path, int flags, unsigned int mode, char *err,
                                       size_t errlen);

/* ---- log sinks (the daemon's io_uring writers) ---------------------------- */

/*
 * A sink is a destination for formatted log lines, owned by the worker and
 * flushed by its io_uring: appends go to a per-worker, per-sink batch, which
 * is written when it reaches the configured size (log_batch_bytes) or age
 * (log_flush_ms), double-buffered so appending continues while a batch is
 * in flight. Memory is bounded (log_sink_max_bytes per sink); when a sink
 * is down past that bound, new entries are dropped and counted. Everything
 * appended is written before a graceful stop completes. Entries of one
 * worker reach one sink in the order they were appended.
 *
 * Specs:
 *   "file:/path/to/file"   opened O_WRONLY|O_APPEND|O_CREAT (0640) with
 *                          shmring_file_open() (plugin_file_dirs)
 *   "tcp:HOST:PORT"        IPv4/IPv6 literal; reconnects with backoff
 *   "udp:HOST:PORT"        one datagram per entry
 * optionally followed by per-sink settings "?key=value&key=value" (after
 * the spec's last '?'; unsigned integers) that replace the daemon-wide
 * ones for this sink:
 *   batch_bytes=N     write the batch when it holds N bytes (log_batch_bytes)
 *   batch_entries=N   ... or N entries (0, the default: no count bound)
 *   flush_ms=N        ... or when its oldest entry is N ms old (log_flush_ms)
 *   max_bytes=N       memory bound, N >= 1024 (log_sink_max_bytes)
 *   reopen=1          file: open the path anew before each batch, so a
 *                     rotated (renamed) file is let go within one batch
 * e.g. "file:/var/log/shmring/requests.log?flush_ms=50&reopen=1". An unknown
 * key or a value out of range is refused with a message. A SIGHUP of the
 * daemon reopens every file too (new workers open their sinks afresh).
 *
 * Open the sinks a config needs in conf_new and release them in conf_free:
 * sinks are shared per worker by spec (reference counted), so many configs
 * naming the same file share one batch and one descriptor.
 */
struct shmring_sink;

/* Result of an append that could not be queued (sink down past its bound,
 * or the entry is larger than the bound). Not an error: counted. */
#define SHMRING_SINK_DROPPED 1

/* Get (open or share) the sink for spec. On failure returns < 0 and writes
 * why into err. The caller owns one reference: release it exactly once. */
SHMRING_HOST_API int shmring_sink_open(const char *spec, struct shmring_sink **out, char *err,
                                       size_t errlen);
SHMRING_HOST_API void shmring_sink_release(struct shmring_sink *sink);
/* Append one entry (for file and TCP sinks include the trailing '\n'
 * yourself; for UDP one call = one datagram). Returns 0 or
 * SHMRING_SINK_DROPPED. */
SHMRING_HOST_API int shmring_sink_write(struct shmring_sink *sink, const void *data, size_t len);
/* Zero-copy append: reserve up to max bytes in the current batch, format
 * into *buf, then shmring_sink_commit(sink, used) with used <= max. Returns
 * 0 or SHMRING_SINK_DROPPED (then *buf is NULL and no commit follows). No
 * other sink call may come between reserve and commit. */
SHMRING_HOST_API int shmring_sink_reserve(struct shmring_sink *sink, size_t max, char **buf);
SHMRING_HOST_API void shmring_sink_commit(struct shmring_sink *sink, size_t used);

struct shmring_sink_stats {
	uint64_t entries; /* entries appended */
	uint64_t bytes;   /* bytes written to the destination */
	uint64_t dropped; /* entries dropped (down past the bound, too big) */
	uint64_t flushes; /* batches submitted */
	uint64_t errors;  /* write/connect errors */
	uint64_t reconnects;
};
SHMRING_HOST_API void shmring_sink_stats(const struct shmring_sink *sink,
                                         struct shmring_sink_stats *out);

/* ---- memory shared by the workers of one shmringd ------------------------ */

/*
 * Each worker loads every plugin on its own; a plugin that needs state common
 * to all the workers of the daemon (rate-limiting's counters) asks for a
 * named region:
 *
 *   The daemon maps `<shm_dir>/plugin-<name>.shm` (MAP_SHARED). The first
 *   caller on the host creates it zero-filled, with the daemon's segment
 *   `mode` and the workers' user/group; every worker gets the same bytes.
 *   The region survives worker restarts and SIGHUP reloads (so counters do),
 *   and is removed when the daemon stops gracefully or starts anew.
 *
 * name: [a-z0-9_-]{1,63}; put a layout version in it ("rate-limiting-v1"),
 * since a region that already exists with another size is refused.
 * size: 1 byte .. 1 GiB. Returns 0 with *out set (page aligned, valid until
 * the worker exits: the daemon never unmaps it), or -errno with *out NULL:
 * -EINVAL (bad name or size), -EEXIST (exists with another size), -ENOTSUP
 * (no shared directory: a host without a daemon), or the open/mmap error.
 * Calling again with the same name and size returns the same mapping.
 * Thread-safe. Zero-filled means the layout must treat all-zero bytes as a
 * valid empty state: there is no "initialized" signal. Plain memory: use
 * atomics for everything another worker may read, and remember that a
 * worker can die (SIGKILL) between any two instructions.
 */
SHMRING_HOST_API int shmring_shared_region(const char *name, size_t size, void **out);

#ifdef __cplusplus
}
#endif
#endif
