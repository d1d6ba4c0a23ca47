-- shmring.socket: the socket transport, a compatibility and benchmark path
-- (docs/daemon.md `socket`, bench/README.md "e2e"). The same records as the
-- rings (a CONF once, then one ACCESS/REWRITE snapshot per phase, LOG fire
-- and forget), framed with the ring record header and sent to shmringd's
-- socket worker through an nginx cosocket with a keepalive pool: one
-- request frame and one reply frame per phase, the way APISIX's ext-plugin
-- runner talks. Snapshots are written by shmring.phase's encoders and
-- replies decoded and applied by the same code as the ring path; only the
-- carrier differs.
--
--   local st = phase.state(require("shmring.ngx").host, "jwt", spec, require("shmring.socket"))
--   require("shmring.socket").configure({ path = "/run/shmring.sock" })
--
-- Frame: u32 len | u16 type | u16 flags | u64 req_id (little-endian) | payload.
-- Conf ids are unique per nginx worker ((pid mod 2^20) << 20 | n): the
-- socket worker keeps one conf table for every connection, so a config
-- registered on one pooled connection serves them all; {s = 2} (the daemon
-- restarted) re-registers and retries once.
local ffi = require("ffi")
local core = require("shmring.core")
local client = require("shmring.client")
local options = require("shmring.options")

local ngx = ngx
local ngx_log, ERR = ngx.log, ngx.ERR
local tostring = tostring
local ffi_string, ffi_cast = ffi.string, ffi.cast
local REC, REPLY = core.REC, core.REPLY

ffi.cdef [[
struct shmring_sock_frame { uint32_t len; uint16_t type; uint16_t flags; uint64_t req_id; };
]]
local frame_ptr = ffi.typeof("struct shmring_sock_frame *")
local cframe_ptr = ffi.typeof("const struct shmring_sock_frame *")
local HDR = 16

local _M = { _VERSION = "0.1.0" }

local cfg = {
    path = os.getenv("SHMRING_SOCKET"), -- unix socket of shmringd --socket
    pool = "shmring-socket",
    pool_size = 256,
    keepalive_ms = 60000,
    max_frame = 1048576,
}
_M.config = cfg

function _M.configure(opts)
    options.apply(cfg, opts, { path = true }, "shmring.socket")
end

local buf = ffi.new("uint8_t[?]", cfg.max_frame)

-- The library and the worker's reply decoder (shared with the rings).
local function load()
    return core.load_decoder(client.config.lib)
end

-- Conf ids and their registration with the socket worker.
local conf_ids = setmetatable({}, { __mode = "k" })
local registered = {}
local conf_base, conf_seq, req_seq = nil, 0, 0

local function conf_id_of(conf)
    local id = conf_ids[conf]
    if not id then
        conf_base = conf_base or (ngx.worker.pid() % 1048576) * 1048576
        conf_seq = conf_seq + 1
        id = conf_base + conf_seq
        conf_ids[conf] = id
    end
    return id
end

-- Frame writing: the client's msgpack writer (so client.enc_value, which
-- the snapshot encoders use for ctx and consumer, writes here), pointed at
-- our buffer for the duration of one frame and restored after (nothing
-- yields in between).
local W = client.w()

local function frame(off, rtype, req_id, write, a, b, c)
    local sb, sc, sl, so = W.buf, W.cap, W.len, W.overflow
    W.buf, W.cap, W.len, W.overflow = buf + off + HDR, cfg.max_frame - off - HDR, 0, 0
    write(W, a, b, c)
    local len, overflow = W.len, W.overflow
    W.buf, W.cap, W.len, W.overflow = sb, sc, sl, so
    if overflow ~= 0 then
        return nil
    end
    local h = ffi_cast(frame_ptr, buf + off)
    h.len, h.type, h.flags, h.req_id = len, rtype, 0, req_id
    return off + HDR + len
end

-- w is the client's writer (see frame above): the CONF payload is the
-- ring client's own.
local function write_conf(w, id, plugin, conf)
    client.conf_payload(plugin, conf, id)
end

local function next_req_id()
    req_seq = req_seq + 1
    return req_seq
end

-- Read one reply frame: payload string, or nil, err.
local function read_reply(sock)
    local h, err = sock:receive(HDR)
    if not h then
        return nil, err
    end
    local len = ffi_cast(cframe_ptr, h).len
    if len == 0 then
        return ""
    end
    return sock:receive(len)
end

local function connect(timeout)
    local sock = ngx.socket.tcp()
    sock:settimeout(timeout)
    local ok, err = sock:connect("unix:" .. cfg.path,
        { pool = cfg.pool, pool_size = cfg.pool_size })
    if not ok then
        return nil, "socket " .. tostring(cfg.path) .. ": " .. tostring(err)
    end
    return sock
end

-- A CONF frame first when this worker has not registered conf yet.
local function conf_frame(plugin, conf, id)
    if registered[id] then
        return 0, false
    end
    return frame(0, REC.CONF, next_req_id(), write_conf, id, plugin, conf), true
end

local function conf_reply(sock, plugin, id)
    local payload, err = read_reply(sock)
    if not payload then
        return nil, err
    end
    local refused = core.conf_refusal(payload)
    if refused then
        ngx_log(ERR, "shmring: plugin ", plugin, " refused its config: ", refused)
        registered[id] = nil
        return false
    end
    registered[id] = true
    return true
end

-- Same contract as shmring.client.call.
function _M.call(rtype, plugin, conf, encode, arg, timeout)
    local ok, err = load()
    if not ok then
        return nil, err, "unavailable"
    end
    local sock
    sock, err = connect(timeout or 1000)
    if not sock then
        return nil, err, "unavailable"
    end
    local id = conf_id_of(conf)
    for attempt = 1, 2 do
        local off, with_conf = conf_frame(plugin, conf, id)
        local req_id = next_req_id()
        local len = off and frame(off, rtype, req_id, encode, id, arg)
        if not len then
            sock:close()
            return nil, "snapshot too large", "error"
        end
        local sent
        sent, err = sock:send(ffi_string(buf, len))
        if not sent then
            sock:close()
            return nil, "socket send: " .. err, "unavailable"
        end
        if with_conf then
            local cok
            cok, err = conf_reply(sock, plugin, id)
            if cok == nil then
                sock:close()
                return nil, "socket receive: " .. err, "unavailable"
            end
        end
        local payload
        payload, err = read_reply(sock)
        if not payload then
            sock:close()
            return nil, "socket receive: " .. err, err == "timeout" and "deadline" or "unavailable"
        end
        sock:setkeepalive(cfg.keepalive_ms, cfg.pool_size)
        local r, rc = core.decode_reply(payload, #payload)
        if not r then
            return nil, "bad reply: " .. core.strerror(rc), "error"
        end
        if r.status == REPLY.OK or r.status == REPLY.NEED_ENTITIES then
            return r, payload
        end
        if r.status ~= REPLY.UNKNOWN_CONF or attempt == 2 then
            return nil, "plugin " .. plugin .. ": " .. core.reply_error(r), "error"
        end
        registered[id] = nil -- the socket worker restarted: register again
        sock, err = connect(timeout or 1000)
        if not sock then
            return nil, err, "unavailable"
        end
    end
end

-- LOG, sent from a timer: cosockets are disabled in log_by_lua (Kong's and
-- APISIX's socket loggers do the same).
local function send_frame(premature, frame_str, plugin, id, with_conf)
    if premature then
        return
    end
    local sock, err = connect(1000)
    if not sock then
        ngx_log(ERR, "shmring: log entry dropped: ", err)
        return
    end
    local sent
    sent, err = sock:send(frame_str)
    if sent and with_conf then
        sent, err = conf_reply(sock, plugin, id)
    end
    if sent == nil then
        sock:close()
        ngx_log(ERR, "shmring: log entry dropped: ", err)
        return
    end
    sock:setkeepalive(cfg.keepalive_ms, cfg.pool_size)
end

-- Same contract as shmring.client.send (LOG: no reply, req_id 0).
function _M.send(rtype, plugin, conf, encode, arg)
    local ok, err = load()
    if not ok then
        return nil, err
    end
    local id = conf_id_of(conf)
    local off, with_conf = conf_frame(plugin, conf, id)
    local len = off and frame(off, rtype, 0, encode, id, arg)
    if not len then
        return nil, "entry too large"
    end
    if with_conf then
        registered[id] = true -- once per worker; a refusal is logged by conf_reply
    end
    return ngx.timer.at(0, send_frame, ffi_string(buf, len), plugin, id, with_conf)
end

return _M
