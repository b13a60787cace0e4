#!/usr/bin/env bash
# The desktop app's footprint on this machine, as a markdown table (for docs/BENCHMARKS.md):
#   - idle memory: resident set of the app and all its WebKit child processes, summed, after
#     5 s idle under Xvfb; also their proportional (PSS) and private (USS) sizes, since an RSS
#     sum counts every shared library (WebKit, JavaScriptCore, Mesa's LLVM) once per process;
#   - time to first paint: launch (the WebDriver request that starts the app) to the page's
#     first contentful paint, median of 3 launches under Xvfb;
#   - the .deb's size.
# Builds first (scripts/app-build.sh) unless APP_FOOTPRINT_NO_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
source scripts/env.sh
source scripts/app-xvfb.sh

if [ "${APP_FOOTPRINT_NO_BUILD:-0}" != 1 ]; then
  bash scripts/app-build.sh >&2
fi
app="$CARGO_TARGET_DIR/release/pinbridge-app"
[ -x "$app" ] || { echo "app-footprint: $app is missing; run scripts/app-build.sh" >&2; exit 1; }
deb="$(ls -t "$CARGO_TARGET_DIR"/release/bundle/deb/*.deb 2>/dev/null | head -1)"
[ -n "$deb" ] || { echo "app-footprint: no .deb; run scripts/app-build.sh" >&2; exit 1; }
ensure_tauri_driver

scratch="$(mktemp -d)"
trap 'cleanup_started; rm -rf "$scratch"' EXIT
export HOME="$scratch/home" XDG_CONFIG_HOME="$scratch/config" XDG_DATA_HOME="$scratch/data" \
  XDG_CACHE_HOME="$scratch/cache" XDG_RUNTIME_DIR="$scratch/run"
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
start_xvfb

# The pid and every descendant of it.
descendants() {
  local pid="$1" child
  echo "$pid"
  for child in $(ps -o pid= --ppid "$pid"); do
    descendants "$child"
  done
}

# --- idle memory: the app on its own (no driver), 5 s after its web process is up.
"$app" >"$scratch/app.log" 2>&1 &
app_pid=$!
started_pids+=("$app_pid")
for _ in $(seq 100); do
  [ "$(descendants "$app_pid" | wc -l)" -gt 1 ] && break
  sleep 0.1
done
sleep 5
rss_kib=0 pss_kib=0 uss_kib=0 procs=()
for pid in $(descendants "$app_pid"); do
  [ -r "/proc/$pid/status" ] || continue
  procs+=("$(cat "/proc/$pid/comm")")
  rss_kib=$((rss_kib + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
  pss_kib=$((pss_kib + $(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
  uss_kib=$((uss_kib + $(awk '/^Private_(Clean|Dirty):/ { n += $2 } END { print n + 0 }' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
done
kill "$app_pid" 2>/dev/null || true
wait "$app_pid" 2>/dev/null || true

# --- time to first paint, through tauri-driver.
port="$(free_port)"
native_port="$(free_port)"
while [ "$native_port" = "$port" ]; do native_port="$(free_port)"; done
tauri-driver --port "$port" --native-port "$native_port" --native-driver /usr/bin/WebKitWebDriver \
  >"$scratch/driver.log" 2>&1 &
started_pids+=("$!")
wait_for_port "$port"
paint_json="$(PINBRIDGE_APP="$app" WEBDRIVER="http://127.0.0.1:$port" node src-tauri/e2e/first-paint.mjs)"
paint_ms="$(node -e 'console.log(JSON.parse(process.argv[1]).medianMs)' "$paint_json")"
paint_runs="$(node -e 'console.log(JSON.parse(process.argv[1]).runs.join(", "))' "$paint_json")"
paint_metric="$(node -e 'console.log(JSON.parse(process.argv[1]).metric)' "$paint_json")"

deb_bytes="$(stat -c %s "$deb")"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pass() { if awk -v v="$1" -v g="$2" 'BEGIN { exit !(v <= g) }'; then echo "yes"; else echo "**no**"; fi; }
rss_mib="$(mib "$rss_kib")"
pss_mib="$(mib "$pss_kib")"
uss_mib="$(mib "$uss_kib")"
deb_mib="$(awk -v b="$deb_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"

cat <<TABLE
| measure | value | goal | met |
| --- | --- | --- | --- |
| idle resident memory, all processes (RSS sum, ${#procs[@]} processes: $(printf '%s ' "${procs[@]}" | sed 's/ $//')) | ${rss_mib} MiB | ≤ 120 MB | $(pass "$rss_mib" 114.4) |
| idle proportional memory (PSS sum: shared pages split between the processes) | ${pss_mib} MiB | — | — |
| idle private memory (USS sum: pages no other process maps) | ${uss_mib} MiB | — | — |
| time to first paint under Xvfb (median; runs: ${paint_runs} ms; ${paint_metric}) | ${paint_ms} ms | ≤ 1 s | $(pass "$paint_ms" 1000) |
| .deb size ($(basename "$deb")) | ${deb_mib} MiB (${deb_bytes} bytes) | ≤ 15 MB | $(pass "$deb_mib" 14.3) |
TABLE
