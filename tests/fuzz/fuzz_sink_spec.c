/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the log sink spec parser (shmring_sink_open in
 * worker/sink.c: "file:PATH", "tcp:HOST:PORT", "udp:HOST:PORT", "http(s)://...", each with an
 * optional "?key=value&..." list), on hostile specs, with real sinks behind
 * it (an io_uring, files, UDP sockets). A spec is refused with a message
 * or opened; an opened sink takes an entry and is released and flushed.
 * File sinks open only below plugin_file_dirs, here a fresh temporary
 * directory (removed at exit), so the fuzzer cannot create files elsewhere;
 * TCP and HTTP sinks connect to loopback only; UDP ones send to whatever
 * the spec names.
 */
#include "daemon.h"
#include "stats.h"

#include <curl/curl.h>
#include <stdbool.h>
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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	struct shmringd_sink_opts o = {.batch_bytes = 4096, .flush_ms = 1, .max_bytes = 65536};
	char err[256];
	if (!mkdtemp(dir) || chdir(dir) < 0 || shmringd__file_dirs_set(dir, err, sizeof(err)) < 0 ||
	    shmringd__sinks_init(&o, &st) < 0)
		abort();
	atexit(remove_dir);
	return 0;
}

/* Whether the host curl would connect to for spec's URL (the spec without
 * its "?parameters", as the sink takes it) is a loopback address literal:
 * asked of curl's own URL parser, so "127.h" or "127.0.0.1@name" count as
 * the names they are. */
static bool http_to_loopback(const char *spec)
{
	char url[512];
	snprintf(url, sizeof(url), "%s", spec);
	char *params = strrchr(url, '?');
	if (params)
		*params = '\0';
	CURLU *u = curl_url();
	char *host = NULL;
	bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	          curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	          (!strcmp(host, "127.0.0.1") || !strcmp(host, "[::1]"));
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char spec[512];
	if (size >= sizeof(spec) || memchr(data, '\0', size))
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	/* A connect to an address that does not answer holds the io_uring for
	 * the kernel's SYN timeout, and an HTTP sink's drain waits for curl's
	 * name look-up (this machine has no resolver to answer it): TCP and
	 * HTTP to loopback addresses only. */
	if (!strncmp(spec, "tcp:", 4) && strncmp(spec, "tcp:127.", 8) &&
	    strncmp(spec, "tcp:[::1]", 9))
		return 0;
	if ((!strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) &&
	    !http_to_loopback(spec))
		return 0;
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
	return 0;
}
