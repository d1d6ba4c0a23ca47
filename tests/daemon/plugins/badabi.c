/* SPDX-License-Identifier: MIT */
/* A plugin built for another ABI version: shmringd must refuse it. */
#include "shmring_plugin.h"

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = 99,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "badabi",
};
