"""The LuaRocks rock of the gateway side: the rockspec lists every file under lua/
(and is named for the project's version); `luarocks make --tree DIR` installs it;
LuaJIT inside nginx, with only that tree added to its path, requires the Kong stub
kong.plugins.shmring-key-auth.handler and shmring.client from the tree and loads
libshmring through SHMRING_LIB, the documented setting; `luarocks pack` packs it.
Usage: test_rock.py BUILD_DIR PROJECT_VERSION"""
import glob
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

from install_common import SRC, check, done, need, run, scratch_dir, skip, wait_for

sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
import stack  # noqa: E402

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
master_process off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
env SHMRING_LIB;
events {}
http {
    access_log off;
    lua_package_path "%(tree)s/share/lua/5.1/?.lua;;";
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            content_by_lua_block {
                local handler = require("kong.plugins.shmring-key-auth.handler")
                local client = require("shmring.client")
                local C, err = require("shmring.core").load()
                ngx.say("handler ", package.searchpath("kong.plugins.shmring-key-auth.handler",
                                                      package.path))
                ngx.say("client ", package.searchpath("shmring.client", package.path))
                ngx.say("priority ", handler.PRIORITY, " access ", type(handler.access))
                ngx.say("configure ", type(client.configure))
                ngx.say("lib ", C and "loaded" or err)
            }
        }
    }
}
"""


def rockspec_modules(path):
    """The build.modules table of a rockspec, read by LuaJIT as LuaRocks does."""
    lua = ("local env = {} ; local f = assert(loadfile(os.getenv('ROCKSPEC'))) ; "
           "setfenv(f, env) ; f() ; for k, v in pairs(env.build.modules) do print(k .. ' ' .. v) end")
    _, out = run(["luajit", "-e", lua], env=dict(os.environ, ROCKSPEC=path))
    return dict(line.split(" ", 1) for line in out.splitlines())


def main():
    build, version = sys.argv[1], sys.argv[2]
    need("luarocks", "luajit")
    specs = glob.glob(os.path.join(SRC, "*.rockspec"))
    check(len(specs) == 1, "one rockspec at the top of the tree: %s" % specs)
    spec = specs[0]
    check(os.path.basename(spec) == "shmring-%s-1.rockspec" % version,
          "%s is named for version %s" % (os.path.basename(spec), version))

    listed = rockspec_modules(spec)
    files = sorted(os.path.relpath(p, SRC) for p in glob.glob(os.path.join(SRC, "lua", "**", "*.lua"),
                                                               recursive=True))
    missing = [f for f in files if f not in listed.values()]
    check(not missing, "lua/ files missing from %s; add:\n%s" % (
        os.path.basename(spec),
        "\n".join('      ["%s"] = "%s",' % (re.sub(r"^lua/|\.lua$", "", f).replace("/", "."), f)
                  for f in missing)))
    stale = [m for m, f in listed.items() if f not in files]
    check(not stale, "rockspec modules without a file: %s" % stale)
    for mod, f in listed.items():
        check(mod == re.sub(r"^lua/|\.lua$", "", f).replace("/", "."), "%s named after %s" % (mod, f))

    tmp = scratch_dir("rock")
    tree = os.path.join(tmp, "tree")
    run(["luarocks", "make", "--tree", tree, spec], cwd=SRC)
    for f in files:
        check(os.path.exists(os.path.join(tree, "share/lua/5.1", f[len("lua/"):])),
              "%s installed in the tree" % f)
    run(["luarocks", "pack", "--tree", tree, "shmring"], cwd=tmp)
    check(glob.glob(os.path.join(tmp, "shmring-%s-1.all.rock" % version)), "luarocks pack made a rock")

    if not os.path.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so"):
        skip("libnginx-mod-http-lua is not installed")
    port = stack.free_port()
    open(os.path.join(tmp, "nginx.conf"), "w").write(
        NGINX_CONF % {"dir": tmp, "tree": tree, "port": port})
    nginx = subprocess.Popen([stack.NGINX, "-p", tmp, "-c", os.path.join(tmp, "nginx.conf")],
                             env=dict(os.environ, SHMRING_LIB=stack.ffi_lib(build)))
    body = {}

    def answered():
        try:
            body["text"] = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2).read().decode()
            return True
        except OSError:
            return False

    try:
        wait_for(answered, 15, "nginx with the rock's tree never answered")
    finally:
        nginx.terminate()
        nginx.wait(10)
    text = body["text"]
    print(text)
    check("handler %s/share/lua/5.1/kong/plugins/shmring-key-auth/handler.lua" % tree in text,
          "the Kong stub came from the tree")
    check("client %s/share/lua/5.1/shmring/client.lua" % tree in text,
          "shmring.client came from the tree")
    check("priority 1250 access function" in text, "the stub is a Kong handler")
    check("configure function" in text, "shmring.client loaded")
    check("lib loaded" in text, "libshmring loaded through SHMRING_LIB")
    shutil.rmtree(tmp)
    done()


main()
