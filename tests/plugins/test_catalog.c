/* SPDX-License-Identifier: MIT */
/* The gateway's catalog (lua/shmring/plugins.lua) against the descriptor of
 * every plugin built into PLUGIN_DIR, both ways:
 *   - every built plugin has a catalog entry, every entry a built plugin
 *     (a plugin without one silently gets the hello-like default);
 *   - the same needs_headers / needs_query (else snapshots lack what the
 *     plugin looks for: a silent 401);
 *   - every catalog phase is implemented by the plugin (else records it
 *     cannot answer), and every phase a Kong stub runs (access, log) that
 *     the plugin implements is in the catalog (else its hook never runs).
 * Reads the catalog with luajit; skipped (77) without it. Only the
 * descriptors are read: no plugin is initialised. */
#include "harness.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLUGINS 64

static int failures;

static void fail(const char *plugin, const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "FAIL %s: ", plugin);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	failures++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "*", "" or the sorted comma-joined names of a descriptor list. */
static void join_needs(const char *const *v, char *out, size_t len)
{
	const char *names[64];
	size_t n = 0;
	for (; v && v[n] && n < 64; n++)
		names[n] = v[n];
	qsort(names, n, sizeof(names[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", names[i]);
}

/* Run a Lua chunk (with shmring.plugins as P) and read up to n lines. */
static int lua_lines(const char *chunk, char lines[][512], int n)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
	         "luajit -e 'package.path = \"%s/lua/?.lua;\" .. package.path "
	         "local P = require(\"shmring.plugins\") %s'",
	         SOURCE_DIR, chunk);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	int got = 0;
	while (got < n && fgets(lines[got], 512, f)) {
		lines[got][strcspn(lines[got], "\n")] = '\0';
		got++;
	}
	return pclose(f) == 0 ? got : -1;
}

static const struct {
	const char *name;
	uint32_t bit;
	bool kong_runs; /* a Kong stub sends this phase (shmring/kong.lua) */
} phases[] = {
    {"access", SHMRING_PHASE_ACCESS, true},
    {"rewrite", SHMRING_PHASE_REWRITE, false},
    {"header_filter", SHMRING_PHASE_HEADER_FILTER, false},
    {"log", SHMRING_PHASE_LOG, true},
};

static void check_plugin(const struct shmring_plugin *p)
{
	char want_h[512], want_q[512];
	join_needs(p->needs_headers, want_h, sizeof(want_h));
	join_needs(p->needs_query, want_q, sizeof(want_q));
	char chunk[1024], got[3][512];
	snprintf(chunk, sizeof(chunk),
	         "local s = P.get(\"%s\") "
	         "local function j(x) if x == \"*\" then return \"*\" end "
	         "local t = {} for _, v in ipairs(x) do t[#t + 1] = v end table.sort(t) "
	         "return table.concat(t, \",\") end "
	         "local ph = {} for k, v in pairs(s.phases) do if v then ph[#ph + 1] = k end end "
	         "print(j(s.headers)) print(j(s.query)) print(\",\" .. table.concat(ph, \",\") .. "
	         "\",\")",
	         p->name);
	if (lua_lines(chunk, got, 3) != 3) {
		fail(p->name, "cannot read the catalog%s%s", "", "");
		return;
	}
	if (strcmp(got[0], want_h))
		fail(p->name, "catalog headers '%s', descriptor needs_headers '%s'", got[0],
		     want_h);
	if (strcmp(got[1], want_q))
		fail(p->name, "catalog query '%s', descriptor needs_query '%s'", got[1], want_q);
	for (size_t k = 0; k < sizeof(phases) / sizeof(phases[0]); k++) {
		char key[32];
		snprintf(key, sizeof(key), ",%s,", phases[k].name);
		bool in_catalog = strstr(got[2], key) != NULL;
		bool in_desc = (p->phases & phases[k].bit) != 0;
		if (in_catalog && !in_desc)
			fail(p->name, "catalog phase '%s' not in the descriptor%s", phases[k].name,
			     "");
		if (!in_catalog && in_desc && phases[k].kong_runs)
			fail(p->name, "descriptor phase '%s' missing from the catalog%s",
			     phases[k].name, "");
	}
	printf("%s: headers '%s', query '%s', phases '%s'\n", p->name, want_h, want_q, got[2]);
}

int main(void)
{
	if (system("luajit -v >/dev/null 2>&1") != 0) {
		printf("SKIP: luajit not installed\n");
		return 77;
	}
	DIR *d = opendir(PLUGIN_DIR);
	if (!d) {
		perror(PLUGIN_DIR);
		return 1;
	}
	char *built[MAX_PLUGINS];
	size_t nbuilt = 0;
	for (struct dirent *e; (e = readdir(d)) && nbuilt < MAX_PLUGINS;) {
		size_t len = strlen(e->d_name);
		if (len < 4 || strcmp(e->d_name + len - 3, ".so"))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", PLUGIN_DIR, e->d_name);
		void *dl = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
		const struct shmring_plugin *p = dl ? dlsym(dl, SHMRING_PLUGIN_SYMBOL) : NULL;
		if (!p) {
			fail(e->d_name, "not a plugin: %s%s", dl ? "no descriptor" : dlerror(), "");
			continue;
		}
		check_plugin(p);
		built[nbuilt++] = strdup(p->name);
		dlclose(dl);
	}
	closedir(d);
	if (nbuilt != PLUGINS_BUILT)
		fail(PLUGIN_DIR, "%s: not every plugin of plugins/ is built there%s",
		     "plugin count differs from the build's", "");

	/* The other way: every catalog entry names a built plugin. */
	char names[MAX_PLUGINS][512];
	int n =
	    lua_lines("for _, name in ipairs(P.names()) do print(name) end", names, MAX_PLUGINS);
	if (n < 0)
		fail("catalog", "cannot list the catalog%s%s", "", "");
	for (int i = 0; i < n; i++) {
		bool found = false;
		for (size_t k = 0; k < nbuilt; k++)
			found = found || !strcmp(built[k], names[i]);
		if (!found)
			fail(names[i], "in the catalog but no such plugin is built in %s%s",
			     PLUGIN_DIR, "");
	}
	printf("%zu plugins built, %d catalog entries\n", nbuilt, n);
	for (size_t k = 0; k < nbuilt; k++)
		free(built[k]);
	return failures ? 1 : 0;
}
