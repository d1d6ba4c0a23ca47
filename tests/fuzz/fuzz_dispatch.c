/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the daemon's record dispatch (worker/worker.c), from a
 * record read off a channel's SQ to the plugin hook and the reply in the CQ,
 * with the built-in plugins loaded from the build tree. One real instance
 * (a temporary directory, one channel) lives for the whole run; each input
 * opens a worker in-process (shmringd__worker_open), sends its records as
 * a gateway would, serves them (shmringd__worker_serve) and closes the
 * worker again, so no config outlives its input.
 *
 * Input: byte 0 picks the poison case (bit 0: the previous two workers of
 * the slot died on record (byte 0 >> 1) & 7 of this input), then records:
 * [type u8][flags u8][len u16 le][payload len bytes]. flags bit 0: the
 * record has a req_id (its index + 1, so every id is unique); the type is
 * taken as is, unknown types included.
 *
 * Checked: nothing crashes or trips a sanitizer; every record is served;
 * every reply names a record of this input, decodes in the gateway's own
 * decoder (shmring_client_decode_reply), and a record that must be
 * answered (CONF, a phase, an unknown type, a poisoned record) with a
 * req_id gets exactly one reply; the poisoned record, and only it, is
 * answered "record skipped".
 */
#include "daemon.h"
#include "stats.h"

#include <shmring/client.h>
#include <shmring/protocol.h>

#include <dirent.h>
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 65536
#define MAX_RECS 256

char shmringd__role[32] = "fuzz";
void shmringd__log(const char *fmt, ...)
{
	(void)fmt;
}

static struct shmringd_config cfg;
static struct shmring_instance *inst;
static struct shmring_chan *client;
static struct shmringd_stats *stats;
static struct shmring_client_decoder *dec;

/* Each input's worker loads and unloads the plugins; one reference held
 * here keeps them mapped, as libFuzzer reads their coverage counters after
 * the input (an unmapped module would fault it). */
static void hold_plugins(void)
{
	DIR *d = opendir(PLUGIN_DIR);
	if (!d)
		abort();
	for (struct dirent *e; (e = readdir(d));) {
		size_t n = strlen(e->d_name);
		char path[PATH_MAX];
		if (n < 4 || strcmp(e->d_name + n - 3, ".so"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", PLUGIN_DIR, e->d_name);
		if (!dlopen(path, RTLD_NOW | RTLD_NODELETE))
			abort();
	}
	closedir(d);
}

static char dir[] = "/tmp/shmring-fuzz-dispatch-XXXXXX";

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* The instance, the plugin regions and any log file a config made. */
static void remove_dir(void)
{
	shmring_chan_release(client);
	shmring_instance_close(inst, 1);
	if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[256];
	if (!mkdtemp(dir) || shmringd__file_dirs_set(dir, err, sizeof(err)) < 0)
		abort();
	hold_plugins();
	shmringd__config_defaults(&cfg);
	snprintf(cfg.shm_dir, sizeof(cfg.shm_dir), "%s/inst", dir);
	snprintf(cfg.plugin_dir, sizeof(cfg.plugin_dir), "%s", PLUGIN_DIR);
	snprintf(cfg.plugin_file_dirs, sizeof(cfg.plugin_file_dirs), "%s", dir);
	cfg.channels = 1;
	cfg.workers = 1;
	cfg.ring_size = RING;
	cfg.drain_timeout_ms = 50;
	cfg.channel_memory_mb = 64;
	struct shmring_create_opts o = {.dir = cfg.shm_dir,
	                                .nchannels = 1,
	                                .nworkers = 1,
	                                .sq_size = RING,
	                                .cq_size = RING,
	                                .mode = 0700,
	                                .uid = (uid_t)-1,
	                                .gid = (gid_t)-1};
	if (shmring_instance_create(&o, &inst) < 0 || shmring_chan_claim(inst, &client) < 0 ||
	    shmring_client_decoder_new(&dec) < 0 || !(stats = calloc(1, sizeof(*stats))))
		abort();
	atexit(remove_dir);
	return 0;
}

struct sent {
	uint8_t type;
	uint64_t req_id;
	unsigned replies;
	bool skipped; /* answered "record skipped" (poison) */
};

/* A log sink to an address that does not answer holds the worker's
 * io_uring for a SYN timeout: TCP sinks go to loopback only. */
static bool remote_tcp(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++)
		if (!memcmp(d + i, "tcp:", 4) && (n - i < 8 || memcmp(d + i + 4, "127.", 4)))
			return true;
	return false;
}

static bool must_answer(const struct sent *s, bool poisoned)
{
	if (!s->req_id)
		return false;
	return poisoned || s->type == SHMRING_REC_CONF || (s->type > SHMRING_REC_FORGET) ||
	       (s->type >= SHMRING_REC_ACCESS && s->type <= SHMRING_REC_HEADER_FILTER);
}

/* Read every reply waiting in the CQ and match it to its record. */
static void read_replies(struct sent *sent, uint32_t nsent)
{
	struct shmring_rec rec;
	while (shmring_peek(client, &rec) == 0) {
		if (rec.type != SHMRING_REC_REPLY || !rec.req_id || rec.req_id > nsent ||
		    !sent[rec.req_id - 1].req_id) {
			fprintf(stderr, "reply type %u for req %llu: no such request\n", rec.type,
			        (unsigned long long)rec.req_id);
			abort();
		}
		sent[rec.req_id - 1].replies++;
		struct shmring_client_reply *r;
		if (shmring_client_decode_reply(dec, rec.payload, rec.len, &r) < 0) {
			fprintf(stderr, "reply to req %llu does not decode\n",
			        (unsigned long long)rec.req_id);
			abort();
		}
		static const char skip[] = "record skipped";
		if (r->error.len >= sizeof(skip) - 1 &&
		    !memcmp(r->error.ptr, skip, sizeof(skip) - 1))
			sent[rec.req_id - 1].skipped = true;
	}
	shmring_release(client);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || remote_tcp(data, size))
		return 0;
	uint8_t poison = data[0];
	struct sent sent[MAX_RECS];
	uint32_t n = 0;
	size_t off = 1;
	while (off + 4 <= size && n < MAX_RECS) {
		uint8_t type = data[off], flags = data[off + 1];
		uint32_t len = (uint32_t)data[off + 2] | (uint32_t)data[off + 3] << 8;
		off += 4;
		if (len > size - off)
			len = (uint32_t)(size - off);
		uint64_t req_id = flags & 1 ? n + 1 : 0;
		if (type == SHMRING_REC_PAD) { /* the ring's own filler, never read as a record */
			off += len;
			continue;
		}
		if (shmring_send(client, type, req_id, data + off, len) != 0)
			break; /* larger than a record may be, or the SQ is full */
		sent[n++] = (struct sent){.type = type, .req_id = req_id};
		off += len;
	}
	shmring_publish(client);

	/* The slot's previous two workers died on record k of this input. */
	memset(&stats->w[0], 0, sizeof(stats->w[0]));
	uint32_t k = (poison >> 1) & 7;
	bool poisoned = (poison & 1) && k < n;
	if (poisoned) {
		stats->w[0].strikes = 2;
		stats->w[0].suspect = (uint64_t)1 << 32 | k;
		stats->w[0].suspect_req = sent[k].req_id;
	}
	struct shmringd_worker_args a = {
	    .cfg = &cfg, .inst = inst, .nworkers = 1, .stats = stats, .sock_fd = -1};
	shmringd__worker_open(&a);
	uint32_t served = 0;
	for (int turn = 0; turn < 64 && served < n; turn++) {
		served += (uint32_t)shmringd__worker_serve();
		read_replies(sent, n);
	}
	shmringd__worker_serve(); /* a reply that waited for CQ space */
	read_replies(sent, n);
	shmringd__worker_close();

	if (served != n) {
		fprintf(stderr, "%u of %u records served\n", served, n);
		abort();
	}
	for (uint32_t i = 0; i < n; i++) {
		bool p = poisoned && i == k;
		if (sent[i].replies > 1 || (must_answer(&sent[i], p) && sent[i].replies != 1) ||
		    sent[i].skipped != (p && sent[i].req_id)) {
			fprintf(stderr, "record %u (type %u, req %llu): %u replies, %s\n", i,
			        sent[i].type, (unsigned long long)sent[i].req_id, sent[i].replies,
			        sent[i].skipped ? "skipped" : "not skipped");
			abort();
		}
	}
	return 0;
}
