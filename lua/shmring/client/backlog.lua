-- shmring.client.backlog: fire-and-forget records (LOG) that wait in the
-- worker instead of the SQ, in the order they were sent.
--
-- The log phase cannot wait, and a daemon worker that is slow for a moment
-- (preempted on a busy host, a sink flush) lets LOG records pile up: with
-- no reply to wait for, nothing bounds how many are in flight. Written
-- straight into the SQ they would fill it, and then refuse the requests
-- that do wait for a reply ("ring full", 503). So a LOG record goes into
-- the SQ only while that leaves `room()` free for those; otherwise, and
-- while older ones wait, it waits here (references only, no copy), at most
-- cfg.log_backlog of them. A light thread writes them as the daemon frees
-- the space, looking every millisecond while any wait; none waits, no
-- thread runs. An entry is dropped (counted, logged) only when the backlog
-- is full or the daemon is gone.
local config = require("shmring.client.config")
local channel = require("shmring.client.channel")
local confs = require("shmring.client.confs")
local resend = require("shmring.client.resend")
local submit_mod = require("shmring.client.submit")
local thread = require("shmring.client.thread")

local ngx = ngx
local ngx_sleep = ngx.sleep
local ngx_log, ERR = ngx.log, ngx.ERR
local cfg, stats = config.cfg, config.stats
local submit = submit_mod.submit

local _M = {
    n = 0, -- records waiting
}

local q_type, q_plugin, q_conf, q_encode, q_arg = {}, {}, {}, {}, {}
local first, last = 1, 0
local running = false

local REC_HDR = 16

-- Whether a LOG record may go into the SQ now: a quarter of it stays free
-- for the requests waiting for a reply, and at least room for two of their
-- first claims (a claim may also need padding to the ring's end), less on
-- a ring too small for that.
function _M.room()
    local C, chan = channel.C, channel.chan
    local size = 2 * (C.shmring_chan_max_payload(chan) + REC_HDR)
    local claim = channel.first_cap() + REC_HDR
    local keep = size / 4
    if keep < 2 * claim then
        keep = 2 * claim
    end
    if keep > size - claim then
        keep = size - claim
    end
    return C.shmring_space(chan) >= keep + claim
end

local function pop()
    q_type[first], q_plugin[first], q_conf[first], q_encode[first], q_arg[first] =
        nil, nil, nil, nil, nil
    first = first + 1
    _M.n = _M.n - 1
end

local function drop_all(why)
    local n = _M.n
    while _M.n > 0 do
        pop()
    end
    first, last = 1, 0
    stats.log_dropped = stats.log_dropped + n
    ngx_log(ERR, "shmring: ", n, " waiting log entries dropped: ", why)
end

-- Write waiting records into the SQ, oldest first, while there is room.
-- Returns true once none waits.
local function flush()
    while _M.n > 0 and _M.room() do
        local plugin, conf = q_plugin[first], q_conf[first]
        local rtype, encode, arg = q_type[first], q_encode[first], q_arg[first]
        local req_id, err = submit(rtype, plugin, conf, confs.id_of(plugin, conf), encode, arg)
        if not req_id and err == submit_mod.FULL then
            break
        end
        pop()
        if req_id then
            resend.keep(req_id, rtype, plugin, conf, encode, arg)
        else
            stats.log_dropped = stats.log_dropped + 1
            ngx_log(ERR, "shmring: waiting log entry dropped: ", err)
        end
    end
    if _M.n == 0 then
        first, last = 1, 0
        return true
    end
    return false
end
_M.flush = flush

-- The worker's exit (shmring.client) writes what is left when this
-- thread cannot start or is cut short.
local function writer(premature)
    while _M.n > 0 and not premature do
        local ok, why = channel.ensure()
        if not ok then
            drop_all(why)
            break
        end
        if not flush() then
            ngx_sleep(0.001)
        end
    end
    running = false
end

-- Keep a record to write later. Returns true, or nil and why it was dropped.
function _M.add(rtype, plugin, conf, encode, arg)
    if _M.n >= cfg.log_backlog then
        stats.log_dropped = stats.log_dropped + 1
        return nil, "log backlog full"
    end
    last = last + 1
    q_type[last], q_plugin[last], q_conf[last], q_encode[last], q_arg[last] =
        rtype, plugin, conf, encode, arg
    _M.n = _M.n + 1
    stats.log_backlogged = stats.log_backlogged + 1
    if not running then
        running = thread.start(writer, "log backlog writer")
    end
    return true
end

return _M
