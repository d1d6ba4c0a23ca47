-- shmring.metrics: Prometheus text exposition of the shared counters.
--
--   location = /metrics { content_by_lua_block { require("shmring.metrics").serve() } }
--
-- Reads, through the FFI, the per-channel counters (client and server side)
-- and the per-daemon-worker counters from the segments, plus this nginx
-- worker's gateway counters (shmring.client.stats; other workers' show up
-- on their own scrapes, their channel counters are already included).
local ffi = require("ffi")
local core = require("shmring.core")
local client = require("shmring.client")

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

-- The daemon's own stats file (<dir>/stats, worker/stats.h, version 2;
-- _Static_asserts there keep these numbers true): a 64-byte header (magic
-- "SRDSTAT1", u32 version at 8, u32 nworkers at 12), then one 1664-byte
-- block per worker slot, written only by that worker. The log sink
-- counters sit at these offsets of a block; the per-plugin counters are
-- 16 entries of 72 bytes from PLUGINS: name[48] (NUL-terminated), calls,
-- errors, exhausted.
local STATS_HEADER, STATS_BLOCK, STATS_VERSION = 64, 1664, 2
local PLUGINS, PLUGIN_SIZE, PLUGIN_SLOTS, PLUGIN_EXHAUSTED = 464, 72, 16, 64
local STATS_FIELDS = {
    { "log_records", 304, "LOG records handed to a plugin" },
    { "sink_entries", 336, "log entries appended to a sink" },
    { "sink_bytes", 344, "log bytes written by the sinks" },
    { "sink_dropped", 352, "log entries dropped (sink down past its memory bound, or too big)" },
    { "sink_flushes", 360, "log batches submitted" },
    { "sink_errors", 368, "log sink write/connect errors" },
    { "sink_reconnects", 376, "log sink (re)connections" },
}

-- Per worker slot, the STATS_FIELDS counters and plugin_exhausted (plugin
-- name -> count), or nil if the file is missing or of another version.
local function daemon_stats(dir)
    local f = io.open(dir .. "/stats", "rb")
    if not f then
        return nil
    end
    local s = f:read("*a")
    f:close()
    if not s or #s < STATS_HEADER or s:sub(1, 8) ~= "SRDSTAT1" then
        return nil
    end
    local p = ffi.cast("const uint8_t *", s)
    if ffi.cast("const uint32_t *", p + 8)[0] ~= STATS_VERSION then
        return nil
    end
    local nw = ffi.cast("const uint32_t *", p + 12)[0]
    local out = {}
    for w = 0, nw - 1 do
        local base = STATS_HEADER + w * STATS_BLOCK
        if base + STATS_BLOCK > #s then
            break
        end
        local t = {}
        for _, fld in ipairs(STATS_FIELDS) do
            t[fld[1]] = tonumber(ffi.cast("const uint64_t *", p + base + fld[2])[0])
        end
        local exhausted = {}
        for i = 0, PLUGIN_SLOTS - 1 do
            local off = base + PLUGINS + i * PLUGIN_SIZE
            local raw = s:sub(off + 1, off + 48)
            local name = raw:sub(1, (raw:find("\0", 1, true) or 49) - 1)
            if name ~= "" then
                exhausted[name] = tonumber(ffi.cast("const uint64_t *", p + off + PLUGIN_EXHAUSTED)[0])
            end
        end
        t.plugin_exhausted = exhausted
        out[w] = t
    end
    return out
end

local inst_box = ffi.new("struct shmring_instance *[1]")
local chan_box = ffi.new("struct shmring_chan *[1]")

local function u64(x)
    return tostring(tonumber(x))
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
    local rc = C.shmring_instance_attach(client.config.dir, inst_box)
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
        local ds = daemon_stats(client.config.dir)
        if ds then
            local per_plugin, names = {}, {}
            for w = 0, nw - 1 do
                for name, x in pairs(ds[w] and ds[w].plugin_exhausted or {}) do
                    if not per_plugin[name] then
                        names[#names + 1] = name
                    end
                    per_plugin[name] = (per_plugin[name] or 0) + x
                end
            end
            table.sort(names)
            add("# HELP shmring_plugin_exhausted_total Requests a plugin met with a full resource "
                .. "of its own (e.g. rate-limiting's counter table), all workers.")
            add("# TYPE shmring_plugin_exhausted_total counter")
            for _, name in ipairs(names) do
                local label = name:gsub('[\\"]', "\\%0"):gsub("\n", "\\n")
                add(('shmring_plugin_exhausted_total{plugin="%s"} %d'):format(label, per_plugin[name]))
            end
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
        end
    end
    local pid = ngx and ngx.worker and ngx.worker.pid() or 0
    local keys = {}
    for k in pairs(client.stats) do
        keys[#keys + 1] = k
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
        local name = "shmring_gateway_" .. k .. "_total"
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
