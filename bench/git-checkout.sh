#!/usr/bin/env bash
# Benchmark: a shallow checkout, `initbox git-checkout` beside `git clone --depth 1` (Debian's
# git, what an alpine/git init container runs), over git:// (git daemon) and smart HTTP
# (git-http-backend as CGI behind python3's http.server), from a generated repository of
# FILES files (default 20000, ~80 MiB of text) with 30 commits of history. Also the restart
# case: initbox at the same commit (asks for the refs, changes nothing) beside a second `git
# clone --depth 1` into a fresh directory (what a shell init container does on every start).
# Prints the median wall time of RUNS runs (default 5) and the peak RSS (GNU time's maxrss).
# Build first: cargo build --release (or set INITBOX_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${INITBOX_BIN:-target/release/initbox}
FILES=${FILES:-20000}
RUNS=${RUNS:-5}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or set INITBOX_BIN)" >&2; exit 2; }
for t in git python3; do command -v $t >/dev/null || { echo "$t is needed" >&2; exit 2; }; done
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }
BACKEND=/usr/lib/git-core/git-http-backend
[ -x "$BACKEND" ] || { echo "git-http-backend is needed (Debian's git)" >&2; exit 2; }

work=$(mktemp -d)
daemon_pid=""; http_pid=""
trap 'kill $daemon_pid $http_pid 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid

echo "making a repository: $FILES files, 30 commits…"
mkdir -p "$work/src" "$work/srv"
git -C "$work/src" init -q -b main
git -C "$work/src" config gc.auto 0   # no background gc racing the bare clone below
python3 - "$work/src" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))) for _ in range(5000)]
for i in range(n):
    d = os.path.join(root, f"pkg{i % 200:03d}", f"mod{i % 17:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.txt"), "w") as f:
        f.write(" ".join(rnd.choice(words) for _ in range(rnd.randint(200, 1400))) + "\n")
PY
git -C "$work/src" add -A && git -C "$work/src" commit -q -m initial
for c in $(seq 1 29); do
  python3 - "$work/src" "$c" <<'PY'
import os, random, sys
root, c = sys.argv[1], int(sys.argv[2])
rnd = random.Random(c)
files = [os.path.join(dp, f) for dp, _, fs in os.walk(root) if ".git" not in dp for f in fs]
for p in rnd.sample(files, min(200, len(files))):
    with open(p, "a") as f:
        f.write(f"change {c}\n")
PY
  git -C "$work/src" commit -q -am "change $c"
done
git clone -q --bare "$work/src" "$work/srv/repo.git"
echo "repository: $(du -sh "$work/srv/repo.git" | cut -f1) packed, $(du -sh --exclude=.git "$work/src" | cut -f1) checked out"

dport=$(free_port)
git daemon --reuseaddr --export-all --listen=127.0.0.1 --port="$dport" --base-path="$work/srv" "$work/srv" >/dev/null 2>&1 & daemon_pid=$!
mkdir -p "$work/www/cgi-bin"
# python3's CGI server runs scripts as nobody when started as root: the repository must be
# readable by it and trusted by git (safe.directory, given as command-line configuration).
chmod 755 "$work"
cat > "$work/www/cgi-bin/git" <<EOF
#!/bin/sh
export GIT_PROJECT_ROOT="$work/srv" GIT_HTTP_EXPORT_ALL=1
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
exec $BACKEND
EOF
chmod +x "$work/www/cgi-bin/git"
hport=$(free_port)
(cd "$work/www" && exec python3 -W ignore -m http.server --cgi -b 127.0.0.1 "$hport" >/dev/null 2>&1) & http_pid=$!
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $dport)); socket.create_connection(('127.0.0.1', $hport))" 2>/dev/null; do sleep 0.1; done
GIT_URL="git://127.0.0.1:$dport/repo.git"
HTTP_URL="http://127.0.0.1:$hport/cgi-bin/git/repo.git"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# row NAME FRESH(1: a new directory each run) CMD… (the target directory is $dst)
row() {
  local name=$1 fresh=$2; shift 2
  : > "$work/secs"; : > "$work/rss"
  for i in $(seq 1 "$RUNS"); do
    [ "$fresh" = 1 ] && rm -rf "$work/dst"
    sync
    $TIME -o "$work/t" -f "%e %M" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    awk '{print $1}' "$work/t" >> "$work/secs"; awk '{print $2}' "$work/t" >> "$work/rss"
  done
  printf "%-44s %8.2f s %10.1f MiB\n" "$name" "$(median < "$work/secs")" "$(echo "$(sort -n "$work/rss" | tail -1) / 1024" | bc -l)"
}
dst="$work/dst"
printf "%-44s %10s %14s\n" "shallow checkout ($FILES files), $RUNS runs" "median" "peak RSS"
for proto in git http; do
  url=$GIT_URL; [ $proto = http ] && url=$HTTP_URL
  row "git clone --depth 1 ($proto)" 1 git clone -q --depth 1 "$url" "$dst"
  row "initbox git-checkout ($proto)" 1 "$BIN" git-checkout -q "$url" --to "$dst"
  rm -rf "$dst"; "$BIN" git-checkout -q "$url" --to "$dst"
  row "initbox git-checkout, restart, same commit ($proto)" 0 "$BIN" git-checkout -q "$url" --to "$dst"
done
