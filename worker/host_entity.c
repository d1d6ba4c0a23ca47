/* SPDX-License-Identifier: MIT */
/*
 * The plugin host: entities the gateway holds (shmring_entity_get of
 * shmring_plugin.h). One cache per channel, so per nginx worker like Kong's
 * own L1 cache, and in record order with that worker's FORGET records: a
 * FORGET sent before a request is applied before it.
 *
 * A look-up during a hook: the record's own "entities" answers first (the
 * gateway resent the record with them), then the channel's cache; a miss is
 * remembered, and when the hook returns the worker answers NEED_ENTITIES
 * with every miss instead of the hook's reply (docs/protocol.md). The cache
 * holds answers as msgpack bytes, negative answers (nil) too, at most
 * `max` entries per channel, least recently used evicted first; keys and
 * values are wiped when dropped (a key-auth key is a secret). An answer
 * with a positive "ttl" (seconds: a Kong credential created with a ttl)
 * expires then, as it does in Kong's cache.
 */
#include "daemon.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHMRING_ASAN 1
#endif
#elif defined(__SANITIZE_ADDRESS__)
#define SHMRING_ASAN 1
#endif
#if SHMRING_ASAN
#include <sanitizer/allocator_interface.h>
#endif

#define MAX_KEY 4096
#define MAX_LOOKUPS 8                   /* misses per hook */
#define TTL_MAX_S (100.0 * 365 * 86400) /* longer kept answers expire at 100 years */

struct ent {
	uint64_t hash; /* XXH3 of kind and key, with the cache's seed */
	uint32_t kind;
	uint32_t key_len;
	uint32_t val_len;
	char *key;                 /* owned */
	uint8_t *val;              /* owned msgpack of the answer; NULL: known absent */
	struct shmring_mpr view;   /* val parsed once (a hit costs no parse); zone unused if NULL */
	char *consumer_id;         /* owned: the answer's consumer.id (or id for a consumer) */
	uint64_t expires_ns;       /* CLOCK_MONOTONIC; 0: kept until forgotten or evicted */
	size_t bytes;              /* heap the entry took, all of it */
	struct ent *chain;         /* next in the bucket */
	struct ent *newer, *older; /* LRU list: head is the newest */
};

struct shmringd_entity_cache {
	struct ent **buckets; /* mask + 1 chains */
	uint32_t mask;
	uint32_t n;         /* entries, <= max */
	uint32_t max;       /* bound on n */
	uint64_t bytes;     /* heap the entries took */
	uint64_t max_bytes; /* bound on bytes: shmringd__entity_cache_bytes(max) */
	uint64_t seed;
	uint64_t generation; /* FORGETs applied: shmring_entity_generation() */
	struct ent *newest, *oldest;
};

/* The hook running now (the worker is single-threaded). */
static struct {
	bool in_hook;
	struct shmringd_entity_cache *cache; /* NULL: answers of the record only */
	const msgpack_object *answers;       /* the record's "entities" array, or NULL */
	struct shmringd_worker_stats *st;
	uint32_t nmiss;
	uint32_t miss_kind[MAX_LOOKUPS];
	struct shmring_str miss_key[MAX_LOOKUPS]; /* into miss_buf */
	char miss_buf[MAX_LOOKUPS * (MAX_KEY + 1)];
	size_t miss_used;
} E;

static uint64_t dummy_stat;
#define STAT(f) (*(E.st ? &E.st->f : &dummy_stat))

/* ---- the cache ------------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t shmringd__heap_in_use(void)
{
#if SHMRING_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#endif
}

struct shmringd_entity_cache *shmringd__entity_cache_new(uint32_t max)
{
	struct shmringd_entity_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	uint32_t nb = 16;
	while (nb < max && nb < (1u << 24))
		nb <<= 1;
	if (!(c->buckets = calloc(nb, sizeof(*c->buckets)))) {
		free(c);
		return NULL;
	}
	c->mask = nb - 1;
	c->max = max ? max : 1;
	c->max_bytes = shmringd__entity_cache_bytes(c->max);
	if (getrandom(&c->seed, sizeof(c->seed), 0) != sizeof(c->seed))
		c->seed = (uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15ull; /* defensive */
	return c;
}

static uint64_t ent_hash(const struct shmringd_entity_cache *c, uint32_t kind, const char *key,
                         size_t len)
{
	return XXH3_64bits_withSeed(key, len, c->seed ^ kind);
}

static void lru_unlink(struct shmringd_entity_cache *c, struct ent *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push(struct shmringd_entity_cache *c, struct ent *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	c->newest = e;
	if (!c->oldest)
		c->oldest = e;
}

/* 1 if a and b (n bytes) are equal, in a time that depends on n only: the
 * key of a key-auth credential is a secret. */
static int ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

static void ent_free(struct ent *e)
{
	explicit_bzero(e->key, e->key_len);
	free(e->key);
	if (e->val) {
		explicit_bzero(e->val, e->val_len);
		msgpack_zone_destroy(&e->view.zone);
	}
	free(e->val);
	free(e->consumer_id);
	free(e);
}

/* Unlink e from its bucket and the LRU list, and free it. */
static void ent_drop(struct shmringd_entity_cache *c, struct ent *e)
{
	struct ent **p = &c->buckets[e->hash & c->mask];
	while (*p != e)
		p = &(*p)->chain;
	*p = e->chain;
	lru_unlink(c, e);
	c->bytes -= e->bytes;
	ent_free(e);
	c->n--;
	STAT(entity_entries)--;
}

static struct ent *ent_find(struct shmringd_entity_cache *c, uint32_t kind, const char *key,
                            size_t len)
{
	uint64_t h = ent_hash(c, kind, key, len);
	for (struct ent *e = c->buckets[h & c->mask]; e; e = e->chain)
		if (e->hash == h && e->kind == kind && e->key_len == len &&
		    ct_equal(e->key, key, len))
			return e;
	return NULL;
}

void shmringd__entity_cache_clear(struct shmringd_entity_cache *c)
{
	if (!c)
		return;
	while (c->newest)
		ent_drop(c, c->newest);
}

void shmringd__entity_cache_free(struct shmringd_entity_cache *c)
{
	if (!c)
		return;
	shmringd__entity_cache_clear(c);
	free(c->buckets);
	free(c);
}

uint32_t shmringd__entity_cache_count(const struct shmringd_entity_cache *c)
{
	return c ? c->n : 0;
}

/* The consumer an answer belongs to: consumer.id of a credential, id of a
 * consumer; NULL if none. */
static const msgpack_object *answer_consumer_id(uint32_t kind, const msgpack_object *val)
{
	if (val->type != MSGPACK_OBJECT_MAP)
		return NULL;
	const msgpack_object *id = NULL;
	if (kind == SHMRING_ENTITY_CONSUMER) {
		id = shmring_map_get(val, SHMRING_LIT("id"));
	} else {
		const msgpack_object *k = shmring_map_get(val, SHMRING_LIT("consumer"));
		if (k && k->type == MSGPACK_OBJECT_MAP)
			id = shmring_map_get(k, SHMRING_LIT("id"));
	}
	return id && id->type == MSGPACK_OBJECT_STR ? id : NULL;
}

/* Store an answer (val nil: known absent), replacing an older one for the
 * same key and evicting the least recently used entry when full. 0 or
 * -ENOMEM. */
static int cache_put(struct shmringd_entity_cache *c, uint32_t kind, struct shmring_str key,
                     const msgpack_object *val)
{
	struct ent *old = ent_find(c, kind, key.ptr, key.len);
	if (old)
		ent_drop(c, old);
	size_t heap_before = shmringd__heap_in_use();
	struct ent *e = calloc(1, sizeof(*e));
	if (!e || !(e->key = malloc(key.len ? key.len : 1)))
		goto nomem;
	memcpy(e->key, key.ptr, key.len);
	e->key_len = (uint32_t)key.len;
	e->kind = kind;
	e->hash = ent_hash(c, kind, key.ptr, key.len);
	if (val->type != MSGPACK_OBJECT_NIL) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		if (msgpack_pack_object(&pk, *val) != 0 || sb.size > UINT32_MAX) {
			msgpack_sbuffer_destroy(&sb);
			goto nomem;
		}
		e->val = (uint8_t *)sb.data; /* taken over from the sbuffer */
		e->val_len = (uint32_t)sb.size;
		/* A small zone: an answer is a map of a few strings. */
		if (!msgpack_zone_init(&e->view.zone, 256)) {
			free(e->val);
			e->val = NULL;
			goto nomem;
		}
		if (shmring_mpr_parse(&e->view, e->val, e->val_len) < 0) {
			msgpack_zone_destroy(&e->view.zone);
			goto nomem; /* defensive: it was packed from a parsed object */
		}
		const msgpack_object *ttl = shmring_map_get(val, SHMRING_LIT("ttl"));
		double secs = !ttl                                           ? 0
		              : ttl->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double)ttl->via.u64
		              : ttl->type == MSGPACK_OBJECT_FLOAT64          ? ttl->via.f64
		                                                             : 0;
		/* Kong's ttl is whole seconds; a hostile or absurd one (past
		 * TTL_MAX_S, or infinite) is capped, never converted out of range. */
		if (secs > TTL_MAX_S)
			secs = TTL_MAX_S;
		if (secs > 0)
			e->expires_ns = now_ns() + (uint64_t)(secs * 1e9);
		const msgpack_object *id = answer_consumer_id(kind, val);
		if (id && !(e->consumer_id = strndup(id->via.str.ptr, id->via.str.size)))
			goto nomem;
	}
	size_t heap_after = shmringd__heap_in_use();
	e->bytes = heap_after > heap_before ? heap_after - heap_before : 0;
	if (e->bytes > c->max_bytes) {
		ent_free(e); /* larger than the whole cache may be: asked for again */
		return 0;
	}
	/* Within both bounds, the newcomer included: what the memory budget
	 * charged for this cache is all it may ever take. */
	while ((c->n >= c->max || c->bytes + e->bytes > c->max_bytes) && c->oldest) {
		ent_drop(c, c->oldest);
		STAT(entity_evictions)++;
	}
	c->bytes += e->bytes;
	struct ent **b = &c->buckets[e->hash & c->mask];
	e->chain = *b;
	*b = e;
	lru_push(c, e);
	c->n++;
	STAT(entity_entries)++;
	return 0;
nomem:
	if (e) {
		free(e->key);
		free(e->val);
		free(e->consumer_id);
		free(e);
	}
	return -ENOMEM;
}

/* ---- records -------------------------------------------------------------- */

/* One [kind, key, ...] entry of "entities" or "forget"; false if malformed. */
static bool entry_of(const msgpack_object *o, uint32_t *kind, struct shmring_str *key)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2)
		return false;
	const msgpack_object *k = &o->via.array.ptr[0], *s = &o->via.array.ptr[1];
	if (k->type != MSGPACK_OBJECT_POSITIVE_INTEGER || k->via.u64 < SHMRING_ENTITY_CONSUMER ||
	    k->via.u64 > SHMRING_ENTITY_JWT_SECRET || s->type != MSGPACK_OBJECT_STR ||
	    s->via.str.size == 0 || s->via.str.size > MAX_KEY)
		return false;
	*kind = (uint32_t)k->via.u64;
	*key = (struct shmring_str){s->via.str.ptr, s->via.str.size};
	return true;
}

void shmringd__entity_setup(struct shmringd_worker_stats *st)
{
	E.st = st;
	if (st)
		st->entity_entries = 0; /* a gauge: a new worker starts empty */
}

int shmringd__entity_begin(struct shmringd_entity_cache *c, const msgpack_object *root)
{
	E.in_hook = true;
	E.cache = c;
	E.answers = NULL;
	E.nmiss = 0;
	E.miss_used = 0;
	const msgpack_object *a = shmring_mp_get(root, "entities");
	if (!a || a->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (a->type != MSGPACK_OBJECT_ARRAY)
		return -EBADMSG;
	for (uint32_t i = 0; i < a->via.array.size; i++) {
		const msgpack_object *o = &a->via.array.ptr[i];
		uint32_t kind;
		struct shmring_str key;
		if (!entry_of(o, &kind, &key) || o->via.array.size < 3)
			return -EBADMSG;
		/* A 4th element false: resolved while a FORGET was under way, so
		 * good for this request only. */
		bool keep =
		    !(o->via.array.size > 3 && o->via.array.ptr[3].type == MSGPACK_OBJECT_BOOLEAN &&
		      !o->via.array.ptr[3].via.boolean);
		if (keep && c)
			cache_put(c, kind, key,
			          &o->via.array.ptr[2]); /* -ENOMEM: still answered below */
	}
	E.answers = a;
	return 0;
}

uint32_t shmringd__entity_end(struct shmring_reply *rep)
{
	uint32_t n = E.nmiss;
	E.in_hook = false;
	E.cache = NULL;
	E.answers = NULL;
	if (n && rep) {
		STAT(entity_lookups)++;
		shmringd__reply_need_entities(rep, E.miss_kind, E.miss_key, n);
	}
	return n;
}

int shmringd__entity_forget(struct shmringd_entity_cache *c, const msgpack_object *root)
{
	if (root->type != MSGPACK_OBJECT_MAP)
		return -EBADMSG;
	c->generation++;
	const msgpack_object *all = shmring_mp_get(root, "all");
	if (all && all->type == MSGPACK_OBJECT_BOOLEAN && all->via.boolean) {
		STAT(entity_forgets) += c->n;
		shmringd__entity_cache_clear(c);
		return 0;
	}
	const msgpack_object *list = shmring_mp_get(root, "entities");
	if (!list || list->type != MSGPACK_OBJECT_ARRAY)
		return -EBADMSG;
	for (uint32_t i = 0; i < list->via.array.size; i++) {
		uint32_t kind;
		struct shmring_str key;
		if (!entry_of(&list->via.array.ptr[i], &kind, &key))
			return -EBADMSG;
		struct ent *e = ent_find(c, kind, key.ptr, key.len);
		if (e) {
			ent_drop(c, e);
			STAT(entity_forgets)++;
		}
		if (kind != SHMRING_ENTITY_CONSUMER)
			continue;
		/* A consumer changed: the credentials answered with it embed
		 * its old fields. Rare (an Admin API write): a scan is fine. */
		for (struct ent *x = c->newest, *next; x; x = next) {
			next = x->older;
			if (x->consumer_id && strlen(x->consumer_id) == key.len &&
			    memcmp(x->consumer_id, key.ptr, key.len) == 0) {
				ent_drop(c, x);
				STAT(entity_forgets)++;
			}
		}
	}
	return 0;
}

/* ---- the host API ------------------------------------------------------- */

uint64_t shmring_entity_generation(const struct shmring_request *req)
{
	(void)req;
	return E.cache ? E.cache->generation : 0;
}

int shmring_entity_get(const struct shmring_request *req, enum shmring_entity_kind kind,
                       struct shmring_str key, const msgpack_object **val)
{
	static const msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
	*val = &nil;
	(void)req; /* the hook's own request: the channel is the running hook's */
	if (!E.in_hook)
		return -ENOTSUP;
	if (kind < SHMRING_ENTITY_CONSUMER || kind > SHMRING_ENTITY_JWT_SECRET || key.len == 0 ||
	    key.len > MAX_KEY)
		return -EINVAL;
	/* The answers this record carries (also those not cached). */
	for (uint32_t i = 0; E.answers && i < E.answers->via.array.size; i++) {
		const msgpack_object *o = &E.answers->via.array.ptr[i];
		uint32_t k;
		struct shmring_str s;
		if (entry_of(o, &k, &s) && k == (uint32_t)kind && s.len == key.len &&
		    memcmp(s.ptr, key.ptr, key.len) == 0) {
			*val = &o->via.array.ptr[2];
			return val[0]->type == MSGPACK_OBJECT_NIL ? 0 : 1;
		}
	}
	struct ent *e = E.cache ? ent_find(E.cache, (uint32_t)kind, key.ptr, key.len) : NULL;
	if (e && e->expires_ns && now_ns() >= e->expires_ns) {
		ent_drop(E.cache, e);
		e = NULL;
	}
	if (e) {
		STAT(entity_hits)++;
		lru_unlink(E.cache, e);
		lru_push(E.cache, e);
		if (!e->val)
			return 0;
		*val = &e->view.root;
		return 1;
	}
	for (uint32_t i = 0; i < E.nmiss; i++)
		if (E.miss_kind[i] == (uint32_t)kind && E.miss_key[i].len == key.len &&
		    memcmp(E.miss_key[i].ptr, key.ptr, key.len) == 0)
			return SHMRING_ENTITY_PENDING;
	if (E.nmiss == MAX_LOOKUPS)
		return -ENOSPC;
	char *dst = E.miss_buf + E.miss_used;
	memcpy(dst, key.ptr, key.len);
	E.miss_used += key.len;
	E.miss_kind[E.nmiss] = (uint32_t)kind;
	E.miss_key[E.nmiss++] = (struct shmring_str){dst, key.len};
	return SHMRING_ENTITY_PENDING;
}
