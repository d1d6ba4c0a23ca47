-- Schema of file-log (Kong's path and reopen).
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "file-log",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { path = { type = "string", required = true, match = "^[^*&%%\\`]+$" } },
                { reopen = { type = "boolean", required = true, default = false } },
            },
        } },
    },
}
