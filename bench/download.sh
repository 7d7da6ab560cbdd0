#!/usr/bin/env bash
# Benchmark: download SIZE_MIB (default 1024) MiB of incompressible data from a local server and
# verify its SHA-256, initbox against what users script today:
#   curl | sha256sum                 hashes the stream, writes nothing (the issue's yardstick)
#   curl | tee FILE | sha256sum      hashes and keeps the file (no rename, no fsync)
#   curl -o FILE && sha256sum -c     the two-step form most charts use
#   initbox download --sha256        hashes while writing to a partial file, fsync, rename
# over HTTP (python3's http.server, which serves files with sendfile) and from file:// (cat for
# the peers). Each row runs RUNS (default 3) times; the best wall time is shown with its
# throughput, the CPU time of the whole pipeline (user + system, every process of it: the figure
# that holds on a busy machine) and peak RSS (GNU time's maxrss: the largest process).
# Build first: cargo build --release --no-default-features --features download
# Needs ~3x SIZE_MIB of free disk under $TMPDIR, curl, python3, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${INITBOX_BIN:-target/release/initbox}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
[ -x "$BIN" ] || { echo "build first: cargo build --release --no-default-features --features download (or set INITBOX_BIN)" >&2; exit 2; }
for t in curl python3 sha256sum; do command -v $t >/dev/null || { echo "$t is needed" >&2; exit 2; }; done
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
http_pid=""
trap 'kill $http_pid 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/site"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$work/site/data.bin"
(cd "$work/site" && sha256sum data.bin > SHA256SUMS)
sum=$(cut -d' ' -f1 "$work/site/SHA256SUMS")
port=$(free_port)
(cd "$work/site" && exec python3 -m http.server -b 127.0.0.1 "$port" >/dev/null 2>&1) & http_pid=$!
until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.1; done
url="http://127.0.0.1:$port/data.bin"
file="file://$work/site/data.bin"

row() { # name, then the command (a shell line)
  local name=$1 line=$2 best="" rss="" cpu="" i secs kib usr sys
  for ((i = 0; i < RUNS; i++)); do
    rm -rf "$work/out"; mkdir -p "$work/out"; sync
    $TIME -o "$work/t" -f "%e %M %U %S" bash -c "$line" >"$work/stdout" 2>"$work/err" || { cat "$work/err"; exit 1; }
    read -r secs kib usr sys < "$work/t"
    if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$secs; rss=$kib; cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }')
    fi
  done
  awk -v n="$name" -v s="$best" -v m="$SIZE_MIB" -v r="$rss" -v c="$cpu" \
    'BEGIN { printf "  %-32s %7.2f s %7.0f MiB/s  CPU %6.2f s %7.1f MiB\n", n, s, m / (s > 0 ? s : 0.001), c, r / 1024 }'
}

printf "%s MiB, best of %s runs (wall time, throughput, CPU user+sys, peak RSS)\n" "$SIZE_MIB" "$RUNS"
echo "HTTP (python3 http.server on loopback):"
row "curl | sha256sum" "curl -fsS '$url' | sha256sum"
row "curl | tee FILE | sha256sum" "curl -fsS '$url' | tee '$work/out/data.bin' | sha256sum"
row "curl -o FILE && sha256sum -c" "curl -fsS -o '$work/out/data.bin' '$url' && cd '$work/out' && echo '$sum  data.bin' | sha256sum -c"
row "initbox download --sha256" "'$BIN' download -q '$url' --to '$work/out/data.bin' --sha256 '$sum'"
echo "file:// (page cache):"
row "cat | sha256sum" "cat '$work/site/data.bin' | sha256sum"
row "cat | tee FILE | sha256sum" "cat '$work/site/data.bin' | tee '$work/out/data.bin' | sha256sum"
row "initbox download --sha256" "'$BIN' download -q '$file' --to '$work/out/data.bin' --sha256 '$sum'"
