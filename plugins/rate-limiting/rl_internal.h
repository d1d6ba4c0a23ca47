/* SPDX-License-Identifier: MIT */
/* rate-limiting internals shared by rate_limiting.c (config, local
 * counting, headers) and rl_redis.c (policy = redis). */
#ifndef RL_INTERNAL_H
#define RL_INTERNAL_H

#include "rl_table.h"
#include "shmring_pc.h"
#include "shmring_plugin.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define PLUGIN "rate-limiting"
#define RL_NS 1000000000ull
/* The shared table: 2^16 buckets x 7 slots = 458752 counters, 8 MiB
 * (pages are touched as keys arrive). One counter per key and period. */
#define RL_REGION_NAME "rate-limiting-v2"
#define RL_NBUCKETS (1ull << 16)
/* Fixed-window counts are 32 bits. */
#define RL_MAX_LIMIT 4294967294ull

enum { RL_SECOND, RL_MINUTE, RL_HOUR, RL_DAY, RL_MONTH, RL_YEAR, RL_NPERIODS };
enum { RL_BY_CONSUMER, RL_BY_CREDENTIAL, RL_BY_IP, RL_BY_SERVICE, RL_BY_HEADER, RL_BY_PATH };

struct rl_redis_sync; /* rl_redis.c */

/* Per worker process (init). */
struct rl_worker {
	struct rl_table table;      /* view over the shared region */
	uint64_t last_warn_ns;      /* rate of the "cannot count" log line */
	uint64_t rng;               /* xorshift state: Retry-After jitter */
	struct rl_redis_sync *sync; /* policy = redis: the sync thread, lazily */
};

struct rl_period {
	int period;       /* RL_SECOND.. */
	uint64_t limit;   /* >= 1 */
	char h_limit[32]; /* X-RateLimit-Limit-<Period> */
	char h_remaining[40];
	size_t h_limit_len, h_remaining_len;
};

struct rl_calendar {
	uint64_t start, end; /* UTC seconds: the cached month / year */
};

struct rl_redis_conf {
	char *host;
	int port;
	char *username; /* NULL: none */
	char *password; /* NULL: none */
	int database;
	int timeout_ms;
	bool ssl;
	bool ssl_verify;
	char *server_name; /* NULL: none (no SNI, no name check) */
};

struct rl_conf {
	struct rl_worker *w;
	struct rl_period p[RL_NPERIODS]; /* set periods, shortest first */
	int np;
	int limit_by;
	char *header_name; /* limit_by = header */
	char *path;        /* limit_by = path */
	bool token_bucket;
	bool fault_tolerant;
	bool hide_client_headers;
	bool redis_policy;
	uint32_t error_code;
	uint32_t jitter_max; /* retry_after_jitter_max, seconds */
	char *body;          /* {"message":"..."} */
	size_t body_len;
	uint32_t sync_ms; /* redis: 0 = synchronous */
	uint64_t fingerprint;
	struct rl_calendar cal[2]; /* month, year */
	struct rl_redis_conf redis;
	void *redis_state; /* rl_redis.c, per conf */
};

/* One request's counter keys, one per configured period. */
struct rl_key_set {
	uint64_t key[RL_NPERIODS];
};

/* What counting decided. */
struct rl_outcome {
	int blocked;                     /* index of the refusing period, -1 = allowed */
	uint64_t remaining[RL_NPERIODS]; /* after this request */
	uint64_t reset_ns[RL_NPERIODS];  /* window end / bucket full; on a block: next pass */
	/* for policy = redis: where it was counted, to read or give back */
	struct rl_slot *slot[RL_NPERIODS];
	uint64_t undo[RL_NPERIODS];
	uint64_t window_end[RL_NPERIODS];
};

/* The plugin's clock: CLOCK_REALTIME (windows follow UTC), or the value a
 * test set through shmring_rl_test_set_clock(). */
extern uint64_t rl_fake_now_ns;
static inline uint64_t rl_now_ns(void)
{
	uint64_t f = __atomic_load_n(&rl_fake_now_ns, __ATOMIC_RELAXED);
	if (f)
		return f;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * RL_NS + (uint64_t)ts.tv_nsec;
}

void rl_limit_of(struct rl_conf *c, int i, uint64_t now_ns, struct rl_limit *l);
uint64_t rl_key(const struct rl_conf *c, int i, struct shmring_str route,
                struct shmring_str service, struct shmring_str id);
void rl_keys(const struct rl_conf *c, const struct shmring_request *req, struct rl_key_set *ks);
/* Count one request in the shared table: 0 (o says allowed or which period
 * refused), -ENOSPC (table full for a key), -EBUSY (a bucket lock stuck),
 * -EAGAIN (contention). others: per period, what other hosts counted in
 * this window (NULL: none). */
int rl_count(struct rl_conf *c, const struct rl_key_set *ks, uint64_t now_ns,
             const uint64_t *others, struct rl_outcome *o);

/* ---- policy = redis (rl_redis.c) ------------------------------------------------- */

int rl_redis_conf_new(struct rl_conf *c, char *err, size_t errlen);
void rl_redis_conf_free(struct rl_conf *c);
void rl_redis_worker_fini(struct rl_worker *w);
/* Like rl_count, plus the other hosts' counts; -EHOSTUNREACH when Redis is
 * needed and down and the config is not fault-tolerant. */
int rl_redis_count(struct rl_conf *c, const struct rl_key_set *ks, uint64_t now_ns,
                   struct rl_outcome *o);
/* Why Redis was last unreachable for c ("" if it never was), into buf. */
void rl_redis_why(const struct rl_conf *c, char *buf, size_t len);

#endif
