/* SPDX-License-Identifier: MIT */
/*
 * shmring_creds.h: consumers and their credentials, for the auth plugins
 * (key-auth, jwt). shmring has no access to Kong's database: consumers come
 * inline in the plugin config (`consumers`, the same shape as below) and/or
 * from a JSON credentials file named by `credentials_file`. The format is
 * documented in docs/plugins.md, section "Credentials":
 *
 *   {"consumers": [
 *      {"id": "...", "username": "...", "custom_id": "...",
 *       "keyauth_credentials": [{"id": "...", "key": "..."}],
 *       "jwt_secrets": [{"id": "...", "key": "iss value", "algorithm": "HS256",
 *                        "secret": "...", "rsa_public_key": "PEM"}]}]}
 *
 * Parsing checks types and shapes, rejects unknown fields (typos) and
 * duplicate JSON keys; shmring_creds_check_unique() rejects duplicate
 * consumer ids/usernames/custom_ids, key-auth keys and jwt keys across
 * everything added. Plugin-specific checks (a jwt algorithm, a PEM key)
 * belong to the plugin. Error messages name the source and the JSON path
 * (e.g. "creds.json: consumers[3].keyauth_credentials[0].key must be a
 * non-empty string") and never include a key or a secret.
 *
 * Memory: a shmring_creds owns every string it holds; secrets and keys are
 * wiped (OPENSSL_cleanse) when it is freed.
 */
#ifndef SHMRING_CREDS_H
#define SHMRING_CREDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Largest credentials file accepted. */
#define SHMRING_CREDS_MAX_FILE (64u << 20)

struct shmring_creds_keyauth {
	char *id;  /* credential id (X-Credential-Identifier); NULL if not given */
	char *key; /* the API key, non-empty, no NUL byte */
	size_t key_len;
};

struct shmring_creds_jwt {
	char *id;             /* credential id; NULL if not given */
	char *key;            /* the key claim value (e.g. iss), non-empty */
	char *algorithm;      /* as written; "HS256" if not given */
	char *secret;         /* HMAC secret; NULL if not given */
	size_t secret_len;    /* bytes of secret */
	char *rsa_public_key; /* PEM text; NULL if not given */
};

struct shmring_creds_consumer {
	char *id;        /* non-empty */
	char *username;  /* NULL if not given */
	char *custom_id; /* NULL if not given; at least one of username/custom_id */
	struct shmring_creds_keyauth *keyauth;
	size_t n_keyauth;
	struct shmring_creds_jwt *jwt;
	size_t n_jwt;
	bool from_file; /* read from a credentials file: messages never quote its values */
};

struct shmring_creds {
	struct shmring_creds_consumer *v;
	size_t n, cap;
};

/* Append the consumers of a JSON array (`where` names the source in
 * messages, e.g. "key-auth: config.consumers"). On failure nothing of this
 * array is kept and err says why. 0, -EINVAL or -ENOMEM. */
int shmring_creds_add_json(struct shmring_creds *c, const json_t *consumers, const char *where,
                           char *err, size_t errlen);

/* Identity of a file version (stat fields that change when it is
 * replaced or rewritten). exists = 0 for a missing file. */
struct shmring_file_stamp {
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

/* Read a credentials file ({"consumers": [...]}) and append its consumers.
 * The file is opened with shmring_file_open() (below the daemon's
 * plugin_file_dirs, no symbolic link, a regular file); messages name
 * positions in it (line, consumers[i].field), never its contents.
 * *stamp gets the identity of the version read (from the open descriptor,
 * so a concurrent replace cannot pair old content with a new stamp), also
 * when parsing fails. 0, -errno (cannot read) or -EINVAL (bad content). */
int shmring_creds_load_file(struct shmring_creds *c, const char *path,
                            struct shmring_file_stamp *stamp, char *err, size_t errlen);

/* The text of a credentials file (len bytes of buf, named path in
 * messages), as shmring_creds_load_file() parses it after reading. 0 or
 * -EINVAL; messages never quote buf. */
int shmring_creds_parse(struct shmring_creds *c, const char *buf, size_t len, const char *path,
                        char *err, size_t errlen);

/* Reject duplicates across everything added: consumer id, username and
 * custom_id; key-auth keys; jwt keys. 0 or -EINVAL. */
int shmring_creds_check_unique(const struct shmring_creds *c, char *err, size_t errlen);

/* A view of a's consumers followed by b's (for checks across both): view->v
 * is a new array of shallow copies that the caller frees with free(), never
 * with shmring_creds_free (a and b own the strings). 0 or -ENOMEM; an empty
 * view (v NULL) when both are empty. */
int shmring_creds_join(const struct shmring_creds *a, const struct shmring_creds *b,
                       struct shmring_creds *view);

/* The consumer whose id, or else whose username, equals s; NULL if none
 * (Kong's `anonymous` accepts either). */
const struct shmring_creds_consumer *shmring_creds_find(const struct shmring_creds *c,
                                                        const char *s);

/* Free every consumer (wiping keys and secrets); c is empty afterwards. */
void shmring_creds_free(struct shmring_creds *c);

/* ---- file watching --------------------------------------------------------- */

/* Checks a file for a new version at most once per interval, from a hook:
 * one clock read per call (CLOCK_MONOTONIC_COARSE, vDSO) and one stat()
 * per interval. */
struct shmring_file_watch {
	char *path;                      /* owned */
	struct shmring_file_stamp stamp; /* the version last loaded (or tried) */
	uint64_t next_check_ns;
	uint64_t interval_ns;
};

/* Monotonic time in ns, coarse (a few ms resolution) and cheap. */
uint64_t shmring_pc_now_ns(void);

/* 1 if the interval has passed and the file's stamp differs from
 * w->stamp (the caller then reloads and stores the new stamp), else 0. */
int shmring_file_watch_due(struct shmring_file_watch *w, uint64_t now_ns);

/* ---- what the auth plugins share (auth.c) ------------------------------------ */

struct msgpack_object;
struct shmring_reply;

/* The credentials format as config schema elements (auth.c): a consumer
 * of `consumers` (docs/plugins.md, "Credentials"), jwt's own inline
 * credential (a secret with its consumer). */
struct shmring_field;
extern const struct shmring_field shmring_creds_consumer;
extern const struct shmring_field shmring_creds_jwt_credential;
/* The config fields of a credentials file (in a schema: shmring_plugin.h
 * before this header): its path and how often it is looked at. */
#define SHMRING_CREDS_FILE_FIELDS                                                                  \
	{.name = "credentials_file", .type = SHMRING_FIELD_STRING, .len_min = 1},                  \
	{                                                                                          \
		.name = "reload_interval_ms", .type = SHMRING_FIELD_INTEGER,                       \
		.flags = SHMRING_FIELD_BETWEEN, .def = "1000", .min = 0, .max = 3600000,           \
		.doc = "ms between two looks at credentials_file"                                  \
	}

/* Append the consumers of config field `consumers` (absent, nil or an empty
 * Lua table: none), checked as shmring_creds_add_json with messages naming
 * "<plugin>: config". 0, -EINVAL or -ENOMEM, with err set on failure. */
int shmring_creds_add_config(struct shmring_creds *c, const struct msgpack_object *cfg,
                             const char *plugin, char *err, size_t errlen);

/* If w's file has a new version (shmring_file_watch_due), call
 * reload(arg, err, errlen), which swaps in the new credentials and returns
 * 0, or keeps the previous ones and returns < 0 with err set; then
 * "<err>; keeping the previous credentials" goes to the gateway's error log
 * through rep. Once per file version: the watch keeps the stamp of the
 * version tried. Nothing without a file (w->path NULL). */
void shmring_creds_maybe_reload(struct shmring_file_watch *w, struct shmring_reply *rep,
                                int (*reload)(void *arg, char *err, size_t errlen), void *arg);

/* The upstream headers of Kong's set_consumer(), in its order:
 * X-Consumer-ID, X-Consumer-Custom-ID, X-Consumer-Username and
 * X-Credential-Identifier set to the value or cleared when it is empty (so
 * a client cannot forge them), then X-Anonymous-Consumer "true" or cleared.
 * 0, or -EMSGSIZE if the reply could not take them. */
struct shmring_str;
/* Kong's answer when `anonymous` names a consumer the gateway does not
 * have: 500 {"message":"anonymous consumer <name> is configured but doesn't
 * exist"}. 0 or -EMSGSIZE. */
int shmring_creds_anonymous_missing(struct shmring_reply *rep, const char *name);
int shmring_creds_set_consumer_headers(struct shmring_reply *rep, struct shmring_str id,
                                       struct shmring_str custom_id, struct shmring_str username,
                                       struct shmring_str credential, bool anonymous);

#endif
