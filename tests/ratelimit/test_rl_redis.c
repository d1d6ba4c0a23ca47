/* SPDX-License-Identifier: MIT */
/*
 * rate-limiting, policy = redis, for real: a redis-server on a free loopback
 * port, two shmringd instances ("hosts", separate --shm-dir) driven through
 * the rings with the daemon tests' client.
 *
 *  1. converged: host A counts 150 of a 200/day limit; B learns A's count
 *     within a sync and lets through exactly the rest; A then refuses
 *     within the documented bound.
 *  2. concurrent: both hosts hammered at once; the total stays within
 *     limit + the bound of docs/plugins.md, measured from the hosts' own
 *     pass times (the requests a host let through while the other had not
 *     synced yet).
 *  3. sync_rate = 0: synchronous, exact across hosts.
 *  1-3 run for both algorithms: fixed-window (Redis database 0) and
 *     token-bucket (database 1; a bucket of 200 per day refills one token
 *     in 432 s, so none during the test: the same numbers hold).
 *  4. Redis killed: fault_tolerant = true keeps counting locally,
 *     fault_tolerant = false answers 500; Redis back: counts resync.
 *  5. (run before 4) Kong's redis record in full, against a second redis-server that
 *     speaks TLS (certificates made here with the openssl command, the
 *     CA trusted through SSL_CERT_FILE) and has an ACL user: ssl,
 *     ssl_verify, server_name, username/password and database, each
 *     shown to matter by a config that gets it wrong.
 *
 * Exit 77 when redis-server is not installed. Waits are polls with
 * deadlines; the limits are per day, far from any window edge mid-test
 * (a run that straddles midnight UTC is skipped).
 */
#include "client.h"
#include "shmring_plugin.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>

#define LIMIT 200
#define SYNC_MS 100

static pid_t redis_pid, tls_redis_pid;
static int redis_port, tls_plain_port, tls_port;
static char redis_log[400];

struct host {
	const char *name;
	char shm[300];
	char errlog[300];
	pid_t pid;
	struct shmring_instance *inst;
	struct shmring_chan *ch[2];
	uint64_t req_id;
};

static struct host A = {.name = "A"}, B = {.name = "B"};

static void kill_all(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
		redis_pid = 0;
	}
	if (tls_redis_pid > 0) {
		kill(tls_redis_pid, SIGKILL);
		waitpid(tls_redis_pid, NULL, 0);
		tls_redis_pid = 0;
	}
	if (B.pid > 0) {
		kill(B.pid, SIGKILL);
		waitpid(B.pid, NULL, 0);
		B.pid = 0;
	}
	/* A is tc_pid: tc_cleanup kills it */
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	          getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
	      "free port");
	close(fd);
	return ntohs(sa.sin_port);
}

static redisContext *redis_connect_port(int port)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	return c;
}

static redisContext *redis_connect(void)
{
	return redis_connect_port(redis_port);
}

static void dump_redis_log(void)
{
	FILE *f = fopen(redis_log, "r");
	char line[512];
	fprintf(stderr, "---- redis-server log ----\n");
	while (f && fgets(line, sizeof(line), f))
		fputs(line, stderr);
	if (f)
		fclose(f);
}

/* Start redis-server on port (plain TCP; conf: a config file for more, or
 * NULL) into *pid; false if it exited at once (the port was taken
 * meanwhile) and may_fail. */
static bool redis_spawn(pid_t *pid, int port, const char *conf, bool may_fail)
{
	char port_s[16];
	snprintf(port_s, sizeof(port_s), "%d", port);
	*pid = fork();
	CHECK(*pid >= 0, "fork");
	if (*pid == 0) {
		int fd = open(redis_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		const char *argv[] = {
		    "redis-server", "--port", port_s,        "--bind", "127.0.0.1", "--save", "",
		    "--appendonly", "no",     "--daemonize", "no",     NULL,        NULL};
		if (conf) { /* the file first: redis-server wants it as argv[1] */
			memmove(&argv[2], &argv[1], sizeof(argv) - 3 * sizeof(argv[0]));
			argv[1] = conf;
		}
		execvp("redis-server", (char *const *)argv);
		_exit(127);
	}
	uint64_t deadline = tc_now() + 10 * SEC;
	for (;;) {
		redisContext *c = redis_connect_port(port);
		if (c) {
			redisReply *r = redisCommand(c, "PING");
			bool ok = r && r->type == REDIS_REPLY_STATUS;
			if (r)
				freeReplyObject(r);
			redisFree(c);
			if (ok)
				return true;
		}
		int st;
		if (waitpid(*pid, &st, WNOHANG) != 0) {
			*pid = 0;
			if (may_fail)
				return false;
			dump_redis_log();
			CHECK(0, "redis-server exited at start (port %d)", port);
		}
		CHECK(tc_now() < deadline, "redis-server not answering in time");
		usleep(5000);
	}
}

static bool redis_try_start(bool may_fail)
{
	return redis_spawn(&redis_pid, redis_port, NULL, may_fail);
}

static void redis_start(void)
{
	redis_try_start(false);
}

static void host_start(struct host *h)
{
	snprintf(h->shm, sizeof(h->shm), "%s/shm%s", tc_dir, h->name);
	snprintf(h->errlog, sizeof(h->errlog), "%s/shmringd%s.err", tc_dir, h->name);
	/* client.h's helpers use tc_shm / tc_errlog / tc_pid: point them here */
	snprintf(tc_shm, sizeof(tc_shm), "%s", h->shm);
	snprintf(tc_errlog, sizeof(tc_errlog), "%s", h->errlog);
	const char *args[] = {"--workers",     "1", "--channels", "2", "--plugins",
	                      "rate-limiting", NULL};
	tc_pid = tc_spawn(args);
	h->pid = tc_pid;
	h->inst = tc_wait_ready(1, 20 * SEC);
	/* A process claims one channel (the claim is per pid); the shared
	 * table across workers is covered by test_rate_limiting and e2e. */
	CHECK(shmring_chan_claim(h->inst, &h->ch[0]) == 0, "claim a channel on %s", h->name);
	h->ch[1] = h->ch[0];
}

/* ---- CONF and ACCESS records -------------------------------------------------------- */

struct rl_cfg {
	uint64_t id;
	uint64_t day;
	double sync_rate;
	bool fault_tolerant;
	/* the redis record beyond host, port and timeout; unset when 0/NULL */
	const char *algorithm; /* NULL: the default (fixed-window) */
	const char *host;      /* NULL: 127.0.0.1 */
	int port;              /* 0: the plain redis-server */
	bool ssl, ssl_verify;
	const char *server_name, *username, *password;
	int database;
};

static void fill_conf(struct shmring_mpw *w, void *arg)
{
	const struct rl_cfg *c = arg;
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, c->id);
	shmring_mpw_cstr(w, "plugin");
	shmring_mpw_cstr(w, "rate-limiting");
	shmring_mpw_cstr(w, "config");
	shmring_mpw_map(w, 7);
	shmring_mpw_cstr(w, "algorithm");
	shmring_mpw_cstr(w, c->algorithm ? c->algorithm : "fixed-window");
	shmring_mpw_cstr(w, "day");
	shmring_mpw_uint(w, c->day);
	shmring_mpw_cstr(w, "limit_by");
	shmring_mpw_cstr(w, "ip");
	shmring_mpw_cstr(w, "policy");
	shmring_mpw_cstr(w, "redis");
	shmring_mpw_cstr(w, "sync_rate");
	shmring_mpw_double(w, c->sync_rate);
	shmring_mpw_cstr(w, "fault_tolerant");
	shmring_mpw_bool(w, c->fault_tolerant);
	shmring_mpw_cstr(w, "redis");
	shmring_mpw_map(w, 5 + !!c->server_name + !!c->username + !!c->password + !!c->database);
	shmring_mpw_cstr(w, "host");
	shmring_mpw_cstr(w, c->host ? c->host : "127.0.0.1");
	shmring_mpw_cstr(w, "port");
	shmring_mpw_uint(w, (uint64_t)(c->port ? c->port : redis_port));
	shmring_mpw_cstr(w, "timeout");
	shmring_mpw_uint(w, 500);
	shmring_mpw_cstr(w, "ssl");
	shmring_mpw_bool(w, c->ssl);
	shmring_mpw_cstr(w, "ssl_verify");
	shmring_mpw_bool(w, c->ssl_verify);
	const char *const names[] = {"server_name", "username", "password"};
	const char *const values[] = {c->server_name, c->username, c->password};
	for (int i = 0; i < 3; i++) {
		if (values[i]) {
			shmring_mpw_cstr(w, names[i]);
			shmring_mpw_cstr(w, values[i]);
		}
	}
	if (c->database) {
		shmring_mpw_cstr(w, "database");
		shmring_mpw_uint(w, (uint64_t)c->database);
	}
}

static void host_conf(struct host *h, struct rl_cfg *c)
{
	struct tc_reply *r = calloc(1, sizeof(*r));
	char e[512];
	for (int i = 0; i < 2; i++) {
		uint64_t id = ++h->req_id;
		tc_send(h->ch[i], SHMRING_REC_CONF, id, fill_conf, c);
		tc_expect(h->ch[i], r, id, 10 * SEC);
		CHECK(r->s == 0, "CONF refused on %s: %s", h->name, tc_err(r, e, sizeof(e)));
	}
	shmring_mpr_destroy(&r->mpr);
	free(r);
}

struct access_arg {
	uint64_t conf;
	const char *ip;
};

static void fill_access(struct shmring_mpw *w, void *arg)
{
	const struct access_arg *a = arg;
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, a->conf);
	shmring_mpw_cstr(w, "client_ip");
	shmring_mpw_cstr(w, a->ip);
	shmring_mpw_cstr(w, "route_id");
	shmring_mpw_cstr(w, "redis-route");
}

/* The message of the reply's LOG action, if any (the gateway's warning). */
static char last_log[512];

/* One request on host h (channel k): 0 if let through, else the exit
 * status. *remaining gets X-RateLimit-Remaining-Day (or -1). */
static int host_access(struct host *h, int k, struct tc_reply *r, uint64_t conf, const char *ip,
                       long *remaining)
{
	last_log[0] = '\0';
	struct access_arg a = {conf, ip};
	uint64_t id = ++h->req_id;
	char e[512];
	tc_send(h->ch[k], SHMRING_REC_ACCESS, id, fill_access, &a);
	tc_expect(h->ch[k], r, id, 10 * SEC);
	CHECK(r->s == 0, "ACCESS failed on %s: %s", h->name, tc_err(r, e, sizeof(e)));
	const msgpack_object *acts = shmring_mp_get(r->root, "a");
	CHECK(acts && acts->type == MSGPACK_OBJECT_ARRAY, "reply without actions");
	int status = 0;
	if (remaining)
		*remaining = -1;
	for (uint32_t i = 0; i < acts->via.array.size; i++) {
		const msgpack_object *x = &acts->via.array.ptr[i];
		uint64_t op = x->via.array.ptr[0].via.u64;
		if (op == SHMRING_ACT_EXIT)
			status = (int)x->via.array.ptr[1].via.u64;
		if (op == SHMRING_ACT_LOG) {
			const msgpack_object *m = &x->via.array.ptr[2];
			snprintf(last_log, sizeof(last_log), "%.*s", (int)m->via.str.size,
			         m->via.str.ptr);
		}
		if (op == SHMRING_ACT_SET_RESP_HEADER && remaining) {
			const msgpack_object *n = &x->via.array.ptr[1], *v = &x->via.array.ptr[2];
			if (n->via.str.size == strlen("X-RateLimit-Remaining-Day") &&
			    !memcmp(n->via.str.ptr, "X-RateLimit-Remaining-Day", n->via.str.size))
				*remaining = strtol(v->via.str.ptr, NULL, 10);
		}
	}
	return status;
}

/* The counts Redis (the server on port, database db) holds: the sum of
 * every host's field of every shmring key, and how many fields. */
static void redis_counts_in(int port, int db, uint64_t *total, int *nfields)
{
	*total = 0;
	*nfields = 0;
	redisContext *c = redis_connect_port(port);
	if (!c)
		return;
	redisReply *sel = redisCommand(c, "SELECT %d", db);
	CHECK(sel && sel->type == REDIS_REPLY_STATUS, "SELECT %d", db);
	freeReplyObject(sel);
	redisReply *keys = redisCommand(c, "KEYS shmring:rl:*");
	for (size_t i = 0; keys && keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
		redisReply *h = redisCommand(c, "HGETALL %s", keys->element[i]->str);
		for (size_t j = 0; h && h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements;
		     j += 2) {
			*total += strtoull(h->element[j + 1]->str, NULL, 10);
			(*nfields)++;
		}
		if (h)
			freeReplyObject(h);
	}
	if (keys)
		freeReplyObject(keys);
	redisFree(c);
}

/* One algorithm's run of 1-3: its configs, client addresses and database. */
struct scenario {
	const char *algorithm;
	uint64_t conf;      /* sync_rate = SYNC_MS, fault-tolerant, LIMIT per day */
	uint64_t sync_conf; /* sync_rate = 0, 20 per day */
	int db;
	const char *ip_converged, *ip_concurrent, *ip_sync;
};

/* ---- 1. converged ------------------------------------------------------------------- */

static void converged(struct tc_reply *r, const struct scenario *sc)
{
	const char *ip = sc->ip_converged;
	uint64_t conf = sc->conf;
	int a_pass = 0, b_pass = 0;
	long rem;
	for (int i = 0; i < 150; i++)
		a_pass += host_access(&A, i & 1, r, conf, ip, NULL) == 0;
	CHECK(a_pass == 150, "host A alone lets 150 of 200 through (got %d)", a_pass);
	/* B: one request per sync interval until it shows A's count. */
	uint64_t deadline = tc_now() + 5 * SEC;
	for (;;) {
		int st = host_access(&B, b_pass & 1, r, conf, ip, &rem);
		CHECK(st == 0, "B refused before reaching the limit (status %d)", st);
		b_pass++;
		/* What B knows of A: nothing, part (A's 150 may span a sync under
		 * load), or all of it; never more than A let through. */
		long known_a = LIMIT - b_pass - rem;
		CHECK(known_a >= 0 && known_a <= 150,
		      "B's remaining is its own count plus at most A's 150 (got %ld)", rem);
		if (known_a == 150)
			break; /* B knows A's 150 */
		CHECK(tc_now() < deadline, "B never learned A's count (sync every %d ms)", SYNC_MS);
		usleep(SYNC_MS * 1000 / 2);
	}
	/* B lets through exactly the rest. */
	for (int i = 0; i < LIMIT; i++) {
		int st = host_access(&B, i & 1, r, conf, ip, NULL);
		if (st != 0) {
			CHECK(st == 429, "B refuses with 429 (got %d)", st);
			break;
		}
		b_pass++;
	}
	CHECK(a_pass + b_pass == LIMIT, "A + B let exactly %d through once synced (got %d + %d)",
	      LIMIT, a_pass, b_pass);
	/* Redis holds both hosts' counts. */
	deadline = tc_now() + 5 * SEC;
	for (;;) {
		uint64_t total;
		int n;
		redis_counts_in(redis_port, sc->db, &total, &n);
		if (n == 2 && total == LIMIT)
			break;
		CHECK(tc_now() < deadline,
		      "Redis does not hold both hosts' counts (%d fields, %llu)", n,
		      (unsigned long long)total);
		usleep(20000);
	}
	/* A, spaced by a sync interval: it may still pass what B let through
	 * since A's last sync, never more (the bound), then refuses. */
	int late = 0;
	deadline = tc_now() + 5 * SEC;
	while (host_access(&A, late & 1, r, conf, ip, NULL) == 0) {
		late++;
		CHECK(tc_now() < deadline, "A keeps letting requests through");
		usleep(SYNC_MS * 1000);
	}
	/* one sync interval: 1 request at this spacing; 3 for a loaded machine */
	CHECK(late <= 3, "A passed %d after B filled the limit: more than the bound", late);
	printf("converged (%s): A %d + B %d = %d, A late %d\n", sc->algorithm, a_pass, b_pass,
	       a_pass + b_pass, late);
}

/* ---- 2. concurrent: the bound ------------------------------------------------------------- */

#define HAMMER_MAX 4000

struct hammer {
	struct host *h;
	const char *ip;
	uint64_t conf;
	uint64_t start, stop;
	uint64_t pass_ns[HAMMER_MAX];
	int npass, nsent;
};

static void *hammer_main(void *arg)
{
	struct hammer *hm = arg;
	struct tc_reply *r = calloc(1, sizeof(*r));
	while (tc_now() < hm->start)
		sched_yield();
	while (tc_now() < hm->stop && hm->nsent < HAMMER_MAX) {
		int st = host_access(hm->h, hm->nsent & 1, r, hm->conf, hm->ip, NULL);
		hm->nsent++;
		if (st == 0)
			hm->pass_ns[hm->npass++] = tc_now();
		/* about 1000 requests/s per host: the bound is then readable */
		usleep(1000);
	}
	shmring_mpr_destroy(&r->mpr);
	free(r);
	return NULL;
}

/* Most passes of one host in any interval of length w. */
static int max_in_window(const struct hammer *hm, uint64_t w)
{
	int best = 0;
	for (int i = 0, j = 0; i < hm->npass; i++) {
		while (hm->pass_ns[i] - hm->pass_ns[j] > w)
			j++;
		if (i - j + 1 > best)
			best = i - j + 1;
	}
	return best;
}

static void concurrent(const struct scenario *sc)
{
	static struct hammer ha, hb;
	ha = (struct hammer){.h = &A, .ip = sc->ip_concurrent, .conf = sc->conf};
	hb = (struct hammer){.h = &B, .ip = sc->ip_concurrent, .conf = sc->conf};
	ha.start = hb.start = tc_now() + 50 * MS;
	ha.stop = hb.stop = ha.start + 2 * SEC;
	pthread_t ta, tb;
	pthread_create(&ta, NULL, hammer_main, &ha);
	pthread_create(&tb, NULL, hammer_main, &hb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	int total = ha.npass + hb.npass;
	/* The bound: each host may pass what the OTHER passed during one
	 * unsynced interval (sync_rate plus the sync's own round trip and
	 * scheduling: SYNC_MS of slack on this shared machine). */
	uint64_t w = 2 * SYNC_MS * MS;
	int bound = max_in_window(&ha, w) + max_in_window(&hb, w);
	printf("concurrent (%s): sent A %d B %d, passed A %d + B %d = %d, limit %d, bound +%d\n",
	       sc->algorithm, ha.nsent, hb.nsent, ha.npass, hb.npass, total, LIMIT, bound);
	CHECK(ha.nsent + hb.nsent > LIMIT + bound, "enough requests to reach the limit");
	CHECK(total >= LIMIT, "the limit is reached (%d)", total);
	CHECK(total <= LIMIT + bound, "%d passed: more than limit %d + bound %d", total, LIMIT,
	      bound);
}

/* ---- 3. synchronous -------------------------------------------------------------------------- */

static void synchronous(struct tc_reply *r, const struct scenario *sc)
{
	struct rl_cfg c = {.id = sc->sync_conf,
	                   .day = 20,
	                   .sync_rate = 0,
	                   .fault_tolerant = true,
	                   .algorithm = sc->algorithm,
	                   .database = sc->db};
	host_conf(&A, &c);
	host_conf(&B, &c);
	int pass = 0;
	for (int i = 0; i < 60; i++)
		pass += host_access(i & 1 ? &B : &A, (i >> 1) & 1, r, sc->sync_conf, sc->ip_sync,
		                    NULL) == 0;
	CHECK(pass == 20, "sync_rate = 0 (%s): exactly 20 of 60 across two hosts (got %d)",
	      sc->algorithm, pass);
}

/* ---- 4. Redis down --------------------------------------------------------------------------- */

static void redis_down(struct tc_reply *r)
{
	struct rl_cfg strict = {
	    .id = 2, .day = LIMIT, .sync_rate = SYNC_MS / 1000.0, .fault_tolerant = false};
	host_conf(&A, &strict);
	CHECK(host_access(&A, 0, r, 2, "10.0.0.4", NULL) == 0, "fault_tolerant=false, Redis up");
	kill(redis_pid, SIGKILL);
	waitpid(redis_pid, NULL, 0);
	redis_pid = 0;
	/* strict: 500 once the sync noticed */
	uint64_t deadline = tc_now() + 10 * SEC;
	int st;
	while ((st = host_access(&A, 0, r, 2, "10.0.0.4", NULL)) != 500) {
		CHECK(st == 0, "strict config before the outage is noticed: 0 (got %d)", st);
		CHECK(tc_now() < deadline, "fault_tolerant = false never failed closed");
		usleep(20000);
	}
	/* tolerant: counts locally, exactly, meanwhile */
	int pass = 0;
	for (int i = 0; i < 17; i++)
		pass += host_access(&A, i & 1, r, 1, "10.0.0.5", NULL) == 0;
	CHECK(pass == 17, "fault_tolerant = true lets requests through while Redis is down");
	/* Redis back (empty): the strict config works again and every
	 * host's count is written again. */
	redis_start();
	deadline = tc_now() + 10 * SEC;
	while ((st = host_access(&A, 0, r, 2, "10.0.0.4", NULL)) == 500)
		CHECK(tc_now() < deadline, "still 500 after Redis came back");
	bool found = false;
	while (!found) {
		redisContext *c = redis_connect();
		CHECK(c, "connect");
		redisReply *keys = redisCommand(c, "KEYS shmring:rl:*");
		for (size_t i = 0; keys && i < keys->elements && !found; i++) {
			redisReply *h = redisCommand(c, "HVALS %s", keys->element[i]->str);
			for (size_t j = 0; h && j < h->elements; j++)
				found |= !strcmp(h->element[j]->str, "17");
			if (h)
				freeReplyObject(h);
		}
		if (keys)
			freeReplyObject(keys);
		redisFree(c);
		CHECK(found || tc_now() < deadline, "the local count (17) was not resynced");
		if (!found)
			usleep(20000);
	}
}

/* ---- 5. TLS, ACL, database ------------------------------------------------------------ */

/* A CA, a certificate for "redis.test" signed by it, and a redis-server
 * with TLS on tls_port (plain on tls_plain_port, for the test's own
 * reads) and the ACL user alice. The daemons trust the CA through
 * SSL_CERT_FILE (OpenSSL's default trust store): hosts started after this
 * call trust it (A), hosts started before do not (B). */
static void tls_setup(void)
{
	char cmd[2048], conf[400];
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 "
	         "-subj /CN=shmring-test-ca 2>/dev/null && "
	         "openssl req %s -keyout redis.key -out redis.csr -subj /CN=redis.test "
	         "2>/dev/null && printf 'subjectAltName=DNS:redis.test\\n' > san.ext && "
	         "openssl x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	         "-out redis.crt -days 2 -extfile san.ext 2>/dev/null",
	         tc_dir, ec, ec);
	CHECK(system(cmd) == 0, "openssl made the test certificates");
	char ca[400];
	snprintf(ca, sizeof(ca), "%s/ca.crt", tc_dir);
	setenv("SSL_CERT_FILE", ca, 1);
	snprintf(conf, sizeof(conf), "%s/redis-tls.conf", tc_dir);
	for (int tries = 0;; tries++) {
		tls_plain_port = free_port();
		tls_port = free_port();
		FILE *f = fopen(conf, "w");
		CHECK(f, "write %s", conf);
		fprintf(f,
		        "tls-port %d\ntls-cert-file %s/redis.crt\ntls-key-file %s/redis.key\n"
		        "tls-ca-cert-file %s\ntls-auth-clients no\n"
		        "user alice on >alice-secret ~* &* +@all\n",
		        tls_port, tc_dir, tc_dir, ca);
		fclose(f);
		if (redis_spawn(&tls_redis_pid, tls_plain_port, conf, tries < 4))
			break;
	}
}

/* A request refused with 500 on h because Redis could not be used. */
static void expect_500(struct host *h, struct tc_reply *r, uint64_t conf, const char *ip,
                       const char *what)
{
	int st = host_access(h, 0, r, conf, ip, NULL);
	CHECK(st == 500, "%s: 500 (fault_tolerant = false), got %d", what, st);
}

static void tls_acl_database(struct tc_reply *r)
{
	/* Kong's record in full: TLS checked against the CA and the name,
	 * ACL user, database 3; synchronous, so each answer is Redis's. */
	struct rl_cfg good = {.id = 10,
	                      .day = 5,
	                      .fault_tolerant = false,
	                      .port = tls_port,
	                      .ssl = true,
	                      .ssl_verify = true,
	                      .server_name = "redis.test",
	                      .username = "alice",
	                      .password = "alice-secret",
	                      .database = 3};
	host_conf(&A, &good);
	int pass = 0;
	for (int i = 0; i < 8; i++) {
		int st = host_access(&A, 0, r, 10, "10.0.0.10", NULL);
		CHECK(st == 0 || st == 429, "TLS + ACL + database: 0 or 429 (got %d, log: %s)", st,
		      last_log);
		pass += st == 0;
	}
	CHECK(pass == 5, "TLS + ACL + database 3: exactly 5 of 8 (got %d)", pass);
	uint64_t total;
	int n;
	redis_counts_in(tls_plain_port, 3, &total, &n);
	CHECK(n == 1 && total == 5, "database 3 holds A's count 5 (got %d fields, %llu)", n,
	      (unsigned long long)total);
	redis_counts_in(tls_plain_port, 0, &total, &n);
	CHECK(n == 0, "database 0 holds nothing (got %d fields)", n);

	/* Each setting matters: one wrong at a time. */
	struct rl_cfg c = good;
	c.id = 11;
	c.server_name = "wrong.test";
	host_conf(&A, &c);
	expect_500(&A, r, 11, "10.0.0.11", "server_name not on the certificate");
	CHECK(strstr(last_log, "certificate"), "the warning says why: %s", last_log);
	c = good;
	c.id = 12;
	c.ssl = false;
	host_conf(&A, &c);
	expect_500(&A, r, 12, "10.0.0.12", "plain text to the TLS port");
	c = good;
	c.id = 13;
	c.password = "wrong";
	c.ssl_verify = false; /* B does not trust the CA (below) */
	host_conf(&B, &c);    /* B: its first warning, so its text is in the reply */
	expect_500(&B, r, 13, "10.0.0.13", "a wrong password");
	CHECK(strstr(last_log, "WRONGPASS"), "the warning names the refusal: %s", last_log);
	/* The chain is checked: A's good config, on B, whose trust store
	 * lacks the test CA. */
	host_conf(&B, &good);
	expect_500(&B, r, 10, "10.0.0.18", "a certificate from a CA the host does not trust");
	c = good;
	c.id = 14;
	c.username = NULL; /* the password is alice's, not the default user's */
	host_conf(&A, &c);
	expect_500(&A, r, 14, "10.0.0.14", "the password without the username");

	/* ssl_verify = false takes any certificate and name; ssl_verify
	 * without server_name checks the chain only (Kong's cosocket), and a
	 * host name is resolved. */
	struct {
		struct rl_cfg c;
		const char *ip, *what;
	} ok[] = {
	    {good, "10.0.0.15", "ssl_verify = false: any name passes"},
	    {good, "10.0.0.16",
	     "ssl_verify without server_name, host 'localhost': the chain is checked"},
	};
	ok[0].c.ssl_verify = false;
	ok[0].c.server_name = "wrong.test";
	ok[1].c.server_name = NULL;
	ok[1].c.host = "localhost";
	for (int i = 0; i < 2; i++) {
		ok[i].c.id = 15 + (uint64_t)i;
		host_conf(&A, &ok[i].c);
		CHECK(host_access(&A, 0, r, ok[i].c.id, ok[i].ip, NULL) == 0, "%s (log: %s)",
		      ok[i].what, last_log);
	}

	/* Asynchronous, over TLS: the sync thread writes the count too. */
	c = good;
	c.id = 17;
	c.sync_rate = SYNC_MS / 1000.0;
	host_conf(&A, &c);
	for (int i = 0; i < 3; i++)
		CHECK(host_access(&A, 0, r, 17, "10.0.0.17", NULL) == 0, "async over TLS");
	uint64_t deadline = tc_now() + 5 * SEC;
	for (;;) {
		redis_counts_in(tls_plain_port, 3, &total, &n);
		/* 5 (id 10) + 1 (15) + 1 (16) + 3 (17) */
		if (n == 4 && total == 10)
			break;
		CHECK(tc_now() < deadline,
		      "the sync thread did not write over TLS (%d fields, %llu in database 3)", n,
		      (unsigned long long)total);
		usleep(20000);
	}
	printf("tls: verified, ACL user, database 3: ok\n");
}

int main(void)
{
	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		printf("SKIP: redis-server is not installed (Debian package redis-server)\n");
		return 77;
	}
	time_t now = time(NULL);
	if (now % 86400 > 86400 - 120) {
		printf("SKIP: too close to midnight UTC (the test counts per day)\n");
		return 77;
	}
	tc_init("rl-redis");
	atexit(kill_all);
	snprintf(redis_log, sizeof(redis_log), "%s/redis.log", tc_dir);
	for (int tries = 0;; tries++) {
		redis_port = free_port();
		if (redis_try_start(tries < 4))
			break;
	}
	host_start(&B); /* before tls_setup's SSL_CERT_FILE: B does not trust the test CA */
	tls_setup();
	host_start(&A); /* last: tc_pid / tc_errlog name A for client.h's dump */
	static const struct scenario scenarios[] = {
	    {"fixed-window", 1, 3, 0, "10.0.0.1", "10.0.0.2", "10.0.0.3"},
	    {"token-bucket", 4, 5, 1, "10.0.1.1", "10.0.1.2", "10.0.1.3"},
	};
	struct tc_reply *r = calloc(1, sizeof(*r));
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *sc = &scenarios[i];
		struct rl_cfg tolerant = {.id = sc->conf,
		                          .day = LIMIT,
		                          .sync_rate = SYNC_MS / 1000.0,
		                          .fault_tolerant = true,
		                          .algorithm = sc->algorithm,
		                          .database = sc->db};
		host_conf(&A, &tolerant);
		host_conf(&B, &tolerant);
		converged(r, sc);
		concurrent(sc);
		synchronous(r, sc);
	}
	tls_acl_database(r); /* before redis_down: each host's first warning is read here */
	redis_down(r);
	shmring_mpr_destroy(&r->mpr);
	free(r);
	printf("ok\n");
	return 0;
}
