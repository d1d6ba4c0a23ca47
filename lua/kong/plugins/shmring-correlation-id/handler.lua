-- Kong stub of the `correlation-id` C plugin (plugins/correlation-id/): an id
-- per request in header_name (generated if absent), echoed downstream with
-- echo_downstream, kept in ctx as correlation_id for the log plugin.
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
--
-- The descriptor declares every header (header_name is configurable); the
-- plugin reads only header_name, so the snapshot of a request carries just
-- that one (the first value, as Kong's kong.request.get_header): one
-- shmring.phase state per config table.
local kong_stub = require("shmring.kong")
local phase = require("shmring.phase")
local plugins = require("shmring.plugins")

local lower, setmetatable, type = string.lower, setmetatable, type

local handler = kong_stub.handler("correlation-id", { PRIORITY = 100001, VERSION = "0.1.0" })

local base = plugins.get("correlation-id")
local states = setmetatable({}, { __mode = "k" })

local function state_for(conf)
    local st = states[conf]
    if st then
        return st
    end
    local name = type(conf.header_name) == "string" and conf.header_name or "Kong-Request-ID"
    local spec = setmetatable({ headers = { lower(name) }, query = {} }, { __index = base })
    st = phase.state(kong_stub.host, "correlation-id", spec)
    states[conf] = st
    return st
end

function handler:access(conf)
    return phase.access(state_for(conf), conf)
end

return handler
