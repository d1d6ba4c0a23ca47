-- Schema of the shmring-correlation-id Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema correlation-id --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-correlation-id",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { header_name = { type = "string", default = "Kong-Request-ID", len_min = 1 } },
                { generator = { type = "string", required = true, default = "uuid#counter", one_of = { "uuid", "uuid#counter", "tracker" } } },
                { echo_downstream = { type = "boolean", required = true, default = false } },
                { fail_open = { type = "boolean", default = true } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
