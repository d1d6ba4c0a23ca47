/* SPDX-License-Identifier: MIT */
/* The minimal plugin of the example at the top of shmring_plugin.h, word for
 * word (with its name changed): test_daemon_abi checks that it loads and
 * answers, so the documented example stays true. */
#include "shmring_plugin.h"

static int hello_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	shmring_reply_set_req_header(rep, SHMRING_LIT("X-Hello"), SHMRING_LIT("World"));
	return 0;
}

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "minimal",
    .phases = SHMRING_PHASE_ACCESS,
    .access = hello_access,
};
