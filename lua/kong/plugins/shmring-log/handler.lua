-- Kong stub of the `log` C plugin (plugins/log/): Kong's file-log, tcp-log
-- and udp-log in one. In the log phase it sends kong.log.serialize()'s
-- entry (plus the SET_CTX values of earlier shmring plugins, e.g. the
-- correlation id) to shmringd as a LOG record and returns at once: no
-- reply, no wait, no disk. shmringd formats one JSON line per entry and
-- writes the batches with io_uring. See shmring/kong.lua and
-- docs/plugins.md ("log"). PRIORITY is Kong's file-log's.
--
-- `timeout` is tcp-log's socket timeout here, not the gateway's wait (a
-- LOG record is never waited for): it is sent as `tcp_timeout`.
return require("shmring.kong").handler("log", { PRIORITY = 9, VERSION = "0.1.0",
    sent_as = { timeout = "tcp_timeout" } })
