"""One schema source: every shipped Kong schema (lua/kong/plugins/shmring-*/
schema.lua) is exactly what `shmringctl schema NAME --kong` makes of the
config schema its C plugin declares, so a field cannot be in one and not in
the other. Plugins still without a declared schema are listed in
NOT_YET_DECLARED; one that declares its schema must leave that list, and any
new plugin must declare one. The field table of a declared plugin's section
in docs/plugins.md names the same fields as `shmringctl schema NAME
--markdown` (the prose stays hand-written). Declared strings are written as
Lua literals that read back the same, and a declared name that is not a Lua
name is refused (test plugins schema_probe_hostile / _bad_name).
Usage: test_schemas.py SOURCE_DIR BUILD_DIR"""
import difflib
import os
import re
import subprocess
import sys

# Their conf_new still reads the fields alone; the Kong schema is hand-written.
NOT_YET_DECLARED = set()
# Stubs served by a C plugin of another name (its handler.lua says which),
# through one of its config variants (`shmringctl schema NAME --variant STUB`).
SERVED_BY = {"http-log": "log"}


def doc_tables(src):
    """{section name: [field names of its first field table]} of docs/plugins.md."""
    tables, section, in_table = {}, None, False
    for line in open(os.path.join(src, "docs", "plugins.md")):
        m = re.match(r"^##+ (\S+)\s*$", line)
        if m:
            section, in_table = m.group(1), False
            continue
        if line.startswith("| field |") and section and section not in tables:
            tables[section], in_table = [], True
            continue
        if in_table and line.startswith("|"):
            first = line.split("|")[1]
            tables[section] += [n for n in re.findall(r"`([^`]+)`", first) if "*" not in n]
        elif in_table and not line.strip().startswith("|---"):
            in_table = False
    return tables


def doc_problems(name, markdown, documented):
    """How the docs' field names and the schema's (--markdown rows) differ."""
    declared, top = set(), []
    for row in markdown.splitlines()[2:]:
        cells = row.split("|")
        field = cells[1].strip().strip("`")
        if "an older name of" in cells[5] or "not in the Kong schema" in cells[5]:
            continue
        declared.add(field)
        if "." not in field and "the gateway's" not in cells[5]:
            top.append(field)
    problems = ["docs/plugins.md, %s: `%s` is not a field of the schema" % (name, d)
                for d in documented if d not in declared]
    problems += ["docs/plugins.md, %s: field `%s` is missing from the table" % (name, t)
                 for t in top if not any(d == t or d.startswith(t + ".") for d in documented)]
    return problems


# What a Lua reader of the hostile probe's generated schema.lua must find: the
# declared strings exactly, though they hold quotes, "]]", newlines and
# control bytes, and the default's keys that are not Lua names or are keywords.
HOSTILE_CHECK = r"""
package.preload["kong.db.schema.typedefs"] = function()
    return setmetatable({}, { __index = function() return {} end })
end
local schema = assert(loadstring(io.read("*a")))()
local conf
for _, f in ipairs(schema.fields) do
    if f.config then conf = f.config end
end
local by = {}
for _, f in ipairs(conf.fields) do
    local k, v = next(f)
    by[k] = v
end
local function eq(what, got, want)
    if got ~= want then
        io.stderr:write(("%s: got %q, want %q\n"):format(what, tostring(got), tostring(want)))
        os.exit(1)
    end
end
eq("one_of[1]", by.mode.one_of[1], 'a"]] os.exit(3) --')
eq("one_of[2]", by.mode.one_of[2], "line\nbreak")
eq("one_of[3]", by.mode.one_of[3], "bell\a\\")
eq("match", by.pat.match, '^[%w\n"]+$')
eq("default['a key']", by.tbl.default["a key"], "v\1")
eq("default['end']", by.tbl.default["end"], 1)
eq("default.ok", by.tbl.default.ok, true)
print("ok")
"""


def hostile_declarations(ctl, build):
    """Declared strings are written as Lua literals that read back the same;
    a declared name that is not a Lua name is refused, not written."""
    probes = os.path.join(build, "tests", "plugins")
    problems = []
    p = subprocess.run([ctl, "schema", os.path.join(probes, "schema_probe_hostile.so"), "--kong"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return ["hostile probe: shmringctl schema failed: " + p.stderr.strip()]
    lua = subprocess.run(["luajit", "-e", HOSTILE_CHECK], input=p.stdout, capture_output=True,
                         text=True)
    if lua.returncode != 0 or lua.stdout.strip() != "ok":
        problems.append("hostile probe: the generated schema.lua does not read back as "
                        "declared (exit %d): %s%s" % (lua.returncode, lua.stderr.strip(),
                                                      "\n" + p.stdout))
    md = subprocess.run([ctl, "schema", os.path.join(probes, "schema_probe_hostile.so"),
                         "--markdown"], capture_output=True, text=True)
    rows = md.stdout.splitlines()
    cells = [len(re.findall(r"(?<!\\)\|", r)) for r in rows]
    if md.returncode != 0 or len(rows) != 5 or cells != [6] * 5:
        problems.append("hostile probe --markdown: want a header and 3 rows of 5 cells each, got "
                        "exit %d:\n%s" % (md.returncode, md.stdout))
    for fmt in ("--kong", "--markdown"):
        p = subprocess.run([ctl, "schema", os.path.join(probes, "schema_probe_bad_name.so"), fmt],
                           capture_output=True, text=True)
        if p.returncode == 0 or "is not a Lua name" not in p.stderr or p.stdout:
            problems.append("bad-name probe %s: want a refusal naming the field, got exit %d, "
                            "stderr %r, stdout %r" % (fmt, p.returncode, p.stderr, p.stdout[:200]))
    return problems


def main():
    src, build = sys.argv[1], sys.argv[2]
    ctl = os.path.join(build, "bin", "shmringctl")
    plugins = os.path.join(build, "plugins")
    stubs = os.path.join(src, "lua", "kong", "plugins")
    failures, checked, docs_checked = [], 0, []
    tables = doc_tables(src)
    for stub in sorted(os.listdir(stubs)):
        name = SERVED_BY.get(stub[len("shmring-"):], stub[len("shmring-"):])
        shipped = os.path.join(stubs, stub, "schema.lua")
        so = os.path.join(plugins, name + ".so")
        if not os.path.exists(so):
            failures.append("%s: no %s built" % (stub, so))
            continue
        variant = ["--variant", stub[len("shmring-"):]] if name != stub[len("shmring-"):] else []
        p = subprocess.run([ctl, "schema", so, "--kong"] + variant, capture_output=True, text=True)
        if name in NOT_YET_DECLARED:
            if p.returncode == 0:
                failures.append("%s declares its schema now: take it out of NOT_YET_DECLARED "
                                "and regenerate %s" % (name, shipped))
            continue
        if p.returncode != 0:
            failures.append("%s: shmringctl schema failed: %s" % (name, p.stderr.strip()))
            continue
        md = subprocess.run([ctl, "schema", so, "--markdown"] + variant, capture_output=True,
                            text=True)
        documented = tables.get(stub[len("shmring-"):])
        if documented is not None:
            failures += doc_problems(stub, md.stdout, documented)
            docs_checked.append(stub[len("shmring-"):])
        want = open(shipped).read()
        if p.stdout != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), p.stdout.splitlines(True),
                                                shipped, "shmringctl schema " + name))
            failures.append("%s differs from its C schema (regenerate it):\n%s" % (shipped, diff))
        checked += 1
    failures += hostile_declarations(ctl, build)
    for f in failures:
        print("FAIL: " + f)
    if failures:
        sys.exit(1)
    if not checked:
        print("FAIL: no schema checked")
        sys.exit(1)
    print("%d schema(s) match their C declaration; docs' field tables checked: %s; "
          "not yet declared in C: %s"
          % (checked, ", ".join(docs_checked), ", ".join(sorted(NOT_YET_DECLARED)) or "none"))


main()
