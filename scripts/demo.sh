#!/usr/bin/env bash
# make demo  -> scripts/demo.sh <build-dir>
# make serve -> scripts/demo.sh <build-dir> --serve PORT
# Starts shmringd and nginx on loopback under a private prefix ($DEMO_DIR or
# <build-dir>/demo), sends traffic through every route, prints what each did
# and stops everything (the Python runner cleans up on exit, Ctrl-C, SIGTERM).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: scripts/demo.sh <build-dir> [--serve PORT]}"
shift
if [ "${1:-}" = "--serve" ] && [ -z "${2:-}" ]; then
  echo "usage: make serve PORT=N" >&2
  exit 2
fi
if [ ! -x "$build/bin/shmringd" ] && [ ! -x "$build/worker/shmringd" ]; then
  echo "demo: shmringd is not built in $build (bin/ or worker/)" >&2
  exit 1
fi
exec python3 "$here/demo/run_demo.py" "$build" "$@"
