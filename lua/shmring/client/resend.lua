-- shmring.client.resend: fire-and-forget records kept for one resend. A LOG
-- answered "unknown conf" (a daemon reload or worker restart emptied the
-- conf tables: every record that waited in the SQ meanwhile gets that
-- answer) is sent again once its conf is registered again. The SQ holds a
-- few thousand records at most, so the last KEEP sends cover every one
-- still waiting in it; a slot holds references only (the entry table), no
-- copy.
local config = require("shmring.client.config")
local confs = require("shmring.client.confs")
local submit = require("shmring.client.submit").submit

local stats = config.stats

local _M = {}

local KEEP = 4096
local kept_id, kept_type, kept_plugin, kept_conf, kept_encode, kept_arg = {}, {}, {}, {}, {}, {}
local resend, nresend = {}, 0

function _M.keep(req_id, rtype, plugin, conf, encode, arg)
    local slot = req_id % KEEP + 1
    kept_id[slot], kept_type[slot], kept_plugin[slot] = req_id, rtype, plugin
    kept_conf[slot], kept_encode[slot], kept_arg[slot] = conf, encode, arg
end

-- The daemon answered "unknown conf" to req_id: resend it if it is kept.
function _M.mark(req_id)
    local slot = req_id % KEEP + 1
    if kept_id[slot] == req_id then
        kept_id[slot] = false
        nresend = nresend + 1
        resend[nresend] = slot
    end
end

-- Send every marked record again (not kept again: one resend only).
function _M.run()
    if nresend == 0 then
        return
    end
    local n = nresend
    nresend = 0
    for i = 1, n do
        local slot = resend[i]
        resend[i] = nil
        local plugin, conf = kept_plugin[slot], kept_conf[slot]
        if submit(kept_type[slot], plugin, conf, confs.id_of(plugin, conf), kept_encode[slot],
            kept_arg[slot]) then
            stats.resent = stats.resent + 1
        end
        kept_conf[slot], kept_encode[slot], kept_arg[slot] = nil, nil, nil
    end
end

return _M
