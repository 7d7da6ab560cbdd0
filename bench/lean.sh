#!/usr/bin/env bash
# Start-up time, peak RSS, CA-store cost and size of the static binary, beside busybox nc, curl
# and apprise, in one run (see bench/lean.py). Uses the static release binary, as shipped;
# `--before OLD_BINARY` prints an earlier build's rows beside (before/after figures of a cut),
# `--before-rev REV` the crate versions linked twice then and now.
#
# Measured 2026-12-01 (2 cores shared by five builds, load ~10; 20 runs; RSS after one cold exec):
#   INITBOX_BIN=NEW bench/lean.sh --before OLD --before-rev addf22b --runs 20
#   peak RSS, wait-for-tcp --once: 8.3 -> 7.7 MiB (goal <= 8); notify, one webhook: 10.2 -> 9.0 MiB
#   binary: 17.51 -> 16.69 MiB (.rela.dyn 844 KiB -> .relr.dyn 10 KiB, DT_RELR);
#   crates linked in two versions: 19 -> 17 (rand 0.9, rand_core 0.9, getrandom 0.3 gone).
#   What is left of a notify's 9.0 MiB is file-backed code: 6.3 MiB of .text resident (hyper,
#   http, reqwest, url, serde_json and rustls's config on top of a wait's 5.8 MiB), 1.2 MiB of
#   .rodata and 0.6 MiB of .data.rel.ro that the static-pie relocates at start; heap ~190 KiB.
#   `perf record -e page-faults -c 1 -d` against the linker map (-Wl,-Map) shows why: a notify
#   takes ~115 faults in .text (a wait ~100), each mapping a 64 KiB fault-around window or a
#   whole large folio, and they land all over the 12.8 MiB .text (alloc/core/std instantiations,
#   glibc, tokio, clap, hyper). Start-up runs little code, scattered: ordering the functions a
#   run touches together (lld --symbol-ordering-file from a profiled run, two link passes) is
#   the lever left for a notify under 8 MiB. Tried and not kept: -z keep-text-section-prefix
#   (.text.unlikely is only 219 KiB; wait 7.7 -> 8.2-9.6 MiB, notify 9.0 -> 9.4 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
{ command -v busybox && command -v curl && [ -x /usr/bin/time ]; } >/dev/null || {
  echo "installing busybox, curl, time" >&2
  apt-get install -y -qq busybox curl time >/dev/null
}
command -v apprise >/dev/null || python3 -m pip install -q "apprise==2.3.0"
bin="${INITBOX_BIN:-$(scripts/build-static.sh)}"
exec python3 bench/lean.py --initbox "$bin" "$@"
