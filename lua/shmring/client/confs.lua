-- shmring.client.confs: conf ids, one per config table (by identity, then
-- by content for hosts that build a fresh table per request), and their
-- registration: a CONF record once per id and claim (a new claim or a new
-- daemon epoch means a new registration).
local core = require("shmring.core")
local config = require("shmring.client.config")
local channel = require("shmring.client.channel")
local encode = require("shmring.client.encode")
local pending = require("shmring.client.pending")

local ngx = ngx
local ngx_now = ngx.now
local ngx_log, ERR = ngx.log, ngx.ERR
local pairs, setmetatable = pairs, setmetatable
local stats = config.stats
local REC = core.REC

local _M = {}

local conf_by_table = setmetatable({}, { __mode = "k" })
local conf_by_content = {}
local registered = {} -- id -> claim generation it was registered in
local next_conf_id = 0

function _M.id_of(plugin, conf)
    local id = conf_by_table[conf]
    if id then
        return id
    end
    local key = encode.content_key(plugin, conf)
    id = conf_by_content[key]
    if not id then
        next_conf_id = next_conf_id + 1
        id = next_conf_id
        conf_by_content[key] = id
    end
    conf_by_table[conf] = id
    return id
end

function _M.is_registered(id)
    return registered[id] == channel.gen
end

-- The daemon does not know id (or refused it): register it again before
-- the next record that uses it.
function _M.forget(id)
    registered[id] = nil
end

-- The daemon lost every conf of ours (its worker restarted or reloaded).
function _M.forget_all()
    for k in pairs(registered) do
        registered[k] = nil
    end
end

-- Write the CONF record for (plugin, conf) under id; committed, not
-- published (the request that needs it publishes both together: the daemon
-- reads the SQ in order, so the ACCESS after it finds the conf). 0 or the
-- claim's result (SHMRING_FULL, -errno).
function _M.write(plugin, conf, id)
    local C, chan, msg = channel.C, channel.chan, encode.msg
    local cap, req_id, rc = channel.first_cap(), nil, nil
    for _ = 1, 2 do
        rc = C.shmring_client_begin(chan, cap, msg)
        if rc ~= 0 then
            return rc
        end
        encode.conf_payload(plugin, conf, id)
        req_id = pending.next_id()
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
    -- Its reply is checked by whoever drains the CQ (on_reply): a refusal
    -- is logged and the id forgotten, so the next request retries.
    pending.add(req_id, { conf_id = id, plugin = plugin, expires = ngx_now() + 5 })
    registered[id] = channel.gen
    stats.conf_registrations = stats.conf_registrations + 1
    return 0
end

-- The reply to a CONF record: p is its pending entry.
function _M.on_reply(p, payload)
    local refused = core.conf_refusal(payload)
    if refused then
        registered[p.conf_id] = nil
        ngx_log(ERR, "shmring: plugin ", p.plugin, " refused its config: ", refused)
    end
end

return _M
