#!/usr/bin/env bash
# Brings up brickfs volumes of the shapes ../shared/tools/gluster-ref.sh makes, for
# `brickfs bench` side by side: bdist (distribute 2) and brep (2 x 2 replica), mounted at
# /var/tmp/bfs/mnt-bdist and /var/tmp/bfs/mnt-brep through the CLI, by a daemon on port 7027.
# Usage: scripts/bench-volumes.sh up|down. Needs root and FUSE. BFS_BENCH_ROOT, BFS_BENCH_PORT and
# BFS_BENCH_BRICK_PORT_BASE move everything, so a second set can run beside the first.
set -euo pipefail
ROOT=${BFS_BENCH_ROOT:-/var/tmp/bfs}
PORT=${BFS_BENCH_PORT:-7027}
BRICK_PORT_BASE=${BFS_BENCH_BRICK_PORT_BASE:-7400}
BFS="node $(cd "$(dirname "$0")/.." && pwd)/bin/brickfs.js"
B="$BFS --server localhost:$PORT"

down() {
  set +e
  for v in bdist brep; do $BFS umount "$ROOT/mnt-$v" >/dev/null 2>&1; $B volume stop "$v" >/dev/null 2>&1; done
  [ -f "$ROOT/daemon.pid" ] && kill "$(cat "$ROOT/daemon.pid")" 2>/dev/null
  rm -rf "$ROOT"
}

up() {
  down
  mkdir -p "$ROOT/mnt-bdist" "$ROOT/mnt-brep"
  $BFS daemon --port $PORT --state "$ROOT/state" --brick-port-base $BRICK_PORT_BASE >"$ROOT/daemon.log" 2>&1 &
  echo $! >"$ROOT/daemon.pid"
  for _ in $(seq 50); do curl -sf "localhost:$PORT/v1/health" >/dev/null && break; sleep 0.2; done
  $B volume create bdist localhost:$ROOT/bdist-1 localhost:$ROOT/bdist-2 --force >/dev/null
  $B volume create brep replica 2 localhost:$ROOT/brep-1 localhost:$ROOT/brep-2 localhost:$ROOT/brep-3 localhost:$ROOT/brep-4 --force >/dev/null
  for v in bdist brep; do
    $B volume start "$v" >/dev/null
    $B mount "localhost:$PORT:/$v" "$ROOT/mnt-$v" ${MOUNT_OPTS:+-o "$MOUNT_OPTS"}
  done
  echo "mounted $ROOT/mnt-bdist (distribute 2) and $ROOT/mnt-brep (2 x 2 replica)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
