"""The plugin SDK from an installed prefix alone. The README's "Write your own
plugin" commands run as written (a checkout whose build/release is a release
build of this tree, a fresh HOME): `cmake --install --prefix`, the generator,
the out-of-tree build, the generated unit test, `shmringd --check`, and
try.sh (a shmringd and nginx with the plugin in plain OpenResty: the header it
sets comes back, its log hook writes its line). Then, on that project:
- its build found the prefix's package and names nothing of the source tree;
  the pkg-config files build the plugin and its test too;
- `shmringd --check` refuses a bad config with the plugin's message;
- the plugin runs in a real shmringd (from the prefix) behind a real nginx,
  through its generated Kong stub on the PDK double: the header it sets
  arrives upstream and downstream, its log hook writes through the sink;
- a second generated plugin built with another ABI version is refused by
  --check and by the daemon, with a message naming both versions.
Usage: test_sdk.py BUILD_DIR"""
import os
import re
import subprocess
import sys

from install_common import check, done, release_build, run, scratch_dir, skip, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import stack  # noqa: E402
from common import skip_unless_ready  # noqa: E402

ROUTES = """return {
    greet = { plugins = { { name = "shmring-greet",
        config = { value = "hi", log_to = "file:" .. ngx.config.prefix() .. "greet.log" } } } },
}
"""


def generate(prefix, work, name):
    d = os.path.join(work, name)
    _, out = run([os.path.join(prefix, "bin", "shmring-plugin-new"), name, "--dir", d])
    check("wrote " + d in out, "shmring-plugin-new: " + out)
    return d


def cmake_build(src, prefix, env):
    build = os.path.join(src, "build")
    run(["cmake", "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix], env=env)
    run(["cmake", "--build", build], env=env)
    return build


class PluginStack(stack.Stack):
    """The e2e stack with shmringd from the prefix, the generated plugin's
    build folder as plugin_dir and its Kong stub on nginx's Lua path."""

    def __init__(self, build, prefix, plugin_dir, lua_dirs):
        super().__init__(build, kong_routes="greet_routes", nginx_workers=1, daemon_workers=1)
        self.daemon_bin = os.path.join(prefix, "bin", "shmringd")
        self.plugin_dir = plugin_dir
        self.lua_dirs = lua_dirs

    def write_conf(self, template, subst):
        path = super().write_conf(template, subst)
        conf = open(path).read()
        extra = "".join(d + "/?.lua;" for d in self.lua_dirs)
        check('lua_package_path "' in conf, "the nginx template sets lua_package_path")
        open(path, "w").write(conf.replace('lua_package_path "', 'lua_package_path "' + extra, 1))
        return path


def readme_commands():
    """The commands of the README's "Write your own plugin" section."""
    text = open(os.path.join(stack.REPO, "README.md")).read()
    m = re.search(r"^## Write your own plugin\n.*?^```sh\n(.*?)^```", text, re.S | re.M)
    check(m is not None, "README.md has a \"Write your own plugin\" section with commands")
    return m.group(1)


def main():
    work = os.path.join(sys.argv[1], "tests", "install", "sdk")
    build = os.path.join(work, "build")
    release_build(build)
    tmp = scratch_dir("sdk")
    skip_unless_ready(build)

    # The README's commands as written, in a checkout whose build/release is
    # this release build, with a fresh HOME: install, generate, build, unit
    # test, --check, try.sh (shmringd and nginx, one request).
    checkout = os.path.join(tmp, "checkout")
    home = os.path.join(tmp, "home")
    os.makedirs(os.path.join(checkout, "build"))
    os.makedirs(home)
    os.symlink(build, os.path.join(checkout, "build", "release"))
    env = dict(os.environ, HOME=home, PORT=str(stack.free_port()))
    env.pop("CC", None)
    env.pop("CMAKE_PREFIX_PATH", None)
    env.pop("PKG_CONFIG_PATH", None)
    rc, out = run(["bash", "-euo", "pipefail", "-c", readme_commands()], ok=None, cwd=checkout,
                  env=env, timeout=600)
    check(rc == 0, "the README's commands ran:\n" + out)
    check("100% tests passed" in out, "the generated unit test passed:\n" + out)
    check("plugin greet 0.1.0 (ABI 1)" in out and "phases: access log" in out
          and "config: ok" in out, "--check reported the plugin and its config:\n" + out)
    check("\nX-greet: hello" in out.replace("\r", "")
          and "the service got X-greet: hello" in out and "\n200 GET /hello?a=1\n" in out,
          "try.sh: the plugin answered through OpenResty, its log hook wrote:\n" + out)

    prefix = os.path.join(home, "shmring-sdk")
    for f in ["bin/shmring-plugin-new", "include/shmring/shmring_plugin.h",
              "include/shmring/protocol.h", "include/shmring/plugin_test.h",
              "lib/libshmring_plugin_test.a", "lib/libshmring_plugin_host.a",
              "lib/cmake/shmring/shmringConfig.cmake",
              "lib/cmake/shmring/shmringConfigVersion.cmake",
              "lib/pkgconfig/shmring-plugin.pc", "lib/pkgconfig/shmring-plugin-test.pc",
              "share/shmring/plugin-template/CMakeLists.txt",
              "share/doc/shmring/writing-plugins.md"]:
        check(os.path.exists(os.path.join(prefix, f)), "%s installed" % f)
    greet = os.path.join(home, "greet")
    for f in ["greet.c", "test_greet.c", "CMakeLists.txt", "README.md", "openresty.conf.in", "try.sh",
              "kong/plugins/shmring-greet/handler.lua", "kong/plugins/shmring-greet/schema.lua"]:
        check(os.path.exists(os.path.join(greet, f)), "generated " + f)
    rc, out = run([os.path.join(prefix, "bin", "shmring-plugin-new"), "greet", "--dir", greet],
                  ok=None)
    check(rc != 0 and "not empty" in out, "an existing project is not overwritten: " + out)
    projects = os.path.join(tmp, "projects")
    os.makedirs(projects)
    rc, out = run([os.path.join(prefix, "bin", "shmring-plugin-new"), "Bad.Name"], ok=None,
                  cwd=projects)
    check(rc == 2 and "not a plugin name" in out, "a bad name is refused: " + out)
    # each line a good name: refused as a whole, nothing written
    rc, out = run([os.path.join(prefix, "bin", "shmring-plugin-new"), "ok\nrm"], ok=None,
                  cwd=projects)
    check(rc == 2 and "not a plugin name" in out and not os.listdir(projects),
          "a name with a newline is refused: " + out)

    # Built from the prefix alone: nothing of the source tree on any path.
    gbuild = os.path.join(greet, "build")
    env = dict(env, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    cache = open(os.path.join(gbuild, "CMakeCache.txt")).read()
    check("shmring_DIR:PATH=%s/lib/cmake/shmring" % prefix in cache,
          "find_package(shmring) found the prefix's package")
    check(stack.REPO not in cache, "the generated build names nothing of the source tree")
    so = os.path.join(gbuild, "greet.so")
    check(os.path.exists(so), "greet.so built")

    # The pkg-config way builds the same plugin and test.
    _, flags = run(["pkg-config", "--define-prefix", "--cflags", "shmring-plugin"], env=env)
    check("-I%s/include" % prefix in flags, "shmring-plugin.pc points into the prefix: " + flags)
    pc_so = os.path.join(tmp, "greet-pc.so")
    run(["cc", "-shared", "-fPIC", "-o", pc_so, os.path.join(greet, "greet.c")] + flags.split(), env=env)
    _, tflags = run(["pkg-config", "--define-prefix", "--cflags", "--libs", "shmring-plugin-test"],
                    env=env)
    pc_test = os.path.join(tmp, "test-greet-pc")
    run(["cc", "-o", pc_test, '-DPLUGIN_SO="%s"' % pc_so, os.path.join(greet, "test_greet.c")]
        + tflags.split(), env=env)
    rc, out = run([pc_test], ok=None,
                  env=dict(env, LD_LIBRARY_PATH=os.path.join(prefix, "lib")))
    check(rc == 0 and out.strip().endswith("ok"), "the pkg-config built test passes: " + out)

    # Its Kong schema is what shmringctl makes of the plugin's C schema.
    _, out = run([os.path.join(prefix, "bin", "shmringctl"), "schema", so, "--kong"])
    check(out == open(os.path.join(greet, "kong/plugins/shmring-greet/schema.lua")).read(),
          "the generated schema.lua is shmringctl's:\n" + out)

    shmringd = os.path.join(prefix, "bin", "shmringd")
    rc, out = run([shmringd, "--check", so, '{"colour": "red"}'], ok=None)
    check(rc == 2 and "config refused: greet: unknown config field 'colour'" in out,
          "--check refuses a bad config with the plugin's message:\n" + out)

    # The wrong ABI: refused by --check and by the daemon.
    bad = generate(prefix, projects, "badabi")
    src = os.path.join(bad, "badabi.c")
    text = open(src).read()
    check(".abi_version = SHMRING_PLUGIN_ABI_VERSION," in text, "the descriptor names the ABI")
    open(src, "w").write(text.replace(".abi_version = SHMRING_PLUGIN_ABI_VERSION,",
                                      ".abi_version = SHMRING_PLUGIN_ABI_VERSION + 1,"))
    bad_so = os.path.join(cmake_build(bad, prefix, env), "badabi.so")
    want = "plugin ABI version 2, this shmringd speaks version 1"
    rc, out = run([shmringd, "--check", bad_so], ok=None)
    check(rc == 2 and want in out, "--check refuses the wrong ABI:\n" + out)
    bad_dir = os.path.join(tmp, "bad-plugins")
    os.makedirs(bad_dir)
    os.symlink(bad_so, os.path.join(bad_dir, "badabi.so"))
    p = subprocess.run([shmringd, "--foreground", "--plugin-dir", bad_dir,
                        "--shm-dir", os.path.join(tmp, "bad-shm"), "--workers", "1"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode != 0 and want in p.stderr,
          "the daemon refuses the wrong ABI (%d): %s" % (p.returncode, p.stderr))

    # A real shmringd and nginx, the Kong stub on the PDK double.
    lua = os.path.join(tmp, "lua")
    os.makedirs(lua)
    open(os.path.join(lua, "greet_routes.lua"), "w").write(ROUTES)
    plugin_dir = os.path.join(tmp, "plugins")
    os.makedirs(plugin_dir)
    os.symlink(so, os.path.join(plugin_dir, "greet.so"))
    lua_dirs = [os.path.join(prefix, "share", "lua", "5.1"), greet, lua]
    with PluginStack(build, prefix, plugin_dir, lua_dirs) as st:
        status, hdrs, body = st.get_json("/kong/greet/x?a=1")
        check(status == 200 and body["headers"].get("x-greet") == "hi",
              "the header the plugin sets arrives upstream (%d %s)" % (status, body))
        check(hdrs.get("x-greet") == "hi", "and on the response (%s)" % hdrs)
        log = os.path.join(st.prefix, "greet.log")
        lines = []

        def logged():
            lines[:] = open(log).read().splitlines() if os.path.exists(log) else []
            return lines

        wait_for(logged, 10, "the log hook never wrote greet.log")
        check(re.match(r"^200 GET /kong/greet/x\?a=1$", lines[0]), "the log line: %s" % lines)

    run(["rm", "-rf", tmp])
    done()


main()
