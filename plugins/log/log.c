/* SPDX-License-Identifier: MIT */
/*
 * log: Kong's file-log, tcp-log and udp-log as one shmring C plugin.
 *
 * Each LOG record carries the entry Kong's log serializer builds
 * (kong.log.serialize(): request {method, uri, url, size, querystring,
 * headers}, response {status, size, headers}, latencies {request, kong,
 * proxy}, client_ip, started_at, route, service, consumer, ...) plus, under
 * "ctx", the values earlier shmring plugins kept with SET_CTX. The hook
 * writes the entry as one JSON line straight from the msgpack view (every
 * string needing escaping and every float is written by jansson; see
 * "msgpack -> JSON text"), adds "correlation_id" when ctx has one
 * (plugins/correlation-id keeps it there), and appends the line to a log
 * sink: the daemon's io_uring batches it and writes it (worker/sink.c). The
 * hook itself never does I/O.
 *
 * Config:
 *   sink               "file" (default), "tcp" or "udp"; a config that
 *                      sets http_endpoint is Kong's http-log's instead (the
 *                      schema's variant for shmring-http-log, log_http.c)
 *   path               file: absolute path of the log file (file-log's path)
 *   host, port         tcp/udp: collector address, a host name (looked up
 *                      by the daemon before each connection) or an IP
 *                      literal (tcp-log's and udp-log's host and port)
 *   tls, tls_sni       tcp: TLS to the collector, with this SNI (tcp-log's;
 *                      the certificate is not verified, as Kong's is not)
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
#include "log_http.h"
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
#define SPEC_MAX 4096    /* a sink spec's longest (worker/sink.c) */

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

/* ---- msgpack -> JSON text ------------------------------------------------ */

/* The line is written straight from the msgpack view into w->line, without
 * a JSON tree: a tree costs two allocations per value (6.3 us for a
 * 600-byte entry, measured; this writer 0.7 us). Every string that needs
 * any escaping or is not plain ASCII, and every float, is written by
 * jansson (json_dumpb of one value): the library does the escaping and the
 * number formatting; only printable ASCII without '"' and '\' is copied
 * as is, which JSON allows verbatim. */

struct out {
	struct log_worker *w;
	size_t len;
	int oom;
};

/* Room for n more bytes at w->line + len; 0 or -ENOMEM (o->oom set). */
static int reserve(struct out *o, size_t n)
{
	struct log_worker *w = o->w;
	if (o->len + n <= w->line_cap)
		return 0;
	size_t cap = w->line_cap * 2;
	while (cap < o->len + n)
		cap *= 2;
	char *l = realloc(w->line, cap);
	if (!l) {
		o->oom = 1;
		return -ENOMEM;
	}
	w->line = l;
	w->line_cap = cap;
	return 0;
}

static void put(struct out *o, const char *p, size_t n)
{
	if (reserve(o, n) == 0) {
		memcpy(o->w->line + o->len, p, n);
		o->len += n;
	}
}

static void put_c(struct out *o, char c)
{
	if (reserve(o, 1) == 0)
		o->w->line[o->len++] = c;
}

/* One jansson value as JSON text (JSON_ENCODE_ANY); takes the reference. */
static void put_json(struct out *o, json_t *j)
{
	if (!j) {
		o->oom = 1;
		return;
	}
	const size_t flags = JSON_ENCODE_ANY | JSON_COMPACT;
	size_t avail = o->w->line_cap - o->len;
	size_t n = json_dumpb(j, o->w->line + o->len, avail, flags);
	if (n > avail && reserve(o, n) == 0) /* did not fit: once more with room */
		n = json_dumpb(j, o->w->line + o->len, n, flags);
	if (n == 0 || o->oom)
		o->oom = 1;
	else
		o->len += n;
	json_decref(j);
}

static void put_str(struct out *o, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			put_json(o, string_value(o->w, p, n)); /* escaped by jansson */
			return;
		}
	}
	if (reserve(o, n + 2) == 0) {
		char *d = o->w->line + o->len;
		d[0] = '"';
		if (n) /* an empty msgpack str may carry a NULL pointer */
			memcpy(d + 1, p, n);
		d[n + 1] = '"';
		o->len += n + 2;
	}
}

static void put_int(struct out *o, uint64_t v, int neg)
{
	char b[24];
	size_t i = sizeof(b);
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		b[--i] = '-';
	put(o, b + i, sizeof(b) - i);
}

/* 1 if a map key of this type can name a JSON member: strings as they
 * are, integers in decimal; pairs with other keys (nil, bool, ...) are
 * skipped. */
static int key_ok(const msgpack_object *k)
{
	return k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	       k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

/* `"key":`, or `,"key":` unless first; the key passed key_ok. */
static void put_key(struct out *o, const msgpack_object *k, int first)
{
	if (!first)
		put_c(o, ',');
	if (k->type == MSGPACK_OBJECT_STR) {
		put_str(o, k->via.str.ptr, k->via.str.size);
	} else {
		put_c(o, '"');
		if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			put_int(o, k->via.u64, 0);
		else
			put_int(o, 0 - (uint64_t)k->via.i64, 1);
		put_c(o, '"');
	}
	put_c(o, ':');
}

static int is_key(const msgpack_object *k, struct shmring_str name)
{
	return k->type == MSGPACK_OBJECT_STR &&
	       shmring_str_eq((struct shmring_str){k->via.str.ptr, k->via.str.size}, name);
}

/* Any msgpack value as JSON: maps become objects (pairs whose key is not a
 * string or integer are skipped), binary strings are strings, extensions,
 * NaN/infinity and values nested past MAX_DEPTH are null. */
static void put_value(struct out *o, const msgpack_object *v, int depth)
{
	switch (v->type) {
	case MSGPACK_OBJECT_BOOLEAN:
		if (v->via.boolean)
			put(o, "true", 4);
		else
			put(o, "false", 5);
		return;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		put_int(o, v->via.u64, 0);
		return;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		put_int(o, 0 - (uint64_t)v->via.i64, 1);
		return;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (isfinite(v->via.f64))
			put_json(o, json_real(v->via.f64));
		else
			put(o, "null", 4); /* JSON has no NaN or infinity */
		return;
	case MSGPACK_OBJECT_STR:
		put_str(o, v->via.str.ptr, v->via.str.size);
		return;
	case MSGPACK_OBJECT_BIN:
		put_str(o, v->via.bin.ptr, v->via.bin.size);
		return;
	case MSGPACK_OBJECT_ARRAY:
		if (depth >= MAX_DEPTH)
			break;
		put_c(o, '[');
		for (uint32_t i = 0; i < v->via.array.size; i++) {
			if (i)
				put_c(o, ',');
			put_value(o, &v->via.array.ptr[i], depth + 1);
		}
		put_c(o, ']');
		return;
	case MSGPACK_OBJECT_MAP: {
		if (depth >= MAX_DEPTH)
			break;
		int first = 1;
		put_c(o, '{');
		for (uint32_t i = 0; i < v->via.map.size; i++) {
			const msgpack_object_kv *kv = &v->via.map.ptr[i];
			if (!key_ok(&kv->key))
				continue;
			put_key(o, &kv->key, first);
			first = 0;
			put_value(o, &kv->val, depth + 1);
		}
		put_c(o, '}');
		return;
	}
	default:
		break;
	}
	put(o, "null", 4);
}

/* ---- config ------------------------------------------------------------- */

/* The config of the file, tcp and udp sinks (file-log's, tcp-log's and
 * udp-log's fields); the http sink's is log_http_variants. conf_new keeps
 * what the schema cannot say: which fields go with which sink, the path's
 * length, a host name's characters. */
static const char *const sinks[] = {"file", "tcp", "udp", NULL};
static const struct shmring_field log_config[] = {
    {.name = "sink",
     .type = SHMRING_FIELD_STRING,
     .flags = SHMRING_FIELD_REQUIRED,
     .def = "\"file\"",
     .one_of = sinks},
    {.name = "path", .type = SHMRING_FIELD_STRING, .len_min = 1, .match = "^/[^?]*$"},
    {.name = "reopen",
     .type = SHMRING_FIELD_BOOLEAN,
     .flags = SHMRING_FIELD_REQUIRED,
     .def = "false"},
    {.name = "host", .type = SHMRING_FIELD_STRING, .len_min = 1},
    {.name = "port",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .min = 1,
     .max = 65535},
    {.name = "tls", .type = SHMRING_FIELD_BOOLEAN, .flags = SHMRING_FIELD_REQUIRED, .def = "false"},
    {.name = "tls_sni", .type = SHMRING_FIELD_STRING},
    {.name = "max_batch_size",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .min = 1,
     .max = 1000000},
    {.name = "flush_interval",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_BETWEEN_REAL,
     .real_min = 0.001,
     .real_max = 3600},
    {.name = "max_buffered_bytes",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .min = 4096,
     .max = INT64_C(2147483648)},
    LOG_CUSTOM_FIELDS,
    /* tcp-log's and udp-log's socket timeout (ms; connect, TLS handshake and
     * each write of a tcp sink; a datagram never waits). The stub sends it
     * as tcp_timeout: every stub keeps `timeout` as its own field, and a
     * LOG record is never waited for. */
    {.name = "fail_open",
     .type = SHMRING_FIELD_BOOLEAN,
     .flags = SHMRING_FIELD_GATEWAY,
     .def = "true",
     .doc = "skip the plugin when the daemon cannot answer"},
    {.name = "timeout",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_GATEWAY,
     .def = "10000",
     .doc = "ms: tcp-log's socket timeout (sent as tcp_timeout)"},
    {.name = "tcp_timeout", .type = SHMRING_FIELD_NUMBER, .flags = SHMRING_FIELD_NOT_IN_KONG},
    /* tcp-log's keepalive (ms an idle connection is kept; 0: for ever) */
    {.name = "keepalive", .type = SHMRING_FIELD_NUMBER, .def = "60000"},
    {.name = NULL}};
static const char *const remote_sinks[] = {"tcp", "udp", NULL};
static const struct shmring_check log_checks[] = {{.kind = SHMRING_CHECK_CONDITIONAL,
                                                   .if_field = "sink",
                                                   .if_match = {.eq = "file"},
                                                   .then_field = "path",
                                                   .then_match = {.flags = SHMRING_MATCH_REQUIRED}},
                                                  {.kind = SHMRING_CHECK_CONDITIONAL,
                                                   .if_field = "sink",
                                                   .if_match = {.one_of = remote_sinks},
                                                   .then_field = "host",
                                                   .then_match = {.flags = SHMRING_MATCH_REQUIRED}},
                                                  {.kind = SHMRING_CHECK_CONDITIONAL,
                                                   .if_field = "sink",
                                                   .if_match = {.one_of = remote_sinks},
                                                   .then_field = "port",
                                                   .then_match = {.flags = SHMRING_MATCH_REQUIRED}},
                                                  {.kind = 0}};

/* flush_interval: a number of seconds (integer or float) in
 * [0.001, 3600], as milliseconds; absent gives 0 (the daemon's). */
static int flush_interval_ms(const msgpack_object *cfg, uint32_t *ms, char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, "flush_interval");
	*ms = 0;
	if (!v)
		return 0;
	double s = shmring_pc_number(v);
	if (!(s >= 0.001 && s <= 3600)) {
		snprintf(err, errlen,
		         PLUGIN ": config.flush_interval must be a number of seconds between "
		                "0.001 and 3600");
		return -EINVAL;
	}
	*ms = (uint32_t)(s * 1000 + 0.5); /* s in [0.001, 3600]: no overflow */
	return 0;
}

/* The http sink: a config that sets http_endpoint, which the schema took
 * through log_http_variants (the shmring-http-log stub's). */
/* A number of milliseconds (fractions rounded) in [min, 3600000]; absent
 * gives def. */
static int log_ms(const msgpack_object *cfg, const char *key, double def, double min, uint32_t *ms,
                  char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, key);
	double d = v ? shmring_pc_number(v) : def;
	if (!(d >= min && d <= 3600000)) {
		snprintf(err, errlen, PLUGIN ": config.%s must be a number between %g and 3600000",
		         key, min);
		return -EINVAL;
	}
	*ms = (uint32_t)llround(d);
	return 0;
}

static bool is_http(const msgpack_object *cfg)
{
	return shmring_pc_field(cfg, "http_endpoint") != NULL;
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
	char *sink = NULL, *path = NULL, *host = NULL, *sni = NULL;
	int64_t port, batch, bytes;
	uint32_t flush_ms, timeout_ms, keepalive_ms;
	bool reopen, tls;
	int rc, n = 0;
	if ((rc = shmring_pc_strdup(cfg, PLUGIN, "sink", "file", true, &sink, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "path", NULL, true, &path, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "host", NULL, true, &host, err, errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "port", 0, 1, 65535, &port, err, errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "reopen", false, &reopen, err, errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "tls", false, &tls, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "tls_sni", NULL, true, &sni, err, errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "max_batch_size", 0, 1, 1000000, &batch, err,
	                         errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "max_buffered_bytes", 0, 4096, INT64_C(1) << 31,
	                         &bytes, err, errlen)) < 0 ||
	    (rc = flush_interval_ms(cfg, &flush_ms, err, errlen)) < 0 ||
	    (rc = log_ms(cfg, "tcp_timeout", 10000, 1, &timeout_ms, err, errlen)) < 0 ||
	    (rc = log_ms(cfg, "keepalive", 60000, 0, &keepalive_ms, err, errlen)) < 0)
		goto out;
	rc = -EINVAL;
	*udp = !strcmp(sink, "udp");
	if ((tls || sni) && strcmp(sink, "tcp")) {
		snprintf(err, errlen,
		         PLUGIN ": config.tls and config.tls_sni apply to the tcp sink");
		goto out;
	}
	if (sni &&
	    (strlen(sni) > 253 ||
	     strspn(sni, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
	         strlen(sni))) {
		snprintf(err, errlen, PLUGIN ": config.tls_sni must be a host name (got \"%.64s\")",
		         sni);
		goto out;
	}
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
		size_t hl = strlen(host);
		if (hl > 253 || (strspn(host, "0123456789abcdefABCDEF.:") != hl &&
		                 strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                              "0123456789.-") != hl)) {
			snprintf(err, errlen,
			         PLUGIN ": config.host must be a host name or an IPv4 or IPv6 "
			                "address (got \"%.64s\")",
			         host);
			goto out;
		}
		n = snprintf(spec, len, strchr(host, ':') ? "%s:[%s]:%d" : "%s:%s:%d", sink, host,
		             (int)port);
	} else {
		snprintf(err, errlen,
		         PLUGIN ": config.sink must be one of \"file\", \"tcp\", \"udp\", "
		                "\"http\" (got \"%.64s\")",
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
	if (!strcmp(sink, "tcp")) {
		n += snprintf(spec + n, len - (size_t)n, "%ctimeout_ms=%u&keepalive_ms=%u", sep,
		              timeout_ms, keepalive_ms);
		sep = '&';
	}
	if (tls) {
		/* Kong's tcp-log sends tls_sni only with tls */
		n += snprintf(spec + n, len - (size_t)n, "%ctls=1", sep);
		sep = '&';
		if (sni)
			n += snprintf(spec + n, len - (size_t)n, "%csni=%s", sep, sni);
	}
	rc = 0;
out:
	free(sni);
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
	char spec[SPEC_MAX];
	char why[256];
	int udp = 0, rc;
	if (is_http(cfg)) {
		if ((rc = log_http_spec(cfg, spec, sizeof(spec), err, errlen)) < 0)
			return rc;
	} else if ((rc = make_spec(cfg, spec, sizeof(spec), &udp, err, errlen)) < 0) {
		return rc;
	}
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

/* The entry as one JSON line in w->line: its pairs, without "ctx" (gateway
 * state) and with ctx.correlation_id as "correlation_id" (replacing one the
 * entry may have). Its length (with the '\n' unless udp), or -ENOMEM. */
static ssize_t format_line(struct log_conf *c, const msgpack_object *entry)
{
	struct out o = {.w = c->w};
	struct shmring_str id = {NULL, 0};
	int has_id = 0;
	for (uint32_t i = 0; i < entry->via.map.size; i++)
		if (is_key(&entry->via.map.ptr[i].key, SHMRING_LIT("ctx")))
			has_id = shmring_map_str(&entry->via.map.ptr[i].val,
			                         SHMRING_LIT("correlation_id"), &id);
	int first = 1;
	put_c(&o, '{');
	for (uint32_t i = 0; i < entry->via.map.size; i++) {
		const msgpack_object_kv *kv = &entry->via.map.ptr[i];
		if (!key_ok(&kv->key) || is_key(&kv->key, SHMRING_LIT("ctx")) ||
		    (has_id && is_key(&kv->key, SHMRING_LIT("correlation_id"))))
			continue;
		put_key(&o, &kv->key, first);
		first = 0;
		put_value(&o, &kv->val, 1);
	}
	if (has_id) {
		if (!first)
			put_c(&o, ',');
		put(&o, "\"correlation_id\":", 17);
		put_str(&o, id.ptr, id.len);
	}
	put_c(&o, '}');
	if (!c->udp)
		put_c(&o, '\n');
	return o.oom ? -ENOMEM : (ssize_t)o.len;
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
    .config = log_config,
    .config_checks = log_checks,
    .config_variants = log_http_variants,
};
