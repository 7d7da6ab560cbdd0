#!/usr/bin/env bash
# initbox schedule beside busybox crond (Debian's busybox-static, unpacked into a temporary
# directory, not installed; supercronic has no Debian or PyPI package):
#   1. idle CPU and RSS of a sidecar holding 10 jobs that do not fire, over DURATION seconds
#      (and the RSS of one running a job every second, which never waits long enough to give
#      memory back between runs);
#   2. start-to-job latency: how long after its due second a job's own process is running
#      (`date +%s.%N` as the job), initbox every second for 10 s, crond at one minute boundary.
# Goals (issue 16): 0.00% idle CPU, RSS <= 8 MiB, a job started within 10 ms of its time.
#
# Usage: bench/schedule.sh [DURATION]   (INITBOX=path to a release build; default target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
BIN=${INITBOX:-target/release/initbox}
[ -x "$BIN" ] || { echo "build it first: cargo build --release (or set INITBOX)"; exit 2; }
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

BUSYBOX=""
if (cd "$TMP" && apt-get download busybox-static >/dev/null 2>&1 && dpkg -x busybox-static_*.deb bb); then
  BUSYBOX="$TMP/bb/bin/busybox"
else
  echo "busybox-static could not be downloaded: crond column left out"
fi

# 10 jobs at fixed times of day that will not come during the run.
mkdir -p "$TMP/crontabs"
: > "$TMP/crontab"
for i in $(seq 1 10); do echo "$i 4 * * * /bin/true job-$i" >> "$TMP/crontab"; done
cp "$TMP/crontab" "$TMP/crontabs/root"

CLK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

"$BIN" schedule --crontab "$TMP/crontab" -q 2>"$TMP/initbox.log" &
PIDS+=($!); IB=$!
if [ -n "$BUSYBOX" ]; then
  "$BUSYBOX" crond -f -l 8 -c "$TMP/crontabs" 2>"$TMP/crond.log" &
  PIDS+=($!); BB=$!
fi
sleep 1
ib0=$(ticks "$IB"); [ -n "$BUSYBOX" ] && bb0=$(ticks "$BB")
sleep "$DURATION"
ib1=$(ticks "$IB"); ib_rss=$(rss_kib "$IB")
if [ -n "$BUSYBOX" ]; then bb1=$(ticks "$BB"); bb_rss=$(rss_kib "$BB"); fi
kill "${PIDS[@]}" 2>/dev/null || true
wait 2>/dev/null || true
PIDS=()
pct() { awk -v t="$1" -v d="$DURATION" -v c="$CLK" 'BEGIN {printf "%.2f%%", 100 * t / (d * c)}'; }

# Start-to-job latency, initbox: a job every second for 10 s.
"$BIN" schedule --cron '* * * * * *' --log-format json -- sh -c "date +%s.%N >> $TMP/ib-times" 2>"$TMP/ib.json" &
PIDS+=($!); IBJ=$!
sleep 10.5
# RSS while a job runs every second (no long wait, so nothing is given back between runs).
ib_busy_rss=$(rss_kib "$IBJ")
kill "${PIDS[@]}" 2>/dev/null || true
wait 2>/dev/null || true
PIDS=()
lat() { awk '{f = $1 - int($1); s += f; if (f > m) m = f; n++} END {if (n) printf "mean %.1f ms, max %.1f ms (%d runs)", 1000 * s / n, 1000 * m, n; else print "no runs"}' "$1"; }
ib_lat=$(lat "$TMP/ib-times")
# The scheduler's own part: its "job started" line after the due second (before the fork).
grep '"job started"' "$TMP/ib.json" | grep -o '"timestamp":"[^"]*"' \
  | sed -E 's/.*T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z"/0\1/' > "$TMP/ib-started"
ib_sched=$(lat "$TMP/ib-started")

bb_lat="n/a"
if [ -n "$BUSYBOX" ]; then
  # crond: minutes only; one sample at the next minute boundary.
  echo "* * * * * date +%s.%N >> $TMP/bb-times" > "$TMP/crontabs/root"
  "$BUSYBOX" crond -f -l 8 -c "$TMP/crontabs" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 1 70); do [ -s "$TMP/bb-times" ] && break; sleep 1; done
  kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  PIDS=()
  [ -s "$TMP/bb-times" ] && bb_lat=$(lat "$TMP/bb-times")
fi

printf '\n%-28s %-16s %-16s\n' "" "initbox schedule" "busybox crond"
printf '%-28s %-16s %-16s\n' "idle CPU over ${DURATION}s" "$(pct $((ib1 - ib0)))" "$([ -n "$BUSYBOX" ] && pct $((bb1 - bb0)) || echo n/a)"
printf '%-28s %-16s %-16s\n' "RSS, 10 jobs" "$((ib_rss / 1024)).$(( (ib_rss % 1024) * 10 / 1024 )) MiB" "$([ -n "$BUSYBOX" ] && echo "$((bb_rss / 1024)).$(( (bb_rss % 1024) * 10 / 1024 )) MiB" || echo n/a)"
printf '%-28s %-16s %-16s\n' "RSS, a job every second" "$((ib_busy_rss / 1024)).$(( (ib_busy_rss % 1024) * 10 / 1024 )) MiB" ""
printf '%-28s %s\n' "start-to-job, initbox" "$ib_lat"
printf '%-28s %s\n' "start-to-job, crond" "$bb_lat"
printf '%-28s %s\n' "due-to-'job started' line" "$ib_sched"
echo "(start-to-job: from the due second to the job's own 'date', so it includes sh + date start-up)"
