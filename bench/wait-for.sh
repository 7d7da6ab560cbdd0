#!/usr/bin/env bash
# Benchmark `initbox wait-for` (http://, postgres://, tcp://, redis://) against a curl retry loop,
# curl --retry, a pg_isready loop, wait-for-it and redis-cli (see wait-for.py). Needs the servers
# of tests/setup/10-services.sh (PostgreSQL on 5432, Redis on 6379) and root (a throwaway
# PostgreSQL cluster runs as the postgres user). Uses the static release binary, as shipped.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wait-for-it >/dev/null || need+=(wait-for-it)
command -v curl >/dev/null || need+=(curl)
command -v pg_isready >/dev/null || need+=(postgresql-client)
command -v runuser >/dev/null || need+=(util-linux)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
bin="${INITBOX_BIN:-$(scripts/build-static.sh)}"
echo "binary: $bin ($(stat -c %s "$bin") bytes)"
exec python3 bench/wait-for.py --initbox "$bin" "$@"
