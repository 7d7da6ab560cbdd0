#!/usr/bin/env bash
# Start-up time, peak RSS, CA-store cost and size of the static binary, beside busybox nc, curl
# and apprise, in one run (see bench/lean.py). Uses the static release binary, as shipped;
# `--before OLD_BINARY` prints an earlier build's rows beside (before/after figures of a cut).
set -euo pipefail
cd "$(dirname "$0")/.."
{ command -v busybox && command -v curl && [ -x /usr/bin/time ]; } >/dev/null || {
  echo "installing busybox, curl, time" >&2
  apt-get install -y -qq busybox curl time >/dev/null
}
command -v apprise >/dev/null || python3 -m pip install -q "apprise==2.3.0"
bin="${INITBOX_BIN:-$(scripts/build-static.sh)}"
exec python3 bench/lean.py --initbox "$bin" "$@"
