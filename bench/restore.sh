#!/usr/bin/env bash
# Benchmark: restore a SIZE_MIB (default 1024) MiB data directory (many 256 KiB files and one big
# file, incompressible) from a tar+zstd backup, initbox against what users script today:
#   S3   (moto's server on loopback): `initbox restore --from s3://…` vs `aws s3 cp - | zstd -d | tar -x`
#   HTTP (python3 http.server):       `initbox restore --from http://…/x.tar.zst` vs `curl | zstd -d | tar -x`
# initbox also verifies the SHA-256 and unpacks into staging then swaps; the pipelines do neither.
# Prints wall time, throughput and peak RSS (GNU time's maxrss: the largest process of a pipeline).
# Build first: cargo build --release --no-default-features --features restore,backup.
# Needs ~3x SIZE_MIB of free disk under $TMPDIR and moto[server], awscli, curl, zstd, GNU time.
# BASELINE_BIN=PATH adds rows for another build (before/after figures of a change);
# SKIP_AWS_CLI=1 leaves out the AWS CLI row (minutes at 1 GiB: moto serves it slowly).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${INITBOX_BIN:-target/release/initbox}
SIZE_MIB=${SIZE_MIB:-1024}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set INITBOX_BIN)" >&2; exit 2; }
for t in aws curl zstd tar python3; do command -v $t >/dev/null || { echo "$t is needed" >&2; exit 2; }; done
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
moto_pid=""; http_pid=""
trap 'kill $moto_pid $http_pid 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The data: half in 256 KiB files, half in one file.
mkdir -p "$work/src/files"
half=$((SIZE_MIB / 2))
head -c $((half * 1024 * 1024)) /dev/urandom > "$work/src/big.bin"
python3 - "$work/src/files" $((half * 4)) <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(256 * 1024))
PY

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
mport=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$mport" >/dev/null 2>&1 & moto_pid=$!
until curl -s -o /dev/null "http://127.0.0.1:$mport"; do sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$mport" INITBOX_S3_ENDPOINT="http://127.0.0.1:$mport"
aws s3 mb s3://bench >/dev/null

echo "backing up ${SIZE_MIB} MiB with initbox backup (tar+zstd, multipart)…"
$TIME -f "backup: %e s, peak RSS %M KiB" "$BIN" backup -q --from "$work/src" --to s3://bench/data/
key=$(aws s3 ls s3://bench/data/ | awk '/\.tar\.zst$/ {print $4}')
bytes=$(aws s3 ls s3://bench/data/ | awk '/\.tar\.zst$/ {print $3}')

# The same archive over HTTP, with its checksum file.
mkdir -p "$work/site"
# One plain GET (boto3): the AWS CLI's ranged parallel GETs take minutes against moto.
python3 - "$mport" "data/$key" "$work/site/data.tar.zst" <<'PY'
import shutil, sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}")
with open(sys.argv[3], "wb") as f:
    shutil.copyfileobj(s3.get_object(Bucket="bench", Key=sys.argv[2])["Body"], f, 1 << 20)
PY
(cd "$work/site" && sha256sum data.tar.zst > data.tar.zst.sha256)
hport=$(free_port)
(cd "$work/site" && exec python3 -m http.server -b 127.0.0.1 "$hport" >/dev/null 2>&1) & http_pid=$!
until curl -s -o /dev/null "http://127.0.0.1:$hport/"; do sleep 0.1; done

kept=0
row() { # name, then the command
  local name=$1; shift
  # The previous row's tree is moved away, not deleted: freeing 1 GiB on a filesystem mounted
  # with `discard` keeps the disk busy with discards for seconds after `sync` returns, which a
  # run that syncs (initbox) would pay and one that does not (tar) would not.
  if [ -d "$work/dst" ]; then kept=$((kept + 1)); mv "$work/dst" "$work/done-$kept"; fi
  mkdir -p "$work/dst"; sync
  $TIME -o "$work/t" -f "%e %M" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  local secs rss
  read -r secs rss < "$work/t"
  cmp -s "$work/src/big.bin" "$work/dst/big.bin" || { echo "$name: restored data differs" >&2; exit 1; }
  printf "%-44s %7.2f s %8.1f MiB/s %8.1f MiB peak RSS\n" "$name" "$secs" \
    "$(echo "$bytes / 1048576 / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}

echo
echo "restore of a $((bytes / 1048576)) MiB archive ($SIZE_MIB MiB of files):"
row "initbox restore (s3://, verified, staged)" "$BIN" restore -q --from s3://bench/data/ --to "$work/dst"
[ -z "${BASELINE_BIN:-}" ] ||
  row "  baseline build (s3://)" "$BASELINE_BIN" restore -q --from s3://bench/data/ --to "$work/dst"
[ -n "${SKIP_AWS_CLI:-}" ] ||
  row "aws s3 cp - | zstd -d | tar -x" sh -c "aws s3 cp s3://bench/data/$key - | zstd -dc | tar -x -C '$work/dst'"
row "initbox restore (http://, verified, staged)" "$BIN" restore -q --from "http://127.0.0.1:$hport/data.tar.zst" --to "$work/dst"
[ -z "${BASELINE_BIN:-}" ] ||
  row "  baseline build (http://)" "$BASELINE_BIN" restore -q --from "http://127.0.0.1:$hport/data.tar.zst" --to "$work/dst"
row "curl | zstd -d | tar -x" sh -c "curl -s http://127.0.0.1:$hport/data.tar.zst | zstd -dc | tar -x -C '$work/dst'"
