#!/usr/bin/env bash
# Crossings (kernel requests the mount answered) and requests to the bricks per entry of npm's
# tree, and the time, for an untar, a cp -r of the untarred tree and an rm -rf of it, on a
# mount started with BRICKFS_PROFILE=1 in its environment:
#   BRICKFS_PROFILE=1 brickfs mount localhost:/VOL MNT [-o ...]
#   scripts/count-requests.sh MNT [LABEL]
# Each workload starts with the kernel's caches dropped (as `brickfs bench` does). Per op:
# "fuse OP n" (kernel requests, from the bridge's profile) and "rpc OP n" (protocol/client).
set -euo pipefail
MNT=$1; L=${2:-run}
key=$(echo "$MNT" | tr / _)
PID=$(cat "/run/brickfs/mounts/$key.pid"); LOG=/run/brickfs/mounts/$key.log
TAR=/tmp/npm.tar
[ -f $TAR ] || tar -C "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/lib/node_modules/npm" -cf $TAR .
ENTRIES=$(tar tf $TAR | grep -vc '^\./$')
# The profile table the mount writes to its log on SIGUSR2 (and resets); the log is JSON
# lines whose msg holds the table.
dump() {
  local n; n=$(wc -l <"$LOG"); kill -USR2 "$PID"; sleep 0.7
  tail -n +"$((n + 1))" "$LOG" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      for (const line of s.split("\n")) {
        let text = line; try { text = JSON.parse(line).msg ?? line; } catch {}
        for (const l of String(text).split("\n")) {
          const m = /^(fuse|rpc)\s+(\S+)\s+(\d+)/.exec(l);
          if (m) console.log(m[1], m[2], m[3]);
        }
      }
    });'
}
# "layer: N per entry (op n, ...)" for both layers, from a dump.
summarize() {
  awk -v e="$ENTRIES" '{ t[$1] += $3; ops[$1] = ops[$1] sprintf("%s %d, ", $2, $3) }
    END { for (k in t) printf "  %-4s %5.2f per entry (%s)\n", k, t[k] / e, substr(ops[k], 1, length(ops[k]) - 2) }' | sort
}
run() {
  local what=$1; shift
  sync; echo 3 >/proc/sys/vm/drop_caches
  local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N)
  echo "$L $what: $(echo "$e - $s" | bc) s, $ENTRIES entries"
  dump | summarize
}
dump >/dev/null
rm -rf "$MNT/u.$L" "$MNT/c.$L"; mkdir "$MNT/u.$L"
run untar tar -C "$MNT/u.$L" -xf $TAR
run "cp -r" cp -r "$MNT/u.$L" "$MNT/c.$L"
run "rm -rf" rm -rf "$MNT/u.$L"
rm -rf "$MNT/c.$L"; dump >/dev/null
