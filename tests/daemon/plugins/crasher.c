/* SPDX-License-Identifier: MIT */
/* A plugin with crash bugs: a config with a "crash" key aborts conf_new,
 * ACCESS with path "/crash" aborts the hook, "/hang" never returns. shmringd must restart the
 * worker and, when the same record kills a second one, answer it with an
 * error instead of dying forever. */
#include "shmring_plugin.h"

#include <stdlib.h>

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
