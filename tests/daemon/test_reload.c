/* SPDX-License-Identifier: MIT */
/* SIGHUP under traffic: the config file is re-read (here: 2 workers -> 1
 * -> 2) and the plugins reloaded while requests flow; every request gets a
 * reply. Records submitted during the hand-over wait in the ring and are
 * answered by the new workers (s = 2 for an unknown conf id: the client
 * re-registers and retries once, as docs/protocol.md says). */
#include "client.h"

#define BURST 32

static void write_config(const char *path, int workers)
{
	FILE *f = fopen(path, "w");
	CHECK(f, "config file");
	fprintf(f, "# test config\nworkers = %d\nchannels = 4\nspin_us = 20\n", workers);
	fclose(f);
}

int main(void)
{
	tc_init("reload");
	char conf_path[400];
	snprintf(conf_path, sizeof(conf_path), "%s/shmringd.conf", tc_dir);
	write_config(conf_path, 2);
	const char *args[] = {"--config", conf_path, NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(2, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	struct tc_conf hello = {.id = 11, .plugin = "hello"};
	uint64_t req = 1;
	tc_register(c, &r, req++, &hello);

	uint64_t answered = 0, reregistered = 0;
	int reloads = 0;
	uint64_t t_end = tc_now() + 3 * SEC, next_hup = tc_now() + 200 * MS;
	while (tc_now() < t_end) {
		/* A burst in flight, with a SIGHUP in its middle sometimes. */
		uint64_t first = req, id = hello.id;
		for (int i = 0; i < BURST; i++) {
			tc_send(c, SHMRING_REC_ACCESS, req++, tc_fill_access, &id);
			if (i == BURST / 2 && tc_now() >= next_hup) {
				write_config(conf_path, reloads % 2 ? 2 : 1);
				CHECK(kill(tc_pid, SIGHUP) == 0, "SIGHUP");
				reloads++;
				next_hup = tc_now() + 300 * MS;
			}
		}
		/* Every one is answered, in order. */
		int nretry = 0;
		for (uint64_t want = first; want < first + BURST; want++) {
			CHECK(tc_recv(c, &r, 5 * SEC) == 0, "reply %llu lost",
			      (unsigned long long)want);
			CHECK(r.req_id == want, "reply %llu instead of %llu",
			      (unsigned long long)r.req_id, (unsigned long long)want);
			CHECK(r.s == SHMRING_REPLY_OK || r.s == SHMRING_REPLY_UNKNOWN_CONF,
			      "status %llu", (unsigned long long)r.s);
			if (r.s == SHMRING_REPLY_UNKNOWN_CONF)
				nretry++;
			answered++;
		}
		if (nretry) {
			tc_register(c, &r, req++, &hello);
			reregistered++;
			for (int i = 0; i < nretry; i++) {
				uint64_t me = req++;
				tc_send(c, SHMRING_REC_ACCESS, me, tc_fill_access, &id);
				tc_expect(c, &r, me, 5 * SEC);
				CHECK(r.s == SHMRING_REPLY_OK,
				      "retry after re-registration: s=%llu",
				      (unsigned long long)r.s);
			}
		}
	}
	CHECK(reloads >= 5, "only %d reloads", reloads);
	CHECK(tc_log_contains("reload: done"), "reload not logged");
	printf("%llu replies, %d reloads, %llu re-registrations, none lost\n",
	       (unsigned long long)answered, reloads, (unsigned long long)reregistered);
	return tc_stop(inst, c);
}
