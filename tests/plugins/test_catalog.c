/* SPDX-License-Identifier: MIT */
/* The gateway's catalog (lua/shmring/plugins.lua) must send what each C
 * plugin's descriptor declares: the same needs_headers / needs_query, and
 * only phases the plugin implements. A mismatch means snapshots without the
 * headers the plugin looks for (a silent 401) or records it cannot answer.
 * Reads the catalog with luajit; skipped (77) without it. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct plugin {
	const char *name;
	const char *so;
};

static const struct plugin plugins[] = {
    {"key-auth", KEY_AUTH_SO},
    {"request-transformer", REQUEST_TRANSFORMER_SO},
    {"correlation-id", CORRELATION_ID_SO},
};

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

int main(void)
{
	if (system("luajit -v >/dev/null 2>&1") != 0) {
		printf("SKIP: luajit not installed\n");
		return 77;
	}
	int failures = 0;
	for (size_t i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++) {
		struct harness h;
		harness_open(&h, plugins[i].so);
		char want_h[512], want_q[512];
		join_needs(h.p->needs_headers, want_h, sizeof(want_h));
		join_needs(h.p->needs_query, want_q, sizeof(want_q));
		char cmd[2048];
		snprintf(cmd, sizeof(cmd),
		         "luajit -e 'package.path = \"%s/lua/?.lua;\" .. package.path "
		         "local s = require(\"shmring.plugins\").get(\"%s\") "
		         "local function j(x) if x == \"*\" then return \"*\" end "
		         "local t = {} for _, v in ipairs(x) do t[#t + 1] = v end table.sort(t) "
		         "return table.concat(t, \",\") end "
		         "local ph = {} for k, v in pairs(s.phases) do if v then ph[#ph + 1] = k "
		         "end end "
		         "print(j(s.headers)) print(j(s.query)) print(table.concat(ph, \",\"))'",
		         SOURCE_DIR, plugins[i].name);
		FILE *f = popen(cmd, "r");
		char got_h[512] = "", got_q[512] = "", got_p[512] = "";
		if (!f || !fgets(got_h, sizeof(got_h), f) || !fgets(got_q, sizeof(got_q), f) ||
		    !fgets(got_p, sizeof(got_p), f)) {
			fprintf(stderr, "FAIL %s: cannot read the catalog\n", plugins[i].name);
			return 1;
		}
		pclose(f);
		got_h[strcspn(got_h, "\n")] = got_q[strcspn(got_q, "\n")] =
		    got_p[strcspn(got_p, "\n")] = '\0';
		if (strcmp(got_h, want_h)) {
			fprintf(stderr,
			        "FAIL %s: catalog headers '%s', descriptor needs_headers '%s'\n",
			        plugins[i].name, got_h, want_h);
			failures++;
		}
		if (strcmp(got_q, want_q)) {
			fprintf(stderr,
			        "FAIL %s: catalog query '%s', descriptor needs_query '%s'\n",
			        plugins[i].name, got_q, want_q);
			failures++;
		}
		static const struct {
			const char *name;
			uint32_t bit;
		} phases[] = {{"access", SHMRING_PHASE_ACCESS},
		              {"rewrite", SHMRING_PHASE_REWRITE},
		              {"header_filter", SHMRING_PHASE_HEADER_FILTER},
		              {"log", SHMRING_PHASE_LOG}};
		for (char *save = NULL, *p = strtok_r(got_p, ",", &save); p;
		     p = strtok_r(NULL, ",", &save)) {
			uint32_t bit = 0;
			for (size_t k = 0; k < 4; k++)
				if (!strcmp(p, phases[k].name))
					bit = phases[k].bit;
			if (!bit || !(h.p->phases & bit)) {
				fprintf(stderr,
				        "FAIL %s: catalog phase '%s' not in the descriptor\n",
				        plugins[i].name, p);
				failures++;
			}
		}
		printf("%s: headers '%s', query '%s': %s\n", plugins[i].name, want_h, want_q,
		       failures ? "MISMATCH" : "ok");
		harness_close(&h);
	}
	return failures ? 1 : 0;
}
