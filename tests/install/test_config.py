"""Errors an operator can act on, from the built shmringd and shmringctl:
- every config file error names file, line and key, each with its own line;
  range errors and an unknown user too; command-line errors name the option;
- a missing, unreadable or empty plugin_dir, or a plugin that does not load, makes
  --check exit 2 with the reason (allow_plugin_errors = on lets it pass);
- --help, the example config and docs/daemon.md describe every key with the same
  words and default;
- shmringctl usage errors say what was wrong; stats --json prints the 64-bit
  epoch as a string equal to the table's.
Usage: test_config.py BUILD_DIR"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

from install_common import SRC, as_nobody, check, done, run, scratch_dir, wait_for


def shmringd_lines(out):
    return [line for line in out.splitlines() if line.startswith("shmringd: ")]


def parse_help(text):
    """key -> (help, default) from `shmringd --help`."""
    lines = text.splitlines()
    keys, cur = {}, None
    for line in lines[lines.index("Keys:") + 1:]:
        m = re.match(r"^      --(\S+)\s+(.*)$", line)
        if m:
            cur = m.group(1)
            keys[cur] = m.group(2)
        elif cur and line.startswith(" " * 31) and line.strip():
            keys[cur] += " " + line.strip()
        else:
            cur = None
    out = {}
    for k, t in keys.items():
        m = re.match(r"^(.*) \(default (.*)\)$", t)
        check(m, "--help gives a default for %s" % k)
        out[k] = (m.group(1), m.group(2))
    return out


def parse_conf(text):
    """key -> the comment block just above its `key =` line, joined."""
    out, block = {}, []
    for line in text.splitlines():
        m = re.match(r"^#?(\w+) = ", line)
        if m and block:
            out[m.group(1)] = " ".join(block)
            block = []
        elif line.startswith("# "):
            block.append(line[2:].strip())
        else:
            block = []
    return out


def parse_docs_table(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\| `(\w+)` \| (.*?) \| (.*) \|$", line)
        if m:
            out[m.group(1)] = (m.group(3), m.group(2))
    return out


def test_key_words(shmringd, build):
    _, text = run([shmringd, "--help"])
    helps = parse_help(text)
    check(len(helps) >= 20, "--help lists the keys")
    conf = parse_conf(open(os.path.join(build, "conf", "shmringd.conf")).read())
    docs = parse_docs_table(open(os.path.join(SRC, "docs", "daemon.md")).read())
    for key, (words, default) in helps.items():
        check(conf.get(key) == "%s (default %s)" % (words, default),
              "example config says for %s:\n  %s\nnot --help's:\n  %s (default %s)"
              % (key, conf.get(key), words, default))
        docs_default = "`<libdir>/shmring/plugins`" if key == "plugin_dir" else default
        check(docs.get(key) == (words, docs_default),
              "docs/daemon.md says for %s: %s, not --help's %s" % (key, docs.get(key),
                                                                   (words, docs_default)))
    check(set(conf) == set(helps) and set(docs) == set(helps),
          "the same keys in --help, the example config and the docs")


def test_config_errors(shmringd, tmp):
    conf = os.path.join(tmp, "bad.conf")
    cases = [
        ("each error with its own line and key",
         "workers = 2\n# a comment\nchannels = many\n\nbogus_key = 1\n",
         ["3: channels: wants a number, got 'many'",
          "5: bogus_key: unknown key (shmringd --help lists them)"]),
        ("range errors name file, line and key", "\n\nworkers = 0\nring_size = 1000\n",
         ["3: workers: must be 1..64, got 0",
          "4: ring_size: must be a power of two, 4096..1073741824, got 1000"]),
        ("unknown user names file, line and key", "# run as\nuser = no-such-user-here\n",
         ["2: user: unknown user 'no-such-user-here'"]),
        ("a budget the entity cache's bound fills is refused",
         "entity_cache_entries = 8192\nchannel_memory_mb = 16\n",
         ["2: channel_memory_mb: must leave room for configs beside the entity cache's bound "
          "(entity_cache_entries 8192 x 2048 bytes = 16777216 bytes), got 16 MiB"]),
        ("a syntax error names its line", "workers = 2\nthis is not a key value line\n",
         ["2: syntax error (want key = value)"]),
        ("a line too long for inih is refused, not cut",
         "plugin_dir = /%s\nchannels = many\n" % ("d" * 250),
         ["1: line longer than 198 characters", "2: channels: wants a number, got 'many'"]),
    ]
    for what, text, errors in cases:
        open(conf, "w").write(text)
        rc, out = run([shmringd, "--config", conf, "--check"], ok=None)
        check(rc == 2 and shmringd_lines(out) == ["shmringd: %s:%s" % (conf, e) for e in errors],
              "%s (exit %d):\n%s" % (what, rc, out))

    rc, out = run([shmringd, "--workers=0", "--check"], ok=None)
    check(rc == 2 and shmringd_lines(out) == ["shmringd: --workers: must be 1..64, got 0"],
          "a command-line error names the option:\n" + out)


def test_plugin_dir(shmringd, build, tmp):
    plugins = os.path.join(build, "plugins")
    rc, out = run([shmringd, "--check", "--plugin-dir", plugins], ok=None)
    check(rc == 0 and "plugin hello" in out, "the built plugins pass --check:\n" + out)

    missing = os.path.join(tmp, "no-such-dir")
    rc, out = run([shmringd, "--check", "--plugin-dir", plugins + ":" + missing], ok=None)
    check(rc == 2 and "plugin_dir %s: No such file or directory" % missing in out,
          "a missing plugin_dir fails --check:\n" + out)
    rc, out = run([shmringd, "--check", "--plugin-dir", missing, "--allow-plugin-errors"], ok=None)
    check(rc == 0, "allow_plugin_errors lets a missing plugin_dir pass:\n" + out)

    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    rc, out = run([shmringd, "--check", "--plugin-dir", empty], ok=None)
    check(rc == 2 and "no plugin (*.so) in plugin_dir " + empty in out,
          "a plugin_dir without plugins fails --check:\n" + out)

    broken = os.path.join(tmp, "broken")
    os.mkdir(broken)
    shutil.copy(os.path.join(plugins, "hello.so"), broken)
    open(os.path.join(broken, "truncated.so"), "w").write("not an ELF file")
    rc, out = run([shmringd, "--check", "--plugin-dir", broken], ok=None)
    check(rc == 2 and "cannot load plugin %s/truncated.so" % broken in out,
          "a plugin that does not load fails --check:\n" + out)

    # Unreadable: as a user that may not list it (root may list anything).
    locked = os.path.join(tmp, "locked")
    os.mkdir(locked)
    shutil.copy(os.path.join(plugins, "hello.so"), locked)
    os.chmod(locked, 0o300)
    rc, out = run(as_nobody([shmringd, "--check", "--plugin-dir", locked]), ok=None)
    check(rc == 2 and "plugin_dir %s: Permission denied" % locked in out,
          "an unreadable plugin_dir fails --check:\n" + out)


def test_shmringctl(shmringctl, shmringd, build, tmp):
    for args, says in [([], "no command given"), (["stat"], "unknown command 'stat'"),
                       (["--shm-dir"], "--shm-dir needs a directory"),
                       (["stats", "--jsn"], "unknown option '--jsn'"),
                       (["--json"], "--json goes with a command")]:
        rc, out = run([shmringctl] + args, ok=None)
        check(rc == 2 and out.startswith("shmringctl: ") and says in out.splitlines()[0],
              "shmringctl %s says %r:\n%s" % (" ".join(args), says, out))

    shm = os.path.join(tmp, "shm")
    daemon = subprocess.Popen([shmringd, "--foreground", "--shm-dir", shm, "--plugin-dir",
                               os.path.join(build, "plugins"), "--workers", "1",
                               "--channels", "2"]
                              + (["--user", "root"] if os.getuid() == 0 else []),
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: subprocess.run([shmringctl, "--shm-dir", shm, "stats"],
                                        capture_output=True).returncode == 0,
                 15, "shmringctl never read the instance")
        _, out = run([shmringctl, "--shm-dir", shm, "stats", "--json"])
        epoch = json.loads(out)["epoch"]
        _, table = run([shmringctl, "--shm-dir", shm, "stats"])
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)
    check(isinstance(epoch, str) and re.fullmatch(r"[0-9]+", epoch), "epoch is a JSON string")
    m = re.search(r"epoch ([0-9a-f]{16})", table)
    check(m and int(m.group(1), 16) == int(epoch), "the JSON epoch is the table's, exactly")


def main():
    build = sys.argv[1]
    shmringd = os.path.join(build, "bin", "shmringd")
    shmringctl = os.path.join(build, "bin", "shmringctl")
    tmp = scratch_dir("config")
    test_key_words(shmringd, build)
    test_config_errors(shmringd, tmp)
    test_plugin_dir(shmringd, build, tmp)
    test_shmringctl(shmringctl, shmringd, build, tmp)
    shutil.rmtree(tmp)
    done()


main()
