#!/usr/bin/env bash
# Image and binary size per feature set, and pod-start latency modelled as process start-to-exit:
# one `initbox run` with three steps versus three separate initbox processes (= three init
# containers, minus the container runtime's own per-container start cost, which only widens the
# gap). Peer image sizes are the figures their projects/packages state (they cannot be pulled
# here); see shared reference crates-style-packaging.md §5.
#
# usage: bench/image.sh [ITERATIONS]      (release builds: a few minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
work=$(mktemp -d /var/tmp/initbox-bench-XXXXXX)
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() {
  [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null || true
  buildah "${store[@]}" rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

build() { # TARGET_DIR [CARGO_ARGS...] -> prints the binary's path
  local tdir=$1; shift
  echo "building static release binary $* ..." >&2
  CARGO_TARGET_DIR=$tdir bash scripts/build-static.sh "$@"
}

image() { # NAME BINARY -> prints "image_bytes layer_gzip_bytes"
  local name=$1 bin=$2 ctx="$work/ctx-$1"
  mkdir -p "$ctx"
  cp Dockerfile "$ctx/"
  bash scripts/image-rootfs.sh "$bin" "$ctx/dist/rootfs" >/dev/null
  buildah "${store[@]}" bud --quiet --build-arg BINARY_SOURCE=prebuilt -t "bench-$name" "$ctx" >/dev/null
  local size
  size=$(podman "${store[@]}" image inspect --format '{{.Size}}' "localhost/bench-$name")
  local gz
  gz=$(tar -C "$ctx/dist/rootfs" -cf - . | gzip -9 | wc -c)
  echo "$size $gz"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

ALL=$(build "$PWD/target/static")
WAITS=$(build "$PWD/target/static-waits" --no-default-features --features wait-for-tcp,wait-for-dns)

read -r all_img all_gz < <(image all "$ALL")
read -r waits_img waits_gz < <(image waits "$WAITS")

echo
echo "== size (static x86_64 binary; image = FROM scratch + CA bundle + passwd/group + links)"
printf '%-34s %12s %12s %14s\n' "" binary "image" "image gzip -9"
printf '%-34s %12s %12s %14s\n' "initbox, all applets ($("$ALL" --list | wc -l))" "$(mib "$(stat -c %s "$ALL")")" "$(mib "$all_img")" "$(mib "$all_gz")"
printf '%-34s %12s %12s %14s\n' "initbox, waits only (tcp, dns)" "$(mib "$(stat -c %s "$WAITS")")" "$(mib "$waits_img")" "$(mib "$waits_gz")"
echo "-- peers (stated sizes, not measured here; see crates-style-packaging.md §5):"
printf '%-34s %s\n' "busybox (official, compressed)" "~2.1 MB"
printf '%-34s %s\n' "atkrad/wait4x (alpine package)" "8.6 MiB pkg, 27.0 MiB installed, + alpine base"
printf '%-34s %s\n' "jwilder/dockerize (alpine pkg)" "3.3 MiB pkg, 9.2 MiB installed, + distroless"
printf '%-34s %s\n' "migrate/migrate (.deb)" "17.5 MB pkg, 56.9 MB installed, + alpine base"
printf '%-34s %s\n' "hairyhenderson/gomplate (alpine)" "29.0 MiB pkg, 116.6 MiB installed"
printf '%-34s %s\n' "hashicorp/vault (for vault agent)" "60.0 MB pkg, 359.0 MB installed (Arch)"
printf '%-34s %s\n' "groundnuty/k8s-wait-for (rebuilds)" "15.8-20 MB"

# ---- pod-start latency model -------------------------------------------------------------
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0)); s.listen(512)
open('$work/port', 'w').write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept(); c.close()
" &
listener=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
PORT=$(cat "$work/port")
cat > "$work/steps.yaml" <<YAML
steps:
  - {name: db, applet: wait-for-tcp, args: ["127.0.0.1:$PORT"]}
  - {name: cache, applet: wait-for-tcp, args: ["127.0.0.1:$PORT"]}
  - {name: queue, applet: wait-for-tcp, args: ["127.0.0.1:$PORT"]}
YAML

now_ns() { date +%s%N; }
time_loop() { # COMMAND...
  local start end
  start=$(now_ns)
  for _ in $(seq "$N"); do "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; done
  end=$(now_ns)
  echo $(( (end - start) / N / 1000 ))
}
three_processes() {
  "$ALL" wait-for-tcp -q "127.0.0.1:$PORT" && "$ALL" wait-for-tcp -q "127.0.0.1:$PORT" && "$ALL" wait-for-tcp -q "127.0.0.1:$PORT"
}
one_run() { "$ALL" run -q -f "$work/steps.yaml"; }
one_wait() { "$ALL" wait-for-tcp -q "127.0.0.1:$PORT"; }

# warm-up
one_run; three_processes
run_us=$(time_loop one_run)
three_us=$(time_loop three_processes)
one_us=$(time_loop one_wait)
echo
echo "== pod-start latency model: process start to exit, mean of $N runs (3 x wait-for-tcp on an open port)"
printf '%-44s %10s\n' "initbox run -f steps.yaml (3 steps, 1 process)" "$(awk -v u="$run_us" 'BEGIN{printf "%.2f ms", u/1000}')"
printf '%-44s %10s\n' "3 separate initbox processes (3 init ctrs)" "$(awk -v u="$three_us" 'BEGIN{printf "%.2f ms", u/1000}')"
printf '%-44s %10s\n' "1 initbox wait-for-tcp process" "$(awk -v u="$one_us" 'BEGIN{printf "%.2f ms", u/1000}')"
echo "(each extra init container also costs the kubelet a container create/start, typically"
echo " 100 ms to 1 s per container; not included above)"
