-- Kong stub of the `rate-limiting` C plugin (plugins/rate-limiting/): Kong's
-- rate-limiting, counted exactly across shmringd's workers (docs/plugins.md).
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
--
-- limit_by = "header" reads config.header_name: the snapshot of a request
-- carries that one header for such a config and no header otherwise, instead
-- of every header.
--
-- Kong keys the counters by where the plugin is configured (the route_id
-- and service_id it injects into the config; none for a global plugin),
-- not by the route that matched: a plugin on a service counts once for all
-- its routes. The snapshot's route_id / service_id are those; with
-- limit_by = "service" the service is the one that matched (Kong's
-- identifier), which the key then carries anyway.
local lower, type = string.lower, type

local NO_HEADERS = {}

local function snapshot(conf)
    local headers = NO_HEADERS
    if conf.limit_by == "header" and type(conf.header_name) == "string" then
        headers = { lower(conf.header_name) }
    end
    return {
        headers = headers, query = NO_HEADERS,
        route_id = conf.route_id or "",
        service_id = conf.limit_by ~= "service" and (conf.service_id or "") or nil,
    }
end

return require("shmring.kong").handler("rate-limiting",
    { PRIORITY = 910, VERSION = "0.1.0", snapshot = snapshot, error_exits = true })
