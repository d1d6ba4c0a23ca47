/* SPDX-License-Identifier: MIT */
/* shmringd configuration: defaults, then the config file (key = value, parsed
 * by inih), then the command line, which can override every key. One table
 * drives all three and --help. */
#include "daemon.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
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
	const char *def; /* the default, in words; conf/shmringd.conf.in and
	                    docs/daemon.md use the same help and default */
};

#define O_STR(k, f, h, d)                                                                          \
	{                                                                                          \
		k, OPT_STR, offsetof(struct shmringd_config, f),                                   \
		    sizeof(((struct shmringd_config *)0)->f), h, d                                 \
	}
#define O_NUM(k, f, h, d)                                                                          \
	{                                                                                          \
		k, OPT_U32, offsetof(struct shmringd_config, f), 0, h, d                           \
	}
#define O_BOOL(k, f, h, d)                                                                         \
	{                                                                                          \
		k, OPT_BOOL, offsetof(struct shmringd_config, f), 0, h, d                          \
	}

static const struct opt opts[] = {
    O_STR("shm_dir", shm_dir,
          "instance directory: the segments (ctl, ch-N), doorbell sockets (ch-N.bell), "
          "stats, shmringd.lock and plugin regions (plugin-NAME.shm)",
          "/dev/shm/shmring/default"),
    O_NUM("channels", channels,
          "channel segments (1..1024): one per gateway worker, plus spares for reloads "
          "(old and new workers overlap)",
          "2 x CPUs"),
    O_NUM("workers", workers,
          "worker processes (1..64); channel k is served by worker k mod workers", "CPUs"),
    O_NUM("ring_size", ring_size, "bytes of each SQ and CQ ring, a power of two (4096..1073741824)",
          "1048576"),
    {"mode", OPT_MODE, offsetof(struct shmringd_config, mode), 0,
     "octal mode of the segments, the stats file (never writable by group or other) and "
     "the doorbell sockets: the gateway's user must be able to read and write them",
     "0660"},
    O_STR("group", group,
          "group (name or gid) of those files, e.g. the gateway's; needs root or "
          "membership",
          "the daemon's"),
    O_STR("user", user,
          "required when started as root (shmringd refuses root without it): root only "
          "makes the instance directory, owned by this user, then switches to this user "
          "(name or uid) before making any file in it; root = stay root, deliberately",
          "none"),
    O_STR("plugin_dir", plugin_dir,
          "':'-separated directories of plugin .so files; each must exist and be "
          "readable",
          SHMRING_PLUGIN_DIR),
    O_STR("plugins", plugins,
          "','-separated plugin names to load, each must load; empty = every .so in "
          "plugin_dir",
          "empty"),
    O_BOOL("allow_plugin_errors", allow_plugin_errors,
           "with plugins empty: start without the plugins that do not load, an unreadable "
           "plugin_dir or no plugin at all, logging why; off = refuse to start",
           "off"),
    O_BOOL("foreground", foreground,
           "stay in the foreground, logging to stderr (systemd, tests); off = daemonize and "
           "log to syslog",
           "off"),
    O_NUM("spin_us", spin_us,
          "a worker busy-polls this long after its last record before sleeping on its "
          "futex",
          "50"),
    O_NUM("idle_timeout_ms", idle_timeout_ms,
          "longest worker sleep when no log flush is due (housekeeping only)", "1000"),
    O_NUM("log_batch_bytes", log_batch_bytes,
          "a log sink's batch is written when it reaches this size ...", "65536"),
    O_NUM("log_flush_ms", log_flush_ms, "... or when its oldest entry is this old", "100"),
    O_NUM("log_sink_max_bytes", log_sink_max_bytes,
          "memory per sink per worker; past it entries are dropped and counted", "4194304"),
    O_NUM("channel_memory_mb", channel_memory_mb,
          "MiB one channel may take: each config is charged the heap its conf_new took "
          "(caches and sink buffers at their declared size), the entity cache its bound "
          "(entity_cache_entries x 2 KiB); a CONF past it is refused with the numbers; "
          "0 = no bound",
          "256"),
    O_NUM("restart_backoff_max_ms", restart_backoff_max_ms,
          "longest delay before restarting a worker that keeps dying", "5000"),
    O_NUM("drain_timeout_ms", drain_timeout_ms,
          "SIGTERM: longest wait for the rings and the log sinks to drain", "5000"),
    O_NUM("watchdog_ms", watchdog_ms,
          "kill and restart a worker stuck this long in a plugin hook; 0 = off; must "
          "exceed idle_timeout_ms + 100",
          "10000"),
    O_NUM("entity_cache_entries", entity_cache_entries,
          "consumers and credentials learned from the gateway, kept per channel in at most "
          "2 KiB each on average; the least recently used go first (unknown keys count too)",
          "4096"),
    {"verbose", OPT_U32, offsetof(struct shmringd_config, verbose), 0,
     "1 = log every malformed record and each worker's start", "0"},
    O_STR("plugin_file_dirs", plugin_file_dirs,
          "':'-separated directories below which plugin configs may name files (the log "
          "plugin's path, credentials_file); empty = none",
          SHMRINGD_FILE_DIRS_DEFAULT),
    O_STR("socket", socket,
          "also serve the plugins over this Unix stream socket, one length-prefixed "
          "msgpack frame per phase (compatibility and benchmark transport, not the fast "
          "path)",
          "off"),
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* Where each key got its value, for error messages: the config file's line,
 * KEY_FROM_ARGV, or 0 (its default). Reset by every shmringd__config_load(). */
#define KEY_FROM_ARGV (-1)
static int key_line[NOPTS];
static char key_file[PATH_MAX];

void shmringd__config_error(const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int line = 0;
	for (size_t k = 0; k < NOPTS; k++)
		if (!strcmp(opts[k].key, key))
			line = key_line[k];
	if (line > 0)
		fprintf(stderr, "shmringd: %s:%d: %s: %s\n", key_file, line, key, msg);
	else if (line == KEY_FROM_ARGV)
		fprintf(stderr, "shmringd: --%s: %s\n", key, msg);
	else
		fprintf(stderr, "shmringd: %s (default): %s\n", key, msg);
}

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
	c->channel_memory_mb = 256;
	c->restart_backoff_max_ms = 5000;
	c->drain_timeout_ms = 5000;
	c->watchdog_ms = 10000;
	c->entity_cache_entries = 4096;
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
	for (size_t k = 0; k < NOPTS; k++)
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

/* Set key o from val, given at line (or KEY_FROM_ARGV); 0 or -1 with the
 * reason in err (the caller names the key and where). */
static int opt_set(struct shmringd_config *c, const struct opt *o, const char *val, int line,
                   char *err, size_t errlen)
{
	key_line[o - opts] = line;
	char *field = (char *)c + o->off;
	char *end = NULL;
	switch (o->type) {
	case OPT_STR:
		if (strlen(val) >= o->size) {
			snprintf(err, errlen, "value is too long (at most %zu bytes)", o->size - 1);
			return -1;
		}
		strcpy(field, val);
		return 0;
	case OPT_U32: {
		errno = 0;
		unsigned long v = strtoul(val, &end, 0);
		if (errno || end == val || *end || v > UINT32_MAX) {
			snprintf(err, errlen, "wants a number, got '%s'", val);
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
			snprintf(err, errlen, "wants an octal mode, got '%s'", val);
			return -1;
		}
		*(mode_t *)field = (mode_t)v;
		return 0;
	}
	case OPT_BOOL:
		if (parse_bool(val, (bool *)field) < 0) {
			snprintf(err, errlen, "wants on/off, got '%s'", val);
			return -1;
		}
		return 0;
	}
	return -1;
}

/* The config file being parsed. inih (as packaged) does not pass the line
 * number to the handler: the reader counts the lines it hands over, and
 * inih calls the handler for a line before it reads the next one. */
struct ini_ctx {
	struct shmringd_config *c;
	FILE *f;
	char *buf; /* getline's */
	size_t cap;
	int line;        /* of the last line read */
	int errors;      /* reported so far */
	int first_error; /* line of the first one the handler refused */
};

/* inih reads at most num - 1 bytes per call and would parse the rest of a
 * longer line as a line of its own: such a line is reported here and handed
 * over empty. */
static char *ini_read_line(char *str, int num, void *stream)
{
	struct ini_ctx *x = stream;
	ssize_t n = getline(&x->buf, &x->cap, x->f);
	if (n < 0)
		return NULL;
	x->line++;
	if (n >= num) {
		fprintf(stderr, "shmringd: %s:%d: line longer than %d characters\n", key_file,
		        x->line, num - 2);
		x->errors++;
		n = 0;
	}
	memcpy(str, x->buf, (size_t)n);
	str[n] = '\0';
	return str;
}

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *x = user;
	char err[256];
	const struct opt *o = opt_find(name);
	if (section && *section)
		snprintf(err, sizeof(err), "sections are not used ([%s])", section);
	else if (!o)
		snprintf(err, sizeof(err), "unknown key (shmringd --help lists them)");
	else if (opt_set(x->c, o, value, x->line, err, sizeof(err)) == 0)
		return 1;
	fprintf(stderr, "shmringd: %s:%d: %s: %s\n", key_file, x->line, name, err);
	if (!x->first_error)
		x->first_error = x->line;
	x->errors++;
	return 0;
}

/* Parse the config file; 0, or -1 after printing every error with its line. */
static int config_file_load(struct shmringd_config *c)
{
	struct ini_ctx x = {.c = c, .f = fopen(c->config_file, "r")};
	if (!x.f) {
		fprintf(stderr, "shmringd: cannot read config file %s: %s\n", c->config_file,
		        strerror(errno));
		return -1;
	}
	int rc = ini_parse_stream(ini_read_line, &x, on_ini_line, &x);
	fclose(x.f);
	free(x.buf);
	/* rc is the first bad line: one the handler refused, or one inih could
	 * not parse (reported here; inih reports no later ones). */
	if (rc > 0 && rc != x.first_error) {
		fprintf(stderr, "shmringd: %s:%d: syntax error (want key = value)\n",
		        c->config_file, rc);
		x.errors++;
	}
	return x.errors ? -1 : 0;
}

/* Check the values together; every problem is reported with the key and
 * where it was set. 0, or -1. */
static int validate(const struct shmringd_config *c)
{
	int bad = 0;
#define BAD(key, ...) (shmringd__config_error(key, __VA_ARGS__), bad++)
	if (c->channels < 1 || c->channels > SHMRING_MAX_CHANNELS)
		BAD("channels", "must be 1..%u, got %u", SHMRING_MAX_CHANNELS, c->channels);
	if (c->workers < 1 || c->workers > SHMRING_MAX_WORKERS)
		BAD("workers", "must be 1..%u, got %u", SHMRING_MAX_WORKERS, c->workers);
	if (c->ring_size < SHMRING_MIN_RING || c->ring_size > SHMRING_MAX_RING ||
	    (c->ring_size & (c->ring_size - 1)))
		BAD("ring_size", "must be a power of two, %u..%u, got %u", SHMRING_MIN_RING,
		    SHMRING_MAX_RING, c->ring_size);
	if (c->entity_cache_entries < 16 || c->entity_cache_entries > (1u << 24))
		BAD("entity_cache_entries", "must be 16..%u, got %u", 1u << 24,
		    c->entity_cache_entries);
	uint64_t entities = shmringd__entity_cache_bytes(c->entity_cache_entries);
	if (c->channel_memory_mb && entities >= (uint64_t)c->channel_memory_mb << 20)
		BAD("channel_memory_mb",
		    "must leave room for configs beside the entity cache's bound "
		    "(entity_cache_entries "
		    "%u x %u bytes = %llu bytes), got %u MiB",
		    c->entity_cache_entries, SHMRINGD_ENTITY_ENTRY_BYTES,
		    (unsigned long long)entities, c->channel_memory_mb);
	if (c->shm_dir[0] != '/')
		BAD("shm_dir", "must be an absolute path, got '%s'", c->shm_dir);
	if (c->log_batch_bytes < 512)
		BAD("log_batch_bytes", "must be >= 512, got %u", c->log_batch_bytes);
	if (c->log_sink_max_bytes < 2 * (uint64_t)c->log_batch_bytes)
		BAD("log_sink_max_bytes", "must be >= 2 x log_batch_bytes (%u), got %u",
		    c->log_batch_bytes, c->log_sink_max_bytes);
	if (c->log_flush_ms < 1)
		BAD("log_flush_ms", "must be >= 1");
	if (c->idle_timeout_ms < 1)
		BAD("idle_timeout_ms", "must be >= 1");
	if (c->watchdog_ms && c->watchdog_ms <= (uint64_t)c->idle_timeout_ms + 100)
		BAD("watchdog_ms", "must be 0 or more than idle_timeout_ms + 100 (%u), got %u",
		    c->idle_timeout_ms + 100, c->watchdog_ms);
	if (c->socket[0] && c->workers >= SHMRING_MAX_WORKERS)
		BAD("socket", "takes a worker slot: workers must be 1..%u with it",
		    SHMRING_MAX_WORKERS - 1);
	if (c->socket[0] && c->socket[0] != '/')
		BAD("socket", "must be an absolute path, got '%s'", c->socket);
	/* Checking the list also makes it the one shmring_file_open() uses. */
	char why[256];
	if (shmringd__file_dirs_set(c->plugin_file_dirs, why, sizeof(why)) < 0)
		BAD("plugin_file_dirs", "%s", why);
#undef BAD
	return bad ? -1 : 0;
}

/* Print text from column `indent` (the cursor is there), wrapped at `width`. */
static void print_wrapped(FILE *f, const char *text, int indent, int width)
{
	int col = indent;
	const char *w = text;
	while (*w) {
		size_t len = strcspn(w, " ");
		if (col > indent && col + 1 + (int)len > width) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		}
		fprintf(f, "%s%.*s", col > indent ? " " : "", (int)len, w);
		col += (col > indent) + (int)len;
		w += len;
		w += strspn(w, " ");
	}
	fputc('\n', f);
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
	           "      --check PLUGIN.so [CONFIG]  load that plugin file alone, report what\n"
	           "                           it declares, try the JSON CONFIG (0 = ok)\n"
	           "  -h, --help               this text\n"
	           "  -V, --version            print the version\n"
	           "\nKeys:\n");
	for (size_t k = 0; k < NOPTS; k++) {
		char text[640];
		snprintf(text, sizeof(text), "%s (default %s)", opts[k].help, opts[k].def);
		fprintf(f, "      --%-23s", opts[k].key);
		print_wrapped(f, text, 31, 79);
	}
	fprintf(f, "\nSignals: SIGTERM/SIGINT graceful stop (drain rings, flush logs, exit 0);\n"
	           "SIGHUP reload the config file and plugins (workers restarted one set at a\n"
	           "time; records wait in the rings, nothing is dropped).\n");
}

extern bool shmringd__check_only;
bool shmringd__check_only;
/* --check PLUGIN.so [CONFIG]: master.c checks that file instead. */
extern const char *shmringd__check_plugin, *shmringd__check_config;
const char *shmringd__check_plugin, *shmringd__check_config;

int shmringd__config_load(struct shmringd_config *c, int argc, char **argv, bool *exit_now)
{
	*exit_now = false;
	char err[256];
	memset(key_line, 0, sizeof(key_line));
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
	snprintf(key_file, sizeof(key_file), "%s", c->config_file);
	if (c->config_file[0] && config_file_load(c) < 0)
		return -1;
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
			if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
				shmringd__check_plugin = argv[++i];
				if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
					shmringd__check_config = argv[++i];
			}
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
		if (opt_set(c, o, val, KEY_FROM_ARGV, err, sizeof(err)) < 0) {
			fprintf(stderr, "shmringd: --%s: %s\n", o->key, err);
			return -1;
		}
	}
	return validate(c);
}
