/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: an HTTP sink's queue (worker/sink.c: fill as a ring of
 * whole entries, the oldest dropped past max_bytes / max_entries, batches
 * taken from the front while a request is in flight and retried). The
 * input is a program: its first byte picks max_entries and batch size,
 * then each byte appends an entry of its size or lets the loop run. The
 * collector (127.0.0.1:1) refuses every connection, so batches stay in
 * flight and are retried while entries pile up, wrap and are dropped;
 * AddressSanitizer checks every copy, and every entry is counted.
 */
#include "daemon.h"
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char shmringd__role[32] = "fuzz";
void shmringd__log(const char *fmt, ...)
{
	(void)fmt;
}

static struct shmringd_worker_stats st;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct shmringd_sink_opts o = {.batch_bytes = 4096, .flush_ms = 1, .max_bytes = 65536};
	if (shmringd__sinks_init(&o, &st) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char spec[256], err[256];
	snprintf(spec, sizeof(spec),
	         "http://127.0.0.1:1/?max_bytes=1024&max_entries=%u&batch_entries=%u"
	         "&retry_initial_ms=1&retry_max_ms=1&retry_time_ms=1000000",
	         data[0] & 31, (data[0] >> 5) + 1);
	struct shmring_sink *s;
	if (shmring_sink_open(spec, &s, err, sizeof(err)) < 0)
		abort();
	struct shmring_sink_stats before, after;
	shmring_sink_stats(s, &before);
	uint64_t written = 0, refused = 0;
	char entry[700];
	for (size_t i = 1; i < size; i++) {
		if (data[i] >= 250) {
			shmringd__sinks_poll(shmring_now_ns());
			continue;
		}
		/* up to 649 bytes: some entries take more than half the queue */
		size_t n = (size_t)data[i] * 13 / 5 + 1;
		memset(entry, 'a' + (int)(i % 26), n - 1);
		entry[n - 1] = '\n';
		if (shmring_sink_write(s, entry, n) == 0)
			written++;
		else
			refused++;
	}
	shmring_sink_stats(s, &after);
	if (after.entries - before.entries != written)
		abort();
	/* a refused entry is counted as dropped (so are the oldest ones) */
	if (after.dropped - before.dropped < refused)
		abort();
	shmring_sink_release(s);
	shmringd__sinks_drain(shmring_now_ns() + 1000000ull);
	return 0;
}
