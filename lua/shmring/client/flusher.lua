-- shmring.client.flusher: with batch_publish, one light thread per worker
-- that publishes the SQ once per event-loop turn. A request that writes a
-- record while the flusher sleeps commits without publishing and wakes it
-- (schedule): the flusher runs after this turn's other events (semaphore
-- posts are posted events), so the turn's records cost one publish and at
-- most one futex wake.
local semaphore = require("ngx.semaphore")
local config = require("shmring.client.config")
local channel = require("shmring.client.channel")
local pending = require("shmring.client.pending")
local thread = require("shmring.client.thread")

local ngx = ngx
local cfg = config.cfg

local _M = {
    idle = false, -- sleeping on its semaphore: records may leave publishing to it
}
local running, due = false, false
local wake

local function flusher(premature)
    if premature then
        running = false
        return
    end
    while true do
        _M.idle = true
        wake:wait(1)
        _M.idle = false
        if due then
            due = false
            if channel.chan ~= nil then
                channel.C.shmring_publish(channel.chan)
            end
        end
        if ngx.worker.exiting() and pending.n == 0 then
            break
        end
    end
    running = false
end

-- A record was committed unpublished while the flusher was idle.
function _M.schedule()
    if _M.idle and not due then
        due = true
        wake:post(1)
    end
end

function _M.start()
    wake = wake or semaphore.new(0)
    if running or not cfg.batch_publish then
        return
    end
    running = thread.start(flusher, "flusher")
end

return _M
