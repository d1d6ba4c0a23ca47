-- native-consumer-reader: stands for Kong's own plugins that read the
-- login of an earlier auth plugin (acl, rate-limiting's identifier, the
-- loggers) in the PDK double. It hands what kong.client.get_consumer() and
-- get_credential() return to the upstream as X-Native-* headers, so a
-- test sees exactly what a native plugin would.
local Reader = { PRIORITY = 950, VERSION = "test" }

function Reader:access()
    local consumer = kong.client.get_consumer()
    local credential = kong.client.get_credential()
    local set = kong.service.request.set_header
    set("X-Native-Consumer-Id", consumer and consumer.id or "none")
    set("X-Native-Consumer-Username", consumer and consumer.username or "none")
    set("X-Native-Credential-Id", credential and credential.id or "none")
    set("X-Native-Credential-Consumer-Id",
        credential and credential.consumer and credential.consumer.id or "none")
end

return Reader
