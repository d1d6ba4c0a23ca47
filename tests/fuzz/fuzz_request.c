/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the daemon's request decoding, fed the way a worker is
 * fed. The input (byte 0: the phase; the rest: a record payload) is put in
 * a "ring" buffer that a second thread keeps rewriting, as a hostile client
 * may rewrite its SQ while the daemon reads it; the payload is taken with
 * shmring_mpr_parse_copy() (what the worker does), decoded by
 * shmringd__request_decode() and read through every request view a plugin
 * has. Nothing may crash or trip a sanitizer, every string the views hand
 * out must lie inside the private copy (never in the ring), and decoding
 * the copy again must give the same request.
 */
#include "daemon.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD 65536

char shmringd__role[32] = "fuzz";
void shmringd__log(const char *fmt, ...)
{
	(void)fmt;
}

static uint8_t ring[MAX_PAYLOAD]; /* the "shared" bytes the writer rewrites */
static uint8_t copy[MAX_PAYLOAD]; /* the worker's private copy */
static _Atomic uint32_t ring_len;
static _Atomic int writing;
static struct shmring_mpr mpr;

static void *rewrite_ring(void *arg)
{
	(void)arg;
	for (uint32_t n = 1;; n++) {
		uint32_t len = atomic_load_explicit(&ring_len, memory_order_acquire);
		if (atomic_load_explicit(&writing, memory_order_acquire) && len) {
			uint32_t i = (n * 2654435761u) % len;
			__atomic_store_n(&ring[i], (uint8_t)(ring[i] ^ (n | 1)), __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (shmring_mpr_init(&mpr) < 0)
		abort();
	pthread_t t;
	if (pthread_create(&t, NULL, rewrite_ring, NULL) != 0)
		abort();
	pthread_detach(t);
	return 0;
}

static void inside_copy(struct shmring_str s, uint32_t len)
{
	if (s.len && ((const uint8_t *)s.ptr < copy || (const uint8_t *)s.ptr + s.len > copy + len))
		abort(); /* a view into the ring, or out of bounds */
}

static void check_map_strings(const msgpack_object *o, uint32_t len, int depth)
{
	if (!o || depth > 8)
		return;
	if (o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN)
		inside_copy((struct shmring_str){o->via.str.ptr, o->via.str.size}, len);
	if (o->type == MSGPACK_OBJECT_ARRAY)
		for (uint32_t i = 0; i < o->via.array.size; i++)
			check_map_strings(&o->via.array.ptr[i], len, depth + 1);
	if (o->type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			check_map_strings(&o->via.map.ptr[i].key, len, depth + 1);
			check_map_strings(&o->via.map.ptr[i].val, len, depth + 1);
		}
}

/* Every view a plugin can ask for, checked to lie in the copy. */
static void read_views(const struct shmring_request *req, uint32_t len)
{
	const struct shmring_str fields[] = {req->method,
	                                     req->scheme,
	                                     req->host,
	                                     req->path,
	                                     req->client_ip,
	                                     req->route_id,
	                                     req->service_id,
	                                     req->consumer_id,
	                                     req->consumer_username,
	                                     req->consumer_custom_id,
	                                     req->credential};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		inside_copy(fields[i], len);
	static const char *names[] = {"authorization", "host", "x-api-key", "apikey", ""};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct shmring_str name = {names[i], strlen(names[i])}, v;
		if (shmring_req_header(req, name, &v) == 1)
			inside_copy(v, len);
		for (uint32_t n = 0; n < 4; n++)
			if (shmring_req_header_nth(req, name, n, &v) == 1)
				inside_copy(v, len);
		if (shmring_req_query(req, name, &v) == 1)
			inside_copy(v, len);
		if (shmring_req_ctx(req, name, &v) == 1)
			inside_copy(v, len);
		if (shmring_req_resp_header(req, name, &v) == 1)
			inside_copy(v, len);
	}
	struct shmring_connection conn;
	if (shmring_req_connection(req, &conn) == 1)
		inside_copy(conn.server_addr, len);
	check_map_strings(req->root, len, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > MAX_PAYLOAD)
		return 0;
	static const uint32_t phases[] = {SHMRING_PHASE_ACCESS, SHMRING_PHASE_REWRITE,
	                                  SHMRING_PHASE_HEADER_FILTER};
	uint32_t len = (uint32_t)(size - 1);
	atomic_store_explicit(&writing, 0, memory_order_release);
	memcpy(ring, data + 1, len);
	atomic_store_explicit(&ring_len, len, memory_order_release);
	atomic_store_explicit(&writing, 1, memory_order_release);

	struct shmring_request req = {.phase = phases[data[0] % 3]};
	int rc = shmring_mpr_parse_copy(&mpr, copy, ring, len);
	atomic_store_explicit(&writing, 0, memory_order_release);
	if (rc < 0)
		return 0;
	int drc = shmringd__request_decode(&req, &mpr.root);
	if (drc == 0)
		read_views(&req, len);
	/* The copy no longer changes: decoding it again gives the same. */
	struct shmring_request again = {.phase = req.phase};
	if (shmring_mpr_parse(&mpr, copy, len) < 0 ||
	    shmringd__request_decode(&again, &mpr.root) != drc)
		abort();
	if (drc == 0 && (again.conf_id != req.conf_id || again.path.len != req.path.len ||
	                 again.method.len != req.method.len))
		abort();
	return 0;
}
