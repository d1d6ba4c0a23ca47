-- Kong stub of the `@NAME@` C plugin (@ID@.c): the work happens in shmringd.
-- What the ACCESS snapshot carries is what the C descriptor declares
-- (needs_headers, needs_query): nothing here; add the lower-case names the
-- plugin reads to headers / query below and to the descriptor together.
return require("shmring.kong").handler("@NAME@", {
    PRIORITY = 1000,
    VERSION = "0.1.0",
    headers = {}, query = {}, fields = {},
    phases = { access = true, log = true },
})
