-- Schema of the shmring-request-transformer Kong plugin, generated from the config schema
-- its C plugin declares (`shmringctl schema request-transformer --kong > schema.lua`):
-- change the C declaration, then regenerate this file.
local typedefs = require("kong.db.schema.typedefs")

return {
    name = "shmring-request-transformer",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { http_method = { type = "string", match = "^%u+$" } },
                { remove = { type = "record", required = true, fields = {
                    { body = { type = "array", required = true, default = {}, elements = { type = "string" } } },
                    { headers = { type = "array", required = true, default = {}, elements = { type = "string" } } },
                    { querystring = { type = "array", required = true, default = {}, elements = { type = "string" } } },
                } } },
                { rename = { type = "record", required = true, fields = {
                    { body = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { headers = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { querystring = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                } } },
                { replace = { type = "record", required = true, fields = {
                    { body = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { headers = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { querystring = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { uri = { type = "string" } },
                    { json_types = { type = "array", required = true, default = {}, elements = { type = "string", one_of = { "boolean", "number", "string" } } } },
                } } },
                { add = { type = "record", required = true, fields = {
                    { body = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { headers = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { querystring = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { json_types = { type = "array", required = true, default = {}, elements = { type = "string", one_of = { "boolean", "number", "string" } } } },
                } } },
                { append = { type = "record", required = true, fields = {
                    { body = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { headers = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { querystring = { type = "array", required = true, default = {}, elements = { type = "string", match = "^[^:]+:.*$" } } },
                    { json_types = { type = "array", required = true, default = {}, elements = { type = "string", one_of = { "boolean", "number", "string" } } } },
                } } },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
