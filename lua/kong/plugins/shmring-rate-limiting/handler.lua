-- Kong stub of the `rate-limiting` C plugin (plugins/rate-limiting/): Kong's
-- rate-limiting, counted exactly across shmringd's workers (docs/plugins.md).
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
--
-- limit_by = "header" reads config.header_name: the snapshot of a request
-- carries that one header for such a config and no header otherwise (one
-- shmring.phase state per config table), instead of every header.
local kong_stub = require("shmring.kong")
local phase = require("shmring.phase")
local plugins = require("shmring.plugins")

local lower, setmetatable, type = string.lower, setmetatable, type

local handler = kong_stub.handler("rate-limiting", { PRIORITY = 910, VERSION = "0.1.0" })

local base = plugins.get("rate-limiting")
local states = setmetatable({}, { __mode = "k" })
local NO_HEADERS = {}

local function state_for(conf)
    local st = states[conf]
    if st then
        return st
    end
    local headers = NO_HEADERS
    if conf.limit_by == "header" and type(conf.header_name) == "string" then
        headers = { lower(conf.header_name) }
    end
    local spec = setmetatable({ headers = headers, query = NO_HEADERS }, { __index = base })
    st = phase.state(kong_stub.host, "rate-limiting", spec)
    states[conf] = st
    return st
end

function handler:access(conf)
    return phase.access(state_for(conf), conf)
end

return handler
