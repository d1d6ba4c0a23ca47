-- Kong stub of the `correlation-id` C plugin (plugins/correlation-id/): an id
-- per request in header_name (generated if absent), echoed downstream with
-- echo_downstream, kept in ctx as correlation_id for the log plugin.
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
--
-- The descriptor declares every header (header_name is configurable); the
-- plugin reads only header_name, so the snapshot of a request carries just
-- that one (the first value, as Kong's kong.request.get_header), and the
-- connection fields only for the `tracker` generator, which joins them.
local lower, type = string.lower, type

local TRACKER_FIELDS, NO_FIELDS = { "connection" }, {}

local function snapshot(conf)
    local name = type(conf.header_name) == "string" and conf.header_name or "Kong-Request-ID"
    return { headers = { lower(name) }, query = {},
             fields = conf.generator == "tracker" and TRACKER_FIELDS or NO_FIELDS }
end

return require("shmring.kong").handler("correlation-id",
    { PRIORITY = 100001, VERSION = "0.1.0", snapshot = snapshot,
      serialize = { "correlation_id" } })
