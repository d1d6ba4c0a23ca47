/* SPDX-License-Identifier: MIT */
/*
 * libshmring: shared-memory channels between gateway workers and shmringd.
 *
 * An *instance* is a directory (default /dev/shm/shmring/<name>/) holding one
 * control segment ("ctl") and N channel segments ("ch-0" .. "ch-<N-1>"), all
 * created by the server (shmringd's master). A *channel* carries two
 * single-producer single-consumer byte rings:
 *
 *   SQ  client (nginx worker) -> server (shmringd worker)
 *   CQ  server -> client
 *
 * Every function here returns an int: 0 (or a count) on success, a named
 * positive result for the expected "nothing to do" outcomes (SHMRING_FULL,
 * SHMRING_EMPTY), and -errno on failure. Out-parameters are written on every
 * return path. Nothing here is `static inline`, so LuaJIT's FFI can call all
 * of it (see lua/shmring/).
 *
 * ---------------------------------------------------------------------------
 * Channel segment layout (file "ch-<k>", little-endian, one 64-byte cache
 * line per row; "writer" says which process may store to the line):
 *
 *  line  field                     writer  notes
 *  0     magic      u64            server  SHMRING_MAGIC_CHAN
 *        abi        u32            server  SHMRING_ABI_VERSION
 *        index      u32            server  k
 *        sq_size    u32            server  power of two, >= 4096
 *        cq_size    u32            server  power of two, >= 4096
 *        sq_off     u32            server  byte offset of SQ data
 *        cq_off     u32            server  byte offset of CQ data
 *        epoch      u64            server  random, non-zero, new per create
 *        seg_size   u64            server  total file size
 *  1     heartbeat  u64            master  CLOCK_MONOTONIC ns of last beat
 *        closed     u32            master  1 after a graceful stop
 *        server_slot u32           master  worker that serves this channel
 *  2     owner      u64            client  (starttime << 22) | pid, CAS'd; 0 = free
 *  3     sq.tail    u64            client  free-running byte position
 *  4     sq.head    u64            server
 *  5     cq.tail    u64            server
 *  6     cq.head    u64            client
 *  7     cq.armed   u32            both    client sets 1, server exchanges to 0
 *  8     client counters           client  struct shmring_chan_counters
 *  9     server counters           server  struct shmring_chan_counters
 *  ...   (header padded to 4096 bytes)
 *  SQ data (sq_size bytes), then CQ data (cq_size bytes)
 *
 * Records in a ring are 8-byte aligned:
 *
 *   u32 len     payload bytes (not counting this 16-byte header)
 *   u16 type    SHMRING_REC_* (0 = padding)
 *   u16 flags   free for the protocol
 *   u64 req_id  chosen by the producer, echoed in replies
 *   payload, zero-padded to a multiple of 8
 *
 * A padding record is only its first 8 bytes: type 0, len = the number of
 * bytes from its start to the end of the ring. It stands where the next
 * record would not fit before the end, never at offset 0. Positions are
 * 64-bit and free-running; a ring holds at most its size in unread bytes.
 *
 * Control segment layout (file "ctl", same conventions):
 *
 *  line  field                     writer  notes
 *  0     magic      u64            master  SHMRING_MAGIC_CTL
 *        abi        u32            master  SHMRING_ABI_VERSION
 *        nchannels  u32            master
 *        epoch      u64            master  the channels' epoch
 *        master_pid u64            master
 *        sq_size    u32            master  every channel's SQ size
 *        cq_size    u32            master  every channel's CQ size
 *  1     heartbeat  u64            master  CLOCK_MONOTONIC ns of last beat
 *        closed     u32            master  1 after a graceful stop
 *        nworkers   u32            master  workers serving, <= SHMRING_MAX_WORKERS
 *  2+2w  worker w's wake event     both    struct shmring_event: clients
 *                                          notify, worker w waits
 *  3+2w  worker w's counters       worker  struct shmring_worker_counters
 *                                          (restarts: master)
 *  ...   for w in 0 .. SHMRING_MAX_WORKERS - 1
 *
 * Both tables are enforced field by field with _Static_assert(offsetof())
 * next to the structs (src/internal.h).
 * ---------------------------------------------------------------------------
 */
#ifndef SHMRING_SHMRING_H
#define SHMRING_SHMRING_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "shmring/protocol.h" /* record types */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHMRING_BUILDING)
#define SHMRING_API __attribute__((visibility("default")))
#else
#define SHMRING_API
#endif

#define SHMRING_ABI_VERSION 1u
#define SHMRING_MAGIC_CHAN 0x314e414843524d53ull /* "SMRCHAN1" */
#define SHMRING_MAGIC_CTL 0x314c544352524d53ull  /* "SMRRCTL1" */
#define SHMRING_MAX_WORKERS 64u
#define SHMRING_MAX_CHANNELS 1024u
#define SHMRING_MIN_RING 4096u
#define SHMRING_MAX_RING (1u << 30)
#define SHMRING_REC_HDR 16u
#define SHMRING_DEFAULT_RING (1u << 20)
#define SHMRING_DEFAULT_MODE 0660

/* Named results: expected outcomes that are not errors. */
enum shmring_result {
	SHMRING_OK = 0,
	SHMRING_FULL = 1,  /* not enough free space in the ring; try later */
	SHMRING_EMPTY = 2, /* nothing to read */
};

/* Per-channel counters; the client and the server each own one copy on its
 * own cache line, so neither side writes a line the other writes. Fields a
 * side does not use stay 0. records/bytes are added at shmring_publish()
 * and consumed at shmring_release(), once per batch, so they count what was
 * made visible and given back. */
struct shmring_chan_counters {
	uint64_t records;  /* records produced (client: SQ, server: CQ) */
	uint64_t bytes;    /* payload bytes produced */
	uint64_t consumed; /* records consumed (client: CQ, server: SQ) */
	uint64_t full;     /* claims refused with SHMRING_FULL */
	uint64_t wakeups;  /* futex wakes / doorbells this side sent */
	uint64_t corrupt;  /* corrupt headers or positions seen as consumer */
	uint64_t errors;   /* other failures (protocol, deadline, ...) */
	uint64_t spare;
};

/* Per-worker counters in the control segment, written by that worker. */
struct shmring_worker_counters {
	uint64_t pid;      /* current worker pid, 0 if none */
	uint64_t records;  /* records dispatched */
	uint64_t sleeps;   /* futex sleeps */
	uint64_t wakeups;  /* futex sleeps that ended by a wake */
	uint64_t errors;   /* malformed records and plugin errors */
	uint64_t restarts; /* written by the master */
	uint64_t spare[2]; /* zero: room to grow within the line */
};

/* A wait/notify pair ("eventcount") living in shared memory: seq is the futex
 * word, waiters says a consumer is about to sleep. Sixty-four bytes. */
struct shmring_event {
	uint32_t seq;
	uint32_t waiters;
	uint8_t pad_[56];
};

struct shmring_instance; /* mapped control segment + instance directory */
struct shmring_chan;     /* one channel, as seen by one side */

/* A record read from a ring: points into shared memory, valid until the
 * consumer releases it. len and type were read once and checked. */
struct shmring_rec {
	const uint8_t *payload;
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint64_t req_id;
};

/* A claimed, not yet committed, record in a producer's ring. */
struct shmring_claim {
	uint8_t *payload; /* write up to cap bytes here */
	uint32_t cap;     /* the len passed to shmring_claim() */
};

struct shmring_create_opts {
	const char *dir;    /* instance directory; created if missing */
	uint32_t nchannels; /* 1 .. SHMRING_MAX_CHANNELS */
	uint32_t nworkers;  /* 1 .. SHMRING_MAX_WORKERS */
	uint32_t sq_size;   /* power of two; 0 = SHMRING_DEFAULT_RING */
	uint32_t cq_size;   /* power of two; 0 = SHMRING_DEFAULT_RING */
	mode_t mode;        /* file mode; 0 = SHMRING_DEFAULT_MODE */
	uid_t uid;          /* owner to chown to; (uid_t)-1 = keep */
	gid_t gid;          /* group to chown to; (gid_t)-1 = keep */
};

enum shmring_role { SHMRING_CLIENT = 1, SHMRING_SERVER = 2 };

/* ---- instance -------------------------------------------------------- */

/* Create (or re-create) every segment of an instance with a new epoch.
 * Existing segment files are replaced, so clients still mapping them see
 * "closed" and re-attach. The caller owns *out; free with
 * shmring_instance_close(). */
SHMRING_API int shmring_instance_create(const struct shmring_create_opts *o,
                                        struct shmring_instance **out);
/* Create o->dir and its missing parents, giving the last one the owner
 * shmring_instance_create() gives it and a mode no one but its owner may
 * write to (group/other may search it where they may use the segments).
 * Every parent must belong to root or to the daemon (the caller, or o->uid)
 * and be writable by no one else unless sticky; an existing o->dir must
 * already be the caller's or o->uid's. shmring_instance_create() calls it; a
 * server calls it first, before dropping root, to lock the directory. Only
 * dir, mode, uid and gid are read. An O_DIRECTORY fd of o->dir that the
 * caller closes, or -EINVAL, -ENAMETOOLONG (a name an instance cannot hold;
 * nothing is created), -EPERM (a directory someone else could replace),
 * -ELOOP (o->dir is a symlink), -errno. */
SHMRING_API int shmring_instance_mkdir(const struct shmring_create_opts *o);
/* Map the control segment of an existing instance (client or worker),
 * trusting it only if dir belongs to root or to owner (a uid; -1 = the
 * caller's effective uid), no one else may write to dir, and ctl is a
 * regular file of dir's owner (opened with O_NOFOLLOW, as every channel
 * later). The caller owns *out. -ENOENT if no daemon created it, -EPERM if
 * someone else owns it, -EPROTO if the file is not a shmring control
 * segment of this ABI. */
SHMRING_API int shmring_instance_attach_owned(const char *dir, int64_t owner,
                                              struct shmring_instance **out);
/* shmring_instance_attach_owned(dir, -1, out): a daemon of the same user. */
SHMRING_API int shmring_instance_attach(const char *dir, struct shmring_instance **out);
/* The uid of a user name (or of a decimal uid), for the owner argument
 * above; -ENOENT if there is no such user. May ask NSS: call it once at
 * start-up, not per attach. */
SHMRING_API int64_t shmring_user_uid(const char *name);
/* Unmap; with unlink != 0 (server only) remove the segment files too. */
SHMRING_API void shmring_instance_close(struct shmring_instance *inst, int unlink_files);
/* Server side (the daemon, which owns the files), when ctl was truncated
 * (our mapping may then read private zeros) or its read-only line
 * overwritten: map the file again at the same address (pointers into it
 * stay valid) and, with restore (the master, one process, so that one log
 * line says it), first give it back its size and then write the line back
 * from the private copy taken at attach. 0 = intact, 1 = repaired,
 * -EAGAIN (restore == 0: not restored yet), -errno. Cheap when intact (two
 * loads): the master calls it every beat, the workers every turn. */
SHMRING_API int shmring_instance_repair(struct shmring_instance *inst, int restore);
/* SIGBUS faults the library turned into private zero pages (a segment was
 * truncated under a mapping; see "Security model" in docs/daemon.md). */
SHMRING_API uint64_t shmring_sigbus_caught(void);

SHMRING_API uint32_t shmring_instance_nchannels(const struct shmring_instance *inst);
SHMRING_API uint32_t shmring_instance_nworkers(const struct shmring_instance *inst);
SHMRING_API uint64_t shmring_instance_epoch(const struct shmring_instance *inst);
/* Master side (an instance from shmring_instance_create()): store a
 * heartbeat (now, CLOCK_MONOTONIC) in ctl and every channel. Touches only
 * memory: the channel headers stay mapped for the instance's life. */
SHMRING_API void shmring_instance_beat(struct shmring_instance *inst);
/* Master side: set the closed flag in ctl and every channel. */
SHMRING_API void shmring_instance_set_closed(struct shmring_instance *inst);
/* Master side: set the number of workers and the worker serving each channel
 * (k mod nworkers). */
SHMRING_API int shmring_instance_set_workers(struct shmring_instance *inst, uint32_t nworkers);
/* Nanoseconds since the last heartbeat, or -ESTALE if the segment was closed
 * or replaced (epoch of the file differs from ours). */
SHMRING_API int64_t shmring_instance_heartbeat_age_ns(const struct shmring_instance *inst);

SHMRING_API struct shmring_event *shmring_instance_worker_event(struct shmring_instance *inst,
                                                                uint32_t worker);
SHMRING_API struct shmring_worker_counters *
shmring_instance_worker_counters(struct shmring_instance *inst, uint32_t worker);

/* ---- channels -------------------------------------------------------- */

/* Map channel k in the given role. The geometry is copied and checked once;
 * the epoch must match the instance's. Caller owns *out. */
SHMRING_API int shmring_chan_open(struct shmring_instance *inst, uint32_t index,
                                  enum shmring_role role, struct shmring_chan **out);
/* Client: find a free channel (or one whose owner died), take it with a
 * compare-and-swap of the owner word, and map it. Returns -EBUSY if every
 * channel is held by a live process. */
SHMRING_API int shmring_chan_claim(struct shmring_instance *inst, struct shmring_chan **out);
/* Client: give the claim back (owner word -> 0 if still ours) and unmap. */
SHMRING_API void shmring_chan_release(struct shmring_chan *c);
/* Unmap without touching the owner word (server, or client after fork). */
SHMRING_API void shmring_chan_close(struct shmring_chan *c);

SHMRING_API uint32_t shmring_chan_index(const struct shmring_chan *c);
SHMRING_API uint64_t shmring_chan_epoch(const struct shmring_chan *c);
/* 1 if the server closed the channel or re-created the instance (the
 * segment's epoch is no longer ours), else 0. */
SHMRING_API int shmring_chan_is_closed(const struct shmring_chan *c);
/* 0 if the segment's read-only line is still what shmring_chan_open() found
 * (magic, epoch, index); -EPROTO if the segment was truncated (the mapping
 * now reads zeros) or overwritten: the channel is corrupt for good. */
SHMRING_API int shmring_chan_check(const struct shmring_chan *c);
/* Current owner word (0 = free). */
SHMRING_API uint64_t shmring_chan_owner(const struct shmring_chan *c);
/* The owner word this process would write. */
SHMRING_API uint64_t shmring_self_owner(void);
/* 1 if the process named by an owner word is alive (pid exists with the same
 * start time), 0 if not. */
SHMRING_API int shmring_owner_alive(uint64_t owner);
SHMRING_API const struct shmring_chan_counters *shmring_chan_counters(const struct shmring_chan *c,
                                                                      enum shmring_role side);
/* This side's own counters (writable). */
SHMRING_API struct shmring_chan_counters *shmring_chan_my_counters(struct shmring_chan *c);
/* Max payload a record of this channel's producer ring may carry. */
SHMRING_API uint32_t shmring_chan_max_payload(const struct shmring_chan *c);

/* ---- producing (client: SQ, server: CQ) ------------------------------ */

/* Reserve room for a record with up to len payload bytes. On 0, write the
 * payload at claim->payload and finish with shmring_commit(). SHMRING_FULL
 * if there is no room now (counted); -EMSGSIZE if len can never fit;
 * -EPROTO if the consumer's position is corrupt; -EPIPE if closed. Only one
 * claim may be open at a time. */
SHMRING_API int shmring_claim(struct shmring_chan *c, uint32_t len, struct shmring_claim *claim);
/* Finish the open claim with len <= claim->cap payload bytes. The record is
 * visible to the consumer after the next shmring_publish(). */
SHMRING_API int shmring_commit(struct shmring_chan *c, struct shmring_claim *claim, uint32_t len,
                               uint16_t type, uint16_t flags, uint64_t req_id);
/* Drop the open claim. */
SHMRING_API void shmring_abort(struct shmring_chan *c, struct shmring_claim *claim);
/* Make every committed record visible (one release store) and wake the
 * consumer if it is asleep (client) or ring its doorbell if armed (server:
 * returns 1 when the caller must ring the doorbell, else 0). */
SHMRING_API int shmring_publish(struct shmring_chan *c);
/* Claim + copy + commit in one call (convenience, one copy). */
SHMRING_API int shmring_send(struct shmring_chan *c, uint16_t type, uint64_t req_id,
                             const void *payload, uint32_t len);
/* Bytes of free space in the producer ring (as of the last head refresh). */
SHMRING_API uint32_t shmring_space(struct shmring_chan *c);

/* ---- consuming (client: CQ, server: SQ) ------------------------------ */

/* Read the next record into *rec without consuming it from the producer's
 * point of view. 0 on success, SHMRING_EMPTY, or -EPROTO if the ring is
 * corrupt (counted; the channel then stays broken until reopened). Each
 * call moves past the returned record; call shmring_release() to give the
 * space back (once per batch). */
SHMRING_API int shmring_peek(struct shmring_chan *c, struct shmring_rec *rec);
/* Give back the space of every record read so far (one release store). */
SHMRING_API void shmring_release(struct shmring_chan *c);
/* 1 if a record is ready to read, else 0 (or -EPROTO). */
SHMRING_API int shmring_ready(struct shmring_chan *c);

/* ---- wakeups --------------------------------------------------------- */

/* Consumer (server worker): announce that it is about to sleep; returns the
 * key to pass to shmring_event_wait(). The caller must re-check its rings
 * after this and before waiting. */
SHMRING_API uint32_t shmring_event_prepare(struct shmring_event *ev);
/* Sleep until notified or timeout_ns passes (<0: no timeout). Returns 0 when
 * woken (or the event moved on before sleeping), -ETIMEDOUT, -EINTR. */
SHMRING_API int shmring_event_wait(struct shmring_event *ev, uint32_t key, int64_t timeout_ns);
/* Consumer: the sleep is over (called also when it decided not to sleep). */
SHMRING_API void shmring_event_cancel(struct shmring_event *ev);
/* Producer: wake the consumer if, and only if, it announced a sleep. Returns 1
 * if a wake was sent. */
SHMRING_API int shmring_event_notify(struct shmring_event *ev);

/* Client: arm the CQ doorbell (ask the server to ring it on its next
 * publish). Returns 1 if replies are already waiting (nothing armed is
 * needed, the flag is cleared again), else 0. */
SHMRING_API int shmring_doorbell_arm(struct shmring_chan *c);
/* Client: disarm. */
SHMRING_API void shmring_doorbell_disarm(struct shmring_chan *c);

/* Path of the doorbell socket for channel k (a Unix stream socket the server
 * listens on) written into buf. Returns the length or -ENAMETOOLONG. */
SHMRING_API int shmring_doorbell_path(const struct shmring_instance *inst, uint32_t index,
                                      char *buf, size_t len);

/* ---- misc ------------------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds. */
SHMRING_API uint64_t shmring_now_ns(void);
/* Static description of a -errno or named result. */
SHMRING_API const char *shmring_strerror(int rc);

#ifdef __cplusplus
}
#endif
#endif
