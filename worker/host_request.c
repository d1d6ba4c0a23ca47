/* SPDX-License-Identifier: MIT */
/* The plugin host: the request views of shmring_plugin.h (a decoded
 * snapshot, read in place from the ring record). */
#include "daemon.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- request views ------------------------------------------------------- */

static bool key_is(const msgpack_object *k, const char *s, size_t n)
{
	return k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}
#define KEY_IS(k, lit) key_is(k, lit, sizeof(lit) - 1)

static int take_str(const msgpack_object *v, struct shmring_str *out)
{
	if (v->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (v->type != MSGPACK_OBJECT_STR)
		return -EBADMSG;
	out->ptr = v->via.str.ptr;
	out->len = v->via.str.size;
	return 0;
}

static int take_map(const msgpack_object *v, const msgpack_object **out)
{
	if (v->type == MSGPACK_OBJECT_NIL)
		return 0;
	/* An empty Lua table may arrive as an empty array. */
	if (v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 0)
		return 0;
	if (v->type != MSGPACK_OBJECT_MAP)
		return -EBADMSG;
	*out = v;
	return 0;
}

static int take_uint(const msgpack_object *v, uint64_t max, uint64_t *out)
{
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > max)
		return -EBADMSG;
	*out = v->via.u64;
	return 0;
}

/* The snapshot's "connection" map (docs/protocol.md) into *conn; a missing
 * key leaves its field 0 / empty, a key of the wrong type is -EBADMSG. */
static int connection_parse(const msgpack_object *v, struct shmring_connection *conn)
{
	*conn = (struct shmring_connection){0};
	if (v->type != MSGPACK_OBJECT_MAP)
		return -EBADMSG;
	int rc = 0;
	uint64_t port = 0, pid = 0;
	for (uint32_t i = 0; i < v->via.map.size && rc == 0; i++) {
		const msgpack_object *k = &v->via.map.ptr[i].key;
		const msgpack_object *x = &v->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			continue;
		if (KEY_IS(k, "server_addr"))
			rc = take_str(x, &conn->server_addr);
		else if (KEY_IS(k, "server_port"))
			rc = take_uint(x, UINT16_MAX, &port);
		else if (KEY_IS(k, "worker_pid"))
			rc = take_uint(x, INT32_MAX, &pid);
		else if (KEY_IS(k, "serial"))
			rc = take_uint(x, UINT64_MAX, &conn->serial);
		else if (KEY_IS(k, "requests"))
			rc = take_uint(x, UINT64_MAX, &conn->requests);
		else if (KEY_IS(k, "time_ms"))
			rc = take_uint(x, UINT64_MAX, &conn->time_ms);
	}
	conn->server_port = (uint32_t)port;
	conn->worker_pid = (uint32_t)pid;
	return rc;
}

int shmringd__request_decode(struct shmring_request *req, const msgpack_object *root)
{
	if (root->type != MSGPACK_OBJECT_MAP)
		return -EBADMSG;
	req->root = root;
	bool have_conf = false;
	int rc = 0;
	for (uint32_t i = 0; i < root->via.map.size && rc == 0; i++) {
		const msgpack_object *k = &root->via.map.ptr[i].key;
		const msgpack_object *v = &root->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			continue;
		switch (k->via.str.size ? k->via.str.ptr[0] : 0) {
		case 'c':
			if (KEY_IS(k, "conf")) {
				if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
					return -EBADMSG;
				req->conf_id = v->via.u64;
				have_conf = true;
			} else if (KEY_IS(k, "client_ip")) {
				rc = take_str(v, &req->client_ip);
			} else if (KEY_IS(k, "credential")) {
				rc = take_str(v, &req->credential);
			} else if (KEY_IS(k, "ctx")) {
				rc = take_map(v, &req->ctx);
			} else if (KEY_IS(k, "connection")) {
				/* Checked here, read by shmring_req_connection. */
				struct shmring_connection conn;
				rc = connection_parse(v, &conn);
			} else if (KEY_IS(k, "consumer")) {
				const msgpack_object *m = NULL;
				if ((rc = take_map(v, &m)) == 0 && m) {
					const msgpack_object *x;
					if ((x = shmring_map_get(m, SHMRING_LIT("id"))))
						rc |= take_str(x, &req->consumer_id);
					if ((x = shmring_map_get(m, SHMRING_LIT("username"))))
						rc |= take_str(x, &req->consumer_username);
					if ((x = shmring_map_get(m, SHMRING_LIT("custom_id"))))
						rc |= take_str(x, &req->consumer_custom_id);
				}
			}
			break;
		case 'h':
			if (KEY_IS(k, "headers"))
				rc = take_map(v, &req->headers);
			else if (KEY_IS(k, "host"))
				rc = take_str(v, &req->host);
			break;
		case 'm':
			if (KEY_IS(k, "method"))
				rc = take_str(v, &req->method);
			break;
		case 'p':
			if (KEY_IS(k, "path"))
				rc = take_str(v, &req->path);
			break;
		case 'q':
			if (KEY_IS(k, "query"))
				rc = take_map(v, &req->query);
			break;
		case 'r':
			if (KEY_IS(k, "route_id"))
				rc = take_str(v, &req->route_id);
			else if (KEY_IS(k, "resp_headers"))
				rc = take_map(v, &req->resp_headers);
			break;
		case 's':
			if (KEY_IS(k, "scheme")) {
				rc = take_str(v, &req->scheme);
			} else if (KEY_IS(k, "service_id")) {
				rc = take_str(v, &req->service_id);
			} else if (KEY_IS(k, "status")) {
				if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > 999)
					return -EBADMSG;
				req->status = (uint32_t)v->via.u64;
			}
			break;
		default:
			break;
		}
	}
	if (rc)
		return -EBADMSG;
	return have_conf ? 0 : -EBADMSG;
}

static bool name_eq_ci(const msgpack_object *k, struct shmring_str name)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == name.len &&
	       (name.len == 0 || strncasecmp(k->via.str.ptr, name.ptr, name.len) == 0);
}

/* The value under name (case-insensitive) in a map view, or NULL. */
static const msgpack_object *map_get_ci(const msgpack_object *map, struct shmring_str name)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (name_eq_ci(&map->via.map.ptr[i].key, name))
			return &map->via.map.ptr[i].val;
	return NULL;
}

/* The i-th string of a str-or-array-of-str value; 1 or 0. */
static int nth_str(const msgpack_object *v, size_t i, struct shmring_str *val)
{
	if (!v)
		return 0;
	if (v->type == MSGPACK_OBJECT_ARRAY) {
		if (i >= v->via.array.size)
			return 0;
		v = &v->via.array.ptr[i];
	} else if (i != 0) {
		return 0;
	}
	if (v->type != MSGPACK_OBJECT_STR)
		return 0;
	val->ptr = v->via.str.ptr;
	val->len = v->via.str.size;
	return 1;
}

void (*shmringd__read_trace)(enum shmringd_read what, struct shmring_str name, int rc);

static int traced(enum shmringd_read what, struct shmring_str name, int rc)
{
	if (shmringd__read_trace)
		shmringd__read_trace(what, name, rc);
	return rc;
}

SHMRING_HOST_API int shmring_req_header(const struct shmring_request *req, struct shmring_str name,
                                        struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return traced(SHMRINGD_READ_HEADER, name, nth_str(map_get_ci(req->headers, name), 0, val));
}

SHMRING_HOST_API int shmring_req_header_nth(const struct shmring_request *req,
                                            struct shmring_str name, size_t i,
                                            struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return traced(SHMRINGD_READ_HEADER, name, nth_str(map_get_ci(req->headers, name), i, val));
}

static int query(const struct shmring_request *req, struct shmring_str name,
                 struct shmring_str *val)
{
	const msgpack_object *v = shmring_map_get(req->query, name);
	if (!v)
		return 0;
	if (v->type == MSGPACK_OBJECT_BOOLEAN)
		return v->via.boolean ? 2 : 0;
	if (v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size > 0 &&
	    v->via.array.ptr[0].type == MSGPACK_OBJECT_BOOLEAN)
		return v->via.array.ptr[0].via.boolean ? 2 : 0;
	return nth_str(v, 0, val);
}

SHMRING_HOST_API int shmring_req_query(const struct shmring_request *req, struct shmring_str name,
                                       struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return traced(SHMRINGD_READ_QUERY, name, query(req, name, val));
}

SHMRING_HOST_API int shmring_req_ctx(const struct shmring_request *req, struct shmring_str key,
                                     struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return traced(SHMRINGD_READ_CTX, key, nth_str(shmring_map_get(req->ctx, key), 0, val));
}

SHMRING_HOST_API int shmring_req_resp_header(const struct shmring_request *req,
                                             struct shmring_str name, struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return traced(SHMRINGD_READ_RESP_HEADER, name,
	              nth_str(map_get_ci(req->resp_headers, name), 0, val));
}

SHMRING_HOST_API int shmring_req_body(const struct shmring_request *req, struct shmring_str *body)
{
	*body = (struct shmring_str){NULL, 0};
	const msgpack_object *v = shmring_map_get(req->root, SHMRING_LIT("body"));
	if (v && v->type == MSGPACK_OBJECT_STR) {
		*body = (struct shmring_str){v->via.str.ptr, v->via.str.size};
		return 1;
	}
	if (v && v->type == MSGPACK_OBJECT_BIN) {
		*body = (struct shmring_str){v->via.bin.ptr, v->via.bin.size};
		return 1;
	}
	return shmring_map_get(req->root, SHMRING_LIT("body_error")) ? -EFBIG : 0;
}

SHMRING_HOST_API int shmring_req_connection(const struct shmring_request *req,
                                            struct shmring_connection *conn)
{
	const msgpack_object *v = shmring_map_get(req->root, SHMRING_LIT("connection"));
	if (!v || connection_parse(v, conn) < 0) {
		*conn = (struct shmring_connection){0};
		return 0;
	}
	return 1;
}

SHMRING_HOST_API const msgpack_object *shmring_map_get(const msgpack_object *map,
                                                       struct shmring_str key)
{
	if (!map || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == key.len &&
		    (key.len == 0 || memcmp(k->via.str.ptr, key.ptr, key.len) == 0))
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

SHMRING_HOST_API int shmring_map_str(const msgpack_object *map, struct shmring_str key,
                                     struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return nth_str(shmring_map_get(map, key), 0, val);
}
