-- Kong stub of the `request-transformer` C plugin (plugins/request-transformer/):
-- headers, query string, replace.uri and http_method with Kong's rules.
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
return require("shmring.kong").handler("request-transformer", { PRIORITY = 801, VERSION = "0.1.0" })
