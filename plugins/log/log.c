/* SPDX-License-Identifier: MIT */
/*
 * log: Kong's file-log, tcp-log and udp-log as one shmring C plugin.
 *
 * Each LOG record carries the entry Kong's log serializer builds
 * (kong.log.serialize(): request {method, uri, url, size, querystring,
 * headers}, response {status, size, headers}, latencies {request, kong,
 * proxy}, client_ip, started_at, route, service, consumer, ...) plus, under
 * "ctx", the values earlier shmring plugins kept with SET_CTX. The hook
 * writes the entry as one JSON line (jansson: escaping and number
 * formatting are the library's), adds "correlation_id" when ctx has one
 * (plugins/correlation-id keeps it there), and appends the line to a log
 * sink: the daemon's io_uring batches it and writes it (worker/sink.c). The
 * hook itself never does I/O.
 *
 * Config:
 *   sink               "file" (default), "tcp" or "udp"
 *   path               file: absolute path of the log file (file-log's path)
 *   host, port         tcp/udp: collector address, an IP literal (tcp-log's
 *                      and udp-log's host and port)
 *   reopen             file: open the path again before each batch, so a
 *                      rotated file is let go (file-log's reopen; a daemon
 *                      SIGHUP reopens every file as well). Default false.
 *   max_batch_size     entries per batch (default: no count bound, the
 *                      daemon's log_batch_bytes decides)
 *   flush_interval     seconds (fractions allowed) an entry may wait in a
 *                      batch (default: the daemon's log_flush_ms)
 *   max_buffered_bytes memory bound of the sink per daemon worker (default:
 *                      the daemon's log_sink_max_bytes); past it entries are
 *                      dropped and counted (shmringctl stats: sink_dropped)
 * These become the sink's spec ("file:/p?batch_entries=..&flush_ms=.."), so
 * configs naming the same destination with the same settings share one
 * batch and one descriptor per worker.
 *
 * Strings that are not valid UTF-8 (a header with Latin-1 bytes) are
 * written with U+FFFD for each invalid byte: every line is valid JSON.
 */
#include "shmring_pc.h"
#include "shmring_plugin.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLUGIN "log"
#define MAX_DEPTH 32
#define MAX_PATH_LEN 200 /* the spec (path + parameters) must fit 255 bytes */

/* Per worker process: the line being formatted and the UTF-8 repair buffer,
 * grown as needed and reused (no allocation per entry once warm). */
struct log_worker {
	char *line;
	size_t line_cap;
	char *fix;
	size_t fix_cap;
};

struct log_conf {
	struct log_worker *w;
	struct shmring_sink *sink;
	int udp; /* a datagram per entry: no trailing newline */
};

/* ---- UTF-8 -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), or 0 if the byte at p does not start one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* A jansson string of p[0..n): as is when valid UTF-8, else with U+FFFD
 * for each byte that does not start a valid sequence. NULL on ENOMEM. */
static json_t *string_value(struct log_worker *w, const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		size_t l = utf8_seq(u + i, n - i);
		if (!l)
			break;
		i += l;
	}
	if (i == n)
		return json_stringn_nocheck(p, n);
	if (w->fix_cap < n * 3) {
		char *f = realloc(w->fix, n * 3);
		if (!f)
			return NULL;
		w->fix = f;
		w->fix_cap = n * 3;
	}
	memcpy(w->fix, p, i);
	size_t o = i;
	while (i < n) {
		size_t l = utf8_seq(u + i, n - i);
		if (l) {
			memcpy(w->fix + o, p + i, l);
			o += l;
			i += l;
		} else {
			memcpy(w->fix + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	return json_stringn_nocheck(w->fix, o);
}

/* ---- msgpack -> JSON ---------------------------------------------------- */

/* A map key as a JSON string in *out: strings as they are (repaired),
 * integers in decimal. 1, 0 for a key JSON cannot name (skipped), or
 * -ENOMEM. */
static int key_string(struct log_worker *w, const msgpack_object *key, json_t **out)
{
	char num[24];
	if (key->type == MSGPACK_OBJECT_STR)
		*out = string_value(w, key->via.str.ptr, key->via.str.size);
	else if (key->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		snprintf(num, sizeof(num), "%llu", (unsigned long long)key->via.u64),
		    *out = json_string(num);
	else if (key->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		snprintf(num, sizeof(num), "%lld", (long long)key->via.i64),
		    *out = json_string(num);
	else
		return *out = NULL, 0;
	return *out ? 1 : -ENOMEM;
}

static json_t *to_json(struct log_worker *w, const msgpack_object *o, int depth);

/* Add the pairs of map m to object obj (skipping "ctx" at the top level:
 * *ctx gets its value). 0 or -ENOMEM. */
static int add_pairs(struct log_worker *w, json_t *obj, const msgpack_object *m, int depth,
                     const msgpack_object **ctx)
{
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];
		json_t *k;
		int rc = key_string(w, &kv->key, &k);
		if (rc < 0)
			return rc;
		if (rc == 0)
			continue;
		if (ctx && shmring_str_eq(
		               (struct shmring_str){json_string_value(k), json_string_length(k)},
		               SHMRING_LIT("ctx"))) {
			*ctx = &kv->val; /* gateway state, not a serializer field */
			json_decref(k);
			continue;
		}
		json_t *v = depth < MAX_DEPTH ? to_json(w, &kv->val, depth + 1) : json_null();
		/* setn takes the length: a key with a NUL byte stays whole */
		rc = v ? json_object_setn_new_nocheck(obj, json_string_value(k),
		                                      json_string_length(k), v)
		       : -1;
		json_decref(k);
		if (rc < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Any msgpack value as JSON: maps with string (or integer) keys become
 * objects, binary strings are strings, extensions and values nested past
 * MAX_DEPTH become null. Never fails except on ENOMEM (NULL). */
static json_t *to_json(struct log_worker *w, const msgpack_object *o, int depth)
{
	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		/* jansson integers are signed 64-bit */
		return o->via.u64 <= INT64_MAX ? json_integer((json_int_t)o->via.u64)
		                               : json_real((double)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer(o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		/* JSON has no NaN or infinity */
		return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
	case MSGPACK_OBJECT_STR:
		return string_value(w, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return string_value(w, o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_ARRAY: {
		json_t *a = json_array();
		if (!a)
			return NULL;
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			json_t *v = depth < MAX_DEPTH ? to_json(w, &o->via.array.ptr[i], depth + 1)
			                              : json_null();
			if (!v || json_array_append_new(a, v) < 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		json_t *m = json_object();
		if (m && add_pairs(w, m, o, depth, NULL) < 0) {
			json_decref(m);
			return NULL;
		}
		return m;
	}
	case MSGPACK_OBJECT_NIL:
	default:
		return json_null();
	}
}

/* ---- config ------------------------------------------------------------- */

static const char *const fields[] = {
    "sink",   "path",           "host",           "port",
    "reopen", "max_batch_size", "flush_interval", "max_buffered_bytes",
    NULL};

/* flush_interval: a number of seconds (integer or float) in
 * [0.001, 3600], as milliseconds; absent gives 0 (the daemon's). */
static int flush_interval_ms(const msgpack_object *cfg, uint32_t *ms, char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, "flush_interval");
	*ms = 0;
	if (!v)
		return 0;
	double s;
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		s = (double)v->via.u64;
	else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		s = (double)v->via.i64;
	else if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
		s = v->via.f64;
	else
		s = -1;
	if (!(s >= 0.001 && s <= 3600)) {
		snprintf(err, errlen,
		         PLUGIN ": config.flush_interval must be a number of seconds between "
		                "0.001 and 3600");
		return -EINVAL;
	}
	*ms = (uint32_t)(s * 1000 + 0.5); /* s in [0.001, 3600]: no overflow */
	return 0;
}

static void log_conf_free(void *conf)
{
	struct log_conf *c = conf;
	if (c && c->sink)
		shmring_sink_release(c->sink);
	free(c);
}

/* Build the sink spec from a validated config into spec[len]. */
static int make_spec(const msgpack_object *cfg, char *spec, size_t len, int *udp, char *err,
                     size_t errlen)
{
	char *sink = NULL, *path = NULL, *host = NULL;
	int64_t port, batch, bytes;
	uint32_t flush_ms;
	bool reopen;
	int rc, n = 0;
	if ((rc = shmring_pc_strdup(cfg, PLUGIN, "sink", "file", true, &sink, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "path", NULL, true, &path, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "host", NULL, true, &host, err, errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "port", 0, 1, 65535, &port, err, errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "reopen", false, &reopen, err, errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "max_batch_size", 0, 1, 1000000, &batch, err,
	                         errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "max_buffered_bytes", 0, 4096, INT64_C(1) << 31,
	                         &bytes, err, errlen)) < 0 ||
	    (rc = flush_interval_ms(cfg, &flush_ms, err, errlen)) < 0)
		goto out;
	rc = -EINVAL;
	*udp = !strcmp(sink, "udp");
	if (!strcmp(sink, "file")) {
		if (!path) {
			snprintf(err, errlen, PLUGIN ": config.path is required for the file sink");
			goto out;
		}
		if (path[0] != '/') {
			snprintf(err, errlen,
			         PLUGIN ": config.path must be an absolute path (got \"%.64s\")",
			         path);
			goto out;
		}
		if (strlen(path) > MAX_PATH_LEN || strchr(path, '?')) {
			snprintf(err, errlen,
			         PLUGIN ": config.path must be at most %d bytes without '?' "
			                "(got \"%.64s\")",
			         MAX_PATH_LEN, path);
			goto out;
		}
		if (host || port) {
			snprintf(err, errlen,
			         PLUGIN ": config.host and config.port apply to the tcp and udp "
			                "sinks, not to \"file\"");
			goto out;
		}
		n = snprintf(spec, len, "file:%s", path);
	} else if (!strcmp(sink, "tcp") || *udp) {
		if (!host || !port) {
			snprintf(err, errlen,
			         PLUGIN
			         ": config.host and config.port are required for the %s sink",
			         sink);
			goto out;
		}
		if (path || reopen) {
			snprintf(err, errlen,
			         PLUGIN
			         ": config.path and config.reopen apply to the file sink, not "
			         "to \"%s\"",
			         sink);
			goto out;
		}
		if (strlen(host) > 64 || strspn(host, "0123456789abcdefABCDEF.:") != strlen(host)) {
			snprintf(err, errlen,
			         PLUGIN ": config.host must be an IPv4 or IPv6 address (got "
			                "\"%.64s\"; names are not resolved)",
			         host);
			goto out;
		}
		n = snprintf(spec, len, strchr(host, ':') ? "%s:[%s]:%d" : "%s:%s:%d", sink, host,
		             (int)port);
	} else {
		snprintf(err, errlen,
		         PLUGIN ": config.sink must be one of \"file\", \"tcp\", \"udp\" (got "
		                "\"%.64s\")",
		         sink);
		goto out;
	}
	char sep = '?';
	if (batch) {
		n += snprintf(spec + n, len - (size_t)n, "%cbatch_entries=%lld", sep,
		              (long long)batch);
		sep = '&';
	}
	if (flush_ms) {
		n += snprintf(spec + n, len - (size_t)n, "%cflush_ms=%u", sep, flush_ms);
		sep = '&';
	}
	if (bytes) {
		n += snprintf(spec + n, len - (size_t)n, "%cmax_bytes=%lld", sep, (long long)bytes);
		sep = '&';
	}
	if (reopen)
		n += snprintf(spec + n, len - (size_t)n, "%creopen=1", sep);
	rc = 0;
out:
	free(sink);
	free(path);
	free(host);
	return rc;
}

static int log_conf_new(void *wstate, const msgpack_object *cfg, void **out, char *err,
                        size_t errlen)
{
	*out = NULL;
	if (!wstate) {
		snprintf(err, errlen, PLUGIN ": worker state missing (init did not run)");
		return -EINVAL;
	}
	char spec[256], why[256];
	int udp = 0, rc;
	if ((rc = shmring_pc_check_fields(cfg, PLUGIN, fields, err, errlen)) < 0 ||
	    (rc = make_spec(cfg, spec, sizeof(spec), &udp, err, errlen)) < 0)
		return rc;
	struct log_conf *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	c->w = wstate;
	c->udp = udp;
	rc = shmring_sink_open(spec, &c->sink, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, PLUGIN ": %s", why);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- worker state -------------------------------------------------------- */

static int log_init(void **wstate, char *err, size_t errlen)
{
	struct log_worker *w = calloc(1, sizeof(*w));
	if (w) {
		w->line_cap = 4096;
		w->line = malloc(w->line_cap);
	}
	if (!w || !w->line) {
		free(w);
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	*wstate = w;
	return 0;
}

static void log_fini(void *wstate)
{
	struct log_worker *w = wstate;
	if (w) {
		free(w->line);
		free(w->fix);
	}
	free(w);
}

/* ---- the hook ----------------------------------------------------------- */

/* The entry as one JSON line in w->line; its length (with the '\n' unless
 * udp), or < 0. */
static ssize_t format_line(struct log_conf *c, const msgpack_object *entry)
{
	struct log_worker *w = c->w;
	json_t *root = json_object();
	if (!root)
		return -ENOMEM;
	const msgpack_object *ctx = NULL;
	ssize_t rc = -ENOMEM;
	if (add_pairs(w, root, entry, 0, &ctx) < 0)
		goto out;
	struct shmring_str id;
	if (ctx && shmring_map_str(ctx, SHMRING_LIT("correlation_id"), &id)) {
		json_t *v = string_value(w, id.ptr, id.len);
		if (!v || json_object_set_new_nocheck(root, "correlation_id", v) < 0)
			goto out;
	}
	for (;;) {
		size_t n = json_dumpb(root, w->line, w->line_cap - 1, JSON_COMPACT);
		if (n == 0) {
			rc = -EINVAL;
			goto out;
		}
		if (n <= w->line_cap - 1) {
			if (!c->udp)
				w->line[n++] = '\n';
			rc = (ssize_t)n;
			goto out;
		}
		char *l = realloc(w->line, n + 1);
		if (!l)
			goto out;
		w->line = l;
		w->line_cap = n + 1;
	}
out:
	json_decref(root);
	return rc;
}

static int log_log(void *conf, const struct shmring_log_record *rec)
{
	struct log_conf *c = conf;
	if (!c || !rec->entry || rec->entry->type != MSGPACK_OBJECT_MAP)
		return -EINVAL; /* counted as a plugin error */
	ssize_t n = format_line(c, rec->entry);
	if (n < 0)
		return (int)n;
	/* SHMRING_SINK_DROPPED is counted by the sink (sink_dropped). */
	shmring_sink_write(c->sink, c->w->line, (size_t)n);
	return 0;
}

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "log",
    .version = "1.0.0",
    .phases = SHMRING_PHASE_LOG,
    .init = log_init,
    .fini = log_fini,
    .conf_new = log_conf_new,
    .conf_free = log_conf_free,
    .log = log_log,
};
