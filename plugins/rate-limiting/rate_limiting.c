/* SPDX-License-Identifier: MIT */
/*
 * rate-limiting: Kong's rate-limiting plugin (3.x config and headers) as a
 * shmring C plugin, counting EXACTLY across every shmringd worker of a host.
 *
 * Config (Kong's names): second, minute, hour, day, month, year (at least
 * one; a lower period's limit may not exceed a higher one's), limit_by
 * (consumer, credential, ip, service, header, path; falls back to the client
 * IP), header_name, path, policy (local, redis), fault_tolerant (true),
 * hide_client_headers (false), error_code (429), error_message ("API rate
 * limit exceeded"), retry_after_jitter_max (0), redis {host, port, username,
 * password, database, timeout}, sync_rate; plus shmring's algorithm
 * (fixed-window, Kong's, the default; token-bucket).
 *
 * Counters live in rl_table (rl_table.h), a table in memory every worker of
 * the daemon maps (shmring_shared_region), updated with one CAS per period:
 * a request is counted only if every period has room, else what it took is
 * given back, so no worker ever lets through more than the limit. Windows
 * are aligned to UTC calendar periods (a month is the calendar month).
 *
 * policy = redis adds rl_redis.c: counts stay local and exact per host, and
 * a thread per worker exchanges them with Redis every sync_rate seconds.
 */
#include "rl_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static const char *const period_names[RL_NPERIODS] = {"second", "minute", "hour",
                                                      "day",    "month",  "year"};
static const char *const period_titles[RL_NPERIODS] = {"Second", "Minute", "Hour",
                                                       "Day",    "Month",  "Year"};
static const uint64_t period_seconds[RL_NPERIODS] = {1, 60, 3600, 86400, 2592000, 31536000};

/* ---- test clock -------------------------------------------------------------------- */

uint64_t rl_fake_now_ns;

/* For the unit tests only (dlsym'ed by tests/ratelimit): pin the plugin's
 * clock to ns since the Unix epoch; 0 goes back to CLOCK_REALTIME. */
__attribute__((visibility("default"))) void shmring_rl_test_set_clock(uint64_t ns)
{
	__atomic_store_n(&rl_fake_now_ns, ns, __ATOMIC_RELAXED);
}

/* ---- worker state -------------------------------------------------------------- */

static int rl_init(void **wstate, char *err, size_t errlen)
{
	struct rl_worker *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	void *mem;
	size_t bytes = rl_table_bytes(RL_NBUCKETS);
	int rc = shmring_shared_region(RL_REGION_NAME, bytes, &mem);
	if (rc == 0)
		rc = rl_table_attach(&w->table, mem, bytes);
	if (rc < 0) {
		snprintf(err, errlen,
		         PLUGIN ": cannot map the shared counter table '" RL_REGION_NAME
		                "' (%zu bytes): %s",
		         bytes, strerror(-rc));
		free(w);
		return rc;
	}
	w->rng = rl_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
	*wstate = w;
	return 0;
}

static void rl_fini(void *wstate)
{
	struct rl_worker *w = wstate;
	if (!w)
		return;
	rl_redis_worker_fini(w);
	free(w);
}

/* ---- config ---------------------------------------------------------------------- */

/* The config (Kong 3.x rate-limiting's fields, defaults and checks, plus
 * shmring's algorithm). What the schema cannot say stays in rl_conf_new: a
 * limit is a whole number of requests; the limits grow with the period
 * (also in Lua, rl_kong_validator, for the Kong schema); error_code is an
 * HTTP status; sync_rate's bounds. */
#define RL_LIMIT(period)                                                                           \
	{                                                                                          \
		.name = period, .type = SHMRING_FIELD_NUMBER, .flags = SHMRING_FIELD_GT, .gt = 0,  \
		.doc = "requests per " period                                                      \
	}
static const char *const limit_by_names[] = {"consumer", "credential", "ip", "service",
                                             "header",   "path",       NULL};
static const char *const policy_names[] = {"local", "redis", NULL};
static const char *const algorithm_names[] = {"fixed-window", "token-bucket", NULL};
static const struct shmring_field rl_redis_fields[] = {
    {.name = "host", .type = SHMRING_FIELD_STRING, .kong_typedef = SHMRING_TYPEDEF_HOST},
    {.name = "port",
     .type = SHMRING_FIELD_INTEGER,
     .kong_typedef = SHMRING_TYPEDEF_PORT,
     .def = "6379"},
    {.name = "username", .type = SHMRING_FIELD_STRING},
    {.name = "password", .type = SHMRING_FIELD_STRING, .flags = SHMRING_FIELD_EMPTY_OK},
    {.name = "database", .type = SHMRING_FIELD_INTEGER, .def = "0"},
    {.name = "timeout",
     .type = SHMRING_FIELD_INTEGER,
     .flags = SHMRING_FIELD_BETWEEN,
     .def = "2000",
     .min = 1,
     .max = 600000,
     .doc = "ms"},
    {.name = "ssl", .type = SHMRING_FIELD_BOOLEAN, .def = "false"},
    {.name = "ssl_verify", .type = SHMRING_FIELD_BOOLEAN, .def = "false"},
    {.name = "server_name", .type = SHMRING_FIELD_STRING, .kong_typedef = SHMRING_TYPEDEF_SNI},
    {.name = NULL}};
/* Kong's pre-3.6 flat redis_* fields: Kong 3.x takes them as shorthands. */
#define RL_REDIS_SHORTHAND(field, field_type, field_flags)                                         \
	{                                                                                          \
		.name = "redis_" field, .type = field_type, .flags = field_flags,                  \
		.shorthand_for = "redis." field                                                    \
	}
static const struct shmring_field rl_config[] = {
    RL_LIMIT("second"),
    RL_LIMIT("minute"),
    RL_LIMIT("hour"),
    RL_LIMIT("day"),
    RL_LIMIT("month"),
    RL_LIMIT("year"),
    {.name = "limit_by",
     .type = SHMRING_FIELD_STRING,
     .def = "\"consumer\"",
     .one_of = limit_by_names,
     .doc = "what a counter counts (falls back to the client IP)"},
    {.name = "header_name",
     .type = SHMRING_FIELD_STRING,
     .kong_typedef = SHMRING_TYPEDEF_HEADER_NAME,
     .doc = "limit_by = header"},
    {.name = "path",
     .type = SHMRING_FIELD_STRING,
     .kong_typedef = SHMRING_TYPEDEF_PATH,
     .doc = "limit_by = path"},
    {.name = "policy", .type = SHMRING_FIELD_STRING, .def = "\"local\"", .one_of = policy_names},
    {.name = "algorithm",
     .type = SHMRING_FIELD_STRING,
     .def = "\"fixed-window\"",
     .one_of = algorithm_names},
    {.name = "fault_tolerant",
     .type = SHMRING_FIELD_BOOLEAN,
     .flags = SHMRING_FIELD_REQUIRED,
     .def = "true"},
    {.name = "redis", .type = SHMRING_FIELD_RECORD, .fields = rl_redis_fields},
    {.name = "hide_client_headers",
     .type = SHMRING_FIELD_BOOLEAN,
     .flags = SHMRING_FIELD_REQUIRED,
     .def = "false"},
    {.name = "error_code",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_GT,
     .def = "429",
     .gt = 0},
    {.name = "error_message", .type = SHMRING_FIELD_STRING, .def = "\"API rate limit exceeded\""},
    {.name = "retry_after_jitter_max",
     .type = SHMRING_FIELD_NUMBER,
     .flags = SHMRING_FIELD_REQUIRED | SHMRING_FIELD_BETWEEN,
     .def = "0",
     .min = 0,
     .max = 86400,
     .doc = "seconds"},
    {.name = "sync_rate",
     .type = SHMRING_FIELD_NUMBER,
     .def = "1",
     .doc = "seconds between Redis exchanges (0 or -1: synchronous)"},
    RL_REDIS_SHORTHAND("host", SHMRING_FIELD_STRING, 0),
    RL_REDIS_SHORTHAND("port", SHMRING_FIELD_INTEGER, 0),
    RL_REDIS_SHORTHAND("username", SHMRING_FIELD_STRING, 0),
    RL_REDIS_SHORTHAND("password", SHMRING_FIELD_STRING, SHMRING_FIELD_EMPTY_OK),
    RL_REDIS_SHORTHAND("database", SHMRING_FIELD_INTEGER, 0),
    RL_REDIS_SHORTHAND("timeout", SHMRING_FIELD_INTEGER, 0),
    RL_REDIS_SHORTHAND("ssl", SHMRING_FIELD_BOOLEAN, 0),
    RL_REDIS_SHORTHAND("ssl_verify", SHMRING_FIELD_BOOLEAN, 0),
    RL_REDIS_SHORTHAND("server_name", SHMRING_FIELD_STRING, 0),
    SHMRING_GATEWAY_FIELDS("true"),
    {.name = NULL}};
static const char *const rl_periods[] = {"second", "minute", "hour", "day", "month", "year", NULL};
static const struct shmring_check rl_checks[] = {
    {.kind = SHMRING_CHECK_AT_LEAST_ONE_OF, .fields = rl_periods},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "limit_by",
     .if_match = {.eq = "header"},
     .then_field = "header_name",
     .then_match = {.flags = SHMRING_MATCH_REQUIRED}},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "limit_by",
     .if_match = {.eq = "path"},
     .then_field = "path",
     .then_match = {.flags = SHMRING_MATCH_REQUIRED}},
    {.kind = SHMRING_CHECK_CONDITIONAL,
     .if_field = "policy",
     .if_match = {.eq = "redis"},
     .then_field = "redis.host",
     .then_match = {.flags = SHMRING_MATCH_REQUIRED}},
    {.kind = 0}};
/* Kong's validate_periods_order; rl_conf_new refuses the same in C. */
static const char rl_kong_validator[] =
    "function(config)\n"
    "                local periods = { \"second\", \"minute\", \"hour\", \"day\", \"month\", "
    "\"year\" }\n"
    "                for i, lower in ipairs(periods) do\n"
    "                    local v1 = config[lower]\n"
    "                    for j = i + 1, #periods do\n"
    "                        local v2 = config[periods[j]]\n"
    "                        if type(v1) == \"number\" and type(v2) == \"number\" and v2 < v1 "
    "then\n"
    "                            return nil, string.format(\"The limit for %s(%.1f) cannot be "
    "lower than the limit for %s(%.1f)\",\n"
    "                                periods[j], v2, lower, v1)\n"
    "                        end\n"
    "                    end\n"
    "                end\n"
    "                return true\n"
    "            end";

/* A limit, given: the schema passed a number above 0; it must also be a
 * whole number of requests (a fraction of a request is meaningless). */
static int read_limit(const msgpack_object *cfg, int p, uint64_t *out, char *err, size_t errlen)
{
	const msgpack_object *v = shmring_pc_field(cfg, period_names[p]);
	*out = 0;
	if (!v)
		return 0;
	double d = shmring_pc_number(v);
	if (!(d >= 1 && d <= (double)RL_MAX_LIMIT && d == floor(d))) {
		snprintf(err, errlen,
		         PLUGIN ": config.%s must be a whole number of requests between 1 and %llu",
		         period_names[p], (unsigned long long)RL_MAX_LIMIT);
		return -EINVAL;
	}
	*out = (uint64_t)d;
	return 1;
}

/* The index in names of the string the schema checked against them. */
static int enum_index(const msgpack_object *cfg, const char *key, const char *const *names)
{
	const msgpack_object *v = shmring_pc_field(cfg, key);
	for (int i = 0; v && v->type == MSGPACK_OBJECT_STR && names[i]; i++)
		if (v->via.str.size == strlen(names[i]) &&
		    !memcmp(v->via.str.ptr, names[i], v->via.str.size))
			return i;
	return 0;
}

/* Kong's kong.response.error body: {"message":"<json-escaped message>"}. */
static char *json_message(const char *msg, size_t *len)
{
	size_t n = strlen(msg), o = 0;
	char *b = malloc(6 * n + 32);
	if (!b)
		return NULL;
	o += (size_t)sprintf(b, "{\"message\":\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c == '"' || c == '\\') {
			b[o++] = '\\';
			b[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)sprintf(b + o, "\\u%04x", c);
		} else {
			b[o++] = (char)c;
		}
	}
	o += (size_t)sprintf(b + o, "\"}");
	*len = o;
	return b;
}

static void rl_conf_free(void *p)
{
	struct rl_conf *c = p;
	if (!c)
		return;
	rl_redis_conf_free(c);
	free(c->header_name);
	free(c->path);
	free(c->body);
	free(c->redis.host);
	free(c->redis.username);
	free(c->redis.password);
	free(c->redis.server_name);
	free(c);
}

/* The redis record (the schema moved Kong's older flat redis_* fields into
 * it and filled its defaults). */
static int read_redis(const msgpack_object *cfg, struct rl_conf *c, char *err, size_t errlen)
{
	const msgpack_object *r = shmring_pc_field(cfg, "redis");
	int64_t port, db, timeout;
	int rc;
	if ((rc = shmring_pc_strdup(r, PLUGIN, "host", NULL, true, &c->redis.host, err, errlen)) <
	        0 ||
	    (rc = shmring_pc_int(r, PLUGIN, "port", 6379, 1, 65535, &port, err, errlen)) < 0 ||
	    (rc = shmring_pc_strdup(r, PLUGIN, "username", NULL, true, &c->redis.username, err,
	                            errlen)) < 0 ||
	    (rc = shmring_pc_strdup(r, PLUGIN, "password", NULL, false, &c->redis.password, err,
	                            errlen)) < 0 ||
	    (rc = shmring_pc_int(r, PLUGIN, "database", 0, 0, 1000000, &db, err, errlen)) < 0 ||
	    (rc = shmring_pc_int(r, PLUGIN, "timeout", 2000, 1, 600000, &timeout, err, errlen)) <
	        0 ||
	    (rc = shmring_pc_bool(r, PLUGIN, "ssl", false, &c->redis.ssl, err, errlen)) < 0 ||
	    (rc = shmring_pc_bool(r, PLUGIN, "ssl_verify", false, &c->redis.ssl_verify, err,
	                          errlen)) < 0 ||
	    (rc = shmring_pc_strdup(r, PLUGIN, "server_name", NULL, true, &c->redis.server_name,
	                            err, errlen)) < 0) {
		/* The readers say "config.<field>": name the record. */
		char *at = strstr(err, "config.");
		if (at) {
			char tmp[512];
			snprintf(tmp, sizeof(tmp), "%s", at + strlen("config."));
			snprintf(at, errlen - (size_t)(at - err), "config.redis.%s", tmp);
		}
		return rc;
	}
	if (c->redis.password && !c->redis.password[0]) {
		free(c->redis.password);
		c->redis.password = NULL;
	}
	c->redis.port = (int)port;
	c->redis.database = (int)db;
	c->redis.timeout_ms = (int)timeout;
	return 0;
}

static int rl_conf_new(void *wstate, const msgpack_object *cfg, void **out, char *err,
                       size_t errlen)
{
	*out = NULL;
	struct rl_conf *c = calloc(1, sizeof(*c));
	char *msg = NULL;
	int rc, limit_by, policy, algorithm;
	int64_t code, sync_ms, jitter;
	double sync_rate = 1;
	if (!c) {
		snprintf(err, errlen, PLUGIN ": out of memory");
		return -ENOMEM;
	}
	c->w = wstate;
	uint64_t lim[RL_NPERIODS];
	for (int p = 0; p < RL_NPERIODS; p++)
		if ((rc = read_limit(cfg, p, &lim[p], err, errlen)) < 0)
			goto fail;
	/* Kong's validate_periods_order (rl_kong_validator), in its order. */
	for (int lo = 0; lo < RL_NPERIODS; lo++) {
		for (int hi = lo + 1; lim[lo] && hi < RL_NPERIODS; hi++) {
			if (lim[hi] && lim[hi] < lim[lo]) {
				snprintf(err, errlen,
				         PLUGIN ": The limit for %s(%.1f) cannot be lower than the "
				                "limit for %s(%.1f)",
				         period_names[hi], (double)lim[hi], period_names[lo],
				         (double)lim[lo]);
				rc = -EINVAL;
				goto fail;
			}
		}
	}
	for (int p = 0; p < RL_NPERIODS; p++) {
		if (!lim[p])
			continue; /* the schema saw that one is set */
		struct rl_period *rp = &c->p[c->np++];
		rp->period = p;
		rp->limit = lim[p];
		rp->h_limit_len = (size_t)snprintf(rp->h_limit, sizeof(rp->h_limit),
		                                   "X-RateLimit-Limit-%s", period_titles[p]);
		rp->h_remaining_len =
		    (size_t)snprintf(rp->h_remaining, sizeof(rp->h_remaining),
		                     "X-RateLimit-Remaining-%s", period_titles[p]);
	}
	limit_by = enum_index(cfg, "limit_by", limit_by_names);
	policy = enum_index(cfg, "policy", policy_names);
	algorithm = enum_index(cfg, "algorithm", algorithm_names);
	if ((rc = shmring_pc_strdup(cfg, PLUGIN, "header_name", NULL, true, &c->header_name, err,
	                            errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "path", NULL, true, &c->path, err, errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "fault_tolerant", true, &c->fault_tolerant, err,
	                          errlen)) < 0 ||
	    (rc = shmring_pc_bool(cfg, PLUGIN, "hide_client_headers", false,
	                          &c->hide_client_headers, err, errlen)) < 0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "error_code", 429, 100, 599, &code, err, errlen)) <
	        0 ||
	    (rc = shmring_pc_int(cfg, PLUGIN, "retry_after_jitter_max", 0, 0, 86400, &jitter, err,
	                         errlen)) < 0 ||
	    (rc = shmring_pc_strdup(cfg, PLUGIN, "error_message", "API rate limit exceeded", false,
	                            &msg, err, errlen)) < 0 ||
	    (rc = read_redis(cfg, c, err, errlen)) < 0)
		goto fail;
	rc = -EINVAL;
	c->limit_by = limit_by;
	c->token_bucket = algorithm == 1;
	c->error_code = (uint32_t)code;
	c->jitter_max = (uint32_t)jitter;
	c->redis_policy = policy == 1;
	const msgpack_object *sr = shmring_pc_field(cfg, "sync_rate");
	if (sr) {
		if (sr->type == MSGPACK_OBJECT_POSITIVE_INTEGER && sr->via.u64 <= 3600)
			sync_rate = (double)sr->via.u64;
		else if (sr->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && sr->via.i64 == -1)
			sync_rate = 0; /* Kong's "synchronous" */
		else if ((sr->type == MSGPACK_OBJECT_FLOAT32 ||
		          sr->type == MSGPACK_OBJECT_FLOAT64) &&
		         (sr->via.f64 == -1 || (sr->via.f64 >= 0 && sr->via.f64 <= 3600)))
			sync_rate = sr->via.f64 < 0 ? 0 : sr->via.f64;
		else {
			snprintf(err, errlen,
			         PLUGIN ": config.sync_rate must be seconds between 0 and 3600 "
			                "(0 or -1: synchronous)");
			goto fail;
		}
	}
	sync_ms = (int64_t)(sync_rate * 1000 + 0.5);
	if (sr && sync_rate > 0 && sync_ms < 10) {
		snprintf(err, errlen, PLUGIN ": config.sync_rate must be 0 or at least 0.01 s");
		goto fail;
	}
	c->sync_ms = (uint32_t)sync_ms;
	/* token-bucket + redis exchanges takes per period window in 32-bit
	 * counts; a window can see a full burst plus a period's refill. */
	for (int i = 0; c->redis_policy && c->token_bucket && i < c->np; i++) {
		if (c->p[i].limit > RL_MAX_LIMIT / 2) {
			snprintf(err, errlen,
			         PLUGIN ": with algorithm 'token-bucket' and policy 'redis' a "
			                "limit is at most %llu",
			         (unsigned long long)(RL_MAX_LIMIT / 2));
			goto fail;
		}
	}
	if (!(c->body = json_message(msg, &c->body_len)))
		goto nomem;
	/* What scopes the counters besides route, service and identifier:
	 * configs that count differently never share a counter. */
	char fp[512];
	int n = snprintf(fp, sizeof(fp), "%d|%d|%s|%s", c->token_bucket, c->limit_by,
	                 c->header_name ? c->header_name : "", c->path ? c->path : "");
	c->fingerprint = XXH3_64bits(fp, (size_t)(n < (int)sizeof(fp) ? n : (int)sizeof(fp) - 1));
	if (c->redis_policy && (rc = rl_redis_conf_new(c, err, errlen)) < 0)
		goto fail;
	free(msg);
	*out = c;
	return 0;
nomem:
	snprintf(err, errlen, PLUGIN ": out of memory");
	rc = -ENOMEM;
fail:
	free(msg);
	rl_conf_free(c);
	return rc < 0 ? rc : -EINVAL;
}

/* ---- windows ---------------------------------------------------------------------- */

/* End of the UTC calendar month / year holding t (seconds). */
static uint64_t calendar_end(uint64_t t, bool year, uint64_t *start)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	tm.tm_sec = tm.tm_min = tm.tm_hour = 0;
	tm.tm_mday = 1;
	if (year)
		tm.tm_mon = 0;
	*start = (uint64_t)timegm(&tm);
	if (year)
		tm.tm_year++;
	else
		tm.tm_mon++;
	return (uint64_t)timegm(&tm); /* timegm normalizes month 12 */
}

/* The UTC month or year holding now_s, cached per config (gmtime and
 * timegm cost more than the rest of a request). */
static const struct rl_calendar *calendar(struct rl_conf *c, int p, uint64_t now_s)
{
	struct rl_calendar *cal = &c->cal[p - RL_MONTH];
	if (now_s >= cal->end || now_s < cal->start)
		cal->end = calendar_end(now_s, p == RL_YEAR, &cal->start);
	return cal;
}

/* End (s since RL_EPOCH) of the window of period p holding now_s. */
static uint64_t window_end(struct rl_conf *c, int p, uint64_t now_s)
{
	uint64_t end;
	if (p == RL_MONTH || p == RL_YEAR) {
		end = calendar(c, p, now_s)->end;
	} else {
		uint64_t len = period_seconds[p];
		end = (now_s / len + 1) * len;
	}
	return end > RL_EPOCH ? end - RL_EPOCH : 1;
}

void rl_limit_of(struct rl_conf *c, int i, uint64_t now_ns, struct rl_limit *l)
{
	const struct rl_period *rp = &c->p[i];
	l->token_bucket = c->token_bucket;
	l->limit = rp->limit;
	l->others = 0;
	if (c->token_bucket) {
		uint64_t len = period_seconds[rp->period];
		if (rp->period == RL_MONTH || rp->period == RL_YEAR) {
			const struct rl_calendar *cal = calendar(c, rp->period, now_ns / RL_NS);
			len = cal->end - cal->start;
		}
		l->period_ns = len * RL_NS;
		l->t_ns = (l->period_ns + rp->limit - 1) / rp->limit;
		l->window_end = window_end(c, rp->period, now_ns / RL_NS);
	} else {
		l->period_ns = period_seconds[rp->period] * RL_NS;
		l->t_ns = 0;
		l->window_end = window_end(c, rp->period, now_ns / RL_NS);
	}
}

/* ---- identifier and keys ------------------------------------------------------------- */

/* Kong's get_identifier(): what limit_by names, else the client IP. */
static struct shmring_str identifier(const struct rl_conf *c, const struct shmring_request *req)
{
	struct shmring_str id = {NULL, 0};
	switch (c->limit_by) {
	case RL_BY_CONSUMER:
		id = req->consumer_id.len ? req->consumer_id : req->credential;
		break;
	case RL_BY_CREDENTIAL:
		id = req->credential;
		break;
	case RL_BY_SERVICE:
		id = req->service_id;
		break;
	case RL_BY_HEADER:
		shmring_req_header(req, shmring_cstr(c->header_name), &id);
		break;
	case RL_BY_PATH:
		if (shmring_str_eq(req->path, shmring_cstr(c->path)))
			id = req->path;
		break;
	default:
		break;
	}
	return id.len ? id : req->client_ip;
}

uint64_t rl_key(const struct rl_conf *c, int i, struct shmring_str route,
                struct shmring_str service, struct shmring_str id)
{
	uint64_t h = XXH3_64bits_withSeed(route.ptr, route.len, c->fingerprint);
	h = XXH3_64bits_withSeed(service.ptr, service.len, h);
	h = XXH3_64bits_withSeed(id.ptr, id.len,
	                         h ^ ((uint64_t)(c->p[i].period + 1) * 0x9E3779B97F4A7C15ull));
	uint64_t key = (h & ~1ull) | (c->token_bucket ? 1 : 0);
	return key > 1 ? key : key | 2;
}

/* ---- counting --------------------------------------------------------------------------- */

int rl_count(struct rl_conf *c, const struct rl_key_set *ks, uint64_t now_ns,
             const uint64_t *others, struct rl_outcome *o)
{
	struct rl_table *t = &c->w->table;
	struct rl_limit lim[RL_NPERIODS];
	struct rl_slot **slot = o->slot;
	uint64_t *undo = o->undo;
	o->blocked = -1;
	for (int i = 0; i < c->np; i++) {
		rl_limit_of(c, i, now_ns, &lim[i]);
		lim[i].others = others ? others[i] : 0;
		o->window_end[i] = lim[i].window_end;
	}
	for (int attempt = 0; attempt < 64; attempt++) {
		bool stale = false;
		for (int i = 0; i < c->np; i++) {
			int rc = rl_slot_find(t, ks->key[i], now_ns, &slot[i]);
			if (rc < 0)
				return rc; /* -ENOSPC: table full; -EBUSY: "counters busy" */
		}
		/* Look first: a refused request then writes nothing (the usual
		 * case under overload), and the takes below rarely roll back. */
		for (int i = 0; i < c->np && !stale; i++) {
			if (!rl_peek(slot[i], ks->key[i], &lim[i], now_ns, &o->remaining[i],
			             &o->reset_ns[i], &stale) &&
			    !stale && o->blocked < 0)
				o->blocked = i;
		}
		if (stale) {
			o->blocked = -1;
			continue;
		}
		if (o->blocked >= 0)
			return 0;
		int i;
		for (i = 0; i < c->np; i++) {
			if (!rl_take(slot[i], ks->key[i], &lim[i], now_ns, &o->remaining[i],
			             &o->reset_ns[i], &stale, &undo[i]))
				break;
		}
		if (i == c->np)
			return 0;
		for (int j = 0; j < i; j++)
			rl_give_back(slot[j], ks->key[j], &lim[j], undo[j]);
		if (stale)
			continue;
		/* Refused by period i after all (a race with another worker):
		 * report every period as it is now. */
		o->blocked = i;
		for (int j = 0; j < c->np; j++)
			if (j != i)
				rl_peek(slot[j], ks->key[j], &lim[j], now_ns, &o->remaining[j],
				        &o->reset_ns[j], &stale);
		return 0;
	}
	return -EAGAIN; /* slots changing hands under us 64 times: give up */
}

/* ---- access ---------------------------------------------------------------------------------- */

#define H_LIMIT SHMRING_LIT("RateLimit-Limit")
#define H_REMAINING SHMRING_LIT("RateLimit-Remaining")
#define H_RESET SHMRING_LIT("RateLimit-Reset")
#define H_RETRY_AFTER SHMRING_LIT("Retry-After")
#define BODY_ERROR SHMRING_LIT("{\"message\":\"An unexpected error occurred\"}")

static uint64_t ceil_s(uint64_t ns)
{
	uint64_t s = (ns + RL_NS - 1) / RL_NS;
	return s ? s : 1;
}

struct hdrs {
	struct shmring_header h[2 * RL_NPERIODS + 5];
	char num[2 * RL_NPERIODS + 5][24];
	size_t n;
};

/* Decimal digits of v into buf (>= 20 bytes); the length. snprintf was
 * 40% of a call's time. */
static size_t u64_dec(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

static void hdr_add(struct hdrs *hs, struct shmring_str name, uint64_t v)
{
	size_t len = u64_dec(hs->num[hs->n], v);
	hs->h[hs->n].name = name;
	hs->h[hs->n].value = (struct shmring_str){hs->num[hs->n], len};
	hs->n++;
}

/* Kong's headers: per period, then RateLimit-* of the period with the least
 * remaining (on a tie the longer one), Retry-After on a block. */
static void build_headers(const struct rl_conf *c, const struct rl_outcome *o, struct hdrs *hs)
{
	struct rl_worker *w = c->w;
	int pick = -1;
	hs->n = 0;
	for (int i = 0; i < c->np; i++)
		if (pick < 0 || o->remaining[i] <= o->remaining[pick])
			pick = i;
	uint64_t reset = ceil_s(o->reset_ns[pick]);
	if (o->blocked >= 0 && c->token_bucket)
		reset = ceil_s(o->reset_ns[o->blocked]); /* until the next token */
	if (!c->hide_client_headers) {
		for (int i = 0; i < c->np; i++) {
			hdr_add(hs, (struct shmring_str){c->p[i].h_limit, c->p[i].h_limit_len},
			        c->p[i].limit);
			hdr_add(hs,
			        (struct shmring_str){c->p[i].h_remaining, c->p[i].h_remaining_len},
			        o->remaining[i]);
		}
		hdr_add(hs, H_LIMIT, c->p[pick].limit);
		hdr_add(hs, H_REMAINING, o->remaining[pick]);
		hdr_add(hs, H_RESET, reset);
	}
	if (o->blocked >= 0) {
		/* Kong's retry_after_jitter_max: 0..max seconds added, so the
		 * refused clients do not all come back at the same second. */
		uint64_t jitter = 0;
		if (c->jitter_max) {
			w->rng ^= w->rng << 13;
			w->rng ^= w->rng >> 7;
			w->rng ^= w->rng << 17;
			jitter = w->rng % ((uint64_t)c->jitter_max + 1);
		}
		hdr_add(hs, H_RETRY_AFTER, reset + jitter);
	}
}

void rl_keys(const struct rl_conf *c, const struct shmring_request *req, struct rl_key_set *ks)
{
	struct shmring_str id = identifier(c, req);
	for (int i = 0; i < c->np; i++)
		ks->key[i] = rl_key(c, i, req->route_id, req->service_id, id);
}

/* Something kept us from counting (table full, Redis down and not
 * fault-tolerant...): fault_tolerant lets the request through, else a 500
 * like Kong's. Logged at most once per 10 s per worker. */
static int cannot_count(struct rl_conf *c, struct shmring_reply *rep, const char *why,
                        uint64_t now_ns)
{
	struct rl_worker *w = c->w;
	if (now_ns - w->last_warn_ns >= 10 * RL_NS || !w->last_warn_ns) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg), PLUGIN ": %s; %s", why,
		                 c->fault_tolerant ? "request let through (fault_tolerant)"
		                                   : "answering 500 (fault_tolerant = false)");
		w->last_warn_ns = now_ns;
		shmring_reply_log(rep, SHMRING_LOG_WARN,
		                  (struct shmring_str){
		                      msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1});
	}
	if (c->fault_tolerant)
		return 0;
	struct shmring_header ct = {SHMRING_LIT("Content-Type"),
	                            SHMRING_LIT("application/json; charset=utf-8")};
	return shmring_reply_exit(rep, 500, BODY_ERROR, &ct, 1) < 0 ? -1 : 0;
}

static int rl_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	struct rl_conf *c = conf;
	struct rl_key_set ks;
	struct rl_outcome o;
	uint64_t now_ns = rl_now_ns();
	rl_keys(c, req, &ks);
	int rc = c->redis_policy ? rl_redis_count(c, &ks, now_ns, &o)
	                         : rl_count(c, &ks, now_ns, NULL, &o);
	if (rc == -ENOSPC) {
		shmring_reply_exhausted(rep); /* the operator sees it in stats and metrics */
		return cannot_count(c, rep,
		                    "counter table full (every slot of the key's bucket is "
		                    "live)",
		                    now_ns);
	}
	if (rc == -EHOSTUNREACH) {
		char why[200], msg[240];
		rl_redis_why(c, why, sizeof(why));
		snprintf(msg, sizeof(msg), "redis unreachable (%s)", why);
		return cannot_count(c, rep, msg, now_ns);
	}
	if (rc < 0)
		return cannot_count(c, rep, "counters busy", now_ns);
	struct hdrs hs;
	build_headers(c, &o, &hs);
	if (o.blocked >= 0) {
		hs.h[hs.n++] = (struct shmring_header){
		    SHMRING_LIT("Content-Type"), SHMRING_LIT("application/json; charset=utf-8")};
		return shmring_reply_exit(rep, c->error_code,
		                          (struct shmring_str){c->body, c->body_len}, hs.h,
		                          hs.n) < 0
		           ? -1
		           : 0;
	}
	for (size_t i = 0; i < hs.n; i++)
		if (shmring_reply_set_resp_header(rep, hs.h[i].name, hs.h[i].value) < 0)
			return -1;
	return 0;
}

static const char *const needs_headers[] = {SHMRING_NEED_ALL, NULL};

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = PLUGIN,
    .version = "1.0.0",
    .phases = SHMRING_PHASE_ACCESS,
    /* limit_by = header reads the configured header: the Kong stub sends
     * only that one (lua/kong/plugins/shmring-rate-limiting). */
    .needs_headers = needs_headers,
    .init = rl_init,
    .fini = rl_fini,
    .conf_new = rl_conf_new,
    .conf_free = rl_conf_free,
    .access = rl_access,
    .config = rl_config,
    .config_checks = rl_checks,
    .config_kong_validator = rl_kong_validator,
};
