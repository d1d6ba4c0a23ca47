/* SPDX-License-Identifier: MIT */
/* The daemon's log sinks for the log plugin's tests (harness.h). */
#include "harness.h"

#include "daemon.h"

#include <stdio.h>
#include <string.h>

int harness_sinks_start(struct shmringd_worker_stats *ws)
{
	struct shmringd_sink_opts o = {
	    .batch_bytes = 65536, .flush_ms = 100, .max_bytes = 4u << 20};
	int rc = shmringd__sinks_init(&o, ws);
	if (rc < 0) {
		printf("SKIP: io_uring unavailable: %s\n", strerror(-rc));
		return 77;
	}
	return 0;
}
