/* SPDX-License-Identifier: MIT */
/*
 * log: Kong's http-log config (3.x: http_endpoint, method, content_type,
 * timeout, keepalive, headers and the queue record) checked as Kong's schema
 * checks it and turned into the spec of an HTTP sink, which the daemon sends
 * (worker/sink.c batches and retries, worker/sink_http.c speaks HTTP):
 *
 *   queue.max_batch_size       -> batch_entries (1: each entry is a request
 *                                 body of its own, else a JSON array)
 *   queue.max_coalescing_delay -> flush_ms
 *   queue.max_entries          -> max_entries (waiting entries per worker)
 *   queue.max_bytes            -> max_bytes (x2: waiting + in flight)
 *   queue.initial_retry_delay, max_retry_delay, max_retry_time
 *                              -> retry_initial_ms, retry_max_ms, retry_time_ms
 *   queue.concurrency_limit    accepted (1 or -1): one request in flight per
 *                              sink and shmringd worker
 *
 * Kong 3.x still takes the deprecated queue_size and flush_timeout (which
 * replace max_batch_size and max_coalescing_delay unless they hold their
 * old defaults, 1 and 2) and retry_count (ignored): so do we, and Kong's
 * own documentation examples use them.
 *
 * Text values (content type, headers) are percent-encoded in the spec, so
 * they never hold the '?' and '&' that delimit its parameters.
 */
#include "log_http.h"

#include "shmring_pc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLUGIN "log"
#define MAX_URL 2048

/* Kong's http-log 3.x fields, defaults and checks. conf_new keeps what the
 * schema cannot say: the URL's scheme and length, header values without
 * CR/LF, the Authorization header beside user info (also in Lua for the
 * Kong schema: http_kong_validator), the timeouts' bounds. */
static const char *const methods[] = {"POST", "PUT", "PATCH", NULL};
static const char *const content_types[] = {"application/json", "application/json; charset=utf-8",
                                            NULL};
static const char *const concurrency_limits[] = {"-1", "1", NULL};
static const struct shmring_match_none header_refused[] = {
    {"^[Hh][Oo][Ss][Tt]$", "cannot contain 'Host' header"},
    {"^[Cc][Oo][Nn][Tt][Ee][Nn][Tt]%-[Ll][Ee][Nn][Gg][Tt][Hh]$",
     "cannot contain 'Content-Length' header"},
    {"^[Cc][Oo][Nn][Tt][Ee][Nn][Tt]%-[Tt][Yy][Pp][Ee]$", "cannot contain 'Content-Type' header"},
    {NULL, NULL}};
static const struct shmring_field header_name = {.type = SHMRING_FIELD_STRING,
                                                 .kong_typedef = SHMRING_TYPEDEF_HEADER_NAME,
                                                 .match_none = header_refused};
static const struct shmring_field header_value = {.type = SHMRING_FIELD_STRING};
const struct shmring_field log_lua_code = {.type = SHMRING_FIELD_STRING, .len_min = 1};
static const struct shmring_field queue_fields[] = {
    {.name = "max_batch_size",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "1",
     .min = 1,
     .max = 1000000},
    {.name = "max_coalescing_delay",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "1",
     .min = 0,
     .max = 3600},
    {.name = "max_entries",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "10000",
     .min = 1,
     .max = 1000000},
    {.name = "max_bytes", .type = SHMRING_FIELD_INTEGER},
    {.name = "max_retry_time", .type = SHMRING_FIELD_NUMBER, .def = "60"},
    {.name = "initial_retry_delay",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_BETWEEN_REAL,
     .def = "0.01",
     .real_min = 0.001,
     .real_max = 1000000},
    {.name = "max_retry_delay",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_BETWEEN_REAL,
     .def = "60",
     .real_min = 0.001,
     .real_max = 1000000},
    {.name = "concurrency_limit",
     .type = SHMRING_FIELD_INTEGER,
     .def = "1",
     .one_of = concurrency_limits},
    {.name = NULL}};
static const struct shmring_field http_config[] = {
    {.name = "http_endpoint",
     .type = SHMRING_FIELD_STRING,
     .flags = SHMRING_FIELD_REQUIRED,
     .kong_typedef = SHMRING_TYPEDEF_URL},
    {.name = "method", .type = SHMRING_FIELD_STRING, .def = "\"POST\"", .one_of = methods},
    {.name = "content_type",
     .type = SHMRING_FIELD_STRING,
     .def = "\"application/json\"",
     .one_of = content_types},
    /* Kong's request timeout (ms): the stub keeps `timeout` for its own
     * wait and sends this one as http_timeout. */
    {.name = "timeout",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_GATEWAY,
     .def = "10000"},
    {.name = "http_timeout", .type = SHMRING_FIELD_NUMBER, .flags = SHMRING_FIELD_NOT_IN_KONG},
    {.name = "keepalive", .type = SHMRING_FIELD_NUMBER, .def = "60000"},
    {.name = "retry_count", .type = SHMRING_FIELD_INTEGER},
    {.name = "queue_size", .type = SHMRING_FIELD_INTEGER},
    {.name = "flush_timeout", .type = SHMRING_FIELD_NUMBER},
    {.name = "headers", .type = SHMRING_FIELD_MAP, .keys = &header_name, .elements = &header_value},
    LOG_CUSTOM_FIELDS,
    {.name = "queue",
     .type = SHMRING_FIELD_RECORD,
     .flags = SHMRING_FIELD_REQUIRED,
     .fields = queue_fields},
    {.name = NULL}};
static const char http_kong_validator[] =
    "function(config)\n"
    "                local authority = config.http_endpoint:match(\"^%a[%w+.-]*://([^/?#]*)\")\n"
    "                if authority and authority:find(\"@\", 1, true) and type(config.headers) == "
    "\"table\" then\n"
    "                    for name in pairs(config.headers) do\n"
    "                        if name:lower() == \"authorization\" then\n"
    "                            return nil, \"specifying both an 'Authorization' header and "
    "user info in 'http_endpoint' is not allowed\"\n"
    "                        end\n"
    "                    end\n"
    "                end\n"
    "                return true\n"
    "            end";
const struct shmring_config_variant log_http_variants[] = {{.stub = "http-log",
                                                            .when_field = "http_endpoint",
                                                            .fields = http_config,
                                                            .kong_validator = http_kong_validator},
                                                           {.stub = NULL}};

/* The spec being written: spec[len], n used; overflow is remembered. */
struct out {
	char *p;
	size_t len, n;
	int full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(o->p + o->n, o->n < o->len ? o->len - o->n : 0, fmt, ap);
	va_end(ap);
	if (k < 0 || o->n + (size_t)k >= o->len)
		o->full = 1;
	else
		o->n += (size_t)k;
}

/* "&key=" and value percent-encoded (all but RFC 3986 unreserved). */
static void put_encoded(struct out *o, const char *key, const char *v, size_t vlen)
{
	put(o, "&%s=", key);
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~')
			put(o, "%c", c);
		else
			put(o, "%%%02X", c);
	}
}

/* A number field of map m (nil/absent: def) in [min, max], scaled by
 * `scale` and rounded; where names it in messages ("config.timeout"). */
static int number(const msgpack_object *m, const char *key, const char *where, double def,
                  double min, double max, double scale, uint64_t *out, char *err, size_t errlen)
{
	const msgpack_object *v = m ? shmring_pc_field(m, key) : NULL;
	double d = v ? shmring_pc_number(v) : def;
	if (!(d >= min && d <= max)) {
		snprintf(err, errlen, PLUGIN ": %s%s must be a number between %g and %g", where,
		         key, min, max);
		return -EINVAL;
	}
	*out = (uint64_t)llround(d * scale);
	return 0;
}

static int one_of(const msgpack_object *cfg, const char *key, const char *const *names,
                  const char **out, char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, key);
	*out = names[0];
	if (!v)
		return 0;
	for (int i = 0; names[i]; i++) {
		if (v->type == MSGPACK_OBJECT_STR && v->via.str.size == strlen(names[i]) &&
		    !memcmp(v->via.str.ptr, names[i], v->via.str.size)) {
			*out = names[i];
			return 0;
		}
	}
	int n = snprintf(err, errlen, PLUGIN ": config.%s must be one of", key);
	for (int i = 0; names[i] && n > 0 && (size_t)n < errlen; i++)
		n += snprintf(err + n, errlen - (size_t)n, "%s \"%s\"", i ? "," : "", names[i]);
	return -EINVAL;
}

/* user info in the URL ("scheme://user:pass@host..."): its '@', or NULL */
static const char *userinfo_at(const char *url)
{
	const char *h = strstr(url, "://");
	if (!h)
		return NULL;
	h += 3;
	return memchr(h, '@', strcspn(h, "/?#"));
}

static int header_name_ok(const char *p, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* Kong's headers map: names as typedefs.header_name, never Host,
 * Content-Length or Content-Type, no Authorization beside user info in the
 * URL; values strings without CR, LF or NUL. Each as "&header=Name: value". */
static int put_headers(const msgpack_object *cfg, int userinfo, struct out *o, char *err,
                       size_t errlen)
{
	const msgpack_object *h = shmring_pc_field(cfg, "headers");
	if (!h || (h->type == MSGPACK_OBJECT_ARRAY && h->via.array.size == 0))
		return 0;
	if (h->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen,
		         PLUGIN ": config.headers must be a map of header names to values");
		return -EINVAL;
	}
	static const char *const refused[] = {"Host", "Content-Length", "Content-Type"};
	for (uint32_t i = 0; i < h->via.map.size; i++) {
		const msgpack_object *k = &h->via.map.ptr[i].key, *v = &h->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR ||
		    !header_name_ok(k->via.str.ptr, k->via.str.size)) {
			snprintf(err, errlen, PLUGIN ": config.headers: bad header name");
			return -EINVAL;
		}
		struct shmring_str name = {k->via.str.ptr, k->via.str.size};
		for (size_t j = 0; j < sizeof(refused) / sizeof(refused[0]); j++) {
			if (shmring_pc_str_eq_ci(name, shmring_cstr(refused[j]))) {
				snprintf(err, errlen,
				         PLUGIN ": config.headers cannot contain '%s' header",
				         refused[j]);
				return -EINVAL;
			}
		}
		if (userinfo && shmring_pc_str_eq_ci(name, SHMRING_LIT("Authorization"))) {
			snprintf(err, errlen,
			         PLUGIN
			         ": specifying both an 'Authorization' header and user info in "
			         "'http_endpoint' is not allowed");
			return -EINVAL;
		}
		if (v->type != MSGPACK_OBJECT_STR ||
		    memchr(v->via.str.ptr, '\r', v->via.str.size) ||
		    memchr(v->via.str.ptr, '\n', v->via.str.size) ||
		    memchr(v->via.str.ptr, '\0', v->via.str.size)) {
			snprintf(err, errlen,
			         PLUGIN
			         ": config.headers.%.*s must be a string without CR, LF or NUL",
			         (int)(name.len > 64 ? 64 : name.len), name.ptr);
			return -EINVAL;
		}
		char line[SHMRING_PC_MAX_STR + 80];
		int n = snprintf(line, sizeof(line), "%.*s: %.*s", (int)name.len, name.ptr,
		                 (int)v->via.str.size, v->via.str.ptr);
		if (n < 0 || (size_t)n >= sizeof(line)) {
			snprintf(err, errlen, PLUGIN ": config.headers: a header is too long");
			return -EINVAL;
		}
		put_encoded(o, "header", line, (size_t)n);
	}
	return 0;
}

/* The queue record's settings as sink parameters. */
static int put_queue(const msgpack_object *cfg, struct out *o, char *err, size_t errlen)
{
	const msgpack_object *q = shmring_pc_field(cfg, "queue");
	if (q && q->type == MSGPACK_OBJECT_ARRAY && q->via.array.size == 0)
		q = NULL; /* an empty Lua table */
	int rc;
	const char *w = "config.queue.";
	uint64_t batch, delay_ms, entries, bytes = 0, retry_time, initial, max_delay, conc;
	if ((rc = number(q, "max_batch_size", w, 1, 1, 1000000, 1, &batch, err, errlen)) < 0 ||
	    (rc = number(q, "max_coalescing_delay", w, 1, 0, 3600, 1000, &delay_ms, err, errlen)) <
	        0 ||
	    (rc = number(q, "max_entries", w, 10000, 1, 1000000, 1, &entries, err, errlen)) < 0 ||
	    (q && shmring_pc_field(q, "max_bytes") &&
	     (rc = number(q, "max_bytes", w, 0, 1, 1 << 30, 1, &bytes, err, errlen)) < 0) ||
	    (rc = number(q, "max_retry_time", w, 60, 0, 1000000, 1000, &retry_time, err, errlen)) <
	        0 ||
	    (rc = number(q, "initial_retry_delay", w, 0.01, 0.001, 1000000, 1000, &initial, err,
	                 errlen)) < 0 ||
	    (rc = number(q, "max_retry_delay", w, 60, 0.001, 1000000, 1000, &max_delay, err,
	                 errlen)) < 0 ||
	    (rc = number(q, "concurrency_limit", w, 1, -1, 1, 1, &conc, err, errlen)) < 0)
		return rc;
	const msgpack_object *cl = q ? shmring_pc_field(q, "concurrency_limit") : NULL;
	if (cl && shmring_pc_number(cl) == 0) {
		snprintf(err, errlen, PLUGIN ": config.queue.concurrency_limit must be 1 or -1");
		return -EINVAL;
	}
	/* The deprecated fields, as Kong's Queue.get_plugin_params reads them. */
	uint64_t legacy, ignored;
	if (shmring_pc_field(cfg, "queue_size")) {
		if ((rc = number(cfg, "queue_size", "config.", 1, 1, 1000000, 1, &legacy, err,
		                 errlen)) < 0)
			return rc;
		if (legacy != 1)
			batch = legacy;
	}
	if (shmring_pc_field(cfg, "flush_timeout")) {
		if ((rc = number(cfg, "flush_timeout", "config.", 2, 0, 3600, 1000, &legacy, err,
		                 errlen)) < 0)
			return rc;
		if (legacy != 2000)
			delay_ms = legacy;
	}
	if ((rc = number(cfg, "retry_count", "config.", 10, 0, 1000000, 1, &ignored, err, errlen)) <
	    0)
		return rc;
	if (retry_time > 1000000000)
		retry_time = 1000000000;
	put(o, "&batch_entries=%llu&flush_ms=%llu&max_entries=%llu", (unsigned long long)batch,
	    (unsigned long long)(delay_ms ? delay_ms : 1), (unsigned long long)entries);
	put(o, "&retry_initial_ms=%llu&retry_max_ms=%llu&retry_time_ms=%llu",
	    (unsigned long long)(initial ? initial : 1),
	    (unsigned long long)(max_delay ? max_delay : 1), (unsigned long long)retry_time);
	if (bytes)
		put(o, "&max_bytes=%llu",
		    (unsigned long long)(bytes * 2 < 1024 ? 1024 : bytes * 2));
	return 0;
}

int log_http_spec(const msgpack_object *cfg, char *spec, size_t len, char *err, size_t errlen)
{
	char *url = NULL;
	const char *method, *type;
	uint64_t timeout, keepalive;
	int rc;
	if ((rc = shmring_pc_strdup(cfg, PLUGIN, "http_endpoint", NULL, true, &url, err, errlen)) <
	        0 ||
	    (rc = one_of(cfg, "method", methods, &method, err, errlen)) < 0 ||
	    (rc = one_of(cfg, "content_type", content_types, &type, err, errlen)) < 0 ||
	    (rc = number(cfg, "http_timeout", "config.", 10000, 1, 3600000, 1, &timeout, err,
	                 errlen)) < 0 ||
	    (rc = number(cfg, "keepalive", "config.", 60000, 0, 3600000, 1, &keepalive, err,
	                 errlen)) < 0)
		goto out;
	rc = -EINVAL;
	if (!url) {
		snprintf(err, errlen,
		         PLUGIN ": config.http_endpoint is required for the http sink");
		goto out;
	}
	if ((strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || strlen(url) > MAX_URL ||
	    strpbrk(url, " \t\r\n")) {
		/* shown without its user info: a password stays out of messages */
		const char *at = userinfo_at(url);
		int scheme = at ? (int)(strstr(url, "://") + 3 - url) : 0;
		snprintf(err, errlen,
		         PLUGIN
		         ": config.http_endpoint must be an http:// or https:// URL of at most "
		         "%d bytes without spaces (got \"%.*s%.64s\")",
		         MAX_URL, scheme, url, at ? at + 1 : url);
		goto out;
	}
	struct out o = {spec, len, 0, 0};
	put(&o, "%s?method=%s", url, method);
	put_encoded(&o, "content_type", type, strlen(type));
	put(&o, "&timeout_ms=%llu&keepalive_ms=%llu", (unsigned long long)timeout,
	    (unsigned long long)keepalive);
	if ((rc = put_headers(cfg, userinfo_at(url) != NULL, &o, err, errlen)) < 0 ||
	    (rc = put_queue(cfg, &o, err, errlen)) < 0)
		goto out;
	if (o.full) {
		snprintf(err, errlen,
		         PLUGIN ": config.http_endpoint and config.headers are too long "
		                "together (%zu bytes at most)",
		         len - 512);
		rc = -E2BIG;
		goto out;
	}
	rc = 0;
out:
	free(url);
	return rc;
}
