-- shmring.client: one nginx worker's side of a shmring channel.
--
-- Per worker (one LuaJIT state = one nginx worker = one producer):
--   * attach to the daemon's instance and claim a free channel (CAS on the
--     owner word with pid + start time, so an old worker still draining
--     after `nginx -s reload` and its new namesake never share a channel);
--   * register plugin configs under conf ids, once per config and claim
--     (a new claim or a new daemon epoch means a new registration);
--   * write records straight into the SQ through C msgpack writers;
--   * wait for replies without blocking nginx and without spinning while
--     idle (see "wait strategies" below and docs/gateway.md);
--   * notice a dead daemon from the heartbeat or the closed flag at once.
--
-- Hosts (shmring.ngx, shmring.kong) build snapshots and apply actions; this
-- module knows nothing of HTTP.
local ffi = require("ffi")
local core = require("shmring.core")
local semaphore = require("ngx.semaphore")

local ngx = ngx
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local ngx_log = ngx.log
local ERR, WARN, NOTICE = ngx.ERR, ngx.WARN, ngx.NOTICE
local type, pairs, tostring, tonumber, floor = type, pairs, tostring, tonumber, math.floor
local ffi_string = ffi.string
local REC, REPLY = core.REC, core.REPLY

local _M = { _VERSION = "0.1.0" }

-- Tunables; configure() may change them (init_by_lua or init_worker).
local cfg = {
    dir = os.getenv("SHMRING_DIR") or "/dev/shm/shmring/default",
    lib = nil,                  -- library path; nil = SHMRING_LIB or libshmring.so.1
    wait = "doorbell",          -- "doorbell" | "poll" (docs/gateway.md has the measurements)
    poll_ms = 1,                -- poll: the request re-checks the CQ every poll_ms
    doorbell_timeout_ms = 100,  -- reaper: longest doorbell read before re-checking
    batch_publish = true,       -- publish the SQ once per event-loop turn (flusher thread)
    heartbeat_timeout_ms = 500, -- daemon considered down past this heartbeat age
    attach_retry_ms = 100,      -- at most one attach attempt per this interval
    claim_bytes = 16384,        -- first claim size for a snapshot (grown on overflow)
}
_M.config = cfg

local C              -- the loaded library
local inst           -- struct shmring_instance * (ours, from attach)
local chan           -- struct shmring_chan * (claimed)
local gen = 0        -- claim generation: bumps on every successful claim
local next_attach = 0
local last_attach_err = "not attached"
local hb_ns

local inst_box = ffi.new("struct shmring_instance *[1]")
local chan_box = ffi.new("struct shmring_chan *[1]")
local rec = ffi.new("struct shmring_rec")
local msg = ffi.new("struct shmring_client_msg")
local W = ffi.cast("struct shmring_mpw *", ffi.cast("uint8_t *", msg) +
    ffi.offsetof("struct shmring_client_msg", "w"))
local dec_box = ffi.new("struct shmring_client_decoder *[1]")
local reply_box = ffi.new("struct shmring_client_reply *[1]")
local decoder

-- Requests waiting for a reply, by req_id. An entry leaves the table when
-- its reply arrives or when its request gives up, so a late reply finds
-- nothing and is dropped.
local pending = {}
local npending = 0
local req_base, req_seq = 0, 0
local last_submit = 0

-- Semaphores that ended a wait by a post are reused; one that timed out
-- is dropped (a post may still land on it).
local sema_pool, sema_pool_n = {}, 0

local reaper_running, reaper_idle = false, false
local reaper_wake
local flusher_running, flusher_idle = false, false
local flush_wake
local flush_due = false
local doorbell_sock
local exiting_release = false
local initialized = false -- init_worker ran in this worker

-- Counters this module keeps for shmring.metrics (per worker, in Lua).
local stats = {
    requests = 0, replies = 0, late_replies = 0, deadline = 0, unavailable = 0,
    ring_full = 0, conf_registrations = 0, unknown_conf = 0, resent = 0, reattach = 0,
    doorbell_waits = 0, doorbell_timeouts = 0, poll_yields = 0, errors = 0,
}
_M.stats = stats

function _M.configure(opts)
    for k, v in pairs(opts or {}) do
        if cfg[k] == nil and k ~= "lib" then
            error("shmring.client: unknown option " .. tostring(k), 2)
        end
        cfg[k] = v
    end
    hb_ns = cfg.heartbeat_timeout_ms * 1e6
end

local function load_lib()
    if C then
        return C
    end
    local lib, err = core.load(cfg.lib)
    if not lib then
        return nil, err
    end
    C = lib
    local rc = C.shmring_client_decoder_new(dec_box)
    if rc < 0 then
        C = nil
        return nil, "shmring: decoder: " .. core.strerror(rc)
    end
    decoder = ffi.gc(dec_box[0], C.shmring_client_decoder_free)
    hb_ns = cfg.heartbeat_timeout_ms * 1e6
    return C
end

-- Wake every waiting request with an error (the channel went away).
local function fail_pending(why)
    for id, p in pairs(pending) do
        pending[id] = nil
        p.err = why
        if p.sema then
            p.sema:post(1)
        end
    end
    npending = 0
end

local function detach(why)
    fail_pending(why or "unavailable")
    -- The doorbell cosocket belongs to the reaper's light thread: only it
    -- may close it (doorbell_connect() sees the claim changed).
    if chan ~= nil then
        C.shmring_chan_release(chan)
        chan = nil
    end
    if inst ~= nil then
        C.shmring_instance_close(inst, 0)
        inst = nil
    end
end

-- Attach and claim, at most once per attach_retry_ms (a daemon that is down
-- costs one failed open per interval, not one per request).
local function attach()
    local now = ngx_now()
    if now < next_attach then
        return nil, last_attach_err
    end
    next_attach = now + cfg.attach_retry_ms / 1000
    local ok, err = load_lib()
    if not ok then
        last_attach_err = err
        return nil, err
    end
    local rc = C.shmring_instance_attach(cfg.dir, inst_box)
    if rc < 0 then
        last_attach_err = "daemon not running (" .. cfg.dir .. ": " .. core.strerror(rc) .. ")"
        return nil, last_attach_err
    end
    local i = inst_box[0]
    rc = C.shmring_chan_claim(i, chan_box)
    if rc < 0 then
        C.shmring_instance_close(i, 0)
        last_attach_err = "no channel: " .. core.strerror(rc)
        return nil, last_attach_err
    end
    inst, chan = i, chan_box[0]
    gen = gen + 1
    stats.reattach = stats.reattach + 1
    ngx_log(NOTICE, "shmring: worker ", ngx.worker.pid(), " claimed channel ",
        C.shmring_chan_index(chan), " of ", cfg.dir)
    return true
end

-- Make sure the channel is usable now. Returns true, or nil and why
-- (never waits: a dead daemon is seen from the heartbeat or closed flag).
local function ensure()
    if chan ~= nil then
        local rc = C.shmring_client_health(inst, chan, hb_ns)
        if rc == 0 then
            return true
        end
        if rc == core.ETIMEDOUT then
            return nil, "daemon heartbeat stale"
        end
        -- Closed or re-created (new epoch): start over with the new one.
        detach("daemon restarted")
    end
    if exiting_release then
        return nil, "worker exiting"
    end
    return attach()
end
_M.ensure = ensure

function _M.health()
    if chan == nil then
        return nil, last_attach_err
    end
    local rc = C.shmring_client_health(inst, chan, hb_ns)
    if rc == 0 then
        return true
    end
    return nil, core.strerror(rc)
end

---------------------------------------------------------------------------
-- msgpack writing into the open record (W). Hot-path encoders are plain
-- FFI calls; enc_value is the generic (config) encoder.

function _M.w()
    return W
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
_M.enc_value = enc_value

-- Keys of a plugin config that belong to the gateway side, not the plugin.
local GATEWAY_KEYS = { fail_open = true, timeout = true, __key__ = true, __seq__ = true }

---------------------------------------------------------------------------
-- Conf ids: one per config table (by identity, then by content for hosts
-- that build a fresh table per request), registered once per claim.

local conf_by_table = setmetatable({}, { __mode = "k" })
local conf_by_content = {}
local conf_registered = {} -- id -> gen it was registered in
local next_conf_id = 0

local content_buf = ffi.new("uint8_t[?]", 65536)
local content_msg = ffi.new("struct shmring_mpw")

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

local function conf_id_of(plugin, conf)
    local id = conf_by_table[conf]
    if id then
        return id
    end
    -- By content: encode once into a scratch buffer (not the ring).
    local saved = W
    W = content_msg
    content_msg.buf, content_msg.cap, content_msg.len, content_msg.overflow = content_buf, 65536, 0, 0
    C.shmring_mpw_str(W, plugin, #plugin)
    conf_encode_into(conf)
    -- A config larger than the scratch buffer is keyed by identity only.
    local key = content_msg.overflow == 0 and ffi_string(content_buf, content_msg.len) or {}
    W = saved
    id = conf_by_content[key]
    if not id then
        next_conf_id = next_conf_id + 1
        id = next_conf_id
        conf_by_content[key] = id
    end
    conf_by_table[conf] = id
    return id
end

-- The CONF payload {conf = id, plugin = name, config = ...} into W (the
-- socket transport writes its frames through W too).
local function conf_payload(plugin, conf, id)
    C.shmring_mpw_map(W, 3)
    C.shmring_mpw_str(W, "conf", 4)
    C.shmring_mpw_uint(W, id)
    C.shmring_mpw_str(W, "plugin", 6)
    C.shmring_mpw_str(W, plugin, #plugin)
    C.shmring_mpw_str(W, "config", 6)
    conf_encode_into(conf)
end
_M.conf_payload = conf_payload

-- The first claim of a record: claim_bytes, or less on a small ring.
local function first_cap()
    local max = C.shmring_chan_max_payload(chan)
    return cfg.claim_bytes < max and cfg.claim_bytes or max
end

local function next_req_id()
    req_seq = req_seq + 1
    if req_seq >= 4294967296 then
        req_seq = 1
    end
    return req_base + req_seq
end

-- Write the CONF record for (plugin, conf) under id; committed, not
-- published (the request that needs it publishes both together: the daemon
-- reads the SQ in order, so the ACCESS after it finds the conf).
local function conf_write(plugin, conf, id)
    local cap, req_id, rc = first_cap(), nil, nil
    for _ = 1, 2 do
        rc = C.shmring_client_begin(chan, cap, msg)
        if rc ~= 0 then
            return rc
        end
        conf_payload(plugin, conf, id)
        req_id = next_req_id()
        rc = C.shmring_client_end(chan, msg, REC.CONF, req_id, 0)
        local max = C.shmring_chan_max_payload(chan)
        if rc ~= core.EMSGSIZE or cap >= max then
            break
        end
        cap = max -- a large config (keys, many rules): once more with room
    end
    if rc < 0 then
        return rc
    end
    -- Its reply is checked by the reaper (or whoever drains): a refusal
    -- is logged and the id forgotten, so the next request retries.
    pending[req_id] = { conf_id = id, plugin = plugin, expires = ngx_now() + 5 }
    npending = npending + 1
    conf_registered[id] = gen
    stats.conf_registrations = stats.conf_registrations + 1
    return 0
end

---------------------------------------------------------------------------
-- Fire-and-forget records kept for one resend. A LOG answered "unknown
-- conf" (a daemon reload or worker restart emptied the conf tables: every
-- record that waited in the SQ meanwhile gets that answer) is sent again
-- once its conf is registered again. The SQ holds a few thousand records at
-- most, so the last KEEP sends cover every one still waiting in it; a slot
-- holds references only (the entry table), no copy.
local KEEP = 4096
local kept_id, kept_type, kept_plugin, kept_conf, kept_encode, kept_arg = {}, {}, {}, {}, {}, {}
local resend, nresend = {}, 0

local function keep(req_id, rtype, plugin, conf, encode, arg)
    local slot = req_id % KEEP + 1
    kept_id[slot], kept_type[slot], kept_plugin[slot] = req_id, rtype, plugin
    kept_conf[slot], kept_encode[slot], kept_arg[slot] = conf, encode, arg
end

local submit -- below

local function resend_kept()
    local n = nresend
    nresend = 0
    for i = 1, n do
        local slot = resend[i]
        resend[i] = nil
        local plugin, conf = kept_plugin[slot], kept_conf[slot]
        -- not kept again: one resend only
        if submit(kept_type[slot], plugin, conf, conf_id_of(plugin, conf), kept_encode[slot],
            kept_arg[slot]) then
            stats.resent = stats.resent + 1
        end
        kept_conf[slot], kept_encode[slot], kept_arg[slot] = nil, nil, nil
    end
end

---------------------------------------------------------------------------
-- Reaping replies.

local function on_conf_reply(p, payload)
    local rc = C.shmring_client_decode_reply(decoder, payload, #payload, reply_box)
    local r = reply_box[0]
    if rc < 0 or r.status ~= REPLY.OK then
        conf_registered[p.conf_id] = nil
        local e = (rc == 0 and r.error.ptr ~= nil) and ffi_string(r.error.ptr, r.error.len)
            or core.strerror(rc)
        ngx_log(ERR, "shmring: plugin ", p.plugin, " refused its config: ", e)
    end
end

-- Read every reply in the CQ and hand each to its waiting request.
-- Returns how many records were read.
local function drain()
    if chan == nil then
        return 0
    end
    local n = 0
    while true do
        local rc = C.shmring_peek(chan, rec)
        if rc ~= 0 then
            if rc < 0 then
                stats.errors = stats.errors + 1
                ngx_log(ERR, "shmring: completion ring: ", core.strerror(rc))
                if n > 0 then
                    C.shmring_release(chan)
                end
                detach("corrupt channel")
                return n
            end
            break
        end
        n = n + 1
        if rec.type == REC.REPLY then
            local id = tonumber(rec.req_id)
            local p = pending[id]
            if p then
                pending[id] = nil
                npending = npending - 1
                local payload = ffi_string(rec.payload, rec.len)
                if p.conf_id then
                    on_conf_reply(p, payload)
                else
                    p.reply = payload
                    stats.replies = stats.replies + 1
                    if p.sema then
                        p.sema:post(1)
                    end
                end
            else
                stats.late_replies = stats.late_replies + 1
                -- A fire-and-forget record (LOG) whose conf the daemon does
                -- not know: its worker restarted or reloaded with empty conf
                -- tables (docs/daemon.md), so none of ours is registered
                -- there any more: register again before the next record.
                local r = C.shmring_client_decode_reply(decoder, rec.payload, rec.len, reply_box) == 0
                    and reply_box[0]
                if r and r.status == REPLY.UNKNOWN_CONF then
                    stats.unknown_conf = stats.unknown_conf + 1
                    for k in pairs(conf_registered) do
                        conf_registered[k] = nil
                    end
                    local slot = id % KEEP + 1
                    if kept_id[slot] == id then
                        kept_id[slot] = false
                        nresend = nresend + 1
                        resend[nresend] = slot
                    end
                end
            end
        end
    end
    if n > 0 then
        C.shmring_release(chan)
    end
    if nresend > 0 then
        resend_kept()
    end
    return n
end
_M.drain = drain

---------------------------------------------------------------------------
-- The reaper: one light thread per worker (the doorbell strategy).
--
--   no request waiting      -> sleep on a semaphore (no CPU, no syscall)
--   requests waiting        -> drain the CQ, then arm the doorbell; if
--                              replies arrived meanwhile drain again, else
--                              block on the doorbell socket (cosocket),
--                              woken by the daemon's next CQ publish

local doorbell_gen = 0

local function doorbell_connect()
    if doorbell_sock then
        if doorbell_gen == gen then
            return doorbell_sock
        end
        doorbell_sock:close() -- the channel's old doorbell
        doorbell_sock = nil
    end
    local buf = ffi.new("char[256]")
    local n = C.shmring_doorbell_path(inst, C.shmring_chan_index(chan), buf, 256)
    if n < 0 then
        return nil, core.strerror(n)
    end
    local sock = ngx.socket.tcp()
    local ok, err = sock:connect("unix:" .. ffi_string(buf, n))
    if not ok then
        return nil, err
    end
    doorbell_sock, doorbell_gen = sock, gen
    return sock
end

local function receive_bell(sock)
    if sock.receiveany then
        return sock:receiveany(64)
    end
    return sock:receive(1)
end

local reaper

local function start_reaper()
    if reaper_running or cfg.wait == "poll" then
        return reaper_running
    end
    local ok, err = ngx.timer.at(0, reaper)
    if not ok then
        if err ~= "process exiting" then
            ngx_log(ERR, "shmring: cannot start the reaper: ", err)
        end
        return false
    end
    reaper_running = true
    return true
end

reaper = function(premature)
    if premature then
        reaper_running = false
        return
    end
    local next_health = 0
    while true do
        if npending == 0 then
            if ngx.worker.exiting() then
                break
            end
            reaper_idle = true
            reaper_wake:wait(1) -- idle: a post from the first submit, or a 1 s tick
            reaper_idle = false
        else
            local n = drain()
            local now = ngx_now()
            if n == 0 and now >= next_health then
                -- A daemon dying under us: fail waiters now, not at deadline.
                next_health = now + 0.01
                local ok, why = ensure()
                if not ok then
                    fail_pending(why)
                end
                -- A CONF the daemon never answered must not keep us awake.
                for id, p in pairs(pending) do
                    if p.expires and now > p.expires then
                        pending[id] = nil
                        npending = npending - 1
                        conf_registered[p.conf_id] = nil
                    end
                end
            end
            if npending > 0 and chan ~= nil then
                -- Never ngx.sleep(0) here: without OpenResty's delayed-events
                -- patch (Debian's nginx) it re-arms a timer that expires in
                -- the same timer pass, so it spins without letting any I/O or
                -- posted event run (docs/gateway.md).
                local sock = doorbell_connect()
                local armed = chan -- a request may detach while we wait
                if not sock then
                    ngx_sleep(0.001) -- no doorbell: poll at 1 ms
                elseif C.shmring_doorbell_arm(armed) == 0 then
                    stats.doorbell_waits = stats.doorbell_waits + 1
                    -- Requests keep their own deadlines and a daemon that
                    -- dies closes this connection (EOF wakes us at once);
                    -- the timeout only bounds how long a reaper waiting for
                    -- a hung daemon keeps its worker from exiting. nginx
                    -- logs each timeout unless `lua_socket_log_errors off`
                    -- (Kong's default; docs/gateway.md).
                    sock:settimeout(cfg.doorbell_timeout_ms)
                    -- Every byte waiting (one per ring), so stale rings do
                    -- not cost a loop each.
                    local _, err = receive_bell(sock)
                    if err == "timeout" then
                        stats.doorbell_timeouts = stats.doorbell_timeouts + 1
                    elseif err then
                        doorbell_sock = nil
                        sock:close()
                    end
                    if chan ~= nil and chan == armed then
                        C.shmring_doorbell_disarm(chan)
                    end
                end
            end
        end
    end
    reaper_running = false
end

-- The flusher: publishes the SQ once per event-loop turn (batch_publish).
local function flusher(premature)
    if premature then
        flusher_running = false
        return
    end
    while true do
        flusher_idle = true
        flush_wake:wait(1)
        flusher_idle = false
        if flush_due then
            flush_due = false
            if chan ~= nil then
                C.shmring_publish(chan)
            end
        end
        if ngx.worker.exiting() and npending == 0 then
            break
        end
    end
    flusher_running = false
end

local function start_flusher()
    if flusher_running or not cfg.batch_publish then
        return
    end
    local ok, err = ngx.timer.at(0, flusher)
    if not ok then
        if err ~= "process exiting" then
            ngx_log(ERR, "shmring: cannot start the flusher: ", err)
        end
        return
    end
    flusher_running = true
end

---------------------------------------------------------------------------
-- Submitting and waiting.

local function sema_get()
    if sema_pool_n > 0 then
        local s = sema_pool[sema_pool_n]
        sema_pool[sema_pool_n] = nil
        sema_pool_n = sema_pool_n - 1
        return s
    end
    return semaphore.new(0)
end

-- Wait for p's reply until deadline (ngx.now() seconds). Returns true, or
-- nil and "deadline" / why the channel failed.
local function wait_reply(id, p, deadline)
    if cfg.wait ~= "poll" and (reaper_running or start_reaper()) then
        local s = sema_get()
        p.sema = s
        if reaper_idle then
            reaper_wake:post(1)
        end
        local remaining = deadline - ngx_now()
        local ok = remaining > 0 and s:wait(remaining)
        if ok then
            sema_pool_n = sema_pool_n + 1
            sema_pool[sema_pool_n] = s
        end
        if p.reply then
            return true
        end
        if p.err then
            return nil, p.err
        end
        if pending[id] then
            pending[id] = nil
            npending = npending - 1
        end
        return nil, "deadline"
    end
    -- Poll: this request drains the CQ itself between event-loop turns.
    while true do
        drain()
        if p.reply then
            return true
        end
        if p.err then
            return nil, p.err
        end
        if ngx_now() >= deadline then
            if pending[id] then
                pending[id] = nil
                npending = npending - 1
            end
            return nil, "deadline"
        end
        local ok, why = ensure()
        if not ok then
            if pending[id] then
                pending[id] = nil
                npending = npending - 1
            end
            return nil, why
        end
        stats.poll_yields = stats.poll_yields + 1
        ngx_sleep(cfg.poll_ms / 1000)
    end
end

-- Write one record (CONF first if this claim has not seen the conf) and
-- publish. Returns the req_id, or nil, err, kind.
function submit(rtype, plugin, conf, conf_id, encode, arg)
    if conf_registered[conf_id] ~= gen then
        local rc = conf_write(plugin, conf, conf_id)
        if rc ~= 0 then
            if rc == core.FULL then
                stats.ring_full = stats.ring_full + 1
                return nil, "ring full", "unavailable"
            end
            return nil, "conf: " .. core.strerror(rc), "unavailable"
        end
    end
    local cap = first_cap()
    for _ = 1, 2 do
        local rc = C.shmring_client_begin(chan, cap, msg)
        if rc ~= 0 then
            if rc == core.FULL then
                stats.ring_full = stats.ring_full + 1
                C.shmring_publish(chan) -- a CONF may be waiting behind us
                return nil, "ring full", "unavailable"
            end
            return nil, core.strerror(rc), "unavailable"
        end
        encode(W, conf_id, arg)
        local req_id = next_req_id()
        rc = C.shmring_client_end(chan, msg, rtype, req_id, flusher_idle and 0 or 1)
        if rc >= 0 then
            last_submit = ngx_now()
            if flusher_idle and not flush_due then
                -- The flusher runs after this event-loop turn's other
                -- events (semaphore posts are posted events): one publish
                -- and at most one futex wake for all of the turn's records.
                flush_due = true
                flush_wake:post(1)
            end
            return req_id
        end
        if rc ~= core.EMSGSIZE or cap >= C.shmring_chan_max_payload(chan) then
            return nil, "snapshot: " .. core.strerror(rc), "error"
        end
        cap = C.shmring_chan_max_payload(chan)
    end
    return nil, "snapshot too large", "error"
end

-- Send a record that expects a reply and wait for it.
--   rtype   REC.ACCESS / REC.REWRITE / REC.HEADER_FILTER
--   encode  function(W, conf_id, arg) writing the snapshot map into W
--   timeout milliseconds
-- Returns reply (struct shmring_client_reply *), payload (keep it alive
-- while using the reply), or nil, err, kind where kind is "unavailable"
-- (503), "deadline" (504) or "error" (500).
function _M.call(rtype, plugin, conf, encode, arg, timeout)
    if not initialized then
        _M.init_worker() -- the host forgot init_worker_by_lua: do it now
    end
    local ok, why = ensure()
    if not ok then
        stats.unavailable = stats.unavailable + 1
        return nil, why, "unavailable"
    end
    stats.requests = stats.requests + 1
    local deadline = ngx_now() + (timeout or 1000) / 1000
    local conf_id = conf_id_of(plugin, conf)
    for attempt = 1, 2 do
        local req_id, err, kind = submit(rtype, plugin, conf, conf_id, encode, arg)
        if not req_id then
            return nil, err, kind
        end
        local p = { reply = false, err = false, sema = false }
        pending[req_id] = p
        npending = npending + 1
        ok, why = wait_reply(req_id, p, deadline)
        if not ok then
            if why == "deadline" then
                -- A dead daemon explains a missed deadline: say unavailable.
                local alive, down = ensure()
                if not alive then
                    stats.unavailable = stats.unavailable + 1
                    return nil, down, "unavailable"
                end
                stats.deadline = stats.deadline + 1
                return nil, "deadline passed", "deadline"
            end
            stats.unavailable = stats.unavailable + 1
            return nil, why, "unavailable"
        end
        local payload = p.reply
        local rc = C.shmring_client_decode_reply(decoder, payload, #payload, reply_box)
        if rc < 0 then
            stats.errors = stats.errors + 1
            return nil, "bad reply: " .. core.strerror(rc), "error"
        end
        local r = reply_box[0]
        if r.status == REPLY.OK then
            return r, payload
        end
        if r.status == REPLY.UNKNOWN_CONF and attempt == 1 then
            -- The daemon lost our conf (worker restarted): register again.
            stats.unknown_conf = stats.unknown_conf + 1
            conf_registered[conf_id] = nil
            if not ensure() then
                return nil, "daemon gone", "unavailable"
            end
        else
            stats.errors = stats.errors + 1
            local e = r.error.ptr ~= nil and ffi_string(r.error.ptr, r.error.len)
                or ("status " .. tostring(r.status))
            return nil, "plugin " .. plugin .. ": " .. e, "error"
        end
    end
    return nil, "unknown conf after re-registration", "error"
end

-- Fire and forget (LOG): no reply, no wait. Returns true or nil, err.
-- The only replies LOG records get say "unknown conf" (see drain); with no
-- request waiting the reaper sleeps, so look at the CQ here (an empty CQ
-- costs one peek): after a daemon reload a log-only worker re-registers and
-- resends instead of losing its entries, and the CQ never fills up. arg is
-- kept (by reference) for that resend: the caller must not reuse it.
function _M.send(rtype, plugin, conf, encode, arg)
    if not initialized then
        _M.init_worker()
    end
    local ok, why = ensure()
    if not ok then
        return nil, why
    end
    drain()
    local conf_id = conf_id_of(plugin, conf)
    local req_id, err = submit(rtype, plugin, conf, conf_id, encode, arg)
    if not req_id then
        return nil, err
    end
    keep(req_id, rtype, plugin, conf, encode, arg)
    return true
end

---------------------------------------------------------------------------
-- Worker lifecycle.

local function release()
    if chan ~= nil or inst ~= nil then
        detach("worker exiting")
    end
end

-- Runs when the worker starts to exit (a timer far in the future fires
-- prematurely then). Requests still in flight may need the channel (and
-- their LOG records): release once the worker has been quiet for a second.
local function on_exit(premature)
    if not premature then
        return
    end
    local give_up = ngx_now() + 30
    while (npending > 0 or ngx_now() - last_submit < 1) and ngx_now() < give_up do
        ngx_sleep(0.1)
    end
    exiting_release = true
    release()
end

-- init_worker: claim a channel now if the daemon is up (later otherwise),
-- start the reaper, arrange the release at exit.
function _M.init_worker(opts)
    if opts then
        _M.configure(opts)
    end
    if initialized then
        return
    end
    initialized = true
    if not hb_ns then
        hb_ns = cfg.heartbeat_timeout_ms * 1e6
    end
    local pid = ngx.worker.pid()
    req_base = (pid % 1048576) * 4294967296
    reaper_wake = semaphore.new(0)
    flush_wake = semaphore.new(0)
    local ok, err = ensure()
    if not ok then
        ngx_log(WARN, "shmring: ", err, " (will retry on traffic)")
    end
    start_reaper()
    start_flusher()
    ngx.timer.at(365 * 86400, on_exit)
end

-- exit_worker_by_lua: give the channel back now.
function _M.exit_worker()
    exiting_release = true
    release()
end

function _M.channel_index()
    return chan ~= nil and C.shmring_chan_index(chan) or nil
end

function _M.gen()
    return gen
end

return _M
