/* SPDX-License-Identifier: MIT */
/* channel_memory_mb bounds what the plugin configs of one channel may hold:
 * a CONF whose conf_new takes more (a jwt cache of 2^22 entries, about
 * 200 MiB) is refused with the numbers; small ones are accepted, and one
 * that replaces a config frees its share first. */
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
	CHECK(strstr(e, "channel memory budget exceeded") && strstr(e, "channel_memory_mb = 16"),
	      "the refusal says why: %s", e);
	/* About 10 MiB each: the first fits, a second does not, and the same
	 * id again replaces the first (its share is freed first). */
	CHECK(conf_jwt(c, &r, 3, 3, 1u << 18, e, sizeof(e)) == SHMRING_REPLY_OK, "10 MiB: %s", e);
	CHECK(conf_jwt(c, &r, 4, 4, 1u << 18, e, sizeof(e)) == SHMRING_REPLY_ERROR,
	      "a second 10 MiB config accepted on a 16 MiB budget");
	CHECK(conf_jwt(c, &r, 5, 3, 1u << 18, e, sizeof(e)) == SHMRING_REPLY_OK,
	      "replacing conf 3: %s", e);
	struct tc_conf hello = {.id = 9, .plugin = "hello"};
	tc_register(c, &r, 6, &hello);

	return tc_stop(inst, c);
}
