/* SPDX-License-Identifier: MIT */
/* What the auth plugins (key-auth, jwt) do alike around the credentials:
 * reading config.consumers, Kong's consumer headers, and swapping in a
 * changed credentials file. Apart from creds.c so that only plugins with an
 * auth step link the reply-side calls. */
#include "shmring_creds.h"
#include "shmring_pc.h"
#include "shmring_plugin.h"

#include <errno.h>
#include <stdio.h>

int shmring_creds_add_config(struct shmring_creds *c, const msgpack_object *cfg, const char *plugin,
                             char *err, size_t errlen)
{
	const msgpack_object *consumers = shmring_pc_field(cfg, "consumers");
	if (!consumers || (consumers->type == MSGPACK_OBJECT_MAP && consumers->via.map.size == 0))
		return 0;
	json_t *j = shmring_pc_to_json(consumers, plugin, "config.consumers", err, errlen);
	if (!j)
		return -EINVAL;
	char where[64];
	snprintf(where, sizeof(where), "%s: config", plugin);
	int rc = shmring_creds_add_json(c, j, where, err, errlen);
	json_decref(j);
	return rc;
}

static int set_or_clear(struct shmring_reply *rep, struct shmring_str name, struct shmring_str v)
{
	return v.len ? shmring_reply_set_req_header(rep, name, v)
	             : shmring_reply_clear_req_header(rep, name);
}

int shmring_creds_set_consumer_headers(struct shmring_reply *rep, struct shmring_str id,
                                       struct shmring_str custom_id, struct shmring_str username,
                                       struct shmring_str credential, bool anonymous)
{
	int rc = 0;
	rc |= set_or_clear(rep, SHMRING_LIT("X-Consumer-ID"), id);
	rc |= set_or_clear(rep, SHMRING_LIT("X-Consumer-Custom-ID"), custom_id);
	rc |= set_or_clear(rep, SHMRING_LIT("X-Consumer-Username"), username);
	rc |= set_or_clear(rep, SHMRING_LIT("X-Credential-Identifier"), credential);
	if (anonymous)
		rc |= shmring_reply_set_req_header(rep, SHMRING_LIT("X-Anonymous-Consumer"),
		                                   SHMRING_LIT("true"));
	else
		rc |= shmring_reply_clear_req_header(rep, SHMRING_LIT("X-Anonymous-Consumer"));
	return rc ? -EMSGSIZE : 0;
}

int shmring_creds_anonymous_missing(struct shmring_reply *rep, const char *name)
{
	char body[400];
	int n = snprintf(body, sizeof(body),
	                 "{\"message\":\"anonymous consumer %.200s is configured but doesn't "
	                 "exist\"}",
	                 name);
	struct shmring_header h = {SHMRING_LIT("Content-Type"),
	                           SHMRING_LIT("application/json; charset=utf-8")};
	return shmring_reply_exit(rep, 500, (struct shmring_str){body, (size_t)n}, &h, 1);
}

void shmring_creds_maybe_reload(struct shmring_file_watch *w, struct shmring_reply *rep,
                                int (*reload)(void *arg, char *err, size_t errlen), void *arg)
{
	if (!w->path || !shmring_file_watch_due(w, shmring_pc_now_ns()))
		return;
	char err[600];
	if (reload(arg, err, sizeof(err)) == 0)
		return;
	char msg[700];
	int n = snprintf(msg, sizeof(msg), "%s; keeping the previous credentials", err);
	shmring_reply_log(
	    rep, SHMRING_LOG_ERR,
	    (struct shmring_str){msg, n < (int)sizeof(msg) ? (size_t)n : sizeof(msg) - 1});
}
