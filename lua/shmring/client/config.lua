-- shmring.client.config: the ring client's tunables and the counters it
-- keeps for shmring.metrics, one table each per worker, shared by every
-- piece of the client (shmring.client re-exports both as .config/.stats).
local _M = {}

-- Tunables; shmring.client.configure() may change them (init_by_lua or
-- init_worker).
_M.cfg = {
    dir = os.getenv("SHMRING_DIR") or "/dev/shm/shmring/default",
    -- the daemon's user: dir and its segments must belong to it (or to root)
    -- before they are trusted; nil = "shmring" where that user exists, else
    -- this worker's own user
    daemon_user = os.getenv("SHMRING_DAEMON_USER"),
    lib = nil,                  -- library path; nil = SHMRING_LIB or libshmring.so.1
    wait = "doorbell",          -- "doorbell" | "poll" (docs/gateway.md has the measurements)
    poll_ms = 1,                -- poll: the request re-checks the CQ every poll_ms
    doorbell_timeout_ms = 100,  -- reaper: longest doorbell read before re-checking
    batch_publish = true,       -- publish the SQ once per event-loop turn (flusher thread)
    heartbeat_timeout_ms = 500, -- daemon considered down past this heartbeat age
    attach_retry_ms = 100,      -- at most one attach attempt per this interval
    claim_bytes = 16384,        -- first claim size for a snapshot (grown on overflow)
    body_max = 65536,           -- largest request body a snapshot carries, for configs that
                                -- need one (keep it under the daemon's ring_size / 2)
    log_backlog = 10000,        -- LOG records that may wait in the worker while the SQ has
                                -- no room for them (shmring.client.backlog)
    spin_max_us = 10,           -- longest busy-wait for a reply while the daemon worker is
                                -- awake, before the semaphore; 0 = never (docs/gateway.md)
}

-- Counters (per worker, in Lua).
_M.stats = {
    requests = 0, replies = 0, late_replies = 0, deadline = 0, unavailable = 0,
    ring_full = 0, conf_registrations = 0, unknown_conf = 0, resent = 0, reattach = 0,
    doorbell_waits = 0, doorbell_timeouts = 0, poll_yields = 0, errors = 0,
    spin_hits = 0, spin_misses = 0, log_backlogged = 0, log_dropped = 0,
}

return _M
