/* SPDX-License-Identifier: MIT */
/* The daemon copies a record out of the SQ once, before it checks and parses
 * it: a client that rewrites the record while the hook runs (the crasher
 * plugin's "/watch" path, which watches the bytes it was given for 1 s)
 * does not change what the hook sees. */
#include "client.h"

static void fill_watch(struct shmring_mpw *w, void *arg)
{
	shmring_mpw_map(w, 2);
	shmring_mpw_cstr(w, "conf");
	shmring_mpw_uint(w, *(uint64_t *)arg);
	shmring_mpw_cstr(w, "path");
	shmring_mpw_cstr(w, "/watch-me");
}

int main(void)
{
	tc_init("payload-copy");
	const char *args[] = {"--workers", "1", "--channels", "1", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	struct shmring_chan *c;
	CHECK(shmring_chan_claim(inst, &c) == 0, "claim");
	static struct tc_reply r;
	struct tc_conf crasher = {.id = 1, .plugin = "crasher"};
	tc_register(c, &r, 1, &crasher);

	/* The ACCESS record, written by hand so that its bytes stay at hand. */
	struct shmring_claim cl;
	CHECK(shmring_claim(c, 256, &cl) == 0, "claim record");
	struct shmring_mpw w;
	uint64_t conf = 1;
	shmring_mpw_init(&w, cl.payload, cl.cap);
	fill_watch(&w, &conf);
	int len = shmring_mpw_finish(&w);
	CHECK(len > 0, "encode");
	uint8_t *rec = cl.payload; /* still mapped after the commit: the client's SQ */
	CHECK(shmring_commit(c, &cl, (uint32_t)len, SHMRING_REC_ACCESS, 0, 2) == 0, "commit");
	shmring_publish(c);

	/* The hook raises its flag once it holds the path; then rewrite it. */
	char region[400];
	snprintf(region, sizeof(region), "%s/plugin-watch.shm", tc_shm);
	volatile uint32_t *flag = NULL;
	uint64_t deadline = tc_now() + 5 * SEC;
	while (!flag || !__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		CHECK(tc_now() < deadline, "the hook never started watching");
		int fd = flag ? -1 : open(region, O_RDWR);
		if (fd >= 0) {
			void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			close(fd);
			if (m != MAP_FAILED)
				flag = m;
		}
		usleep(1000);
	}
	uint8_t *p = memmem(rec, (size_t)len, "/watch-me", 9);
	CHECK(p, "path not found in the record");
	memcpy(p, "/watch-ME", 9);

	tc_expect(c, &r, 2, 10 * SEC);
	CHECK(r.s == SHMRING_REPLY_OK, "ACCESS failed");
	const msgpack_object *acts = shmring_mp_get(r.root, "a");
	CHECK(acts && acts->type == MSGPACK_OBJECT_ARRAY && acts->via.array.size == 1, "actions");
	const msgpack_object *a = acts->via.array.ptr;
	const msgpack_object *v = &a->via.array.ptr[a->via.array.size - 1];
	CHECK(v->type == MSGPACK_OBJECT_STR, "header value");
	CHECK(v->via.str.size == 6 && !memcmp(v->via.str.ptr, "stable", 6),
	      "the hook saw its request change under it: X-Watch: %.*s", (int)v->via.str.size,
	      v->via.str.ptr);
	munmap((void *)flag, 4096);
	return tc_stop(inst, c);
}
