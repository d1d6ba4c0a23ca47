-- Schema of native-auth (see its handler): the consumers it knows.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "native-auth",
    fields = {
        { consumer = typedefs.no_consumer },
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { consumers = { type = "array", required = true, elements = { type = "record", fields = {
                    { id = { type = "string", required = true } },
                    { username = { type = "string", required = true } },
                    { custom_id = { type = "string" } },
                    { credential_id = { type = "string", required = true } },
                } } } },
            },
        } },
    },
}
