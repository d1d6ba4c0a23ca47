-- Kong's set_consumer, as its bundled key-auth and jwt handlers (3.x) both
-- do it, for the native Lua baselines of those plugins (bench/e2e): the
-- consumer kept in ngx.ctx, X-Consumer-* / X-Credential-Identifier set or
-- cleared, X-Anonymous-Consumer cleared.
local ngx = ngx
local set_header, clear_header = ngx.req.set_header, ngx.req.clear_header

return function(consumer, credential, credential_identifier)
    local ctx = ngx.ctx
    ctx.authenticated_consumer = consumer
    ctx.authenticated_credential = credential
    set_header("X-Consumer-ID", consumer.id)
    if consumer.custom_id then
        set_header("X-Consumer-Custom-ID", consumer.custom_id)
    else
        clear_header("X-Consumer-Custom-ID")
    end
    if consumer.username then
        set_header("X-Consumer-Username", consumer.username)
    else
        clear_header("X-Consumer-Username")
    end
    set_header("X-Credential-Identifier", credential_identifier)
    clear_header("X-Anonymous-Consumer")
end
