/* SPDX-License-Identifier: MIT */
/* shmringd configuration: defaults, then the config file (key = value, parsed
 * by inih), then the command line, which can override every key. One table
 * drives all three and --help. */
#include "daemon.h"

#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SHMRING_PLUGIN_DIR
#define SHMRING_PLUGIN_DIR "/usr/local/lib/shmring/plugins"
#endif
#ifndef SHMRING_VERSION
#define SHMRING_VERSION "0"
#endif

enum opt_type { OPT_STR, OPT_U32, OPT_MODE, OPT_BOOL };

struct opt {
	const char *key;
	enum opt_type type;
	size_t off;
	size_t size; /* OPT_STR: buffer size */
	const char *help;
};

#define O_STR(k, f, h)                                                                             \
	{                                                                                          \
		k, OPT_STR, offsetof(struct shmringd_config, f),                                   \
		    sizeof(((struct shmringd_config *)0)->f), h                                    \
	}
#define O_NUM(k, f, h)                                                                             \
	{                                                                                          \
		k, OPT_U32, offsetof(struct shmringd_config, f), 0, h                              \
	}

static const struct opt opts[] = {
    O_STR("shm_dir", shm_dir,
          "instance directory of the segments and doorbell sockets "
          "(default /dev/shm/shmring/default)"),
    O_NUM("channels", channels,
          "channel segments, one per nginx worker and spare for "
          "reloads (default 2 x CPUs, max 1024)"),
    O_NUM("workers", workers,
          "worker processes; channel k is served by worker k mod "
          "workers (default CPUs, max 64)"),
    O_NUM("ring_size", ring_size,
          "bytes of each SQ and CQ ring, power of two "
          "(default 1048576)"),
    {"mode", OPT_MODE, offsetof(struct shmringd_config, mode), 0,
     "octal file mode of segments and sockets (default 0660)"},
    O_STR("group", group,
          "group (name or gid) owning segments and sockets (default: "
          "the daemon's)"),
    O_STR("user", user,
          "when started as root, run as this user (name or uid) after "
          "creating the segments"),
    O_STR("plugin_dir", plugin_dir,
          "':'-separated directories of plugin .so files "
          "(default " SHMRING_PLUGIN_DIR ")"),
    O_STR("plugins", plugins,
          "','-separated plugin names to load (each must load); "
          "empty = every .so in plugin_dir"),
    {"foreground", OPT_BOOL, offsetof(struct shmringd_config, foreground), 0,
     "stay in the foreground (systemd, tests); else daemonize"},
    O_NUM("spin_us", spin_us,
          "a worker busy-polls this long after its last record "
          "before sleeping on its futex (default 50)"),
    O_NUM("idle_timeout_ms", idle_timeout_ms,
          "longest worker sleep when no flush is due "
          "(default 1000)"),
    O_NUM("log_batch_bytes", log_batch_bytes,
          "log sink batch flushed at this size "
          "(default 65536)"),
    O_NUM("log_flush_ms", log_flush_ms,
          "... or when its oldest entry is this old "
          "(default 100)"),
    O_NUM("log_sink_max_bytes", log_sink_max_bytes,
          "memory per sink per worker; past it "
          "entries are dropped and counted (default 4194304)"),
    O_NUM("restart_backoff_max_ms", restart_backoff_max_ms,
          "longest delay before restarting a worker that keeps dying (default 5000)"),
    O_NUM("drain_timeout_ms", drain_timeout_ms,
          "SIGTERM: longest wait for rings and "
          "sinks to drain (default 5000)"),
    O_NUM("watchdog_ms", watchdog_ms,
          "kill and restart a worker stuck this long in a "
          "plugin hook; 0 = off; must exceed idle_timeout_ms "
          "(default 10000)"),
    {"verbose", OPT_U32, offsetof(struct shmringd_config, verbose), 0,
     "1 = log reloads, restarts and refusals in detail (default 0)"},
    O_STR("plugin_file_dirs", plugin_file_dirs,
          "':'-separated directories below which plugin configs may name "
          "files (log path, credentials_file); empty = none "
          "(default " SHMRINGD_FILE_DIRS_DEFAULT ")"),
    O_STR("socket", socket,
          "also serve the plugins over this Unix stream socket, one "
          "length-prefixed msgpack frame per phase (compatibility and "
          "benchmark transport, not the fast path; default off)"),
};

void shmringd__config_defaults(struct shmringd_config *c)
{
	memset(c, 0, sizeof(*c));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	snprintf(c->shm_dir, sizeof(c->shm_dir), "/dev/shm/shmring/default");
	c->workers = (uint32_t)(ncpu > SHMRING_MAX_WORKERS ? SHMRING_MAX_WORKERS : ncpu);
	c->channels = 2 * c->workers;
	c->ring_size = SHMRING_DEFAULT_RING;
	c->mode = SHMRING_DEFAULT_MODE;
	snprintf(c->plugin_dir, sizeof(c->plugin_dir), "%s", SHMRING_PLUGIN_DIR);
	c->spin_us = 50;
	c->idle_timeout_ms = 1000;
	c->log_batch_bytes = 65536;
	c->log_flush_ms = 100;
	c->log_sink_max_bytes = 4u << 20;
	c->restart_backoff_max_ms = 5000;
	c->drain_timeout_ms = 5000;
	c->watchdog_ms = 10000;
	snprintf(c->plugin_file_dirs, sizeof(c->plugin_file_dirs), "%s",
	         SHMRINGD_FILE_DIRS_DEFAULT);
}

static const struct opt *opt_find(const char *key)
{
	char norm[64];
	size_t i;
	for (i = 0; key[i] && i < sizeof(norm) - 1; i++)
		norm[i] = key[i] == '-' ? '_' : key[i];
	norm[i] = '\0';
	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
		if (strcmp(opts[k].key, norm) == 0)
			return &opts[k];
	return NULL;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "true") || !*v)
		*out = true;
	else if (!strcmp(v, "0") || !strcasecmp(v, "off") || !strcasecmp(v, "no") ||
	         !strcasecmp(v, "false"))
		*out = false;
	else
		return -1;
	return 0;
}

/* Set one key; 0 or -1 with the reason in err. */
static int opt_set(struct shmringd_config *c, const char *key, const char *val, char *err,
                   size_t errlen)
{
	const struct opt *o = opt_find(key);
	if (!o) {
		snprintf(err, errlen, "unknown option '%s'", key);
		return -1;
	}
	char *field = (char *)c + o->off;
	char *end = NULL;
	switch (o->type) {
	case OPT_STR:
		if (strlen(val) >= o->size) {
			snprintf(err, errlen, "value of '%s' is too long", o->key);
			return -1;
		}
		strcpy(field, val);
		return 0;
	case OPT_U32: {
		errno = 0;
		unsigned long v = strtoul(val, &end, 0);
		if (errno || end == val || *end || v > UINT32_MAX) {
			snprintf(err, errlen, "'%s' wants a number, got '%s'", o->key, val);
			return -1;
		}
		if (!strcmp(o->key, "verbose"))
			*(int *)field = (int)v;
		else
			*(uint32_t *)field = (uint32_t)v;
		return 0;
	}
	case OPT_MODE: {
		errno = 0;
		unsigned long v = strtoul(val, &end, 8);
		if (errno || end == val || *end || v > 07777) {
			snprintf(err, errlen, "'%s' wants an octal mode, got '%s'", o->key, val);
			return -1;
		}
		*(mode_t *)field = (mode_t)v;
		return 0;
	}
	case OPT_BOOL:
		if (parse_bool(val, (bool *)field) < 0) {
			snprintf(err, errlen, "'%s' wants on/off, got '%s'", o->key, val);
			return -1;
		}
		return 0;
	}
	return -1;
}

struct ini_ctx {
	struct shmringd_config *c;
	char err[256];
};

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *x = user;
	if (section && *section) {
		snprintf(x->err, sizeof(x->err), "sections are not used ([%s])", section);
		return 0;
	}
	return opt_set(x->c, name, value, x->err, sizeof(x->err)) == 0;
}

static int validate(const struct shmringd_config *c)
{
	const char *why = NULL;
	if (c->channels < 1 || c->channels > SHMRING_MAX_CHANNELS)
		why = "channels must be 1..1024";
	else if (c->workers < 1 || c->workers > SHMRING_MAX_WORKERS)
		why = "workers must be 1..64";
	else if (c->ring_size < SHMRING_MIN_RING || c->ring_size > SHMRING_MAX_RING ||
	         (c->ring_size & (c->ring_size - 1)))
		why = "ring_size must be a power of two, 4096..1073741824";
	else if (!c->shm_dir[0] || c->shm_dir[0] != '/')
		why = "shm_dir must be an absolute path";
	else if (c->log_batch_bytes < 512 || c->log_sink_max_bytes < 2 * c->log_batch_bytes)
		why =
		    "log_batch_bytes must be >= 512 and log_sink_max_bytes >= 2 x log_batch_bytes";
	else if (c->log_flush_ms < 1)
		why = "log_flush_ms must be >= 1";
	else if (c->idle_timeout_ms < 1)
		why = "idle_timeout_ms must be >= 1";
	else if (c->watchdog_ms && c->watchdog_ms <= c->idle_timeout_ms + 100)
		why = "watchdog_ms must be 0 or more than idle_timeout_ms + 100";
	else if (c->socket[0] && c->workers >= SHMRING_MAX_WORKERS)
		why = "socket takes a worker slot: workers must be 1..63 with it";
	else if (c->socket[0] && c->socket[0] != '/')
		why = "socket must be an absolute path";
	if (why) {
		fprintf(stderr, "shmringd: bad configuration: %s\n", why);
		return -1;
	}
	return 0;
}

void shmringd__usage(FILE *f)
{
	fprintf(f, "Usage: shmringd [--config FILE] [--foreground] [--KEY VALUE]...\n"
	           "\n"
	           "Runs C plugins for nginx/Kong workers that talk to it through shared-memory\n"
	           "rings (see docs/daemon.md). Every KEY of the config file (key = value lines)\n"
	           "can be given on the command line as --KEY VALUE or --KEY=VALUE ('-' and '_'\n"
	           "are the same); the command line wins over the file.\n"
	           "\n"
	           "  -c, --config FILE        read this config file (re-read on SIGHUP)\n"
	           "  -f, --foreground         same as --foreground on\n"
	           "      --check              load config and plugins, report, exit (0 = ok)\n"
	           "  -h, --help               this text\n"
	           "  -V, --version            print the version\n"
	           "\nKeys:\n");
	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		fprintf(f, "      --%-22s %s\n", opts[k].key, opts[k].help);
	}
	fprintf(f, "\nSignals: SIGTERM/SIGINT graceful stop (drain rings, flush logs, exit 0);\n"
	           "SIGHUP reload the config file and plugins (workers restarted one set at a\n"
	           "time; records wait in the rings, nothing is dropped).\n");
}

extern bool shmringd__check_only;
bool shmringd__check_only;

int shmringd__config_load(struct shmringd_config *c, int argc, char **argv, bool *exit_now)
{
	*exit_now = false;
	char err[256];
	/* Pass 1: find the config file, help and version. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			shmringd__usage(stdout);
			*exit_now = true;
			return 0;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("shmringd %s (plugin ABI %u, ring ABI %u)\n", SHMRING_VERSION,
			       SHMRING_PLUGIN_ABI_VERSION, SHMRING_ABI_VERSION);
			*exit_now = true;
			return 0;
		}
		if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
			snprintf(c->config_file, sizeof(c->config_file), "%s", argv[++i]);
		} else if (!strncmp(a, "--config=", 9)) {
			snprintf(c->config_file, sizeof(c->config_file), "%s", a + 9);
		}
	}
	if (c->config_file[0]) {
		struct ini_ctx x = {.c = c};
		int rc = ini_parse(c->config_file, on_ini_line, &x);
		if (rc < 0) {
			fprintf(stderr, "shmringd: cannot read config file %s: %s\n",
			        c->config_file, strerror(errno));
			return -1;
		}
		if (rc > 0) {
			fprintf(stderr, "shmringd: %s:%d: %s\n", c->config_file, rc,
			        x.err[0] ? x.err : "syntax error");
			return -1;
		}
	}
	/* Pass 2: overrides. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			i++;
			continue;
		}
		if (!strncmp(a, "--config=", 9))
			continue;
		if (!strcmp(a, "-f") || !strcmp(a, "--foreground")) {
			c->foreground = true;
			continue;
		}
		if (!strcmp(a, "--check")) {
			shmringd__check_only = true;
			continue;
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "shmringd: unexpected argument '%s' (see --help)\n", a);
			return -1;
		}
		char key[64];
		const char *eq = strchr(a + 2, '=');
		const char *val;
		size_t klen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
		if (klen >= sizeof(key)) {
			fprintf(stderr, "shmringd: unknown option '%s'\n", a);
			return -1;
		}
		memcpy(key, a + 2, klen);
		key[klen] = '\0';
		const struct opt *o = opt_find(key);
		if (!o) {
			fprintf(stderr, "shmringd: unknown option '%s' (see --help)\n", a);
			return -1;
		}
		if (eq) {
			val = eq + 1;
		} else if (o->type == OPT_BOOL &&
		           (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
			val = "on";
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			fprintf(stderr, "shmringd: option '%s' needs a value\n", a);
			return -1;
		}
		if (opt_set(c, key, val, err, sizeof(err)) < 0) {
			fprintf(stderr, "shmringd: %s\n", err);
			return -1;
		}
	}
	if (validate(c) < 0)
		return -1;
	if (shmringd__file_dirs_set(c->plugin_file_dirs, err, sizeof(err)) < 0) {
		fprintf(stderr, "shmringd: bad configuration: %s\n", err);
		return -1;
	}
	return 0;
}
