-- shmring.client: one nginx worker's side of a shmring channel, and the
-- module every host calls (shmring.phase, shmring.ngx, shmring.kong).
--
-- Per worker (one LuaJIT state = one nginx worker = one producer), each job
-- in its own file under shmring/client/:
--   channel  attach to the daemon's instance, claim a free channel, notice
--            a dead daemon from the heartbeat or the closed flag at once;
--   confs    conf ids, registered once per config and claim;
--   encode   records written straight into the SQ through C msgpack writers;
--   submit   one record (its CONF first when needed) into the SQ;
--   reaper   replies to their requests, and the light thread that waits on
--            the doorbell while requests wait;
--   flusher  one SQ publish per event-loop turn (batch_publish);
--   resend   LOG records answered "unknown conf", sent once more;
--   backlog  LOG records waiting in the worker while the SQ has no room;
--   pending  request ids and the requests waiting for a reply;
--   thread   starting the light threads (reaper, flusher);
--   config   tunables and counters.
-- This file: waiting for a reply without blocking nginx and without
-- spinning while idle (wait strategies, docs/gateway.md), call/send, and
-- the worker's lifecycle.
--
-- Hosts (shmring.ngx, shmring.kong) build snapshots and apply actions; this
-- module knows nothing of HTTP.
local semaphore = require("ngx.semaphore")
local core = require("shmring.core")
local options = require("shmring.options")
local config = require("shmring.client.config")
local channel = require("shmring.client.channel")
local confs = require("shmring.client.confs")
local encode = require("shmring.client.encode")
local pending = require("shmring.client.pending")
local reaper = require("shmring.client.reaper")
local flusher = require("shmring.client.flusher")
local resend = require("shmring.client.resend")
local backlog = require("shmring.client.backlog")
local submit_mod = require("shmring.client.submit")
local thread = require("shmring.client.thread")

local ngx = ngx
local ngx_now = ngx.now
local ngx_sleep = ngx.sleep
local ngx_log, WARN = ngx.log, ngx.WARN
local cfg, stats = config.cfg, config.stats
local submit, drain = submit_mod.submit, reaper.drain
local REPLY = core.REPLY

local _M = { _VERSION = "0.1.0" }

_M.config = cfg
_M.stats = stats

local initialized = false -- init_worker ran in this worker

function _M.configure(opts)
    options.apply(cfg, opts, { lib = true }, "shmring.client")
end

_M.ensure = channel.ensure
_M.health = channel.health
_M.drain = drain
_M.enc_value = encode.enc_value
_M.conf_payload = encode.conf_payload

-- The msgpack writer records are written through (shmring.socket points it
-- at its frame buffer for the duration of one frame).
function _M.w()
    return encode.W
end

---------------------------------------------------------------------------
-- Waiting.

-- A free list: get() takes a kept item or makes one with new(), put(x)
-- keeps x for a later get().
local function free_list(new)
    local items, n = {}, 0
    local function get()
        if n > 0 then
            local x = items[n]
            items[n] = nil
            n = n - 1
            return x
        end
        return new()
    end
    local function put(x)
        n = n + 1
        items[n] = x
    end
    return get, put
end

-- Semaphores that ended a wait by a post are reused; one that timed out
-- is dropped (a post may still land on it).
local sema_get, sema_put = free_list(function()
    return semaphore.new(0)
end)

-- A request's waiting state (what the reaper fills in), reused: no table
-- per request. Back in the list once the request has its answer or gave
-- up: the pending table holds it only until then.
local waiter_get, waiter_keep = free_list(function()
    return { reply = false, reply_len = 0, err = false, sema = false }
end)

local function waiter_put(p)
    p.reply, p.reply_len, p.err, p.sema = false, 0, false, false
    waiter_keep(p)
end

-- Wait for p's reply until deadline (ngx.now() seconds). Returns true, or
-- nil and "deadline" / why the channel failed.
local function wait_reply(id, p, deadline)
    if cfg.wait ~= "poll" and (reaper.running or reaper.start()) then
        local s = sema_get()
        p.sema = s
        if reaper.idle then
            reaper.wake:post(1)
        end
        local remaining = deadline - ngx_now()
        local ok = remaining > 0 and s:wait(remaining)
        if ok then
            sema_put(s)
        end
        if p.reply then
            return true
        end
        if p.err then
            return nil, p.err
        end
        pending.take(id)
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
            pending.take(id)
            return nil, "deadline"
        end
        local ok, why = channel.ensure()
        if not ok then
            pending.take(id)
            return nil, why
        end
        stats.poll_yields = stats.poll_yields + 1
        ngx_sleep(cfg.poll_ms / 1000)
    end
end

-- Answer without yielding: while the daemon worker serving our channel is
-- awake (it has not announced a futex sleep), a reply comes in about one
-- cross-core round trip plus the plugin's work, less than a semaphore's
-- yield and resume. The request then publishes its record at once and
-- busy-waits in C for the CQ, at most `bound` ns: 4x the moving average
-- of the waits that got a reply, between 2 us and spin_max_us, never past
-- the deadline; the C side gives up as soon as the worker goes to sleep.
-- Eight misses in a row (a busy or stopped daemon) turn spinning off for
-- 10 ms. With the worker asleep, nothing spins: the semaphore waits.
local spin_avg_ns = 2000
local spin_misses, spin_off_until = 0, 0

local function spin_wanted()
    if cfg.spin_max_us <= 0 or (spin_off_until > 0 and ngx_now() < spin_off_until) then
        return false
    end
    return channel.C.shmring_client_server_awake(channel.chan) == 1
end

-- One busy-wait in C for the CQ, at most left ns, then a drain if it saw
-- a record. Returns the ns waited, <= 0 if it gave up (the worker went to
-- sleep, or the bound passed with nothing).
local function spin_step(left)
    local ns = tonumber(channel.C.shmring_client_spin(channel.chan, left))
    if ns > 0 then
        drain() -- wakes any other waiter whose reply came first
    end
    return ns
end

-- Further waits when another request's reply came first: a loop of its own,
-- off the common path (one wait, one drain), for the same reason as
-- reaper.drain's.
local function spin_more(p, budget, waited)
    while channel.chan ~= nil and budget - waited >= 1 do
        local ns = spin_step(budget - waited)
        if ns <= 0 then
            break
        end
        waited = waited + ns
        if p.reply or p.err then
            break
        end
    end
    return waited
end

-- Spin, then drain, until p has its answer or the bound is spent. Returns
-- true if p was answered (reply or error) without yielding.
local function spin_for_reply(p, deadline)
    local max = cfg.spin_max_us * 1000
    local budget = spin_avg_ns * 4
    budget = budget < 2000 and 2000 or budget > max and max or budget
    local left = (deadline - ngx_now()) * 1e9
    if budget > left then
        budget = left
    end
    local waited = budget >= 1 and spin_step(budget) or 0
    if waited > 0 and not (p.reply or p.err) then
        waited = spin_more(p, budget, waited)
    end
    if p.reply or p.err then
        spin_avg_ns = spin_avg_ns + (waited - spin_avg_ns) / 8
        spin_misses = 0
        stats.spin_hits = stats.spin_hits + 1
        return true
    end
    stats.spin_misses = stats.spin_misses + 1
    spin_misses = spin_misses + 1
    if spin_misses >= 8 then
        spin_misses = 0
        spin_off_until = ngx_now() + 0.01
    end
    return false
end

---------------------------------------------------------------------------
-- Sending.

-- Send a record that expects a reply and wait for it.
--   rtype   REC.ACCESS / REC.REWRITE / REC.HEADER_FILTER
--   encode  function(W, conf_id, arg) writing the snapshot map into W
--   timeout milliseconds
-- Returns reply (struct shmring_client_reply *, status OK or NEED_ENTITIES:
-- see shmring.entities), payload (keep it alive
-- while using the reply), or nil, err, kind where kind is "unavailable"
-- (503), "deadline" (504) or "error" (500).
function _M.call(rtype, plugin, conf, encode_payload, arg, timeout)
    if not initialized then
        _M.init_worker() -- the host forgot init_worker_by_lua: do it now
    end
    local ok, why = channel.ensure()
    if not ok then
        stats.unavailable = stats.unavailable + 1
        return nil, why, "unavailable"
    end
    stats.requests = stats.requests + 1
    local deadline = ngx_now() + (timeout or 1000) / 1000
    local conf_id = confs.id_of(plugin, conf)
    for attempt = 1, 2 do
        local spin = spin_wanted()
        local req_id, err, kind = submit(rtype, plugin, conf, conf_id, encode_payload, arg, spin)
        if not req_id then
            return nil, err, kind
        end
        local p = waiter_get()
        pending.add(req_id, p)
        if spin and spin_for_reply(p, deadline) then
            ok, why = p.reply and true, p.err
        else
            ok, why = wait_reply(req_id, p, deadline)
        end
        local payload, reply_len = p.reply, p.reply_len -- bytes (uint8_t[?]), see reaper.drain
        waiter_put(p)
        if not ok then
            if why == "deadline" then
                -- A dead daemon explains a missed deadline: say unavailable.
                local alive, down = channel.ensure()
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
        local r, rc = core.decode_reply(payload, reply_len)
        if not r then
            stats.errors = stats.errors + 1
            return nil, "bad reply: " .. core.strerror(rc), "error"
        end
        if r.status == REPLY.OK or r.status == REPLY.NEED_ENTITIES then
            return r, payload
        end
        if r.status == REPLY.UNKNOWN_CONF and attempt == 1 then
            -- The daemon lost our conf (worker restarted): register again.
            stats.unknown_conf = stats.unknown_conf + 1
            confs.forget(conf_id)
            if not channel.ensure() then
                return nil, "daemon gone", "unavailable"
            end
        else
            stats.errors = stats.errors + 1
            return nil, "plugin " .. plugin .. ": " .. core.reply_error(r), "error"
        end
    end
    return nil, "unknown conf after re-registration", "error"
end

-- The channel, with init_worker done if the host forgot it: true or nil, why.
local function writable()
    if not initialized then
        _M.init_worker()
    end
    return channel.ensure()
end

-- Fire and forget (LOG): no reply, no wait. Returns true or nil, err.
-- The only replies LOG records get say "unknown conf" (see drain); with no
-- request waiting the reaper sleeps, so look at the CQ here (an empty CQ
-- costs one peek): after a daemon reload a log-only worker re-registers and
-- resends instead of losing its entries, and the CQ never fills up. arg is
-- kept (by reference) for that resend, or while it waits in the backlog
-- (the SQ has no room for it now): the caller must not reuse it.
function _M.send(rtype, plugin, conf, encode_payload, arg)
    local ok, why = writable()
    if not ok then
        return nil, why
    end
    drain()
    if (backlog.n > 0 and not backlog.flush()) or not backlog.room() then
        return backlog.add(rtype, plugin, conf, encode_payload, arg)
    end
    local conf_id = confs.id_of(plugin, conf)
    local req_id, err = submit(rtype, plugin, conf, conf_id, encode_payload, arg)
    if not req_id then
        if err == submit_mod.FULL then
            return backlog.add(rtype, plugin, conf, encode_payload, arg)
        end
        return nil, err
    end
    resend.keep(req_id, rtype, plugin, conf, encode_payload, arg)
    return true
end

-- A record that names no config and gets no reply (FORGET): written now if
-- the channel is up. Returns true, or nil and why (the caller must make up
-- for a lost one).
function _M.send_plain(rtype, encode_payload, arg)
    local ok, why = writable()
    if not ok then
        return nil, why
    end
    local req_id, err = submit(rtype, nil, nil, nil, encode_payload, arg)
    return req_id and true, err
end

---------------------------------------------------------------------------
-- Worker lifecycle.

local function release()
    if channel.chan ~= nil or channel.inst ~= nil then
        channel.detach("worker exiting")
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
    while (pending.n > 0 or backlog.n > 0 or ngx_now() - submit_mod.last < 1)
        and ngx_now() < give_up do
        if backlog.n > 0 and channel.ensure() then
            backlog.flush()
        end
        ngx_sleep(0.1)
    end
    channel.exiting = true
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
    pending.set_base(ngx.worker.pid())
    local ok, err = channel.ensure()
    if not ok then
        ngx_log(WARN, "shmring: ", err, " (will retry on traffic)")
    end
    reaper.start()
    flusher.start()
    thread.at(365 * 86400, on_exit)
end

-- exit_worker_by_lua: give the channel back now.
function _M.exit_worker()
    channel.exiting = true
    release()
end

function _M.channel_index()
    return channel.chan ~= nil and channel.C.shmring_chan_index(channel.chan) or nil
end

function _M.gen()
    return channel.gen
end

return _M
