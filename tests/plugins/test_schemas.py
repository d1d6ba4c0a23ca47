"""One schema source: every shipped Kong schema (lua/kong/plugins/shmring-*/
schema.lua) is exactly what `shmringctl schema NAME --kong` makes of the
config schema its C plugin declares, so a field cannot be in one and not in
the other. Plugins still without a declared schema are listed in
NOT_YET_DECLARED; one that declares its schema must leave that list, and any
new plugin must declare one.
Usage: test_schemas.py SOURCE_DIR BUILD_DIR"""
import difflib
import os
import subprocess
import sys

# Their conf_new still reads the fields alone; the Kong schema is hand-written.
NOT_YET_DECLARED = {"log"}
# Stubs served by a C plugin of another name (its handler.lua says which).
SERVED_BY = {"http-log": "log"}


def main():
    src, build = sys.argv[1], sys.argv[2]
    ctl = os.path.join(build, "bin", "shmringctl")
    plugins = os.path.join(build, "plugins")
    stubs = os.path.join(src, "lua", "kong", "plugins")
    failures, checked = [], 0
    for stub in sorted(os.listdir(stubs)):
        name = SERVED_BY.get(stub[len("shmring-"):], stub[len("shmring-"):])
        shipped = os.path.join(stubs, stub, "schema.lua")
        so = os.path.join(plugins, name + ".so")
        if not os.path.exists(so):
            failures.append("%s: no %s built" % (stub, so))
            continue
        p = subprocess.run([ctl, "schema", so, "--kong"], capture_output=True, text=True)
        if name in NOT_YET_DECLARED:
            if p.returncode == 0:
                failures.append("%s declares its schema now: take it out of NOT_YET_DECLARED "
                                "and regenerate %s" % (name, shipped))
            continue
        if p.returncode != 0:
            failures.append("%s: shmringctl schema failed: %s" % (name, p.stderr.strip()))
            continue
        want = open(shipped).read()
        if p.stdout != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), p.stdout.splitlines(True),
                                                shipped, "shmringctl schema " + name))
            failures.append("%s differs from its C schema (regenerate it):\n%s" % (shipped, diff))
        checked += 1
    for f in failures:
        print("FAIL: " + f)
    if failures:
        sys.exit(1)
    if not checked:
        print("FAIL: no schema checked")
        sys.exit(1)
    print("%d schema(s) match their C declaration; not yet declared in C: %s"
          % (checked, ", ".join(sorted(NOT_YET_DECLARED))))


main()
