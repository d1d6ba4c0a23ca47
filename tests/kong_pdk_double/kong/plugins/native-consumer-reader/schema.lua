-- Schema of native-consumer-reader (see its handler): no settings.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "native-consumer-reader",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = { type = "record", fields = {} } },
    },
}
