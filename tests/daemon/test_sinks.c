/* SPDX-License-Identifier: MIT */
/* Log sinks through the workers' io_uring: a file sink and a TCP sink (a
 * listener in this test) receive every entry, in order per worker; a TCP
 * sink that is down does not slow the worker down, its drops are counted,
 * and it reconnects when the collector comes back. A UDP sink sends one
 * datagram per entry. */
#include "client.h"

#include <netinet/in.h>
#include <arpa/inet.h>

#define N 5000

/* Per channel: the next sequence number expected in a stream of lines. */
struct seqcheck {
	int next[2];
	int total;
	char partial[8][256]; /* per TCP connection */
	size_t plen[8];
};

static void check_line(struct seqcheck *s, const char *line, const char *what)
{
	int ch, seq;
	CHECK(sscanf(line, "c%d-%d", &ch, &seq) == 2 && ch >= 0 && ch < 2, "%s: bad line '%s'",
	      what, line);
	CHECK(seq == s->next[ch], "%s: channel %d: got %d, want %d (order or loss)", what, ch, seq,
	      s->next[ch]);
	s->next[ch]++;
	s->total++;
}

static int listen_tcp(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons(*port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
	CHECK(listen(fd, 16) == 0, "listen");
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Read the TCP collector until `want` lines arrived or the deadline. */
static void collect_tcp(int lfd, int *conns, int *nconn, struct seqcheck *s, int want,
                        uint64_t deadline)
{
	while (s->total < want) {
		CHECK(tc_now() < deadline, "TCP collector got %d of %d lines", s->total, want);
		struct pollfd p[9];
		int n = 0;
		p[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
		for (int i = 0; i < *nconn; i++)
			p[n++] = (struct pollfd){.fd = conns[i], .events = POLLIN};
		if (poll(p, (nfds_t)n, 100) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int fd = accept(lfd, NULL, NULL);
			if (fd >= 0 && *nconn < 8)
				conns[(*nconn)++] = fd;
		}
		for (int i = 0; i < *nconn; i++) {
			if (!(p[i + 1].revents & (POLLIN | POLLHUP)))
				continue;
			char buf[65536];
			ssize_t r = read(conns[i], buf, sizeof(buf));
			for (ssize_t k = 0; k < r; k++) {
				if (buf[k] == '\n') {
					s->partial[i][s->plen[i]] = '\0';
					check_line(s, s->partial[i], "tcp");
					s->plen[i] = 0;
				} else {
					CHECK(s->plen[i] < 255, "line too long");
					s->partial[i][s->plen[i]++] = buf[k];
				}
			}
		}
	}
}

/* An HTTP collector on lfd: answers every request 200 (keep-alive) and
 * keeps its bodies, until want bodies arrived (or the deadline). */
static int collect_http(int lfd, char bodies[][64], int want, uint64_t deadline)
{
	static struct tc_http_collector c;
	c.lfd = lfd, c.fd = -1, c.have = c.used = 0;
	int got = 0;
	while (got < want) {
		CHECK(tc_now() < deadline, "HTTP collector got %d of %d requests", got, want);
		size_t blen;
		const char *body = tc_http_next(&c, 50, &blen);
		if (body)
			snprintf(bodies[got++], 64, "%.*s", (int)blen, body);
	}
	if (c.fd >= 0)
		close(c.fd);
	return got;
}

/* An http sink whose collector is down past its queue's bound keeps the
 * NEWEST entries, as Kong's queue does: the collector, once up, gets the
 * batch that was in flight (entry 0) and then the last entries, in
 * order. n entries of varying sizes under spec's bounds. */
static void http_drop_oldest(struct shmring_chan *ch, struct tc_reply *r, uint64_t *req,
                             uint64_t id, const char *params, int n)
{
	uint16_t port = 0;
	close(listen_tcp(&port)); /* down until the queue is past its bound */
	char spec[160];
	snprintf(spec, sizeof(spec), "http://127.0.0.1:%u/?retry_initial_ms=20&retry_max_ms=50&%s",
	         port, params);
	struct tc_conf hc = {.id = id, .plugin = "testlog", .k1 = "sink", .v1 = spec};
	tc_register(ch, r, (*req)++, &hc);
	struct shmringd_stats *st = tc_stats();
	uint64_t dropped0 = st->w[0].sink_dropped + st->w[1].sink_dropped;
	for (int i = 0; i < n; i++) {
		char line[64];
		snprintf(line, sizeof(line), "h%d-%.*s", i, (i % 7) * 5,
		         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		struct tc_log_line l = {id, line};
		tc_send(ch, SHMRING_REC_LOG, 0, tc_fill_log_line, &l);
	}
	/* A round trip behind them: the worker has dispatched every entry. */
	uint64_t hello = 1, me = (*req)++;
	tc_send(ch, SHMRING_REC_ACCESS, me, tc_fill_access, &hello);
	tc_expect(ch, r, me, 5 * SEC);
	int dropped = (int)(st->w[0].sink_dropped + st->w[1].sink_dropped - dropped0);
	CHECK(dropped > 0, "%s: nothing dropped", params);
	int lfd = listen_tcp(&port);
	static char bodies[256][64];
	int got = collect_http(lfd, bodies, n - dropped, tc_now() + 10 * SEC);
	close(lfd);
	for (int k = 0; k < got; k++) {
		int want = k == 0 ? 0 : dropped + k, seq = -1;
		sscanf(bodies[k], "h%d-", &seq);
		CHECK(seq == want, "%s: request %d carries entry %d, want %d (the oldest go)",
		      params, k, seq, want);
	}
	printf("http sink past its bound (%s): %d dropped, the oldest; %d delivered in order\n",
	       params, dropped, got);
}

int main(void)
{
	tc_init("sinks");
	const char *args[] = {"--workers",
	                      "2",
	                      "--channels",
	                      "2",
	                      "--log-flush-ms",
	                      "20",
	                      "--log-batch-bytes",
	                      "4096",
	                      "--log-sink-max-bytes",
	                      "1048576",
	                      NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(2, 10 * SEC);
	static struct tc_reply r;
	struct shmring_chan *ch[2];
	for (uint32_t k = 0; k < 2; k++)
		CHECK(shmring_chan_open(inst, k, SHMRING_CLIENT, &ch[k]) == 0, "open channel %u",
		      k);

	/* A path longer than 255 bytes: the sink opens it whole, never a cut copy. */
	char log_dir[300], log_path[480], fspec[500], tspec[64], dspec[64];
	snprintf(log_dir, sizeof(log_dir), "%s/%0120d", tc_dir, 0);
	CHECK(mkdir(log_dir, 0755) == 0, "mkdir %s: %s", log_dir, strerror(errno));
	snprintf(log_path, sizeof(log_path), "%s/sink-%0150d.log", log_dir, 0);
	CHECK(strlen(log_path) > 255, "the log path is longer than 255 bytes");
	snprintf(fspec, sizeof(fspec), "file:%s", log_path);
	uint16_t port = 0;
	int lfd = listen_tcp(&port);
	snprintf(tspec, sizeof(tspec), "tcp:127.0.0.1:%u", port);
	/* A port with nobody listening: the "down" collector. */
	uint16_t dport = 0;
	close(listen_tcp(&dport));
	snprintf(dspec, sizeof(dspec), "tcp:127.0.0.1:%u", dport);

	uint64_t req = 1;
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	struct tc_conf fc = {.id = 2, .plugin = "testlog", .k1 = "sink", .v1 = fspec};
	struct tc_conf tcpc = {.id = 3, .plugin = "testlog", .k1 = "sink", .v1 = tspec};
	struct tc_conf down = {.id = 4, .plugin = "testlog", .k1 = "sink", .v1 = dspec};
	for (uint32_t k = 0; k < 2; k++) {
		tc_register(ch[k], &r, req++, &hello);
		tc_register(ch[k], &r, req++, &fc);
		tc_register(ch[k], &r, req++, &tcpc);
		tc_register(ch[k], &r, req++, &down);
	}

	/* 1. Every entry reaches the file and the TCP collector, in order. */
	for (int i = 0; i < N; i++) {
		for (uint32_t k = 0; k < 2; k++) {
			char line[64];
			snprintf(line, sizeof(line), "c%u-%d", k, i);
			struct tc_log_line f = {fc.id, line}, t = {tcpc.id, line};
			tc_send(ch[k], SHMRING_REC_LOG, 0, tc_fill_log_line, &f);
			tc_send(ch[k], SHMRING_REC_LOG, 0, tc_fill_log_line, &t);
		}
	}
	int conns[8], nconn = 0;
	static struct seqcheck tcp;
	collect_tcp(lfd, conns, &nconn, &tcp, 2 * N, tc_now() + 20 * SEC);
	uint64_t deadline = tc_now() + 20 * SEC;
	for (;;) {
		static struct seqcheck file;
		memset(&file, 0, sizeof(file));
		FILE *f = fopen(log_path, "r");
		char line[256];
		while (f && fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			check_line(&file, line, "file");
		}
		if (f)
			fclose(f);
		if (file.total == 2 * N)
			break;
		CHECK(tc_now() < deadline, "file has %d of %d lines", file.total, 2 * N);
		usleep(10000);
	}
	printf("file and tcp sinks: %d entries each, in order per worker\n", 2 * N);

	/* 1b. UDP: one datagram per entry. */
	int ufd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(ufd, (struct sockaddr *)&ua, sizeof(ua)) == 0, "udp bind");
	socklen_t ul = sizeof(ua);
	getsockname(ufd, (struct sockaddr *)&ua, &ul);
	char uspec[64];
	snprintf(uspec, sizeof(uspec), "udp:127.0.0.1:%u", ntohs(ua.sin_port));
	struct tc_conf udpc = {.id = 5, .plugin = "testlog", .k1 = "sink", .v1 = uspec};
	tc_register(ch[1], &r, req++, &udpc);
	for (int i = 0; i < 200; i++) {
		char line[64];
		snprintf(line, sizeof(line), "u-%d", i);
		struct tc_log_line u = {udpc.id, line};
		tc_send(ch[1], SHMRING_REC_LOG, 0, tc_fill_log_line, &u);
	}
	for (int i = 0; i < 200; i++) {
		struct pollfd p = {.fd = ufd, .events = POLLIN};
		CHECK(poll(&p, 1, 5000) == 1, "udp datagram %d missing", i);
		char buf[128], want[64];
		ssize_t n = recv(ufd, buf, sizeof(buf) - 1, 0);
		CHECK(n > 0, "udp recv");
		buf[n] = '\0';
		snprintf(want, sizeof(want), "u-%d\n", i);
		CHECK(!strcmp(buf, want), "udp datagram %d is '%s'", i, buf);
	}
	close(ufd);
	printf("udp sink: 200 datagrams in order\n");

	/* 2. A sink that is down: ACCESS keeps its latency, entries past the
	 * 1 MiB bound (2 MiB sent) are dropped and counted. */
	struct shmringd_stats *st = tc_stats();
	uint64_t dropped0 = st->w[0].sink_dropped + st->w[1].sink_dropped;
	CHECK(dropped0 == 0, "%llu entries dropped by sinks that were up",
	      (unsigned long long)dropped0);
	uint64_t worst = 0;
	char big[200];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 10000; i++) {
		struct tc_log_line d = {down.id, big};
		tc_send(ch[0], SHMRING_REC_LOG, 0, tc_fill_log_line, &d);
		if (i % 50 == 0) {
			uint64_t t0 = tc_now(), id = hello.id, me = req++;
			tc_send(ch[0], SHMRING_REC_ACCESS, me, tc_fill_access, &id);
			tc_expect(ch[0], &r, me, 5 * SEC);
			CHECK(r.s == SHMRING_REPLY_OK, "ACCESS while the sink is down");
			uint64_t dt = tc_now() - t0;
			worst = dt > worst ? dt : worst;
		}
	}
	deadline = tc_now() + 5 * SEC;
	while (st->w[0].sink_dropped + st->w[1].sink_dropped == dropped0)
		CHECK(tc_now() < deadline, "no drops counted for the down sink");
	CHECK(worst < 500 * MS, "ACCESS took %llu ms while a sink was down",
	      (unsigned long long)(worst / MS));
	printf("down sink: %llu entries dropped, worst ACCESS round trip %.2f ms\n",
	       (unsigned long long)(st->w[0].sink_dropped + st->w[1].sink_dropped - dropped0),
	       (double)worst / 1e6);

	/* 3. The collector comes back: the sink reconnects and later entries
	 * arrive. */
	int dl = listen_tcp(&dport);
	int dconns[8], ndconn = 0;
	deadline = tc_now() + 10 * SEC;
	static struct seqcheck back;
	for (int i = 0; back.total == 0; i++) {
		char line[64];
		snprintf(line, sizeof(line), "c0-%d", back.next[0]);
		struct tc_log_line d = {down.id, line};
		/* Lines of the first burst may still be buffered: read until
		 * one of ours arrives. */
		tc_send(ch[0], SHMRING_REC_LOG, 0, tc_fill_log_line, &d);
		CHECK(tc_now() < deadline, "the down sink never reconnected");
		struct pollfd p = {.fd = dl, .events = POLLIN};
		if (poll(&p, 1, 50) == 1 && ndconn < 8) {
			int fd = accept(dl, NULL, NULL);
			if (fd >= 0)
				dconns[ndconn++] = fd;
		}
		for (int c = 0; c < ndconn; c++) {
			char buf[65536];
			ssize_t n = recv(dconns[c], buf, sizeof(buf) - 1, MSG_DONTWAIT);
			if (n > 0) {
				buf[n] = '\0';
				if (strstr(buf, "c0-0\n"))
					back.total = 1;
			}
		}
	}
	printf("down sink reconnected\n");

	/* 4. HTTP sinks drop the oldest entries past their bounds. */
	http_drop_oldest(ch[0], &r, &req, 6, "max_entries=3", 7);
	http_drop_oldest(ch[0], &r, &req, 7, "max_bytes=1024", 120);
	for (uint32_t k = 0; k < 2; k++)
		shmring_chan_close(ch[k]);
	shmring_instance_close(inst, 0);
	kill(tc_pid, SIGTERM);
	CHECK(tc_wait_exit(tc_pid, 20 * SEC) == 0, "stop");
	printf("ok\n");
	return 0;
}
