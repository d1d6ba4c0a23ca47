/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the gateway's reply decoder (shmring_client_decode_reply,
 * what the nginx side runs on every CQ record) on hostile bytes. A reply is
 * taken whole or refused; nothing may crash or read outside the input, and
 * an accepted reply must be one the Lua side can apply as it stands: every
 * op known, every argument its op needs present, every string inside the
 * input, every map readable entry by entry. The decoder is reused across
 * inputs, as the client reuses it across replies.
 */
#include "shmring/client.h"

#include <stdlib.h>
#include <string.h>

static struct shmring_client_decoder *g_dec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (shmring_client_decoder_new(&g_dec) < 0)
		abort();
	return 0;
}

static void check_str(const struct shmring_client_str *s, const uint8_t *buf, size_t len)
{
	if (!s->ptr)
		return;
	const uint8_t *p = (const uint8_t *)s->ptr;
	if (p < buf || p + s->len > buf + len)
		abort(); /* a string outside the payload */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	/* A private copy of exactly size bytes, so ASan sees any overread. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct shmring_client_reply *r = (struct shmring_client_reply *)1;
	int rc = shmring_client_decode_reply(g_dec, buf, (uint32_t)size, &r);
	if (rc < 0) {
		if (r != NULL)
			abort(); /* refused: nothing handed out */
		free(buf);
		return 0;
	}
	check_str(&r->error, buf, size);
	for (uint32_t i = 0; i < r->nactions; i++) {
		const struct shmring_client_action *a = &r->actions[i];
		/* SET_BODY is the last op; LOOKUP comes in NEED_ENTITIES replies. */
		if (a->op < SHMRING_ACT_SET_REQ_HEADER || a->op > SHMRING_ACT_SET_BODY ||
		    a->nstr > 2)
			abort();
		if ((a->op == SHMRING_ACT_LOOKUP || a->op == SHMRING_ACT_SET_BODY) && a->nstr < 1)
			abort();
		if (a->nstr > 0 && !a->a.ptr)
			abort();
		if (a->nstr > 1 && !a->b.ptr)
			abort();
		if (a->op == SHMRING_ACT_AUTHENTICATE && !a->map)
			abort();
		check_str(&a->a, buf, size);
		check_str(&a->b, buf, size);
		for (uint32_t k = 0; k < shmring_client_map_len(a->map) + 1; k++) {
			struct shmring_client_str key, val;
			if (shmring_client_map_str(a->map, k, &key, &val) == 0) {
				check_str(&key, buf, size);
				check_str(&val, buf, size);
			}
		}
	}
	free(buf);
	return 0;
}
