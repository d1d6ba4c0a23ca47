/* SPDX-License-Identifier: MIT */
/* The plugin host: finding, loading and checking plugins (the
 * descriptor of shmring_plugin.h) and their per-plugin counters. */
#include "daemon.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- plugin loading ------------------------------------------------------ */

bool shmringd__name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len < 1 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(islower((unsigned char)n[i]) || isdigit((unsigned char)n[i]) || n[i] == '_' ||
		      n[i] == '-'))
			return false;
	return true;
}

const char *shmringd__plugin_problem(const struct shmring_plugin *d, char *buf, size_t len)
{
	if (d->abi_version != SHMRING_PLUGIN_ABI_VERSION) {
		snprintf(buf, len,
		         "plugin ABI version %u, this shmringd speaks version %u: rebuild the "
		         "plugin against this shmring_plugin.h",
		         d->abi_version, SHMRING_PLUGIN_ABI_VERSION);
		return buf;
	}
	/* Fields appended within the ABI (config) are optional. */
	if (d->struct_size < offsetof(struct shmring_plugin, config)) {
		snprintf(buf, len, "descriptor is %u bytes, ABI %u needs %zu: rebuild the plugin",
		         d->struct_size, SHMRING_PLUGIN_ABI_VERSION,
		         offsetof(struct shmring_plugin, config));
		return buf;
	}
	if (!d->name || !shmringd__name_ok(d->name))
		return "descriptor name must match [a-z0-9_-]{1,63}";
	if (d->phases & ~(uint32_t)(SHMRING_PHASE_ACCESS | SHMRING_PHASE_REWRITE |
	                            SHMRING_PHASE_HEADER_FILTER | SHMRING_PHASE_LOG))
		return "descriptor declares unknown phases";
	if (((d->phases & SHMRING_PHASE_ACCESS) && !d->access) ||
	    ((d->phases & SHMRING_PHASE_REWRITE) && !d->rewrite) ||
	    ((d->phases & SHMRING_PHASE_HEADER_FILTER) && !d->header_filter) ||
	    ((d->phases & SHMRING_PHASE_LOG) && !d->log))
		return "descriptor declares a phase without its hook";
	return NULL;
}

/* dlopen one file into slot p; 0 or -1 (p->error says why). */
static int load_one(struct shmringd_plugin *p, const char *path)
{
	char why[512];
	p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!p->handle) {
		snprintf(p->error, sizeof(p->error), "cannot load plugin %s: %s", path, dlerror());
		return -1;
	}
	const struct shmring_plugin *d = dlsym(p->handle, SHMRING_PLUGIN_SYMBOL);
	if (!d) {
		snprintf(p->error, sizeof(p->error),
		         "plugin %s does not export the '" SHMRING_PLUGIN_SYMBOL "' descriptor",
		         path);
		goto refuse;
	}
	const char *problem = shmringd__plugin_problem(d, why, sizeof(why));
	if (problem) {
		snprintf(p->error, sizeof(p->error), "refusing plugin %s: %s", path, problem);
		goto refuse;
	}
	snprintf(p->name, sizeof(p->name), "%s", d->name);
	p->desc = d;
	return 0;
refuse:
	dlclose(p->handle);
	p->handle = NULL;
	return -1;
}

/* Find name.so in the ':'-separated dirs; 0 with the path, or -ENOENT. */
static int find_in_dirs(const char *dirs, const char *name, char *path, size_t len)
{
	const char *s = dirs;
	while (*s) {
		const char *e = strchr(s, ':');
		size_t dl = e ? (size_t)(e - s) : strlen(s);
		if (dl) {
			snprintf(path, len, "%.*s/%s.so", (int)dl, s, name);
			if (access(path, R_OK) == 0)
				return 0;
		}
		s += dl + (e ? 1 : 0);
	}
	return -ENOENT;
}

static int slot_add(struct shmringd_plugins *p, const char *path, const char *file_name,
                    bool strict, char *err, size_t errlen)
{
	if (p->n >= SHMRINGD_MAX_PLUGINS) {
		snprintf(err, errlen, "more than %d plugins", SHMRINGD_MAX_PLUGINS);
		return -1;
	}
	struct shmringd_plugin *s = &p->v[p->n];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", file_name);
	if (load_one(s, path) < 0) {
		if (strict) {
			snprintf(err, errlen, "%s", s->error);
			return -1;
		}
		shmringd__log("%s", s->error);
		p->n++; /* kept, refused, so CONF for it says why */
		return 0;
	}
	for (uint32_t i = 0; i < p->n; i++) {
		if (p->v[i].desc && !strcmp(p->v[i].name, s->name)) {
			char name[sizeof(s->name)];
			memcpy(name, s->name, sizeof(name));
			snprintf(s->error, sizeof(s->error),
			         "refusing plugin %s: a plugin named '%s' is already loaded", path,
			         name);
			dlclose(s->handle);
			s->handle = NULL;
			s->desc = NULL;
			if (strict) {
				snprintf(err, errlen, "%s", s->error);
				return -1;
			}
			shmringd__log("%s", s->error);
			return 0;
		}
	}
	p->n++;
	return 0;
}

bool shmringd__plugins_strict(const struct shmringd_config *c)
{
	return c->plugins[0] || !c->allow_plugin_errors;
}

/* Copy the next entry of the ':'-separated list *dirs into dir (possibly
 * empty) and step past it; false at the end of the list. */
static bool next_dir(const char **dirs, char *dir, size_t len)
{
	if (!**dirs)
		return false;
	const char *e = strchr(*dirs, ':');
	size_t dl = e ? (size_t)(e - *dirs) : strlen(*dirs);
	snprintf(dir, len, "%.*s", (int)dl, *dirs);
	*dirs += dl + (e ? 1 : 0);
	return true;
}

/* Every directory of plugin_dir must be one shmringd can list: a typo or a
 * missing package otherwise starts a daemon without its plugins. 0, or -1
 * with the reason in err. */
static int plugin_dirs_readable(const char *dirs, char *err, size_t errlen)
{
	if (!*dirs) {
		snprintf(err, errlen, "plugin_dir is empty");
		return -1;
	}
	char dir[PATH_MAX];
	while (next_dir(&dirs, dir, sizeof(dir))) {
		if (!dir[0])
			continue;
		DIR *d = opendir(dir);
		if (!d) {
			snprintf(err, errlen, "plugin_dir %s: %s", dir, strerror(errno));
			return -1;
		}
		closedir(d);
	}
	return 0;
}

int shmringd__plugins_load(const struct shmringd_config *c, struct shmringd_plugins *p, bool strict,
                           char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	char path[PATH_MAX];
	if (strict && plugin_dirs_readable(c->plugin_dir, err, errlen) < 0)
		return -1;
	if (c->plugins[0]) {
		/* An explicit list: every named plugin must load. */
		char list[sizeof(c->plugins)];
		snprintf(list, sizeof(list), "%s", c->plugins);
		for (char *save = NULL, *n = strtok_r(list, ", ", &save); n;
		     n = strtok_r(NULL, ", ", &save)) {
			if (find_in_dirs(c->plugin_dir, n, path, sizeof(path)) < 0) {
				snprintf(err, errlen, "plugin '%s' not found in %s", n,
				         c->plugin_dir);
				goto fail;
			}
			if (slot_add(p, path, n, true, err, errlen) < 0)
				goto fail;
		}
		return 0;
	}
	/* Every .so of every directory; a bad one is refused, the rest load. */
	const char *s = c->plugin_dir;
	char dir[PATH_MAX];
	while (next_dir(&s, dir, sizeof(dir))) {
		DIR *d = dir[0] ? opendir(dir) : NULL;
		if (!d)
			continue;
		struct dirent **names = NULL;
		int nn = scandir(dir, &names, NULL, alphasort);
		closedir(d);
		for (int i = 0; i < nn; i++) {
			const char *fn = names[i]->d_name;
			size_t fl = strlen(fn);
			if (fl > 3 && !strcmp(fn + fl - 3, ".so")) {
				char base[300];
				snprintf(base, sizeof(base), "%.*s", (int)(fl - 3), fn);
				if ((size_t)snprintf(path, sizeof(path), "%.3800s/%.255s", dir,
				                     fn) >= sizeof(path)) {
					free(names[i]);
					continue;
				}
				if (slot_add(p, path, base, strict, err, errlen) < 0) {
					for (int j = i; j < nn; j++)
						free(names[j]);
					free(names);
					goto fail;
				}
			}
			free(names[i]);
		}
		free(names);
	}
	if (strict && p->n == 0) {
		snprintf(err, errlen, "no plugin (*.so) in plugin_dir %s", c->plugin_dir);
		return -1;
	}
	return 0;
fail:
	shmringd__plugins_unload(p);
	return -1;
}

void shmringd__plugins_init(struct shmringd_plugins *p)
{
	for (uint32_t i = 0; i < p->n; i++) {
		struct shmringd_plugin *s = &p->v[i];
		if (!s->desc)
			continue;
		s->init_ok = true;
		if (s->desc->init) {
			char err[256] = "";
			if (s->desc->init(&s->wstate, err, sizeof(err)) < 0) {
				s->init_ok = false;
				snprintf(s->error, sizeof(s->error), "plugin %s: init failed: %s",
				         s->name, err[0] ? err : "(no message)");
				shmringd__log("%s", s->error);
			}
		}
	}
}

void shmringd__plugins_unload(struct shmringd_plugins *p)
{
	for (uint32_t i = 0; i < p->n; i++) {
		struct shmringd_plugin *s = &p->v[i];
		if (s->desc && s->init_ok && s->desc->fini)
			s->desc->fini(s->wstate);
		s->init_ok = false;
		if (s->handle)
			dlclose(s->handle);
		s->handle = NULL;
		s->desc = NULL;
	}
	p->n = 0;
}

struct shmringd_plugin *shmringd__plugin_find(struct shmringd_plugins *p, const char *name,
                                              size_t len)
{
	for (uint32_t i = 0; i < p->n; i++)
		if (strlen(p->v[i].name) == len && !memcmp(p->v[i].name, name, len))
			return &p->v[i];
	return NULL;
}
