-- Native Lua baseline of plugins/hello (bench/e2e): what the C plugin does,
-- as a Kong plugin would write it: X-Hello on the upstream request in
-- access, and on the response in header_filter.
local _M = {}

local set_header = ngx.req.set_header

function _M.access(conf)
    set_header(conf.name, conf.value)
end

function _M.header_filter(conf)
    ngx.header[conf.name] = conf.value
end

return _M
