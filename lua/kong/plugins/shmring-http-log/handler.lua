-- Kong stub of Kong's http-log, served by the `log` C plugin's http sink
-- (plugins/log/log_http.c; worker/sink_http.c sends the batches with
-- libcurl). In the log phase it sends kong.log.serialize()'s entry to
-- shmringd as a LOG record and returns at once; shmringd queues, batches,
-- retries and posts the entries as Kong's queue would (docs/plugins.md,
-- "http-log"). PRIORITY is Kong's http-log's.
--
-- Every shmring stub keeps a config's `timeout` for itself (the gateway's
-- wait for the daemon, never sent), but here it is Kong's request timeout:
-- it is sent as `http_timeout`.
local kong_stub = require("shmring.kong")
local schema = require("kong.plugins.shmring-http-log.schema")

-- The schema the sent fields are picked by: Kong's, `timeout` renamed.
local sent = { name = schema.name, fields = {} }
for _, f in ipairs(schema.fields) do
    if f.config then
        local fields = {}
        for i, cf in ipairs(f.config.fields) do
            local k, def = next(cf)
            fields[i] = k == "timeout" and { http_timeout = def } or cf
        end
        f = { config = setmetatable({ fields = fields }, { __index = f.config }) }
    end
    sent.fields[#sent.fields + 1] = f
end

local h = kong_stub.handler("log", { PRIORITY = 12, VERSION = "0.1.0",
                                     stub = "shmring-http-log", schema = sent })

-- Kong's config table -> the same with http_timeout (one per table: the
-- client registers a config once per table).
local as_sent = setmetatable({}, { __mode = "k" })
local log = h.log
function h:log(conf)
    local c = as_sent[conf]
    if not c then
        c = setmetatable({ http_timeout = conf.timeout }, { __index = conf })
        as_sent[conf] = c
    end
    return log(self, c)
end

return h
