/* SPDX-License-Identifier: MIT */
/* shmringd --check PLUGIN.so [CONFIG]: load one plugin file as a worker
 * would, without starting the daemon, and say what is wrong with it or with
 * a config for it: a file that does not load (an undefined symbol: a host
 * function this shmringd does not have, or a library missing), a descriptor
 * the daemon refuses (ABI version, size, name, phases), init or conf_new
 * refusing; else what it declares. Exit 0 when all is well, 2 otherwise. */
#include "daemon.h"
#include "shmring/plugin_test.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void print_list(const char *what, const char *const *names)
{
	printf("  %s:", what);
	if (!names || !names[0])
		printf(" none");
	else if (!strcmp(names[0], SHMRING_NEED_ALL))
		printf(" all");
	for (size_t i = 0; names && names[i] && strcmp(names[0], SHMRING_NEED_ALL); i++)
		printf(" %s", names[i]);
	putchar('\n');
}

static void print_desc(const struct shmring_plugin *d)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} phases[] = {{SHMRING_PHASE_ACCESS, "access"},
	              {SHMRING_PHASE_REWRITE, "rewrite"},
	              {SHMRING_PHASE_HEADER_FILTER, "header_filter"},
	              {SHMRING_PHASE_LOG, "log"}};
	printf("plugin %s %s (ABI %u)\n", d->name, d->version ? d->version : "", d->abi_version);
	printf("  phases:");
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (d->phases & phases[i].bit)
			printf(" %s", phases[i].name);
	putchar('\n');
	print_list("request headers", d->needs_headers);
	print_list("query args", d->needs_query);
	print_list("response headers", d->needs_resp_headers);
	const struct shmring_field *schema = shmringd__plugin_config_schema(d);
	printf("  config:%s", schema        ? ""
	                      : d->conf_new ? " checked by conf_new only (no schema)"
	                                    : " none (every config accepted)");
	for (; schema && schema->name; schema++)
		printf(" %s", schema->name);
	putchar('\n');
}

/* conf_new on config_json (JSON text); 0 or -1 after printing why. */
static int check_config(const struct shmring_plugin *d, void *wstate, const char *config_json)
{
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&u);
	char why[256];
	int bad = shmring_test_json_msgpack(config_json, &sb, &u, why, sizeof(why)) < 0;
	if (bad || u.data.type != MSGPACK_OBJECT_MAP) {
		fprintf(stderr, "shmringd: config %s: %s\n", config_json,
		        bad ? why : "not a JSON object");
		msgpack_unpacked_destroy(&u);
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	char err[512] = "";
	void *conf = NULL;
	int rc = shmringd__conf_new(d, wstate, &u.data, &conf, err, sizeof(err));
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	if (rc < 0) {
		fprintf(stderr, "shmringd: config refused: %s\n", err[0] ? err : "(no message)");
		return -1;
	}
	if (d->conf_free && d->conf_new)
		d->conf_free(conf);
	printf("config: ok\n");
	return 0;
}

int shmringd__check_plugin_file(const char *path, const char *config_json)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		/* An undefined symbol is named by dlerror(). */
		fprintf(stderr, "shmringd: cannot load plugin %s: %s\n", path, dlerror());
		return -1;
	}
	int rc = -1;
	const struct shmring_plugin *d = dlsym(dl, SHMRING_PLUGIN_SYMBOL);
	char why[512];
	const char *problem;
	if (!d) {
		fprintf(stderr,
		        "shmringd: plugin %s does not export the '" SHMRING_PLUGIN_SYMBOL
		        "' descriptor\n",
		        path);
	} else if ((problem = shmringd__plugin_problem(d, why, sizeof(why)))) {
		fprintf(stderr, "shmringd: refusing plugin %s: %s\n", path, problem);
	} else {
		print_desc(d);
		void *wstate = NULL;
		char err[512] = "";
		if (d->init && d->init(&wstate, err, sizeof(err)) < 0) {
			fprintf(stderr, "shmringd: plugin %s: init refused: %s\n", d->name, err);
		} else {
			rc = config_json ? check_config(d, wstate, config_json) : 0;
			if (d->fini)
				d->fini(wstate);
		}
	}
	dlclose(dl);
	return rc;
}
