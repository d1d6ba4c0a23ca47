-- shmring.client.thread: start one of the client's light threads (the
-- reaper, the flusher) as a zero-delay timer.
local ngx = ngx
local ngx_log, ERR = ngx.log, ngx.ERR

local _M = {}

-- Returns true if it started; else logs why, unless the worker is exiting.
function _M.start(fn, name)
    local ok, err = ngx.timer.at(0, fn)
    if not ok then
        if err ~= "process exiting" then
            ngx_log(ERR, "shmring: cannot start the ", name, ": ", err)
        end
        return false
    end
    return true
end

return _M
