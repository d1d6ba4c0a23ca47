/* SPDX-License-Identifier: MIT */
/* shmringctl: inspect a running shmringd instance.
 *
 *   shmringctl [--shm-dir DIR] stats [--json]
 *   shmringctl [--shm-dir DIR] top [--json] [--interval SECONDS] [--count N]
 *
 * Reads the control segment, every channel's counters and the daemon's
 * stats file (worker/stats.h); never writes to any of them. */
#include "shmring/shmring.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PID_MASK ((uint64_t)((1u << 22) - 1))

static void usage(FILE *f)
{
	fprintf(f, "Usage: shmringctl [--shm-dir DIR] stats [--json]\n"
	           "       shmringctl [--shm-dir DIR] top [--json] [--interval S] [--count N]\n"
	           "       shmringctl schema NAME|FILE.so [--variant STUB]\n"
	           "                  [--kong|--markdown|--config JSON] [--plugin-dir D]\n"
	           "\n"
	           "  --shm-dir DIR   instance directory (default /dev/shm/shmring/default)\n"
	           "  stats           per-worker and per-channel counters and the dispatch\n"
	           "                  latency histogram of each worker\n"
	           "  top             per plugin, refreshed every interval: calls and errors\n"
	           "                  per second, p50/p99 time inside its hooks (all workers)\n"
	           "  --json          stats: one JSON object instead of tables; top: one\n"
	           "                  snapshot of the per-plugin totals as JSON\n"
	           "  --interval S    top: seconds between refreshes (default 1)\n"
	           "  --count N       top: stop after N refreshes (default: until killed)\n"
	           "  schema          a plugin's declared config schema as the Kong schema.lua\n"
	           "                  (--kong, the default) or the docs' field table; --config:\n"
	           "                  a JSON config through it as shmringd takes it (what\n"
	           "                  conf_new gets, or the refusal and exit status 1)\n");
}

static const struct shmringd_stats *map_stats(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/" SHMRINGD_STATS_NAME, dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	void *m = mmap(NULL, sizeof(struct shmringd_stats), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return NULL;
	const struct shmringd_stats *s = m;
	if (s->magic != SHMRINGD_STATS_MAGIC || s->version != SHMRINGD_STATS_VERSION) {
		munmap(m, sizeof(struct shmringd_stats));
		return NULL;
	}
	return s;
}

/* Upper bound (ns) of the bucket holding quantile q, 0 if empty. */
static uint64_t hist_count(const uint64_t *h)
{
	uint64_t total = 0;
	for (int i = 0; i < SHMRINGD_HIST_BUCKETS; i++)
		total += h[i];
	return total;
}

static uint64_t hist_quantile(const uint64_t *h, double q)
{
	uint64_t total = hist_count(h);
	if (!total)
		return 0;
	uint64_t want = (uint64_t)(q * (double)total), seen = 0;
	for (int i = 0; i < SHMRINGD_HIST_BUCKETS; i++) {
		seen += h[i];
		if (seen > want)
			return (uint64_t)2 << i;
	}
	return (uint64_t)2 << (SHMRINGD_HIST_BUCKETS - 1);
}

/* One plugin's figures summed over the workers that loaded it. */
struct plugin_sum {
	char name[48];
	uint64_t calls, errors, exhausted;
	struct shmringd_hook_hist hook[SHMRINGD_HOOK_KINDS];
};

#define MAX_PLUGIN_SUMS 64

/* The plugins of every worker slot, summed by name, in first-seen order.
 * Returns how many (at most MAX_PLUGIN_SUMS). */
static int plugin_sums(const struct shmringd_stats *st, uint32_t nw, struct plugin_sum *out)
{
	int n = 0;
	for (uint32_t w = 0; w < nw; w++) {
		for (int i = 0; i < SHMRINGD_STATS_PLUGINS; i++) {
			const struct shmringd_plugin_stats *ps = &st->w[w].plugins[i];
			if (!ps->name[0])
				continue;
			int j = 0;
			while (j < n && strncmp(out[j].name, ps->name, sizeof(out[j].name)))
				j++;
			if (j == n) {
				if (n == MAX_PLUGIN_SUMS)
					continue;
				memset(&out[n], 0, sizeof(out[n]));
				snprintf(out[n].name, sizeof(out[n].name), "%.47s", ps->name);
				n++;
			}
			out[j].calls += ps->calls;
			out[j].errors += ps->errors;
			out[j].exhausted += ps->exhausted;
			for (int k = 0; k < SHMRINGD_HOOK_KINDS; k++) {
				out[j].hook[k].sum_ns += ps->hook[k].sum_ns;
				for (int b = 0; b < SHMRINGD_HIST_BUCKETS; b++)
					out[j].hook[k].buckets[b] += ps->hook[k].buckets[b];
			}
		}
	}
	return n;
}

/* One line per plugin name, summed over the workers. */
static void print_plugin_totals(const struct shmringd_stats *st, uint32_t nw)
{
	struct plugin_sum sums[MAX_PLUGIN_SUMS];
	int n = plugin_sums(st, nw, sums);
	for (int i = 0; i < n; i++)
		printf("%-24.48s %14" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n", sums[i].name,
		       sums[i].calls, sums[i].errors, sums[i].exhausted);
}

/* ---- top ------------------------------------------------------------------ */

static const char *const hook_kind_name[SHMRINGD_HOOK_KINDS] = {"request", "log"};

/* One snapshot of the per-plugin totals as JSON. */
static void top_json(const struct shmringd_stats *st, uint32_t nw)
{
	struct plugin_sum sums[MAX_PLUGIN_SUMS];
	int n = plugin_sums(st, nw, sums);
	printf("{\"plugins\":[");
	for (int i = 0; i < n; i++) {
		printf("%s{\"name\":\"%s\",\"calls\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"exhausted\":%" PRIu64,
		       i ? "," : "", sums[i].name, sums[i].calls, sums[i].errors,
		       sums[i].exhausted);
		for (int k = 0; k < SHMRINGD_HOOK_KINDS; k++) {
			const struct shmringd_hook_hist *h = &sums[i].hook[k];
			printf(",\"%s\":{\"count\":%" PRIu64 ",\"sum_ns\":%" PRIu64
			       ",\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64 "}",
			       hook_kind_name[k], hist_count(h->buckets), h->sum_ns,
			       hist_quantile(h->buckets, 0.5), hist_quantile(h->buckets, 0.99));
		}
		printf("}");
	}
	printf("]}\n");
}

/* A time in ns as the table shows it: ns, us or ms. */
static const char *fmt_ns(char *buf, size_t len, uint64_t ns)
{
	if (!ns)
		snprintf(buf, len, "-");
	else if (ns < 10000)
		snprintf(buf, len, "%" PRIu64 "ns", ns);
	else if (ns < 10000000)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	return buf;
}

/* The figures of `now` less those of `before` (same plugin name), for the
 * rates and the quantiles of the last interval. */
static struct plugin_sum plugin_delta(const struct plugin_sum *now, const struct plugin_sum *before,
                                      int nbefore)
{
	struct plugin_sum d = *now;
	for (int j = 0; j < nbefore; j++) {
		if (strcmp(before[j].name, now->name))
			continue;
		/* a plugin reloaded into another slot restarts its counters */
		if (before[j].calls > now->calls)
			break;
		d.calls -= before[j].calls;
		d.errors -= before[j].errors;
		for (int k = 0; k < SHMRINGD_HOOK_KINDS; k++) {
			d.hook[k].sum_ns -= before[j].hook[k].sum_ns;
			for (int b = 0; b < SHMRINGD_HIST_BUCKETS; b++)
				d.hook[k].buckets[b] -= before[j].hook[k].buckets[b];
		}
		break;
	}
	return d;
}

/* The live view: every interval, clear the terminal and print one line per
 * plugin with the last interval's rates and service-time quantiles (bucket
 * upper bounds, as in stats). count 0: until killed. */
static void top_live(struct shmring_instance *inst, const struct shmringd_stats *st,
                     const char *dir, double interval, long count)
{
	static struct plugin_sum before[MAX_PLUGIN_SUMS], now[MAX_PLUGIN_SUMS];
	uint32_t nw = shmring_instance_nworkers(inst);
	int nbefore = plugin_sums(st, nw, before);
	struct timespec ts = {.tv_sec = (time_t)interval,
	                      .tv_nsec = (long)((interval - (double)(time_t)interval) * 1e9)};
	for (long turn = 0; count == 0 || turn < count; turn++) {
		nanosleep(&ts, NULL);
		int n = plugin_sums(st, nw, now);
		int64_t age = shmring_instance_heartbeat_age_ns(inst);
		uint32_t up = 0;
		for (uint32_t w = 0; w < nw; w++)
			up += shmring_instance_worker_counters(inst, w)->pid != 0;
		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[2J");
		printf("shmringd %s  workers %u/%u  heartbeat %s  every %.1fs\n\n", dir, up, nw,
		       age < 0 ? "DOWN" : "ok", interval);
		printf("%-24s %10s %8s %10s %10s %10s %10s %14s %10s\n", "plugin", "calls/s",
		       "err/s", "req p50", "req p99", "log p50", "log p99", "calls", "errors");
		for (int i = 0; i < n; i++) {
			struct plugin_sum d = plugin_delta(&now[i], before, nbefore);
			char q[4][16];
			printf("%-24.47s %10.1f %8.1f %10s %10s %10s %10s %14" PRIu64 " %10" PRIu64
			       "\n",
			       now[i].name, (double)d.calls / interval, (double)d.errors / interval,
			       fmt_ns(q[0], 16, hist_quantile(d.hook[0].buckets, 0.5)),
			       fmt_ns(q[1], 16, hist_quantile(d.hook[0].buckets, 0.99)),
			       fmt_ns(q[2], 16, hist_quantile(d.hook[1].buckets, 0.5)),
			       fmt_ns(q[3], 16, hist_quantile(d.hook[1].buckets, 0.99)),
			       now[i].calls, now[i].errors);
		}
		fflush(stdout);
		memcpy(before, now, sizeof(now));
		nbefore = n;
	}
}

struct chan_view {
	struct shmring_chan_counters cl, sv;
	uint64_t owner;
	int ok;
};

/* clang-format 14 reflows an X-macro list differently on each pass: kept by hand. */
/* clang-format off */
#define WS_FIELDS(X)       \
	X(replies)         \
	X(conf_ok)         \
	X(conf_refused)    \
	X(unknown_conf)    \
	X(malformed)       \
	X(plugin_errors)   \
	X(log_records)     \
	X(cq_full)         \
	X(owner_changes)   \
	X(doorbells)       \
	X(sink_entries)    \
	X(sink_bytes)      \
	X(sink_dropped)    \
	X(sink_flushes)    \
	X(sink_errors)     \
	X(sink_reconnects) \
	X(generation)      \
	X(poisoned)        \
	X(watchdog_kills)  \
	X(entity_entries)  \
	X(entity_hits)     \
	X(entity_lookups)  \
	X(entity_evictions) \
	X(entity_forgets)
/* clang-format on */
#define CC_FIELDS(X) X(records) X(bytes) X(consumed) X(full) X(wakeups) X(corrupt) X(errors)

/* A usage error: what was wrong, then the usage; exit status 2. */
static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "shmringctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\n");
	usage(stderr);
	return 2;
}

int shmringctl__schema(int argc, char **argv); /* schema_gen.c */

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "schema"))
		return shmringctl__schema(argc - 1, argv + 1);
	const char *dir = "/dev/shm/shmring/default";
	int json = 0, stats = 0, top = 0;
	double interval = 1;
	long count = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--shm-dir")) {
			if (i + 1 >= argc)
				return usage_error("%s needs a directory", a);
			dir = argv[++i];
		} else if (!strncmp(a, "--shm-dir=", 10)) {
			dir = a + 10;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--interval") || !strcmp(a, "--count")) {
			if (i + 1 >= argc)
				return usage_error("%s needs a number", a);
			char *end;
			double v = strtod(argv[++i], &end);
			if (*end || !(v > 0) || v > 3600)
				return usage_error("not a number in (0, 3600]: '%s'", argv[i]);
			if (a[2] == 'i')
				interval = v;
			else
				count = (long)v;
		} else if (!strcmp(a, "stats")) {
			stats = 1;
		} else if (!strcmp(a, "top")) {
			top = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (a[0] == '-') {
			return usage_error("unknown option '%s'", a);
		} else {
			return usage_error("unknown command '%s' (want stats or top)", a);
		}
	}
	if (stats + top != 1)
		return usage_error("%s", stats + top ? "one command at a time (stats or top)"
		                         : json      ? "--json goes with a command: stats --json"
		                                     : "no command given (want: stats or top)");
	struct shmring_instance *inst;
	int rc = shmring_instance_attach(dir, &inst);
	if (rc < 0) {
		fprintf(stderr, "shmringctl: no shmringd instance in %s: %s\n", dir,
		        shmring_strerror(rc));
		return 1;
	}
	const struct shmringd_stats *st = map_stats(dir);
	if (top) {
		if (!st) {
			fprintf(stderr, "shmringctl: no daemon stats file (version %u) in %s\n",
			        SHMRINGD_STATS_VERSION, dir);
			shmring_instance_close(inst, 0);
			return 1;
		}
		if (json)
			top_json(st, shmring_instance_nworkers(inst));
		else
			top_live(inst, st, dir, interval, count);
		munmap((void *)st, sizeof(struct shmringd_stats));
		shmring_instance_close(inst, 0);
		return 0;
	}
	uint32_t nw = shmring_instance_nworkers(inst), nc = shmring_instance_nchannels(inst);
	int64_t age = shmring_instance_heartbeat_age_ns(inst);
	struct chan_view *cv = calloc(nc, sizeof(*cv));
	for (uint32_t k = 0; cv && k < nc; k++) {
		struct shmring_chan *c;
		if (shmring_chan_open(inst, k, SHMRING_CLIENT, &c) == 0) {
			cv[k].cl = *shmring_chan_counters(c, SHMRING_CLIENT);
			cv[k].sv = *shmring_chan_counters(c, SHMRING_SERVER);
			cv[k].owner = shmring_chan_owner(c);
			cv[k].ok = 1;
			shmring_chan_close(c);
		}
	}

	if (json) {
		/* The epoch is a string: 64 bits do not survive JSON tools that read
		 * numbers as doubles. */
		printf("{\"shm_dir\":\"%s\",\"epoch\":\"%" PRIu64 "\",\"heartbeat_age_ns\":%" PRId64
		       ",\"closed\":%s,\"nworkers\":%u,\"nchannels\":%u,\"workers\":[",
		       dir, shmring_instance_epoch(inst), age < 0 ? -1 : age,
		       age == -ESTALE ? "true" : "false", nw, nc);
		for (uint32_t w = 0; w < nw; w++) {
			const struct shmring_worker_counters *c =
			    shmring_instance_worker_counters(inst, w);
			printf("%s{\"slot\":%u,\"pid\":%" PRIu64 ",\"records\":%" PRIu64
			       ",\"sleeps\":%" PRIu64 ",\"wakeups\":%" PRIu64 ",\"errors\":%" PRIu64
			       ",\"restarts\":%" PRIu64,
			       w ? "," : "", w, c->pid, c->records, c->sleeps, c->wakeups,
			       c->errors, c->restarts);
			if (st) {
				const struct shmringd_worker_stats *s = &st->w[w];
#define J(f) printf(",\"" #f "\":%" PRIu64, s->f);
				WS_FIELDS(J)
#undef J
				printf(",\"lat_p50_ns\":%" PRIu64 ",\"lat_p99_ns\":%" PRIu64
				       ",\"lat_hist_log2_ns\":[",
				       hist_quantile(s->lat_hist, 0.5),
				       hist_quantile(s->lat_hist, 0.99));
				for (int i = 0; i < SHMRINGD_HIST_BUCKETS; i++)
					printf("%s%" PRIu64, i ? "," : "", s->lat_hist[i]);
				printf("],\"plugins\":[");
				int first = 1;
				for (int i = 0; i < SHMRINGD_STATS_PLUGINS; i++) {
					const struct shmringd_plugin_stats *ps = &s->plugins[i];
					if (!ps->name[0])
						continue;
					printf("%s{\"name\":\"%.48s\",\"calls\":%" PRIu64
					       ",\"errors\":%" PRIu64 ",\"exhausted\":%" PRIu64 "}",
					       first ? "" : ",", ps->name, ps->calls, ps->errors,
					       ps->exhausted);
					first = 0;
				}
				printf("]");
			}
			printf("}");
		}
		printf("],\"channels\":[");
		for (uint32_t k = 0; k < nc; k++) {
			printf("%s{\"index\":%u,\"worker\":%u,\"owner_pid\":%" PRIu64, k ? "," : "",
			       k, nw ? k % nw : 0, cv[k].owner & PID_MASK);
#define J(f)                                                                                       \
	printf(",\"client_" #f "\":%" PRIu64 ",\"server_" #f "\":%" PRIu64, cv[k].cl.f, cv[k].sv.f);
			CC_FIELDS(J)
#undef J
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("instance %s  epoch %016" PRIx64 "  heartbeat %s", dir,
		       shmring_instance_epoch(inst), age == -ESTALE ? "CLOSED" : "");
		if (age >= 0)
			printf("%.1f ms ago", (double)age / 1e6);
		printf("  workers %u  channels %u\n\n", nw, nc);
		printf("%-6s %8s %12s %10s %10s %8s %8s %10s %8s %8s %10s %10s %10s %10s\n",
		       "worker", "pid", "records", "sleeps", "wakeups", "errors", "restarts",
		       "malformed", "unk_conf", "cq_full", "sink_ent", "sink_drop", "p50_ns",
		       "p99_ns");
		for (uint32_t w = 0; w < nw; w++) {
			const struct shmring_worker_counters *c =
			    shmring_instance_worker_counters(inst, w);
			const struct shmringd_worker_stats *s = st ? &st->w[w] : NULL;
			printf("%-6u %8" PRIu64 " %12" PRIu64 " %10" PRIu64 " %10" PRIu64
			       " %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %8" PRIu64 " %8" PRIu64
			       " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
			       w, c->pid, c->records, c->sleeps, c->wakeups, c->errors, c->restarts,
			       s ? s->malformed : 0, s ? s->unknown_conf : 0, s ? s->cq_full : 0,
			       s ? s->sink_entries : 0, s ? s->sink_dropped : 0,
			       s ? hist_quantile(s->lat_hist, 0.5) : 0,
			       s ? hist_quantile(s->lat_hist, 0.99) : 0);
		}
		printf("\n%-4s %6s %8s %12s %12s %12s %8s %8s %10s %8s %8s\n", "chan", "worker",
		       "owner", "sq_records", "sq_bytes", "cq_records", "sq_full", "cq_full",
		       "doorbells", "corrupt", "errors");
		for (uint32_t k = 0; k < nc; k++) {
			printf("%-4u %6u %8" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12" PRIu64
			       " %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %8" PRIu64 " %8" PRIu64
			       "\n",
			       k, nw ? k % nw : 0, cv[k].owner & PID_MASK, cv[k].cl.records,
			       cv[k].cl.bytes, cv[k].sv.records, cv[k].cl.full, cv[k].sv.full,
			       cv[k].sv.wakeups, cv[k].cl.corrupt + cv[k].sv.corrupt,
			       cv[k].cl.errors + cv[k].sv.errors);
		}
		if (st) {
			printf("\ndispatch latency per worker (records per bucket, bucket = "
			       "[2^i, 2^(i+1)) ns):\n");
			for (uint32_t w = 0; w < nw; w++) {
				printf("  worker %u:", w);
				for (int i = 0; i < SHMRINGD_HIST_BUCKETS; i++)
					if (st->w[w].lat_hist[i])
						printf(" <%" PRIu64 "ns:%" PRIu64, (uint64_t)2 << i,
						       st->w[w].lat_hist[i]);
				printf("\n");
			}
			printf("\n%-24s %14s %10s %10s   (all workers)\n", "plugin", "calls",
			       "errors", "exhausted");
			print_plugin_totals(st, nw);
		} else {
			printf("\n(no daemon stats file in %s)\n", dir);
		}
	}
	free(cv);
	if (st)
		munmap((void *)st, sizeof(struct shmringd_stats));
	shmring_instance_close(inst, 0);
	return 0;
}
