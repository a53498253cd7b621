#!/usr/bin/env bash
# Measures a rebalance as issue "grow and shrink a live volume" asks: a 2-brick volume with
# 2,000 files, mounted; fio on the mount before, then add-brick 2 + rebalance start and the
# same fio during the rebalance; the rebalance rate from its status; every file checked.
# Usage: scripts/rebalance-bench.sh [THROTTLE] (default normal). Needs root, fio, FUSE.
set -euo pipefail
THROTTLE=${1:-normal}
ROOT=/var/tmp/bfs-rb
PORT=7017
B="node $(dirname "$0")/../bin/brickfs.js --server localhost:$PORT"
FIO="fio --name=rb --filename=$ROOT/mnt/fio.dat --rw=randrw --rwmixread=50 --bs=64k --size=256M --runtime=20 --time_based --ioengine=psync --direct=0 --end_fsync=1 --output-format=terse --terse-version=3"

cleanup() {
  set +e
  node "$(dirname "$0")/../bin/brickfs.js" umount "$ROOT/mnt" >/dev/null 2>&1
  $B volume stop rb >/dev/null 2>&1
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null
  rm -rf "$ROOT"
}
trap cleanup EXIT
rm -rf "$ROOT"; mkdir -p "$ROOT/mnt"
node "$(dirname "$0")/../bin/brickfs.js" daemon --port $PORT --state "$ROOT/state" --brick-port-base 7300 >"$ROOT/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 50); do curl -sf "localhost:$PORT/v1/health" >/dev/null && break; sleep 0.2; done
$B volume create rb localhost:$ROOT/b1 localhost:$ROOT/b2 --force >/dev/null
$B volume start rb >/dev/null
$B mount localhost:$PORT:/rb "$ROOT/mnt"
echo "writing 2,000 files (4 KiB .. 256 KiB) in 20 directories"
for d in $(seq 0 19); do
  mkdir "$ROOT/mnt/d$d"
  for i in $(seq 0 99); do head -c $(( (RANDOM % 64 + 1) * 4096 )) /dev/urandom >"$ROOT/mnt/d$d/f$i"; done
done
(cd "$ROOT/mnt" && find d* -type f -print0 | sort -z | xargs -0 md5sum) >"$ROOT/before.md5"
MB=$(du -sm "$ROOT/b1" "$ROOT/b2" | awk '{s+=$1} END {print s}')
echo "data: $MB MiB"
mibs() { awk -F';' '{printf "read %.1f MiB/s, write %.1f MiB/s", $7/1024, $48/1024}'; }
echo "fio before (randrw 64k, 20 s): $($FIO | mibs)"
rm -f "$ROOT/mnt/fio.dat"
$B volume add-brick rb localhost:$ROOT/b3 localhost:$ROOT/b4 --force >/dev/null
sleep 3
$B volume rebalance rb start --throttle "$THROTTLE" >/dev/null
T0=$(date +%s.%N)
echo "fio during rebalance (throttle $THROTTLE): $($FIO | mibs)"
until $B volume rebalance rb status --json | grep -q '"state": *"\(completed\|failed\)"'; do sleep 0.5; done
T1=$(date +%s.%N)
$B volume rebalance rb status
$B volume rebalance rb status --json | node -e '
  const s = JSON.parse(require("fs").readFileSync(0, "utf8"));
  console.log(`rebalance: ${s.filesMoved} files, ${(s.bytesMoved / 1048576).toFixed(1)} MiB moved in ${s.elapsedS} s: ` +
    `${(s.filesMoved / s.elapsedS).toFixed(1)} files/s, ${(s.bytesMoved / 1048576 / s.elapsedS).toFixed(1)} MiB/s; failed ${s.filesFailed}`);'
echo "wall time from start to completed: $(echo "$T1 - $T0" | bc) s (fio ran for the first 20 s)"
for b in b1 b2 b3 b4; do echo "$b: $(find "$ROOT/$b" -path "$ROOT/$b/.brickfs" -prune -o -type f ! -perm 1000 -print | wc -l) files"; done
rm -f "$ROOT/mnt/fio.dat"
(cd "$ROOT/mnt" && find d* -type f -print0 | sort -z | xargs -0 md5sum) >"$ROOT/after.md5"
if cmp -s "$ROOT/before.md5" "$ROOT/after.md5"; then echo "all 2,000 files intact through the same mount"; else echo "FILES DIFFER"; exit 1; fi
