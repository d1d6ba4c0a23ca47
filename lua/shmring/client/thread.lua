-- shmring.client.thread: start the client's per-worker jobs that never end
-- (the reaper, the flusher, the exit watcher) on nginx's own timer. Kong
-- routes ngx.timer.at through lua-resty-timer-ng, whose pool is for jobs
-- that end, and keeps the original as _G.native_timer_at; looked up per
-- call, since Kong patches the globals after this module may be loaded.
local ngx = ngx
local ngx_log, ERR = ngx.log, ngx.ERR
local rawget = rawget

local _M = {}

-- ngx.timer.at as nginx has it, under Kong too.
function _M.at(delay, fn, ...)
    local at = rawget(_G, "native_timer_at") or ngx.timer.at
    return at(delay, fn, ...)
end

-- Returns true if it started; else logs why, unless the worker is exiting.
function _M.start(fn, name)
    local ok, err = _M.at(0, fn)
    if not ok then
        if err ~= "process exiting" then
            ngx_log(ERR, "shmring: cannot start the ", name, ": ", err)
        end
        return false
    end
    return true
end

return _M
