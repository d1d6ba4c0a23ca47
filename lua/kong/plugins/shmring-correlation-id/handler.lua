-- Kong stub of the `correlation-id` C plugin (plugins/correlation-id/): an id
-- per request in header_name (generated if absent), echoed downstream with
-- echo_downstream, kept in ctx as correlation_id for the log plugin.
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
return require("shmring.kong").handler("correlation-id", { PRIORITY = 100001, VERSION = "0.1.0" })
