#!/usr/bin/env bash
# Benchmark `initbox notify` (one webhook notification: process start to exit, peak RSS) against
# apprise (PyPI) and curl, all posting to the same local HTTP endpoint (see notify.py).
# Uses the static release binary, as shipped in the image.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null && [ -x /usr/bin/time ] || { echo "installing curl, time" >&2; apt-get install -y -qq curl time >/dev/null; }
command -v apprise >/dev/null || { echo "installing apprise (PyPI)" >&2; python3 -m pip install -q --disable-pip-version-check apprise >&2; }
bin="${INITBOX_BIN:-$(scripts/build-static.sh)}"
echo "binary: $bin ($(stat -c %s "$bin") bytes)"
exec python3 bench/notify.py --initbox "$bin" "$@"
