#!/usr/bin/env bash
# Benchmark network-check (see network-check.py): 50 checks with one slow target (wall time should
# be about the slowest check, not the sum), and one check's start-to-exit time and peak RSS beside
# busybox ping, curl, dig and nc doing the same check. Uses the static release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in dnsmasq busybox curl dig nc /usr/bin/time; do
  command -v "$tool" >/dev/null || {
    echo "installing dnsmasq-base busybox curl dnsutils netcat-openbsd time" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      dnsmasq-base busybox curl dnsutils netcat-openbsd time >/dev/null
    break
  }
done
bin="${INITBOX_BIN:-$(scripts/build-static.sh --no-default-features --features network-check)}"
echo "binary: $bin ($(stat -c %s "$bin") bytes)"
exec python3 bench/network-check.py --initbox "$bin" "$@"
