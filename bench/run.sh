#!/usr/bin/env bash
# `initbox run` with ten `wait-for postgres://` steps against the real PostgreSQL, versus the same
# ten waits as ten initbox processes: wall time per run (median, p90, p99, max), how many runs took
# over 500 ms (issue 23 item 5: about 1.0 s outliers), and the kernel's TCP counters over the loop
# (SYN retransmissions: a SYN that goes unanswered is resent after the 1 s initial RTO, which is
# what a 1.02 s connect attempt looks like) plus PostgreSQL-side TIME_WAIT sockets afterwards.
#
# usage: bench/run.sh [RUNS] [BINARY] [URL]
#   defaults: 400, target/release/initbox (or target/debug/initbox), the test database
#   (a debug build spends ~100 ms per TLS handshake: add ?sslmode=disable to see the rest)
#
# Found 2026-12-01 (issue 23 item 5 not reproduced: 0 steps over 1 s in 600 TLS and 3000 plain
# in-process connections, no SYN retransmission, the same teardown counters in both modes): with
# PostgreSQL's TLS on (sslmode prefer), every connection of the static release binary costs
# ~90 ms instead of ~5 ms: sqlx leaves Nagle on, and `strace -r` shows two ~44 ms stalls per
# handshake, each after two small writes in a row (ChangeCipherSpec + the ClientHello sent again
# after PostgreSQL's HelloRetryRequest; client Finished + the startup message) waiting for the
# server's delayed ACK. TCP_NODELAY on the probe's socket is the fix (crates/probe, sqlx).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400}
BIN=${2:-}
URL=${3:-postgres://postgres@127.0.0.1:5432/test}
if [ -z "$BIN" ]; then
  BIN=target/release/initbox
  [ -x "$BIN" ] || BIN=target/debug/initbox
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "steps:"
  for i in $(seq 1 10); do
    printf '  - name: pg%d\n    applet: wait-for\n    args: ["%s", --timeout, 10s]\n' "$i" "$URL"
  done
} >"$work/steps.yaml"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
stats() { # FILE LABEL
  sort -n "$1" | awk -v label="$2" '{a[NR]=$1} END {
    slow = 0; for (i = 1; i <= NR; i++) if (a[i] > 500) slow++
    printf "%-22s runs %d  median %d ms  p90 %d  p99 %d  max %d  over 500 ms: %d\n",
      label, NR, a[int((NR+1)/2)], a[int(NR*0.9)], a[int(NR*0.99)], a[NR], slow }'
}
tcp() { nstat -z TcpExtTCPSynRetrans TcpExtTCPTimeouts 2>/dev/null | awk 'NR>1 && $1 !~ /^#/ {printf "%s=%s ", $1, $2}'; }

echo "binary $BIN, $N runs, $URL" >&2
nstat -n >/dev/null 2>&1 || true
for _ in $(seq 1 "$N"); do
  t=$(date +%s%N); "$BIN" run -q -f "$work/steps.yaml"; ms "$t"
done >"$work/one"
echo "one run, 10 steps:     $(tcp)" >&2
nstat -n >/dev/null 2>&1 || true
for _ in $(seq 1 "$N"); do
  t=$(date +%s%N)
  for _ in $(seq 1 10); do "$BIN" wait-for -q --timeout 10s "$URL"; done
  ms "$t"
done >"$work/ten"
echo "ten processes:         $(tcp)" >&2
stats "$work/one" "one run, 10 steps"
stats "$work/ten" "10 processes"
echo "PostgreSQL-side TIME_WAIT now: $(ss -tan state time-wait | awk '{print $3}' | grep -c ':5432$' || true)"
