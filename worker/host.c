/* SPDX-License-Identifier: MIT */
/* The plugin host: loading plugins, the request views and the reply builder
 * of shmring_plugin.h. The reply is msgpack written by hand into a private
 * buffer (one pass, no packer callbacks), then copied into the CQ with one
 * claim; the "a" array gets a 5-byte array32 header patched at the end so
 * actions can be appended without knowing their number. */
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

/* ---- plugin loading ------------------------------------------------------ */

static bool name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len < 1 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(islower((unsigned char)n[i]) || isdigit((unsigned char)n[i]) || n[i] == '_' ||
		      n[i] == '-'))
			return false;
	return true;
}

/* Check a descriptor; NULL if fine, else why not (static or in buf). */
static const char *desc_problem(const struct shmring_plugin *d, char *buf, size_t len)
{
	if (d->abi_version != SHMRING_PLUGIN_ABI_VERSION) {
		snprintf(buf, len,
		         "plugin ABI version %u, this shmringd speaks version %u: rebuild the "
		         "plugin against this shmring_plugin.h",
		         d->abi_version, SHMRING_PLUGIN_ABI_VERSION);
		return buf;
	}
	if (d->struct_size < sizeof(struct shmring_plugin)) {
		snprintf(buf, len, "descriptor is %u bytes, ABI %u needs %zu: rebuild the plugin",
		         d->struct_size, SHMRING_PLUGIN_ABI_VERSION, sizeof(struct shmring_plugin));
		return buf;
	}
	if (!d->name || !name_ok(d->name))
		return "descriptor name must match [a-z0-9_-]{1,63}";
	if (d->phases & ~(uint32_t)(SHMRING_PHASE_ACCESS | SHMRING_PHASE_REWRITE |
	                            SHMRING_PHASE_HEADER_FILTER | SHMRING_PHASE_LOG))
		return "descriptor declares unknown phases";
	if (((d->phases & SHMRING_PHASE_ACCESS) && !d->access) ||
	    ((d->phases & SHMRING_PHASE_REWRITE) && !d->rewrite) ||
	    ((d->phases & SHMRING_PHASE_HEADER_FILTER) && !d->header_filter) ||
	    ((d->phases & SHMRING_PHASE_LOG) && !d->log))
		return "descriptor declares a phase without its hook";
	return NULL;
}

/* dlopen one file into slot p; 0 or -1 (p->error says why). */
static int load_one(struct shmringd_plugin *p, const char *path)
{
	char why[512];
	p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!p->handle) {
		snprintf(p->error, sizeof(p->error), "cannot load plugin %s: %s", path, dlerror());
		return -1;
	}
	const struct shmring_plugin *d = dlsym(p->handle, SHMRING_PLUGIN_SYMBOL);
	if (!d) {
		snprintf(p->error, sizeof(p->error),
		         "plugin %s does not export the '" SHMRING_PLUGIN_SYMBOL "' descriptor",
		         path);
		goto refuse;
	}
	const char *problem = desc_problem(d, why, sizeof(why));
	if (problem) {
		snprintf(p->error, sizeof(p->error), "refusing plugin %s: %s", path, problem);
		goto refuse;
	}
	snprintf(p->name, sizeof(p->name), "%s", d->name);
	p->desc = d;
	return 0;
refuse:
	dlclose(p->handle);
	p->handle = NULL;
	return -1;
}

/* Find name.so in the ':'-separated dirs; 0 with the path, or -ENOENT. */
static int find_in_dirs(const char *dirs, const char *name, char *path, size_t len)
{
	const char *s = dirs;
	while (*s) {
		const char *e = strchr(s, ':');
		size_t dl = e ? (size_t)(e - s) : strlen(s);
		if (dl) {
			snprintf(path, len, "%.*s/%s.so", (int)dl, s, name);
			if (access(path, R_OK) == 0)
				return 0;
		}
		s += dl + (e ? 1 : 0);
	}
	return -ENOENT;
}

static int slot_add(struct shmringd_plugins *p, const char *path, const char *file_name,
                    bool strict, char *err, size_t errlen)
{
	if (p->n >= SHMRINGD_MAX_PLUGINS) {
		snprintf(err, errlen, "more than %d plugins", SHMRINGD_MAX_PLUGINS);
		return -1;
	}
	struct shmringd_plugin *s = &p->v[p->n];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", file_name);
	if (load_one(s, path) < 0) {
		if (strict) {
			snprintf(err, errlen, "%s", s->error);
			return -1;
		}
		shmringd__log("%s", s->error);
		p->n++; /* kept, refused, so CONF for it says why */
		return 0;
	}
	for (uint32_t i = 0; i < p->n; i++) {
		if (p->v[i].desc && !strcmp(p->v[i].name, s->name)) {
			char name[sizeof(s->name)];
			memcpy(name, s->name, sizeof(name));
			snprintf(s->error, sizeof(s->error),
			         "refusing plugin %s: a plugin named '%s' is already loaded", path,
			         name);
			dlclose(s->handle);
			s->handle = NULL;
			s->desc = NULL;
			if (strict) {
				snprintf(err, errlen, "%s", s->error);
				return -1;
			}
			shmringd__log("%s", s->error);
			return 0;
		}
	}
	p->n++;
	return 0;
}

int shmringd__plugins_load(const struct shmringd_config *c, struct shmringd_plugins *p, bool strict,
                           char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	char path[PATH_MAX];
	if (c->plugins[0]) {
		/* An explicit list: every named plugin must load. */
		char list[sizeof(c->plugins)];
		snprintf(list, sizeof(list), "%s", c->plugins);
		for (char *save = NULL, *n = strtok_r(list, ", ", &save); n;
		     n = strtok_r(NULL, ", ", &save)) {
			if (find_in_dirs(c->plugin_dir, n, path, sizeof(path)) < 0) {
				snprintf(err, errlen, "plugin '%s' not found in %s", n,
				         c->plugin_dir);
				goto fail;
			}
			if (slot_add(p, path, n, true, err, errlen) < 0)
				goto fail;
		}
		return 0;
	}
	/* Every .so of every directory; a bad one is refused, the rest load. */
	const char *s = c->plugin_dir;
	while (*s) {
		const char *e = strchr(s, ':');
		size_t dl = e ? (size_t)(e - s) : strlen(s);
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%.*s", (int)dl, s);
		s += dl + (e ? 1 : 0);
		DIR *d = dl ? opendir(dir) : NULL;
		if (!d)
			continue;
		struct dirent **names = NULL;
		int nn = scandir(dir, &names, NULL, alphasort);
		closedir(d);
		for (int i = 0; i < nn; i++) {
			const char *fn = names[i]->d_name;
			size_t fl = strlen(fn);
			if (fl > 3 && !strcmp(fn + fl - 3, ".so")) {
				char base[300];
				snprintf(base, sizeof(base), "%.*s", (int)(fl - 3), fn);
				if ((size_t)snprintf(path, sizeof(path), "%.3800s/%.255s", dir,
				                     fn) >= sizeof(path)) {
					free(names[i]);
					continue;
				}
				if (slot_add(p, path, base, strict, err, errlen) < 0) {
					for (int j = i; j < nn; j++)
						free(names[j]);
					free(names);
					goto fail;
				}
			}
			free(names[i]);
		}
		free(names);
	}
	return 0;
fail:
	shmringd__plugins_unload(p);
	return -1;
}

void shmringd__plugins_init(struct shmringd_plugins *p)
{
	for (uint32_t i = 0; i < p->n; i++) {
		struct shmringd_plugin *s = &p->v[i];
		if (!s->desc)
			continue;
		s->init_ok = true;
		if (s->desc->init) {
			char err[256] = "";
			if (s->desc->init(&s->wstate, err, sizeof(err)) < 0) {
				s->init_ok = false;
				snprintf(s->error, sizeof(s->error), "plugin %s: init failed: %s",
				         s->name, err[0] ? err : "(no message)");
				shmringd__log("%s", s->error);
			}
		}
	}
}

void shmringd__plugins_unload(struct shmringd_plugins *p)
{
	for (uint32_t i = 0; i < p->n; i++) {
		struct shmringd_plugin *s = &p->v[i];
		if (s->desc && s->init_ok && s->desc->fini)
			s->desc->fini(s->wstate);
		s->init_ok = false;
		if (s->handle)
			dlclose(s->handle);
		s->handle = NULL;
		s->desc = NULL;
	}
	p->n = 0;
}

struct shmringd_plugin *shmringd__plugin_find(struct shmringd_plugins *p, const char *name,
                                              size_t len)
{
	for (uint32_t i = 0; i < p->n; i++)
		if (strlen(p->v[i].name) == len && !memcmp(p->v[i].name, name, len))
			return &p->v[i];
	return NULL;
}

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

SHMRING_HOST_API int shmring_req_header(const struct shmring_request *req, struct shmring_str name,
                                        struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return nth_str(map_get_ci(req->headers, name), 0, val);
}

SHMRING_HOST_API int shmring_req_header_nth(const struct shmring_request *req,
                                            struct shmring_str name, size_t i,
                                            struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return nth_str(map_get_ci(req->headers, name), i, val);
}

SHMRING_HOST_API int shmring_req_query(const struct shmring_request *req, struct shmring_str name,
                                       struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
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

SHMRING_HOST_API int shmring_req_ctx(const struct shmring_request *req, struct shmring_str key,
                                     struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return nth_str(shmring_map_get(req->ctx, key), 0, val);
}

SHMRING_HOST_API int shmring_req_resp_header(const struct shmring_request *req,
                                             struct shmring_str name, struct shmring_str *val)
{
	*val = (struct shmring_str){NULL, 0};
	return nth_str(map_get_ci(req->resp_headers, name), 0, val);
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

/* ---- reply builder --------------------------------------------------------- */

/* Make room for n more bytes; false (and failed set) if the reply would pass
 * the channel's max payload. */
static bool room(struct shmring_reply *r, size_t n)
{
	if (r->failed)
		return false;
	if (r->len + n <= r->cap)
		return true;
	if (r->len + n > r->max) {
		r->failed = 1;
		return false;
	}
	uint32_t cap = r->cap ? r->cap : 4096;
	while (cap < r->len + n)
		cap *= 2;
	if (cap > r->max)
		cap = r->max;
	uint8_t *b = realloc(r->buf, cap);
	if (!b) {
		r->failed = 1;
		return false;
	}
	r->buf = b;
	r->cap = cap;
	return true;
}

static void put_u8(struct shmring_reply *r, uint8_t b)
{
	if (room(r, 1))
		r->buf[r->len++] = b;
}

static void put_be(struct shmring_reply *r, uint8_t tag, uint64_t v, int bytes)
{
	if (!room(r, 1 + (size_t)bytes))
		return;
	r->buf[r->len++] = tag;
	for (int i = bytes - 1; i >= 0; i--)
		r->buf[r->len++] = (uint8_t)(v >> (8 * i));
}

static void put_uint(struct shmring_reply *r, uint64_t v)
{
	if (v < 128)
		put_u8(r, (uint8_t)v);
	else if (v < 256)
		put_be(r, 0xcc, v, 1);
	else if (v < 65536)
		put_be(r, 0xcd, v, 2);
	else if (v <= UINT32_MAX)
		put_be(r, 0xce, v, 4);
	else
		put_be(r, 0xcf, v, 8);
}

static void put_str(struct shmring_reply *r, const char *p, size_t n)
{
	if (n > UINT32_MAX) {
		r->failed = 1;
		return;
	}
	if (n < 32)
		put_u8(r, (uint8_t)(0xa0 | n));
	else if (n < 256)
		put_be(r, 0xd9, n, 1);
	else if (n < 65536)
		put_be(r, 0xda, n, 2);
	else
		put_be(r, 0xdb, n, 4);
	if (n && room(r, n)) {
		memcpy(r->buf + r->len, p, n);
		r->len += (uint32_t)n;
	}
}

static void put_sstr(struct shmring_reply *r, struct shmring_str s)
{
	put_str(r, s.ptr, s.len);
}

static void put_array(struct shmring_reply *r, uint32_t n)
{
	if (n < 16)
		put_u8(r, (uint8_t)(0x90 | n));
	else if (n < 65536)
		put_be(r, 0xdc, n, 2);
	else
		put_be(r, 0xdd, n, 4);
}

static void put_map(struct shmring_reply *r, uint32_t n)
{
	if (n < 16)
		put_u8(r, (uint8_t)(0x80 | n));
	else if (n < 65536)
		put_be(r, 0xde, n, 2);
	else
		put_be(r, 0xdf, n, 4);
}

void shmringd__reply_begin(struct shmring_reply *r, uint32_t max_payload)
{
	r->max = max_payload;
	r->len = 0;
	r->nact = 0;
	r->failed = 0;
	r->error_set = 0;
	r->exhausted = 0;
	r->error[0] = '\0';
	/* {"s": 0, "a": array32(n)} */
	put_u8(r, 0x82);
	put_str(r, "s", 1);
	put_u8(r, 0);
	put_str(r, "a", 1);
	r->arr_off = r->len;
	put_be(r, 0xdd, 0, 4);
}

uint32_t shmringd__reply_status(struct shmring_reply *r, uint32_t status, const char *error)
{
	r->len = 0;
	r->failed = 0;
	put_u8(r, error ? 0x82 : 0x81);
	put_str(r, "s", 1);
	put_uint(r, status);
	if (error) {
		size_t n = strlen(error);
		put_str(r, "e", 1);
		/* Room for the message is bounded by error[] and the first 4 KiB
		 * buffer, which always fits a channel record. */
		put_str(r, error, n);
	}
	return r->len;
}

uint32_t shmringd__reply_finish(struct shmring_reply *r, const char *fallback_error)
{
	if (r->error_set || fallback_error || r->failed) {
		const char *msg = r->error_set ? r->error
		                  : r->failed  ? "reply larger than the channel's record size"
		                               : fallback_error;
		char copy[sizeof(r->error)];
		snprintf(copy, sizeof(copy), "%s", msg);
		return shmringd__reply_status(r, 1, copy);
	}
	uint8_t *p = r->buf + r->arr_off + 1;
	p[0] = (uint8_t)(r->nact >> 24);
	p[1] = (uint8_t)(r->nact >> 16);
	p[2] = (uint8_t)(r->nact >> 8);
	p[3] = (uint8_t)r->nact;
	return r->len;
}

static int act_done(struct shmring_reply *r)
{
	if (r->failed)
		return -EMSGSIZE;
	r->nact++;
	return 0;
}

/* msgpack bytes of a str header for n bytes of string (n <= UINT32_MAX). */
static size_t str_hdr_len(size_t n)
{
	return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

/* Write a str (header + bytes) at p, which has room for it; returns the end. */
static uint8_t *raw_str(uint8_t *p, struct shmring_str s)
{
	size_t n = s.len;
	if (n < 32) {
		*p++ = (uint8_t)(0xa0 | n);
	} else if (n < 256) {
		*p++ = 0xd9;
		*p++ = (uint8_t)n;
	} else if (n < 65536) {
		*p++ = 0xda;
		*p++ = (uint8_t)(n >> 8);
		*p++ = (uint8_t)n;
	} else {
		*p++ = 0xdb;
		*p++ = (uint8_t)(n >> 24);
		*p++ = (uint8_t)(n >> 16);
		*p++ = (uint8_t)(n >> 8);
		*p++ = (uint8_t)n;
	}
	if (n)
		memcpy(p, s.ptr, n);
	return p + n;
}

/* [op, a] or [op, a, b]: the exact size reserved once, then written without
 * a bounds check per byte (this was ~40% of key-auth's hook when every
 * byte went through room()). */
static int act_strs(struct shmring_reply *r, enum shmring_action op, struct shmring_str a,
                    const struct shmring_str *b)
{
	if (a.len > UINT32_MAX || (b && b->len > UINT32_MAX)) {
		r->failed = 1;
		return -EMSGSIZE;
	}
	/* fixarray + positive fixint op (every action number is < 128) */
	size_t need = 2 + str_hdr_len(a.len) + a.len + (b ? str_hdr_len(b->len) + b->len : 0);
	if (!room(r, need))
		return -EMSGSIZE;
	uint8_t *p = r->buf + r->len;
	*p++ = (uint8_t)(0x90 | (b ? 3 : 2));
	*p++ = (uint8_t)op;
	p = raw_str(p, a);
	if (b)
		p = raw_str(p, *b);
	r->len = (uint32_t)(p - r->buf);
	return act_done(r);
}

static int act2(struct shmring_reply *r, enum shmring_action op, struct shmring_str a,
                struct shmring_str b)
{
	return act_strs(r, op, a, &b);
}

static int act1(struct shmring_reply *r, enum shmring_action op, struct shmring_str a)
{
	return act_strs(r, op, a, NULL);
}

SHMRING_HOST_API int shmring_reply_set_req_header(struct shmring_reply *r, struct shmring_str name,
                                                  struct shmring_str value)
{
	return act2(r, SHMRING_ACT_SET_REQ_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_add_req_header(struct shmring_reply *r, struct shmring_str name,
                                                  struct shmring_str value)
{
	return act2(r, SHMRING_ACT_ADD_REQ_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_clear_req_header(struct shmring_reply *r,
                                                    struct shmring_str name)
{
	return act1(r, SHMRING_ACT_CLEAR_REQ_HEADER, name);
}

SHMRING_HOST_API int shmring_reply_set_path(struct shmring_reply *r, struct shmring_str path)
{
	return act1(r, SHMRING_ACT_SET_PATH, path);
}

SHMRING_HOST_API int shmring_reply_set_query(struct shmring_reply *r, struct shmring_str query)
{
	return act1(r, SHMRING_ACT_SET_QUERY, query);
}

SHMRING_HOST_API int shmring_reply_set_method(struct shmring_reply *r, struct shmring_str method)
{
	return act1(r, SHMRING_ACT_SET_METHOD, method);
}

SHMRING_HOST_API int shmring_reply_set_resp_header(struct shmring_reply *r, struct shmring_str name,
                                                   struct shmring_str value)
{
	return act2(r, SHMRING_ACT_SET_RESP_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_add_resp_header(struct shmring_reply *r, struct shmring_str name,
                                                   struct shmring_str value)
{
	return act2(r, SHMRING_ACT_ADD_RESP_HEADER, name, value);
}

SHMRING_HOST_API int shmring_reply_exit(struct shmring_reply *r, uint32_t status,
                                        struct shmring_str body,
                                        const struct shmring_header *headers, size_t nheaders)
{
	if (nheaders > UINT32_MAX / 2)
		return -EINVAL;
	put_array(r, 4);
	put_uint(r, SHMRING_ACT_EXIT);
	put_uint(r, status);
	put_sstr(r, body);
	put_map(r, (uint32_t)nheaders);
	for (size_t i = 0; i < nheaders; i++) {
		put_sstr(r, headers[i].name);
		put_sstr(r, headers[i].value);
	}
	return act_done(r);
}

SHMRING_HOST_API int shmring_reply_set_ctx(struct shmring_reply *r, struct shmring_str key,
                                           struct shmring_str value)
{
	return act2(r, SHMRING_ACT_SET_CTX, key, value);
}

SHMRING_HOST_API int shmring_reply_authenticate(struct shmring_reply *r,
                                                struct shmring_str consumer_id,
                                                struct shmring_str username,
                                                struct shmring_str custom_id,
                                                struct shmring_str credential)
{
	uint32_t n = (consumer_id.len > 0) + (username.len > 0) + (custom_id.len > 0);
	put_array(r, 3);
	put_uint(r, SHMRING_ACT_AUTHENTICATE);
	put_map(r, n);
	if (consumer_id.len) {
		put_str(r, "id", 2);
		put_sstr(r, consumer_id);
	}
	if (username.len) {
		put_str(r, "username", 8);
		put_sstr(r, username);
	}
	if (custom_id.len) {
		put_str(r, "custom_id", 9);
		put_sstr(r, custom_id);
	}
	if (credential.len)
		put_sstr(r, credential);
	else
		put_u8(r, 0xc0); /* nil */
	return act_done(r);
}

SHMRING_HOST_API int shmring_reply_log(struct shmring_reply *r, enum shmring_log_level level,
                                       struct shmring_str msg)
{
	if ((unsigned)level > SHMRING_LOG_DEBUG)
		return -EINVAL;
	put_array(r, 3);
	put_uint(r, SHMRING_ACT_LOG);
	put_uint(r, (uint64_t)level);
	put_sstr(r, msg);
	return act_done(r);
}

SHMRING_HOST_API int shmring_reply_error(struct shmring_reply *r, struct shmring_str msg)
{
	size_t n = msg.len < sizeof(r->error) - 1 ? msg.len : sizeof(r->error) - 1;
	if (n)
		memcpy(r->error, msg.ptr, n);
	r->error[n] = '\0';
	r->error_set = 1;
	return 0;
}

SHMRING_HOST_API void shmring_reply_exhausted(struct shmring_reply *r)
{
	r->exhausted = 1; /* counted by the dispatcher, per plugin */
}

/* ---- shared regions (shmring_shared_region) --------------------------------- */

#define SHARED_MAX_REGIONS 16
#define SHARED_MAX_SIZE (1ull << 30)

static struct {
	pthread_mutex_t lock;
	char dir[PATH_MAX]; /* "" until shmringd__shared_setup() */
	mode_t mode;
	uint32_t n;
	struct {
		char name[64];
		size_t size;
		void *addr;
	} v[SHARED_MAX_REGIONS];
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

void shmringd__shared_setup(const char *dir, mode_t mode)
{
	pthread_mutex_lock(&shared.lock);
	snprintf(shared.dir, sizeof(shared.dir), "%s", dir ? dir : "");
	shared.mode = mode & 0666;
	pthread_mutex_unlock(&shared.lock);
}

/* Create or open the file and map it; flock serializes the creators so the
 * size is set once and a second creator sees it. */
static int shared_map(const char *name, size_t size, void **out)
{
	char path[PATH_MAX + 80];
	if ((size_t)snprintf(path, sizeof(path), "%s/" SHMRINGD_REGION_PREFIX "%s.shm", shared.dir,
	                     name) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, shared.mode);
	if (fd < 0)
		return -errno;
	int rc = 0, lk;
	struct stat st;
	while ((lk = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (lk < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (st.st_size == 0) {
		/* ftruncate zero-fills: the documented empty state. */
		if (fchmod(fd, shared.mode) < 0 || ftruncate(fd, (off_t)size) < 0)
			rc = -errno;
	} else if ((size_t)st.st_size != size) {
		rc = -EEXIST;
	}
	if (rc == 0) {
		void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			rc = -errno;
		else
			*out = m;
	}
	/* Unlock explicitly: the mapping keeps the open file (and so the
	 * flock) alive after close(). */
	flock(fd, LOCK_UN);
	close(fd);
	return rc;
}

SHMRING_HOST_API int shmring_shared_region(const char *name, size_t size, void **out)
{
	*out = NULL;
	if (!name || !name_ok(name) || size == 0 || size > SHARED_MAX_SIZE)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&shared.lock);
	for (uint32_t i = 0; i < shared.n; i++) {
		if (!strcmp(shared.v[i].name, name)) {
			if (shared.v[i].size == size)
				*out = shared.v[i].addr;
			else
				rc = -EEXIST;
			goto out;
		}
	}
	if (!shared.dir[0]) {
		rc = -ENOTSUP;
	} else if (shared.n >= SHARED_MAX_REGIONS) {
		rc = -ENOSPC;
	} else if ((rc = shared_map(name, size, out)) == 0) {
		snprintf(shared.v[shared.n].name, sizeof(shared.v[0].name), "%s", name);
		shared.v[shared.n].size = size;
		shared.v[shared.n].addr = *out;
		shared.n++;
	}
out:
	pthread_mutex_unlock(&shared.lock);
	return rc;
}

void shmringd__shared_remove_all(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	size_t pl = strlen(SHMRINGD_REGION_PREFIX);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n > pl + 4 && !strncmp(e->d_name, SHMRINGD_REGION_PREFIX, pl) &&
		    !strcmp(e->d_name + n - 4, ".shm"))
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}
