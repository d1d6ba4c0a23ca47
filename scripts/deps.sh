#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only those that are missing.
# Usage: scripts/deps.sh build|lint|test|demo|bench
set -euo pipefail

build=(cmake make gcc clang pkg-config liburing-dev libmsgpack-dev libcmocka-dev
       libluajit2-5.1-dev libinih-dev libjansson-dev libssl-dev libhiredis-dev libxxhash-dev libcurl4-openssl-dev
       systemtap-sdt-dev)
runtime=(nginx libnginx-mod-http-lua lua-resty-core libluajit2-5.1-2 lua-cjson luajit2 curl python3)
lint=(clang-format)
# lintian, luarocks, systemd (systemd-analyze), dpkg-dev, file and strace: tests/install;
# prometheus (promtool) and linux-perf: tests/e2e/test_observe.py, tests/core/test_usdt.py.
extra_test=(redis-server lintian luarocks systemd dpkg-dev file strace prometheus linux-perf)
extra_bench=(wrk linux-perf python3-cryptography)

case "${1:-build}" in
  build) want=("${build[@]}") ;;
  lint) want=("${lint[@]}") ;;
  test) want=("${build[@]}" "${lint[@]}" "${runtime[@]}" "${extra_test[@]}") ;;
  demo) want=("${build[@]}" "${runtime[@]}") ;;
  bench) want=("${build[@]}" "${runtime[@]}" "${extra_test[@]}" "${extra_bench[@]}") ;;
  *) echo "usage: $0 build|lint|test|demo|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The Debian nginx package starts a system nginx on port 80; the project never uses it.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
