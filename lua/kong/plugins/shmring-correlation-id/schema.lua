-- Schema of the shmring-correlation-id Kong plugin: Kong's fields and
-- defaults. `fail_open` (default true: an id is not worth failing a
-- request) and `timeout` (ms) are the gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-correlation-id",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { header_name = { type = "string", default = "Kong-Request-ID", len_min = 1 } },
                { generator = { type = "string", default = "uuid#counter", required = true,
                                one_of = { "uuid", "uuid#counter", "tracker" } } },
                { echo_downstream = { type = "boolean", required = true, default = false } },
                { fail_open = { type = "boolean", default = true } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
