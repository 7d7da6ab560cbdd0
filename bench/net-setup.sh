#!/usr/bin/env bash
# initbox net-setup beside iptables-restore (nft and legacy flavours) and nft -f: the time to
# apply one 20-rule ruleset (the sidecar-proxy pattern: 7 outbound redirect rules, 4 inbound,
# 9 allow/deny), replacing what the previous run applied, as an init container does on every
# pod start. Each tool runs RUNS times in a network namespace of its own (created here, deleted
# at the end); the figure is the mean wall time of one whole command (process start included).
#
# Usage: bench/net-setup.sh [RUNS]   (root; INITBOX=path to a release build, default: the
#        static one of scripts/build-static.sh, else target/release/initbox)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
BIN=${INITBOX:-}
if [ -z "$BIN" ]; then
  for b in target/static/*/release/initbox target/release/initbox; do
    [ -x "$b" ] && { BIN=$b; break; }
  done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "build it first: scripts/build-static.sh (or set INITBOX)"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 2; }
TMP=$(mktemp -d)
NS=()
cleanup() { for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

ARGS=(
  --redirect-outbound 15001 --exclude-uid 1337 --exclude-outbound-port 22,2379
  --exclude-outbound-cidr 10.96.0.0/12,169.254.0.0/16
  --redirect-inbound 15006 --exclude-inbound-port 15020,15021,15090
  --allow-destination 10.0.0.10:53,10.0.0.11:53,10.96.0.1:443
  --deny-destination 169.254.169.254,10.0.0.0/8:2379,10.0.0.0/8:10250,192.0.2.0/24,198.51.100.0/24,203.0.113.0/24
)
# The same ruleset for nft -f: initbox's own dry run, after a create-and-delete so it replaces.
{
  printf 'table inet initbox {}\ndelete table inet initbox\n'
  "$BIN" net-setup "${ARGS[@]}" --dry-run
} > "$TMP/ruleset.nft"
rules=$(grep -cE '^\s+(meta|oifname|tcp|ip |ip6 )' "$TMP/ruleset.nft")
[ "$rules" = 20 ] || { echo "the ruleset has $rules rules, not 20"; exit 1; }

# The same rules for iptables-restore (IPv4; it flushes the tables it names, so it replaces).
cat > "$TMP/ruleset.iptables" <<'EOF'
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:INITBOX_OUT - [0:0]
:INITBOX_IN - [0:0]
-A OUTPUT -p tcp -j INITBOX_OUT
-A PREROUTING -p tcp -j INITBOX_IN
-A INITBOX_OUT -m owner --uid-owner 1337 -j RETURN
-A INITBOX_OUT -o lo -j RETURN
-A INITBOX_OUT -p tcp --dport 22 -j RETURN
-A INITBOX_OUT -p tcp --dport 2379 -j RETURN
-A INITBOX_OUT -d 10.96.0.0/12 -j RETURN
-A INITBOX_OUT -d 169.254.0.0/16 -j RETURN
-A INITBOX_OUT -p tcp -j REDIRECT --to-ports 15001
-A INITBOX_IN -p tcp --dport 15020 -j RETURN
-A INITBOX_IN -p tcp --dport 15021 -j RETURN
-A INITBOX_IN -p tcp --dport 15090 -j RETURN
-A INITBOX_IN -p tcp -j REDIRECT --to-ports 15006
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -d 10.0.0.10/32 -p tcp --dport 53 -j ACCEPT
-A OUTPUT -d 10.0.0.11/32 -p tcp --dport 53 -j ACCEPT
-A OUTPUT -d 10.96.0.1/32 -p tcp --dport 443 -j ACCEPT
-A OUTPUT -d 169.254.169.254/32 -j DROP
-A OUTPUT -d 10.0.0.0/8 -p tcp --dport 2379 -j DROP
-A OUTPUT -d 10.0.0.0/8 -p tcp --dport 10250 -j DROP
-A OUTPUT -d 192.0.2.0/24 -j DROP
-A OUTPUT -d 198.51.100.0/24 -j DROP
-A OUTPUT -d 203.0.113.0/24 -j DROP
COMMIT
EOF


# bench NAME COMMAND...: mean ms per run of COMMAND inside a fresh namespace, or "n/a".
bench() {
  local name=$1; shift
  local ns="nsbench$$x${#NS[@]}"
  ip netns add "$ns"
  NS+=("$ns")
  if ! ip netns exec "$ns" "$@" >/dev/null 2>"$TMP/err"; then
    printf '%-34s %s\n' "$name" "n/a ($(head -1 "$TMP/err"))"
    return
  fi
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$RUNS"); do ip netns exec "$ns" "$@" >/dev/null; done
  end=$(date +%s%N)
  # `ip netns exec` itself, measured alone, is subtracted.
  local s0 e0
  s0=$(date +%s%N)
  for _ in $(seq "$RUNS"); do ip netns exec "$ns" true; done
  e0=$(date +%s%N)
  awk -v t=$((end - start)) -v z=$((e0 - s0)) -v n="$RUNS" -v name="$name" \
    'BEGIN {printf "%-34s %7.2f ms\n", name, (t - z) / n / 1e6}'
}

echo "apply a 20-rule ruleset, replacing the previous one; mean of $RUNS runs ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
bench "initbox net-setup (netlink)" "$BIN" net-setup -q "${ARGS[@]}"
bench "nft -f ($(nft --version | cut -d' ' -f2))" nft -f "$TMP/ruleset.nft"
bench "iptables-nft-restore" iptables-nft-restore "$TMP/ruleset.iptables"
bench "iptables-legacy-restore" iptables-legacy-restore "$TMP/ruleset.iptables"
