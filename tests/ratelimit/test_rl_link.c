/* SPDX-License-Identifier: MIT */
/* The Redis link (plugins/rate-limiting/rl_redis_link.c) against a hostile
 * server: a thread of this test that accepts the link and answers what a
 * broken or malicious Redis could. Each reply must fail within the link's
 * bounds instead of holding the caller (a synchronous-mode hook, i.e. the
 * worker) or growing its memory without end:
 *   - a reply trickled a byte at a time, each byte within the timeout:
 *     the whole reply is bounded by the timeout;
 *   - an array header announcing 100 000 elements, then elements streamed:
 *     refused at the header;
 *   - a 64 MiB bulk string streamed: refused past 1 MiB;
 *   - a host name whose DNS server never answers (a UDP socket of this
 *     test named by a resolv.conf bind-mounted in a mount namespace of the
 *     test's own; needs root, else skipped): the connect fails at the
 *     timeout instead of waiting for the resolver. */
#include "rl_redis_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c, ...)                                                                              \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #c);      \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

enum attack { TRICKLE, HUGE_ARRAY, HUGE_BULK };

struct server {
	int lfd;
	enum attack what;
	volatile int stop;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *serve(void *arg)
{
	struct server *sv = arg;
	int fd = accept(sv->lfd, NULL, NULL);
	char cmd[256];
	if (fd < 0 || recv(fd, cmd, sizeof(cmd), 0) <= 0) /* the PING */
		return NULL;
	static char chunk[65536];
	uint64_t end = now_ms() + 3000;
	if (sv->what == TRICKLE) {
		const char *r = "$14\r\nabcdefghijklmn\r\n";
		for (size_t i = 0; r[i] && !sv->stop; i++) {
			if (send(fd, r + i, 1, MSG_NOSIGNAL) != 1)
				break;
			usleep(60000); /* each byte well within the 300 ms timeout */
		}
	} else {
		const char *head = sv->what == HUGE_ARRAY ? "*100000\r\n" : "$67108864\r\n";
		send(fd, head, strlen(head), MSG_NOSIGNAL);
		if (sv->what == HUGE_ARRAY)
			for (size_t i = 0; i + 4 <= sizeof(chunk); i += 4)
				memcpy(chunk + i, ":1\r\n", 4);
		else
			memset(chunk, 'a', sizeof(chunk));
		while (!sv->stop && now_ms() < end &&
		       send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) > 0)
			;
	}
	close(fd);
	return NULL;
}

/* One PING against a server doing `what`: NULL expected, within ms_max. */
static void attack(enum attack what, int timeout_ms, uint64_t ms_max, const char *name)
{
	struct server sv = {.what = what};
	sv.lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	CHECK(bind(sv.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(sv.lfd, 1) == 0 &&
	          getsockname(sv.lfd, (struct sockaddr *)&sa, &sl) == 0,
	      "listen: %s", strerror(errno));
	pthread_t th;
	CHECK(pthread_create(&th, NULL, serve, &sv) == 0, "thread");
	struct rl_link_opts o = {
	    .host = "127.0.0.1", .port = ntohs(sa.sin_port), .timeout_ms = timeout_ms};
	char err[256];
	struct rl_link *l = rl_link_connect(&o, err, sizeof(err));
	CHECK(l, "connect: %s", err);
	uint64_t t0 = now_ms();
	redisReply *r = rl_link_command(l, "PING");
	uint64_t took = now_ms() - t0;
	CHECK(!r, "%s: the reply was accepted (type %d) after %llu ms", name, r ? r->type : -1,
	      (unsigned long long)took);
	CHECK(took <= ms_max, "%s: the link failed only after %llu ms (bound %llu)", name,
	      (unsigned long long)took, (unsigned long long)ms_max);
	printf("%s: refused after %llu ms\n", name, (unsigned long long)took);
	rl_link_free(l);
	sv.stop = 1;
	pthread_join(th, NULL);
	close(sv.lfd);
}

#define DNS_ADDR "127.83.83.84"

/* Before any thread and any look-up: this process's /etc/resolv.conf names
 * a UDP socket that reads queries and never answers. The socket, or -1
 * (not root, or the address is taken: the case is skipped). */
static int hanging_dns(void)
{
	static char conf[] = "/tmp/shmring-rl-link-resolv-XXXXXX";
	int dns = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons(53)};
	inet_pton(AF_INET, DNS_ADDR, &da.sin_addr);
	int fd = geteuid() == 0 ? mkstemp(conf) : -1;
	if (fd < 0 || bind(dns, (struct sockaddr *)&da, sizeof(da)) < 0) {
		close(dns);
		return -1;
	}
	dprintf(fd, "nameserver %s\noptions timeout:5 attempts:1\n", DNS_ADDR);
	close(fd);
	int ok = unshare(CLONE_NEWNS) == 0 &&
	         mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	         mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0;
	unlink(conf); /* the mount keeps it */
	if (!ok) {
		close(dns);
		return -1;
	}
	return dns;
}

int main(void)
{
	int dns = hanging_dns();
	if (dns >= 0) {
		struct rl_link_opts o = {
		    .host = "hangs.shmring.test", .port = 6379, .timeout_ms = 300};
		char err[256] = "";
		uint64_t t0 = now_ms();
		struct rl_link *l = rl_link_connect(&o, err, sizeof(err));
		uint64_t took = now_ms() - t0;
		char q[512];
		CHECK(recv(dns, q, sizeof(q), MSG_DONTWAIT) > 0,
		      "the link never asked the DNS server");
		CHECK(!l && strstr(err, "no answer"), "a hanging resolver: %s",
		      l ? "connected" : err);
		CHECK(took <= 600, "a hanging resolver held the connect %llu ms (timeout 300)",
		      (unsigned long long)took);
		printf(
		    "DNS server that never answers, timeout 300 ms: refused after %llu ms (%s)\n",
		    (unsigned long long)took, err);
		close(dns);
	} else {
		printf("skipped the DNS case: needs root and %s:53\n", DNS_ADDR);
	}
	attack(TRICKLE, 300, 600, "reply trickled a byte per 60 ms, timeout 300 ms");
	attack(HUGE_ARRAY, 5000, 2000, "array of 100000 elements");
	attack(HUGE_BULK, 5000, 2000, "64 MiB bulk string");
	printf("ok\n");
	return 0;
}
