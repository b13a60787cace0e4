#!/usr/bin/env bash
# The "Sandbox bank under load" table of docs/BENCHMARKS.md, in one command:
#
#   bash bank-sandbox/bench/load.sh            # SQLite FULL, SQLite NORMAL, PostgreSQL
#   BACKENDS="full normal" bash bank-sandbox/bench/load.sh     # a subset
#
# Builds the release binary, then per case: a fresh database (a new SQLite file, or a new
# PostgreSQL database in the throwaway cluster of scripts/postgres.sh), `bank-sandbox seed`,
# a server, and one `bank-sandbox load` run (closed loop at 100 and 1,000 sessions, then open
# loop at 1,000 sessions on a ladder of offered rates). Prints one JSON line per case: the
# load report plus `case`, `backend` and `foreign_cpu_seconds` (machine CPU used by neither
# the server nor the load generator during the payment phase: PostgreSQL's processes, and
# any other work on the machine; with SQLite a large figure means the machine was busy and
# the case is not a figure of this bank), for PostgreSQL also its processes' CPU over the
# whole run, then one summary line per backend with the highest offered rate it sustained
# (no errors, at least 97% of the offered rate achieved) with p99 under 20 ms.
#
# Knobs (environment): BANK_SANDBOX_BIN (a binary to measure instead of building), PG_POOL
# (PostgreSQL connections of the server, default 64), BACKENDS, RATES_SQLITE, RATES_POSTGRES (offered payments/s), DURATION
# (seconds of open-loop load), OUT (directory for databases and logs). About 5 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BACKENDS="${BACKENDS:-full normal postgres}"
RATES_SQLITE="${RATES_SQLITE:-2000 3000 4000 5000}"
RATES_POSTGRES="${RATES_POSTGRES:-250 500 1000}"
DURATION="${DURATION:-8}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/bank-load.XXXXXX")}"
mkdir -p "$OUT"
P99_GOAL_MS=20
log() { printf 'load.sh: %s\n' "$*" >&2; }

cd "$ROOT"
source scripts/env.sh
if [ -n "${BANK_SANDBOX_BIN:-}" ]; then
  BIN="$BANK_SANDBOX_BIN" # a given build, e.g. to compare two versions
else
  log "building (release)"
  cargo build --release -q -p bank-sandbox >&2
  BIN="$CARGO_TARGET_DIR/release/bank-sandbox"
fi

# CPU seconds used so far by the PostgreSQL cluster's processes: the postmaster, the backends
# it has reaped (its children's time) and those still running.
postgres_cpu() {
  [ -n "$PG_URL" ] || { echo 0; return; }
  python3 - "$PG_DATA/postmaster.pid" <<'PY'
import os, sys
try:
    root = int(open(sys.argv[1]).readline())
except (OSError, ValueError):
    print(0); sys.exit()
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(pid) == root:
        total += sum(int(f) for f in fields[11:15])
    elif int(fields[1]) == root:
        total += int(fields[11]) + int(fields[12])
print(total / tick)
PY
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PG_URL=""
if [[ " $BACKENDS " == *" postgres "* ]]; then
  if [ -z "${PINBRIDGE_PG_PORT:-}" ] && python3 -c 'import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(("127.0.0.1",55432))!=0)'; then
    # Something already listens on the default port (maybe not ours): use a free one.
    export PINBRIDGE_PG_PORT="$(free_port)"
  fi
  eval "$(bash scripts/postgres.sh)"
  PG_URL="$PINBRIDGE_PG_URL"
  PG_DATA="${PINBRIDGE_PG_DIR:-${TMPDIR:-/tmp}/pinbridge-pg-${PINBRIDGE_PG_PORT:-55432}}"
  PSQL="$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)"
fi

# run_case NAME BACKEND LOAD_ARGS...: prints the case's JSON line.
run_case() {
  local name="$1" backend="$2"
  shift 2
  local dir="$OUT/$name" database
  rm -rf "$dir"
  mkdir -p "$dir"
  case "$backend" in
    full | normal) database="sqlite://$dir/bank.db" ;;
    postgres)
      local db="bank_load_${name//[^a-z0-9]/_}"
      "$PSQL" "$PG_URL" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
      database="${PG_URL%/*}/$db"
      ;;
  esac
  local synchronous=FULL
  [ "$backend" = normal ] && synchronous=NORMAL
  export PINBRIDGE_SQLITE_SYNCHRONOUS="$synchronous"
  # The PostgreSQL pool: enough connections for the group of requests in flight.
  export PINBRIDGE_BANK_MAX_CONNECTIONS="${PG_POOL:-64}"
  "$BIN" seed --database "$database" --master-key-file "$dir/master-key" >/dev/null 2>"$dir/seed.log"
  local port
  port="$(free_port)"
  RUST_LOG=warn "$BIN" serve --database "$database" --master-key-file "$dir/master-key" \
    --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
  local server=$!
  for _ in $(seq 50); do
    python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port))!=0)" && break
    sleep 0.1
  done
  local db_cpu_before db_cpu_after
  db_cpu_before="$(postgres_cpu)"
  "$BIN" load --url "http://127.0.0.1:$port" --server-pid "$server" "$@" >"$dir/load.json" 2>"$dir/load.log" || true
  db_cpu_after="$(postgres_cpu)"
  kill -TERM "$server"
  wait "$server" || true
  python3 - "$dir/load.json" "$name" "$backend" "$db_cpu_before" "$db_cpu_after" <<'PY'
import json, sys
path, name, backend = sys.argv[1:4]
db_cpu = float(sys.argv[5]) - float(sys.argv[4])
try:
    report = json.load(open(path))
except (OSError, ValueError):
    report = {"error": "no report: see " + path.replace("load.json", "load.log")}
line = {"case": name, "backend": backend}
line.update(report)
used = (report.get("server_cpu_seconds") or 0) + (report.get("client_cpu_seconds") or 0)
if backend == "postgres":
    # The PostgreSQL processes over the whole run (setup and logins included): an upper
    # bound of the database's CPU in the payment phase.
    line["postgres_cpu_seconds_whole_run"] = db_cpu
    if report.get("payments"):
        line["postgres_cpu_us_per_payment_upper_bound"] = db_cpu * 1e6 / report["payments"]
if report.get("machine_cpu_seconds") is not None:
    # PostgreSQL's own CPU is part of this figure: it is neither server nor client.
    line["foreign_cpu_seconds"] = round(report["machine_cpu_seconds"] - used, 2)
for key, value in line.items():
    if isinstance(value, float):
        line[key] = round(value, 2)
print(json.dumps(line), flush=True)
PY
}

log "results in $OUT"
for backend in $BACKENDS; do
  rates="$RATES_SQLITE"
  [ "$backend" = postgres ] && rates="$RATES_POSTGRES"
  run_case "$backend-closed-100" "$backend" --sessions 100 --payments 100 | tee -a "$OUT/results.jsonl"
  run_case "$backend-closed-1000" "$backend" --sessions 1000 --payments 10 | tee -a "$OUT/results.jsonl"
  for rate in $rates; do
    run_case "$backend-open-1000-$rate" "$backend" --sessions 1000 --rate "$rate" --duration "$DURATION" \
      | tee -a "$OUT/results.jsonl"
  done
done

python3 - "$OUT/results.jsonl" "$P99_GOAL_MS" <<'PY'
import json, sys
goal = float(sys.argv[2])
best = {}
for line in open(sys.argv[1]):
    case = json.loads(line)
    if case.get("mode") != "open":
        continue
    backend = case["backend"]
    best.setdefault(backend, None)
    sustained = (case.get("errors") == 0 and case.get("p99_ms", 1e9) < goal
                 and case.get("payments_per_second", 0) >= 0.97 * case.get("offered_per_second", 0))
    if sustained and (best[backend] is None or case["offered_per_second"] > best[backend]["offered_per_second"]):
        best[backend] = case
for backend, case in best.items():
    print(json.dumps({"summary": backend, "p99_goal_ms": goal,
                      "max_sustained_per_second": case["offered_per_second"] if case else None,
                      "p99_ms": case["p99_ms"] if case else None,
                      "server_cpu_us_per_payment": case.get("server_cpu_us_per_payment") if case else None,
                      "foreign_cpu_seconds": case.get("foreign_cpu_seconds") if case else None}))
PY
[ -n "$PG_URL" ] && log "PostgreSQL still runs (bash scripts/postgres.sh stop ends it)"
exit 0
