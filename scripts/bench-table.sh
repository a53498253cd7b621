#!/usr/bin/env bash
# Runs DESIGN.md's benchmark table on each directory given, one after the other, in one
# run: fio sequential 1 MiB write/read of a 512 MiB file, 4 KiB random write/read, then
# untar of npm's sources, find+stat and rm -rf. Prints one line per directory.
# (A stop-gap until `brickfs bench`; needs fio.)   scripts/bench-table.sh DIR...
set -euo pipefail
command -v fio >/dev/null || { echo "fio is missing: apt-get install fio" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
npm_dir=$(dirname "$(readlink -f "$(command -v npm)")")/..
tar -C "$npm_dir" -cf "$work/npm.tar" .
files=$(tar -tf "$work/npm.tar" | grep -vc '/$')
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
fiojson() { fio --output-format=json "$@" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s).jobs[0];const w=j.write.bw_bytes>0;const x=w?j.write:j.read;console.log(JSON.stringify({mibs:x.bw_bytes/1048576,iops:x.iops}))})'; }
num() { node -e "console.log(JSON.parse(process.argv[1]).$2.toFixed($3))" "$1"; }
printf '%-34s %10s %10s %10s %10s %9s %9s %9s\n' dir "seqW MiB/s" "seqR MiB/s" "randW IOPS" "randR IOPS" "untar s" "stat s" "rm s"
for d in "$@"; do
  t="$d/bench.$$"; mkdir -p "$t"
  sw=$(fiojson --name=sw --directory="$t" --rw=write --bs=1M --size=512M --end_fsync=1 --ioengine=psync)
  drop
  sr=$(fiojson --name=sw --directory="$t" --rw=read --bs=1M --size=512M --ioengine=psync)
  rw=$(fiojson --name=rw --directory="$t" --rw=randwrite --bs=4k --size=256M --runtime=15 --time_based --end_fsync=1 --ioengine=psync)
  drop
  rr=$(fiojson --name=rw --directory="$t" --rw=randread --bs=4k --size=256M --runtime=15 --time_based --ioengine=psync)
  rm -f "$t"/sw.* "$t"/rw.*
  drop
  s=$(date +%s.%N); tar -C "$t" -xf "$work/npm.tar"; untar=$(echo "$(date +%s.%N) - $s" | bc)
  drop
  s=$(date +%s.%N); find "$t" -exec stat -c %s {} + >/dev/null; fstat=$(echo "$(date +%s.%N) - $s" | bc)
  s=$(date +%s.%N); rm -rf "$t"; rmt=$(echo "$(date +%s.%N) - $s" | bc)
  printf '%-34s %10s %10s %10s %10s %9.2f %9.2f %9.2f\n' "$d" "$(num "$sw" mibs 0)" "$(num "$sr" mibs 0)" "$(num "$rw" iops 0)" "$(num "$rr" iops 0)" "$untar" "$fstat" "$rmt"
done
echo "(untar: $files files of npm's sources)"
