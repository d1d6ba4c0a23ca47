-- Schema of the shmring-hello Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema hello --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-hello",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { name = { type = "string", default = "X-Hello", len_min = 1, len_max = 256 } },
                { value = { type = "string", default = "World", len_min = 1, len_max = 256 } },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
