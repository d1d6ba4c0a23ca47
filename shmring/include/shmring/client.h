/* SPDX-License-Identifier: MIT */
/*
 * Client-side helpers for the gateway (lua/shmring/client.lua calls them
 * through LuaJIT's FFI). They exist so that Lua never walks msgpack and
 * never needs more than one FFI call per step:
 *
 *   - shmring_client_begin/_end: claim a record in the SQ with a msgpack
 *     writer over it, then finish + commit + publish in one call;
 *   - shmring_client_decode_reply: a REPLY payload (docs/protocol.md) as a
 *     flat array of actions whose strings point into the caller's buffer,
 *     read in one walk over its bytes (no object tree, no allocation once
 *     the action array has grown to the largest reply seen);
 *   - shmring_client_health: "is the daemon there" without waiting;
 *   - shmring_client_put_pairs: every request header or query arg written
 *     into the snapshot straight from OpenResty's own array, no Lua table;
 *   - shmring_client_clock/_applied: the gateway round trip of a request,
 *     as Lua numbers (no boxed 64-bit cdata on the hot path).
 *
 * USDT probes (sys/sdt.h, provider "shmring"; perf list 'sdt_shmring:*' on
 * the library), so perf can time the gateway side without LuaJIT symbols:
 *   submit      (channel, record type, req_id, payload length): a record
 *               committed to the SQ, in shmring_client_end();
 *   reply_seen  (status, actions, payload length): a REPLY decoded, right
 *               before the gateway applies it;
 *   applied     (round trip ns): the reply's actions applied, from
 *               shmring_client_applied().
 *
 * All functions are plain exported symbols (no static inline). Nothing here
 * keeps a pointer to the caller's buffers past the call, except the decoded
 * reply, whose strings and maps point into the buffer given to
 * shmring_client_decode_reply() and into the decoder: both must outlive the
 * use of the reply.
 */
#ifndef SHMRING_CLIENT_H
#define SHMRING_CLIENT_H

#include "shmring/shmring.h"
#include "shmring/mp.h"
#include "shmring/protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A string inside the decoded buffer (not NUL-terminated). ptr is NULL when
 * the argument is absent. */
struct shmring_client_str {
	const char *ptr;
	uint32_t len;
};

/* One action, arguments sorted by kind in the order they appear: the first
 * integer goes to num, the first two strings (or binaries) to a and b, the
 * first map to map. That covers every op of the protocol:
 *   SET/ADD_*_HEADER  a = name, b = value      CLEAR_REQ_HEADER a = name
 *   SET_PATH/QUERY/METHOD a                    EXIT num = status, a = body, map = headers
 *   SET_CTX a = key, b = value                 AUTHENTICATE map = consumer, a = credential
 *   LOG num = level, a = message */
struct shmring_client_action {
	uint32_t op;   /* enum shmring_action_op (shmring/protocol.h) */
	int32_t num;   /* first integer argument, 0 if none */
	uint32_t nstr; /* how many of a, b are set */
	uint32_t pad_;
	struct shmring_client_str a;
	struct shmring_client_str b;
	const void *map; /* opaque (the map's bytes, in place), read with shmring_client_map_*;
	                    NULL if none */
};

/* A decoded reply. Every action of the payload is here: there is no fixed
 * limit (the record size bounds a reply), so a reply is applied whole. */
struct shmring_client_reply {
	int32_t status;                        /* "s"; -1 if absent */
	uint32_t nactions;                     /* entries in actions[] */
	struct shmring_client_str error;       /* "e" */
	struct shmring_client_action *actions; /* nactions entries, owned by the decoder */
};

/* A reusable decoder (one reply and its action array). Caller owns *out; free with
 * shmring_client_decoder_free(). */
struct shmring_client_decoder;
SHMRING_API int shmring_client_decoder_new(struct shmring_client_decoder **out);
SHMRING_API void shmring_client_decoder_free(struct shmring_client_decoder *d);

/* Decode a REPLY payload. *out points into the decoder and stays valid until
 * the next call on this decoder; its strings point into buf. A reply is taken
 * whole or refused: -EBADMSG (then *out is NULL) if the payload is not a reply
 * map, or if any action is malformed: not a non-empty array, an op this
 * library does not know, an argument missing or of a kind the op does not
 * take. -ENOMEM if the action array cannot grow. */
SHMRING_API int shmring_client_decode_reply(struct shmring_client_decoder *d, const void *buf,
                                            uint32_t len, struct shmring_client_reply **out);

/* Entries of an action's map (0 if map is NULL). The map is the decoder's:
 * valid until its next decode, read in place in the reply's buffer. */
SHMRING_API uint32_t shmring_client_map_len(const void *map);
/* Entry i of a map: key and value as strings (numbers and booleans are not
 * converted). 0, or -ENOENT past the end, -EBADMSG if the key or value is
 * not a string (both outputs are then zeroed). Entries read in order (0, 1,
 * 2...) cost one walk over the map's bytes in all. */
SHMRING_API int shmring_client_map_str(const void *map, uint32_t i, struct shmring_client_str *key,
                                       struct shmring_client_str *val);

/* A record being written: the claim and the msgpack writer over it. */
struct shmring_client_msg {
	struct shmring_claim claim;
	struct shmring_mpw w;
};

/* Claim room for a record of up to cap payload bytes in the SQ and point
 * m->w at it. Results as shmring_claim(): 0, SHMRING_FULL, -errno. */
SHMRING_API int shmring_client_begin(struct shmring_chan *c, uint32_t cap,
                                     struct shmring_client_msg *m);
/* Finish the writer, commit the record and, if publish != 0, publish the
 * SQ (which wakes the serving worker if it sleeps). Returns the payload
 * length, or -EMSGSIZE if the writer overflowed cap (the claim is then
 * dropped and nothing becomes visible), or -errno. */
SHMRING_API int shmring_client_end(struct shmring_chan *c, struct shmring_client_msg *m,
                                   uint16_t type, uint64_t req_id, int publish);

/* 1 if the daemon worker serving c is awake (it has not announced a sleep
 * on its futex), else 0. A record published now is read without a wake. */
SHMRING_API int shmring_client_server_awake(struct shmring_chan *c);

/* Busy-wait for a record in the CQ, at most max_ns, and only while the
 * serving worker stays awake: a sleeping worker answers after a futex wake
 * (tens of microseconds), which is the semaphore's job, not a spin's.
 * Returns the nanoseconds waited (>= 1) once a record is ready, 0 if none
 * came (time up or the worker went to sleep), or -EPROTO. */
SHMRING_API int64_t shmring_client_spin(struct shmring_chan *c, uint64_t max_ns);

/* Daemon health as the client sees it, without waiting: 0 if alive;
 * -ESTALE if the daemon closed the instance or re-created it (the client
 * must re-attach and re-claim); -ETIMEDOUT if the heartbeat is older than
 * max_age_ns (the daemon is gone or hung). c may be NULL. */
SHMRING_API int shmring_client_health(const struct shmring_instance *inst,
                                      const struct shmring_chan *c, int64_t max_age_ns);

/* One name/value pair as OpenResty's FFI hands out request headers and
 * query args (lua-nginx-module's ngx_http_lua_ffi_table_elt_t, two
 * ngx_http_lua_ffi_str_t: the length first). The data points into nginx's
 * request; a value of length -1 is a query arg without "=". */
struct shmring_client_ngx_str {
	int len;
	const char *data;
};
struct shmring_client_ngx_pair {
	struct shmring_client_ngx_str key;
	struct shmring_client_ngx_str value;
};

/* Write the n pairs as one msgpack map, as the Lua tables of
 * ngx.req.get_headers() / get_uri_args() would be encoded: a name seen once
 * maps to its value (true for an arg without "="), a repeated name to the
 * array of its values in order (an arg without "=" as the string "true"
 * there). Names compare byte for byte (nginx gives header names in lower
 * case). n is bounded by nginx (100 by default), so the quadratic search
 * for repeats is a few hundred compares at most. */
SHMRING_API void shmring_client_put_pairs(struct shmring_mpw *w,
                                          const struct shmring_client_ngx_pair *p, uint32_t n);

/* CLOCK_MONOTONIC in seconds, as a double (ns precision for centuries). */
SHMRING_API double shmring_client_clock(void);

/* The gateway applied a reply to a request it started (submit side) at
 * started, a shmring_client_clock() value: fires the "applied" probe with
 * the round trip in ns and returns it in seconds. */
SHMRING_API double shmring_client_applied(double started);

#ifdef __cplusplus
}
#endif
#endif
