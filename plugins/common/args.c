/* SPDX-License-Identifier: MIT */
/* Query-string rebuilding. The snapshot carries parsed args (a map whose
 * order is the gateway's table order, i.e. none), so a plugin that changes
 * the query sends a complete rebuilt one. Like Kong's encode_args: names
 * sorted, values percent-encoded, flags as a bare name, arrays repeated. */
#include "shmring_pc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int put_arg(struct shmring_pc_arg *out, size_t *n, size_t cap, struct shmring_str name,
                   const msgpack_object *v)
{
	if (v->type == MSGPACK_OBJECT_BOOLEAN) {
		if (!v->via.boolean)
			return 0; /* Kong drops false */
		if (*n >= cap)
			return -E2BIG;
		out[(*n)++] = (struct shmring_pc_arg){name, {NULL, 0}, 1};
		return 0;
	}
	if (v->type != MSGPACK_OBJECT_STR)
		return 0; /* not something a query parser makes: ignore */
	if (*n >= cap)
		return -E2BIG;
	out[(*n)++] = (struct shmring_pc_arg){name, {v->via.str.ptr, v->via.str.size}, 0};
	return 0;
}

int shmring_pc_args_from_map(const msgpack_object *query, struct shmring_pc_arg *out, size_t *n,
                             size_t cap)
{
	if (!query || query->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (uint32_t i = 0; i < query->via.map.size; i++) {
		const msgpack_object *k = &query->via.map.ptr[i].key;
		const msgpack_object *v = &query->via.map.ptr[i].val;
		if (k->type != MSGPACK_OBJECT_STR)
			continue;
		struct shmring_str name = {k->via.str.ptr, k->via.str.size};
		int rc = 0;
		if (v->type == MSGPACK_OBJECT_ARRAY) {
			for (uint32_t j = 0; j < v->via.array.size && rc == 0; j++)
				rc = put_arg(out, n, cap, name, &v->via.array.ptr[j]);
		} else {
			rc = put_arg(out, n, cap, name, v);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int name_cmp(struct shmring_str a, struct shmring_str b)
{
	size_t m = a.len < b.len ? a.len : b.len;
	int c = m ? memcmp(a.ptr, b.ptr, m) : 0;
	if (c)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

int shmring_pc_reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 256;
	while (c < need)
		c *= 2;
	char *b = realloc(*buf, c);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = c;
	return 0;
}

static size_t escape(char *dst, struct shmring_str s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	return o;
}

int shmring_pc_args_encode(struct shmring_pc_arg *args, size_t n, char **buf, size_t *cap,
                           size_t *len)
{
	*len = 0;
	/* Insertion sort: stable, and n is small (the gateway caps args). */
	for (size_t i = 1; i < n; i++) {
		struct shmring_pc_arg x = args[i];
		size_t j = i;
		while (j > 0 && name_cmp(args[j - 1].name, x.name) > 0) {
			args[j] = args[j - 1];
			j--;
		}
		args[j] = x;
	}
	size_t need = 1;
	for (size_t i = 0; i < n; i++)
		need += 3 * (args[i].name.len + args[i].value.len) + 2;
	if (shmring_pc_reserve(buf, cap, need) < 0)
		return -ENOMEM;
	char *p = *buf;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (o)
			p[o++] = '&';
		o += escape(p + o, args[i].name);
		if (!args[i].flag) {
			p[o++] = '=';
			o += escape(p + o, args[i].value);
		}
	}
	p[o] = '\0';
	*len = o;
	return 0;
}
