/* SPDX-License-Identifier: MIT */
/* hello: the smallest useful plugin and the daemon's test plugin. It adds
 * `X-Hello: World` to the upstream request (ACCESS) and to the response
 * (ACCESS asks the Lua side to set it; HEADER_FILTER sets it directly).
 *
 * Config (all optional): { "name": "X-Hello", "value": "World" }; the schema
 * below. */
#include "shmring_plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hello_conf {
	struct shmring_str name;  /* points into storage below */
	struct shmring_str value; /* idem */
	char storage[];
};

/* The config, declared once: shmringd checks it and fills in the defaults
 * before hello_conf_new, and the Kong schema is made from it
 * (`shmringctl schema hello --kong`). */
static const struct shmring_field hello_config[] = {
    {.name = "name",
     .type = SHMRING_FIELD_STRING,
     .def = "\"X-Hello\"",
     .len_min = 1,
     .len_max = 256,
     .doc = "the header to set"},
    {.name = "value",
     .type = SHMRING_FIELD_STRING,
     .def = "\"World\"",
     .len_min = 1,
     .len_max = 256,
     .doc = "its value"},
    SHMRING_GATEWAY_FIELDS("false"),
    {.name = NULL},
};

static int hello_conf_new(void *wstate, const msgpack_object *config, void **out, char *err,
                          size_t errlen)
{
	/* The schema guarantees both, as strings of 1..256 bytes. */
	struct shmring_str name, value;
	shmring_map_str(config, SHMRING_LIT("name"), &name);
	shmring_map_str(config, SHMRING_LIT("value"), &value);
	*out = NULL;
	/* The config views die with the record: keep our own copy. */
	struct hello_conf *c = malloc(sizeof(*c) + name.len + value.len);
	if (!c) {
		snprintf(err, errlen, "hello: out of memory");
		return -ENOMEM;
	}
	memcpy(c->storage, name.ptr, name.len);
	memcpy(c->storage + name.len, value.ptr, value.len);
	c->name = (struct shmring_str){c->storage, name.len};
	c->value = (struct shmring_str){c->storage + name.len, value.len};
	*out = c;
	return 0;
}

static void hello_conf_free(void *conf)
{
	free(conf);
}

static int hello_access(void *conf, const struct shmring_request *req, struct shmring_reply *rep)
{
	const struct hello_conf *c = conf;
	int rc = shmring_reply_set_req_header(rep, c->name, c->value);
	if (rc == 0)
		rc = shmring_reply_set_resp_header(rep, c->name, c->value);
	return rc;
}

static int hello_header_filter(void *conf, const struct shmring_request *req,
                               struct shmring_reply *rep)
{
	const struct hello_conf *c = conf;
	return shmring_reply_set_resp_header(rep, c->name, c->value);
}

SHMRING_PLUGIN_EXPORT const struct shmring_plugin shmring_plugin = {
    .abi_version = SHMRING_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(struct shmring_plugin),
    .name = "hello",
    .version = "1.0.0",
    .phases = SHMRING_PHASE_ACCESS | SHMRING_PHASE_REWRITE | SHMRING_PHASE_HEADER_FILTER,
    .conf_new = hello_conf_new,
    .conf_free = hello_conf_free,
    .access = hello_access,
    .rewrite = hello_access,
    .header_filter = hello_header_filter,
    .config = hello_config,
};
