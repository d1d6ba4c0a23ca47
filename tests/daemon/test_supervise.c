/* SPDX-License-Identifier: MIT */
/* kill -9 a worker under traffic: the master starts a new one, which takes
 * the channel back from the last consumed position within 1 s. The new
 * worker does not know the conf id (s = 2); the client re-registers once,
 * as the protocol says. Then a worker that keeps dying is restarted with a
 * growing delay, and the restarts are counted; a record that crashes two
 * workers is answered with an error; a hook that hangs is killed by the
 * watchdog. */
#include "client.h"

static uint64_t req = 1;

/* One request; re-registers on s = 2. Returns the reply status. */
static uint64_t request(struct shmring_chan *c, struct tc_reply *r, struct tc_conf *conf,
                        uint64_t timeout)
{
	uint64_t id = conf->id;
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t me = req++;
		tc_send(c, SHMRING_REC_ACCESS, me, tc_fill_access, &id);
		tc_expect(c, r, me, timeout);
		if (r->s != SHMRING_REPLY_UNKNOWN_CONF)
			return r->s;
		tc_register(c, r, req++, conf);
	}
	return r->s;
}

static void fill_hang(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, *(uint64_t *)arg);
	shmring_mpw_cstr(w, "path");
	shmring_mpw_cstr(w, "/hang");
}

static void fill_crash(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, *(uint64_t *)arg);
	shmring_mpw_cstr(w, "path");
	shmring_mpw_cstr(w, "/crash");
}

int main(void)
{
	tc_init("supervise");
	const char *args[] = {
	    "--workers",     "2",    "--channels", "4", "--idle-timeout-ms", "200",
	    "--watchdog-ms", "1000", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(2, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	uint32_t w = shmring_chan_index(c) % 2;
	static struct tc_reply r;
	struct tc_conf hello = {.id = 3, .plugin = "hello"};
	tc_register(c, &r, req++, &hello);

	struct shmring_worker_counters *wc = shmring_instance_worker_counters(inst, w);
	for (int round = 0; round < 3; round++) {
		/* Traffic for a while, then kill the worker between requests
		 * with one more request already in its ring. */
		uint64_t until = tc_now() + 100 * MS;
		while (tc_now() < until)
			CHECK(request(c, &r, &hello, 5 * SEC) == 0, "request before the kill");
		pid_t victim = (pid_t)wc->pid;
		CHECK(victim > 0, "worker pid");
		uint64_t restarts0 = wc->restarts;
		uint64_t id = hello.id, me = req++;
		tc_send(c, SHMRING_REC_ACCESS, me, tc_fill_access, &id);
		uint64_t t0 = tc_now();
		CHECK(kill(victim, SIGKILL) == 0, "kill worker");
		/* The record sent before the kill is answered: by the victim,
		 * or by its successor (which does not know conf 3 yet). */
		tc_expect(c, &r, me, 1 * SEC);
		CHECK(r.s == SHMRING_REPLY_OK || r.s == SHMRING_REPLY_UNKNOWN_CONF,
		      "reply status %llu", (unsigned long long)r.s);
		CHECK(request(c, &r, &hello, 1 * SEC) == 0, "request after the kill");
		uint64_t took = tc_now() - t0;
		CHECK(took < 1 * SEC, "served again after %llu ms",
		      (unsigned long long)(took / MS));
		/* Wait (bounded) for the master to record the restart. */
		uint64_t deadline = tc_now() + 2 * SEC;
		while (wc->restarts == restarts0 || wc->pid == 0 || (pid_t)wc->pid == victim)
			CHECK(tc_now() < deadline, "restart not recorded");
		printf("round %d: worker %u (pid %d) killed, channel served again after %.1f ms\n",
		       round, w, (int)victim, (double)took / 1e6);
	}
	CHECK(tc_log_contains("killed by signal 9"), "restart not logged");

	/* A record that crashes the plugin. ACCESS: the new worker does not
	 * know the conf any more (s = 2), so the record cannot crash it again.
	 * CONF: it would, on every restart; the first two workers die on it,
	 * the third answers it with an error, and the channel lives on. */
	struct tc_conf crasher = {.id = 4, .plugin = "crasher"};
	char e[512];
	tc_register(c, &r, req++, &crasher);
	uint64_t crash_req = req++, cid = crasher.id;
	tc_send(c, SHMRING_REC_ACCESS, crash_req, fill_crash, &cid);
	tc_expect(c, &r, crash_req, 15 * SEC);
	CHECK(r.s == SHMRING_REPLY_UNKNOWN_CONF, "crashing ACCESS answered s=%llu",
	      (unsigned long long)r.s);
	struct tc_conf bomb = {.id = 5, .plugin = "crasher", .k1 = "crash", .v1 = "yes"};
	crash_req = req++;
	tc_send(c, SHMRING_REC_CONF, crash_req, tc_fill_conf, &bomb);
	tc_expect(c, &r, crash_req, 15 * SEC);
	CHECK(r.s == SHMRING_REPLY_ERROR &&
	          strstr(tc_err(&r, e, sizeof(e)), "crashed the worker twice"),
	      "poison record answered s=%llu e=%s", (unsigned long long)r.s, e);
	CHECK(request(c, &r, &hello, 5 * SEC) == 0, "served after the poison record");
	CHECK(tc_stats()->w[w].poisoned == 1, "poisoned not counted");

	/* A hook that never returns: the watchdog kills the worker after
	 * 1 s; its successor answers the record (s = 2: conf unknown). */
	tc_register(c, &r, req++, &crasher);
	uint64_t hang_req = req++;
	tc_send(c, SHMRING_REC_ACCESS, hang_req, fill_hang, &cid);
	uint64_t t0 = tc_now();
	tc_expect(c, &r, hang_req, 10 * SEC);
	CHECK(r.s == SHMRING_REPLY_UNKNOWN_CONF, "hung ACCESS answered s=%llu",
	      (unsigned long long)r.s);
	CHECK(tc_log_contains("stuck for"), "watchdog not logged");
	CHECK(tc_stats()->w[w].watchdog_kills == 1, "watchdog kill not counted");
	printf("hung worker killed by the watchdog, record answered after %.0f ms\n",
	       (double)(tc_now() - t0) / 1e6);
	printf("poison record skipped after two crashes\n");
	return tc_stop(inst, c);
}
