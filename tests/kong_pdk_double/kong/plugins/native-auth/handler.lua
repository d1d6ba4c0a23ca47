-- native-auth: stands for one of Kong's own auth plugins (basic-auth,
-- key-auth, ...) in the PDK double. It ends as they end: the credential
-- and consumer entities, DAO-shaped, handed to kong.client.authenticate,
-- and the X-Consumer-* / X-Credential-Identifier headers set upstream.
-- The user is named in the X-Native-User header (no secret: the point is
-- what later plugins see). No header: nothing happens (the next auth
-- plugin, or anonymous, decides).
local NativeAuth = { PRIORITY = 1100, VERSION = "test" }

function NativeAuth:access(conf)
    local user = kong.request.get_header("x-native-user")
    if not user then
        return
    end
    for _, c in ipairs(conf.consumers) do
        if c.username == user then
            local consumer = { id = c.id, username = c.username, custom_id = c.custom_id,
                               created_at = 1700000000, tags = ngx.null }
            local credential = { id = c.credential_id, consumer = { id = c.id },
                                 created_at = 1700000000 }
            kong.client.authenticate(consumer, credential)
            local set = kong.service.request.set_header
            set("X-Consumer-ID", consumer.id)
            set("X-Consumer-Username", consumer.username)
            set("X-Credential-Identifier", credential.id)
            kong.service.request.clear_header("X-Anonymous-Consumer")
            return
        end
    end
    return kong.response.error(401, "Invalid credentials")
end

return NativeAuth
