#!/usr/bin/env bash
# Benchmark `initbox run-migrations` against sql-migrate (Debian package) on PostgreSQL:
# 200 migrations, each a table, an index and 100 rows, the same SQL for both tools (sqlx file
# names for initbox, `-- +migrate Up/Down` files for sql-migrate). Measures
#   1. one run on an empty database (median of $REPS=5, each on a fresh database, alternating
#      between the tools so drifting machine load affects both alike);
#   2. a re-run when everything is applied (the common pod restart; median of 5);
#   3. 10 concurrent runs on one empty database (every replica's init container at once):
#      how many exit 0, total wall time against the same round's single run, and whether every
#      migration was applied exactly once;
# with the peak RSS of every process (GNU time). Both connect without TLS (sslmode=disable).
# sqlx-cli is not included: `cargo install sqlx-cli` is a long build (and `sqlx migrate run`
# takes no lock at all, see shared/reference/migrations-anchors.md).
#
#   bench/run-migrations.sh                 # builds the static release binary first
#   INITBOX_BIN=target/release/initbox bench/run-migrations.sh
#   N=50 CONC=5 bench/run-migrations.sh     # smaller
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200}
CONC=${CONC:-10}
REPS=${REPS:-5}
PGURL_BASE=${PGURL_BASE:-postgres://postgres@127.0.0.1:5432}

command -v sql-migrate >/dev/null || {
  echo "installing sql-migrate" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sql-migrate >/dev/null
}
command -v psql >/dev/null || { echo "psql is needed (tests/setup/10-services.sh)" >&2; exit 2; }
bin="${INITBOX_BIN:-$(scripts/build-static.sh --no-default-features --features run-migrations)}"

work=$(mktemp -d)
dbs=()
cleanup() {
  for db in "${dbs[@]}"; do
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the migrations, in both layouts
mkdir -p "$work/sqlx" "$work/sqlmigrate"
python3 - "$work" "$N" <<'EOF'
import sys, os
work, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    rows = ",\n  ".join(f"({r}, 'row {r} of table {i}', {r * i})" for r in range(1, 101))
    up = (f"CREATE TABLE bench_{i} (id integer PRIMARY KEY, name text NOT NULL, value integer NOT NULL);\n"
          f"CREATE INDEX bench_{i}_name_idx ON bench_{i} (name);\n"
          f"INSERT INTO bench_{i} (id, name, value) VALUES\n  {rows};\n")
    name = f"{i:04d}_table_{i}.sql"
    with open(os.path.join(work, "sqlx", name), "w") as f:
        f.write(up)
    with open(os.path.join(work, "sqlmigrate", name), "w") as f:
        f.write(f"-- +migrate Up\n{up}\n-- +migrate Down\nDROP TABLE bench_{i};\n")
EOF

seq_no=0
fresh_db() { # sets $db to a new empty database (dropped on exit)
  seq_no=$((seq_no + 1))
  db="initbox_bench_$$_$seq_no"
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db" >/dev/null
  dbs+=("$db")
}

# cmd_for TOOL DB: the command line of one run.
cmd_for() {
  local tool=$1 db=$2
  case $tool in
    initbox)
      echo "$bin run-migrations -q --database-url $PGURL_BASE/$db?sslmode=disable --dir $work/sqlx"
      ;;
    sql-migrate)
      cat >"$work/dbconfig-$db.yml" <<EOF
bench:
  dialect: postgres
  datasource: host=127.0.0.1 port=5432 user=postgres dbname=$db sslmode=disable
  dir: $work/sqlmigrate
  table: gorp_migrations
EOF
      echo "sql-migrate up -config=$work/dbconfig-$db.yml -env=bench"
      ;;
  esac
}

now() { date +%s.%N; }

# timed OUTFILE CMD...: run under GNU time; OUTFILE gets "exit wall_s max_rss_kib".
timed() {
  local out=$1; shift
  local t0 t1 rc=0
  t0=$(now)
  /usr/bin/time -f "%M" -o "$out.rss" "$@" >"$out.log" 2>&1 || rc=$?
  t1=$(now)
  echo "$rc $(echo "$t1 - $t0" | bc -l) $(tail -1 "$out.rss")" >"$out"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k/1024}'; }

applied_ok() { # TOOL DB: every migration applied exactly once?
  local tool=$1 db=$2 table rows
  [ "$tool" = initbox ] && table=_sqlx_migrations || table=gorp_migrations
  rows=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT count(*) FROM $table" 2>/dev/null || echo 0)
  local tables
  tables=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'bench\_%'")
  local data
  data=$(psql -h 127.0.0.1 -U postgres -d "$db" -tAc "SELECT count(*) FROM bench_$N" 2>/dev/null || echo 0)
  [ "$rows" = "$N" ] && [ "$tables" = "$N" ] && [ "$data" = 100 ]
}

# Each round runs, per tool (alternating, so the drifting load of a shared machine hits both
# alike): a single run on a fresh database, a re-run on it, then $CONC concurrent runs on another
# fresh database. The concurrency ratio is taken per round (concurrent total / that round's
# single run) and the median over $REPS rounds is reported, as are the medians of the times.
declare -A walls rewalls cwalls ratios conc_ok conc_exact rss_single rss_conc first_fail
for tool in initbox sql-migrate; do
  walls[$tool]="" rewalls[$tool]="" cwalls[$tool]="" ratios[$tool]=""
  conc_ok[$tool]=0 conc_exact[$tool]=yes rss_single[$tool]=0 rss_conc[$tool]=0 first_fail[$tool]=""
done
for i in $(seq 1 "$REPS"); do
  for tool in initbox sql-migrate; do
    fresh_db
    read -r -a cmd <<<"$(cmd_for "$tool" "$db")"
    timed "$work/r" "${cmd[@]}"
    read -r rc wall rss <"$work/r"
    [ "$rc" = 0 ] || { echo "$tool failed:"; cat "$work/r.log"; exit 1; }
    applied_ok "$tool" "$db" || { echo "$tool: migrations not applied as expected"; exit 1; }
    single_wall=$wall
    walls[$tool]+="$wall "
    [ "$rss" -gt "${rss_single[$tool]}" ] && rss_single[$tool]=$rss
    timed "$work/r" "${cmd[@]}"
    read -r rc wall rss <"$work/r"
    [ "$rc" = 0 ] || { echo "$tool re-run failed:"; cat "$work/r.log"; exit 1; }
    rewalls[$tool]+="$wall "
    [ "$rss" -gt "${rss_single[$tool]}" ] && rss_single[$tool]=$rss

    fresh_db
    read -r -a cmd <<<"$(cmd_for "$tool" "$db")"
    t0=$(now)
    pids=()
    for j in $(seq 1 "$CONC"); do
      timed "$work/c$j" "${cmd[@]}" &
      pids+=($!)
    done
    wait "${pids[@]}"
    t1=$(now)
    total=$(echo "$t1 - $t0" | bc -l)
    cwalls[$tool]+="$total "
    ratios[$tool]+="$(echo "$total / $single_wall" | bc -l) "
    for j in $(seq 1 "$CONC"); do
      read -r rc wall rss <"$work/c$j"
      if [ "$rc" = 0 ]; then
        conc_ok[$tool]=$((conc_ok[$tool] + 1))
      elif [ -z "${first_fail[$tool]}" ]; then
        first_fail[$tool]=$(tail -1 "$work/c$j.log")
      fi
      [ "$rss" -gt "${rss_conc[$tool]}" ] && rss_conc[$tool]=$rss
    done
    applied_ok "$tool" "$db" || conc_exact[$tool]=NO
  done
done
declare -A single rerun conc_wall conc_ratio
for tool in initbox sql-migrate; do
  single[$tool]=$(printf '%s\n' ${walls[$tool]} | median)
  rerun[$tool]=$(printf '%s\n' ${rewalls[$tool]} | median)
  conc_wall[$tool]=$(printf '%s\n' ${cwalls[$tool]} | median)
  conc_ratio[$tool]=$(printf '%s\n' ${ratios[$tool]} | median)
  echo "$tool: single ${walls[$tool]}| concurrent ${cwalls[$tool]}" >&2
  [ -n "${first_fail[$tool]}" ] && echo "note: $tool concurrent failure, e.g.: ${first_fail[$tool]}" >&2
done
runs=$((REPS * CONC))

pgv=$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SHOW server_version" | cut -d' ' -f1)
printf '\nrun-migrations: %d migrations (table + index + 100 rows each), PostgreSQL %s on 127.0.0.1, %d cores\n' "$N" "$pgv" "$(nproc)"
printf 'binary: %s (%s bytes)\n\n' "$bin" "$(stat -c %s "$bin")"
printf '%-24s %10s %10s %10s   %-20s %10s %8s %10s %6s\n' tool "single" "re-run" "peak RSS" "${CONC} at once" "total" "ratio" "peak RSS" "once"
for tool in initbox sql-migrate; do
  label=$tool; [ "$tool" = initbox ] && label="initbox run-migrations"
  printf '%-24s %9.2fs %9.3fs %10s   %-20s %9.2fs %7.2fx %10s %6s\n' "$label" "${single[$tool]}" "${rerun[$tool]}" \
    "$(mib "${rss_single[$tool]}")" "${conc_ok[$tool]}/$runs exit 0" "${conc_wall[$tool]}" "${conc_ratio[$tool]}" \
    "$(mib "${rss_conc[$tool]}")" "${conc_exact[$tool]}"
done
echo "(medians of $REPS rounds; ratio = concurrent total / single run of the same round; once = every migration applied exactly once)"
echo
ratio=$(echo "${single[initbox]} / ${single[sql-migrate]}" | bc -l)
cratio=${conc_ratio[initbox]}
peak=${rss_single[initbox]}; [ "${rss_conc[initbox]}" -gt "$peak" ] && peak=${rss_conc[initbox]}
verdict() { if [ "$1" = 1 ]; then echo met; else echo MISSED; fi; }
printf 'goal: single run <= 1.0x sql-migrate:              %.2fx  %s\n' "$ratio" "$(verdict "$(echo "$ratio <= 1.0" | bc -l)")"
printf 'goal: all concurrent runs exit 0, total <= 1.5x single: %d/%d, %.2fx  %s\n' "${conc_ok[initbox]}" "$runs" "$cratio" \
  "$(verdict "$( [ "${conc_ok[initbox]}" = "$runs" ] && echo "$cratio <= 1.5" | bc -l || echo 0)")"
printf 'goal: peak RSS <= 16 MiB:                            %s  %s\n' "$(mib "$peak")" "$(verdict "$(echo "$peak <= 16384" | bc -l)")"
