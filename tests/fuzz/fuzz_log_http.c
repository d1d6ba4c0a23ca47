/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: Kong's http-log config from the admin API (msgpack, as
 * the CONF record carries it, decoded by the worker's own parser,
 * shmring_mpr_parse) through plugins/log/log_http.c into an HTTP
 * sink spec. A config is refused with a message, or its spec must be what
 * worker/sink.c reads safely: NUL-terminated within its buffer, and after
 * the spec's last '?' only the parameters log_http.c writes, each value
 * made of unreserved or percent-encoded bytes (so no config text can add,
 * cut or reorder a parameter, nor carry a CR or LF into a header), with
 * exactly one header parameter per configured header.
 */
#include "log_http.h"

#include <msgpack.h>
#include <shmring/mp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const params[] = {
    "method",        "content_type", "timeout_ms",  "keepalive_ms",     "header",
    "batch_entries", "flush_ms",     "max_entries", "retry_initial_ms", "retry_max_ms",
    "retry_time_ms", "max_bytes",    NULL};

static int known(const char *k, size_t n)
{
	for (int i = 0; params[i]; i++)
		if (strlen(params[i]) == n && !memcmp(params[i], k, n))
			return 1;
	return 0;
}

static uint32_t headers_in(const msgpack_object *cfg)
{
	for (uint32_t i = 0; i < cfg->via.map.size; i++) {
		const msgpack_object *k = &cfg->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 7 &&
		    !memcmp(k->via.str.ptr, "headers", 7) &&
		    cfg->via.map.ptr[i].val.type == MSGPACK_OBJECT_MAP)
			return cfg->via.map.ptr[i].val.via.map.size;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shmring_mpr mpr;
	static int ready;
	if (!ready && shmring_mpr_init(&mpr) < 0)
		abort();
	ready = 1;
	if (size > UINT32_MAX || shmring_mpr_parse(&mpr, data, (uint32_t)size) < 0 ||
	    mpr.root.type != MSGPACK_OBJECT_MAP)
		return 0;
	const msgpack_object cfg = mpr.root;
	static char spec[4096];
	char err[512];
	memset(spec, 0x55, sizeof(spec));
	err[0] = '\0';
	int rc = log_http_spec(&cfg, spec, sizeof(spec), err, sizeof(err));
	if (rc < 0) {
		if (!err[0] || !memchr(err, '\0', sizeof(err)))
			abort(); /* refused without a message */
		return 0;
	}
	if (!memchr(spec, '\0', sizeof(spec)))
		abort();
	const char *q = strrchr(spec, '?');
	if (!q || strncmp(q + 1, "method=", 7))
		abort(); /* the parameters start where log_http.c put them */
	uint32_t headers = 0;
	for (const char *p = q + 1; *p;) {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);
		if (!eq || !known(p, (size_t)(eq - p)))
			abort();
		for (const char *v = eq + 1; v < p + n; v++) {
			unsigned char c = (unsigned char)*v;
			if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') &&
			    !(c >= '0' && c <= '9') && !strchr("-_.~%", c))
				abort();
			if (c == '%' &&
			    (!strchr("0123456789ABCDEF", v[1]) || !v[1] ||
			     !strchr("0123456789ABCDEF", v[2]) || !v[2] ||
			     (v[1] == '0' && (v[2] == 'D' || v[2] == 'A' || v[2] == '0'))))
				abort(); /* a bad escape, or an encoded CR, LF or NUL */
		}
		if ((size_t)(eq - p) == 6 && !memcmp(p, "header", 6))
			headers++;
		p += n + (p[n] == '&');
	}
	if (headers != headers_in(&cfg))
		abort();
	return 0;
}
