#!/usr/bin/env bash
# Request counts and times of an untar and an rm -rf of npm's tree on a profiled brickfs mount.
# Usage: scripts/count-requests.sh MNT [LABEL]   (mount started with BRICKFS_PROFILE=1)
set -e
MNT=$1; L=${2:-run}
key=$(echo "$MNT" | tr / _)
PID=$(cat /run/brickfs/mounts/$key.pid); LOG=/run/brickfs/mounts/$key.log
[ -f /tmp/npm.tar ] || tar -C "$(dirname "$(dirname "$(readlink -f "$(which node)")")")/lib/node_modules/npm" -cf /tmp/npm.tar .
dump() { local n; n=$(wc -l <"$LOG"); kill -USR2 "$PID"; sleep 0.7; tail -n +"$((n+1))" "$LOG"; }
rpcsum() { awk '$1=="rpc"{t+=$3; c[$2]+=$3} END{printf "rpc %d (xattrop %d, entrylk %d, create %d, lookup %d)", t, c["xattrop"], c["entrylk"], c["create"], c["lookup"]}'; }
dump >/dev/null
rm -rf "$MNT/u.$L"; mkdir "$MNT/u.$L"
s=$(date +%s.%N); tar -C "$MNT/u.$L" -xf /tmp/npm.tar; e=$(date +%s.%N)
echo "$L untar $(echo "$e - $s" | bc) s: $(dump | rpcsum)"
s=$(date +%s.%N); rm -rf "$MNT/u.$L"; e=$(date +%s.%N)
echo "$L rm    $(echo "$e - $s" | bc) s: $(dump | rpcsum)"
