#!/usr/bin/env bash
# Benchmark wait-for-tcp against wait-for-it, an nc loop and busybox nc (see wait-for-tcp.py).
# Uses the static release binary, as shipped in the image.
set -euo pipefail
cd "$(dirname "$0")/.."
{ command -v wait-for-it && [ -x /usr/bin/time ]; } >/dev/null || { echo "installing wait-for-it, busybox, netcat, time" >&2; apt-get install -y -qq wait-for-it busybox netcat-openbsd time >/dev/null; }
bin="${INITBOX_BIN:-$(scripts/build-static.sh)}"
echo "binary: $bin ($(stat -c %s "$bin") bytes)"
exec python3 bench/wait-for-tcp.py --initbox "$bin" "$@"
