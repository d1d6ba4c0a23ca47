/* SPDX-License-Identifier: MIT */
/* Test plugin for the log sinks: config {sink = "file:..."|"tcp:..."}; each
 * LOG entry's "line" string is appended to the sink with a '\n'. */
#include "shmring_plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tl_conf_new(void *ws, const msgpack_object *config, void **out, char *err, size_t errlen)
{
	struct shmring_str spec;
	char buf[1024];
	if (!shmring_map_str(config, SHMRING_LIT("sink"), &spec) || spec.len >= sizeof(buf)) {
		snprintf(err, errlen, "testlog: config.sink is required");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%.*s", (int)spec.len, spec.ptr);
	struct shmring_sink *s;
	int rc = shmring_sink_open(buf, &s, err, errlen);
	if (rc < 0)
		return rc;
	*out = s;
	return 0;
}

static void tl_conf_free(void *conf)
{
	if (conf)
		shmring_sink_release(conf);
}

static int tl_log(void *conf, const struct shmring_log_record *rec)
{
	struct shmring_str line;
	if (!shmring_map_str(rec->entry, SHMRING_LIT("line"), &line))
		return -1;
	char *p;
	if (shmring_sink_reserve(conf, line.len + 1, &p) != 0)
		return 0; /* dropped, counted by the sink */
	memcpy(p, line.ptr, line.len);
	p[line.len] = '\n';
	shmring_sink_commit(conf, line.len + 1);
	return 0;
}

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "testlog",
    .phases = SHMRING_PHASE_LOG,
    .conf_new = tl_conf_new,
    .conf_free = tl_conf_free,
    .log = tl_log,
};
