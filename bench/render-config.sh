#!/usr/bin/env bash
# Benchmark: initbox render-config beside the tools users would pick instead.
#
#   1. a 200-file config tree (Jinja: initbox vs Python's jinja2; envsubst syntax: initbox
#      --engine envsubst vs GNU envsubst run once per file, as an entrypoint loop does; Go
#      syntax: initbox --engine go, no Go tool installs here to stand beside it);
#   2. one 5 MB template (same pairs, and Ansible's template module where ansible is installed).
#
# j2cli is not measured on its own: it is a command line around the same Python jinja2.
#
# Prints wall time (best of 3) and peak RSS (GNU time's maximum resident set size) side by
# side. Needs: a release build of initbox (built here), python3 + jinja2, gettext-base, time.
# Usage: bash bench/render-config.sh [path/to/initbox]
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet
  BIN=target/release/initbox
fi
for tool in envsubst python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install gettext-base python3 time)" >&2; exit 1; }
done
python3 -c 'import jinja2' 2>/dev/null || { echo "missing python jinja2 (pip install jinja2)" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- inputs -------------------------------------------------------------------------------
python3 - "$WORK" <<'EOF'
import json, os, sys
w = sys.argv[1]
os.makedirs(f"{w}/jtree", exist_ok=True)
os.makedirs(f"{w}/etree", exist_ok=True)
os.makedirs(f"{w}/gtree", exist_ok=True)
# 200 files of ~60 lines: a mix of plain text, variables, loops and filters (Jinja), and
# variables with defaults (envsubst syntax).
for i in range(200):
    sub = f"svc{i % 10}"
    os.makedirs(f"{w}/jtree/{sub}", exist_ok=True)
    os.makedirs(f"{w}/etree/{sub}", exist_ok=True)
    os.makedirs(f"{w}/gtree/{sub}", exist_ok=True)
    g = [f"# service {i}", "[server]", "name = {{ .app.name }}-%d" % i,
         "listen = {{ .app.host }}:{{ add (atoi .Env.APP_PORT) %d }}" % i, "region = {{ .Env.BENCH_REGION }}"]
    for k in range(25):
        g.append("opt_%d = {{ index .app.options %d | upper }}" % (k, k % 5))
        g.append("plain_%d = some static configuration text that does not change" % k)
    g += ["{{ range .backends }}backend {{ .name }} {{ .addr }}\n{{ end }}"]
    open(f"{w}/gtree/{sub}/app{i}.conf", "w").write("\n".join(g) + "\n")
    j = [f"# service {i}", "[server]", "name = {{ app.name }}-%d" % i,
         "listen = {{ app.host }}:{{ app.port + %d }}" % i, "region = {{ env.BENCH_REGION }}"]
    e = [f"# service {i}", "[server]", "name = ${APP_NAME}-%d" % i,
         "listen = ${APP_HOST}:${APP_PORT}", "region = ${BENCH_REGION}"]
    for k in range(25):
        j.append("opt_%d = {{ app.options[%d] | default('none') | upper }}" % (k, k % 5))
        j.append("plain_%d = some static configuration text that does not change" % k)
        e.append("opt_%d = ${OPT_%d:-none}" % (k, k % 5))
        e.append("plain_%d = some static configuration text that does not change" % k)
    j += ["{% for b in backends %}backend {{ b.name }} {{ b.addr }}\n{% endfor %}"]
    e += ["backend ${BACKEND_0}", "backend ${BACKEND_1}"]
    open(f"{w}/jtree/{sub}/app{i}.conf", "w").write("\n".join(j) + "\n")
    open(f"{w}/etree/{sub}/app{i}.conf", "w").write("\n".join(e) + "\n")
json.dump({"app": {"name": "shop", "host": "0.0.0.0", "port": 8000,
                   "options": ["a", "b", "c", "d", "e"]},
           "backends": [{"name": f"b{n}", "addr": f"10.0.0.{n}:80"} for n in range(4)]},
          open(f"{w}/data.json", "w"))
# One 5 MB template: 100k lines, one variable each.
jl, el, gl = [], [], []
n = size = 0
while size < 5 * 1024 * 1024:
    jl.append("key_%d = {{ app.name }} value with some padding text here {{ app.port }}\n" % n)
    el.append("key_%d = ${APP_NAME} value with some padding text here ${APP_PORT}\n" % n)
    gl.append("key_%d = {{ .app.name }} value with some padding text here {{ .app.port }}\n" % n)
    size += len(jl[-1])
    n += 1
open(f"{w}/big.j2", "w").write("".join(jl))
open(f"{w}/big.tmpl", "w").write("".join(el))
open(f"{w}/big.gotmpl", "w").write("".join(gl))
EOF

cat > "$WORK/j2tree.py" <<'EOF'
import json, os, sys, jinja2
src, out, data = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])); data["env"] = dict(os.environ)
env = jinja2.Environment(loader=jinja2.FileSystemLoader(src), undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
for name in env.list_templates():
    os.makedirs(os.path.dirname(os.path.join(out, name)), exist_ok=True)
    open(os.path.join(out, name), "w").write(env.get_template(name).render(**data))
EOF
cat > "$WORK/j2one.py" <<'EOF'
import json, sys, jinja2
env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
open(sys.argv[2], "w").write(env.from_string(open(sys.argv[1]).read()).render(**json.load(open(sys.argv[3]))))
EOF
cat > "$WORK/envsubst-tree.sh" <<'EOF'
src=$1 out=$2
cd "$src" && find . -type f | while read -r f; do
  mkdir -p "$out/$(dirname "$f")"; envsubst < "$f" > "$out/$f"
done
EOF

export BENCH_REGION=eu-west-1 APP_NAME=shop APP_HOST=0.0.0.0 APP_PORT=8000 \
  OPT_0=a OPT_1=b OPT_2=c OPT_3=d OPT_4=e BACKEND_0=10.0.0.1:80 BACKEND_1=10.0.0.2:80

# measure LABEL TOOL CMD...: best wall time of 3 runs, peak RSS of that run.
measure() {
  local label=$1 tool=$2; shift 2
  local best="" rss=""
  for _ in 1 2 3; do
    rm -rf "$WORK/out"; mkdir -p "$WORK/out"
    /usr/bin/time -f "%e %M" -o "$WORK/t" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; echo "FAILED: $tool" >&2; exit 1; }
    read -r wall kb < "$WORK/t"
    if [ -z "$best" ] || awk "BEGIN{exit !($wall < $best)}"; then best=$wall; rss=$kb; fi
  done
  printf "%-26s %-40s %8.2f s %9.1f MB\n" "$label" "$tool" "$best" "$(awk "BEGIN{print $rss/1024}")"
}

echo "initbox: $BIN ($(du -h "$BIN" | cut -f1)), $(nproc) cores"
printf "%-26s %-40s %10s %12s\n" "case" "tool" "wall" "peak RSS"
measure "200-file tree (Jinja)" "initbox render-config" \
  "$BIN" render-config "$WORK/jtree" "$WORK/out" --data "$WORK/data.json"
measure "200-file tree (Jinja)" "python3 jinja2 $(python3 -c 'import jinja2; print(jinja2.__version__)')" \
  python3 "$WORK/j2tree.py" "$WORK/jtree" "$WORK/out" "$WORK/data.json"
measure "200-file tree (envsubst)" "initbox render-config --engine envsubst" \
  "$BIN" render-config --engine envsubst "$WORK/etree" "$WORK/out"
measure "200-file tree (envsubst)" "GNU envsubst (one per file)" \
  bash "$WORK/envsubst-tree.sh" "$WORK/etree" "$WORK/out"
measure "200-file tree (Go)" "initbox render-config --engine go" \
  "$BIN" render-config --engine go "$WORK/gtree" "$WORK/out" --data "$WORK/data.json"
measure "5 MB template (Jinja)" "initbox render-config" \
  "$BIN" render-config "$WORK/big.j2" "$WORK/out/big.conf" --data "$WORK/data.json"
measure "5 MB template (Jinja)" "python3 jinja2" \
  python3 "$WORK/j2one.py" "$WORK/big.j2" "$WORK/out/big.conf" "$WORK/data.json"
if command -v ansible >/dev/null; then
  # Ansible's template module (ansible-core, tests/setup/21-template-ansible.sh), as a role
  # renders one file: the whole run, start-up included, is what a user waits for.
  measure "5 MB template (Jinja)" "ansible -m template $(ansible --version | head -1 | grep -o 'core [0-9.]*')" \
    env ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
    ansible localhost -c local -i localhost, -m template \
    -a "src=$WORK/big.j2 dest=$WORK/out/big.conf" -e "@$WORK/data.json" \
    -e "ansible_python_interpreter=$(command -v python3)"
fi
measure "5 MB template (envsubst)" "initbox render-config --engine envsubst" \
  "$BIN" render-config --engine envsubst "$WORK/big.tmpl" "$WORK/out/big.conf"
measure "5 MB template (envsubst)" "GNU envsubst" \
  bash -c 'envsubst < "$0" > "$1"' "$WORK/big.tmpl" "$WORK/out/big.conf"
measure "5 MB template (Go)" "initbox render-config --engine go" \
  "$BIN" render-config --engine go "$WORK/big.gotmpl" "$WORK/out/big.conf" --data "$WORK/data.json"
