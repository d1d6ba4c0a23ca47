-- Native Lua baseline of plugins/rate-limiting (bench/e2e), mirroring
-- Kong's bundled rate-limiting with policy = "local"
-- (kong/plugins/rate-limiting/policies/init.lua): one lua_shared_dict
-- counter per period and identifier (ngx.shared.DICT:incr with init and
-- ttl), usage = counter after increment; over the limit -> 429 with Kong's
-- body; else X-RateLimit-Limit-<Period> / X-RateLimit-Remaining-<Period>
-- and RateLimit-Limit / -Remaining / -Reset for the most constrained
-- period, set on the response (Kong sets them through kong.response in
-- access; here they are kept and set in header_filter, as shmring does).
local _M = {}

local ngx = ngx
local floor, time = math.floor, ngx.time
local fmt = string.format

local PERIODS = { "second", "minute", "hour", "day" }
local SECONDS = { second = 1, minute = 60, hour = 3600, day = 86400 }
local TITLE = { second = "Second", minute = "Minute", hour = "Hour", day = "Day" }

function _M.new(conf, dict_name)
    local limits = {}
    for _, p in ipairs(PERIODS) do
        if conf[p] then
            limits[#limits + 1] = { period = p, limit = conf[p], secs = SECONDS[p],
                                    h_limit = "X-RateLimit-Limit-" .. TITLE[p],
                                    h_remaining = "X-RateLimit-Remaining-" .. TITLE[p] }
        end
    end
    return { limits = limits, dict = ngx.shared[dict_name], route = "bench-route" }
end

function _M.access(st)
    local ident = ngx.var.remote_addr -- limit_by = "ip"
    local now = time()
    local dict = st.dict
    local headers = {}
    local stop
    local min_remaining, min_limit, min_reset
    for i = 1, #st.limits do
        local l = st.limits[i]
        local start = floor(now / l.secs) * l.secs
        -- Kong's local policy key: fmt("ratelimit:%s:%s:%s:%s:%s", route, service, ident, start, period)
        local key = fmt("ratelimit:%s:%s:%s:%s", st.route, ident, start, l.period)
        local usage, err = dict:incr(key, 1, 0, l.secs)
        if not usage then
            ngx.log(ngx.ERR, "rate-limiting: ", err)
            return
        end
        local remaining = l.limit - usage
        if remaining < 0 then
            stop = true
            remaining = 0
        end
        headers[#headers + 1] = l.h_limit
        headers[#headers + 1] = l.limit
        headers[#headers + 1] = l.h_remaining
        headers[#headers + 1] = remaining
        if not min_remaining or remaining < min_remaining then
            min_remaining, min_limit, min_reset = remaining, l.limit, start + l.secs - now
        end
    end
    headers[#headers + 1] = "RateLimit-Limit"
    headers[#headers + 1] = min_limit
    headers[#headers + 1] = "RateLimit-Remaining"
    headers[#headers + 1] = min_remaining
    headers[#headers + 1] = "RateLimit-Reset"
    headers[#headers + 1] = min_reset
    if stop then
        for i = 1, #headers, 2 do
            ngx.header[headers[i]] = headers[i + 1]
        end
        ngx.status = 429
        ngx.header["Content-Type"] = "application/json; charset=utf-8"
        ngx.print('{"message":"API rate limit exceeded"}')
        return ngx.exit(429)
    end
    ngx.ctx.bench_rl_headers = headers
end

function _M.header_filter()
    local headers = ngx.ctx.bench_rl_headers
    if headers then
        for i = 1, #headers, 2 do
            ngx.header[headers[i]] = headers[i + 1]
        end
    end
end

return _M
