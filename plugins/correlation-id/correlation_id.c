/* SPDX-License-Identifier: MIT */
/*
 * correlation-id: Kong's correlation-id plugin as a shmring C plugin.
 *
 * Config (Kong's names and defaults): header_name ("Kong-Request-ID"),
 * generator ("uuid#counter"; or "uuid", "tracker"), echo_downstream (false).
 *
 * ACCESS: if the request has no (or an empty) header_name, generate an id
 * and set it on the upstream request; either way keep it for later phases
 * with SET_CTX "correlation_id" (the log plugin reads it) and, with
 * echo_downstream, ask for it on the response (the gateway sets it in its
 * header_filter). HEADER_FILTER (for hosts that send it): echo the kept id.
 *
 * Generators, per shmringd worker process (Kong's are per nginx worker):
 *   uuid          a random (v4) UUID
 *   uuid#counter  "<worker uuid>#<counter>": one random UUID per worker
 *                 process, then a counter (cheapest, unique per worker)
 *   tracker       Kong's: "<server_addr>-<server_port>-<nginx worker pid>-
 *                 <connection serial>-<requests on it>-<unix time>.<ms>",
 *                 from the snapshot's connection fields (the gateway sends
 *                 them to this plugin only; the time is the gateway's).
 * Random bytes come from getrandom(), 4 KiB at a time (one syscall per 256
 * UUIDs).
 */
#include "shmring_pc.h"
#include "shmring_plugin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define PLUGIN "correlation-id"
#define CTX_KEY SHMRING_LIT("correlation_id")

enum generator { GEN_UUID, GEN_UUID_COUNTER, GEN_TRACKER };

/* Per worker process (init/fini). */
struct cid_worker {
	char uuid[37];    /* this worker's UUID for uuid#counter */
	uint64_t counter; /* ids made by uuid#counter */
	size_t rnd_pos;   /* next unused byte of rnd */
	uint8_t rnd[4096];
};

struct cid_conf {
	struct cid_worker *w;
	enum generator gen;
	bool echo;
	struct shmring_str header; /* as configured, NUL-terminated */
	char *header_mem;
};

static int random_bytes(struct cid_worker *w, uint8_t *out, size_t n)
{
	if (w->rnd_pos + n > sizeof(w->rnd)) {
		size_t got = 0;
		while (got < sizeof(w->rnd)) {
			ssize_t r = getrandom(w->rnd + got, sizeof(w->rnd) - got, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			got += (size_t)r;
		}
		w->rnd_pos = 0;
	}
	memcpy(out, w->rnd + w->rnd_pos, n);
	/* Used bytes are not kept around. */
	memset(w->rnd + w->rnd_pos, 0, n);
	w->rnd_pos += n;
	return 0;
}

/* A v4 UUID, lower-case, into out[37]. */
static int uuid4(struct cid_worker *w, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	int rc = random_bytes(w, b, sizeof(b));
	if (rc < 0)
		return rc;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

static int cid_init(void **wstate, char *err, size_t errlen)
{
	struct cid_worker *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	w->rnd_pos = sizeof(w->rnd); /* empty: first use fills it */
	int rc = uuid4(w, w->uuid);
	if (rc < 0) {
		snprintf(err, errlen, PLUGIN ": getrandom: %s", strerror(-rc));
		free(w);
		return rc;
	}
	*wstate = w;
	return 0;
}

static void cid_fini(void *wstate)
{
	free(wstate);
}

/* The config, declared once: shmringd checks it and fills in the defaults
 * before cid_conf_new, and the Kong schema is made from it (`shmringctl
 * schema correlation-id --kong`). Kong's fields and defaults. */
static const char *const generators[] = {"uuid", "uuid#counter", "tracker", NULL};
static const struct shmring_field cid_config[] = {
    {.name = "header_name",
     .type = SHMRING_FIELD_STRING,
     .def = "\"Kong-Request-ID\"",
     .len_min = 1,
     .doc = "the header that carries the id"},
    {.name = "generator",
     .type = SHMRING_FIELD_STRING,
     .flags = SHMRING_FIELD_REQUIRED,
     .def = "\"uuid#counter\"",
     .one_of = generators,
     .doc = "how a missing id is made"},
    {.name = "echo_downstream",
     .type = SHMRING_FIELD_BOOLEAN,
     .flags = SHMRING_FIELD_REQUIRED,
     .def = "false",
     .doc = "send the id back in the response too"},
    /* fail_open: an id is not worth failing a request. */
    SHMRING_GATEWAY_FIELDS("true"),
    {.name = NULL}};

static void cid_conf_free(void *conf)
{
	struct cid_conf *c = conf;
	if (c)
		free(c->header_mem);
	free(c);
}

static int cid_conf_new(void *wstate, const msgpack_object *cfg, void **out, char *err,
                        size_t errlen)
{
	*out = NULL;
	if (!wstate) {
		snprintf(err, errlen, PLUGIN ": worker state missing (init did not run)");
		return -EINVAL;
	}
	struct cid_conf *c = calloc(1, sizeof(*c));
	char *gen = NULL;
	int rc;
	if (!c) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	c->w = wstate;
	if ((rc = shmring_pc_strdup(cfg, PLUGIN, "header_name", "Kong-Request-ID", true,
	                            &c->header_mem, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "generator", "uuid#counter", true, &gen, err,
	                            errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "echo_downstream", false, &c->echo, err, errlen)) <
	        0)
		goto fail;
	rc = -EINVAL;
	c->header = shmring_cstr(c->header_mem);
	if (!shmring_pc_header_name_ok(c->header)) {
		snprintf(err, errlen,
		         PLUGIN ": config.header_name '%.64s' is not a valid header name",
		         c->header_mem);
		goto fail;
	}
	if (!strcmp(gen, "uuid")) {
		c->gen = GEN_UUID;
	} else if (!strcmp(gen, "uuid#counter")) {
		c->gen = GEN_UUID_COUNTER;
	} else if (!strcmp(gen, "tracker")) {
		c->gen = GEN_TRACKER;
	} else {
		snprintf(err, errlen,
		         PLUGIN ": config.generator must be one of \"uuid\", \"uuid#counter\", "
		                "\"tracker\" (got \"%.64s\")",
		         gen);
		goto fail;
	}
	free(gen);
	*out = c;
	return 0;
fail:
	free(gen);
	cid_conf_free(c);
	return rc;
}

/* Make an id into buf (len >= 128); its length, or < 0 (-ENODATA: a tracker
 * without the snapshot's connection fields). */
static int generate(struct cid_conf *c, const struct shmring_request *req, char *buf, size_t len)
{
	struct cid_worker *w = c->w;
	switch (c->gen) {
	case GEN_UUID: {
		int rc = uuid4(w, buf);
		return rc < 0 ? rc : 36;
	}
	case GEN_UUID_COUNTER: {
		/* "<uuid>#<counter>" without snprintf (a third of the hook's time). */
		char digits[20];
		uint64_t v = ++w->counter;
		size_t nd = 0;
		do {
			digits[nd++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		memcpy(buf, w->uuid, 36);
		buf[36] = '#';
		for (size_t i = 0; i < nd; i++)
			buf[37 + i] = digits[nd - 1 - i];
		return (int)(37 + nd);
	}
	case GEN_TRACKER: {
		/* Kong formats "%s-%s-%d-%s-%s-%0.3f" of the same nginx values;
		 * ngx.now() has ms resolution, so "%0.3f" is seconds.ms exactly. */
		struct shmring_connection conn;
		if (!shmring_req_connection(req, &conn))
			return -ENODATA;
		int n = snprintf(buf, len,
		                 "%.*s-%" PRIu32 "-%" PRIu32 "-%" PRIu64 "-%" PRIu64 "-%" PRIu64
		                 ".%03" PRIu64,
		                 (int)conn.server_addr.len, conn.server_addr.ptr, conn.server_port,
		                 conn.worker_pid, conn.serial, conn.requests, conn.time_ms / 1000,
		                 conn.time_ms % 1000);
		return n >= 0 && (size_t)n < len ? n : -EMSGSIZE;
	}
	}
	return -EINVAL;
}

static int cid_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	struct cid_conf *c = conf;
	char buf[256]; /* a tracker with a unix socket path as server_addr fits */
	struct shmring_str id;
	int rc = 0;
	if (!shmring_req_header(req, c->header, &id) || id.len == 0) {
		int n = generate(c, req, buf, sizeof(buf));
		if (n == -ENODATA) {
			shmring_reply_error(rep,
			                    SHMRING_LIT(PLUGIN ": the tracker generator needs the "
			                                       "snapshot's connection fields"));
			return n;
		}
		if (n < 0) {
			shmring_reply_error(rep, SHMRING_LIT(PLUGIN ": cannot generate an id"));
			return n;
		}
		id = (struct shmring_str){buf, (size_t)n};
		rc = shmring_reply_set_req_header(rep, c->header, id);
	}
	if (rc == 0)
		rc = shmring_reply_set_ctx(rep, CTX_KEY, id);
	if (rc == 0 && c->echo)
		rc = shmring_reply_set_resp_header(rep, c->header, id);
	return rc;
}

static int cid_header_filter(void *conf, const struct shmring_request *req,
                             struct shmring_reply *rep)
{
	struct cid_conf *c = conf;
	struct shmring_str id;
	if (!c->echo || !shmring_req_ctx(req, CTX_KEY, &id) || id.len == 0)
		return 0;
	return shmring_reply_set_resp_header(rep, c->header, id);
}

static const char *const needs_all[] = {SHMRING_NEED_ALL, NULL};

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "correlation-id",
    .version = "1.0.0",
    .phases = SHMRING_PHASE_ACCESS | SHMRING_PHASE_HEADER_FILTER,
    /* header_name is configurable: the incoming id may be in any header. */
    .needs_headers = needs_all,
    .init = cid_init,
    .fini = cid_fini,
    .conf_new = cid_conf_new,
    .conf_free = cid_conf_free,
    .access = cid_access,
    .header_filter = cid_header_filter,
    .config = cid_config,
};
