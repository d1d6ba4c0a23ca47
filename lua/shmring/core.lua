-- shmring.core: the FFI declarations of libshmring used by the gateway, and
-- the loaded library. Every other shmring module gets `C` from here, so the
-- cdef runs once per LuaJIT state.
--
-- Which library file: shmring.core.load(path) before first use, or the
-- SHMRING_LIB environment variable (nginx needs `env SHMRING_LIB;`), or the
-- installed "libshmring.so.1" found by the dynamic loader.
local ffi = require("ffi")

local _M = {}

-- The enums mirror shmring/shmring.h and shmring/protocol.h (the protocol's
-- one home); tests/lua/test_ffi_layout.lua checks them, and the structs
-- below, against the values compiled from the C headers.
ffi.cdef [[
enum shmring_result { SHMRING_OK = 0, SHMRING_FULL = 1, SHMRING_EMPTY = 2 };
enum shmring_role { SHMRING_CLIENT = 1, SHMRING_SERVER = 2 };
enum shmring_rec_type {
	SHMRING_REC_PAD = 0,
	SHMRING_REC_CONF = 1,
	SHMRING_REC_ACCESS = 2,
	SHMRING_REC_REWRITE = 3,
	SHMRING_REC_HEADER_FILTER = 4,
	SHMRING_REC_LOG = 5,
	SHMRING_REC_FORGET = 6,
	SHMRING_REC_REPLY = 0x80,
};
enum shmring_reply_status {
	SHMRING_REPLY_OK = 0,
	SHMRING_REPLY_ERROR = 1,
	SHMRING_REPLY_UNKNOWN_CONF = 2,
	SHMRING_REPLY_NEED_ENTITIES = 3,
};
enum shmring_action_op {
	SHMRING_ACT_SET_REQ_HEADER = 1,
	SHMRING_ACT_ADD_REQ_HEADER = 2,
	SHMRING_ACT_CLEAR_REQ_HEADER = 3,
	SHMRING_ACT_SET_PATH = 4,
	SHMRING_ACT_SET_QUERY = 5,
	SHMRING_ACT_SET_METHOD = 6,
	SHMRING_ACT_SET_RESP_HEADER = 7,
	SHMRING_ACT_ADD_RESP_HEADER = 8,
	SHMRING_ACT_EXIT = 9,
	SHMRING_ACT_SET_CTX = 10,
	SHMRING_ACT_AUTHENTICATE = 11,
	SHMRING_ACT_LOG = 12,
	SHMRING_ACT_LOOKUP = 13,
	SHMRING_ACT_SET_BODY = 14,
};
enum shmring_entity_kind {
	SHMRING_ENTITY_CONSUMER = 1,
	SHMRING_ENTITY_KEYAUTH_CREDENTIAL = 2,
	SHMRING_ENTITY_JWT_SECRET = 3,
};

struct shmring_chan_counters {
	uint64_t records, bytes, consumed, full, wakeups, corrupt, errors, spare;
};
struct shmring_worker_counters {
	uint64_t pid, records, sleeps, wakeups, errors, restarts, spare[2];
};
struct shmring_instance;
struct shmring_chan;
struct shmring_rec {
	const uint8_t *payload;
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint64_t req_id;
};
struct shmring_claim { uint8_t *payload; uint32_t cap; };
struct shmring_mpw { uint8_t *buf; uint32_t cap; uint32_t len; int overflow; };

int shmring_instance_attach(const char *dir, struct shmring_instance **out);
int shmring_instance_attach_owned(const char *dir, int64_t owner, struct shmring_instance **out);
int64_t shmring_user_uid(const char *name);
void shmring_instance_close(struct shmring_instance *inst, int unlink_files);
uint32_t shmring_instance_nchannels(const struct shmring_instance *inst);
uint32_t shmring_instance_nworkers(const struct shmring_instance *inst);
uint64_t shmring_instance_epoch(const struct shmring_instance *inst);
int64_t shmring_instance_heartbeat_age_ns(const struct shmring_instance *inst);
struct shmring_worker_counters *shmring_instance_worker_counters(struct shmring_instance *inst,
                                                                 uint32_t worker);

int shmring_chan_open(struct shmring_instance *inst, uint32_t index, int role,
                      struct shmring_chan **out);
int shmring_chan_claim(struct shmring_instance *inst, struct shmring_chan **out);
void shmring_chan_release(struct shmring_chan *c);
void shmring_chan_close(struct shmring_chan *c);
uint32_t shmring_chan_index(const struct shmring_chan *c);
uint64_t shmring_chan_epoch(const struct shmring_chan *c);
int shmring_chan_is_closed(const struct shmring_chan *c);
uint64_t shmring_chan_owner(const struct shmring_chan *c);
const struct shmring_chan_counters *shmring_chan_counters(const struct shmring_chan *c, int side);
struct shmring_chan_counters *shmring_chan_my_counters(struct shmring_chan *c);
uint32_t shmring_chan_max_payload(const struct shmring_chan *c);
uint32_t shmring_space(struct shmring_chan *c);

int shmring_publish(struct shmring_chan *c);
int shmring_peek(struct shmring_chan *c, struct shmring_rec *rec);
void shmring_release(struct shmring_chan *c);
int shmring_ready(struct shmring_chan *c);
int shmring_doorbell_arm(struct shmring_chan *c);
void shmring_doorbell_disarm(struct shmring_chan *c);
int shmring_doorbell_path(const struct shmring_instance *inst, uint32_t index, char *buf, size_t len);
uint64_t shmring_now_ns(void);
const char *shmring_strerror(int rc);

void shmring_mpw_map(struct shmring_mpw *w, uint32_t n);
void shmring_mpw_array(struct shmring_mpw *w, uint32_t n);
void shmring_mpw_str(struct shmring_mpw *w, const char *s, uint32_t len);
void shmring_mpw_uint(struct shmring_mpw *w, uint64_t v);
void shmring_mpw_int(struct shmring_mpw *w, int64_t v);
void shmring_mpw_double(struct shmring_mpw *w, double v);
void shmring_mpw_bool(struct shmring_mpw *w, int v);
void shmring_mpw_nil(struct shmring_mpw *w);

struct shmring_client_str { const char *ptr; uint32_t len; };
struct shmring_client_action {
	uint32_t op;
	int32_t num;
	uint32_t nstr;
	uint32_t pad_;
	struct shmring_client_str a;
	struct shmring_client_str b;
	const void *map;
};
struct shmring_client_reply {
	int32_t status;
	uint32_t nactions;
	struct shmring_client_str error;
	struct shmring_client_action *actions;
};
struct shmring_client_decoder;
int shmring_client_decoder_new(struct shmring_client_decoder **out);
void shmring_client_decoder_free(struct shmring_client_decoder *d);
int shmring_client_decode_reply(struct shmring_client_decoder *d, const void *buf, uint32_t len,
                                struct shmring_client_reply **out);
uint32_t shmring_client_map_len(const void *map);
int shmring_client_map_str(const void *map, uint32_t i, struct shmring_client_str *key,
                           struct shmring_client_str *val);
struct shmring_client_msg { struct shmring_claim claim; struct shmring_mpw w; };
int shmring_client_begin(struct shmring_chan *c, uint32_t cap, struct shmring_client_msg *m);
int shmring_client_end(struct shmring_chan *c, struct shmring_client_msg *m, uint16_t type,
                       uint64_t req_id, int publish);
double shmring_client_clock(void);
double shmring_client_applied(double started);
int shmring_client_health(const struct shmring_instance *inst, const struct shmring_chan *c,
                          int64_t max_age_ns);
int shmring_client_server_awake(struct shmring_chan *c);
int64_t shmring_client_spin(struct shmring_chan *c, uint64_t max_ns);
struct shmring_client_ngx_str { int len; const char *data; };
struct shmring_client_ngx_pair { struct shmring_client_ngx_str key; struct shmring_client_ngx_str value; };
void shmring_client_put_pairs(struct shmring_mpw *w, const struct shmring_client_ngx_pair *p,
                              uint32_t n);
]]

-- The protocol's names as Lua tables (values from the cdef enums above,
-- read through ffi.C, which resolves enum constants without a library).
local K = ffi.C
_M.ROLE_CLIENT, _M.ROLE_SERVER = K.SHMRING_CLIENT, K.SHMRING_SERVER
_M.FULL = K.SHMRING_FULL
_M.REC = {
    CONF = K.SHMRING_REC_CONF, ACCESS = K.SHMRING_REC_ACCESS, REWRITE = K.SHMRING_REC_REWRITE,
    HEADER_FILTER = K.SHMRING_REC_HEADER_FILTER, LOG = K.SHMRING_REC_LOG,
    FORGET = K.SHMRING_REC_FORGET, REPLY = K.SHMRING_REC_REPLY,
}
_M.REPLY = {
    OK = K.SHMRING_REPLY_OK, ERROR = K.SHMRING_REPLY_ERROR,
    UNKNOWN_CONF = K.SHMRING_REPLY_UNKNOWN_CONF, NEED_ENTITIES = K.SHMRING_REPLY_NEED_ENTITIES,
}
_M.ACT = {
    SET_REQ_HEADER = K.SHMRING_ACT_SET_REQ_HEADER, ADD_REQ_HEADER = K.SHMRING_ACT_ADD_REQ_HEADER,
    CLEAR_REQ_HEADER = K.SHMRING_ACT_CLEAR_REQ_HEADER, SET_PATH = K.SHMRING_ACT_SET_PATH,
    SET_QUERY = K.SHMRING_ACT_SET_QUERY, SET_METHOD = K.SHMRING_ACT_SET_METHOD,
    SET_RESP_HEADER = K.SHMRING_ACT_SET_RESP_HEADER,
    ADD_RESP_HEADER = K.SHMRING_ACT_ADD_RESP_HEADER, EXIT = K.SHMRING_ACT_EXIT,
    SET_CTX = K.SHMRING_ACT_SET_CTX, AUTHENTICATE = K.SHMRING_ACT_AUTHENTICATE,
    LOG = K.SHMRING_ACT_LOG, LOOKUP = K.SHMRING_ACT_LOOKUP, SET_BODY = K.SHMRING_ACT_SET_BODY,
}
_M.ENTITY = {
    CONSUMER = K.SHMRING_ENTITY_CONSUMER,
    KEYAUTH_CREDENTIAL = K.SHMRING_ENTITY_KEYAUTH_CREDENTIAL,
    JWT_SECRET = K.SHMRING_ENTITY_JWT_SECRET,
}
_M.ESTALE, _M.ETIMEDOUT, _M.ENOENT, _M.EBUSY, _M.EMSGSIZE, _M.EPIPE, _M.EPROTO =
    -116, -110, -2, -16, -90, -32, -71

local C

-- Load the library once; later calls return the loaded one.
function _M.load(path)
    if C then
        return C
    end
    path = path or os.getenv("SHMRING_LIB") or "libshmring.so.1"
    local ok, lib = pcall(ffi.load, path)
    if not ok then
        return nil, "shmring: cannot load " .. path .. ": " .. tostring(lib)
    end
    C = lib
    _M.C = lib
    return lib
end

function _M.strerror(rc)
    if not C then
        return "rc " .. tostring(rc)
    end
    return ffi.string(C.shmring_strerror(rc))
end

---------------------------------------------------------------------------
-- The worker's REPLY decoder, one per LuaJIT state, shared by both
-- transports (shmring.client, shmring.socket). A decoded reply points into
-- the decoder and the payload: it is valid until the next decode, so use
-- it before anything can yield.

local decoder
local dec_box = ffi.new("struct shmring_client_decoder *[1]")
local reply_box = ffi.new("struct shmring_client_reply *[1]")

-- Load the library (see load) and make the decoder. Returns the library,
-- or nil and why.
function _M.load_decoder(path)
    local lib, err = _M.load(path)
    if not lib then
        return nil, err
    end
    if not decoder then
        local rc = lib.shmring_client_decoder_new(dec_box)
        if rc < 0 then
            return nil, "shmring: decoder: " .. _M.strerror(rc)
        end
        decoder = ffi.gc(dec_box[0], lib.shmring_client_decoder_free)
    end
    return lib
end

-- Decode a REPLY payload (a pointer or a Lua string, and its length):
-- the reply (struct shmring_client_reply *), or nil and -errno.
function _M.decode_reply(payload, len)
    local rc = C.shmring_client_decode_reply(decoder, payload, len, reply_box)
    if rc < 0 then
        return nil, rc
    end
    return reply_box[0]
end

-- Why a reply is not OK: its "e", or its status.
function _M.reply_error(r)
    return r.error.ptr ~= nil and ffi.string(r.error.ptr, r.error.len)
        or ("status " .. tostring(r.status))
end

-- The reply to a CONF: nil if the config was accepted, else why not.
function _M.conf_refusal(payload)
    local r, rc = _M.decode_reply(payload, #payload)
    if r and r.status == _M.REPLY.OK then
        return nil
    end
    return r and r.error.ptr ~= nil and ffi.string(r.error.ptr, r.error.len)
        or _M.strerror(rc or 0)
end

return _M
