-- shmring.plugin_stats: the gateway side's per-plugin figures (requests,
-- failures by kind, LOG records, and the round trip from submit to reply
-- applied as a histogram), recorded in the request for a few table
-- operations and pooled across nginx workers.
--
-- A request only adds to this worker's Lua table (pending). Once a second
-- (a timer started by the first request) and before every scrape, the
-- pending figures move into the shared dict `shmring_metrics`
-- (`lua_shared_dict shmring_metrics 1m;`), where shmring.metrics reads the
-- sum of every worker, as Kong's Prometheus plugin does. Without that dict
-- they move into a table of this worker, and a scrape shows this worker's.
-- The timer is ngx.timer.every: under Kong that is timer-ng's recurring
-- job, whose runs each end (unlike the client's never-ending threads).
-- What a worker recorded in its last second before exiting is lost.
local ngx = ngx
local pairs, ipairs = pairs, ipairs

local _M = {}

-- false: nothing is recorded (no clock read, no table operation); for
-- measuring what recording costs (bench/hello/bench_plugin_stats.py).
_M.enabled = true
_M.dict_name = "shmring_metrics"
_M.sync_interval = 1 -- seconds

-- Round-trip buckets: upper bounds in seconds, 2^k ns for k = 10..30
-- (1.024 us .. 1.07 s), the daemon histogram's bounds (worker/stats.h).
local BOUNDS = {}
for k = 10, 30 do
    BOUNDS[#BOUNDS + 1] = 2 ^ k / 1e9
end
local NB = #BOUNDS
_M.BOUNDS = BOUNDS

-- Counters of a plugin, in the order shmring.metrics prints them.
_M.COUNTERS = {
    { "requests", "phase calls (access, rewrite) sent through shmring" },
    { "errors", "calls answered with an error (plugin error, bad reply, unknown action)" },
    { "deadline_misses", "calls whose reply missed the deadline" },
    { "unavailable", "calls refused because the daemon was down or the ring full" },
    { "ring_full", "calls refused because the submission ring was full" },
    { "fail_open_skips", "failed calls skipped because the plugin fails open" },
    { "log_records", "LOG records sent" },
    { "log_dropped", "LOG records dropped (daemon down, ring full)" },
}
local FAIL_KIND = { error = "errors", deadline = "deadline_misses", unavailable = "unavailable" }

-- pending[plugin] = { counters..., sum = s, [1..NB+1] = non-cumulative
-- bucket counts (NB+1 is +Inf) }: what this worker recorded since the
-- last sync.
local pending = {}
local local_store = {} -- key -> value, when there is no shared dict
local timer_started = false

local function fresh()
    local t = { sum = 0 }
    for i = 1, #_M.COUNTERS do
        t[_M.COUNTERS[i][1]] = 0
    end
    for i = 1, NB + 1 do
        t[i] = 0
    end
    return t
end

local function store()
    return ngx.shared[_M.dict_name]
end

-- Key of one figure in the store: plugin, then field ("b<i>" for bucket i).
local function key(plugin, field)
    return plugin .. "\0" .. field
end

-- Move every pending figure into the store. Runs in a timer and before a
-- scrape; never yields.
function _M.sync()
    local dict = store()
    for plugin, t in pairs(pending) do
        pending[plugin] = nil
        local function add(field, v)
            if v ~= 0 then
                local k = key(plugin, field)
                if dict then
                    dict:incr(k, v, 0)
                else
                    local_store[k] = (local_store[k] or 0) + v
                end
            end
        end
        if dict then
            dict:set(key(plugin, "seen"), true)
        else
            local_store[key(plugin, "seen")] = true
        end
        for i = 1, #_M.COUNTERS do
            local f = _M.COUNTERS[i][1]
            add(f, t[f])
        end
        add("sum", t.sum)
        for i = 1, NB + 1 do
            add("b" .. i, t[i])
        end
    end
end

local function on_timer(premature)
    if not premature then
        _M.sync()
    end
end

local function get(plugin)
    local t = pending[plugin]
    if t then
        return t
    end
    t = fresh()
    pending[plugin] = t
    if not timer_started then
        timer_started = ngx.timer.every(_M.sync_interval, on_timer) and true or false
    end
    return t
end

-- Counter `field` of plugin, plus one.
function _M.count(plugin, field)
    local t = get(plugin)
    t[field] = t[field] + 1
end

-- A call failed with kind ("error", "deadline", "unavailable") and err.
function _M.failed(plugin, kind, err, fail_open)
    local t = get(plugin)
    local f = FAIL_KIND[kind] or "errors"
    t[f] = t[f] + 1
    if err == "ring full" then
        t.ring_full = t.ring_full + 1
    end
    if fail_open then
        t.fail_open_skips = t.fail_open_skips + 1
    end
end

-- A reply was applied secs after its request was submitted.
function _M.observe(plugin, secs)
    local t = get(plugin)
    local i = 1
    while i <= NB and secs > BOUNDS[i] do
        i = i + 1
    end
    t[i] = t[i] + 1
    t.sum = t.sum + secs
end

-- The pooled figures (after a sync of this worker's): plugin -> {
-- counters..., sum, count, cumulative = {[1..NB+1]} }, and whether they
-- are every worker's (shared dict) or this worker's only.
function _M.snapshot()
    _M.sync()
    local dict = store()
    local function val(plugin, field)
        local k = key(plugin, field)
        if dict then
            return dict:get(k) or 0
        end
        return local_store[k] or 0
    end
    local keys = {}
    if dict then
        keys = dict:get_keys(0)
    else
        for k in pairs(local_store) do
            keys[#keys + 1] = k
        end
    end
    local plugins = {}
    for _, k in ipairs(keys) do
        local p = k:match("^(.*)%zseen$")
        if p then
            plugins[#plugins + 1] = p
        end
    end
    table.sort(plugins)
    local out = {}
    for _, p in ipairs(plugins) do
        local t = { sum = val(p, "sum"), cumulative = {} }
        for i = 1, #_M.COUNTERS do
            local f = _M.COUNTERS[i][1]
            t[f] = val(p, f)
        end
        local c = 0
        for i = 1, NB + 1 do
            c = c + val(p, "b" .. i)
            t.cumulative[i] = c
        end
        t.count = c
        out[#out + 1] = { name = p, t = t }
    end
    return out, dict ~= nil
end

return _M
