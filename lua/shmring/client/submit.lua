-- shmring.client.submit: write one record into the SQ (its CONF first if
-- this claim has not registered the conf yet) and publish it, now or
-- through the flusher.
local core = require("shmring.core")
local config = require("shmring.client.config")
local channel = require("shmring.client.channel")
local confs = require("shmring.client.confs")
local encode = require("shmring.client.encode")
local flusher = require("shmring.client.flusher")
local pending = require("shmring.client.pending")

local ngx_now = ngx.now
local stats = config.stats

local _M = {
    last = 0, -- ngx.now() of the last record written
    FULL = "ring full", -- the error of a record the SQ had no room for
}

-- encode(W, conf_id, arg) writes the payload; publish_now: publish at once
-- (the request will spin for its reply) instead of leaving it to the
-- flusher. Returns the req_id, or nil, err, kind ("unavailable" or
-- "error", as shmring.client.call). conf_id nil: a record that names no
-- config (FORGET).
function _M.submit(rtype, plugin, conf, conf_id, encode_payload, arg, publish_now)
    local C, chan, msg = channel.C, channel.chan, encode.msg
    if conf_id and not confs.is_registered(conf_id) then
        local rc = confs.write(plugin, conf, conf_id)
        if rc ~= 0 then
            if rc == core.FULL then
                stats.ring_full = stats.ring_full + 1
                return nil, _M.FULL, "unavailable"
            end
            return nil, "conf: " .. core.strerror(rc), "unavailable"
        end
    end
    local cap = channel.first_cap()
    for _ = 1, 2 do
        local rc = C.shmring_client_begin(chan, cap, msg)
        if rc ~= 0 then
            if rc == core.FULL then
                stats.ring_full = stats.ring_full + 1
                C.shmring_publish(chan) -- a CONF may be waiting behind us
                return nil, _M.FULL, "unavailable"
            end
            return nil, core.strerror(rc), "unavailable"
        end
        encode_payload(encode.W, conf_id, arg)
        local req_id = pending.next_id()
        local later = flusher.idle and not publish_now
        rc = C.shmring_client_end(chan, msg, rtype, req_id, later and 0 or 1)
        if rc >= 0 then
            _M.last = ngx_now()
            if later then
                flusher.schedule()
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

return _M
