/* SPDX-License-Identifier: MIT */
/* The plugin test library (shmring/plugin_test.h): the daemon's plugin host
 * (worker/host_*.c, linked into the same archive) driven from a test. */
#include "shmring/plugin_test.h"

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

/* The library stands in for shmringd, whose plugin_file_dirs it takes from
 * SHMRING_TEST_FILE_DIRS (':'-separated), else "/tmp": the tests keep the
 * files their configs name there. A test of the policy itself sets its own
 * list afterwards (shmringd__file_dirs_set). */
__attribute__((constructor)) static void test_file_dirs(void)
{
	char err[256];
	const char *dirs = getenv("SHMRING_TEST_FILE_DIRS");
	if (shmringd__file_dirs_set(dirs && *dirs ? dirs : "/tmp", err, sizeof(err)) < 0)
		fprintf(stderr, "shmring_test: %s\n", err);
}

/* Every host API a plugin may call must be in the test program even when the
 * test itself calls none of it (a static archive only brings in what is
 * referenced), and exported from it (-rdynamic). */
__attribute__((used)) static const void *const host_api[] = {
    (const void *)shmring_req_header,    (const void *)shmring_reply_set_req_header,
    (const void *)shmring_file_open,     (const void *)shmring_sink_open,
    (const void *)shmring_shared_region, (const void *)shmring_entity_get,
};

static void die(const char *what, const char *why)
{
	fprintf(stderr, "shmring_test: %s: %s\n", what, why);
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

/* text as msgpack into sb and u (both initialized here); aborts on bad JSON. */
static void unpack_json(const char *text, msgpack_sbuffer *sb, msgpack_unpacked *u)
{
	char err[256];
	msgpack_sbuffer_init(sb);
	msgpack_unpacked_init(u);
	if (shmring_test_json_msgpack(text, sb, u, err, sizeof(err)) < 0)
		die(text, err);
}

void shmring_test_open(struct shmring_test *h, const char *so_path)
{
	memset(h, 0, sizeof(*h));
	h->dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
	if (!h->dl)
		die(so_path, dlerror());
	h->p = dlsym(h->dl, SHMRING_PLUGIN_SYMBOL);
	if (!h->p)
		die(so_path, "no descriptor");
	char why[512];
	if (shmringd__plugin_problem(h->p, why, sizeof(why)))
		die(so_path, why);
	if (h->p->init && h->p->init(&h->wstate, h->err, sizeof(h->err)) < 0)
		die("init", h->err);
	h->rep = calloc(1, sizeof(*h->rep));
	h->entities = shmringd__entity_cache_new(SHMRING_TEST_ENTITY_CACHE);
	msgpack_sbuffer_init(&h->snap_buf);
	msgpack_unpacked_init(&h->snap);
}

void shmring_test_close(struct shmring_test *h)
{
	if (h->have_conf && h->p->conf_free)
		h->p->conf_free(h->conf);
	if (h->p->fini)
		h->p->fini(h->wstate);
	json_decref(h->reply);
	json_decref(h->reads);
	shmringd__entity_cache_free(h->entities);
	free(h->rep->buf);
	free(h->rep);
	msgpack_sbuffer_destroy(&h->snap_buf);
	msgpack_unpacked_destroy(&h->snap);
	dlclose(h->dl);
	memset(h, 0, sizeof(*h));
}

int shmring_test_conf(struct shmring_test *h, const char *json_config)
{
	if (h->have_conf && h->p->conf_free)
		h->p->conf_free(h->conf);
	h->have_conf = 0;
	h->conf = NULL;
	h->err[0] = '\0';
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	unpack_json(json_config, &sb, &u);
	void *conf = NULL;
	int rc = shmringd__conf_new(h->p, h->wstate, &u.data, &conf, h->err, sizeof(h->err));
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

void shmring_test_snapshot(struct shmring_test *h, uint32_t phase, const char *json_snapshot)
{
	json_t *j = parse(json_snapshot);
	json_object_set_new(j, "conf", json_integer((json_int_t)h->conf_id + 1));
	msgpack_sbuffer_clear(&h->snap_buf);
	shmring_test_pack_json(&h->snap_buf, j);
	json_decref(j);
	if (msgpack_unpack_next(&h->snap, h->snap_buf.data, h->snap_buf.size, NULL) !=
	    MSGPACK_UNPACK_SUCCESS)
		die("snapshot", "unpack");
	memset(&h->req, 0, sizeof(h->req));
	if (shmringd__request_decode(&h->req, &h->snap.data) < 0)
		die(json_snapshot, "shmringd__request_decode refused the snapshot");
	h->req.phase = phase;
}

static int call_hook(struct shmring_test *h);

/* The test whose hook is running: its reads are recorded. */
static struct shmring_test *reading;

static bool declared(const char *const *names, struct shmring_str name)
{
	if (names && names[0] && !strcmp(names[0], SHMRING_NEED_ALL))
		return true;
	for (size_t i = 0; names && names[i]; i++)
		if (strlen(names[i]) == name.len && !strncasecmp(names[i], name.ptr, name.len))
			return true;
	return false;
}

static void record_read(enum shmringd_read what, struct shmring_str name, int rc)
{
	static const char *const kinds[] = {"header", "query", "ctx", "resp_header"};
	struct shmring_test *h = reading;
	if (!h)
		return;
	const struct shmring_plugin *p = h->p;
	bool ok = what == SHMRINGD_READ_CTX ||
	          declared(what == SHMRINGD_READ_HEADER  ? p->needs_headers
	                   : what == SHMRINGD_READ_QUERY ? p->needs_query
	                                                 : p->needs_resp_headers,
	                   name);
	json_array_append_new(h->reads, json_pack("{s:s, s:s%, s:i, s:b}", "read", kinds[what],
	                                          "name", name.ptr ? name.ptr : "", name.len,
	                                          "found", rc, "declared", ok));
}

json_t *shmring_test_reads(const struct shmring_test *h)
{
	return h->reads;
}

int shmring_test_undeclared_reads(const struct shmring_test *h)
{
	int n = 0;
	for (size_t i = 0; i < json_array_size(h->reads); i++)
		n += !json_is_true(json_object_get(json_array_get(h->reads, i), "declared"));
	return n;
}

static int traced_hook(struct shmring_test *h)
{
	if (!h->reads)
		h->reads = json_array();
	json_array_clear(h->reads);
	shmringd__read_trace = record_read;
	reading = h;
	int rc = call_hook(h);
	reading = NULL;
	return rc;
}

static int call_hook(struct shmring_test *h)
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

int shmring_test_log(struct shmring_test *h, const char *json_entry)
{
	if (!(h->p->phases & SHMRING_PHASE_LOG))
		die(h->p->name, "the plugin has no log phase");
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	unpack_json(json_entry, &sb, &u);
	struct shmring_log_record rec = {.req_id = 1, .conf_id = h->conf_id, .entry = &u.data};
	int rc = h->p->log(h->conf, &rec);
	memset(sb.data, 0xa5, sb.size); /* the entry dies with the record */
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static struct shmringd_worker_stats sink_stats;

int shmring_test_sinks_start(void)
{
	struct shmringd_sink_opts o = {
	    .batch_bytes = 65536, .flush_ms = 100, .max_bytes = 4u << 20};
	return shmringd__sinks_init(&o, &sink_stats);
}

void shmring_test_sinks_flush(void)
{
	shmringd__sinks_drain(shmring_now_ns() + 2000000000ull);
	shmringd__sinks_poll(shmring_now_ns());
}

/* The hook as shmringd's handle_phase runs it: entity look-ups go to the
 * test's cache, and misses replace the reply with NEED_ENTITIES. */
static uint32_t run_phase(struct shmring_test *h, bool traced, int *rc)
{
	if (shmringd__entity_begin(h->entities, &h->snap.data) < 0) {
		shmringd__entity_end(NULL); /* shmringd answers it as a bad record */
		*rc = -1;
		return shmringd__reply_status(h->rep, SHMRING_REPLY_ERROR, "bad entities");
	}
	shmringd__reply_begin(h->rep, 1u << 20);
	*rc = traced ? traced_hook(h) : call_hook(h);
	if (shmringd__entity_end(h->rep))
		return h->rep->len;
	return shmringd__reply_finish(h->rep, *rc < 0 ? "plugin error" : NULL);
}

uint32_t shmring_test_run_raw(struct shmring_test *h)
{
	int rc;
	return run_phase(h, false, &rc); /* untraced: this path is timed */
}

int shmring_test_run(struct shmring_test *h)
{
	int rc;
	uint32_t len = run_phase(h, true, &rc);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)h->rep->buf, len, NULL) != MSGPACK_UNPACK_SUCCESS)
		die("reply", "unpack");
	json_decref(h->reply);
	h->reply = shmring_test_msgpack_json(&u.data);
	msgpack_unpacked_destroy(&u);
	return rc;
}

int shmring_test_call(struct shmring_test *h, uint32_t phase, const char *json_snapshot)
{
	shmring_test_snapshot(h, phase, json_snapshot);
	return shmring_test_run(h);
}

json_t *shmring_test_actions(const struct shmring_test *h)
{
	return h->reply ? json_object_get(h->reply, "a") : NULL;
}

json_t *shmring_test_action_op(const struct shmring_test *h, int op, int n)
{
	json_t *a = shmring_test_actions(h);
	for (size_t i = 0; a && i < json_array_size(a); i++) {
		json_t *x = json_array_get(a, i);
		if (json_integer_value(json_array_get(x, 0)) == op && n-- == 0)
			return x;
	}
	return NULL;
}

int shmring_test_count_op(const struct shmring_test *h, int op)
{
	int n = 0;
	while (shmring_test_action_op(h, op, n))
		n++;
	return n;
}

static const char *const op_names[] = {
    [SHMRING_ACT_SET_REQ_HEADER] = "set_req_header",
    [SHMRING_ACT_ADD_REQ_HEADER] = "add_req_header",
    [SHMRING_ACT_CLEAR_REQ_HEADER] = "clear_req_header",
    [SHMRING_ACT_SET_PATH] = "set_path",
    [SHMRING_ACT_SET_QUERY] = "set_query",
    [SHMRING_ACT_SET_METHOD] = "set_method",
    [SHMRING_ACT_SET_RESP_HEADER] = "set_resp_header",
    [SHMRING_ACT_ADD_RESP_HEADER] = "add_resp_header",
    [SHMRING_ACT_EXIT] = "exit",
    [SHMRING_ACT_SET_CTX] = "set_ctx",
    [SHMRING_ACT_AUTHENTICATE] = "authenticate",
    [SHMRING_ACT_LOG] = "log",
    [SHMRING_ACT_SET_BODY] = "set_body",
};

int shmring_test_op(const char *name)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (op_names[i] && !strcmp(op_names[i], name))
			return (int)i;
	return -1;
}

static int op_of(const char *name)
{
	int op = shmring_test_op(name);
	if (op < 0)
		die(name, "no action has this name");
	return op;
}

json_t *shmring_test_action(const struct shmring_test *h, const char *name, int n)
{
	return shmring_test_action_op(h, op_of(name), n);
}

int shmring_test_count(const struct shmring_test *h, const char *name)
{
	return shmring_test_count_op(h, op_of(name));
}

/* The value the last `op` action (name, value) gives name, or NULL. */
static const char *header_value(const struct shmring_test *h, int op, const char *name)
{
	const char *v = NULL;
	json_t *x;
	for (int i = 0; (x = shmring_test_action_op(h, op, i)); i++)
		if (!strcasecmp(json_string_value(json_array_get(x, 1)), name))
			v = json_string_value(json_array_get(x, 2));
	return v;
}

const char *shmring_test_set_header(const struct shmring_test *h, const char *name)
{
	return header_value(h, SHMRING_ACT_SET_REQ_HEADER, name);
}

const char *shmring_test_set_resp_header(const struct shmring_test *h, const char *name)
{
	return header_value(h, SHMRING_ACT_SET_RESP_HEADER, name);
}

const char *shmring_test_reply_error(const struct shmring_test *h)
{
	return h->reply ? json_string_value(json_object_get(h->reply, "e")) : NULL;
}

int shmring_test_cleared(const struct shmring_test *h, const char *name)
{
	json_t *x;
	for (int i = 0; (x = shmring_test_action_op(h, SHMRING_ACT_CLEAR_REQ_HEADER, i)); i++)
		if (!strcasecmp(json_string_value(json_array_get(x, 1)), name))
			return 1;
	return 0;
}

const char *shmring_test_reply_text(const struct shmring_test *h)
{
	static char buf[8192];
	char *s = h->reply ? json_dumps(h->reply, JSON_COMPACT) : NULL;
	snprintf(buf, sizeof(buf), "%s", s ? s : "(no reply)");
	free(s);
	return buf;
}
