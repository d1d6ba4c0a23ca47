/* SPDX-License-Identifier: MIT */
/*
 * Request bodies for the built-in plugins: the Content-Type as Kong reads
 * it, application/x-www-form-urlencoded as ngx.decode_args reads it, and
 * multipart/form-data (RFC 7578) parsed and written back. JSON bodies go
 * through jansson directly (shmring_pc_json_*).
 *
 * Bodies come from clients: every length is checked against the end of the
 * buffer, nothing recurses, and the field count is bounded by the caller's
 * array (-E2BIG past it).
 */
#include "shmring_pc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int lower_prefix(struct shmring_str s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len >= n && strncasecmp(s.ptr, lit, n) == 0;
}

enum shmring_pc_body_type shmring_pc_body_type_of(struct shmring_str ct)
{
	/* kong.request.get_body: the mime type before ';', which must start
	 * with one of the three (after Kong's lower-casing). */
	const char *semi = ct.len ? memchr(ct.ptr, ';', ct.len) : NULL;
	struct shmring_str mime = {ct.ptr, semi ? (size_t)(semi - ct.ptr) : ct.len};
	if (lower_prefix(mime, "application/x-www-form-urlencoded"))
		return SHMRING_PC_BODY_FORM;
	if (lower_prefix(mime, "application/json"))
		return SHMRING_PC_BODY_JSON;
	if (lower_prefix(mime, "multipart/form-data"))
		return SHMRING_PC_BODY_MULTIPART;
	return SHMRING_PC_BODY_NONE;
}

/* 1 if lit occurs in s, ignoring ASCII case. */
static int contains_ci(struct shmring_str s, const char *lit)
{
	size_t n = strlen(lit);
	for (size_t i = 0; i + n <= s.len; i++)
		if (strncasecmp(s.ptr + i, lit, n) == 0)
			return 1;
	return 0;
}

enum shmring_pc_body_type shmring_pc_body_type_named(struct shmring_str ct)
{
	if (contains_ci(ct, "application/json"))
		return SHMRING_PC_BODY_JSON;
	if (contains_ci(ct, "multipart/form-data"))
		return SHMRING_PC_BODY_MULTIPART;
	if (contains_ci(ct, "application/x-www-form-urlencoded"))
		return SHMRING_PC_BODY_FORM;
	return SHMRING_PC_BODY_NONE;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Unescape s into d ('+' is a space, %XX a byte, a bad escape kept as
 * is); returns the length written (<= s.len). */
static size_t form_unescape(struct shmring_str s, char *d)
{
	size_t o = 0;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < s.len && hexval(s.ptr[i + 1]) >= 0 &&
		           hexval(s.ptr[i + 2]) >= 0) {
			c = (char)(hexval(s.ptr[i + 1]) * 16 + hexval(s.ptr[i + 2]));
			i += 2;
		}
		d[o++] = c;
	}
	return o;
}

int shmring_pc_form_decode(struct shmring_str body, char *scratch, struct shmring_pc_arg *out,
                           size_t cap, size_t *n)
{
	*n = 0;
	size_t used = 0;
	const char *p = body.ptr, *end = body.ptr + body.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		struct shmring_str rawk = {p, (size_t)((eq ? eq : stop) - p)};
		p = amp ? amp + 1 : end;
		if (rawk.len == 0)
			continue; /* "&&" or "=v": no name */
		if (*n >= cap)
			return -E2BIG;
		struct shmring_pc_arg *a = &out[(*n)++];
		a->name = (struct shmring_str){scratch + used, form_unescape(rawk, scratch + used)};
		used += a->name.len;
		a->flag = !eq;
		a->value = (struct shmring_str){scratch + used, 0};
		if (eq) {
			struct shmring_str rawv = {eq + 1, (size_t)(stop - eq - 1)};
			a->value.len = form_unescape(rawv, scratch + used);
			used += a->value.len;
		}
	}
	return 0;
}

/* ---- multipart/form-data ------------------------------------------------------ */

int shmring_pc_multipart_boundary(struct shmring_str ct, struct shmring_str *boundary)
{
	*boundary = (struct shmring_str){NULL, 0};
	/* "boundary=" after a ';' and optional blanks, like Kong's
	 * ";%s*boundary=(%S+)", optionally quoted. */
	for (size_t i = 0; i < ct.len; i++) {
		if (ct.ptr[i] != ';')
			continue;
		size_t j = i + 1;
		while (j < ct.len && (ct.ptr[j] == ' ' || ct.ptr[j] == '\t'))
			j++;
		if (ct.len - j < 9 || strncasecmp(ct.ptr + j, "boundary=", 9) != 0)
			continue;
		j += 9;
		size_t k = j;
		while (k < ct.len && ct.ptr[k] != ' ' && ct.ptr[k] != '\t' && ct.ptr[k] != ';')
			k++;
		struct shmring_str b = {ct.ptr + j, k - j};
		if (b.len >= 2 && (b.ptr[0] == '"' || b.ptr[0] == '\'') &&
		    b.ptr[b.len - 1] == b.ptr[0]) {
			b.ptr++;
			b.len -= 2;
		}
		/* RFC 2046: 1..70 characters. */
		if (b.len == 0 || b.len > 70)
			return -EBADMSG;
		*boundary = b;
		return 0;
	}
	return -EBADMSG;
}

/* The name="..." parameter of a Content-Disposition header value; 1 or 0. */
static int disposition_name(struct shmring_str v, struct shmring_str *name)
{
	const char *p = v.ptr, *end = v.ptr + v.len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		while (p < stop && (*p == ' ' || *p == '\t'))
			p++;
		if (stop - p >= 5 && strncasecmp(p, "name=", 5) == 0) {
			struct shmring_str n = {p + 5, (size_t)(stop - p - 5)};
			while (n.len && (n.ptr[n.len - 1] == ' ' || n.ptr[n.len - 1] == '\t'))
				n.len--;
			if (n.len >= 2 && n.ptr[0] == '"' && n.ptr[n.len - 1] == '"') {
				n.ptr++;
				n.len -= 2;
			}
			*name = n;
			return 1;
		}
		p = semi ? semi + 1 : end;
	}
	return 0;
}

/* The name of a part from its header block (CRLF-separated lines). */
static int part_name(struct shmring_str hdrs, struct shmring_str *name)
{
	const char *p = hdrs.ptr, *end = hdrs.ptr + hdrs.len;
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		const char *stop = eol ? eol : end;
		static const char cd[] = "content-disposition:";
		if ((size_t)(stop - p) >= sizeof(cd) - 1 && strncasecmp(p, cd, sizeof(cd) - 1) == 0)
			return disposition_name(
			    (struct shmring_str){p + sizeof(cd) - 1,
			                         (size_t)(stop - p) - (sizeof(cd) - 1)},
			    name);
		p = eol ? eol + 2 : end;
	}
	return 0;
}

/* The first "\r\n--boundary" at or after p, or NULL. */
static const char *next_delim(const char *p, const char *end, struct shmring_str b)
{
	while (p < end) {
		const char *cr = memchr(p, '\r', (size_t)(end - p));
		if (!cr)
			return NULL;
		if ((size_t)(end - cr) >= 4 + b.len && cr[1] == '\n' && cr[2] == '-' &&
		    cr[3] == '-' && memcmp(cr + 4, b.ptr, b.len) == 0)
			return cr;
		p = cr + 1;
	}
	return NULL;
}

int shmring_pc_multipart_parse(struct shmring_str body, struct shmring_str b,
                               struct shmring_pc_part *parts, size_t cap, size_t *n)
{
	*n = 0;
	const char *end = body.ptr + body.len, *p = body.ptr;
	/* The first delimiter may open the body (no CRLF before it); a
	 * preamble before "\r\n--b" is allowed and ignored. */
	if (body.len >= 2 + b.len && p[0] == '-' && p[1] == '-' && memcmp(p + 2, b.ptr, b.len) == 0)
		p += 2 + b.len;
	else if ((p = next_delim(p, end, b)))
		p += 4 + b.len;
	else
		return -EBADMSG;
	for (;;) {
		/* After a delimiter: "--" closes the body, else CRLF opens a part
		 * (transport padding, blanks before the CRLF, is allowed). */
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return 0;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return -EBADMSG;
		p += 2;
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
			return -EBADMSG; /* no headers: no field name */
		/* Headers up to the blank line; a part without any cannot name
		 * its field (RFC 7578), which is refused below. */
		const char *hend = NULL;
		for (const char *x = p; x + 3 < end && !hend; x++)
			if (x[0] == '\r' && x[1] == '\n' && x[2] == '\r' && x[3] == '\n')
				hend = x;
		if (!hend)
			return -EBADMSG;
		struct shmring_str hdrs = {p, (size_t)(hend - p)};
		const char *vstart = hend + 4;
		const char *d = next_delim(vstart, end, b);
		if (!d)
			return -EBADMSG; /* truncated: no delimiter after the part */
		if (*n >= cap)
			return -E2BIG;
		struct shmring_pc_part *pt = &parts[(*n)++];
		memset(pt, 0, sizeof(*pt));
		pt->headers = hdrs;
		pt->value = (struct shmring_str){vstart, (size_t)(d - vstart)};
		if (!part_name(hdrs, &pt->name))
			return -EBADMSG; /* RFC 7578: every part names its field */
		p = d + 4 + b.len;
	}
}

#define PUT(s, l)                                                                                  \
	do {                                                                                       \
		memcpy(*buf + o, (s), (l));                                                        \
		o += (l);                                                                          \
	} while (0)

int shmring_pc_multipart_encode(const struct shmring_pc_part *parts, size_t n, struct shmring_str b,
                                char **buf, size_t *cap, size_t *len)
{
	static const char simple[] = "Content-Disposition: form-data; name=\"";
	size_t need = 1 + 6 + b.len;
	for (size_t i = 0; i < n; i++)
		need += 6 + b.len + parts[i].value.len + 2 +
		        (parts[i].simple ? sizeof(simple) + parts[i].name.len + 1
		                         : parts[i].headers.len + 2);
	*len = 0;
	if (shmring_pc_reserve(buf, cap, need) < 0)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		const struct shmring_pc_part *pt = &parts[i];
		PUT("--", 2);
		PUT(b.ptr, b.len);
		PUT("\r\n", 2);
		if (pt->simple) {
			PUT(simple, sizeof(simple) - 1);
			PUT(pt->name.ptr, pt->name.len);
			PUT("\"\r\n", 3);
		} else if (pt->headers.len) {
			PUT(pt->headers.ptr, pt->headers.len);
			PUT("\r\n", 2);
		}
		PUT("\r\n", 2);
		if (pt->value.len)
			PUT(pt->value.ptr, pt->value.len);
		PUT("\r\n", 2);
	}
	/* lua-multipart writes nothing at all for a body without parts. */
	if (n) {
		PUT("--", 2);
		PUT(b.ptr, b.len);
		PUT("--\r\n", 4);
	}
	*len = o;
	return 0;
}

/* ---- JSON ------------------------------------------------------------------------- */

json_t *shmring_pc_json_decode(struct shmring_str body)
{
	json_error_t e;
	return json_loadb(body.ptr, body.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
}

int shmring_pc_json_encode(const json_t *j, char **buf, size_t *cap, size_t *len)
{
	/* Compact, keys in their order, reals with cjson's 14 digits. */
	size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(14);
	size_t need = json_dumpb(j, NULL, 0, flags);
	*len = 0;
	if (need == 0 || shmring_pc_reserve(buf, cap, need) < 0)
		return -ENOMEM;
	*len = json_dumpb(j, *buf, need, flags);
	return *len == need ? 0 : -ENOMEM;
}
