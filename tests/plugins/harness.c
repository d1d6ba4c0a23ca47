/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include "daemon.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The plugin host logs through the daemon's logger, which lives in master.c. */
char shmringd__role[32] = "harness";
void shmringd__log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[%s] ", shmringd__role);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* The harness stands in for shmringd, whose plugin_file_dirs it takes as
 * "/tmp": the tests keep the files their configs name there. A test of the
 * policy itself sets its own list afterwards (shmringd__file_dirs_set). */
__attribute__((constructor)) static void harness_file_dirs(void)
{
	char err[256];
	if (shmringd__file_dirs_set("/tmp", err, sizeof(err)) < 0)
		fprintf(stderr, "harness: %s\n", err);
}

int harness_sinks_start(struct shmringd_worker_stats *ws)
{
	struct shmringd_sink_opts o = {
	    .batch_bytes = 65536, .flush_ms = 100, .max_bytes = 4u << 20};
	int rc = shmringd__sinks_init(&o, ws);
	if (rc < 0) {
		printf("SKIP: io_uring unavailable: %s\n", strerror(-rc));
		return 77;
	}
	return 0;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "harness: %s: %s\n", what, why);
	abort();
}

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!j)
		die(text, je.text);
	return j;
}

void harness_open(struct harness *h, const char *so_path)
{
	memset(h, 0, sizeof(*h));
	h->dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
	if (!h->dl)
		die(so_path, dlerror());
	h->p = dlsym(h->dl, SHMRING_PLUGIN_SYMBOL);
	if (!h->p)
		die(so_path, "no descriptor");
	if (h->p->abi_version != SHMRING_PLUGIN_ABI_VERSION)
		die(so_path, "ABI version");
	if (h->p->init && h->p->init(&h->wstate, h->err, sizeof(h->err)) < 0)
		die("init", h->err);
	h->rep = calloc(1, sizeof(*h->rep));
	h->entities = shmringd__entity_cache_new(HARNESS_ENTITY_CACHE);
	msgpack_sbuffer_init(&h->snap_buf);
	msgpack_unpacked_init(&h->snap);
}

void harness_close(struct harness *h)
{
	if (h->have_conf && h->p->conf_free)
		h->p->conf_free(h->conf);
	if (h->p->fini)
		h->p->fini(h->wstate);
	json_decref(h->reply);
	shmringd__entity_cache_free(h->entities);
	free(h->rep->buf);
	free(h->rep);
	msgpack_sbuffer_destroy(&h->snap_buf);
	msgpack_unpacked_destroy(&h->snap);
	dlclose(h->dl);
	memset(h, 0, sizeof(*h));
}

int harness_conf(struct harness *h, const char *json_config)
{
	if (h->have_conf && h->p->conf_free)
		h->p->conf_free(h->conf);
	h->have_conf = 0;
	h->conf = NULL;
	h->err[0] = '\0';
	json_t *j = parse(json_config);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	harness_pack_json(&sb, j);
	json_decref(j);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS)
		die("conf", "unpack");
	void *conf = NULL;
	int rc = h->p->conf_new(h->wstate, &u.data, &conf, h->err, sizeof(h->err));
	/* The config views die with the record, as in the daemon: scribble
	 * over them so a plugin that kept a view fails loudly. */
	memset(sb.data, 0xa5, sb.size);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	if (rc == 0) {
		h->conf = conf;
		h->have_conf = 1;
		h->conf_id++;
	}
	return rc;
}

void harness_snapshot(struct harness *h, uint32_t phase, const char *json_snapshot)
{
	json_t *j = parse(json_snapshot);
	json_object_set_new(j, "conf", json_integer((json_int_t)h->conf_id + 1));
	msgpack_sbuffer_clear(&h->snap_buf);
	harness_pack_json(&h->snap_buf, j);
	json_decref(j);
	if (msgpack_unpack_next(&h->snap, h->snap_buf.data, h->snap_buf.size, NULL) !=
	    MSGPACK_UNPACK_SUCCESS)
		die("snapshot", "unpack");
	memset(&h->req, 0, sizeof(h->req));
	if (shmringd__request_decode(&h->req, &h->snap.data) < 0)
		die(json_snapshot, "shmringd__request_decode refused the snapshot");
	h->req.phase = phase;
}

static int hook(struct harness *h)
{
	switch (h->req.phase) {
	case SHMRING_PHASE_ACCESS:
		return h->p->access(h->conf, &h->req, h->rep);
	case SHMRING_PHASE_REWRITE:
		return h->p->rewrite(h->conf, &h->req, h->rep);
	case SHMRING_PHASE_HEADER_FILTER:
		return h->p->header_filter(h->conf, &h->req, h->rep);
	default:
		die("phase", "unknown");
		return -1;
	}
}

/* The hook as shmringd's handle_phase runs it: entity look-ups go to the
 * harness's cache, and misses replace the reply with NEED_ENTITIES. */
static uint32_t run_hook(struct harness *h, int *rc)
{
	if (shmringd__entity_begin(h->entities, &h->snap.data) < 0) {
		shmringd__entity_end(NULL); /* shmringd answers it as a bad record */
		*rc = -1;
		return shmringd__reply_status(h->rep, SHMRING_REPLY_ERROR, "bad entities");
	}
	shmringd__reply_begin(h->rep, 1u << 20);
	*rc = hook(h);
	if (shmringd__entity_end(h->rep))
		return h->rep->len;
	return shmringd__reply_finish(h->rep, *rc < 0 ? "plugin error" : NULL);
}

uint32_t harness_run_raw(struct harness *h)
{
	int rc;
	return run_hook(h, &rc);
}

int harness_run(struct harness *h)
{
	int rc;
	uint32_t len = run_hook(h, &rc);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)h->rep->buf, len, NULL) != MSGPACK_UNPACK_SUCCESS)
		die("reply", "unpack");
	json_decref(h->reply);
	h->reply = harness_msgpack_json(&u.data);
	msgpack_unpacked_destroy(&u);
	return rc;
}

int harness_call(struct harness *h, uint32_t phase, const char *json_snapshot)
{
	harness_snapshot(h, phase, json_snapshot);
	return harness_run(h);
}

json_t *harness_actions(const struct harness *h)
{
	return h->reply ? json_object_get(h->reply, "a") : NULL;
}

json_t *harness_action(const struct harness *h, int op, int n)
{
	json_t *a = harness_actions(h);
	for (size_t i = 0; a && i < json_array_size(a); i++) {
		json_t *x = json_array_get(a, i);
		if (json_integer_value(json_array_get(x, 0)) == op && n-- == 0)
			return x;
	}
	return NULL;
}

int harness_count(const struct harness *h, int op)
{
	int n = 0;
	while (harness_action(h, op, n))
		n++;
	return n;
}

const char *harness_set_header(const struct harness *h, const char *name)
{
	const char *v = NULL;
	json_t *x;
	for (int i = 0; (x = harness_action(h, SHMRING_ACT_SET_REQ_HEADER, i)); i++)
		if (!strcasecmp(json_string_value(json_array_get(x, 1)), name))
			v = json_string_value(json_array_get(x, 2));
	return v;
}

int harness_cleared(const struct harness *h, const char *name)
{
	json_t *x;
	for (int i = 0; (x = harness_action(h, SHMRING_ACT_CLEAR_REQ_HEADER, i)); i++)
		if (!strcasecmp(json_string_value(json_array_get(x, 1)), name))
			return 1;
	return 0;
}

const char *harness_reply_text(const struct harness *h)
{
	static char buf[8192];
	char *s = h->reply ? json_dumps(h->reply, JSON_COMPACT) : NULL;
	snprintf(buf, sizeof(buf), "%s", s ? s : "(no reply)");
	free(s);
	return buf;
}
