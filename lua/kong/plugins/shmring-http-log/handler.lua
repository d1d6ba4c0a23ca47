-- Kong stub of Kong's http-log, served by the `log` C plugin's http sink
-- (plugins/log/log_http.c; worker/sink_http.c sends the batches with
-- libcurl). In the log phase it sends kong.log.serialize()'s entry to
-- shmringd as a LOG record and returns at once; shmringd queues, batches,
-- retries and posts the entries as Kong's queue would (docs/plugins.md,
-- "http-log"). PRIORITY is Kong's http-log's.
--
-- Every shmring stub keeps a config's `timeout` for itself (the gateway's
-- wait for the daemon, never sent), but here it is Kong's request timeout:
-- it is sent as `http_timeout`.
return require("shmring.kong").handler("log", { PRIORITY = 12, VERSION = "0.1.0",
    stub = "shmring-http-log", sent_as = { timeout = "http_timeout" } })
