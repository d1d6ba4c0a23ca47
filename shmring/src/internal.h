/* SPDX-License-Identifier: MIT */
/* Private to libshmring: the shared-memory structs behind the layout that
 * shmring.h documents, and the process-private views over them. */
#ifndef SHMRING_INTERNAL_H
#define SHMRING_INTERNAL_H

#include "shmring/shmring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <limits.h>

#define CACHELINE 64
#define HDR_BYTES 4096u /* channel/ctl header area, before the ring data */

/* One ring's two positions, each on its own line (tail: producer, head:
 * consumer). */
struct shmring__ring_pos {
	alignas(CACHELINE) _Atomic uint64_t tail; /* producer: bytes ever published */
	uint8_t pad0_[CACHELINE - 8];
	alignas(CACHELINE) _Atomic uint64_t head; /* consumer: bytes ever released */
	uint8_t pad1_[CACHELINE - 8];
};

/* The channel header, lines 0..9 of the layout in shmring.h. */
struct shmring__chan_hdr {
	/* line 0: written once by the server before the file is renamed into
	 * place, read-only afterwards */
	alignas(CACHELINE) uint64_t magic;
	uint32_t abi;
	uint32_t index;
	uint32_t sq_size;
	uint32_t cq_size;
	uint32_t sq_off;
	uint32_t cq_off;
	uint64_t epoch;
	uint64_t seg_size;
	/* line 1: master */
	alignas(CACHELINE) _Atomic uint64_t heartbeat;
	_Atomic uint32_t closed;
	_Atomic uint32_t server_slot; /* < SHMRING_MAX_WORKERS once checked */
	/* line 2: client, by CAS */
	alignas(CACHELINE) _Atomic uint64_t owner;
	/* lines 3-6 */
	struct shmring__ring_pos sq;
	struct shmring__ring_pos cq;
	/* line 7: doorbell armed flag (client stores 1, server exchanges 0) */
	alignas(CACHELINE) _Atomic uint32_t cq_armed;
	/* lines 8-9 */
	alignas(CACHELINE) struct shmring_chan_counters client;
	alignas(CACHELINE) struct shmring_chan_counters server;
};

struct shmring__worker_block {
	struct shmring_event event; /* line: producers notify, the worker waits */
	alignas(CACHELINE) struct shmring_worker_counters counters;
};

struct shmring__ctl_hdr {
	alignas(CACHELINE) uint64_t magic; /* written once at create */
	uint32_t abi;
	uint32_t nchannels;
	uint64_t epoch;
	uint64_t master_pid;
	uint32_t sq_size;
	uint32_t cq_size;
	alignas(CACHELINE) _Atomic uint64_t heartbeat; /* master */
	_Atomic uint32_t closed;                       /* master */
	_Atomic uint32_t nworkers;                     /* master; <= SHMRING_MAX_WORKERS */
	alignas(CACHELINE) struct shmring__worker_block workers[SHMRING_MAX_WORKERS];
};

/* Every row of the layout tables in shmring.h, enforced: line and byte. */
#define LAYOUT(type, field, line, byte)                                                            \
	_Static_assert(offsetof(struct type, field) == (line)*CACHELINE + (byte),                  \
	               #type "." #field " is where shmring.h says")
LAYOUT(shmring__chan_hdr, magic, 0, 0);
LAYOUT(shmring__chan_hdr, abi, 0, 8);
LAYOUT(shmring__chan_hdr, index, 0, 12);
LAYOUT(shmring__chan_hdr, sq_size, 0, 16);
LAYOUT(shmring__chan_hdr, cq_size, 0, 20);
LAYOUT(shmring__chan_hdr, sq_off, 0, 24);
LAYOUT(shmring__chan_hdr, cq_off, 0, 28);
LAYOUT(shmring__chan_hdr, epoch, 0, 32);
LAYOUT(shmring__chan_hdr, seg_size, 0, 40);
LAYOUT(shmring__chan_hdr, heartbeat, 1, 0);
LAYOUT(shmring__chan_hdr, closed, 1, 8);
LAYOUT(shmring__chan_hdr, server_slot, 1, 12);
LAYOUT(shmring__chan_hdr, owner, 2, 0);
LAYOUT(shmring__chan_hdr, sq.tail, 3, 0);
LAYOUT(shmring__chan_hdr, sq.head, 4, 0);
LAYOUT(shmring__chan_hdr, cq.tail, 5, 0);
LAYOUT(shmring__chan_hdr, cq.head, 6, 0);
LAYOUT(shmring__chan_hdr, cq_armed, 7, 0);
LAYOUT(shmring__chan_hdr, client, 8, 0);
LAYOUT(shmring__chan_hdr, server, 9, 0);
_Static_assert(sizeof(struct shmring__chan_hdr) == 10 * CACHELINE, "channel header: lines 0-9");
_Static_assert(sizeof(struct shmring__chan_hdr) <= HDR_BYTES, "channel header fits");

LAYOUT(shmring__ctl_hdr, magic, 0, 0);
LAYOUT(shmring__ctl_hdr, abi, 0, 8);
LAYOUT(shmring__ctl_hdr, nchannels, 0, 12);
LAYOUT(shmring__ctl_hdr, epoch, 0, 16);
LAYOUT(shmring__ctl_hdr, master_pid, 0, 24);
LAYOUT(shmring__ctl_hdr, sq_size, 0, 32);
LAYOUT(shmring__ctl_hdr, cq_size, 0, 36);
LAYOUT(shmring__ctl_hdr, heartbeat, 1, 0);
LAYOUT(shmring__ctl_hdr, closed, 1, 8);
LAYOUT(shmring__ctl_hdr, nworkers, 1, 12);
LAYOUT(shmring__ctl_hdr, workers[0].event, 2, 0);
LAYOUT(shmring__ctl_hdr, workers[0].counters, 3, 0);
LAYOUT(shmring__ctl_hdr, workers[1].event, 4, 0);
_Static_assert(sizeof(struct shmring__ctl_hdr) == (2 + 2 * SHMRING_MAX_WORKERS) * CACHELINE,
               "control segment: 2 lines, then 2 per worker");
#undef LAYOUT

_Static_assert(sizeof(struct shmring_event) == CACHELINE, "event is one line");
_Static_assert(sizeof(struct shmring_chan_counters) == CACHELINE, "counters are one line");
_Static_assert(sizeof(struct shmring_worker_counters) == CACHELINE, "counters are one line");

/* One direction of a channel as one process sees it. All geometry is a
 * private copy made at open and never re-read from shared memory. */
struct shmring__ring {
	uint8_t *data;
	_Atomic uint64_t *tail_p; /* shared */
	_Atomic uint64_t *head_p; /* shared */
	uint32_t size;
	uint32_t mask;
	uint32_t max_payload;
	/* producer side */
	uint64_t tail;       /* committed, maybe unpublished */
	uint64_t head_cache; /* last head read from the consumer */
	uint64_t claim_pos;  /* position of the open claim's header, if any */
	uint32_t claim_cap;
	bool claim_open;
	uint64_t pend_records; /* committed since the last publish, not yet counted */
	uint64_t pend_bytes;
	/* consumer side */
	uint64_t head;          /* read past, maybe unreleased */
	uint64_t tail_cache;    /* last tail read from the producer */
	uint64_t pend_consumed; /* peeked since the last release, not yet counted */
};

struct shmring_instance {
	char dir[PATH_MAX - 32];
	int dirfd;   /* dir, opened once: every segment is opened relative to it */
	uid_t owner; /* dir's owner, who must own every segment in it */
	struct shmring__ctl_hdr *ctl;
	uint8_t ctl_line0[CACHELINE]; /* private copy of ctl's read-only line */
	uint32_t nworkers;            /* server: the last shmring_instance_set_workers() */
	size_t ctl_size;
	uint64_t epoch;     /* private copy */
	uint32_t nchannels; /* private copy */
	bool server;
	/* server (master) only: every channel's header, mapped once at create
	 * so the 100 ms heartbeat touches memory, not the file system */
	struct shmring__chan_hdr **hdrs;
};

struct shmring_chan {
	struct shmring_instance *inst;
	struct shmring__chan_hdr *hdr;
	size_t map_size;
	uint32_t index;
	uint64_t epoch;
	enum shmring_role role;
	struct shmring__ring out; /* client: SQ, server: CQ */
	struct shmring__ring in;  /* client: CQ, server: SQ */
	struct shmring_chan_counters *mine;
	bool broken;    /* the consumer ring was found corrupt */
	uint64_t owner; /* client: the owner word we hold, 0 if none */
};

/* shmring_chan_is_closed() without the call: claim checks it every time. */
static inline bool shmring__chan_closed(const struct shmring_chan *c)
{
	return atomic_load_explicit(&c->hdr->closed, memory_order_acquire) ||
	       atomic_load_explicit(&c->inst->ctl->closed, memory_order_acquire);
}

int shmring__read_starttime(pid_t pid, uint64_t *out);

/* Segment mappings, guarded against truncation (guard.c): map_segment is
 * mmap(MAP_SHARED) plus the guard, unmap_segment the reverse; remap maps fd
 * again at the same address (after a truncation made it private zeros). */
void *shmring__map_segment(int fd, size_t len);
int shmring__remap_segment(void *at, int fd, size_t len);
void shmring__unmap_segment(void *m, size_t len);

#endif
