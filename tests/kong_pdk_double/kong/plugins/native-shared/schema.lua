-- Schema of native-shared (see its handler).
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "native-shared",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = { type = "record", fields = {
            { values = { type = "map", keys = { type = "string" }, values = { type = "string" },
                         required = true, default = {} } },
        } } },
    },
}
