/* SPDX-License-Identifier: MIT */
/* Consumers and credentials: inline config or a JSON credentials file
 * (format in shmring_creds.h and docs/plugins.md, "Credentials"). */
#include "shmring_creds.h"
#include "shmring_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- parsing ------------------------------------------------------------- */

static void wipe_free(char *s, size_t n)
{
	if (s) {
		OPENSSL_cleanse(s, n);
		free(s);
	}
}

static void consumer_free(struct shmring_creds_consumer *k)
{
	free(k->id);
	free(k->username);
	free(k->custom_id);
	for (size_t i = 0; i < k->n_keyauth; i++) {
		free(k->keyauth[i].id);
		wipe_free(k->keyauth[i].key, k->keyauth[i].key_len);
	}
	free(k->keyauth);
	for (size_t i = 0; i < k->n_jwt; i++) {
		struct shmring_creds_jwt *j = &k->jwt[i];
		free(j->id);
		free(j->key);
		free(j->algorithm);
		wipe_free(j->secret, j->secret_len);
		free(j->rsa_public_key);
	}
	free(k->jwt);
	memset(k, 0, sizeof(*k));
}

/* Copy an optional string member: 0 (absent or null: *out NULL), 1 (set),
 * -EINVAL (wrong type, empty when nonempty, NUL byte, too long). */
static int member_str(const json_t *obj, const char *name, int nonempty, size_t max, char **out,
                      size_t *len)
{
	*out = NULL;
	if (len)
		*len = 0;
	const json_t *v = json_object_get(obj, name);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if ((nonempty && n == 0) || n > max || memchr(s, '\0', n))
		return -EINVAL;
	if (!(*out = malloc(n + 1)))
		return -ENOMEM;
	memcpy(*out, s, n);
	(*out)[n] = '\0';
	if (len)
		*len = n;
	return 1;
}

/* 0 if every member of obj is in known (NULL-terminated); else the first
 * unknown one in *bad. */
static int only_known(const json_t *obj, const char *const *known, const char **bad)
{
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)obj, k, v)
	{
		int ok = 0;
		for (const char *const *p = known; *p && !ok; p++)
			ok = !strcmp(*p, k);
		if (!ok) {
			*bad = k;
			return -EINVAL;
		}
	}
	return 0;
}

#define MAX_ID 1024
#define MAX_SECRET (64u << 10)

static const char *const consumer_fields[] = {
    "id", "username", "custom_id", "keyauth_credentials", "jwt_secrets", NULL};
static const char *const keyauth_fields[] = {"id", "key", NULL};
static const char *const jwt_fields[] = {"id", "key", "algorithm", "secret", "rsa_public_key",
                                         NULL};

/* A value for a message: " 'value'", or "" when it was read from a file.
 * A file's contents never go back in an error: the gateway only named the
 * file, and must not learn what is in it (or in another file it names). */
static const char *shown(const struct shmring_creds_consumer *k, const char *v, char *buf, size_t n)
{
	if (k->from_file)
		return "";
	snprintf(buf, n, " '%.128s'", v);
	return buf;
}

/* Report "<where>: consumers[i]<sub> must be ..." */
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(err, errlen, __VA_ARGS__);                                                \
		rc = -EINVAL;                                                                      \
		goto out;                                                                          \
	} while (0)

static int parse_keyauth(const json_t *arr, struct shmring_creds_consumer *k, const char *where,
                         size_t ci, char *err, size_t errlen)
{
	int rc = 0;
	char v[160];
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		FAIL("%s: consumers[%zu].keyauth_credentials must be an array", where, ci);
	size_t n = json_array_size(arr);
	if (n == 0)
		return 0;
	if (!(k->keyauth = calloc(n, sizeof(*k->keyauth))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(arr, i);
		const char *bad = NULL;
		struct shmring_creds_keyauth *ka = &k->keyauth[i];
		if (!json_is_object(o))
			FAIL("%s: consumers[%zu].keyauth_credentials[%zu] must be an object", where,
			     ci, i);
		k->n_keyauth = i + 1;
		if (only_known(o, keyauth_fields, &bad) < 0)
			FAIL("%s: consumers[%zu].keyauth_credentials[%zu] has an unknown field%s "
			     "(known: id, key)",
			     where, ci, i, shown(k, bad, v, sizeof(v)));
		int r = member_str(o, "id", 1, MAX_ID, &ka->id, NULL);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			FAIL("%s: consumers[%zu].keyauth_credentials[%zu].id must be a non-empty "
			     "string",
			     where, ci, i);
		r = member_str(o, "key", 1, MAX_SECRET, &ka->key, &ka->key_len);
		if (r == -ENOMEM)
			return r;
		if (r <= 0)
			FAIL("%s: consumers[%zu].keyauth_credentials[%zu].key must be a non-empty "
			     "string",
			     where, ci, i);
	}
out:
	return rc;
}

static int parse_jwt(const json_t *arr, struct shmring_creds_consumer *k, const char *where,
                     size_t ci, char *err, size_t errlen)
{
	int rc = 0;
	char v[160];
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		FAIL("%s: consumers[%zu].jwt_secrets must be an array", where, ci);
	size_t n = json_array_size(arr);
	if (n == 0)
		return 0;
	if (!(k->jwt = calloc(n, sizeof(*k->jwt))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(arr, i);
		const char *bad = NULL;
		struct shmring_creds_jwt *j = &k->jwt[i];
		if (!json_is_object(o))
			FAIL("%s: consumers[%zu].jwt_secrets[%zu] must be an object", where, ci, i);
		k->n_jwt = i + 1;
		if (only_known(o, jwt_fields, &bad) < 0)
			FAIL("%s: consumers[%zu].jwt_secrets[%zu] has an unknown field%s "
			     "(known: id, key, algorithm, secret, rsa_public_key)",
			     where, ci, i, shown(k, bad, v, sizeof(v)));
		struct {
			const char *name;
			int nonempty;
			size_t max;
			char **out;
			size_t *len;
			int required;
		} f[] = {
		    {"id", 1, MAX_ID, &j->id, NULL, 0},
		    {"key", 1, MAX_ID, &j->key, NULL, 1},
		    {"algorithm", 1, 32, &j->algorithm, NULL, 0},
		    {"secret", 0, MAX_SECRET, &j->secret, &j->secret_len, 0},
		    {"rsa_public_key", 1, MAX_SECRET, &j->rsa_public_key, NULL, 0},
		};
		for (size_t x = 0; x < sizeof(f) / sizeof(f[0]); x++) {
			int r =
			    member_str(o, f[x].name, f[x].nonempty, f[x].max, f[x].out, f[x].len);
			if (r == -ENOMEM)
				return r;
			if (r < 0 || (r == 0 && f[x].required))
				FAIL("%s: consumers[%zu].jwt_secrets[%zu].%s must be a %sstring",
				     where, ci, i, f[x].name, f[x].nonempty ? "non-empty " : "");
		}
		if (!j->algorithm && !(j->algorithm = strdup("HS256")))
			return -ENOMEM;
	}
out:
	return rc;
}

static int parse_consumer(const json_t *o, struct shmring_creds_consumer *k, const char *where,
                          size_t ci, char *err, size_t errlen)
{
	int rc = 0;
	char v[160];
	const char *bad = NULL;
	if (!json_is_object(o))
		FAIL("%s: consumers[%zu] must be an object", where, ci);
	if (only_known(o, consumer_fields, &bad) < 0)
		FAIL("%s: consumers[%zu] has an unknown field%s (known: id, username, "
		     "custom_id, keyauth_credentials, jwt_secrets)",
		     where, ci, shown(k, bad, v, sizeof(v)));
	int r = member_str(o, "id", 1, MAX_ID, &k->id, NULL);
	if (r == -ENOMEM)
		return r;
	if (r <= 0)
		FAIL("%s: consumers[%zu].id must be a non-empty string", where, ci);
	if ((r = member_str(o, "username", 1, MAX_ID, &k->username, NULL)) == -ENOMEM)
		return r;
	if (r < 0)
		FAIL("%s: consumers[%zu].username must be a non-empty string", where, ci);
	if ((r = member_str(o, "custom_id", 1, MAX_ID, &k->custom_id, NULL)) == -ENOMEM)
		return r;
	if (r < 0)
		FAIL("%s: consumers[%zu].custom_id must be a non-empty string", where, ci);
	if (!k->username && !k->custom_id)
		FAIL("%s: consumers[%zu] needs a username or a custom_id (like Kong)", where, ci);
	if ((rc = parse_keyauth(json_object_get(o, "keyauth_credentials"), k, where, ci, err,
	                        errlen)) < 0)
		return rc;
	rc = parse_jwt(json_object_get(o, "jwt_secrets"), k, where, ci, err, errlen);
out:
	return rc;
}

static int add_json(struct shmring_creds *c, const json_t *consumers, const char *where,
                    bool from_file, char *err, size_t errlen)
{
	int rc = 0;
	size_t first = c->n;
	if (!json_is_array(consumers))
		FAIL("%s: consumers must be an array", where);
	size_t n = json_array_size(consumers);
	if (c->n + n > c->cap) {
		size_t cap = c->cap ? c->cap : 8;
		while (cap < c->n + n)
			cap *= 2;
		struct shmring_creds_consumer *v = realloc(c->v, cap * sizeof(*v));
		if (!v) {
			rc = -ENOMEM;
			goto out;
		}
		c->v = v;
		c->cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		struct shmring_creds_consumer *k = &c->v[c->n++];
		memset(k, 0, sizeof(*k));
		k->from_file = from_file;
		if ((rc = parse_consumer(json_array_get(consumers, i), k, where, i, err, errlen)) <
		    0)
			goto out;
	}
out:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", where);
	if (rc < 0) {
		while (c->n > first)
			consumer_free(&c->v[--c->n]);
	}
	return rc;
}

int shmring_creds_add_json(struct shmring_creds *c, const json_t *consumers, const char *where,
                           char *err, size_t errlen)
{
	return add_json(c, consumers, where, false, err, errlen);
}

static void stamp_of(const struct stat *st, struct shmring_file_stamp *s)
{
	s->exists = 1;
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mtime = st->st_mtim;
	s->ctime = st->st_ctim;
}

int shmring_creds_parse(struct shmring_creds *c, const char *buf, size_t len, const char *path,
                        char *err, size_t errlen)
{
	int rc = 0;
	json_error_t je;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		/* jansson's text quotes the file ("... near 'xyz'"): keep
		 * only the part before the quote. */
		char *near = strstr(je.text, " near ");
		if (near)
			*near = '\0';
		snprintf(err, errlen, "credentials file %s: line %d column %d: %s", path, je.line,
		         je.column, je.text);
		return -EINVAL;
	}
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "consumers")) {
			snprintf(err, errlen,
			         "credentials file %s: an unknown top-level field (expected "
			         "{\"consumers\": [...]})",
			         path);
			rc = -EINVAL;
			break;
		}
	}
	if (rc == 0 && !json_is_object(root)) {
		snprintf(err, errlen, "credentials file %s: expected {\"consumers\": [...]}", path);
		rc = -EINVAL;
	}
	if (rc == 0) {
		json_t *arr = json_object_get(root, "consumers");
		if (!arr) {
			snprintf(err, errlen, "credentials file %s: no \"consumers\" array", path);
			rc = -EINVAL;
		} else {
			rc = add_json(c, arr, path, true, err, errlen);
		}
	}
	json_decref(root);
	return rc;
}

int shmring_creds_load_file(struct shmring_creds *c, const char *path,
                            struct shmring_file_stamp *stamp, char *err, size_t errlen)
{
	memset(stamp, 0, sizeof(*stamp));
	char why[400];
	int fd = shmring_file_open(path, O_RDONLY, 0, why, sizeof(why));
	if (fd < 0) {
		snprintf(err, errlen, "credentials file: %s", why);
		return fd;
	}
	struct stat st;
	char *buf = NULL;
	int rc = 0;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot stat credentials file %s: %s", path, strerror(-rc));
		goto done;
	}
	stamp_of(&st, stamp);
	if (st.st_size > (off_t)SHMRING_CREDS_MAX_FILE) {
		snprintf(err, errlen, "credentials file %s must be at most %u MiB", path,
		         SHMRING_CREDS_MAX_FILE >> 20);
		rc = -EINVAL;
		goto done;
	}
	size_t size = (size_t)st.st_size, got = 0;
	if (!(buf = malloc(size + 1))) {
		rc = -ENOMEM;
		snprintf(err, errlen, "credentials file %s: out of memory", path);
		goto done;
	}
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot read credentials file %s: %s", path,
			         strerror(-rc));
			goto done;
		}
		if (r == 0)
			break; /* truncated meanwhile: parse what is there */
		got += (size_t)r;
	}
	rc = shmring_creds_parse(c, buf, got, path, err, errlen);
done:
	if (buf) {
		OPENSSL_cleanse(buf, (size_t)st.st_size);
		free(buf);
	}
	close(fd);
	return rc;
}

/* ---- uniqueness -------------------------------------------------------------- */

/* A throwaway open-addressing set of strings, to find duplicates in
 * O(n) instead of comparing every pair. */
struct strset {
	uint64_t *hash;
	const char **s;
	size_t *len;
	size_t mask;
};

static int strset_init(struct strset *set, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	set->hash = calloc(cap, sizeof(uint64_t));
	set->s = calloc(cap, sizeof(char *));
	set->len = calloc(cap, sizeof(size_t));
	set->mask = cap - 1;
	return set->hash && set->s && set->len ? 0 : -ENOMEM;
}

static void strset_free(struct strset *set)
{
	free(set->hash);
	free(set->s);
	free(set->len);
}

/* 1 if s was already in the set, else 0 (and it is added). */
static int strset_add(struct strset *set, const char *s, size_t len)
{
	uint64_t h = XXH3_64bits(s, len);
	for (size_t i = h & set->mask;; i = (i + 1) & set->mask) {
		if (!set->s[i]) {
			set->s[i] = s;
			set->len[i] = len;
			set->hash[i] = h;
			return 0;
		}
		if (set->hash[i] == h && set->len[i] == len && !memcmp(set->s[i], s, len))
			return 1;
	}
}

int shmring_creds_check_unique(const struct shmring_creds *c, char *err, size_t errlen)
{
	size_t nka = 0, njwt = 0;
	for (size_t i = 0; i < c->n; i++) {
		nka += c->v[i].n_keyauth;
		njwt += c->v[i].n_jwt;
	}
	/* One set per namespace: consumer ids, usernames, custom ids, key-auth
	 * keys, jwt keys. */
	struct strset sets[5];
	size_t sizes[5] = {c->n, c->n, c->n, nka, njwt};
	int rc = 0;
	memset(sets, 0, sizeof(sets));
	for (int s = 0; s < 5; s++)
		if (strset_init(&sets[s], sizes[s]) < 0) {
			snprintf(err, errlen, "credentials: out of memory");
			rc = -ENOMEM;
			goto out;
		}
	for (size_t i = 0; i < c->n && rc == 0; i++) {
		const struct shmring_creds_consumer *k = &c->v[i];
		char v[160], v2[160];
		if (strset_add(&sets[0], k->id, strlen(k->id))) {
			snprintf(err, errlen,
			         "credentials: duplicate consumer id%s (consumers[%zu])",
			         shown(k, k->id, v, sizeof(v)), i);
			rc = -EINVAL;
		} else if (k->username && strset_add(&sets[1], k->username, strlen(k->username))) {
			snprintf(err, errlen,
			         "credentials: duplicate consumer username%s (consumers[%zu])",
			         shown(k, k->username, v, sizeof(v)), i);
			rc = -EINVAL;
		} else if (k->custom_id &&
		           strset_add(&sets[2], k->custom_id, strlen(k->custom_id))) {
			snprintf(err, errlen,
			         "credentials: duplicate consumer custom_id%s (consumers[%zu])",
			         shown(k, k->custom_id, v, sizeof(v)), i);
			rc = -EINVAL;
		}
		for (size_t j = 0; j < k->n_keyauth && rc == 0; j++)
			if (strset_add(&sets[3], k->keyauth[j].key, k->keyauth[j].key_len)) {
				/* Never print the key itself. */
				snprintf(err, errlen,
				         "credentials: duplicate key-auth key (consumer%s, "
				         "keyauth_credentials[%zu]): every key must be unique",
				         shown(k, k->id, v, sizeof(v)), j);
				rc = -EINVAL;
			}
		for (size_t j = 0; j < k->n_jwt && rc == 0; j++)
			if (strset_add(&sets[4], k->jwt[j].key, strlen(k->jwt[j].key))) {
				snprintf(err, errlen,
				         "credentials: duplicate jwt key%s (consumer%s, "
				         "jwt_secrets[%zu])",
				         shown(k, k->jwt[j].key, v, sizeof(v)),
				         shown(k, k->id, v2, sizeof(v2)), j);
				rc = -EINVAL;
			}
	}
out:
	for (int s = 0; s < 5; s++)
		strset_free(&sets[s]);
	return rc;
}

int shmring_creds_join(const struct shmring_creds *a, const struct shmring_creds *b,
                       struct shmring_creds *view)
{
	size_t n = a->n + b->n;
	memset(view, 0, sizeof(*view));
	if (n == 0)
		return 0;
	if (!(view->v = malloc(n * sizeof(*view->v))))
		return -ENOMEM;
	if (a->n)
		memcpy(view->v, a->v, a->n * sizeof(*view->v));
	if (b->n)
		memcpy(view->v + a->n, b->v, b->n * sizeof(*view->v));
	view->n = view->cap = n;
	return 0;
}

const struct shmring_creds_consumer *shmring_creds_find(const struct shmring_creds *c,
                                                        const char *s)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].id, s))
			return &c->v[i];
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].username && !strcmp(c->v[i].username, s))
			return &c->v[i];
	return NULL;
}

void shmring_creds_free(struct shmring_creds *c)
{
	for (size_t i = 0; i < c->n; i++)
		consumer_free(&c->v[i]);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* ---- file watching ------------------------------------------------------------ */

uint64_t shmring_pc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int stamp_eq(const struct shmring_file_stamp *a, const struct shmring_file_stamp *b)
{
	if (a->exists != b->exists)
		return 0;
	if (!a->exists)
		return 1;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

int shmring_file_watch_due(struct shmring_file_watch *w, uint64_t now_ns)
{
	if (!w->path || now_ns < w->next_check_ns)
		return 0;
	w->next_check_ns = now_ns + w->interval_ns;
	struct stat st;
	struct shmring_file_stamp now = {0};
	if (stat(w->path, &st) == 0)
		stamp_of(&st, &now);
	return !stamp_eq(&now, &w->stamp);
}
