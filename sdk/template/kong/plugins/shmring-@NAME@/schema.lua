-- Schema of the shmring-@NAME@ Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema @NAME@ --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
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
                { log_to = { type = "string", len_min = 1, len_max = 256 } },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
