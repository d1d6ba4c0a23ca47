-- Schema of the shmring-hello Kong plugin. `name`/`value` go to the C
-- plugin; `fail_open` and `timeout` (ms) are the gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-hello",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { name = { type = "string", default = "X-Hello", len_min = 1 } },
                { value = { type = "string", default = "World", len_min = 1 } },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
