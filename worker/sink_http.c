/* SPDX-License-Identifier: MIT */
/*
 * HTTP transport of the log sinks (sink.c batches, this file sends): one
 * libcurl multi handle per worker, one easy handle per HTTP sink, at most
 * one request in flight per sink (Kong's queue, concurrency_limit = 1).
 *
 * Why libcurl and not the io_uring TCP sink with an HTTP writer of our own:
 * the endpoint may be https, may answer with chunked bodies, close or keep
 * the connection, redirect, or be slow to accept; libcurl's multi interface
 * handles every one of those without blocking the worker, keeps the
 * connection alive between batches (keepalive), and is one well-kept
 * dependency (libcurl4-openssl-dev) instead of an HTTP/1.1 client and a TLS
 * state machine over io_uring. A batch is one request: the cost per entry
 * is small once batches coalesce, and the loop only drives curl while a
 * request is in flight (shmringd__sinks_next_due asks for 1 ms polls then).
 *
 * As Kong's http-log: basic auth from the URL's user info ("Basic " and the
 * user info as written, base64), Content-Type as configured, the config's
 * headers (never replacing Content-Type, Content-Length or Authorization),
 * TLS without certificate verification (Kong sets ssl_verify = false), a
 * status below 300 is success. timeout bounds the whole request here
 * (Kong: each of connect, send and read).
 */
#include "sink_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sink_http {
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *resolve; /* "host:port:address", from sink.c's lookup */
	char host[256];             /* the URL's host name; "" = an IP literal */
	char port[8];
	void *owner; /* the sink, handed back by shmringd__http_poll */
	bool active; /* added to the multi handle */
	char why[CURL_ERROR_SIZE];
};

static CURLM *multi;

int shmringd__http_init(void)
{
	if (multi)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	multi = curl_multi_init();
	return multi ? 0 : -ENOMEM;
}

void shmringd__http_fini(void)
{
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
}

/* The URL's user info, as written (Kong encodes it unchanged), moved into
 * an Authorization header; the URL keeps the rest. 0 or -EINVAL. */
static int basic_auth(CURLU *u, struct curl_slist **hdrs)
{
	char *user = NULL, *pass = NULL;
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	if (!user && !pass)
		return 0;
	size_t ul = user ? strlen(user) : 0, pl = pass ? strlen(pass) : 0;
	size_t n = ul + 1 + pl, enc = 4 * ((n + 2) / 3) + 1;
	char *info = malloc(n + 1), *line = malloc(sizeof("Authorization: Basic ") + enc);
	int rc = -ENOMEM;
	if (info && line) {
		snprintf(info, n + 1, "%s%s%s", user ? user : "", pass ? ":" : "",
		         pass ? pass : "");
		strcpy(line, "Authorization: Basic ");
		EVP_EncodeBlock((unsigned char *)line + strlen(line), (unsigned char *)info,
		                (int)strlen(info));
		struct curl_slist *l = curl_slist_append(*hdrs, line);
		if (l) {
			*hdrs = l;
			rc = 0;
		}
	}
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	free(info);
	free(line);
	curl_free(user);
	curl_free(pass);
	return rc;
}

/* libcurl is about to resolve a name itself: refused, except for an IP
 * literal (no lookup). Its threaded resolver is joined when a request ends
 * or is removed mid-lookup, so a slow DNS answer would stall the worker;
 * sink.c looks names up with getaddrinfo_a instead and hands the address
 * over (CURLOPT_RESOLVE), which curl finds in its cache before it gets
 * here. */
static int resolver_start(void *resolver_state, void *reserved, void *arg)
{
	(void)resolver_state;
	(void)reserved;
	const struct sink_http *h = arg;
	return h->host[0] ? 1 : 0;
}

/* The URL's host and port into h: a name to look up, or "" for an IP
 * literal. 0, or -EINVAL for a name that is not plain ASCII letters,
 * digits, '-', '_' and '.' (an IDN would be looked up by curl under its
 * punycode form, which sink.c's lookup would not match). */
static int url_target(CURLU *u, struct sink_http *h)
{
	char *host = NULL, *port = NULL;
	int rc = -EINVAL;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	size_t n = strlen(host);
	struct in_addr a4;
	if (host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1) {
		h->host[0] = '\0';
	} else if (n && n < sizeof(h->host) &&
	           strspn(host,
	                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") ==
	               n) {
		memcpy(h->host, host, n + 1);
	} else {
		goto out;
	}
	snprintf(h->port, sizeof(h->port), "%s", port);
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	return rc;
}

/* libcurl's response body (Kong reads and drops it too). */
static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int shmringd__http_open(const struct shmringd_http_opts *o, void *owner, struct sink_http **out,
                        char *err, size_t errlen)
{
	*out = NULL;
	if (!multi) {
		snprintf(err, errlen, "HTTP sinks: libcurl did not start");
		return -ENODEV;
	}
	struct sink_http *h = calloc(1, sizeof(*h));
	CURLU *u = curl_url();
	char *url = NULL, *scheme = NULL;
	int rc = -ENOMEM;
	if (!h || !u)
		goto fail;
	h->owner = owner;
	rc = -EINVAL;
	if (curl_url_set(u, CURLUPART_URL, o->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https"))) {
		snprintf(err, errlen, "http sink: not an http:// or https:// URL");
		goto fail;
	}
	if (url_target(u, h) < 0) {
		snprintf(err, errlen,
		         "http sink: the host must be an IP address or a name of ASCII letters, "
		         "digits, '-', '_' and '.'");
		goto fail;
	}
	char ct[64];
	snprintf(ct, sizeof(ct), "Content-Type: %s", o->content_type);
	rc = -ENOMEM;
	/* "Expect:" with no value: no 100-continue round trip before the body */
	const char *fixed[] = {ct, "Expect:"};
	for (size_t i = 0; i < 2 + o->nheaders; i++) {
		struct curl_slist *l =
		    curl_slist_append(h->headers, i < 2 ? fixed[i] : o->headers[i - 2]);
		if (!l)
			goto fail;
		h->headers = l;
	}
	if (basic_auth(u, &h->headers) < 0)
		goto fail;
	if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK || !(h->easy = curl_easy_init()))
		goto fail;
	CURL *e = h->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
	/* keepalive: an idle connection is reused up to this long */
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)((o->keepalive_ms + 999) / 1000));
	if (!o->keepalive_ms)
		curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->why);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_PRIVATE, h);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_RESOLVER_START_FUNCTION, resolver_start);
	curl_easy_setopt(e, CURLOPT_RESOLVER_START_DATA, h);
	/* No proxy from the environment: Kong's http-log uses none, and a
	 * proxy's name would be looked up by curl's resolver. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	rc = 0;
	*out = h;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "http sink: out of memory");
	if (rc < 0)
		shmringd__http_free(h);
	curl_free(url);
	curl_free(scheme);
	if (u)
		curl_url_cleanup(u);
	return rc;
}

void shmringd__http_free(struct sink_http *h)
{
	if (!h)
		return;
	if (h->active)
		curl_multi_remove_handle(multi, h->easy);
	if (h->easy)
		curl_easy_cleanup(h->easy);
	curl_slist_free_all(h->headers);
	curl_slist_free_all(h->resolve);
	free(h);
}

const char *shmringd__http_host(const struct sink_http *h, const char **port)
{
	*port = h->port;
	return h->host[0] ? h->host : NULL;
}

int shmringd__http_set_address(struct sink_http *h, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN], entry[sizeof(h->host) + sizeof(h->port) + sizeof(ip) + 4];
	const void *a = sa->sa_family == AF_INET6
	                    ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
	                    : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
	if (!inet_ntop(sa->sa_family, a, ip, sizeof(ip)))
		return -EINVAL;
	snprintf(entry, sizeof(entry), sa->sa_family == AF_INET6 ? "%s:%s:[%s]" : "%s:%s:%s",
	         h->host, h->port, ip);
	struct curl_slist *l = curl_slist_append(NULL, entry);
	if (!l)
		return -ENOMEM;
	curl_slist_free_all(h->resolve);
	h->resolve = l;
	/* read at the next curl_multi_add_handle: replaces the cached entry */
	curl_easy_setopt(h->easy, CURLOPT_RESOLVE, h->resolve);
	return 0;
}

int shmringd__http_send(struct sink_http *h, const char *body, size_t len)
{
	h->why[0] = '\0';
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body); /* not copied: kept until done */
	if (curl_multi_add_handle(multi, h->easy) != CURLM_OK)
		return -ENOMEM;
	h->active = true;
	int running;
	curl_multi_perform(multi, &running); /* start connecting now */
	return 0;
}

void shmringd__http_poll(void (*done)(void *owner, long status, const char *why))
{
	if (!multi)
		return;
	int running, left;
	curl_multi_perform(multi, &running);
	CURLMsg *m;
	while ((m = curl_multi_info_read(multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct sink_http *h = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
		long status = 0;
		CURLcode res = m->data.result;
		if (res == CURLE_OK)
			curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		else if (!h->why[0])
			snprintf(h->why, sizeof(h->why), "%s", curl_easy_strerror(res));
		curl_multi_remove_handle(multi, m->easy_handle);
		h->active = false;
		done(h->owner, status, h->why);
	}
}

void shmringd__http_wait(int timeout_ms)
{
	if (multi)
		curl_multi_poll(multi, NULL, 0, timeout_ms, NULL);
}
