#!/bin/sh
# Try the plugin end to end without Kong: a shmringd of this install with
# build/@NAME@.so, nginx with openresty.conf.in on 127.0.0.1:$PORT (default
# 8089), one request through both (curl -i), then both stopped. Needs Debian's
# nginx and libnginx-mod-http-lua (shmring's `make demo` installs them).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=@PREFIX@
port=${PORT:-8089}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -f "$here/build/@NAME@.so" ] || { echo "try.sh: build the plugin first (README.md)" >&2; exit 1; }

run=$(mktemp -d "${TMPDIR:-/tmp}/shmring-@NAME@.XXXXXX")
chmod 755 "$run"
mkdir -p "$run/tmp"
# nginx's workers open the daemon's segments (mode 0660): run them as us.
# As root, shmringd wants its user named (docs/daemon.md, Security model):
# this throw-away try runs both as root, which a real install never does.
user_line=""
daemon_user=""
if [ "$(id -u)" -eq 0 ]; then
	user_line="user root root;"
	daemon_user="--user root"
fi
sed -e "s|@RUN@|$run|g" -e "s|@PORT@|$port|g" -e "s|@USER_LINE@|$user_line|g" \
	"$here/openresty.conf.in" >"$run/nginx.conf"

"$prefix/bin/shmringd" --foreground --plugin-dir "$here/build" --shm-dir "$run/shm" \
	--workers 1 --channels 2 --plugin-file-dirs "$run" $daemon_user >"$run/shmringd.log" 2>&1 &
daemon=$!
stop() {
	[ ! -f "$run/nginx.pid" ] || kill "$(cat "$run/nginx.pid")" 2>/dev/null || true
	kill "$daemon" 2>/dev/null || true
	wait "$daemon" 2>/dev/null || true
}
trap stop EXIT
i=0
until [ -e "$run/shm/ch-0.bell" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$daemon" 2>/dev/null; then
		cat "$run/shmringd.log" >&2
		exit 1
	fi
	sleep 0.1
done
"$nginx" -p "$run" -c "$run/nginx.conf"
curl -sS -i --retry 20 --retry-connrefused --retry-delay 1 "http://127.0.0.1:$port/hello?a=1"
# The log line: written by the daemon's sink within its flush interval.
i=0
until [ -s "$run/@NAME@.log" ] || [ $i -ge 30 ]; do
	i=$((i + 1))
	sleep 0.1
done
echo "--- $run/@NAME@.log (the log hook):"
cat "$run/@NAME@.log" 2>/dev/null || echo "(nothing written)"
