/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the socket transport's framing (worker/frame.c) on a
 * hostile stream, read the way socket.c reads it: in pieces of any size
 * (byte 0 of the input seeds the piece sizes), each appended to the
 * connection's buffer, then every whole frame taken. Every record handed
 * out must lie inside the buffer and within max_payload, the frames must
 * come out in order and tile the stream exactly, and a frame past
 * max_payload ends the connection.
 */
#include "daemon.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD 512u
#define BUF (64u * 1024u)

static uint8_t in[BUF];
static uint32_t in_len;

struct seen {
	const uint8_t *stream; /* the whole input after byte 0 */
	size_t taken;          /* bytes of stream handed out as frames so far */
};

static void take(void *arg, const struct shmring_rec *rec)
{
	struct seen *s = arg;
	if (rec->len > MAX_PAYLOAD || rec->payload < in + SHMRINGD_FRAME_HDR ||
	    rec->payload + rec->len > in + in_len)
		abort();
	/* The frame is the next bytes of the stream, header and payload. */
	uint8_t h[SHMRINGD_FRAME_HDR];
	shmringd__frame_header(h, rec->type, rec->req_id, rec->len);
	const uint8_t *at = s->stream + s->taken;
	if (memcmp(h, at, 4) || memcmp(h + 4, at + 4, 2) || memcmp(h + 8, at + 8, 8) ||
	    memcmp(&rec->flags, at + 6, 2) ||
	    memcmp(rec->payload, at + SHMRINGD_FRAME_HDR, rec->len))
		abort();
	s->taken += SHMRINGD_FRAME_HDR + rec->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > BUF)
		return 0;
	uint32_t seed = data[0] | 1u;
	struct seen s = {.stream = data + 1};
	size_t pos = 1;
	in_len = 0;
	while (pos < size) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 97;
		if (piece > size - pos)
			piece = size - pos;
		memcpy(in + in_len, data + pos, piece);
		in_len += (uint32_t)piece;
		pos += piece;
		if (shmringd__frames_take(in, &in_len, MAX_PAYLOAD, take, &s) < 0) {
			/* Only a header announcing too much ends it, and it is next. */
			uint32_t len;
			memcpy(&len, s.stream + s.taken, 4);
			if (len <= MAX_PAYLOAD)
				abort();
			return 0;
		}
		/* What is left is the rest of the stream after the frames taken. */
		if (in_len != (pos - 1) - s.taken || memcmp(in, s.stream + s.taken, in_len))
			abort();
		if (in_len >= SHMRINGD_FRAME_HDR) {
			uint32_t len;
			memcpy(&len, in, 4);
			if (in_len - SHMRINGD_FRAME_HDR >= len)
				abort(); /* a whole frame left behind */
		}
	}
	return 0;
}
