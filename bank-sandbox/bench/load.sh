#!/usr/bin/env bash
# The "Sandbox bank under load" table of docs/BENCHMARKS.md, in one command:
#
#   bash bank-sandbox/bench/load.sh            # SQLite FULL, SQLite NORMAL, PostgreSQL
#   BACKENDS="full normal" bash bank-sandbox/bench/load.sh     # a subset
#   SOAK_SECONDS=600 bash bank-sandbox/bench/load.sh           # the soak instead (see below)
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
# PostgreSQL also gets its ceiling on this machine, in the same cluster and run: `pgbench`'s
# built-in simple-update (one UPDATE, SELECT, INSERT transaction, one commit each) at
# PGBENCH_CLIENTS clients for DURATION seconds; the summary gives the bank's payments/s as a
# ratio to pgbench's transactions/s (a payment is two of the bank's transactions, prepare
# and decision, which the group commit shares among many payments). Then the same open loop
# with the bank in MULTI_PROCS processes (default "2 3", empty for none) on the one
# database, each session's calls sent to them in turn (`load --also-url`), at MULTI_RATE
# payments/s.
#
# Soak (SOAK_SECONDS set, e.g. 600; the test command runs 30): per backend, 1,000 sessions at
# a steady SOAK_RATE_SQLITE / SOAK_RATE_POSTGRES payments/s for SOAK_SECONDS, the server's
# RSS sampled every 10 s, p50/p99 per SOAK_WINDOW seconds (default 60, or a third of a short
# soak). One JSON line per backend; exits 1 if any soak had an error or achieved less than
# 97% of its rate.
#
# Knobs (environment): BANK_SANDBOX_BIN (a binary to measure instead of building), PG_POOL
# (PostgreSQL connections of the server besides its group-commit workers, default 16),
# PG_SETTINGS (the cluster's server settings, see below), BACKENDS, RATES_SQLITE,
# RATES_POSTGRES (offered payments/s), DURATION (seconds of open-loop load),
# PGBENCH_CLIENTS (16), MULTI_PROCS, MULTI_RATE, OUT (directory for databases and logs).
# About 6 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BACKENDS="${BACKENDS:-full normal postgres}"
RATES_SQLITE="${RATES_SQLITE:-2000 3000 4000 5000}"
RATES_POSTGRES="${RATES_POSTGRES:-1000 2000 3000}"
DURATION="${DURATION:-8}"
PGBENCH_CLIENTS="${PGBENCH_CLIENTS:-16}"
MULTI_PROCS="${MULTI_PROCS-2 3}"
MULTI_RATE="${MULTI_RATE:-2000}"
SOAK_SECONDS="${SOAK_SECONDS:-}"
SOAK_RATE_SQLITE="${SOAK_RATE_SQLITE:-3000}"
SOAK_RATE_POSTGRES="${SOAK_RATE_POSTGRES:-1000}"
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
  # A cluster of its own, stopped and deleted at the end: the tests' cluster holds hundreds
  # of databases, and autovacuum visits each in turn (a worker started every 0.14 s for
  # 434 databases made latency spikes at that rhythm).
  export PINBRIDGE_PG_PORT="$(free_port)"
  unset PINBRIDGE_PG_DIR
  # Settings a DBA would give this workload instead of the defaults sized for a tiny
  # machine (128 MB of buffers, a checkpoint per 1 GB of log): buffers that hold the hot
  # end of payments and journal, checkpoints far apart (each is followed by a full page
  # image in the log for every page first touched), and autovacuum paced so that the
  # minute-by-minute vacuum of payments spreads its work instead of taking a core for a
  # second or two. A 5-minute soak at 3,000/s (2026-12-05): p99 33 -> 22 ms, the worst
  # 10 s window 132 -> 65 ms. PG_SETTINGS replaces them (PG_SETTINGS= for initdb's defaults).
  export PINBRIDGE_PG_SETTINGS="${PG_SETTINGS--c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=15min -c autovacuum_vacuum_cost_delay=10ms}"
  trap 'bash scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
  eval "$(bash scripts/postgres.sh)"
  PG_URL="$PINBRIDGE_PG_URL"
  PG_DATA="${TMPDIR:-/tmp}/pinbridge-pg-$PINBRIDGE_PG_PORT" # where scripts/postgres.sh puts it
  PSQL="$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)"
  PGBENCH="$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n 1)"
fi

# CPU seconds (user + system) of the given processes so far.
procs_cpu() {
  python3 - "$@" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    except OSError:
        pass
print(total / tick)
PY
}

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
  export PINBRIDGE_BANK_MAX_CONNECTIONS="${PG_POOL:-16}"
  "$BIN" seed --database "$database" --master-key-file "$dir/master-key" >/dev/null 2>"$dir/seed.log"
  # PROCS bank processes on the one database (more than one: PostgreSQL only).
  local servers=() urls=() port i
  for i in $(seq "${PROCS:-1}"); do
    port="$(free_port)"
    RUST_LOG=warn "$BIN" serve --database "$database" --master-key-file "$dir/master-key" \
      --listen "127.0.0.1:$port" >"$dir/server-$i.log" 2>&1 &
    servers+=("$!")
    urls+=("http://127.0.0.1:$port")
    for _ in $(seq 50); do
      python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port))!=0)" && break
      sleep 0.1
    done
  done
  local also=() url
  for url in "${urls[@]:1}"; do also+=(--also-url "$url"); done
  local sampler=""
  if [ -n "$SOAK_SECONDS" ]; then
    # RSS of the (first) server every 10 s: "seconds kib" lines.
    (
      start=$(date +%s)
      while kill -0 "${servers[0]}" 2>/dev/null; do
        echo "$(($(date +%s) - start)) $(awk '/^VmRSS/ {print $2}' "/proc/${servers[0]}/status" 2>/dev/null)"
        sleep 10
      done
    ) >"$dir/rss.txt" &
    sampler=$!
  fi
  local db_cpu_before db_cpu_after srv_cpu_before srv_cpu_after
  db_cpu_before="$(postgres_cpu)"
  srv_cpu_before="$(procs_cpu "${servers[@]}")"
  "$BIN" load --url "${urls[0]}" "${also[@]}" --server-pid "${servers[0]}" "$@" >"$dir/load.json" 2>"$dir/load.log" || true
  db_cpu_after="$(postgres_cpu)"
  srv_cpu_after="$(procs_cpu "${servers[@]}")"
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  kill -TERM "${servers[@]}"
  wait "${servers[@]}" || true
  if [ -n "$sampler" ]; then wait "$sampler" 2>/dev/null || true; fi
  # A finished case's database goes at once: left in the cluster, autovacuum's first visit
  # to it (a vacuum and an analyze of every table, about a second of a core) falls in a
  # later case and is measured there (2026-12-05: the two- and three-process cases ran
  # beside the vacuums of the four cases before them; docs/BENCHMARKS.md).
  if [ "$backend" = postgres ]; then
    "$PSQL" "$PG_URL" -qc "DROP DATABASE $db" >/dev/null || log "could not drop $db"
  fi
  python3 - "$dir/load.json" "$name" "$backend" "$db_cpu_before" "$db_cpu_after" "${PROCS:-1}" \
    "$srv_cpu_before" "$srv_cpu_after" "$dir/rss.txt" <<'PY'
import json, os, sys
path, name, backend = sys.argv[1:4]
db_cpu = float(sys.argv[5]) - float(sys.argv[4])
procs = int(sys.argv[6])
servers_cpu = float(sys.argv[8]) - float(sys.argv[7])
try:
    report = json.load(open(path))
except (OSError, ValueError):
    report = {"error": "no report: see " + path.replace("load.json", "load.log")}
line = {"case": name, "backend": backend, "processes": procs}
line.update(report)
if procs > 1:
    # Every bank process, not only the first (--server-pid).
    line["server_cpu_seconds"] = servers_cpu
    if report.get("payments"):
        line["server_cpu_us_per_payment"] = servers_cpu * 1e6 / report["payments"]
if os.path.exists(sys.argv[9]):
    samples = [l.split() for l in open(sys.argv[9]) if len(l.split()) == 2]
    line["rss_kib_every_10s"] = [int(kib) for _, kib in samples]
used = (line.get("server_cpu_seconds") or 0) + (report.get("client_cpu_seconds") or 0)
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

if [ -n "$SOAK_SECONDS" ]; then
  window="${SOAK_WINDOW:-$((SOAK_SECONDS >= 180 ? 60 : SOAK_SECONDS / 3))}"
  for backend in $BACKENDS; do
    rate="$SOAK_RATE_SQLITE"
    [ "$backend" = postgres ] && rate="$SOAK_RATE_POSTGRES"
    run_case "$backend-soak" "$backend" --sessions 1000 --rate "$rate" --duration "$SOAK_SECONDS" \
      --interval-seconds "$window" | tee -a "$OUT/soak.jsonl"
  done
  python3 - "$OUT/soak.jsonl" <<'PY'
import json, sys
bad = 0
for line in open(sys.argv[1]):
    case = json.loads(line)
    ok = (case.get("errors") == 0
          and case.get("payments_per_second", 0) >= 0.97 * case.get("offered_per_second", 1))
    print(f"load.sh: soak {case['case']}: {'ok' if ok else 'FAILED'} "
          f"({case.get('payments_per_second')}/s of {case.get('offered_per_second')}/s, "
          f"{case.get('errors')} errors, p99 {case.get('p99_ms')} ms, "
          f"RSS KiB {case.get('rss_kib_every_10s')})", file=sys.stderr)
    bad += not ok
sys.exit(1 if bad else 0)
PY
  exit $?
fi

if [ -n "$PG_URL" ]; then
  # The database's own ceiling on this machine, same cluster, same run.
  "$PSQL" "$PG_URL" -qc "DROP DATABASE IF EXISTS bank_pgbench" -c "CREATE DATABASE bank_pgbench" >/dev/null
  PGBENCH_URL="${PG_URL%/*}/bank_pgbench"
  "$PGBENCH" -i -q -s 10 "$PGBENCH_URL" >"$OUT/pgbench-init.log" 2>&1
  machine_before="$(awk '/^cpu / {print ($2+$3+$4+$7+$8+$9)/100}' /proc/stat)"
  "$PGBENCH" -b simple-update -M prepared -c "$PGBENCH_CLIENTS" -j 1 -T "$DURATION" "$PGBENCH_URL" \
    >"$OUT/pgbench.log" 2>&1 || true
  machine_after="$(awk '/^cpu / {print ($2+$3+$4+$7+$8+$9)/100}' /proc/stat)"
  # Its million accounts would keep autovacuum busy during the cases after it (the
  # 1,000/s case's p99 was 32-35 ms beside that vacuum, 9-11 ms without).
  "$PSQL" "$PG_URL" -qc "DROP DATABASE bank_pgbench" >/dev/null || log "could not drop bank_pgbench"
  python3 - "$OUT/pgbench.log" "$PGBENCH_CLIENTS" "$DURATION" "$machine_before" "$machine_after" <<'PY' | tee -a "$OUT/results.jsonl"
import json, re, sys
text = open(sys.argv[1]).read()
tps = re.search(r"tps = ([0-9.]+)", text)
latency = re.search(r"latency average = ([0-9.]+) ms", text)
print(json.dumps({"case": "pgbench-simple-update", "backend": "postgres",
                  "clients": int(sys.argv[2]), "seconds": float(sys.argv[3]),
                  "tps": round(float(tps.group(1)), 1) if tps else None,
                  "latency_avg_ms": float(latency.group(1)) if latency else None,
                  "machine_cpu_seconds": round(float(sys.argv[5]) - float(sys.argv[4]), 2)}))
PY
fi

for backend in $BACKENDS; do
  rates="$RATES_SQLITE"
  [ "$backend" = postgres ] && rates="$RATES_POSTGRES"
  run_case "$backend-closed-100" "$backend" --sessions 100 --payments 100 | tee -a "$OUT/results.jsonl"
  run_case "$backend-closed-1000" "$backend" --sessions 1000 --payments 10 | tee -a "$OUT/results.jsonl"
  for rate in $rates; do
    run_case "$backend-open-1000-$rate" "$backend" --sessions 1000 --rate "$rate" --duration "$DURATION" \
      | tee -a "$OUT/results.jsonl"
  done
  if [ "$backend" = postgres ]; then
    for procs in $MULTI_PROCS; do
      PROCS="$procs" run_case "$backend-${procs}proc-open-1000-$MULTI_RATE" "$backend" --sessions 1000 \
        --rate "$MULTI_RATE" --duration "$DURATION" | tee -a "$OUT/results.jsonl"
    done
  fi
done

python3 - "$OUT/results.jsonl" "$P99_GOAL_MS" <<'PY'
import json, sys
goal = float(sys.argv[2])
best = {}
pgbench = None
capacity = {}
for line in open(sys.argv[1]):
    case = json.loads(line)
    if case.get("case") == "pgbench-simple-update":
        pgbench = case.get("tps")
    if case.get("mode") == "closed" and case.get("sessions") == 1000:
        capacity[case["backend"]] = case.get("payments_per_second")
    if case.get("mode") != "open" or case.get("processes", 1) != 1:
        continue
    backend = case["backend"]
    best.setdefault(backend, None)
    sustained = (case.get("errors") == 0 and case.get("p99_ms", 1e9) < goal
                 and case.get("payments_per_second", 0) >= 0.97 * case.get("offered_per_second", 0))
    if sustained and (best[backend] is None or case["offered_per_second"] > best[backend]["offered_per_second"]):
        best[backend] = case
for backend, case in best.items():
    line = {"summary": backend, "p99_goal_ms": goal,
            "max_sustained_per_second": case["offered_per_second"] if case else None,
            "p99_ms": case["p99_ms"] if case else None,
            "server_cpu_us_per_payment": case.get("server_cpu_us_per_payment") if case else None,
            "foreign_cpu_seconds": case.get("foreign_cpu_seconds") if case else None,
            "capacity_per_second": capacity.get(backend)}
    if backend == "postgres" and pgbench:
        line["pgbench_simple_update_tps"] = pgbench
        if case:
            line["sustained_to_pgbench"] = round(case["offered_per_second"] / pgbench, 3)
        if capacity.get(backend):
            line["capacity_to_pgbench"] = round(capacity[backend] / pgbench, 3)
    print(json.dumps(line))
PY
exit 0
