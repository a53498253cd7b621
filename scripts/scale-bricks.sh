#!/usr/bin/env bash
# How a mount grows with the number of bricks (docs/pool.md, "How the design scales"): for
# each N given, a daemon on the file store makes a distribute volume of N bricks on this
# host, starts it and mounts it through the CLI; prints the time `brickfs mount` took, the
# time of the first `ls` and `stat` of a file, the CPU time the mount process used until
# then (less dependent on the machine's load than the times), its memory (VmRSS, VmHWM
# from /proc) and open fds, the sum of the brick processes' VmRSS, the daemon's VmRSS, and
# the time `volume start` took. Everything is removed again, also on failure.
# Usage: scripts/scale-bricks.sh [N ...] (default 8 16 32 64). Needs root and FUSE.
# SCALE_ROOT, SCALE_PORT and SCALE_BRICK_PORT_BASE move it out of the way of other daemons.
set -euo pipefail
ROOT=${SCALE_ROOT:-/var/tmp/bfs-scale}
PORT=${SCALE_PORT:-7047}
BRICK_PORT_BASE=${SCALE_BRICK_PORT_BASE:-7700}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(8 16 32 64)
for n in "${SIZES[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N ...] (N: a brick count, e.g. $0 8 16 32 64)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "$0: needs root (FUSE mounts and brick ports); run it with sudo" >&2; exit 1; }
BFS="node $(cd "$(dirname "$0")/.." && pwd)/bin/brickfs.js"
B="$BFS --server localhost:$PORT"
DAEMON_PID=
# The daemon on $PORT must be this script's own: another one's volumes are never touched.
if curl -s -o /dev/null "localhost:$PORT/"; then
  echo "$0: port $PORT is in use (another daemon?); give another with SCALE_PORT=..." >&2
  exit 1
fi

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
ms() { date +%s%3N; }
# utime + stime of a process in ms (/proc/PID/stat fields 14 and 15, in clock ticks).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"; }

ours() { [ -n "$DAEMON_PID" ] && curl -sf "localhost:$PORT/v1/health" | grep -q "\"pid\":$DAEMON_PID[,}]"; }

cleanup() {
  set +e
  for m in "$ROOT"/mnt-*; do [ -d "$m" ] && $BFS umount "$m" >/dev/null 2>&1; done
  if ours; then
    for n in "${SIZES[@]}"; do $B volume stop "v$n" >/dev/null 2>&1; done
  fi
  if [ -n "$DAEMON_PID" ]; then
    kill "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  rm -rf "$ROOT"
}
trap cleanup EXIT
rm -rf "$ROOT"
mkdir -p "$ROOT"
$BFS daemon --port "$PORT" --state "$ROOT/state" --brick-port-base "$BRICK_PORT_BASE" >"$ROOT/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do ours && break; sleep 0.1; done
ours || { echo "$0: the daemon did not come up on port $PORT:" >&2; cat "$ROOT/daemon.log" >&2; exit 1; }

printf '%6s %9s %8s %8s %9s %11s %11s %9s %13s %12s\n' bricks start_ms mount_ms ls_ms mount_cpu mount_rss mount_hwm mount_fds bricks_rss daemon_rss
for n in "${SIZES[@]}"; do
  v=v$n
  bricks=()
  for i in $(seq "$n"); do bricks+=("localhost:$ROOT/$v/b$i"); done
  $B volume create "$v" "${bricks[@]}" --force 2> >(grep -v "^warning: " >&2) >/dev/null
  t0=$(ms); $B volume start "$v" >/dev/null; t1=$(ms)
  mkdir -p "$ROOT/mnt-$v"
  t2=$(ms); $B mount "localhost:$PORT:/$v" "$ROOT/mnt-$v"; t3=$(ms)
  ls "$ROOT/mnt-$v" >/dev/null; echo x >"$ROOT/mnt-$v/f"; stat "$ROOT/mnt-$v/f" >/dev/null; t4=$(ms)
  mp=$(cat "${BRICKFS_RUN_DIR:-/run/brickfs}/mounts/$(echo "$ROOT/mnt-$v" | tr / _).pid")
  brss=0
  for f in "$ROOT/state/vols/$v/run/"*.pid; do brss=$((brss + $(kib "$(cat "$f")" VmRSS))); done
  printf '%6d %9d %8d %8d %6d ms %7d KiB %7d KiB %9d %9d KiB %8d KiB\n' "$n" $((t1 - t0)) $((t3 - t2)) $((t4 - t3)) \
    "$(cpu_ms "$mp")" "$(kib "$mp" VmRSS)" "$(kib "$mp" VmHWM)" "$(ls "/proc/$mp/fd" | wc -l)" "$brss" "$(kib "$DAEMON_PID" VmRSS)"
  $BFS umount "$ROOT/mnt-$v" >/dev/null
  $B volume stop "$v" >/dev/null
done
