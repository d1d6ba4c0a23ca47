-- shmring.metrics: Prometheus text exposition of the shared counters.
--
--   location = /metrics { content_by_lua_block { require("shmring.metrics").serve() } }
--
-- Reads, through the FFI, the per-channel counters (client and server side)
-- and the per-daemon-worker counters from the segments, the daemon's stats
-- file (per-plugin hook counts and service-time histograms), the gateway's
-- per-plugin figures of every nginx worker (shmring.plugin_stats, through
-- the shared dict shmring_metrics), plus this nginx worker's client
-- counters (shmring.client.stats; other workers' show up on their own
-- scrapes, their channel counters are already included).
local ffi = require("ffi")
local core = require("shmring.core")
local client = require("shmring.client")
local channel = require("shmring.client.channel")
local plugin_stats = require("shmring.plugin_stats")

local tonumber, tostring, concat = tonumber, tostring, table.concat

local _M = {}

local CHAN_FIELDS = { "records", "bytes", "consumed", "full", "wakeups", "corrupt", "errors" }
local WORKER_FIELDS = { "records", "sleeps", "wakeups", "errors", "restarts" }
local HELP = {
    records = "records produced", bytes = "payload bytes produced",
    consumed = "records consumed", full = "claims refused because the ring was full",
    wakeups = "wake-ups sent (futex or doorbell)", corrupt = "corrupt records seen",
    errors = "other failures", sleeps = "futex sleeps", restarts = "restarts by the master",
}

-- The daemon's own stats file (<dir>/stats, worker/stats.h, version 3; the
-- offsets are the ones its _Static_asserts pin): a 64-byte header (magic
-- "SRDSTAT1", u32 version at 8, u32 nworkers at 12), then one block per
-- worker slot, written only by that worker.
local STATS_VERSION, STATS_HEADER, STATS_BLOCK = 3, 64, 10112
local STATS_FIELDS = {
    { "log_records", 304, "LOG records handed to a plugin" },
    { "sink_entries", 336, "log entries appended to a sink" },
    { "sink_bytes", 344, "log bytes written by the sinks" },
    { "sink_dropped", 352, "log entries dropped (sink down past its memory bound, or too big)" },
    { "sink_flushes", 360, "log batches submitted" },
    { "sink_errors", 368, "log sink write/connect errors" },
    { "sink_reconnects", 376, "log sink (re)connections" },
}
-- Per plugin slot of a block: name[48] (NUL-terminated), calls, errors,
-- exhausted, then per hook kind (request, log) sum_ns and 32 log2 buckets
-- ([2^i, 2^(i+1)) ns).
local PLUGINS_AT, PLUGIN_SIZE, NPLUGINS, HOOK_AT, HOOK_SIZE, HIST_BUCKETS =
    464, 600, 16, 72, 264, 32
local HOOK_KINDS = { "request", "log" }
local PLUGIN_COUNTERS = {
    { "shmring_plugin_hook_calls_total", "calls", "Plugin hooks called" },
    { "shmring_plugin_hook_errors_total", "errors", "Plugin hooks that failed" },
    { "shmring_plugin_exhausted_total", "exhausted",
      "Requests a plugin met with a full resource of its own (e.g. rate-limiting's counter table)" },
}
-- Service-time bounds exposed: 2^k ns for k = 6..30 (64 ns .. 1.07 s).
local SERVICE_K_MIN, SERVICE_K_MAX = 6, 30

local function u64_at(p, off)
    return tonumber(ffi.cast("const uint64_t *", p + off)[0])
end

-- Per worker slot, the STATS_FIELDS counters, and per plugin name (summed
-- over the workers) calls, errors, exhausted and the hook histograms; nil
-- if the file is missing or of another version.
local function daemon_stats(dir)
    local f = io.open(dir .. "/stats", "rb")
    if not f then
        return nil
    end
    local head = f:read(STATS_HEADER)
    if not head or #head < STATS_HEADER or head:sub(1, 8) ~= "SRDSTAT1" then
        f:close()
        return nil
    end
    local hp = ffi.cast("const uint8_t *", head)
    local nw = ffi.cast("const uint32_t *", hp + 12)[0]
    if ffi.cast("const uint32_t *", hp + 8)[0] ~= STATS_VERSION then
        f:close()
        return nil
    end
    local s = f:read(nw * STATS_BLOCK) or ""
    f:close()
    local p = ffi.cast("const uint8_t *", s)
    local out, plugins, names = {}, {}, {}
    for w = 0, nw - 1 do
        local base = w * STATS_BLOCK
        if base + STATS_BLOCK > #s then
            break
        end
        local t = {}
        for _, fld in ipairs(STATS_FIELDS) do
            t[fld[1]] = u64_at(p, base + fld[2])
        end
        out[w] = t
        for i = 0, NPLUGINS - 1 do
            local at = base + PLUGINS_AT + i * PLUGIN_SIZE
            local name = ffi.string(p + at)
            if #name > 0 then
                local ps = plugins[name]
                if not ps then
                    ps = { calls = 0, errors = 0, exhausted = 0, hooks = {} }
                    for k = 1, #HOOK_KINDS do
                        local b = {}
                        for j = 1, HIST_BUCKETS do
                            b[j] = 0
                        end
                        ps.hooks[k] = { sum_ns = 0, buckets = b }
                    end
                    plugins[name] = ps
                    names[#names + 1] = name
                end
                ps.calls = ps.calls + u64_at(p, at + 48)
                ps.errors = ps.errors + u64_at(p, at + 56)
                ps.exhausted = ps.exhausted + u64_at(p, at + 64)
                for k = 1, #HOOK_KINDS do
                    local h, hat = ps.hooks[k], at + HOOK_AT + (k - 1) * HOOK_SIZE
                    h.sum_ns = h.sum_ns + u64_at(p, hat)
                    for j = 1, HIST_BUCKETS do
                        h.buckets[j] = h.buckets[j] + u64_at(p, hat + 8 * j)
                    end
                end
            end
        end
    end
    table.sort(names)
    return out, plugins, names
end

-- A label value as the exposition format wants it.
local function label(v)
    return (v:gsub('[\\"]', "\\%0"):gsub("\n", "\\n"))
end

-- A bucket bound as Prometheus reads it (seconds).
local function le(secs)
    return ("%.9g"):format(secs)
end

local inst_box = ffi.new("struct shmring_instance *[1]")
local chan_box = ffi.new("struct shmring_chan *[1]")

local function u64(x)
    return tostring(tonumber(x))
end

-- The gateway side's figures per plugin (shmring.plugin_stats): counters
-- and the round trip from submit to reply applied, over every nginx worker
-- (or this one's only, without the shared dict: then labelled with it).
local function gateway_plugins(add)
    local snap, pooled = plugin_stats.snapshot()
    local extra = pooled and "" or
        (',nginx_worker="%d"'):format(ngx and ngx.worker and ngx.worker.pid() or 0)
    for _, c in ipairs(plugin_stats.COUNTERS) do
        local name = "shmring_gateway_plugin_" .. c[1] .. "_total"
        add("# HELP " .. name .. " Per plugin, gateway side: " .. c[2] .. ".")
        add("# TYPE " .. name .. " counter")
        for _, e in ipairs(snap) do
            add(('%s{plugin="%s"%s} %d'):format(name, label(e.name), extra, e.t[c[1]]))
        end
    end
    local name = "shmring_gateway_plugin_round_trip_seconds"
    add("# HELP " .. name .. " Per plugin, from submit to reply applied, in the nginx worker.")
    add("# TYPE " .. name .. " histogram")
    local bounds = plugin_stats.BOUNDS
    for _, e in ipairs(snap) do
        local labels = ('plugin="%s"%s'):format(label(e.name), extra)
        for i = 1, #bounds do
            add(('%s_bucket{%s,le="%s"} %d'):format(name, labels, le(bounds[i]), e.t.cumulative[i]))
        end
        add(('%s_bucket{%s,le="+Inf"} %d'):format(name, labels, e.t.count))
        add(('%s_sum{%s} %.9f'):format(name, labels, e.t.sum))
        add(('%s_count{%s} %d'):format(name, labels, e.t.count))
    end
end

-- The exposition text, or nil and an error if the library cannot load.
function _M.collect()
    local C, err = core.load(client.config.lib)
    if not C then
        return nil, err
    end
    local out, n = {}, 0
    local function add(s)
        n = n + 1
        out[n] = s
    end
    local up = 0
    local rc = C.shmring_instance_attach_owned(client.config.dir,
        channel.daemon_uid(C) or -1, inst_box)
    local inst = rc == 0 and inst_box[0] or nil
    if inst ~= nil then
        local age = tonumber(C.shmring_instance_heartbeat_age_ns(inst))
        up = (age >= 0 and age < client.config.heartbeat_timeout_ms * 1e6) and 1 or 0
        add("# HELP shmring_heartbeat_age_seconds Age of the daemon's heartbeat (-1: closed).")
        add("# TYPE shmring_heartbeat_age_seconds gauge")
        add("shmring_heartbeat_age_seconds " .. (age >= 0 and string.format("%.3f", age / 1e9) or "-1"))
    end
    add("# HELP shmring_daemon_up 1 if shmringd is attached and beating.")
    add("# TYPE shmring_daemon_up gauge")
    add("shmring_daemon_up " .. up)
    if inst ~= nil then
        local chans = {}
        for k = 0, C.shmring_instance_nchannels(inst) - 1 do
            if C.shmring_chan_open(inst, k, core.ROLE_CLIENT, chan_box) == 0 then
                chans[#chans + 1] = { k = k, c = chan_box[0] }
            end
        end
        add("# HELP shmring_channel_owner_pid nginx worker holding the channel (0: free).")
        add("# TYPE shmring_channel_owner_pid gauge")
        for _, ch in ipairs(chans) do
            local owner = C.shmring_chan_owner(ch.c)
            add(('shmring_channel_owner_pid{channel="%d"} %s'):format(ch.k,
                tostring(tonumber(owner % 4194304))))
        end
        for _, f in ipairs(CHAN_FIELDS) do
            local name = "shmring_channel_" .. f .. "_total"
            add("# HELP " .. name .. " Per channel and side: " .. HELP[f] .. ".")
            add("# TYPE " .. name .. " counter")
            for _, ch in ipairs(chans) do
                for side, label in pairs({ [core.ROLE_CLIENT] = "client", [core.ROLE_SERVER] = "server" }) do
                    local cnt = C.shmring_chan_counters(ch.c, side)
                    add(('%s{channel="%d",side="%s"} %s'):format(name, ch.k, label, u64(cnt[f])))
                end
            end
        end
        for _, ch in ipairs(chans) do
            C.shmring_chan_close(ch.c)
        end
        local nw = C.shmring_instance_nworkers(inst)
        add("# HELP shmring_worker_pid Current pid of each shmringd worker.")
        add("# TYPE shmring_worker_pid gauge")
        for w = 0, nw - 1 do
            add(('shmring_worker_pid{worker="%d"} %s'):format(w,
                u64(C.shmring_instance_worker_counters(inst, w).pid)))
        end
        for _, f in ipairs(WORKER_FIELDS) do
            local name = "shmring_worker_" .. f .. "_total"
            add("# HELP " .. name .. " Per shmringd worker: " .. HELP[f] .. ".")
            add("# TYPE " .. name .. " counter")
            for w = 0, nw - 1 do
                local cnt = C.shmring_instance_worker_counters(inst, w)
                add(('%s{worker="%d"} %s'):format(name, w, u64(cnt[f])))
            end
        end
        C.shmring_instance_close(inst, 0)
        local ds, dplugins, dnames = daemon_stats(client.config.dir)
        if ds then
            for _, fld in ipairs(STATS_FIELDS) do
                local name = "shmring_worker_" .. fld[1] .. "_total"
                add("# HELP " .. name .. " Per shmringd worker: " .. fld[3] .. ".")
                add("# TYPE " .. name .. " counter")
                for w = 0, nw - 1 do
                    if ds[w] then
                        add(('%s{worker="%d"} %d'):format(name, w, ds[w][fld[1]]))
                    end
                end
            end
            for _, c in ipairs(PLUGIN_COUNTERS) do
                add("# HELP " .. c[1] .. " " .. c[3] .. ", all shmringd workers.")
                add("# TYPE " .. c[1] .. " counter")
                for _, pn in ipairs(dnames) do
                    add(('%s{plugin="%s"} %d'):format(c[1], label(pn), dplugins[pn][c[2]]))
                end
            end
            local name = "shmring_plugin_service_seconds"
            add("# HELP " .. name .. " Time inside a plugin hook in shmringd (all workers);"
                .. " hook=request: access, rewrite, header_filter; hook=log: log.")
            add("# TYPE " .. name .. " histogram")
            for _, pn in ipairs(dnames) do
                for k, kind in ipairs(HOOK_KINDS) do
                    local h = dplugins[pn].hooks[k]
                    local labels = ('plugin="%s",hook="%s"'):format(label(pn), kind)
                    -- bucket j holds [2^(j-1), 2^j) ns: the ones below 2^k ns are 1..k
                    local c = 0
                    for j = 1, SERVICE_K_MAX do
                        c = c + h.buckets[j]
                        if j >= SERVICE_K_MIN then
                            add(('%s_bucket{%s,le="%s"} %d'):format(name, labels, le(2 ^ j / 1e9), c))
                        end
                    end
                    for j = SERVICE_K_MAX + 1, HIST_BUCKETS do
                        c = c + h.buckets[j]
                    end
                    add(('%s_bucket{%s,le="+Inf"} %d'):format(name, labels, c))
                    add(('%s_sum{%s} %.9f'):format(name, labels, h.sum_ns / 1e9))
                    add(('%s_count{%s} %d'):format(name, labels, c))
                end
            end
        end
    end
    gateway_plugins(add)
    local pid = ngx and ngx.worker and ngx.worker.pid() or 0
    local keys = {}
    for k in pairs(client.stats) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
        local name = "shmring_gateway_" .. k .. "_total"
        add("# HELP " .. name .. " This nginx worker's client: " .. k:gsub("_", " ") .. ".")
        add("# TYPE " .. name .. " counter")
        add(('%s{nginx_worker="%d"} %d'):format(name, pid, client.stats[k]))
    end
    return concat(out, "\n") .. "\n"
end

function _M.serve()
    local text, err = _M.collect()
    if not text then
        ngx.status = 500
        ngx.say(err)
        return
    end
    ngx.header["Content-Type"] = "text/plain; version=0.0.4"
    ngx.print(text)
end

return _M
