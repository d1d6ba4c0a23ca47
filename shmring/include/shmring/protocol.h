/* SPDX-License-Identifier: MIT */
/*
 * The wire protocol's numbers, in one place (docs/protocol.md says what each
 * one carries). Both sides include this header: the plugin ABI
 * (plugins/shmring_plugin.h, so shmringd and the plugins) and the client
 * library (shmring/client.h). The LuaJIT mirror in lua/shmring/core.lua
 * declares the same enums in its ffi.cdef; tests/lua/test_ffi_layout.lua
 * checks it against the values compiled from this file.
 *
 * No other declarations: this header needs nothing and is safe to include
 * from any of the project's headers.
 */
#ifndef SHMRING_PROTOCOL_H
#define SHMRING_PROTOCOL_H

/* Record types (the `type` field of a ring record). The ring library
 * reserves 0 for padding; the rest are opaque to the ring. */
enum shmring_rec_type {
	SHMRING_REC_PAD = 0,
	SHMRING_REC_CONF = 1,          /* nginx -> C: register a plugin config */
	SHMRING_REC_ACCESS = 2,        /* nginx -> C: request snapshot */
	SHMRING_REC_REWRITE = 3,       /* nginx -> C: request snapshot */
	SHMRING_REC_HEADER_FILTER = 4, /* nginx -> C: response snapshot */
	SHMRING_REC_LOG = 5,           /* nginx -> C: log entry, no reply */
	SHMRING_REC_FORGET = 6,        /* nginx -> C: drop cached entities, no reply */
	SHMRING_REC_REPLY = 0x80,      /* C -> nginx: status and actions */
};

/* A REPLY's status ("s"). */
enum shmring_reply_status {
	SHMRING_REPLY_OK = 0,
	SHMRING_REPLY_ERROR = 1,         /* with "e": bad config, bad record, plugin error */
	SHMRING_REPLY_UNKNOWN_CONF = 2,  /* re-register the conf id and retry once */
	SHMRING_REPLY_NEED_ENTITIES = 3, /* "a" holds LOOKUPs: resend with "entities" */
};

/* A REPLY action's op code, the first element of each [op, args...] entry of
 * "a". The gateway applies them in order. */
enum shmring_action_op {
	SHMRING_ACT_SET_REQ_HEADER = 1,   /* name, value */
	SHMRING_ACT_ADD_REQ_HEADER = 2,   /* name, value */
	SHMRING_ACT_CLEAR_REQ_HEADER = 3, /* name */
	SHMRING_ACT_SET_PATH = 4,         /* path */
	SHMRING_ACT_SET_QUERY = 5,        /* raw query string */
	SHMRING_ACT_SET_METHOD = 6,       /* method */
	SHMRING_ACT_SET_RESP_HEADER = 7,  /* name, value */
	SHMRING_ACT_ADD_RESP_HEADER = 8,  /* name, value */
	SHMRING_ACT_EXIT = 9,             /* status, body, headers map */
	SHMRING_ACT_SET_CTX = 10,         /* key, value */
	SHMRING_ACT_AUTHENTICATE = 11,    /* consumer map, credential */
	SHMRING_ACT_LOG = 12,             /* level, message */
	SHMRING_ACT_LOOKUP = 13,          /* kind, key: only in NEED_ENTITIES */
	SHMRING_ACT_SET_BODY = 14,        /* raw body (the gateway sets Content-Length) */
};

/* What a LOOKUP asks the gateway for, and the kind of a FORGET entry. The
 * key is Kong's look-up key for that entity (its cache_key field). */
enum shmring_entity_kind {
	SHMRING_ENTITY_CONSUMER = 1,           /* by id, or else by username */
	SHMRING_ENTITY_KEYAUTH_CREDENTIAL = 2, /* by key */
	SHMRING_ENTITY_JWT_SECRET = 3,         /* by key (the key claim's value) */
};

#endif
