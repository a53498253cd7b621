#!/usr/bin/env bash
# The 3-host pool walk-through of docs/pool.md on one machine, from the CLI, as a transcript.
#
# Makes four "hosts" as network namespaces on a bridge (as test/helpers/hosts.ts does):
# host N is 10.78.0.N/24 on a veth whose other end is on the bridge 10.78.0.254 in the root
# namespace. Runs a 3-member etcd (one member on each of hosts 1-3) and one `brickfs daemon`
# per host, inside its namespace with `nsenter --net` (so FUSE mounts made there are visible
# here). Then, through the brickfs CLI only: peers and pool, a distribute volume with a brick
# per host and a mount through host 2, a replica 3 volume and its heal info, a fourth host
# added to the distribute volume and rebalanced, host 1's daemon killed and seen Disconnected.
# Every command is echoed as `$ brickfs ...` before its output.
#
# Everything it starts is removed on exit, success or failure: mounts, every process in the
# namespaces (daemons, bricks, etcd, rebalance and self-heal processes), namespaces, veths,
# the bridge and the temp dir. Root only; about 45 s on a 2-CPU machine.
set -euo pipefail

usage() {
  echo "usage: sudo $0   (no arguments; needs root, iproute2, nsenter, etcd (etcd-server), fuse3, node; prints the transcript to stdout)"
}
if [ $# -gt 0 ]; then
  usage
  case "$1" in -h|--help) exit 0 ;; *) exit 2 ;; esac
fi
if [ "$(id -u)" != 0 ]; then usage >&2; echo "run it as root" >&2; exit 2; fi
for tool in ip nsenter etcd node curl fusermount3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: apt-get install iproute2 util-linux etcd-server fuse3 curl)" >&2; exit 2; }
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLI="$REPO/bin/brickfs.js"
NODE=$(command -v node)
NET=10.78.0
NHOSTS=4
PFX=bwalk            # names: bwalk-h1..4 (namespaces), bwalk-v1..4 (veths), bwalk-br (bridge)
BRIDGE=$PFX-br
STORE="etcd://$NET.1:2379,$NET.2:2379,$NET.3:2379"

# The subnet and the names must be free on this machine.
if ip -4 -o addr show | grep -q " $NET\." || ip -4 route show table all | grep -q "$NET\."; then
  echo "$NET.0/24 is in use on this machine (ip -4 addr / ip route): refusing to touch it" >&2; exit 1
fi
if ip netns list | grep -q "^$PFX-" || ip -o link show | grep -q ": $PFX-"; then
  echo "namespaces or links named $PFX-* exist already (another walk-through running, or one killed -9?)" >&2; exit 1
fi

T=$(mktemp -d /tmp/brickfs-walk.XXXXXX)
# The token, the mounts' pidfiles and the stats sockets of this walk-through stay in here,
# apart from any brickfs already running on this machine (/run/brickfs).
export BRICKFS_RUN_DIR="$T/run"
MOUNTS=()
made_bridge=0
made_hosts=0

ns() { echo "$PFX-h$1"; }
in_host() { local h=$1; shift; nsenter --net="/run/netns/$(ns "$h")" -- "$@"; }
mounted() { grep -q " $1 " /proc/mounts; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  echo
  echo "# cleaning up"
  for m in "${MOUNTS[@]}"; do
    mounted "$m" || continue
    # brickfs umount from the host that mounted it (the mount's pidfile is in BRICKFS_RUN_DIR), else lazily.
    timeout 20 "$NODE" "$CLI" umount "$m" >/dev/null 2>&1 || true
    mounted "$m" && { fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
  done
  # Every process in the namespaces: daemons, bricks (detached from their daemons), etcd,
  # rebalance and self-heal processes, mount clients.
  local round pids h
  for round in $(seq 1 100); do
    pids=""
    for h in $(seq 1 "$made_hosts"); do pids="$pids $(ip netns pids "$(ns "$h")" 2>/dev/null | tr '\n' ' ')"; done
    [ -z "${pids// /}" ] && break
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null
    sleep 0.1
  done
  for h in $(seq 1 "$made_hosts"); do
    ip netns del "$(ns "$h")" 2>/dev/null
    ip link del "$PFX-v$h" 2>/dev/null   # gone with its namespace's end already, normally
  done
  [ "$made_bridge" = 1 ] && ip link del "$BRIDGE" 2>/dev/null
  if grep -q " $T" /proc/mounts; then
    echo "# something is still mounted under $T: left it there" >&2
  else
    rm -rf "$T"
  fi
  if [ "$rc" = 0 ]; then echo "# done"; else echo "# FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Echoes the command as a transcript line, then runs it in host H's namespace with its output.
# bfs H ARGS...: `brickfs --server 10.78.0.H ARGS` run inside host H.
bfs() {
  local h=$1; shift
  echo "\$ brickfs --server $NET.$h $*"
  local rc=0
  in_host "$h" timeout 120 "$NODE" "$CLI" --server "$NET.$h" "$@" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then echo "(exit $rc)"; return "$rc"; fi
}
# run CMD: echoes a shell command as a transcript line and runs it here.
run() {
  echo "\$ $*"
  bash -c "$*" 2>&1
}
say() { echo; echo "# $*"; }

# Files in a brick, its private directory and DHT link files (mode ---------T) left out.
count_cmd() { echo "find $1 -path $1/.brickfs -prune -o -type f ! -perm -1000 -print | wc -l"; }
counts() {
  local total=0 n h
  for h in "$@"; do
    echo "\$ $(count_cmd "$T/h$h/dist")    # host $h's brick"
    n=$(bash -c "$(count_cmd "$T/h$h/dist")")
    echo "$n"
    total=$((total + n))
    if [ "$n" = 0 ]; then echo "host $h's brick holds no file" >&2; return 1; fi
  done
  echo "# total: $total"
  [ "$total" = 300 ] || { echo "expected 300 files over the bricks, found $total" >&2; return 1; }
}

# ---------------------------------------------------------------- hosts
echo "# brickfs pool walk-through: $(date -u '+%Y-%m-%d %H:%M UTC'), $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# hosts: $NHOSTS network namespaces on bridge $BRIDGE ($NET.254), host N at $NET.N; temp dir $T"
ip link add "$BRIDGE" type bridge
made_bridge=1
ip link set "$BRIDGE" up
ip addr add "$NET.254/24" dev "$BRIDGE"
for h in $(seq 1 "$NHOSTS"); do
  ip netns add "$(ns "$h")"
  made_hosts=$h
  ip link add "$PFX-v$h" type veth peer name eth0 netns "$(ns "$h")"
  ip link set "$PFX-v$h" master "$BRIDGE" up
  ip -n "$(ns "$h")" addr add "$NET.$h/24" dev eth0
  ip -n "$(ns "$h")" link set eth0 up
  ip -n "$(ns "$h")" link set lo up
  mkdir -p "$T/h$h"
done

# ---------------------------------------------------------------- etcd
echo "# etcd: one member on each of hosts 1-3 ($NET.1-3:2379), data under $T/hN/etcd"
cluster=""
for h in 1 2 3; do cluster="$cluster${cluster:+,}m$h=http://$NET.$h:2380"; done
for h in 1 2 3; do
  in_host "$h" env -u ETCD_UNSUPPORTED_ARCH etcd --name "m$h" --data-dir "$T/h$h/etcd" \
    --listen-client-urls "http://$NET.$h:2379" --advertise-client-urls "http://$NET.$h:2379" \
    --listen-peer-urls "http://$NET.$h:2380" --initial-advertise-peer-urls "http://$NET.$h:2380" \
    --initial-cluster "$cluster" --initial-cluster-token "brickfs-walk-$$" --initial-cluster-state new \
    --heartbeat-interval 50 --election-timeout 500 >"$T/h$h/etcd.log" 2>&1 &
done
for h in 1 2 3; do
  for i in $(seq 1 60); do
    curl -sf -m 1 "http://$NET.$h:2379/health" 2>/dev/null | grep -q '"health":"true"' && break
    [ "$i" = 60 ] && { echo "etcd on $NET.$h not healthy in 30 s:" >&2; tail -20 "$T/h$h/etcd.log" >&2; exit 1; }
    sleep 0.5
  done
done
echo "# etcd healthy on $NET.1, $NET.2, $NET.3"

start_daemon() {
  local h=$1
  echo "\$ brickfs daemon --detach --listen $NET.$h --store $STORE --state $T/h$h/state    # in host $h"
  in_host "$h" timeout 60 "$NODE" "$CLI" daemon --detach --listen "$NET.$h" --store "$STORE" --state "$T/h$h/state" 2>&1 | tee "$T/h$h/daemon.pid"
}
say "one daemon per host (prints its pid)"
for h in 1 2 3; do start_daemon "$h"; done
D1_PID=$(tail -1 "$T/h1/daemon.pid")

# ---------------------------------------------------------------- 1. the pool
say "1. the pool: probe hosts 2 and 3 from host 1"
bfs 1 peer probe "$NET.2"
bfs 1 peer probe "$NET.3"
bfs 2 pool list
bfs 3 peer status

# ---------------------------------------------------------------- 2. distribute volume
say "2. a distribute volume with one brick per host"
bfs 1 volume create dist "$NET.1:$T/h1/dist" "$NET.2:$T/h2/dist" "$NET.3:$T/h3/dist"
bfs 1 volume start dist
bfs 3 volume info dist
bfs 2 volume status dist

# ---------------------------------------------------------------- 3. mount through host 2
say "3. mounted through host 2 (the client runs in host 2's namespace); 300 files"
mkdir -p "$T/mnt-dist"
MOUNTS+=("$T/mnt-dist")
bfs 2 mount "$NET.2:/dist" "$T/mnt-dist"
run "for i in \$(seq 1 300); do echo \"file \$i\" > $T/mnt-dist/f\$i; done"
run "ls $T/mnt-dist | wc -l"
counts 1 2 3

# ---------------------------------------------------------------- 4. replica 3
say "4. a replica 3 volume across the three hosts, mounted through host 3"
bfs 1 volume create rep replica 3 "$NET.1:$T/h1/rep" "$NET.2:$T/h2/rep" "$NET.3:$T/h3/rep"
bfs 1 volume start rep
mkdir -p "$T/mnt-rep"
MOUNTS+=("$T/mnt-rep")
bfs 3 mount "$NET.3:/rep" "$T/mnt-rep"
run "echo 'one file, three copies' > $T/mnt-rep/hello.txt"
run "cat $T/h1/rep/hello.txt $T/h2/rep/hello.txt $T/h3/rep/hello.txt"
bfs 1 volume heal rep info

# ---------------------------------------------------------------- 5. a fourth host
say "5. a fourth host joins; a brick on it added to dist, then a rebalance"
start_daemon 4
bfs 1 peer probe "$NET.4"
bfs 1 volume add-brick dist "$NET.4:$T/h4/dist"
bfs 1 volume rebalance dist start
bfs 1 volume rebalance dist status --watch --interval 1
run "ls $T/mnt-dist | wc -l"
counts 1 2 3 4

# ---------------------------------------------------------------- 6. a daemon dies
say "6. host 1's daemon killed; host 2 sees it Disconnected"
run "kill -9 $D1_PID    # host 1's daemon"
start=$SECONDS
out=""
while :; do
  out=$(in_host 2 timeout 20 "$NODE" "$CLI" --server "$NET.2" pool list 2>&1 || true)
  echo "$out" | grep -q "$NET.1 .*Disconnected" && break
  if [ $((SECONDS - start)) -ge 15 ]; then
    echo "\$ brickfs --server $NET.2 pool list"; echo "$out"
    echo "host 1 not Disconnected after 15 s" >&2; exit 1
  fi
  sleep 1
done
echo "\$ brickfs --server $NET.2 pool list    # polled each second: Disconnected after $((SECONDS - start)) s"
echo "$out"
