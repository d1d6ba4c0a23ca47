-- shmring.client.reaper: replies out of the CQ to their waiting requests
-- (drain), and the light thread that does it while requests wait (one per
-- worker, the doorbell strategy):
--
--   no request waiting      -> sleep on a semaphore (no CPU, no syscall)
--   requests waiting        -> drain the CQ, then arm the doorbell; if
--                              replies arrived meanwhile drain again, else
--                              block on the doorbell socket (cosocket),
--                              woken by the daemon's next CQ publish
local ffi = require("ffi")
local semaphore = require("ngx.semaphore")
local core = require("shmring.core")
local config = require("shmring.client.config")
local channel = require("shmring.client.channel")
local confs = require("shmring.client.confs")
local pending = require("shmring.client.pending")
local resend = require("shmring.client.resend")
local thread = require("shmring.client.thread")

local ngx = ngx
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local ngx_log, ERR = ngx.log, ngx.ERR
local pairs, tonumber = pairs, tonumber
local ffi_string, ffi_copy = ffi.string, ffi.copy
local reply_t = ffi.typeof("uint8_t[?]")
local cfg, stats = config.cfg, config.stats
local REC, REPLY = core.REC, core.REPLY

local _M = {
    running = false, -- the light thread exists
    idle = false,    -- it sleeps on wake: a new waiter must post it
    wake = nil,      -- its semaphore (start)
}

local rec = ffi.new("struct shmring_rec")

-- Hand one CQ record (rec) to its waiting request.
local function take(rec)
    if rec.type ~= REC.REPLY then
        return
    end
    local id = tonumber(rec.req_id)
    local p = pending.take(id)
    if p then
        if p.conf_id then
            confs.on_reply(p, ffi_string(rec.payload, rec.len))
        else
            -- A copy the request owns (the CQ space goes back at release),
            -- as bytes, not a Lua string: interning hashes a string and
            -- compares it with every live string of the same hash, and
            -- LuaJIT's sparse hash of long strings chains replies that
            -- differ in a few digits (rate-limiting's counters):
            -- microseconds per reply, growing with the garbage not yet
            -- collected.
            local len = rec.len
            local buf = reply_t(len)
            ffi_copy(buf, rec.payload, len)
            p.reply, p.reply_len = buf, len
            stats.replies = stats.replies + 1
            if p.sema then
                p.sema:post(1)
            end
        end
    else
        stats.late_replies = stats.late_replies + 1
        -- A fire-and-forget record (LOG) whose conf the daemon does not
        -- know: its worker restarted or reloaded with empty conf tables
        -- (docs/daemon.md), so none of ours is registered there any more:
        -- register again before the next record.
        local r = core.decode_reply(rec.payload, rec.len)
        if r and r.status == REPLY.UNKNOWN_CONF then
            stats.unknown_conf = stats.unknown_conf + 1
            confs.forget_all()
            resend.mark(id)
        end
    end
end

-- The records after a batch's second: a loop of their own, entered only
-- when a batch has more than two (the reaper's), so that it is compiled as
-- a loop trace. Returns the count so far and the last peek's result.
local function take_rest(chan, C, n)
    local rc
    repeat
        take(rec)
        n = n + 1
        rc = C.shmring_peek(chan, rec)
    until rc ~= 0
    return n, rc
end

-- Read every reply in the CQ and hand each to its waiting request.
-- Returns how many records were read.
--
-- No loop on the common paths (no record, one record: a request's own
-- drain after its spin, the log phase's): LuaJIT's root traces cannot
-- start at a loop that is left in its first pass, and a loop that keeps
-- being left that way is blacklisted, and with it every trace that would
-- pass through this function (the spin, the reaper, the log phase).
local function drain()
    local chan = channel.chan
    if chan == nil then
        return 0
    end
    local C = channel.C
    local n = 0
    local rc = C.shmring_peek(chan, rec)
    if rc == 0 then
        take(rec)
        n = 1
        rc = C.shmring_peek(chan, rec)
        if rc == 0 then
            n, rc = take_rest(chan, C, n)
        end
    end
    if rc < 0 then
        stats.errors = stats.errors + 1
        ngx_log(ERR, "shmring: completion ring: ", core.strerror(rc))
        if n > 0 then
            C.shmring_release(chan)
        end
        channel.detach("corrupt channel")
        return n
    end
    if n > 0 then
        C.shmring_release(chan)
    end
    resend.run()
    return n
end
_M.drain = drain

local doorbell_sock
local doorbell_gen = 0

local function doorbell_connect()
    if doorbell_sock then
        if doorbell_gen == channel.gen then
            return doorbell_sock
        end
        doorbell_sock:close() -- the channel's old doorbell
        doorbell_sock = nil
    end
    local C = channel.C
    local buf = ffi.new("char[256]")
    local n = C.shmring_doorbell_path(channel.inst, C.shmring_chan_index(channel.chan), buf, 256)
    if n < 0 then
        return nil, core.strerror(n)
    end
    local sock = ngx.socket.tcp()
    local ok, err = sock:connect("unix:" .. ffi_string(buf, n))
    if not ok then
        return nil, err
    end
    doorbell_sock, doorbell_gen = sock, channel.gen
    return sock
end

local function receive_bell(sock)
    if sock.receiveany then
        return sock:receiveany(64)
    end
    return sock:receive(1)
end

-- A CONF the daemon never answered must not keep the reaper awake.
local function expire_confs(now)
    for id, p in pairs(pending.by_id) do
        if p.expires and now > p.expires then
            pending.take(id)
            confs.forget(p.conf_id)
        end
    end
end

-- Block on the doorbell until the daemon publishes the CQ (or the
-- doorbell times out). Never ngx.sleep(0) instead: without OpenResty's
-- delayed-events patch (Debian's nginx) it re-arms a timer that expires in
-- the same timer pass, so it spins without letting any I/O or posted event
-- run (docs/gateway.md).
local function wait_doorbell()
    local sock = doorbell_connect()
    local armed = channel.chan -- a request may detach while we wait
    local C = channel.C
    if not sock then
        ngx_sleep(0.001) -- no doorbell: poll at 1 ms
    elseif C.shmring_doorbell_arm(armed) == 0 then
        stats.doorbell_waits = stats.doorbell_waits + 1
        -- Requests keep their own deadlines and a daemon that dies closes
        -- this connection (EOF wakes us at once); the timeout only bounds
        -- how long a reaper waiting for a hung daemon keeps its worker from
        -- exiting. nginx logs each timeout unless `lua_socket_log_errors
        -- off` (Kong's default; docs/gateway.md).
        sock:settimeout(cfg.doorbell_timeout_ms)
        -- Every byte waiting (one per ring), so stale rings do not cost a
        -- loop each.
        local _, err = receive_bell(sock)
        if err == "timeout" then
            stats.doorbell_timeouts = stats.doorbell_timeouts + 1
        elseif err then
            doorbell_sock = nil
            sock:close()
        end
        if channel.chan ~= nil and channel.chan == armed then
            C.shmring_doorbell_disarm(channel.chan)
        end
    end
end

local function reaper(premature)
    if premature then
        _M.running = false
        return
    end
    local next_health = 0
    while true do
        if pending.n == 0 then
            if ngx.worker.exiting() then
                break
            end
            _M.idle = true
            _M.wake:wait(1) -- idle: a post from the first submit, or a 1 s tick
            _M.idle = false
        else
            local n = drain()
            local now = ngx_now()
            if n == 0 and now >= next_health then
                -- A daemon dying under us: fail waiters now, not at deadline.
                next_health = now + 0.01
                local ok, why = channel.ensure()
                if not ok then
                    pending.fail_all(why)
                end
                expire_confs(now)
            end
            if pending.n > 0 and channel.chan ~= nil then
                wait_doorbell()
            end
        end
    end
    _M.running = false
end

-- Start the light thread (doorbell strategy only). Returns whether it runs.
function _M.start()
    _M.wake = _M.wake or semaphore.new(0)
    if _M.running or cfg.wait == "poll" then
        return _M.running
    end
    _M.running = thread.start(reaper, "reaper")
    return _M.running
end

return _M
