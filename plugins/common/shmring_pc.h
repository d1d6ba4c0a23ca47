/* SPDX-License-Identifier: MIT */
/*
 * shmring_pc.h: "plugin common", the code the built-in C plugins share
 * (static library shmring_plugin_common, linked into each plugin .so).
 * It uses only the public plugin ABI (shmring_plugin.h) plus jansson and
 * OpenSSL, so a third-party plugin can link it too.
 *
 *  - config readers over the CONF map, each writing a message of the form
 *    "<plugin>: config.<field> must be ..." into err on failure;
 *  - msgpack -> jansson conversion (configs that share the credentials
 *    file's JSON shape are parsed by the same code);
 *  - query-string building (the snapshot carries parsed args; plugins that
 *    change the query send a rebuilt one, sorted like Kong's encode_args);
 *  - the credentials (consumers) loader and its file watcher: see
 *    shmring_creds.h.
 *
 * Every function returns 0 (or a count) on success and -errno on failure;
 * results go through out-pointers that are written even on failure.
 */
#ifndef SHMRING_PC_H
#define SHMRING_PC_H

#include "shmring_plugin.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- config readers ----------------------------------------------------- */

/* Longest string any config field may hold (keys, names, templates). */
#define SHMRING_PC_MAX_STR 4096
/* Most entries any config array may hold. */
#define SHMRING_PC_MAX_ARRAY 1024

/* 0 if every key of the config map is in `known` (NULL-terminated), else
 * -EINVAL and "<plugin>: unknown config field '<key>'". A nil or empty
 * config is fine. Catches typos that would otherwise be silently ignored. */
int shmring_pc_check_fields(const msgpack_object *cfg, const char *plugin, const char *const *known,
                            char *err, size_t errlen);

/* The value of field `key`, or NULL if absent or nil (Kong sends unset
 * optional fields as null). */
const msgpack_object *shmring_pc_field(const msgpack_object *cfg, const char *key);

/* Boolean field; absent/nil gives def. */
int shmring_pc_bool(const msgpack_object *cfg, const char *plugin, const char *key, bool def,
                    bool *out, char *err, size_t errlen);

/* Integer field in [min, max]; absent/nil gives def. */
int shmring_pc_int(const msgpack_object *cfg, const char *plugin, const char *key, int64_t def,
                   int64_t min, int64_t max, int64_t *out, char *err, size_t errlen);

/* A number value (integer or float) as a double, NAN for anything else
 * (NULL too): for fields whose reader checks the range and the message
 * itself, e.g. a count of seconds that may be fractional. */
double shmring_pc_number(const msgpack_object *v);

/* String field copied into a malloc'd NUL-terminated string (the caller
 * frees it). Absent/nil gives a copy of def, or NULL if def is NULL. With
 * nonempty, "" is refused. Strings holding a NUL byte are refused. */
int shmring_pc_strdup(const msgpack_object *cfg, const char *plugin, const char *key,
                      const char *def, bool nonempty, char **out, char *err, size_t errlen);

/* An array of strings, copied: v[i] are NUL-terminated and live in one
 * allocation owned by the strv. An empty Lua table arrives as an empty map
 * and is accepted as an empty array. */
struct shmring_pc_strv {
	size_t n;
	struct shmring_str *v; /* n entries, ptr NUL-terminated */
};
/* `val` may be NULL (absent): then the default list `def` (NULL-terminated,
 * may be NULL for none) is used. `what` names the field in messages. */
int shmring_pc_strv(const msgpack_object *val, const char *plugin, const char *what,
                    const char *const *def, struct shmring_pc_strv *out, char *err, size_t errlen);
void shmring_pc_strv_free(struct shmring_pc_strv *sv);

/* ---- msgpack -> JSON -------------------------------------------------------- */

/* A new jansson value with the content of o (maps with string keys only,
 * depth <= 32), or NULL with err set. The caller owns the reference. An
 * empty map becomes an empty object; use shmring_pc_json_array_or_empty()
 * where an array is expected. */
json_t *shmring_pc_to_json(const msgpack_object *o, const char *plugin, const char *what, char *err,
                           size_t errlen);

/* ---- query strings ------------------------------------------------------------ */

/* One query argument of a rebuilt query string. A flag (`?debug`) has
 * flag = 1 and no value. Views: they must outlive the build call. */
struct shmring_pc_arg {
	struct shmring_str name;
	struct shmring_str value;
	int flag;
};

/* Append the args of a snapshot `query` map (str | true | [str...]) to
 * out[*n..cap); false values are dropped, like Kong. 0, or -E2BIG. */
int shmring_pc_args_from_map(const msgpack_object *query, struct shmring_pc_arg *out, size_t *n,
                             size_t cap);

/* Sort args by name (stable: repeated names keep their order) and
 * percent-encode them into a raw query string (no '?'), the way Kong's
 * encode_args does (RFC 3986 unreserved characters kept). The result is in
 * *buf (grown with realloc as needed, owned by the caller, reused across
 * calls), its length in *len. 0 or -ENOMEM. */
int shmring_pc_args_encode(struct shmring_pc_arg *args, size_t n, char **buf, size_t *cap,
                           size_t *len);

/* ---- request bodies (body.c) -------------------------------------------------- */

enum shmring_pc_body_type {
	SHMRING_PC_BODY_NONE = 0, /* none of the three below */
	SHMRING_PC_BODY_JSON,
	SHMRING_PC_BODY_FORM, /* application/x-www-form-urlencoded */
	SHMRING_PC_BODY_MULTIPART,
};

/* A Content-Type value as kong.request.get_body reads it: the mime type
 * before ';', case-insensitively, starting with one of the three. */
enum shmring_pc_body_type shmring_pc_body_type_of(struct shmring_str content_type);

/* A Content-Type value as Kong's request-transformer reads it: the first
 * of application/json, multipart/form-data, x-www-form-urlencoded named
 * anywhere in it, case-insensitively. */
enum shmring_pc_body_type shmring_pc_body_type_named(struct shmring_str content_type);

/* Most fields of a form or multipart body the built-in plugins take. */
#define SHMRING_PC_BODY_MAX_FIELDS 1000

/* Split a form body like ngx.decode_args: '&'-separated, '+' and %XX
 * unescaped (a bad escape is kept as is), a name without '=' is a flag,
 * an empty name is skipped. Names and values are written into scratch,
 * which must hold body.len bytes; out[] are views into it. 0, or -E2BIG
 * when there are more than cap fields. */
int shmring_pc_form_decode(struct shmring_str body, char *scratch, struct shmring_pc_arg *out,
                           size_t cap, size_t *n);

/* One part of a multipart/form-data body. Views into the body, except for
 * a part made by the plugin (simple = 1: written back with only
 * `Content-Disposition: form-data; name="NAME"`, as lua-multipart's
 * set_simple does). */
struct shmring_pc_part {
	struct shmring_str name;    /* the Content-Disposition name */
	struct shmring_str headers; /* the part's header lines, CRLF-separated */
	struct shmring_str value;
	int simple;
};

/* The boundary parameter of a multipart Content-Type (quotes removed);
 * 0, or -EBADMSG when there is none or it is longer than 70 bytes. */
int shmring_pc_multipart_boundary(struct shmring_str content_type, struct shmring_str *boundary);

/* Parse a multipart/form-data body (RFC 7578) into parts[0..*n). -EBADMSG
 * for a body that is not one: no delimiter, a part without headers or
 * without a name, no closing delimiter (a truncated body); -E2BIG past cap
 * parts. Nothing recurses; every scan is bounded by the body. */
int shmring_pc_multipart_parse(struct shmring_str body, struct shmring_str boundary,
                               struct shmring_pc_part *parts, size_t cap, size_t *n);

/* Write parts back as lua-multipart's tostring does: "--B\r\n", the
 * headers, a blank line, the value, "\r\n" per part, then "--B--\r\n";
 * nothing at all for no parts. Into *buf (grown with realloc, owned by the
 * caller). 0 or -ENOMEM. */
int shmring_pc_multipart_encode(const struct shmring_pc_part *parts, size_t n,
                                struct shmring_str boundary, char **buf, size_t *cap, size_t *len);

/* A JSON body parsed with jansson (any top-level value, NUL allowed in
 * strings), or NULL when it is not JSON. The caller owns the reference. */
json_t *shmring_pc_json_decode(struct shmring_str body);

/* j as compact JSON (keys in order, reals with 14 significant digits like
 * Kong's cjson) into *buf (grown with realloc, owned by the caller). 0 or
 * -ENOMEM. */
int shmring_pc_json_encode(const json_t *j, char **buf, size_t *cap, size_t *len);

/* Grow *buf (realloc, doubling from 256 bytes) to hold at least need
 * bytes; *cap is its size. 0 or -ENOMEM (then *buf is unchanged). */
int shmring_pc_reserve(char **buf, size_t *cap, size_t need);

/* A malloc'd NUL-terminated copy of n bytes at p (p may be NULL when n is
 * 0; it may hold a NUL byte, copied as is); NULL when out of memory. */
char *shmring_pc_strndup(const char *p, size_t n);

/* Lower-case ASCII copy helper: dst gets n bytes of src lower-cased. */
void shmring_pc_lower(char *dst, const char *src, size_t n);

/* 1 if a and b are equal ignoring ASCII case. */
int shmring_pc_str_eq_ci(struct shmring_str a, struct shmring_str b);

/* 1 if s is a valid HTTP header name (RFC 9110 token). */
int shmring_pc_header_name_ok(struct shmring_str s);

#endif
