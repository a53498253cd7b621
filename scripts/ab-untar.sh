#!/usr/bin/env bash
# An A/B of two builds (or two mounts) on the small-file path: an untar of npm's tree and an
# rm -rf of it, alternately on two mounts, each with the kernel's caches dropped first; wall
# time and the CPU of the mount and of the bricks (processes whose command line matches
# PATTERN) per run. CPU is steadier than wall time on a shared machine.
#   scripts/ab-untar.sh ROUNDS MNT_A PATTERN_A MNT_B PATTERN_B
# With scripts/bench-volumes.sh up twice (BFS_BENCH_ROOT=/var/tmp/bfs-old BFS_BENCH_PORT=7037
# BFS_BENCH_BRICK_PORT_BASE=7500 for the second, from a worktree of the other build):
#   scripts/ab-untar.sh 4 /var/tmp/bfs-old/mnt-bdist bfs-old/state/vols/bdist/bricks \
#       /var/tmp/bfs/mnt-bdist bfs/state/vols/bdist/bricks
set -euo pipefail
R=$1; shift
TAR=/tmp/npm.tar
[ -f $TAR ] || tar -C "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/lib/node_modules/npm" -cf $TAR .
# user + system ticks (10 ms) of the given pids.
cpu() { local t=0 s p; for p in "$@"; do s=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0); t=$((t + s)); done; echo $t; }
one() {
  local M=$1 PAT=$2 key mp bp m0 b0 m1 b1 m2 b2 s e s2 e2
  key=$(echo "$M" | tr / _); mp=$(cat "/run/brickfs/mounts/$key.pid"); bp=$(pgrep -f "$PAT" | tr '\n' ' ')
  mkdir -p "$M/ab"; sync; echo 3 >/proc/sys/vm/drop_caches
  m0=$(cpu $mp); b0=$(cpu $bp); s=$(date +%s.%N)
  tar -C "$M/ab" -xf $TAR
  e=$(date +%s.%N); m1=$(cpu $mp); b1=$(cpu $bp)
  sync; echo 3 >/proc/sys/vm/drop_caches
  s2=$(date +%s.%N); rm -rf "$M/ab"; e2=$(date +%s.%N); m2=$(cpu $mp); b2=$(cpu $bp)
  printf "%-28s untar %5.2f s (mount %4d0 ms, bricks %4d0 ms)  rm %5.2f s (mount %4d0 ms, bricks %4d0 ms)\n" \
    "$M" "$(echo "$e - $s" | bc)" $((m1 - m0)) $((b1 - b0)) "$(echo "$e2 - $s2" | bc)" $((m2 - m1)) $((b2 - b1))
}
for i in $(seq "$R"); do
  if [ $((i % 2)) = 1 ]; then one "$1" "$2"; one "$3" "$4"; else one "$3" "$4"; one "$1" "$2"; fi
done
