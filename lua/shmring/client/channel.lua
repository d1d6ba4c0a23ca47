-- shmring.client.channel: this worker's channel. Loads the library, attaches
-- to the daemon's instance and claims a free channel (CAS on the owner word
-- with pid + start time, so an old worker still draining after `nginx -s
-- reload` and its new namesake never share a channel), notices at once a
-- dead daemon (heartbeat) or a re-created one (closed flag, new epoch), and
-- gives the channel back.
local ffi = require("ffi")
local core = require("shmring.core")
local config = require("shmring.client.config")
local pending = require("shmring.client.pending")

local ngx = ngx
local ngx_now = ngx.now
local ngx_log, NOTICE = ngx.log, ngx.NOTICE
local cfg, stats = config.cfg, config.stats

local _M = {
    C = nil,         -- the loaded library
    inst = nil,      -- struct shmring_instance * (ours, from attach)
    chan = nil,      -- struct shmring_chan * (claimed)
    gen = 0,         -- claim generation: bumps on every successful claim
    exiting = false, -- the worker is giving its channel back: never attach again
}

local next_attach = 0
local last_attach_err = "not attached"
local inst_box = ffi.new("struct shmring_instance *[1]")
local chan_box = ffi.new("struct shmring_chan *[1]")

-- The uid that must own the instance directory, resolved once (it may ask
-- NSS); -1 = this worker's own. nil, err for a daemon_user that does not exist.
local owner_uid
function _M.daemon_uid(C)
    if owner_uid then
        return owner_uid
    end
    local name = cfg.daemon_user
    local uid = tonumber(C.shmring_user_uid(name or "shmring"))
    if uid < 0 then
        if name then
            return nil, "unknown daemon_user '" .. name .. "'"
        end
        uid = -1
    end
    owner_uid = uid
    return uid
end

local function heartbeat_ns()
    return cfg.heartbeat_timeout_ms * 1e6
end

function _M.load_lib()
    if _M.C then
        return _M.C
    end
    local lib, err = core.load_decoder(cfg.lib)
    if not lib then
        return nil, err
    end
    _M.C = lib
    return lib
end

function _M.detach(why)
    pending.fail_all(why or "unavailable")
    local C = _M.C
    -- The doorbell cosocket belongs to the reaper's light thread: only it
    -- may close it (it sees the claim generation changed).
    if _M.chan ~= nil then
        C.shmring_chan_release(_M.chan)
        _M.chan = nil
    end
    if _M.inst ~= nil then
        C.shmring_instance_close(_M.inst, 0)
        _M.inst = nil
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
    local C, err = _M.load_lib()
    if not C then
        last_attach_err = err
        return nil, err
    end
    local owner
    owner, err = _M.daemon_uid(C)
    if not owner then
        last_attach_err = err
        return nil, err
    end
    local rc = C.shmring_instance_attach_owned(cfg.dir, owner, inst_box)
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
    _M.inst, _M.chan = i, chan_box[0]
    _M.gen = _M.gen + 1
    stats.reattach = stats.reattach + 1
    ngx_log(NOTICE, "shmring: worker ", ngx.worker.pid(), " claimed channel ",
        C.shmring_chan_index(_M.chan), " of ", cfg.dir)
    return true
end

-- Make sure the channel is usable now. Returns true, or nil and why
-- (never waits: a dead daemon is seen from the heartbeat or closed flag).
function _M.ensure()
    if _M.chan ~= nil then
        local rc = _M.C.shmring_client_health(_M.inst, _M.chan, heartbeat_ns())
        if rc == 0 then
            return true
        end
        if rc == core.ETIMEDOUT then
            return nil, "daemon heartbeat stale"
        end
        -- Closed or re-created (new epoch): start over with the new one.
        _M.detach("daemon restarted")
    end
    if _M.exiting then
        return nil, "worker exiting"
    end
    return attach()
end

function _M.health()
    if _M.chan == nil then
        return nil, last_attach_err
    end
    local rc = _M.C.shmring_client_health(_M.inst, _M.chan, heartbeat_ns())
    if rc == 0 then
        return true
    end
    return nil, core.strerror(rc)
end

-- The first claim of a record: claim_bytes, or less on a small ring.
function _M.first_cap()
    local max = _M.C.shmring_chan_max_payload(_M.chan)
    return cfg.claim_bytes < max and cfg.claim_bytes or max
end

return _M
