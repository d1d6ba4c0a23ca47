-- Schema of the shmring-request-transformer Kong plugin: Kong's fields.
-- `body` and `json_types` exist for config compatibility but must stay
-- empty (the C plugin refuses body rules: no body in the snapshot).
-- `fail_open` and `timeout` (ms) are the gateway side's policy.
local typedefs = require("kong.db.schema.typedefs")

local strings = { type = "array", default = {}, required = true, elements = { type = "string" } }
local colon_strings = { type = "array", default = {}, required = true,
                        elements = { type = "string", match = "^[^:]+:.*$" } }

local function section(list, extra)
    local fields = {
        { body = list }, { headers = list }, { querystring = list },
    }
    for _, f in ipairs(extra or {}) do
        fields[#fields + 1] = f
    end
    return { type = "record", required = true, fields = fields }
end

local json_types = { type = "array", default = {}, required = true,
                     elements = { type = "string", one_of = { "boolean", "number", "string" } } }

return {
    name = "shmring-request-transformer",
    fields = {
        { protocols = typedefs.protocols_http },
        { config = {
            type = "record",
            fields = {
                { http_method = typedefs.http_method },
                { remove = section(strings) },
                { rename = section(colon_strings) },
                { replace = section(colon_strings, { { uri = { type = "string" } },
                                                     { json_types = json_types } }) },
                { add = section(colon_strings, { { json_types = json_types } }) },
                { append = section(colon_strings, { { json_types = json_types } }) },
                { fail_open = { type = "boolean", default = false } },
                { timeout = { type = "integer", default = 250, between = { 1, 60000 } } },
            },
        } },
    },
}
