/* SPDX-License-Identifier: MIT */
/* policy = redis: placeholder until the sync thread lands. */
#include "rl_internal.h"

#include <errno.h>
#include <stdio.h>

int rl_redis_conf_new(struct rl_conf *c, char *err, size_t errlen)
{
	(void)c;
	snprintf(err, errlen, PLUGIN ": policy 'redis' is not available in this build yet");
	return -ENOTSUP;
}

void rl_redis_conf_free(struct rl_conf *c)
{
	(void)c;
}

void rl_redis_worker_fini(struct rl_worker *w)
{
	(void)w;
}

int rl_redis_count(struct rl_conf *c, const struct rl_key_set *ks, uint64_t now_ns,
                   struct rl_outcome *o)
{
	return rl_count(c, ks, now_ns, o);
}
