-- Kong stub of the `key-auth` C plugin (plugins/key-auth/): Kong's key-auth
-- with consumers from the config or a credentials file (docs/plugins.md).
-- The work happens in shmringd; see shmring/kong.lua. PRIORITY is Kong's.
return require("shmring.kong").handler("key-auth",
    { PRIORITY = 1250, VERSION = "0.1.0", error_exits = true })
