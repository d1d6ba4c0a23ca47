/* SPDX-License-Identifier: MIT */
/*
 * rate-limiting (policy local) in a real shmringd, through the rings:
 * the counters live in <shm_dir>/plugin-rate-limiting-v2.shm, so
 *   - a worker killed (SIGKILL) and restarted finds its counts again (the
 *     client re-registers its config on "unknown conf", status 2);
 *   - a SIGHUP reload (new workers) keeps them too;
 *   - a graceful stop removes the file.
 * The limit is per day; a run that straddles midnight UTC is skipped.
 */
#include "client.h"
#include "shmring_plugin.h"

static void fill_conf(struct shmring_mpw *w, void *arg)
{
	(void)arg;
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, 1);
	shmring_mpw_cstr(w, "plugin");
	shmring_mpw_cstr(w, "rate-limiting");
	shmring_mpw_cstr(w, "config");
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "day");
	shmring_mpw_uint(w, 5);
	shmring_mpw_cstr(w, "limit_by");
	shmring_mpw_cstr(w, "ip");
}

static void fill_access(struct shmring_mpw *w, void *arg)
{
	(void)arg;
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, 1);
	shmring_mpw_cstr(w, "client_ip");
	shmring_mpw_cstr(w, "192.0.2.1");
}

static uint64_t req_id;

static void do_register(struct shmring_chan *c, struct tc_reply *r)
{
	char e[512];
	uint64_t id = ++req_id;
	tc_send(c, SHMRING_REC_CONF, id, fill_conf, NULL);
	tc_expect(c, r, id, 20 * SEC);
	CHECK(r->s == 0, "CONF refused: %s", tc_err(r, e, sizeof(e)));
}

/* One request: 0 passed, else the exit status. Re-registers once on
 * "unknown conf" (a new worker), as the Lua client does. */
static int one(struct shmring_chan *c, struct tc_reply *r)
{
	char e[512];
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t id = ++req_id;
		tc_send(c, SHMRING_REC_ACCESS, id, fill_access, NULL);
		tc_expect(c, r, id, 20 * SEC);
		if (r->s == 2) {
			do_register(c, r);
			continue;
		}
		CHECK(r->s == 0, "ACCESS failed: %s", tc_err(r, e, sizeof(e)));
		const msgpack_object *a = shmring_mp_get(r->root, "a");
		for (uint32_t i = 0; a && i < a->via.array.size; i++) {
			const msgpack_object *x = &a->via.array.ptr[i];
			if (x->via.array.ptr[0].via.u64 == SHMRING_ACT_EXIT)
				return (int)x->via.array.ptr[1].via.u64;
		}
		return 0;
	}
	CHECK(0, "unknown conf twice");
	return -1;
}

static uint64_t worker_pid(struct shmring_instance *inst)
{
	return __atomic_load_n(&shmring_instance_worker_counters(inst, 0)->pid, __ATOMIC_ACQUIRE);
}

static void wait_new_worker(struct shmring_instance *inst, uint64_t old)
{
	uint64_t deadline = tc_now() + 20 * SEC;
	while (worker_pid(inst) == 0 || worker_pid(inst) == old) {
		CHECK(tc_now() < deadline, "worker not restarted in time");
		usleep(2000);
	}
}

int main(void)
{
	time_t now = time(NULL);
	if (now % 86400 > 86400 - 60) {
		printf("SKIP: too close to midnight UTC (the test counts per day)\n");
		return 77;
	}
	tc_init("rl-daemon");
	const char *args[] = {"--workers", "1", "--plugins", "rate-limiting", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 20 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim a channel");
	struct tc_reply *r = calloc(1, sizeof(*r));
	do_register(c, r);
	char region[400];
	snprintf(region, sizeof(region), "%s/plugin-rate-limiting-v2.shm", tc_shm);
	struct stat st;
	CHECK(stat(region, &st) == 0 && st.st_size > 0, "the counters' region %s exists", region);

	CHECK(one(c, r) == 0 && one(c, r) == 0, "2 of 5 pass");
	/* SIGKILL the worker: supervision restarts it, the counts stay. */
	uint64_t pid = worker_pid(inst);
	CHECK(pid && kill((pid_t)pid, SIGKILL) == 0, "kill worker");
	wait_new_worker(inst, pid);
	CHECK(one(c, r) == 0 && one(c, r) == 0, "3rd and 4th pass after the restart");
	/* SIGHUP: new workers, same counts. */
	pid = worker_pid(inst);
	CHECK(kill(tc_pid, SIGHUP) == 0, "SIGHUP");
	wait_new_worker(inst, pid);
	CHECK(one(c, r) == 0, "5th passes after the reload");
	int s6 = one(c, r);
	CHECK(s6 == 429, "6th refused: the count survived a crash and a reload (got %d)", s6);

	shmring_chan_release(c);
	CHECK(kill(tc_pid, SIGTERM) == 0, "SIGTERM");
	CHECK(tc_wait_exit(tc_pid, 30 * SEC) == 0, "graceful stop");
	CHECK(stat(region, &st) != 0, "the region is removed on a graceful stop");
	shmring_instance_close(inst, 0);
	shmring_mpr_destroy(&r->mpr);
	free(r);
	printf("ok\n");
	return 0;
}
