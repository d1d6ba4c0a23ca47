-- Native Lua baseline of plugins/correlation-id (bench/e2e), mirroring
-- Kong's bundled kong/plugins/correlation-id/handler.lua with generator
-- "uuid": keep an incoming header_name, else a random v4 UUID
-- (kong.tools.uuid = resty.jit-uuid's generate_v4: math.random nibbles,
-- written out the same way here), set on the upstream request, kept in
-- ngx.ctx, echoed on the response in header_filter (echo_downstream).
local _M = {}

local ngx = ngx
local random, fmt = math.random, string.format
local band, bor, tohex = bit.band, bit.bor, bit.tohex

local function uuid_v4()
    -- resty.jit-uuid: 16 random bytes, version 4, variant 10xx
    return fmt("%s%s%s%s-%s%s-%s%s-%s%s-%s%s%s%s%s%s",
        tohex(random(0, 255), 2), tohex(random(0, 255), 2), tohex(random(0, 255), 2),
        tohex(random(0, 255), 2), tohex(random(0, 255), 2), tohex(random(0, 255), 2),
        tohex(bor(band(random(0, 255), 0x0F), 0x40), 2), tohex(random(0, 255), 2),
        tohex(bor(band(random(0, 255), 0x3F), 0x80), 2), tohex(random(0, 255), 2),
        tohex(random(0, 255), 2), tohex(random(0, 255), 2), tohex(random(0, 255), 2),
        tohex(random(0, 255), 2), tohex(random(0, 255), 2), tohex(random(0, 255), 2))
end

function _M.new(conf)
    return { header_name = conf.header_name,
             var = "http_" .. conf.header_name:lower():gsub("-", "_"),
             echo = conf.echo_downstream }
end

function _M.access(st)
    -- Kong: local correlation_id = kong.request.get_header(conf.header_name)
    local id = ngx.var[st.var]
    if not id or id == "" then
        id = uuid_v4()
        ngx.req.set_header(st.header_name, id)
    end
    ngx.ctx.correlation_id = id
end

function _M.header_filter(st)
    if st.echo then
        local id = ngx.ctx.correlation_id
        if id then
            ngx.header[st.header_name] = id
        end
    end
end

return _M
