/* SPDX-License-Identifier: MIT */
/*
 * rt_internal.h: what request_transformer.c (config, templates, headers,
 * query) and rt_body.c (the body rules) share: the parsed config and the
 * per-request work area.
 */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

#include "shmring_pc.h"
#include "shmring_plugin.h"

#include <stddef.h>
#include <stdint.h>

#define PLUGIN "request-transformer"
#define MAX_ITEMS 512 /* headers or query args per request */

struct arena_block;

/* ---- templates ----------------------------------------------------------------- */

/* What a $(...) reads: Kong's template environment, each from the
 * snapshot (uri_captures and shared are sent only for configs whose
 * templates name them: lua/shmring/plugins.lua). */
enum part_kind { PART_LITERAL, PART_HEADER, PART_QUERY, PART_URI_CAPTURE, PART_SHARED };

struct part {
	enum part_kind kind;
	struct shmring_str
	    text; /* literal text, or the name to look up (headers: lower-case, '-') */
	struct shmring_str dflt; /* used when the value is missing */
};

struct tpl {
	struct part *parts;
	size_t n;
};

struct op {
	struct shmring_str name;     /* as configured (emitted with this case) */
	struct shmring_str new_name; /* rename only */
	struct tpl value;            /* add/append/replace; n == 0: no value (Kong: no-op) */
	int has_value;
};

struct op_list {
	struct op *v;
	size_t n;
};

enum { OP_REMOVE, OP_RENAME, OP_REPLACE, OP_ADD, OP_APPEND, OP_KINDS };

/* json_types: what a JSON body rule's value becomes (Kong Enterprise's
 * request-transformer-advanced; Kong's own plugin has only strings). */
enum json_type { JT_STRING, JT_BOOLEAN, JT_NUMBER };

struct rt_conf {
	struct op_list headers[OP_KINDS];
	struct op_list query[OP_KINDS];
	struct op_list body[OP_KINDS];
	uint8_t *json_types[OP_KINDS]; /* per body rule of replace/add/append; NULL: strings */
	size_t njson_types[OP_KINDS];
	int any_query, any_body;
	struct tpl uri;
	int has_uri;
	struct shmring_str method; /* upper-case; len 0 if unset */
	struct arena_block *arena;
	/* Per-request scratch (single-threaded worker; reused, never shrunk). */
	char *render; /* rendered values */
	size_t render_cap, render_len;
	char *query_buf;
	size_t query_cap;
	char *body_buf; /* the new body */
	size_t body_cap;
	char *form_buf; /* decoded form fields */
	size_t form_cap;
};

/* A header or query arg being transformed. vals point into the snapshot,
 * the config, or c->render. */
struct item {
	struct shmring_str name;
	struct shmring_str *vals; /* in the vals pool */
	uint32_t nvals;
	uint8_t present, changed, cleared, flag;
};

struct work {
	struct rt_conf *c;
	const struct shmring_request *req;
	struct item items[MAX_ITEMS];
	size_t n;
	struct shmring_str pool[MAX_ITEMS * 2];
	size_t npool;
};

/* Render template t into c->render (room reserved for the request). */
struct shmring_str rt_render(struct rt_conf *c, const struct shmring_request *req,
                             const struct tpl *t);
/* The item for name (present or not), added if new; NULL if full. */
struct item *rt_slot(struct work *w, struct shmring_str name, int ci);
/* One more value for it (the first one sets it). 0 or -E2BIG. */
int rt_append_one(struct work *w, struct item *it, struct shmring_str v);

/* Kong's transform_body for a body of Content-Type ct (ptr NULL: none):
 * the type after the header rules, as Kong reads it back with
 * kong.request.get_header. SET_BODY with the new body and its
 * Content-Length, or nothing for a body left alone. 0, -EFBIG (the gateway
 * could not send it), -EBADMSG (a multipart body that is not one), -E2BIG
 * (too many fields), -ENOMEM, or the reply builder's error. */
int rt_transform_body(struct rt_conf *c, const struct shmring_request *req, struct shmring_str ct,
                      struct shmring_reply *rep);
/* The answer for rt_transform_body's -EFBIG (413), -EBADMSG and -E2BIG
 * (400). */
int rt_body_refused(struct shmring_reply *rep, int why);
/* Kong's transform_method for GET, HEAD and TRACE: a form body's fields
 * join w's query items. 1 if there were any, 0, or < 0. */
int rt_method_body_to_query(struct work *w);

#endif
