#!/usr/bin/env bash
# Benchmark: fetch 50 secrets from the stand-in Vault (tests/fixtures/fetch-secret/standin.py,
# KV v2) in one `initbox fetch-secret` run, versus what shell-based init containers do: 50
# sequential `curl` calls (plus jq-less extraction with python would add more; curl alone is the
# floor). Prints wall time and peak RSS side by side. Build first: cargo build --release (the
# figures in the report used `--no-default-features --features fetch-secret`, a 4.5 MB binary).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${INITBOX_BIN:-target/release/initbox}
N=${N:-50}
ROUNDS=${ROUNDS:-5}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set INITBOX_BIN)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 2; }
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

# N secrets in a KV v2 mount, one key each.
python3 - "$work/config.json" "$N" <<'EOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
kv = {f"bench/s{i}": [{"value": f"bench-secret-value-{i:03d}"}] for i in range(n)}
json.dump({"mounts": {"secret/": {"type": "kv", "version": "2"}},
           "kv": {"secret/": kv}, "tokens": {"bench-token": {"policies": ["root"]}}},
          open(path, "w"))
EOF
python3 tests/fixtures/fetch-secret/standin.py vault "$work/config.json" "$work/port" &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=bench-token

refs=()
for i in $(seq 0 $((N - 1))); do refs+=("s$i=ref+vault://secret/bench/s$i#/value"); done

# The curl baseline: one process per secret, as in `for p in ...; do curl ... > /secrets/$p; done`.
cat > "$work/curl.sh" <<EOF
#!/bin/sh
set -e
mkdir -p "$work/curl-out"
for i in \$(seq 0 $((N - 1))); do
  curl -sf -H "X-Vault-Token: \$VAULT_TOKEN" "\$VAULT_ADDR/v1/secret/data/bench/s\$i" -o "$work/curl-out/s\$i"
done
EOF
chmod +x "$work/curl.sh"
# The realistic shell init container: curl piped to jq for the value.
cat > "$work/curl-jq.sh" <<EOF
#!/bin/sh
set -e
mkdir -p "$work/curl-out"
for i in \$(seq 0 $((N - 1))); do
  curl -sf -H "X-Vault-Token: \$VAULT_TOKEN" "\$VAULT_ADDR/v1/secret/data/bench/s\$i" | jq -r .data.data.value > "$work/curl-out/s\$i"
done
EOF
chmod +x "$work/curl-jq.sh"

measure() { # NAME CMD... -> prints best wall seconds and max RSS KiB over ROUNDS
  local name=$1; shift
  local best="" rss=0
  for _ in $(seq "$ROUNDS"); do
    rm -rf "$work/out" "$work/curl-out"
    $TIME -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r wall kib < "$work/t"
    if [ -z "$best" ] || awk "BEGIN{exit !($wall < $best)}"; then best=$wall; fi
    [ "$kib" -gt "$rss" ] && rss=$kib
  done
  printf "%-44s %8.3f s %10s KiB\n" "$name" "$best" "$rss"
}

echo "fetch $N secrets from the stand-in Vault (KV v2, loopback), best of $ROUNDS"
printf "%-44s %10s %14s\n" "tool" "wall" "peak RSS"
measure "initbox fetch-secret (1 process, $N files)" "$BIN" fetch-secret -q --dir "$work/out" "${refs[@]}"
measure "$N x curl (sequential, envelope only)" "$work/curl.sh"
if command -v jq >/dev/null; then measure "$N x curl | jq -r (sequential)" "$work/curl-jq.sh"; fi
echo "(peak RSS of a loop is its largest single process. initbox also checks the token, looks up"
echo " the mount's KV version and writes each file 0400 atomically with fsync; curl does none of it.)"
