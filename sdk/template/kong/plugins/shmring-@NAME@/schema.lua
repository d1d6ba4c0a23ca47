-- Schema of the shmring-@NAME@ Kong plugin. `header`, `value` and `log_to`
-- go to the C plugin (@ID@.c, which refuses other keys); `fail_open` and
-- `timeout` (ms) are the gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-@NAME@",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { header = { type = "string", default = "X-@NAME@", len_min = 1, len_max = 256 } },
                { value = { type = "string", default = "hello", len_min = 1, len_max = 256 } },
                { log_to = { type = "string", required = false, len_min = 1, len_max = 256 } },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
