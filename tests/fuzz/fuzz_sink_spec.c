/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the log sink spec parser (shmring_sink_open in
 * worker/sink.c: "file:PATH", "tcp:IP:PORT", "udp:IP:PORT", each with an
 * optional "?key=value&..." list), on hostile specs, with real sinks behind
 * it (an io_uring, files, UDP sockets). A spec is refused with a message
 * or opened; an opened sink takes an entry and is released and flushed. To
 * keep the fuzzer from creating files anywhere, a file sink's PATH must be
 * a plain name: the target runs in a fresh temporary directory and removes
 * what it made; TCP sinks connect lazily and UDP ones send to whatever the
 * spec names on loopback or nowhere.
 */
#include "daemon.h"
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char shmringd__role[32] = "fuzz";
void shmringd__log(const char *fmt, ...)
{
	(void)fmt;
}

static struct shmringd_worker_stats st;
static char dir[] = "/tmp/shmring-fuzz-sink-XXXXXX";

static void remove_dir(void)
{
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* The part of a file spec that is its path: up to the last '?', as
 * shmring_sink_open cuts it. */
static size_t path_len(const char *path)
{
	const char *q = strrchr(path, '?');
	return q ? (size_t)(q - path) : strlen(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct shmringd_sink_opts o = {.batch_bytes = 4096, .flush_ms = 1, .max_bytes = 65536};
	if (!mkdtemp(dir) || chdir(dir) < 0 || shmringd__sinks_init(&o, &st) < 0)
		abort();
	atexit(remove_dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char spec[512];
	if (size >= sizeof(spec) || memchr(data, '\0', size))
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	const char *path = NULL;
	if (!strncmp(spec, "file:", 5)) {
		path = spec + 5;
		size_t n = path_len(path);
		if (memchr(path, '/', n) || (n && path[0] == '.'))
			return 0; /* only plain names in the temporary directory */
	}
	char err[256];
	memset(err, 'x', sizeof(err));
	struct shmring_sink *s;
	int rc = shmring_sink_open(spec, &s, err, sizeof(err));
	if (rc < 0) {
		if (!memchr(err, '\0', sizeof(err)) || !err[0])
			abort(); /* a refusal says why, within err */
		return 0;
	}
	shmring_sink_write(s, "{\"fuzz\":1}\n", 11);
	shmring_sink_release(s);
	/* Written and freed at once for files; a TCP sink with nobody to
	 * connect to is given up at the deadline. */
	shmringd__sinks_drain(shmring_now_ns() + 2000000ull);
	if (path) {
		char name[512];
		snprintf(name, sizeof(name), "%.*s", (int)path_len(path), path);
		unlink(name);
	}
	return 0;
}
