/* SPDX-License-Identifier: MIT */
/*
 * Log sinks: per-worker batches written by the worker's io_uring.
 *
 * Each sink has two buffers of log_sink_max_bytes / 2: `fill`, which plugins
 * append to, and `flight`, which is being written. A flush swaps them when
 * nothing is in flight, so appending never waits for I/O (double
 * buffering). fill is flushed when it holds log_batch_bytes or its oldest
 * entry is log_flush_ms old. When a sink is down (TCP not connected, or a
 * write is slow), fill grows up to its cap and further entries are dropped
 * and counted: memory stays bounded and the worker never blocks.
 *
 * File and TCP batches are one byte stream (one SQE, resubmitted on a short
 * write); UDP batches hold [u32 len][bytes] entries, sent as one SENDMSG
 * SQE per datagram.
 *
 * TCP and UDP sinks take a host name as well as an IP literal: the name is
 * looked up with getaddrinfo_a (glibc's resolver, on a thread of its own)
 * before each connection, so the loop never waits for DNS and a changed
 * address is followed at the next reconnect. Entries wait in fill
 * meanwhile, within the same bounds.
 *
 * A tcp sink with tls=1 (Kong's tcp-log `tls`, `tls_sni`) speaks TLS once
 * connected: handshake and writes through OpenSSL over the non-blocking
 * socket (sink_tls.c), stepped from the loop instead of io_uring writes.
 *
 * HTTP sinks (Kong's http-log) keep entries as lines too, but a batch is at
 * most batch_entries of them, taken from the front of fill (Kong's
 * max_batch_size; 1 by default, one request per entry), sent as one request
 * by sink_http.c: the entry itself when single, else a JSON array of them.
 * A failed request (no answer, or a status >= 300) is retried after
 * retry_initial_ms, doubling up to retry_max_ms, until the batch has been
 * failing for retry_time_ms; then it is dropped and counted (Kong's queue:
 * initial_retry_delay, max_retry_delay, max_retry_time). Meanwhile fill
 * keeps taking entries up to its bounds (bytes, and max_entries).
 *
 * A spec may end in "?key=value&..." (parse_params): per-sink batch size,
 * entry count, flush interval, memory bound and, for files, reopen (a fresh
 * open of the path before each batch, for log rotation); for HTTP sinks the
 * request's settings too (header values percent-encoded, so the spec's
 * last '?' is always the one before the parameters). The parameters
 * are part of the spec, so sinks with different settings are different
 * sinks even when they name the same file (each write is whole lines with
 * O_APPEND, so sharing a file between them interleaves batches, not bytes).
 */
#include "sink_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sdt.h>
#include <unistd.h>

#define RING_ENTRIES 256u
#define UDP_CHUNK 64u /* datagrams in flight per UDP sink */
#define RECONNECT_MIN_MS 50u
#define RECONNECT_MAX_MS 2000u
#define SINK_SPEC_MAX 4096
#define WARN_EVERY_NS (10 * 1000000000ull)
#define HTTP_DNS_TTL_NS (60 * 1000000000ull) /* an http sink's address is looked up again */

enum sink_kind { SINK_FILE, SINK_TCP, SINK_UDP, SINK_HTTP };
enum op { OP_WRITE = 1, OP_CONNECT = 2, OP_UDP = 3, OP_CANCEL = 4 };

struct batch {
	char *data;
	/* An http sink's fill is a ring of whole entries: they start at head
	 * and run to wrap (when not 0; the rest from data[0]) or for len bytes.
	 * Every other batch has head = wrap = 0. */
	uint32_t head;
	uint32_t wrap;
	uint32_t len; /* bytes queued */
	uint32_t entries;
	uint64_t first_ns; /* when the first entry of this batch was appended */
};

struct shmring_sink {
	struct shmring_sink *next;
	char spec[SINK_SPEC_MAX];
	char name[256];           /* the destination in messages: no parameters, no credentials */
	char path[SINK_SPEC_MAX]; /* file: the path without the parameters (never cut) */
	enum sink_kind kind;
	bool reopen;            /* file: open path anew before each batch */
	uint32_t batch_bytes;   /* flush fill at this size ... */
	uint32_t batch_entries; /* ... or entry count (0 = no count bound) ... */
	uint32_t flush_ms;      /* ... or when its oldest entry is this old */
	int refs;               /* plugin references; 0 = closing once drained */
	int fd;                 /* -1 while down */
	bool connecting;        /* a CONNECT SQE is outstanding */
	bool in_flight;         /* a WRITE (or UDP SENDMSGs) outstanding */
	bool reserved;          /* between reserve and commit */
	uint32_t cap;           /* bytes per buffer */
	struct batch fill;
	struct batch flight;
	uint32_t flight_off;  /* bytes of flight written (stream) or sent (UDP) */
	uint32_t udp_pending; /* SENDMSG SQEs outstanding */
	uint32_t udp_next;    /* offset in flight of the next datagram to send */
	uint64_t retry_at;    /* down: next connect attempt (ns) */
	uint32_t backoff_ms;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char host[256]; /* a name to look up; "" = addr is an IP literal's (tcp, udp) or curl's */
	char port[8];
	struct lookup *gai;     /* the lookup in flight (getaddrinfo_a), or NULL */
	uint64_t resolved_ns;   /* http: when addr was looked up (0 = never) */
	bool tls;               /* tcp: TLS once connected */
	char sni[256];          /* tcp + tls: the server name to send, "" = none */
	struct sink_tls *tls_s; /* the session while connected */
	bool handshaking;       /* tls_s: the handshake is not done yet */
	/* tcp: Kong's tcp-log timeout and keepalive. A connect, TLS handshake or
	 * write that has not finished by io_deadline fails the connection (the
	 * batch is kept for the next one); a connection unused for keepalive_ms
	 * (0: for ever) is closed, and opened again when entries come. */
	uint32_t timeout_ms;
	uint32_t keepalive_ms;
	uint64_t io_deadline;
	uint64_t used_ns; /* the connection's last completed write (or its start) */
	bool cancelling;  /* the outstanding connect or write is being cancelled */
	bool idle;        /* closed by keepalive: connect only for entries */
	struct msghdr msg[UDP_CHUNK];
	struct iovec iov[UDP_CHUNK];
	struct shmring_sink_stats st;
	/* HTTP sinks */
	struct sink_http *http;
	uint32_t max_entries;      /* fill holds at most this many (0 = no count bound) */
	uint32_t retry_initial_ms; /* first wait after a failed request ... */
	uint32_t retry_max_ms;     /* ... doubling up to this ... */
	uint32_t retry_time_ms;    /* ... until the batch has failed this long */
	uint64_t batch_first_ns;   /* when flight was taken from fill */
	char *body;                /* the request body built from flight */
	size_t body_cap;
	uint64_t last_warn_ns; /* rate of the failure log line */
};

static struct {
	struct io_uring ring;
	bool ready;
	uint32_t http_busy; /* HTTP requests in flight */
	struct shmringd_sink_opts o;
	struct shmringd_worker_stats *ws;
	struct shmring_sink *list;
	struct lookup *orphans; /* lookups of freed sinks, still running */
	uint64_t now;           /* last time seen by sinks_poll */
} S;

static uint64_t tag(struct shmring_sink *s, enum op op)
{
	return (uint64_t)(uintptr_t)s | (uint64_t)op;
}

int shmringd__sinks_init(const struct shmringd_sink_opts *o, struct shmringd_worker_stats *st)
{
	S.o = *o;
	S.ws = st;
	S.now = shmring_now_ns();
	int rc = io_uring_queue_init(RING_ENTRIES, &S.ring, 0);
	if (rc < 0)
		return rc;
	if ((rc = shmringd__http_init(o->wake)) < 0) {
		io_uring_queue_exit(&S.ring);
		return rc;
	}
	S.ready = true;
	return 0;
}

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&S.ring);
	if (!sqe) {
		io_uring_submit(&S.ring);
		sqe = io_uring_get_sqe(&S.ring);
	}
	return sqe;
}

static void count_drop(struct shmring_sink *s, uint64_t n)
{
	s->st.dropped += n;
	S.ws->sink_dropped += n;
}

/* ---- connecting ---------------------------------------------------------- */

static void mark_down(struct shmring_sink *s)
{
	shmringd__tls_free(s->tls_s);
	s->tls_s = NULL;
	s->handshaking = false;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : RECONNECT_MIN_MS;
	if (s->backoff_ms > RECONNECT_MAX_MS)
		s->backoff_ms = RECONNECT_MAX_MS;
	s->retry_at = S.now + (uint64_t)s->backoff_ms * 1000000u;
}

/* ---- host names ---------------------------------------------------------- */

/* One getaddrinfo_a request and everything its resolver thread reads or
 * writes, so it can outlive the sink that asked. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	struct lookup *next; /* on S.orphans */
	char host[256];
	char port[8];
};

static void lookup_release(struct lookup *l)
{
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l);
}

/* A sink's lookup, given up. One still running on the resolver's thread
 * (it writes into l) joins S.orphans, freed by reap_orphans once it ends:
 * waiting for it here would stall the worker for as long as DNS takes. */
static void lookup_free(struct shmring_sink *s)
{
	struct lookup *l = s->gai;
	s->gai = NULL;
	if (!l)
		return;
	if (gai_cancel(&l->cb) == EAI_NOTCANCELED) {
		l->next = S.orphans;
		S.orphans = l;
		return;
	}
	lookup_release(l);
}

/* Free the orphaned lookups that have ended; with wait, all of them (only
 * when the worker stops). */
static void reap_orphans(bool wait)
{
	for (struct lookup **pp = &S.orphans, *l; (l = *pp);) {
		if (gai_error(&l->cb) == EAI_INPROGRESS) {
			if (!wait) {
				pp = &l->next;
				continue;
			}
			const struct gaicb *one[1] = {&l->cb};
			while (gai_error(&l->cb) == EAI_INPROGRESS)
				gai_suspend(one, 1, NULL);
		}
		*pp = l->next;
		lookup_release(l);
	}
}

/* Ask for s->host's address without waiting. 0, or -1 (counted). */
static int lookup_start(struct shmring_sink *s)
{
	struct lookup *l = calloc(1, sizeof(*l));
	if (l) {
		snprintf(l->host, sizeof(l->host), "%s", s->host);
		snprintf(l->port, sizeof(l->port), "%s", s->port);
		l->hints.ai_socktype = s->kind == SINK_UDP ? SOCK_DGRAM : SOCK_STREAM;
		l->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
		l->cb = (struct gaicb){
		    .ar_name = l->host, .ar_service = l->port, .ar_request = &l->hints};
		struct gaicb *list[1] = {&l->cb};
		struct sigevent none = {.sigev_notify = SIGEV_NONE};
		if (getaddrinfo_a(GAI_NOWAIT, list, 1, &none) == 0) {
			s->gai = l;
			return 0;
		}
		free(l);
	}
	s->st.errors++;
	S.ws->sink_errors++;
	return -1;
}

/* The lookup's answer into s->addr: 1 done, 0 still running, else the
 * failure (an EAI_ code, < 0; counted). */
static int lookup_done(struct shmring_sink *s)
{
	int e = gai_error(&s->gai->cb);
	if (e == EAI_INPROGRESS)
		return 0;
	struct addrinfo *ai = e == 0 ? s->gai->cb.ar_result : NULL;
	if (ai && ai->ai_addrlen <= sizeof(s->addr)) {
		memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
		s->addrlen = ai->ai_addrlen;
	} else {
		e = e ? e : EAI_FAIL;
	}
	lookup_free(s);
	if (e) {
		s->st.errors++;
		S.ws->sink_errors++;
		return e;
	}
	return 1;
}

/* A tcp or udp sink's failed lookup: told (at most every WARN_EVERY_NS),
 * the sink down until its retry. */
static void lookup_failed(struct shmring_sink *s, int e)
{
	if (e && (S.now - s->last_warn_ns >= WARN_EVERY_NS || !s->last_warn_ns)) {
		shmringd__log("sink %s: cannot resolve %s: %s", s->name, s->host, gai_strerror(e));
		s->last_warn_ns = S.now;
	}
	mark_down(s);
}

static void start_connect(struct shmring_sink *s);

/* UDP: a connected datagram socket for s->addr (connect(2) on UDP only
 * records the peer: it does not wait). */
static void udp_open(struct shmring_sink *s)
{
	s->fd = socket(s->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen) < 0) {
		s->st.errors++;
		S.ws->sink_errors++;
		mark_down(s);
	}
}

/* A tcp or udp sink without a connection: the next step towards one,
 * once its retry time has come (look the name up, then connect). */
static void connect_step(struct shmring_sink *s, uint64_t now)
{
	if (s->fd >= 0 || s->connecting || (s->kind != SINK_TCP && s->kind != SINK_UDP) ||
	    now < s->retry_at || (s->idle && !s->fill.len && !s->flight.len))
		return;
	if (s->host[0]) {
		if (!s->gai) {
			if (lookup_start(s) < 0)
				lookup_failed(s, 0);
			return;
		}
		int r = lookup_done(s);
		if (r < 0)
			lookup_failed(s, r);
		if (r <= 0)
			return;
	}
	if (s->kind == SINK_TCP)
		start_connect(s);
	else
		udp_open(s);
}

/* Start a TCP connect through the ring (non-blocking socket). */
static void start_connect(struct shmring_sink *s)
{
	s->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		s->st.errors++;
		mark_down(s);
		return;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct io_uring_sqe *sqe = get_sqe();
	if (!sqe) {
		mark_down(s);
		return;
	}
	io_uring_prep_connect(sqe, s->fd, (struct sockaddr *)&s->addr, s->addrlen);
	io_uring_sqe_set_data64(sqe, tag(s, OP_CONNECT));
	s->connecting = true;
	s->idle = false;
	s->io_deadline = S.now + (uint64_t)s->timeout_ms * 1000000u;
	io_uring_submit(&S.ring);
}

/* ---- flushing ------------------------------------------------------------ */

static void submit_udp_chunk(struct shmring_sink *s)
{
	while (s->udp_pending < UDP_CHUNK && s->udp_next + 4 <= s->flight.len) {
		uint32_t len;
		memcpy(&len, s->flight.data + s->udp_next, 4);
		struct io_uring_sqe *sqe = get_sqe();
		if (!sqe)
			break;
		uint32_t i = s->udp_pending;
		s->iov[i] = (struct iovec){s->flight.data + s->udp_next + 4, len};
		s->msg[i] = (struct msghdr){.msg_iov = &s->iov[i], .msg_iovlen = 1};
		io_uring_prep_sendmsg(sqe, s->fd, &s->msg[i], MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, tag(s, OP_UDP));
		s->udp_pending++;
		s->udp_next += 4 + len;
	}
}

/* Write what remains of flight. */
static void tls_step(struct shmring_sink *s);

static void submit_flight(struct shmring_sink *s)
{
	s->in_flight = true;
	s->io_deadline = S.now + (uint64_t)s->timeout_ms * 1000000u;
	if (s->tls_s) {
		if (s->flight_off == 0) {
			s->st.flushes++;
			S.ws->sink_flushes++;
			DTRACE_PROBE3(shmring, flush, s->spec, s->flight.len, s->flight.entries);
		}
		tls_step(s);
		return;
	}
	if (s->kind == SINK_UDP) {
		submit_udp_chunk(s);
		if (!s->udp_pending) { /* no SQE: due() retries the leftover batch */
			s->in_flight = false;
			return;
		}
	} else {
		struct io_uring_sqe *sqe = get_sqe();
		if (!sqe) {
			s->in_flight = false;
			return;
		}
		const char *p = s->flight.data + s->flight_off;
		uint32_t n = s->flight.len - s->flight_off;
		if (s->kind == SINK_FILE)
			io_uring_prep_write(sqe, s->fd, p, n, (uint64_t)-1); /* O_APPEND */
		else
			io_uring_prep_send(sqe, s->fd, p, n, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, tag(s, OP_WRITE));
	}
	if (s->flight_off == 0) {
		/* a new batch, not the rest of a short write */
		s->st.flushes++;
		S.ws->sink_flushes++;
		DTRACE_PROBE3(shmring, flush, s->spec, s->flight.len, s->flight.entries);
	}
	io_uring_submit(&S.ring);
}

/* reopen: the path may have been renamed away (log rotation); open it
 * again so this batch lands in the file now at that path. On failure the
 * old descriptor is kept (an error is counted): a rotation that removed
 * the directory loses nothing. Called only with nothing in flight. */
static void reopen_file(struct shmring_sink *s)
{
	char why[64 + PATH_MAX];
	int fd = shmring_file_open(s->path, O_WRONLY | O_APPEND | O_CREAT, 0640, why, sizeof(why));
	if (fd < 0) {
		s->st.errors++;
		S.ws->sink_errors++;
		return;
	}
	close(s->fd);
	s->fd = fd;
}

static void flight_done(struct shmring_sink *s)
{
	s->used_ns = S.now;
	s->st.bytes += s->flight.len;
	S.ws->sink_bytes += s->flight.len;
	s->flight.len = 0;
	s->flight.entries = 0;
	s->flight_off = 0;
	s->udp_next = 0;
	s->in_flight = false;
}

/* ---- HTTP batches --------------------------------------------------------- */

/* Where the next entry of fill goes. */
static uint32_t fill_tail(const struct shmring_sink *s)
{
	return s->fill.wrap ? s->fill.len - (s->fill.wrap - s->fill.head)
	                    : s->fill.head + s->fill.len;
}

/* The oldest entry (line) of an http sink's fill, taken off its front:
 * its bytes and length. */
static const char *pop_front(struct shmring_sink *s, uint32_t *n)
{
	const char *front = s->fill.data + s->fill.head;
	uint32_t seg = s->fill.wrap ? s->fill.wrap - s->fill.head : s->fill.len;
	const char *nl = memchr(front, '\n', seg);
	*n = nl ? (uint32_t)(nl - front) + 1 : seg;
	s->fill.len -= *n;
	s->fill.head += *n;
	if (s->fill.entries)
		s->fill.entries--;
	if (s->fill.wrap && s->fill.head == s->fill.wrap)
		s->fill.head = s->fill.wrap = 0;
	if (s->fill.len == 0)
		s->fill.head = s->fill.wrap = s->fill.entries = 0;
	return front;
}

/* Move the first batch_entries entries (lines) of fill into flight. What
 * stays in fill keeps the batch's age, so it is sent no later than its
 * oldest entry asks. */
static void take_http_batch(struct shmring_sink *s)
{
	uint32_t want = s->batch_entries ? s->batch_entries : UINT32_MAX, n;
	s->flight.len = 0;
	s->flight.entries = 0;
	s->flight.first_ns = s->fill.first_ns;
	while (s->fill.len && s->flight.entries < want) {
		const char *p = pop_front(s, &n);
		memcpy(s->flight.data + s->flight.len, p, n);
		s->flight.len += n;
		s->flight.entries++;
	}
}

/* Room for need contiguous bytes at an http sink's tail, within its
 * bounds (cap bytes, max_entries): the oldest entries are dropped, as
 * Kong's queue does; each drop moves the front past one entry, no copy.
 * 0, or -1 when need is more than the whole queue. */
static int http_room(struct shmring_sink *s, uint32_t need)
{
	if (need > s->cap)
		return -1;
	for (;;) {
		if (s->fill.len == 0)
			s->fill.head = s->fill.wrap = 0;
		uint32_t tail = fill_tail(s);
		bool fits = s->fill.wrap ? s->fill.head - tail >= need
		                         : s->cap - tail >= need || s->fill.head >= need;
		if (fits && s->fill.len + need <= s->cap &&
		    !(s->max_entries && s->fill.entries >= s->max_entries)) {
			if (!s->fill.wrap && s->cap - tail < need)
				s->fill.wrap = tail; /* the next entry starts at data[0] */
			return 0;
		}
		uint32_t n;
		pop_front(s, &n);
		count_drop(s, 1);
	}
}

/* flight as a request body in s->body: the entry itself when a batch is
 * one entry by config (Kong's max_batch_size = 1), else a JSON array of
 * the entries. Entries are lines, and JSON text never holds an unescaped
 * newline: each '\n' becomes ',' and the last one ']'. The length, or
 * -ENOMEM. */
static ssize_t build_body(struct shmring_sink *s)
{
	size_t n = s->flight.len, need = n + 2;
	if (need > s->body_cap) {
		char *b = realloc(s->body, need);
		if (!b)
			return -ENOMEM;
		s->body = b;
		s->body_cap = need;
	}
	bool nl_last = n && s->flight.data[n - 1] == '\n';
	if (s->batch_entries == 1) {
		memcpy(s->body, s->flight.data, n);
		return (ssize_t)(nl_last ? n - 1 : n);
	}
	s->body[0] = '[';
	memcpy(s->body + 1, s->flight.data, n);
	for (size_t i = 1; i <= n; i++)
		if (s->body[i] == '\n')
			s->body[i] = ',';
	if (!nl_last)
		n++;
	s->body[n] = ']';
	return (ssize_t)n + 1;
}

static void http_done(void *owner, long status, const char *why);

static void http_submit(struct shmring_sink *s)
{
	ssize_t len = build_body(s);
	if (len < 0 || shmringd__http_send(s->http, s->body, (size_t)len) < 0) {
		http_done(s, 0, "out of memory");
		return;
	}
	s->in_flight = true;
	S.http_busy++;
}

/* A request ended: a status below 300 (Kong's test) completes the batch;
 * anything else waits for a retry, or drops the batch once it has been
 * failing for retry_time_ms. */
static void http_done(void *owner, long status, const char *why)
{
	struct shmring_sink *s = owner;
	if (s->in_flight)
		S.http_busy--;
	s->in_flight = false;
	if (status > 0 && status < 300) {
		s->batch_first_ns = 0;
		s->backoff_ms = 0;
		s->retry_at = 0;
		flight_done(s);
		return;
	}
	s->st.errors++;
	S.ws->sink_errors++;
	if (!status)
		s->resolved_ns = 0; /* no answer: the address may have changed */
	bool give_up = S.now - s->batch_first_ns >= (uint64_t)s->retry_time_ms * 1000000u;
	/* A drop is always told; retries once per WARN_EVERY_NS. */
	if (give_up || S.now - s->last_warn_ns >= WARN_EVERY_NS || !s->last_warn_ns) {
		char what[64];
		if (status)
			snprintf(what, sizeof(what), "HTTP status %ld", status);
		shmringd__log("sink %s: %s; %s", s->name, status ? what : why,
		              give_up ? "batch dropped (max_retry_time)" : "retrying");
		s->last_warn_ns = S.now;
	}
	if (give_up) {
		count_drop(s, s->flight.entries);
		s->flight.len = 0;
		s->flight.entries = 0;
		s->batch_first_ns = 0;
		s->backoff_ms = 0;
		s->retry_at = 0;
		return;
	}
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : s->retry_initial_ms;
	if (s->backoff_ms > s->retry_max_ms)
		s->backoff_ms = s->retry_max_ms;
	s->retry_at = S.now + (uint64_t)s->backoff_ms * 1000000u;
}

/* An HTTP sink's host name: its address, looked up without waiting and
 * handed to curl. 1 known, 0 not yet (the lookup runs), -1 failed (the
 * batch waits for its retry). Looked up again after a request without an
 * answer (the requests wait for the new address), and once the address is
 * HTTP_DNS_TTL_NS old (the old one is used until the new one is known; if
 * the look-up fails, for another HTTP_DNS_TTL_NS). */
static int http_resolve(struct shmring_sink *s)
{
	bool have = s->resolved_ns != 0;
	if (!s->host[0] || (have && S.now - s->resolved_ns < HTTP_DNS_TTL_NS))
		return 1;
	int r = s->gai ? lookup_done(s) : lookup_start(s) == 0 ? 0 : EAI_MEMORY;
	if (r == 1 && shmringd__http_set_address(s->http, (struct sockaddr *)&s->addr) < 0)
		r = EAI_MEMORY;
	if (r == 1 || (r < 0 && have))
		s->resolved_ns = S.now ? S.now : 1;
	if (r == 1 || have)
		return 1;
	if (r == 0)
		return 0;
	char why[320];
	snprintf(why, sizeof(why), "cannot resolve %s: %s", s->host, gai_strerror(r));
	http_done(s, 0, why);
	return -1;
}

/* The next HTTP batch, if the sink can send now. */
static void flush_http(struct shmring_sink *s)
{
	if (s->in_flight || s->reserved || S.now < s->retry_at)
		return;
	if (s->flight.len == 0) {
		if (s->fill.len == 0)
			return;
		take_http_batch(s);
		s->batch_first_ns = S.now ? S.now : 1;
		s->st.flushes++;
		S.ws->sink_flushes++;
		DTRACE_PROBE3(shmring, flush, s->spec, s->flight.len, s->flight.entries);
	}
	if (http_resolve(s) == 1)
		http_submit(s);
}

/* Swap fill into flight and submit it, if the sink can take it now. */
static void flush(struct shmring_sink *s)
{
	if (s->kind == SINK_HTTP) {
		flush_http(s);
		return;
	}
	if (s->in_flight || s->fd < 0 || s->connecting || s->handshaking || s->reserved)
		return;
	if (s->flight.len == 0) {
		if (s->fill.len == 0)
			return;
		struct batch t = s->flight;
		s->flight = s->fill;
		s->fill = t;
		s->fill.len = 0;
		s->fill.entries = 0;
		s->flight_off = 0;
		s->udp_next = 0;
		if (s->reopen)
			reopen_file(s);
	}
	/* else: a batch left over from a disconnect is resent first */
	submit_flight(s);
}

static bool due(const struct shmring_sink *s, uint64_t now)
{
	return s->fill.len >= s->batch_bytes ||
	       (s->batch_entries && s->fill.entries >= s->batch_entries) ||
	       (s->fill.len && now - s->fill.first_ns >= (uint64_t)s->flush_ms * 1000000u) ||
	       (s->flight.len && !s->in_flight); /* left over after a reconnect */
}

/* A TLS sink's pending work, as far as it goes without blocking: the
 * handshake, then what remains of flight. A failure keeps the batch for
 * the reconnect, as a failed TCP write does. */
static void tls_step(struct shmring_sink *s)
{
	if (s->handshaking) {
		int r = shmringd__tls_handshake(s->tls_s);
		if (r == 0)
			return;
		if (r < 0)
			goto failed;
		s->handshaking = false;
	}
	while (s->in_flight && s->flight_off < s->flight.len) {
		ssize_t w = shmringd__tls_write(s->tls_s, s->flight.data + s->flight_off,
		                                s->flight.len - s->flight_off);
		if (w == 0)
			return;
		if (w < 0)
			goto failed;
		s->flight_off += (uint32_t)w;
		s->io_deadline = S.now + (uint64_t)s->timeout_ms * 1000000u;
	}
	if (s->in_flight)
		flight_done(s);
	return;
failed:
	s->st.errors++;
	S.ws->sink_errors++;
	s->in_flight = false;
	s->flight_off = 0;
	mark_down(s);
}

static void on_cqe(struct io_uring_cqe *cqe)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	struct shmring_sink *s = (struct shmring_sink *)(uintptr_t)(d & ~(uint64_t)7);
	enum op op = (enum op)(d & 7);
	int res = cqe->res;
	switch (op) {
	case OP_CANCEL:
		break; /* its sink may be gone: the cancelled op reports */
	case OP_CONNECT:
		s->connecting = false;
		s->cancelling = false;
		if (res < 0) {
			s->st.errors++;
			S.ws->sink_errors++;
			mark_down(s);
		} else {
			s->backoff_ms = 0;
			s->st.reconnects++;
			S.ws->sink_reconnects++;
			s->used_ns = S.now;
			if (s->tls) {
				if (shmringd__tls_open(s->fd, s->sni[0] ? s->sni : NULL,
				                       &s->tls_s) < 0) {
					s->st.errors++;
					S.ws->sink_errors++;
					mark_down(s);
					break;
				}
				s->handshaking = true;
				s->io_deadline = S.now + (uint64_t)s->timeout_ms * 1000000u;
				tls_step(s);
			}
		}
		break;
	case OP_WRITE:
		s->cancelling = false;
		if (res < 0 && res != -EAGAIN && res != -EINTR) {
			s->st.errors++;
			S.ws->sink_errors++;
			s->in_flight = false;
			if (s->kind == SINK_TCP) {
				/* Keep the batch: resent whole after the reconnect. */
				s->flight_off = 0;
				mark_down(s);
			} else {
				count_drop(s, s->flight.entries);
				s->flight.len = 0;
				s->flight.entries = 0;
				s->flight_off = 0;
			}
			break;
		}
		if (res > 0)
			s->flight_off += (uint32_t)res;
		if (s->flight_off < s->flight.len)
			submit_flight(s); /* short write: the rest */
		else
			flight_done(s);
		break;
	case OP_UDP:
		s->udp_pending--;
		if (res < 0) {
			s->st.errors++;
			S.ws->sink_errors++;
			count_drop(s, 1);
		}
		if (s->udp_pending == 0) {
			if (s->udp_next < s->flight.len)
				submit_udp_chunk(s), io_uring_submit(&S.ring);
			else
				flight_done(s);
		}
		break;
	}
}

static void reap(void)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&S.ring, head, cqe)
	{
		on_cqe(cqe);
		n++;
	}
	if (n)
		io_uring_cq_advance(&S.ring, n);
}

static void sink_free(struct shmring_sink *s)
{
	lookup_free(s);
	shmringd__tls_free(s->tls_s);
	if (s->http && s->in_flight)
		S.http_busy--;
	shmringd__http_free(s->http);
	free(s->body);
	if (s->fd >= 0)
		close(s->fd);
	free(s->fill.data);
	free(s->flight.data);
	free(s);
}

/* A tcp sink's timeout and keepalive (see struct shmring_sink). */
static void tcp_timers(struct shmring_sink *s, uint64_t now)
{
	bool waiting =
	    s->connecting || s->handshaking || (s->in_flight && s->flight_off < s->flight.len);
	if (waiting && now >= s->io_deadline) {
		if (s->tls_s && !s->connecting) {
			/* stepped from here, nothing outstanding in the ring */
			s->st.errors++;
			S.ws->sink_errors++;
			s->in_flight = false;
			s->flight_off = 0;
			mark_down(s);
		} else if (!s->cancelling) {
			/* the connect or send fails with -ECANCELED, handled as any
			 * failure of it */
			struct io_uring_sqe *sqe = get_sqe();
			if (sqe) {
				io_uring_prep_cancel64(
				    sqe, tag(s, s->connecting ? OP_CONNECT : OP_WRITE), 0);
				io_uring_sqe_set_data64(sqe, (uint64_t)OP_CANCEL);
				io_uring_submit(&S.ring);
				s->cancelling = true;
			}
		}
		return;
	}
	if (s->fd >= 0 && s->keepalive_ms && !waiting && !s->in_flight && !s->reserved &&
	    !s->flight.len && !s->fill.len &&
	    now - s->used_ns >= (uint64_t)s->keepalive_ms * 1000000u) {
		shmringd__tls_free(s->tls_s);
		s->tls_s = NULL;
		close(s->fd);
		s->fd = -1;
		s->idle = true;
	}
}

void shmringd__sinks_poll(uint64_t now)
{
	if (!S.ready)
		return;
	S.now = now;
	if (*S.ring.cq.khead != io_uring_smp_load_acquire(S.ring.cq.ktail))
		reap();
	if (S.orphans)
		reap_orphans(false);
	if (S.http_busy)
		shmringd__http_poll(http_done);
	for (struct shmring_sink **pp = &S.list, *s; (s = *pp);) {
		if (s->kind == SINK_TCP)
			tcp_timers(s, now);
		connect_step(s, now);
		if (s->tls_s && (s->handshaking || s->in_flight))
			tls_step(s);
		if (due(s, now))
			flush(s);
		if (s->refs == 0 && !s->in_flight && !s->connecting && s->fill.len == 0 &&
		    s->flight.len == 0) {
			*pp = s->next;
			sink_free(s);
			continue;
		}
		pp = &s->next;
	}
}

int64_t shmringd__sinks_next_due(uint64_t now)
{
	int64_t best = INT64_MAX;
	for (struct shmring_sink *s = S.list; s; s = s->next) {
		int64_t t = INT64_MAX;
		if (s->kind == SINK_HTTP && s->in_flight)
			t = INT64_MAX; /* shmringd__http_next_due below */
		else if (s->in_flight || s->connecting || s->gai || s->handshaking)
			t = 1000000; /* completions do not wake the futex: look again in 1 ms */
		else if (s->fd < 0 && s->idle && !s->fill.len && !s->flight.len)
			t = INT64_MAX; /* closed by keepalive: until an entry comes */
		else if (s->fd < 0 && (s->kind == SINK_TCP || s->kind == SINK_UDP))
			t = s->retry_at > now ? (int64_t)(s->retry_at - now) : 0;
		else if (s->kind == SINK_TCP && s->keepalive_ms && !s->fill.len && !s->flight.len) {
			uint64_t at = s->used_ns + (uint64_t)s->keepalive_ms * 1000000u;
			t = at > now ? (int64_t)(at - now) : 0;
		} else if (s->kind == SINK_HTTP && s->flight.len) /* a failed batch: its retry */
			t = s->retry_at > now ? (int64_t)(s->retry_at - now) : 0;
		else if (s->fill.len) {
			uint64_t at = s->fill.first_ns + (uint64_t)s->flush_ms * 1000000u;
			t = at > now ? (int64_t)(at - now) : 0;
		}
		if (t < best)
			best = t;
	}
	if (S.http_busy) {
		int64_t t = shmringd__http_next_due(now);
		if (t < best)
			best = t;
	}
	return best;
}

bool shmringd__sinks_woken(void)
{
	return S.http_busy && shmringd__http_ready();
}

void shmringd__sinks_drain(uint64_t deadline_ns)
{
	if (!S.ready)
		return;
	for (;;) {
		uint64_t now = shmring_now_ns();
		S.now = now;
		bool busy = false;
		if (S.http_busy)
			shmringd__http_poll(http_done);
		for (struct shmring_sink *s = S.list; s; s = s->next) {
			connect_step(s, now);
			if (s->tls_s && (s->handshaking || s->in_flight))
				tls_step(s);
			flush(s);
			if (s->fill.len || s->flight.len || s->in_flight || s->connecting)
				busy = true;
		}
		if (!busy || now >= deadline_ns)
			break;
		struct __kernel_timespec ts = {0, 1000000};
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe_timeout(&S.ring, &cqe, &ts) == 0)
			reap();
		if (*S.ring.cq.khead != io_uring_smp_load_acquire(S.ring.cq.ktail))
			reap();
	}
	/* Whatever is still buffered could not be written in time. */
	for (struct shmring_sink *s = S.list; s; s = s->next) {
		uint64_t lost = s->fill.entries + s->flight.entries;
		if (lost) {
			shmringd__log("sink %s: %llu entries not written before the drain deadline",
			              s->name, (unsigned long long)lost);
			count_drop(s, lost);
		}
	}
}

void shmringd__sinks_fini(void)
{
	if (!S.ready)
		return;
	io_uring_queue_exit(&S.ring);
	while (S.list) {
		struct shmring_sink *s = S.list;
		S.list = s->next;
		sink_free(s);
	}
	reap_orphans(true);
	shmringd__http_fini();
	shmringd__tls_fini();
	S.ready = false;
}

/* ---- the plugin API ------------------------------------------------------ */

/* "HOST:PORT" or "[IPv6]:PORT" of a tcp or udp sink into s: an IP
 * literal's address, or a name to look up (s->host). 0 or -EINVAL. */
static int parse_addr(struct shmring_sink *s, const char *hostport)
{
	int socktype = s->kind == SINK_TCP ? SOCK_STREAM : SOCK_DGRAM;
	char host[256];
	const char *port;
	if (hostport[0] == '[') {
		const char *e = strchr(hostport, ']');
		if (!e || e[1] != ':')
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(e - hostport - 1), hostport + 1);
		port = e + 2;
	} else {
		const char *e = strrchr(hostport, ':');
		if (!e)
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(e - hostport), hostport);
		port = e + 1;
	}
	char *end;
	unsigned long p = strtoul(port, &end, 10);
	if (!*port || *end || p < 1 || p > 65535)
		return -EINVAL;
	struct addrinfo hints = {.ai_socktype = socktype,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int e = getaddrinfo(host, port, &hints, &ai);
	if (e == 0 && ai) {
		memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
		s->addrlen = ai->ai_addrlen;
		freeaddrinfo(ai);
		return 0;
	}
	/* Not an IP literal: a host name (RFC 1123 letters, digits, '-', '.'). */
	size_t n = strlen(host);
	if (hostport[0] == '[' || n == 0 || n > 253 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != n)
		return -EINVAL;
	snprintf(s->host, sizeof(s->host), "%s", host);
	snprintf(s->port, sizeof(s->port), "%lu", p);
	return 0;
}

/* Decode %XX escapes of p in place. 0, or -1 on a bad escape. */
static int pct_decode(char *p)
{
	char *o = p;
	for (; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		unsigned v;
		if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]) ||
		    sscanf(p + 1, "%2x", &v) != 1 || v == 0)
			return -1;
		*o++ = (char)v;
		p += 2;
	}
	*o = '\0';
	return 0;
}

/* The HTTP request's text parameters (values point into the spec's copy).
 * 1 taken, 0 not one of them, -EINVAL (err written). */
static int http_param(struct shmring_sink *s, struct shmringd_http_opts *ho, const char *key,
                      char *val, char *err, size_t errlen)
{
	if (!strcmp(key, "method")) {
		if (strcmp(val, "POST") && strcmp(val, "PUT") && strcmp(val, "PATCH")) {
			snprintf(err, errlen, "sink '%s': method must be POST, PUT or PATCH",
			         s->name);
			return -EINVAL;
		}
		ho->method = val;
		return 1;
	}
	if (strcmp(key, "content_type") && strcmp(key, "header"))
		return 0;
	if (pct_decode(val) < 0 || strpbrk(val, "\r\n")) {
		snprintf(err, errlen, "sink '%s': bad %s (percent-encoded, no CR or LF)", s->name,
		         key);
		return -EINVAL;
	}
	if (!strcmp(key, "content_type")) {
		ho->content_type = val;
		return 1;
	}
	const char *colon = strchr(val, ':');
	if (!colon || colon == val || ho->nheaders >= SINK_HTTP_MAX_HEADERS) {
		snprintf(err, errlen, "sink '%s': header wants 'Name: value' (at most %d)", s->name,
		         SINK_HTTP_MAX_HEADERS);
		return -EINVAL;
	}
	ho->headers[ho->nheaders++] = val;
	return 1;
}

/* Parse "key=value&key=value" (the part after the spec's last '?', in a
 * copy we may change) into s, and for an HTTP sink into ho. 0, or -EINVAL
 * with a message naming the parameter. */
static int parse_params(struct shmring_sink *s, char *p, struct shmringd_http_opts *ho, char *err,
                        size_t errlen)
{
	while (*p) {
		char *kv = p, *amp = strchr(p, '&');
		p = amp ? amp + 1 : p + strlen(p);
		if (amp)
			*amp = '\0';
		char *eq = strchr(kv, '=');
		if (!*kv || eq == kv) {
			snprintf(err, errlen, "sink '%s': bad parameter list (want key=value&...)",
			         s->name);
			return -EINVAL;
		}
		if (!eq || !eq[1]) {
			snprintf(err, errlen, "sink '%s': parameter '%.64s' wants =<value>",
			         s->name, kv);
			return -EINVAL;
		}
		*eq = '\0';
		int rc = s->kind == SINK_HTTP ? http_param(s, ho, kv, eq + 1, err, errlen) : 0;
		if (rc < 0)
			return rc;
		if (rc > 0)
			continue;
		if (s->kind == SINK_TCP && !strcmp(kv, "sni")) {
			size_t n = strlen(eq + 1);
			if (n >= sizeof(s->sni) ||
			    strspn(eq + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			                   "0123456789.-") != n) {
				snprintf(err, errlen, "sink '%s': sni must be a host name",
				         s->name);
				return -EINVAL;
			}
			memcpy(s->sni, eq + 1, n + 1);
			continue;
		}
		char *end = NULL;
		errno = 0;
		unsigned long long v = strtoull(eq + 1, &end, 10);
		if (*end || errno || eq[1] == '-') {
			snprintf(err, errlen, "sink '%s': parameter '%s' wants =<unsigned integer>",
			         s->name, kv);
			return -EINVAL;
		}
		bool http = s->kind == SINK_HTTP, tcp = s->kind == SINK_TCP;
		if (!strcmp(kv, "batch_bytes") && v >= 1 && v <= (1u << 30)) {
			s->batch_bytes = (uint32_t)v;
		} else if (!strcmp(kv, "batch_entries") && v <= (1u << 30)) {
			s->batch_entries = (uint32_t)v;
		} else if (!strcmp(kv, "flush_ms") && v >= 1 && v <= 3600000) {
			s->flush_ms = (uint32_t)v;
		} else if (!strcmp(kv, "max_bytes") && v >= 1024 && v <= (1u << 31)) {
			s->cap = (uint32_t)(v / 2);
		} else if (!strcmp(kv, "max_entries") && v <= (1u << 30)) {
			s->max_entries = (uint32_t)v;
		} else if (!strcmp(kv, "reopen") && v <= 1) {
			s->reopen = v == 1;
		} else if (s->kind == SINK_TCP && !strcmp(kv, "tls") && v <= 1) {
			s->tls = v == 1;
		} else if ((http || tcp) && !strcmp(kv, "timeout_ms") && v >= 1 && v <= 3600000) {
			*(http ? &ho->timeout_ms : &s->timeout_ms) = (uint32_t)v;
		} else if ((http || tcp) && !strcmp(kv, "keepalive_ms") && v <= 3600000) {
			*(http ? &ho->keepalive_ms : &s->keepalive_ms) = (uint32_t)v;
		} else if (http && !strcmp(kv, "retry_initial_ms") && v >= 1 && v <= 1000000000) {
			s->retry_initial_ms = (uint32_t)v;
		} else if (http && !strcmp(kv, "retry_max_ms") && v >= 1 && v <= 1000000000) {
			s->retry_max_ms = (uint32_t)v;
		} else if (http && !strcmp(kv, "retry_time_ms") && v <= 1000000000) {
			s->retry_time_ms = (uint32_t)v;
		} else {
			snprintf(
			    err, errlen,
			    "sink '%s': unknown parameter or value out of range: %s=%llu "
			    "(batch_bytes 1..2^30, batch_entries 0..2^30, flush_ms 1..3600000, "
			    "max_bytes 1024..2^31, max_entries 0..2^30, reopen 0|1; tcp and http: "
			    "timeout_ms 1..3600000, keepalive_ms 0..3600000; tcp: tls 0|1, sni; "
			    "http: method, content_type, header, retry_initial_ms, retry_max_ms "
			    "1..10^9, retry_time_ms 0..10^9)",
			    s->name, kv, v);
			return -EINVAL;
		}
	}
	if (s->reopen && s->kind != SINK_FILE) {
		snprintf(err, errlen, "sink '%s': reopen applies to file sinks only", s->name);
		return -EINVAL;
	}
	return 0;
}

uint64_t shmringd__sinks_shared_bytes;

/* The destination as messages show it: a URL without its user info,
 * query and fragment (credentials stay out of logs), else the target. */
static void set_name(struct shmring_sink *s, const char *target)
{
	const char *h = strstr(target, "://");
	if (!h) {
		snprintf(s->name, sizeof(s->name), "%.*s", (int)sizeof(s->name) - 1, target);
		return;
	}
	const char *auth = h + 3, *at = memchr(auth, '@', strcspn(auth, "/?#"));
	const char *host = at ? at + 1 : auth;
	snprintf(s->name, sizeof(s->name), "%.*s%.*s", (int)(auth - target), target,
	         (int)strcspn(host, "?#"), host);
}

SHMRING_HOST_API int shmring_sink_open(const char *spec, struct shmring_sink **out, char *err,
                                       size_t errlen)
{
	*out = NULL;
	if (!S.ready) {
		snprintf(err, errlen, "log sinks are only available inside a shmringd worker");
		return -ENODEV;
	}
	for (struct shmring_sink *s = S.list; s; s = s->next) {
		if (!strcmp(s->spec, spec)) {
			s->refs++;
			shmringd__sinks_shared_bytes += 2 * (uint64_t)s->cap;
			*out = s;
			return 0;
		}
	}
	if (strlen(spec) >= sizeof(((struct shmring_sink *)0)->spec)) {
		snprintf(err, errlen, "sink spec too long");
		return -ENAMETOOLONG;
	}
	struct shmring_sink *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(s->spec, sizeof(s->spec), "%s", spec);
	s->fd = -1;
	s->refs = 1;
	s->cap = S.o.max_bytes / 2;
	s->batch_bytes = S.o.batch_bytes;
	s->flush_ms = S.o.flush_ms;
	/* target: the spec without its "?parameters" */
	char target[sizeof(s->spec)];
	snprintf(target, sizeof(target), "%s", spec);
	char *params = strrchr(target, '?');
	if (params)
		*params++ = '\0';
	set_name(s, target);
	int rc = 0;
	/* HTTP: Kong's http-log defaults unless the parameters say otherwise */
	struct shmringd_http_opts ho = {.url = target,
	                                .method = "POST",
	                                .content_type = "application/json",
	                                .timeout_ms = 10000,
	                                .keepalive_ms = 60000};
	if (!strncmp(target, "http://", 7) || !strncmp(target, "https://", 8)) {
		s->kind = SINK_HTTP;
		s->batch_entries = 1;
		s->retry_initial_ms = 10;
		s->retry_max_ms = 60000;
		s->retry_time_ms = 60000;
	} else if (!strncmp(target, "file:", 5) && target[5]) {
		s->kind = SINK_FILE;
		snprintf(s->path, sizeof(s->path), "%s", target + 5);
	} else if (!strncmp(target, "tcp:", 4)) {
		s->kind = SINK_TCP;
		s->timeout_ms = 10000; /* Kong's tcp-log's; keepalive 0: for ever */
	} else if (!strncmp(target, "udp:", 4)) {
		s->kind = SINK_UDP;
	} else {
		snprintf(err, errlen,
		         "unknown sink '%s' (want file:PATH, tcp:HOST:PORT, udp:HOST:PORT "
		         "or an http:// or https:// URL, followed by ?key=value&...)",
		         spec);
		rc = -EINVAL;
	}
	if (rc == 0 && params)
		rc = parse_params(s, params, &ho, err, errlen);
	if (s->batch_bytes > s->cap)
		s->batch_bytes = s->cap; /* else a batch is never due by size */
	if (rc < 0) {
		/* err written */
	} else if (s->kind == SINK_FILE) {
		rc = shmring_file_open(s->path, O_WRONLY | O_APPEND | O_CREAT, 0640, err, errlen);
		s->fd = rc < 0 ? -1 : rc;
		rc = rc < 0 ? rc : 0;
	} else if (s->kind == SINK_HTTP) {
		rc = shmringd__http_open(&ho, s, &s->http, err, errlen);
		const char *host, *port;
		if (rc == 0 && (host = shmringd__http_host(s->http, &port))) {
			snprintf(s->host, sizeof(s->host), "%s", host);
			snprintf(s->port, sizeof(s->port), "%s", port);
		}
	} else if (s->kind == SINK_TCP) {
		if ((rc = parse_addr(s, target + 4)) < 0)
			snprintf(err, errlen, "bad sink address '%s' (want tcp:HOST:PORT)",
			         s->name);
	} else {
		if ((rc = parse_addr(s, target + 4)) < 0) {
			snprintf(err, errlen, "bad sink address '%s' (want udp:HOST:PORT)",
			         s->name);
		} else if (!s->host[0]) { /* an IP literal: now, so errors show in the config */
			s->fd =
			    socket(s->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (s->fd < 0 ||
			    connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen) < 0) {
				rc = -errno;
				snprintf(err, errlen, "udp sink %s: %s", spec, strerror(errno));
			}
		}
	}
	if (rc == 0) {
		s->fill.data = malloc(s->cap);
		s->flight.data = malloc(s->cap);
		if (!s->fill.data || !s->flight.data) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
		}
	}
	if (rc < 0) {
		sink_free(s);
		return rc;
	}
	connect_step(s, S.now); /* tcp: connect; a name: start its lookup */
	s->next = S.list;
	S.list = s;
	*out = s;
	return 0;
}

SHMRING_HOST_API void shmring_sink_release(struct shmring_sink *s)
{
	if (s && s->refs > 0)
		s->refs--; /* freed by sinks_poll once written */
}

SHMRING_HOST_API int shmring_sink_reserve(struct shmring_sink *s, size_t max, char **buf)
{
	*buf = NULL;
	size_t need = max + (s->kind == SINK_UDP ? 4 : 0);
	if (s->kind == SINK_HTTP) {
		/* Kong's queue: past a bound the oldest entries go, not this one */
		if (need > s->cap || http_room(s, (uint32_t)need) < 0) {
			count_drop(s, 1);
			return SHMRING_SINK_DROPPED;
		}
	} else if (s->fill.len + need > s->cap) {
		/* Full: try to make room by flushing now, else drop. */
		flush(s);
		if (s->fill.len + need > s->cap) {
			count_drop(s, 1);
			return SHMRING_SINK_DROPPED;
		}
	}
	if (s->max_entries && s->fill.entries >= s->max_entries) {
		flush(s);
		if (s->fill.entries >= s->max_entries) {
			count_drop(s, 1);
			return SHMRING_SINK_DROPPED;
		}
	}
	s->reserved = true;
	*buf = s->fill.data + fill_tail(s) + (s->kind == SINK_UDP ? 4 : 0);
	return 0;
}

SHMRING_HOST_API void shmring_sink_commit(struct shmring_sink *s, size_t used)
{
	if (!s->reserved)
		return;
	s->reserved = false;
	if (s->kind == SINK_UDP) {
		uint32_t l = (uint32_t)used;
		memcpy(s->fill.data + fill_tail(s), &l, 4);
		used += 4;
	}
	if (s->fill.len == 0)
		s->fill.first_ns = S.now;
	s->fill.len += (uint32_t)used;
	s->fill.entries++;
	s->st.entries++;
	S.ws->sink_entries++;
	if (s->fill.len >= s->batch_bytes ||
	    (s->batch_entries && s->fill.entries >= s->batch_entries))
		flush(s);
}

SHMRING_HOST_API int shmring_sink_write(struct shmring_sink *s, const void *data, size_t len)
{
	char *p;
	int rc = shmring_sink_reserve(s, len, &p);
	if (rc != 0)
		return rc;
	memcpy(p, data, len);
	shmring_sink_commit(s, len);
	return 0;
}

SHMRING_HOST_API void shmring_sink_stats(const struct shmring_sink *s,
                                         struct shmring_sink_stats *out)
{
	*out = s->st;
}
