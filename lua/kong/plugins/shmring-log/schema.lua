-- Schema of the shmring-log Kong plugin: file-log's `path` and `reopen`,
-- tcp-log's / udp-log's `host` (a name or an IP) and `port` and tcp-log's
-- `tls` and `tls_sni`, chosen by `sink`, and the
-- batching of the daemon's sink: `max_batch_size` (entries),
-- `flush_interval` (seconds), `max_buffered_bytes` (memory bound per
-- shmringd worker; past it entries are dropped and counted). The C plugin
-- checks the same rules and answers a refused config with the reason.
-- `fail_open` (default true: logging never fails a request) and `timeout`
-- are the gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-log",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { sink = { type = "string", default = "file", required = true,
                           one_of = { "file", "tcp", "udp" } } },
                { path = { type = "string", len_min = 1, match = "^/[^?]*$" } },
                { reopen = { type = "boolean", required = true, default = false } },
                { host = { type = "string", len_min = 1 } },
                { port = { type = "integer", between = { 1, 65535 } } },
                { tls = { type = "boolean", required = true, default = false } },
                { tls_sni = { type = "string" } },
                { max_batch_size = { type = "integer", between = { 1, 1000000 } } },
                { flush_interval = { type = "number", between = { 0.001, 3600 } } },
                { max_buffered_bytes = { type = "integer", between = { 4096, 2147483648 } } },
                { fail_open = { type = "boolean", default = true } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
            entity_checks = {
                { conditional = { if_field = "sink", if_match = { eq = "file" },
                                  then_field = "path", then_match = { required = true } } },
                { conditional = { if_field = "sink", if_match = { one_of = { "tcp", "udp" } },
                                  then_field = "host", then_match = { required = true } } },
                { conditional = { if_field = "sink", if_match = { one_of = { "tcp", "udp" } },
                                  then_field = "port", then_match = { required = true } } },
            },
        } },
    },
}
