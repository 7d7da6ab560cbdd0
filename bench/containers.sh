#!/usr/bin/env bash
# The container runtime's cost around initbox: start-to-exit of
#   podman run --rm --network host --read-only --cap-drop all IMAGE wait-for-tcp --once HOST:PORT
# beside the same static binary run directly, and the image's size (uncompressed as podman
# stores it, compressed as a registry serves it: `podman save`'s docker-archive, gzip -9).
# The runtime recipe is tests/containers.rs's (runc, cgroupfs, default_ulimits = []).
#
# usage: bench/containers.sh [ITERATIONS]     (builds the static binary and the image once)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
work=$(mktemp -d /var/tmp/initbox-bench-containers-XXXXXX)
printf '[containers]\ndefault_ulimits = []\n' > "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
pm=(podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs --runtime runc --cgroup-manager cgroupfs --events-backend file)
cleanup() {
  [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null || true
  "${pm[@]}" system reset --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bin=$(bash scripts/build-static.sh)
mkdir -p "$work/ctx"
cp Dockerfile "$work/ctx/"
bash scripts/image-rootfs.sh "$bin" "$work/ctx/dist/rootfs" >/dev/null
"${pm[@]}" build -q --build-arg BINARY_SOURCE=prebuilt -t localhost/initbox:bench "$work/ctx" >/dev/null
size=$("${pm[@]}" image inspect --format '{{.Size}}' localhost/initbox:bench)
gz=$("${pm[@]}" save --format docker-archive localhost/initbox:bench 2>/dev/null | gzip -9 | wc -c)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1',$port)); s.listen(128); time.sleep(3600)" &
listener=$!
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done

median_ms() { sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1e6}'; }
time_n() { # CMD... -> median start-to-exit in ms over N runs
  for _ in $(seq "$N"); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    echo $((t1 - t0))
  done | median_ms
}
inside=$(time_n "${pm[@]}" run --rm --network host --read-only --cap-drop all localhost/initbox:bench wait-for-tcp --once "127.0.0.1:$port")
outside=$(time_n "$bin" wait-for-tcp --once "127.0.0.1:$port")

printf '%-58s %12s\n' "image size, uncompressed (podman image inspect)" "$((size / 1024)) KiB"
printf '%-58s %12s\n' "image size, compressed (docker-archive | gzip -9)" "$((gz / 1024)) KiB"
printf '%-58s %12s\n' "podman run --rm … wait-for-tcp --once (median of $N)" "$inside ms"
printf '%-58s %12s\n' "wait-for-tcp --once, static binary, no container" "$outside ms"
