#!/usr/bin/env bash
# Benchmark: the ownership and mode pass over a volume of FILES (default 100 000) files in 100
# directories, as root, initbox prepare-volume beside what charts run today:
#   `chown -R UID:GID DIR` (+ `chmod -R`), bitnami's volumePermissions, and
#   `find DIR ! -user UID -exec chown …` (the "only what differs" shell idiom).
# Each is timed on the first pass (everything to change) and on the second pass (the volume is
# already right: Kubernetes' OnRootMismatch question, "what does a restart cost?"), with the
# number of entries whose change time moved (what was written). Wall time is the best of RUNS.
# Build first: cargo build --release (or set INITBOX_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${INITBOX_BIN:-target/release/initbox}
FILES=${FILES:-100000}
RUNS=${RUNS:-3}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set INITBOX_BIN)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (it changes owners)" >&2; exit 2; }
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
vol="$work/vol"
python3 - "$vol" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 100)
for i in range(n):
    d = os.path.join(root, f"d{i // per:03d}")
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"f{i:06d}"), "w").close()
PY
entries=$(find "$vol" | wc -l)
echo "volume: $entries entries ($FILES files); best of $RUNS runs"

reset() { chown -R 0:0 "$vol"; chmod -R u=rwX,go=rX "$vol"; sync; }
mark() { touch "$work/mark"; sleep 0.05; }
touched() { find "$vol" -newer "$work/mark" -o -cnewer "$work/mark" | wc -l; }

best() { # label, then the command; prints "seconds rss"
  local best="" rss=0
  for _ in $(seq "$RUNS"); do
    [ "$1" = first ] && reset
    shift_cmd=("${@:2}")
    $TIME -o "$work/t" -f "%e %M" "${shift_cmd[@]}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r s m < "$work/t"
    if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; rss=$m; fi
  done
  echo "$best $rss"
}

printf "\n%-58s %12s %12s %10s %10s\n" "tool" "1st pass s" "2nd pass s" "2nd writes" "RSS KiB"
row() { # name, then the command
  local name=$1; shift
  read -r first _ < <(best first "$@")
  read -r second rss < <(best second "$@")
  mark; "$@" >/dev/null 2>&1; local w; w=$(touched)
  printf "%-58s %12s %12s %10s %10s\n" "$name" "$first" "$second" "$w" "$rss"
}
row "initbox prepare-volume --owner 1001:1001" "$BIN" prepare-volume -q "$vol" --owner 1001:1001
row "chown -R 1001:1001" chown -R 1001:1001 "$vol"
row "find ! -user 1001 -exec chown 1001:1001 {} +" sh -c "find '$vol' ! -user 1001 -exec chown -h 1001:1001 {} +"
row "initbox prepare-volume --owner 1001:1001 --chmod D0750,F0640" "$BIN" prepare-volume -q "$vol" --owner 1001:1001 --chmod D0750,F0640
row "chown -R 1001:1001 + chmod -R u=rwX,g=rX,o=" sh -c "chown -R 1001:1001 '$vol' && chmod -R u=rwX,g=rX,o= '$vol'"
row "initbox prepare-volume --fs-group 2000 (kubelet fsGroup)" "$BIN" prepare-volume -q "$vol" --fs-group 2000
row "chgrp -R 2000 + chmod -R g+rwX + dirs g+s" sh -c "chgrp -R 2000 '$vol' && chmod -R g+rwX '$vol' && find '$vol' -type d -exec chmod g+s {} +"
