-- shmring.client.encode: msgpack written straight into the open record
-- through the C writers. W is the writer of the record being written (the
-- claim's, or a frame buffer's for shmring.socket); enc_value is the
-- generic encoder (configs, ctx, consumer, log entries), conf_payload the
-- CONF record.
local ffi = require("ffi")
local core = require("shmring.core")

local type, pairs, floor = type, pairs, math.floor
local ffi_string = ffi.string

local _M = {}

local C -- the library, once loaded (bind)

-- The record being written: the claim and the msgpack writer over it.
local msg = ffi.new("struct shmring_client_msg")
_M.msg = msg
local W = ffi.cast("struct shmring_mpw *", ffi.cast("uint8_t *", msg) +
    ffi.offsetof("struct shmring_client_msg", "w"))
_M.W = W

local function bind()
    C = C or core.C
end

local function enc_value(v, depth)
    local t = type(v)
    if t == "string" then
        C.shmring_mpw_str(W, v, #v)
    elseif t == "number" then
        if v == floor(v) and v >= -2^53 and v <= 2^53 then
            if v >= 0 then
                C.shmring_mpw_uint(W, v)
            else
                C.shmring_mpw_int(W, v)
            end
        else
            C.shmring_mpw_double(W, v)
        end
    elseif t == "boolean" then
        C.shmring_mpw_bool(W, v and 1 or 0)
    elseif t == "table" and depth < 16 then
        local n = #v
        if n > 0 then
            C.shmring_mpw_array(W, n)
            for i = 1, n do
                enc_value(v[i], depth + 1)
            end
        else
            local cnt = 0
            for k, x in pairs(v) do
                if type(k) == "string" and type(x) ~= "function" then
                    cnt = cnt + 1
                end
            end
            C.shmring_mpw_map(W, cnt)
            for k, x in pairs(v) do
                if type(k) == "string" and type(x) ~= "function" then
                    C.shmring_mpw_str(W, k, #k)
                    enc_value(x, depth + 1)
                end
            end
        end
    else
        C.shmring_mpw_nil(W) -- nil, ngx.null, functions, too deep
    end
end

function _M.enc_value(v, depth)
    bind()
    return enc_value(v, depth)
end

-- Keys of a plugin config that belong to the gateway side, not the plugin.
local GATEWAY_KEYS = { fail_open = true, timeout = true, __key__ = true, __seq__ = true }

-- The config as the plugin sees it (gateway keys stripped), as msgpack.
local function conf_encode_into(plugin_conf)
    local cnt = 0
    for k, x in pairs(plugin_conf) do
        if type(k) == "string" and not GATEWAY_KEYS[k] and type(x) ~= "function" then
            cnt = cnt + 1
        end
    end
    C.shmring_mpw_map(W, cnt)
    for k, x in pairs(plugin_conf) do
        if type(k) == "string" and not GATEWAY_KEYS[k] and type(x) ~= "function" then
            C.shmring_mpw_str(W, k, #k)
            enc_value(x, 1)
        end
    end
end

-- The CONF payload {conf = id, plugin = name, config = ...} into W (the
-- socket transport writes its frames through W too).
function _M.conf_payload(plugin, conf, id)
    bind()
    C.shmring_mpw_map(W, 3)
    C.shmring_mpw_str(W, "conf", 4)
    C.shmring_mpw_uint(W, id)
    C.shmring_mpw_str(W, "plugin", 6)
    C.shmring_mpw_str(W, plugin, #plugin)
    C.shmring_mpw_str(W, "config", 6)
    conf_encode_into(conf)
end

local content_buf = ffi.new("uint8_t[?]", 65536)
local content_msg = ffi.new("struct shmring_mpw")

-- (plugin, config) encoded once into a scratch buffer (not the ring), as a
-- string to key conf ids by content; a config larger than the scratch
-- buffer gets a fresh table (keyed by identity only).
function _M.content_key(plugin, conf)
    bind()
    local saved = W
    W = content_msg
    content_msg.buf, content_msg.cap, content_msg.len, content_msg.overflow = content_buf, 65536, 0, 0
    C.shmring_mpw_str(W, plugin, #plugin)
    conf_encode_into(conf)
    local key = content_msg.overflow == 0 and ffi_string(content_buf, content_msg.len) or {}
    W = saved
    return key
end

return _M
