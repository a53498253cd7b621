#!/usr/bin/env bash
# Mounts a local directory through brickfs's own FUSE bridge with storage/posix directly
# below it: no bricks, no network, no performance translators. The floor under every
# brickfs volume on this host, for `brickfs bench --compare` (docs/performance.md, "The FUSE
# floor"). Usage: scripts/passthrough-mount.sh DIR MNT; unmount with `brickfs umount MNT`.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DIR MNT   (then: node bin/brickfs.js umount MNT)" >&2; exit 2; }
mkdir -p "$1" "$2"
DIR=$(readlink -f "$1"); MNT=$2
TMP=$(mktemp -d); VOL=$TMP/passthrough.vol
trap 'rm -rf "$TMP"' EXIT
printf 'volume passthrough\n    type storage/posix\n    option directory %s\nend-volume\n' "$DIR" >"$VOL"
node "$(cd "$(dirname "$0")/.." && pwd)/bin/brickfs.js" mount --volfile "$VOL" "$MNT"
