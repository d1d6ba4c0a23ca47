-- Kong stub of the `@NAME@` C plugin (@ID@.c): the work happens in shmringd.
-- What the ACCESS snapshot carries is what the C descriptor declares
-- (needs_headers, needs_query): no header, no query arg here; add the
-- lower-case names the plugin reads to headers / query below and to the
-- descriptor together. Every fixed field (method, path, client_ip, ...) is
-- sent; `fields = { "method", "path" }` would send only those.
return require("shmring.kong").handler("@NAME@", {
    PRIORITY = 1000,
    VERSION = "0.1.0",
    headers = {}, query = {},
    phases = { access = true, log = true },
})
