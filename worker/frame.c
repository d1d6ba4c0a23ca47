/* SPDX-License-Identifier: MIT */
/* The socket transport's frames (the layout is at the top of socket.c):
 * cutting a connection's input into records. Apart from socket.c so that
 * tests/fuzz/fuzz_frames.c runs exactly this code on hostile streams. */
#include "daemon.h"

#include <string.h>

int shmringd__frames_take(uint8_t *in, uint32_t *in_len, uint32_t max_payload,
                          void (*fn)(void *arg, const struct shmring_rec *rec), void *arg)
{
	uint32_t off = 0, len = *in_len;
	int rc = 0;
	while (len - off >= SHMRINGD_FRAME_HDR) {
		const uint8_t *h = in + off;
		struct shmring_rec rec;
		memcpy(&rec.len, h, 4);
		memcpy(&rec.type, h + 4, 2);
		memcpy(&rec.flags, h + 6, 2);
		memcpy(&rec.req_id, h + 8, 8);
		if (rec.len > max_payload) {
			rc = -1;
			break;
		}
		if (len - off - SHMRINGD_FRAME_HDR < rec.len)
			break;
		rec.payload = h + SHMRINGD_FRAME_HDR;
		fn(arg, &rec);
		off += SHMRINGD_FRAME_HDR + rec.len;
	}
	if (off) {
		memmove(in, in + off, len - off);
		*in_len = len - off;
	}
	return rc;
}

void shmringd__frame_header(uint8_t *h, uint16_t type, uint64_t req_id, uint32_t len)
{
	uint16_t flags = 0;
	memcpy(h, &len, 4);
	memcpy(h + 4, &type, 2);
	memcpy(h + 6, &flags, 2);
	memcpy(h + 8, &req_id, 8);
}
