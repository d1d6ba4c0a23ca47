/* SPDX-License-Identifier: MIT */
/* shmringd internals shared by the master, the workers and the host API.
 * `shmringd__` names cross files; everything else is static. */
#ifndef SHMRINGD_DAEMON_H
#define SHMRINGD_DAEMON_H

#include "shmring/mp.h"
#include "shmring/shmring.h"
#include "schema_layout.h"
#include "shmring_plugin.h"
#include "stats.h"

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SHMRINGD_MAX_PLUGINS 64
#define SHMRINGD_LOCK_NAME "shmringd.lock"

/* Every key of the config file; each also exists as --key on the command
 * line (with '-' or '_'). Defaults are set by shmringd__config_defaults(). */
struct shmringd_config {
	char config_file[PATH_MAX]; /* "" = none */
	char shm_dir[PATH_MAX];
	uint32_t channels;
	uint32_t workers;
	uint32_t ring_size; /* bytes of SQ and of CQ, power of two */
	mode_t mode;
	char group[64];            /* "" = keep */
	char user[64];             /* "" = keep */
	char plugin_dir[PATH_MAX]; /* ':'-separated directories */
	char plugins[1024];        /* ','-separated names; "" = every .so found */
	bool allow_plugin_errors;  /* scan: start without the plugins that do not load */
	bool foreground;
	uint32_t spin_us;            /* busy-poll this long before sleeping */
	uint32_t idle_timeout_ms;    /* longest futex sleep when nothing is due */
	uint32_t log_batch_bytes;    /* flush a sink batch at this size */
	uint32_t log_flush_ms;       /* ... or when its oldest entry is this old */
	uint32_t log_sink_max_bytes; /* memory bound per sink per worker */
	uint32_t channel_memory_mb;  /* configs of one channel, by conf_new heap growth; 0 = off */
	uint32_t restart_backoff_max_ms;
	uint32_t drain_timeout_ms;     /* SIGTERM: longest wait for rings and sinks */
	uint32_t watchdog_ms;          /* kill a worker whose loop stalls this long; 0 = off */
	uint32_t entity_cache_entries; /* entities kept per channel (host_entity.c) */
	int verbose;
	char socket[108]; /* "" = off; else the socket transport's Unix socket path */
	char plugin_file_dirs[PATH_MAX]; /* see host_files.c */
};

void shmringd__config_defaults(struct shmringd_config *c);
/* Apply the config file (if any) then argv overrides. 0, or -1 after
 * printing why to stderr. *exit_now is set for --help / --version. */
int shmringd__config_load(struct shmringd_config *c, int argc, char **argv, bool *exit_now);
void shmringd__usage(FILE *f);
/* Report a bad value of key on stderr with where it was set by the last
 * shmringd__config_load(): "FILE:LINE: key: ...", "--key: ..." or
 * "key (default): ...". */
void shmringd__config_error(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- files named by plugin configs (host_files.c) ------------------------ */

#define SHMRINGD_FILE_DIRS_DEFAULT "/var/log/shmring:/etc/shmring"
/* The directories below which shmring_file_open() opens files (config key
 * plugin_file_dirs; the default above until called). 0, or -errno with
 * why in err. */
int shmringd__file_dirs_set(const char *list, char *err, size_t errlen);

/* Logging to stderr (journal under systemd), prefixed by the process role. */
extern char shmringd__role[32];
void shmringd__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- plugins (host_load.c) ----------------------------------------------- */

struct shmringd_plugin {
	const struct shmring_plugin *desc; /* NULL if refused */
	void *handle;
	void *wstate;
	bool init_ok;
	char name[64];
	char error[PATH_MAX + 600]; /* why it was refused or init failed */
};

struct shmringd_plugins {
	struct shmringd_plugin v[SHMRINGD_MAX_PLUGINS];
	uint32_t n;
};

/* Whether a plugin that does not load (or a plugin_dir that cannot be read)
 * stops the daemon: always for a `plugins` list, else unless
 * allow_plugin_errors is on. */
bool shmringd__plugins_strict(const struct shmringd_config *c);
/* dlopen the configured plugins and check their descriptors. With strict,
 * any refusal, an unreadable plugin_dir or finding no plugin is an error
 * (returned -1, message in err). Without it, refused plugins stay in the
 * table with their error. */
int shmringd__plugins_load(const struct shmringd_config *c, struct shmringd_plugins *p, bool strict,
                           char *err, size_t errlen);
/* Run init of every loaded plugin (worker side). */
void shmringd__plugins_init(struct shmringd_plugins *p);
void shmringd__plugins_unload(struct shmringd_plugins *p);
struct shmringd_plugin *shmringd__plugin_find(struct shmringd_plugins *p, const char *name,
                                              size_t len);
/* A plugin or shared-region name: [a-z0-9_-]{1,63}. */
bool shmringd__name_ok(const char *n);
/* The request views a hook called (host_request.c): when set, each
 * shmring_req_* call reports what it looked up and its result. The plugin
 * test library records them; NULL in shmringd. */
enum shmringd_read {
	SHMRINGD_READ_HEADER,
	SHMRINGD_READ_QUERY,
	SHMRINGD_READ_CTX,
	SHMRINGD_READ_RESP_HEADER,
};
extern void (*shmringd__read_trace)(enum shmringd_read what, struct shmring_str name, int rc);
/* conf_new as the daemon runs it (host_schema.c): the config checked
 * against the plugin's schema and rebuilt with its defaults, then the
 * plugin's conf_new (if any) on that. Its result, or -EINVAL with err. */
int shmringd__conf_new(const struct shmring_plugin *d, void *wstate, const msgpack_object *config,
                       void **conf, char *err, size_t errlen);
/* shmringd --check PLUGIN.so [CONFIG] (check.c): report on one plugin file
 * and, given, a JSON config for it; 0 if both are fine, else -1. */
int shmringd__check_plugin_file(const char *path, const char *config_json);
/* Check a descriptor as loading does: NULL if fine, else why not (static or
 * in buf). */
const char *shmringd__plugin_problem(const struct shmring_plugin *d, char *buf, size_t len);

/* ---- request views and reply builder (host_request.c, host_reply.c) ----- */

/* The reply under construction: msgpack in a private buffer, copied into
 * the CQ in one claim when finished. */
struct shmring_reply {
	uint8_t *buf;
	uint32_t cap;
	uint32_t len;
	uint32_t max;     /* the channel's max payload */
	uint32_t nact;    /* actions so far */
	uint32_t arr_off; /* offset of the array32 header of "a" */
	int failed;       /* an append did not fit */
	int error_set;    /* shmring_reply_error() was called */
	int exhausted;    /* shmring_reply_exhausted() was called */
	char error[512];
};

void shmringd__reply_begin(struct shmring_reply *r, uint32_t max_payload);
/* Finish: writes {s=0,a=[...]} or {s=1,e=...}; returns the payload length. */
uint32_t shmringd__reply_finish(struct shmring_reply *r, const char *fallback_error);
/* A complete reply with only a status and an optional error message. */
uint32_t shmringd__reply_status(struct shmring_reply *r, enum shmring_reply_status status,
                                const char *error);

/* Decode a snapshot map into the request view. 0, or -EBADMSG. */
int shmringd__request_decode(struct shmring_request *req, const msgpack_object *root);

/* NEED_ENTITIES: {s = 3, a = [[LOOKUP, kind, key], ...]} for n misses.
 * Returns the payload length. */
uint32_t shmringd__reply_need_entities(struct shmring_reply *r, const uint32_t *kinds,
                                       const struct shmring_str *keys, uint32_t n);

/* ---- entities from the gateway (host_entity.c): shmring_entity_get() ---- */

/* Per channel: what the gateway answered, at most max entries and
 * shmringd__entity_cache_bytes(max) bytes of heap (LRU). */
struct shmringd_entity_cache;
/* The heap a cache of max entries may take: what a channel's memory budget
 * charges for it before any config. An answer is a few hundred bytes; a
 * cache of larger ones holds fewer. */
#define SHMRINGD_ENTITY_ENTRY_BYTES 2048u
static inline uint64_t shmringd__entity_cache_bytes(uint32_t max)
{
	return (uint64_t)max * SHMRINGD_ENTITY_ENTRY_BYTES;
}
/* Bytes the allocator in use has handed out (the worker is single-threaded:
 * what an allocation took is the difference around it). */
size_t shmringd__heap_in_use(void);
struct shmringd_entity_cache *shmringd__entity_cache_new(uint32_t max);
void shmringd__entity_cache_free(struct shmringd_entity_cache *c);
void shmringd__entity_cache_clear(struct shmringd_entity_cache *c);
uint32_t shmringd__entity_cache_count(const struct shmringd_entity_cache *c);
/* Counters go to st (NULL: none); the entity_entries gauge starts at 0. */
void shmringd__entity_setup(struct shmringd_worker_stats *st);
/* Before a phase hook: look-ups go to c (the record's channel) and the
 * record's "entities" answers are cached. 0 or -EBADMSG. */
int shmringd__entity_begin(struct shmringd_entity_cache *c, const msgpack_object *root);
/* After the hook: the number of misses; if any, rep was rewritten as the
 * NEED_ENTITIES reply (the hook's actions are dropped). */
uint32_t shmringd__entity_end(struct shmring_reply *rep);
/* A FORGET record's payload: drop what it names. 0 or -EBADMSG. */
int shmringd__entity_forget(struct shmringd_entity_cache *c, const msgpack_object *root);

/* ---- shared regions (host_region.c): shmring_shared_region() ------------- */

#define SHMRINGD_REGION_PREFIX "plugin-"
/* Where this process maps plugin regions (a worker: its shm_dir and segment
 * mode; a test: a temp dir). Until called, shmring_shared_region() fails
 * with -ENOTSUP. */
void shmringd__shared_setup(const char *dir, mode_t mode);
/* Unlink every plugin-*.shm in dir (master: at start and graceful stop).
 * Processes that still map a region keep their mapping. */
void shmringd__shared_remove_all(const char *dir);

/* ---- log sinks (sink.c) ---------------------------------------------------- */

struct shmringd_sink_opts {
	uint32_t batch_bytes;
	uint32_t flush_ms;
	uint32_t max_bytes;
	struct shmring_event *wake; /* the worker's event: http sinks notify it */
};
/* Per worker: set up the io_uring. 0 or -errno. */
int shmringd__sinks_init(const struct shmringd_sink_opts *o, struct shmringd_worker_stats *st);
/* Reap completions, submit due batches, reconnect. now in ns. */
void shmringd__sinks_poll(uint64_t now);
/* ns until the next due flush or retry (INT64_MAX if none). */
int64_t shmringd__sinks_next_due(uint64_t now);
/* A sink has work since next_due was asked (an http socket is ready):
 * checked again after the worker announced its sleep. */
bool shmringd__sinks_woken(void);
/* Flush everything and wait for it (bounded by deadline_ns). */
void shmringd__sinks_drain(uint64_t deadline_ns);
void shmringd__sinks_fini(void);
/* Bytes of sink buffers the sinks opened so far share with another config
 * (allocated once, by the first): a config that shares a sink is charged
 * its buffers as if it had made them, since they live as long as it does. */
extern uint64_t shmringd__sinks_shared_bytes;

/* ---- worker (worker.c) ------------------------------------------------------ */

struct shmringd_worker_args {
	const struct shmringd_config *cfg;
	struct shmring_instance *inst;
	uint32_t slot;
	uint32_t nworkers;
	const int *bell_fds; /* listening doorbell socket per channel */
	struct shmringd_stats *stats;
	int sock_fd; /* >= 0: this is the socket worker (--socket), not a ring worker */
};
/* The worker process body; never returns. */
void shmringd__worker_main(const struct shmringd_worker_args *a) __attribute__((noreturn));
/* The same worker without a process of its own (the dispatch fuzz target):
 * open sets up what a worker of a->slot holds (crash accounting, parser,
 * sinks, plugins, channels) without signals, a master or a loop; serve runs
 * one pass over the channels (every waiting record dispatched and answered)
 * and returns how many records it served; close releases what open made and
 * what the records made (configs, entity caches), as a worker does at exit. */
void shmringd__worker_open(const struct shmringd_worker_args *a);
int shmringd__worker_serve(void);
void shmringd__worker_close(void);

/* ---- the socket transport (socket.c, --socket PATH) -------------------------- */

/* Pseudo channel index of socket records (stats, plugin requests). */
#define SHMRINGD_SOCKET_CHANNEL 0xfffffu

struct shmringd_sock_conn;
/* Listen on path (unlinked first; mode/owner like the segments). fd or -errno. */
int shmringd__socket_listen(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Frames (frame.c): a record header (16 bytes: u32 len, u16 type, u16 flags,
 * u64 req_id, little-endian) and len payload bytes. frames_take hands every
 * whole frame of in[0..*in_len) to fn in order (payload pointing into in,
 * valid during the call) and moves what is left (a partial frame) to the
 * front; 0, or -1 at a frame longer than max_payload (the connection must
 * end). frame_header writes a header for a payload of len bytes. */
#define SHMRINGD_FRAME_HDR 16
int shmringd__frames_take(uint8_t *in, uint32_t *in_len, uint32_t max_payload,
                          void (*fn)(void *arg, const struct shmring_rec *rec), void *arg);
void shmringd__frame_header(uint8_t *h, uint16_t type, uint64_t req_id, uint32_t len);
/* The socket worker's loop: accept, read frames, dispatch each, write the
 * replies; returns when the worker must stop. */
void shmringd__socket_serve(int listen_fd, uint32_t max_payload);
/* worker.c: dispatch one frame read from c (its replies go to c). */
int shmringd__sock_dispatch(struct shmringd_sock_conn *c, const struct shmring_rec *rec);
/* worker.c: one loop turn's housekeeping (sinks, watchdog stamp); returns
 * the longest wait in ms before the next turn, or -1 to stop. */
int shmringd__sock_tick(void);
/* Queue a reply frame on c. 0 or -ENOMEM. */
int shmringd__sock_reply(struct shmringd_sock_conn *c, uint64_t req_id, const uint8_t *buf,
                         uint32_t len);

#endif
