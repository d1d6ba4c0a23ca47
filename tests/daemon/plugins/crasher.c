/* SPDX-License-Identifier: MIT */
/* A plugin with crash bugs: a config with a "crash" key aborts conf_new,
 * ACCESS with path "/crash" aborts the hook, "/hang" never returns. shmringd must restart the
 * worker and, when the same record kills a second one, answer it with an
 * error instead of dying forever. "/watch..." raises a flag in the shared
 * region "watch" and, for up to 1 s, watches whether the path it was given
 * changes under it (X-Watch: changed or stable): a client rewriting its
 * ring must not change what a hook sees. */
#include "shmring_plugin.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int crasher_watch(const struct shmring_request *req, struct shmring_reply *rep)
{
	char seen[64];
	size_t n = req->path.len < sizeof(seen) ? req->path.len : sizeof(seen);
	memcpy(seen, req->path.ptr, n);
	volatile uint32_t *flag;
	if (shmring_shared_region("watch", 4096, (void **)&flag) < 0)
		return -1;
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
	bool changed = false;
	const volatile char *path = req->path.ptr; /* read anew each time */
	for (uint64_t end = now_ns() + 1000000000ull; !changed && now_ns() < end;)
		for (size_t i = 0; i < n; i++)
			changed |= path[i] != seen[i];
	__atomic_store_n(flag, 0, __ATOMIC_RELEASE);
	return shmring_reply_set_req_header(
	    rep, SHMRING_LIT("X-Watch"), changed ? SHMRING_LIT("changed") : SHMRING_LIT("stable"));
}

static int crasher_conf_new(void *ws, const msgpack_object *config, void **out, char *err,
                            size_t errlen)
{
	*out = NULL;
	if (shmring_map_get(config, SHMRING_LIT("crash")))
		abort();
	return 0;
}

static int crasher_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	if (shmring_str_eq(req->path, SHMRING_LIT("/crash")))
		abort();
	if (req->path.len >= 6 && !memcmp(req->path.ptr, "/watch", 6))
		return crasher_watch(req, rep);
	if (shmring_str_eq(req->path, SHMRING_LIT("/hang")))
		for (;;)
			__asm__ volatile("" ::: "memory");
	return shmring_reply_set_req_header(rep, SHMRING_LIT("X-Crasher"), SHMRING_LIT("alive"));
}

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "crasher",
    .phases = SHMRING_PHASE_ACCESS,
    .conf_new = crasher_conf_new,
    .access = crasher_access,
};
