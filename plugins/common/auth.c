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

/* ---- the credentials format, as a config schema ---- */

#define CREDS_STRING(field_name, field_flags)                                                      \
	{                                                                                          \
		.name = field_name, .type = SHMRING_FIELD_STRING, .flags = field_flags,            \
		.len_min = 1                                                                       \
	}
static const char *const jwt_algorithms[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                             "RS512", "ES256", "ES384", "ES512", "PS256",
                                             "PS384", "PS512", "EdDSA", NULL};
static const struct shmring_field keyauth_credential_fields[] = {
    CREDS_STRING("id", SHMRING_FIELD_REQUIRED),
    CREDS_STRING("key", SHMRING_FIELD_REQUIRED),
    {.name = NULL}};
static const struct shmring_field keyauth_credential = {.type = SHMRING_FIELD_RECORD,
                                                        .fields = keyauth_credential_fields};
/* A jwt secret's fields after its consumer's (jwt's own inline credential
 * puts a consumer record before them). */
#define JWT_SECRET_FIELDS                                                                          \
	CREDS_STRING("id", 0), CREDS_STRING("key", SHMRING_FIELD_REQUIRED),                        \
	    {.name = "algorithm",                                                                  \
	     .type = SHMRING_FIELD_STRING,                                                         \
	     .def = "\"HS256\"",                                                                   \
	     .one_of = jwt_algorithms},                                                            \
	    CREDS_STRING("secret", 0), CREDS_STRING("rsa_public_key", 0),                          \
	{                                                                                          \
		.name = NULL                                                                       \
	}
static const struct shmring_field jwt_secret_fields[] = {JWT_SECRET_FIELDS};
static const struct shmring_field jwt_secret = {.type = SHMRING_FIELD_RECORD,
                                                .fields = jwt_secret_fields};
static const struct shmring_field consumer_fields[] = {
    CREDS_STRING("id", SHMRING_FIELD_REQUIRED),
    CREDS_STRING("username", 0),
    CREDS_STRING("custom_id", 0),
    {.name = "keyauth_credentials", .type = SHMRING_FIELD_ARRAY, .elements = &keyauth_credential},
    {.name = "jwt_secrets", .type = SHMRING_FIELD_ARRAY, .elements = &jwt_secret},
    {.name = NULL}};
const struct shmring_field shmring_creds_consumer = {.type = SHMRING_FIELD_RECORD,
                                                     .fields = consumer_fields};
static const struct shmring_field credential_consumer_fields[] = {CREDS_STRING("id", 0),
                                                                  CREDS_STRING("username", 0),
                                                                  CREDS_STRING("custom_id", 0),
                                                                  {.name = NULL}};
static const struct shmring_field jwt_credential_fields[] = {{.name = "consumer",
                                                              .type = SHMRING_FIELD_RECORD,
                                                              .flags = SHMRING_FIELD_REQUIRED,
                                                              .fields = credential_consumer_fields},
                                                             JWT_SECRET_FIELDS};
const struct shmring_field shmring_creds_jwt_credential = {.type = SHMRING_FIELD_RECORD,
                                                           .fields = jwt_credential_fields};

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
