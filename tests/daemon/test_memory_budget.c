/* SPDX-License-Identifier: MIT */
/* channel_memory_mb bounds what one channel may take: its configs (a CONF
 * whose conf_new takes more, a jwt cache of 2^22 entries, about 200 MiB,
 * is refused with the numbers) and, charged before any config, the bound
 * of its entity cache (entity_cache_entries x 2 KiB: 8 MiB by default), so
 * no config fits in room the cache may grow into later; small configs are
 * accepted, and one that replaces a config frees its share first */
#include "client.h"

static void fill_jwt(struct shmring_mpw *w, void *arg)
{
	const uint64_t *a = arg; /* conf id, cache_size */
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, a[0]);
	shmring_mpw_cstr(w, "plugin");
	shmring_mpw_cstr(w, "jwt");
	shmring_mpw_cstr(w, "config");
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "cache_size");
	shmring_mpw_uint(w, a[1]);
	shmring_mpw_cstr(w, "credentials");
	shmring_mpw_array(w, 1);
	shmring_mpw_map(w, 4);
	shmring_mpw_cstr(w, "consumer");
	shmring_mpw_map(w, 1);
	shmring_mpw_cstr(w, "id");
	shmring_mpw_cstr(w, "c-1");
	shmring_mpw_cstr(w, "key");
	shmring_mpw_cstr(w, "k-1");
	shmring_mpw_cstr(w, "algorithm");
	shmring_mpw_cstr(w, "HS256");
	shmring_mpw_cstr(w, "secret");
	shmring_mpw_cstr(w, "secret-for-HS256-0123456789abcdef");
}

static void fill_log(struct shmring_mpw *w, void *arg)
{
	const uint64_t *id = arg;
	char path[512];
	snprintf(path, sizeof(path), "%s/budget.log", tc_dir);
	shmring_mpw_map(w, 3);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, *id);
	shmring_mpw_cstr(w, "plugin");
	shmring_mpw_cstr(w, "log");
	shmring_mpw_cstr(w, "config");
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "path");
	shmring_mpw_cstr(w, path);
	shmring_mpw_cstr(w, "max_buffered_bytes");
	shmring_mpw_uint(w, 6u << 20);
}

static uint64_t conf_log(struct shmring_chan *c, struct tc_reply *r, uint64_t req, uint64_t id,
                         char *err, size_t errlen)
{
	tc_send(c, SHMRING_REC_CONF, req, fill_log, &id);
	tc_expect(c, r, req, 10 * SEC);
	tc_err(r, err, errlen);
	return r->s;
}

static uint64_t conf_jwt(struct shmring_chan *c, struct tc_reply *r, uint64_t req, uint64_t id,
                         uint64_t cache_size, char *err, size_t errlen)
{
	uint64_t a[2] = {id, cache_size};
	tc_send(c, SHMRING_REC_CONF, req, fill_jwt, a);
	tc_expect(c, r, req, 10 * SEC);
	tc_err(r, err, errlen);
	return r->s;
}

int main(void)
{
	tc_init("memory-budget");
	const char *args[] = {"--workers",           "1",  "--channels", "1",
	                      "--channel-memory-mb", "16", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	char e[512];

	CHECK(conf_jwt(c, &r, 1, 1, 1024, e, sizeof(e)) == SHMRING_REPLY_OK, "small: %s", e);
	CHECK(conf_jwt(c, &r, 2, 2, 1u << 22, e, sizeof(e)) == SHMRING_REPLY_ERROR,
	      "a 200 MiB config accepted on a 16 MiB budget");
	CHECK(strstr(e, "channel memory budget exceeded") && strstr(e, "channel_memory_mb = 16") &&
	          strstr(e, "entity cache may take 8388608"),
	      "the refusal says why, with every number: %s", e);
	/* About 5 MiB: fits beside the 8 MiB the entity cache may take. About
	 * 10 MiB would fit in the budget alone, but not beside the cache: its
	 * replacing the 5 MiB config (whose share is freed first) is refused,
	 * and another 5 MiB one is accepted. */
	CHECK(conf_jwt(c, &r, 3, 3, 1u << 17, e, sizeof(e)) == SHMRING_REPLY_OK, "5 MiB: %s", e);
	CHECK(conf_jwt(c, &r, 4, 3, 1u << 18, e, sizeof(e)) == SHMRING_REPLY_ERROR,
	      "a 10 MiB config accepted beside an 8 MiB entity cache on a 16 MiB budget");
	CHECK(conf_jwt(c, &r, 5, 3, 1u << 17, e, sizeof(e)) == SHMRING_REPLY_OK,
	      "replacing conf 3: %s", e);
	CHECK(conf_jwt(c, &r, 7, 4, 1u << 17, e, sizeof(e)) == SHMRING_REPLY_ERROR,
	      "a second 5 MiB config accepted beside the cache on a 16 MiB budget");
	/* A log sink's buffers (6 MiB declared) are charged to every config
	 * naming it, the first that made them and one sharing them alike:
	 * they live as long as either does. */
	CHECK(conf_jwt(c, &r, 8, 3, 1024, e, sizeof(e)) == SHMRING_REPLY_OK, "shrink conf 3: %s",
	      e);
	CHECK(conf_log(c, &r, 9, 10, e, sizeof(e)) == SHMRING_REPLY_OK, "6 MiB sink: %s", e);
	CHECK(conf_log(c, &r, 10, 11, e, sizeof(e)) == SHMRING_REPLY_ERROR,
	      "a second config sharing the 6 MiB sink accepted past a 16 MiB budget");
	struct tc_conf hello = {.id = 9, .plugin = "hello"};
	tc_register(c, &r, 11, &hello);

	return tc_stop(inst, c);
}
