/* SPDX-License-Identifier: MIT */
/* A slow DNS answer never stalls a worker. shmringd runs in a mount
 * namespace of its own whose /etc/resolv.conf names a local UDP socket of
 * this test that reads the queries and never answers (a real resolver
 * that hangs, as a broken DNS server does). Meanwhile:
 *   1. an http sink whose host name hangs, with a request timeout shorter
 *      than the lookup: ACCESS round trips keep their latency (libcurl's
 *      own resolver would be joined when the request times out);
 *   2. a tcp sink freed while its host name is being looked up (its conf
 *      replaced): the same;
 *   3. an http sink whose name resolves (localhost, from /etc/hosts)
 *      delivers, with the URL's host in the Host header.
 * Needs root (a mount namespace, port 53); skipped (77) otherwise. */
#include "client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>

#define DNS_ADDR "127.83.83.83"

static char resolv_conf[320];

/* In the daemon's child: its own /etc/resolv.conf. */
static void private_resolv_conf(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(resolv_conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0) {
		fprintf(stderr, "private resolv.conf: %s\n", strerror(errno));
		_exit(126);
	}
}

static int tcp_listener(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 8) == 0,
	      "listen: %s", strerror(errno));
	socklen_t sl = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* ACCESS round trips for `ns`: the worst one. */
static uint64_t worst_access(struct shmring_chan *ch, struct tc_reply *r, uint64_t *req,
                             uint64_t conf, uint64_t ns)
{
	uint64_t worst = 0, end = tc_now() + ns;
	while (tc_now() < end) {
		uint64_t t0 = tc_now(), me = (*req)++;
		tc_send(ch, SHMRING_REC_ACCESS, me, tc_fill_access, &conf);
		tc_expect(ch, r, me, 10 * SEC);
		CHECK(r->s == SHMRING_REPLY_OK, "ACCESS refused");
		uint64_t dt = tc_now() - t0;
		worst = dt > worst ? dt : worst;
		usleep(10000);
	}
	return worst;
}

/* Queries the hanging DNS server has read: for the http sink's name
 * (hangs.) and the tcp sink's (hangs-too.). */
static int dns_http, dns_tcp;

static void dns_read(int fd)
{
	char buf[512];
	ssize_t k;
	while ((k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		if (memmem(buf, (size_t)k, "hangs-too", 9))
			dns_tcp++;
		else if (memmem(buf, (size_t)k, "hangs", 5))
			dns_http++;
	}
}

int main(void)
{
	if (geteuid() != 0) {
		printf("skipped: needs root (a mount namespace for resolv.conf, port 53)\n");
		return 77;
	}
	int dns = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons(53)};
	inet_pton(AF_INET, DNS_ADDR, &da.sin_addr);
	if (dns < 0 || bind(dns, (struct sockaddr *)&da, sizeof(da)) < 0) {
		printf("skipped: cannot bind %s:53: %s\n", DNS_ADDR, strerror(errno));
		return 77;
	}
	tc_init("sink_dns");
	snprintf(resolv_conf, sizeof(resolv_conf), "%s/resolv.conf", tc_dir);
	FILE *f = fopen(resolv_conf, "w");
	CHECK(f, "resolv.conf");
	fprintf(f, "nameserver %s\noptions timeout:4 attempts:1\n", DNS_ADDR);
	fclose(f);
	tc_spawn_setup = private_resolv_conf;
	const char *args[] = {"--workers", "1", "--channels", "1", NULL};
	tc_pid = tc_spawn(args);
	struct shmring_instance *inst = tc_wait_ready(1, 10 * SEC);
	static struct tc_reply r;
	struct shmring_chan *ch;
	CHECK(shmring_chan_open(inst, 0, SHMRING_CLIENT, &ch) == 0, "open channel");
	uint64_t req = 1;
	struct tc_conf hello = {.id = 1, .plugin = "hello"};
	tc_register(ch, &r, req++, &hello);
	uint64_t base = worst_access(ch, &r, &req, hello.id, 300 * MS);

	/* 1. An http sink whose name hangs; its request times out first. */
	uint16_t nobody = 0;
	close(tcp_listener(&nobody));
	char spec[256];
	snprintf(spec, sizeof(spec),
	         "http://hangs.shmring.test:%u/?timeout_ms=200&retry_initial_ms=50", nobody);
	struct tc_conf hang = {.id = 2, .plugin = "testlog", .k1 = "sink", .v1 = spec};
	tc_register(ch, &r, req++, &hang);
	struct tc_log_line line = {hang.id, "entry"};
	tc_send(ch, SHMRING_REC_LOG, 0, tc_fill_log_line, &line);
	uint64_t worst = worst_access(ch, &r, &req, hello.id, 5 * SEC);
	dns_read(dns);
	CHECK(dns_http > 0, "the daemon never asked the test's DNS server");
	printf("http sink, name hanging: worst ACCESS %.1f ms (before: %.1f ms)\n", worst / 1e6,
	       base / 1e6);
	CHECK(worst < 250 * MS, "a hanging lookup stalled the worker %llu ms",
	      (unsigned long long)(worst / MS));

	/* 2. A tcp sink freed while its name is being looked up. */
	struct tc_conf tcp = {
	    .id = 3, .plugin = "testlog", .k1 = "sink", .v1 = "tcp:hangs-too.shmring.test:9"};
	tc_register(ch, &r, req++, &tcp);
	for (uint64_t end = tc_now() + 2 * SEC; dns_read(dns), !dns_tcp;)
		CHECK(tc_now() < end, "the tcp sink's lookup never reached the DNS server");
	char fspec[400];
	snprintf(fspec, sizeof(fspec), "file:%s/replaced.log", tc_dir);
	tcp.v1 = fspec;
	tc_register(ch, &r, req++, &tcp); /* the tcp sink's last reference goes */
	worst = worst_access(ch, &r, &req, hello.id, 2 * SEC);
	printf("tcp sink freed mid-lookup: worst ACCESS %.1f ms\n", worst / 1e6);
	CHECK(worst < 250 * MS, "freeing a sink mid-lookup stalled the worker %llu ms",
	      (unsigned long long)(worst / MS));

	/* 3. A name that resolves (/etc/hosts): delivered, Host as in the URL. */
	uint16_t cport = 0;
	int lfd = tcp_listener(&cport);
	char good[128];
	snprintf(good, sizeof(good), "http://localhost:%u/logs", cport);
	struct tc_conf ok = {.id = 4, .plugin = "testlog", .k1 = "sink", .v1 = good};
	tc_register(ch, &r, req++, &ok);
	struct tc_log_line l2 = {ok.id, "{\"n\":1}"};
	tc_send(ch, SHMRING_REC_LOG, 0, tc_fill_log_line, &l2);
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	CHECK(poll(&p, 1, 10000) == 1, "the http sink to localhost never connected");
	int c = accept(lfd, NULL, NULL);
	char buf[4096] = "";
	size_t n = 0;
	for (uint64_t end = tc_now() + 10 * SEC; !strstr(buf, "{\"n\":1}");) {
		CHECK(tc_now() < end, "no request body: '%s'", buf);
		ssize_t k = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
		CHECK(k > 0, "collector recv");
		n += (size_t)k;
		buf[n] = '\0';
	}
	char host[64];
	snprintf(host, sizeof(host), "Host: localhost:%u\r\n", cport);
	CHECK(strstr(buf, host), "request without '%s': %s", host, buf);
	CHECK(send(c, TC_HTTP_OK, strlen(TC_HTTP_OK), 0) > 0, "collector send");
	printf("http sink to localhost: delivered\n");
	close(c);
	close(lfd);

	shmring_chan_close(ch);
	return tc_stop(inst, NULL);
}
