/* SPDX-License-Identifier: MIT */
/* Prints, one per line, the size and field offsets of every C struct that
 * lua/shmring/core.lua mirrors in its ffi.cdef, and the value of every enum
 * constant it declares, as compiled from the C headers. test_ffi_layout.lua
 * compares each line with what LuaJIT computes from the cdef. */
#include "shmring/client.h"

#include <stdio.h>

#define SIZE(s) printf("sizeof %s %zu\n", #s, sizeof(struct s))
#define FIELD(s, f) printf("offsetof %s %s %zu\n", #s, #f, offsetof(struct s, f))
#define CONST(c) printf("const %s %lld\n", #c, (long long)(c))

int main(void)
{
	SIZE(shmring_chan_counters);
	FIELD(shmring_chan_counters, records);
	FIELD(shmring_chan_counters, bytes);
	FIELD(shmring_chan_counters, consumed);
	FIELD(shmring_chan_counters, full);
	FIELD(shmring_chan_counters, wakeups);
	FIELD(shmring_chan_counters, corrupt);
	FIELD(shmring_chan_counters, errors);
	FIELD(shmring_chan_counters, spare);

	SIZE(shmring_worker_counters);
	FIELD(shmring_worker_counters, pid);
	FIELD(shmring_worker_counters, records);
	FIELD(shmring_worker_counters, sleeps);
	FIELD(shmring_worker_counters, wakeups);
	FIELD(shmring_worker_counters, errors);
	FIELD(shmring_worker_counters, restarts);
	FIELD(shmring_worker_counters, spare);

	SIZE(shmring_rec);
	FIELD(shmring_rec, payload);
	FIELD(shmring_rec, len);
	FIELD(shmring_rec, type);
	FIELD(shmring_rec, flags);
	FIELD(shmring_rec, req_id);

	SIZE(shmring_claim);
	FIELD(shmring_claim, payload);
	FIELD(shmring_claim, cap);

	SIZE(shmring_mpw);
	FIELD(shmring_mpw, buf);
	FIELD(shmring_mpw, cap);
	FIELD(shmring_mpw, len);
	FIELD(shmring_mpw, overflow);

	SIZE(shmring_client_str);
	FIELD(shmring_client_str, ptr);
	FIELD(shmring_client_str, len);

	SIZE(shmring_client_action);
	FIELD(shmring_client_action, op);
	FIELD(shmring_client_action, num);
	FIELD(shmring_client_action, nstr);
	FIELD(shmring_client_action, a);
	FIELD(shmring_client_action, b);
	FIELD(shmring_client_action, map);

	SIZE(shmring_client_reply);
	FIELD(shmring_client_reply, status);
	FIELD(shmring_client_reply, nactions);
	FIELD(shmring_client_reply, error);
	FIELD(shmring_client_reply, actions);

	SIZE(shmring_client_ngx_str);
	FIELD(shmring_client_ngx_str, len);
	FIELD(shmring_client_ngx_str, data);

	SIZE(shmring_client_ngx_pair);
	FIELD(shmring_client_ngx_pair, key);
	FIELD(shmring_client_ngx_pair, value);

	SIZE(shmring_client_msg);
	FIELD(shmring_client_msg, claim);
	FIELD(shmring_client_msg, w);

	CONST(SHMRING_OK);
	CONST(SHMRING_FULL);
	CONST(SHMRING_EMPTY);
	CONST(SHMRING_CLIENT);
	CONST(SHMRING_SERVER);

	CONST(SHMRING_REC_PAD);
	CONST(SHMRING_REC_CONF);
	CONST(SHMRING_REC_ACCESS);
	CONST(SHMRING_REC_REWRITE);
	CONST(SHMRING_REC_HEADER_FILTER);
	CONST(SHMRING_REC_LOG);
	CONST(SHMRING_REC_FORGET);
	CONST(SHMRING_REC_REPLY);

	CONST(SHMRING_REPLY_OK);
	CONST(SHMRING_REPLY_ERROR);
	CONST(SHMRING_REPLY_UNKNOWN_CONF);
	CONST(SHMRING_REPLY_NEED_ENTITIES);

	CONST(SHMRING_ACT_SET_REQ_HEADER);
	CONST(SHMRING_ACT_ADD_REQ_HEADER);
	CONST(SHMRING_ACT_CLEAR_REQ_HEADER);
	CONST(SHMRING_ACT_SET_PATH);
	CONST(SHMRING_ACT_SET_QUERY);
	CONST(SHMRING_ACT_SET_METHOD);
	CONST(SHMRING_ACT_SET_RESP_HEADER);
	CONST(SHMRING_ACT_ADD_RESP_HEADER);
	CONST(SHMRING_ACT_EXIT);
	CONST(SHMRING_ACT_SET_CTX);
	CONST(SHMRING_ACT_AUTHENTICATE);
	CONST(SHMRING_ACT_LOG);
	CONST(SHMRING_ACT_LOOKUP);
	CONST(SHMRING_ACT_SET_BODY);
	CONST(SHMRING_ENTITY_CONSUMER);
	CONST(SHMRING_ENTITY_KEYAUTH_CREDENTIAL);
	CONST(SHMRING_ENTITY_JWT_SECRET);
	return 0;
}
