-- shmring.profile: a Lua-level CPU profile of the nginx worker that serves
-- the request, from LuaJIT's built-in sampling profiler (jit.profile), as
-- folded stacks ready for a flame graph (flamegraph.pl, speedscope).
--
-- Opt-in: nothing is profiled unless the operator adds a location, and
-- keeps it private:
--   location = /shmring/profile {
--       allow 127.0.0.1; deny all;
--       content_by_lua_block { require("shmring.profile").serve() }
--   }
-- GET /shmring/profile?seconds=10 samples this worker (every request it
-- runs meanwhile, not only this one) and answers one line per stack:
-- "caller;...;callee <samples>". The profiler belongs to the worker's VM:
-- a second profile in the same worker while one runs is refused (409).
local ngx = ngx
local concat = table.concat

local _M = {}

_M.max_seconds = 60
_M.interval_ms = 1 -- sampling interval
_M.depth = 64 -- stack frames kept per sample

local running = false

-- Sample this worker's VM for seconds; returns the folded text, or nil and
-- why.
function _M.collect(seconds)
    if running then
        return nil, "a profile is already running in this worker"
    end
    local profile = require("jit.profile")
    local counts = {}
    local fmt = "F;"
    local depth = -_M.depth -- negative: caller first, as folded stacks want
    running = true
    profile.start("fi" .. _M.interval_ms, function(thread, samples, vmmode)
        local stack = profile.dumpstack(thread, fmt, depth):gsub(";$", "")
        if stack == "" then
            stack = vmmode == "G" and "(gc)" or vmmode == "J" and "(jit compiler)" or "(vm)"
        end
        counts[stack] = (counts[stack] or 0) + samples
    end)
    local ok, err = pcall(ngx.sleep, seconds)
    profile.stop()
    running = false
    if not ok then
        return nil, err
    end
    local lines = {}
    for stack, n in pairs(counts) do
        lines[#lines + 1] = stack .. " " .. n
    end
    table.sort(lines)
    return concat(lines, "\n") .. (#lines > 0 and "\n" or "")
end

function _M.serve()
    local seconds = tonumber(ngx.var.arg_seconds or "10")
    if not seconds or seconds <= 0 or seconds > _M.max_seconds then
        ngx.status = 400
        ngx.say("seconds must be in (0, ", _M.max_seconds, "]")
        return
    end
    local text, err = _M.collect(seconds)
    if not text then
        ngx.status = 409
        ngx.say(err)
        return
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(text)
end

return _M
