/* SPDX-License-Identifier: MIT */
/*
 * The daemon's own statistics file, "<shm_dir>/stats", next to the ring
 * segments (the ring library's counters stay in ctl and the channels).
 *
 * Layout (little-endian, created by the master with the segments' mode):
 *   struct shmringd_stats: magic, version, nworkers, master pid, then
 *   SHMRING_MAX_WORKERS blocks of struct shmringd_worker_stats, each block
 *   written by the worker in that slot, except watchdog_kills, which the
 *   master writes (plain 64-bit stores; readers such as shmringctl take each
 *   field as a snapshot, never a consistent set). Counters survive worker
 *   restarts: a new worker continues them.
 *
 * Byte offsets (version 3; lua/shmring/metrics.lua reads the file by these
 * numbers, the _Static_asserts below pin them):
 *   header      0 magic, 8 version (u32), 12 nworkers (u32), 16 master pid;
 *               the worker blocks start at 64, SHMRINGD_WORKER_STATS_SIZE each
 *   worker      0 lat_hist[32], 256 replies, ..., 304 log_records,
 *               336 sink_entries .. 376 sink_reconnects, 464 plugins[16],
 *               10064 entity_entries .. 10096 entity_forgets
 *   plugin      0 name[48], 48 calls, 56 errors, 64 exhausted,
 *               72 hook[2] (request, log)
 *   hook hist   0 sum_ns, 8 buckets[32] (the buckets of lat_hist)
 */
#ifndef SHMRINGD_STATS_H
#define SHMRINGD_STATS_H

#include "shmring/shmring.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#define SHMRINGD_STATS_MAGIC 0x3154415453445253ull /* "SRDSTAT1" */
#define SHMRINGD_STATS_VERSION 3u
#define SHMRINGD_STATS_NAME "stats"
/* Service-time histogram: bucket i counts records whose dispatch (peek to
 * reply committed) took [2^i, 2^(i+1)) ns; bucket 0 also takes < 1 ns and
 * the last bucket everything longer. */
#define SHMRINGD_HIST_BUCKETS 32

#define SHMRINGD_STATS_PLUGINS 16

/* Which records a plugin's service-time histograms count: those of the
 * hooks a request waits for (access, rewrite, header_filter) apart from
 * LOG, which nobody waits for and which may cost far more. */
enum shmringd_hook_kind {
	SHMRINGD_HOOK_REQUEST,
	SHMRINGD_HOOK_LOG,
	SHMRINGD_HOOK_KINDS,
};

/* Service time of the records one kind of a plugin's hooks served: from
 * the record's peek (or the end of the record before it in the batch) to
 * its reply committed, as lat_hist measures it; snapshot decoding and reply
 * encoding included. */
struct shmringd_hook_hist {
	uint64_t sum_ns;                         /* of every call counted below */
	uint64_t buckets[SHMRINGD_HIST_BUCKETS]; /* as lat_hist; their sum is the count */
};

/* Per plugin, per worker: in the order the worker loaded them. */
struct shmringd_plugin_stats {
	char name[48];      /* NUL-terminated; "" = unused slot */
	uint64_t calls;     /* hooks called (conf_new, access, ..., log) */
	uint64_t errors;    /* hooks that failed (< 0, config refused) */
	uint64_t exhausted; /* requests met with a full plugin resource (shmring_reply_exhausted) */
	struct shmringd_hook_hist hook[SHMRINGD_HOOK_KINDS]; /* CONF records not counted */
};

struct shmringd_worker_stats {
	alignas(64) uint64_t lat_hist[SHMRINGD_HIST_BUCKETS];
	uint64_t replies;       /* REPLY records committed */
	uint64_t conf_ok;       /* CONF accepted */
	uint64_t conf_refused;  /* CONF refused by the plugin or unknown plugin */
	uint64_t unknown_conf;  /* records naming a conf id not registered */
	uint64_t malformed;     /* bad msgpack, missing fields, unknown type */
	uint64_t plugin_errors; /* hooks that returned < 0 */
	uint64_t log_records;   /* LOG records handed to a plugin */
	uint64_t cq_full;       /* replies that waited for CQ space */
	uint64_t owner_changes; /* conf tables dropped for a new channel owner */
	uint64_t doorbells;     /* doorbell bytes written */
	uint64_t sink_entries;
	uint64_t sink_bytes;
	uint64_t sink_dropped;
	uint64_t sink_flushes;
	uint64_t sink_errors;
	uint64_t sink_reconnects;
	uint64_t generation;     /* worker starts in this slot */
	uint64_t started_ns;     /* CLOCK_MONOTONIC at the last start */
	uint64_t poisoned;       /* records skipped: they crashed the worker twice */
	uint64_t loop_ns;        /* CLOCK_MONOTONIC of the worker's last loop turn
	                          * (the master's watchdog reads it) */
	uint64_t watchdog_kills; /* written by the master */
	/* Crash-loop guard, written by the worker of this slot and read by its
	 * successor: while a record is dispatched, inflight is
	 * ((channel + 1) << 32) | (its index since the channel's last release)
	 * and inflight_req its req_id; 0 between records. A successor that
	 * finds inflight != 0 knows its predecessor died on that record. */
	uint64_t inflight;
	uint64_t inflight_req;
	uint64_t suspect; /* inflight value of the record a worker died on */
	uint64_t suspect_req;
	uint64_t strikes; /* consecutive worker deaths on the suspect */
	struct shmringd_plugin_stats plugins[SHMRINGD_STATS_PLUGINS];
	/* Entities learned from the gateway (host_entity.c), in what was the
	 * block's tail padding: the offsets above do not move. */
	uint64_t entity_entries;   /* cached now, all this worker's channels (a gauge) */
	uint64_t entity_hits;      /* look-ups answered from the cache */
	uint64_t entity_lookups;   /* NEED_ENTITIES replies (misses sent to the gateway) */
	uint64_t entity_evictions; /* entries dropped to stay within the bound */
	uint64_t entity_forgets;   /* entries dropped by FORGET records */
};

struct shmringd_stats {
	alignas(64) uint64_t magic;
	uint32_t version;
	uint32_t nworkers;
	uint64_t master_pid;
	struct shmringd_worker_stats w[SHMRING_MAX_WORKERS];
};

#define SHMRINGD_WORKER_STATS_SIZE 10112

/* The offsets the header comment and lua/shmring/metrics.lua rely on: a
 * change here is a change there and a new SHMRINGD_STATS_VERSION. */
_Static_assert(offsetof(struct shmringd_stats, version) == 8, "stats layout");
_Static_assert(offsetof(struct shmringd_stats, nworkers) == 12, "stats layout");
_Static_assert(offsetof(struct shmringd_stats, w) == 64, "stats layout");
_Static_assert(sizeof(struct shmringd_worker_stats) == SHMRINGD_WORKER_STATS_SIZE, "stats layout");
_Static_assert(offsetof(struct shmringd_worker_stats, replies) == 256, "stats layout");
_Static_assert(offsetof(struct shmringd_worker_stats, log_records) == 304, "stats layout");
_Static_assert(offsetof(struct shmringd_worker_stats, sink_entries) == 336, "stats layout");
_Static_assert(offsetof(struct shmringd_worker_stats, sink_reconnects) == 376, "stats layout");
_Static_assert(offsetof(struct shmringd_worker_stats, plugins) == 464, "stats layout");
_Static_assert(offsetof(struct shmringd_worker_stats, entity_entries) == 10064, "stats layout");
_Static_assert(sizeof(struct shmringd_plugin_stats) == 600, "stats layout");
_Static_assert(offsetof(struct shmringd_plugin_stats, calls) == 48, "stats layout");
_Static_assert(offsetof(struct shmringd_plugin_stats, errors) == 56, "stats layout");
_Static_assert(offsetof(struct shmringd_plugin_stats, exhausted) == 64, "stats layout");
_Static_assert(offsetof(struct shmringd_plugin_stats, hook) == 72, "stats layout");
_Static_assert(sizeof(struct shmringd_hook_hist) == 8 + 8 * SHMRINGD_HIST_BUCKETS, "stats layout");

#endif
