#!/usr/bin/env bash
# The desktop app's footprint on this machine, as a markdown table (for docs/BENCHMARKS.md):
#   - idle memory of the app and all its WebKit child processes after 5 s idle under Xvfb: the
#     physical memory they occupy together (distinct resident pages, each shared library page
#     counted once: scripts/resident-pages.py, needs root), which is what the goal is about; also
#     the naive RSS sum (every shared library once per process) and the PSS sum, and the
#     largest contributors by mapping;
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
# shellcheck disable=SC2046 # one pid per word
memory_json="$(python3 scripts/resident-pages.py $(descendants "$app_pid"))"
field() { python3 -c 'import json, sys; print(eval(sys.argv[2], {}, json.loads(sys.argv[1])))' "$memory_json" "$1"; }
unique_kib="$(field unique_kib)"
rss_kib="$(field rss_sum_kib)"
pss_kib="$(field pss_sum_kib)"
procs="$(field '", ".join(p["name"] for p in processes)')"
contributors="$(field '"; ".join("%s %.1f MiB" % (n, k / 1024) for n, k in by_mapping[:8])')"
# What a second WebKitGTK app costs next to one already running (the system webview's
# libraries resident once for the session, as on a desktop that uses WebKitGTK elsewhere):
# a second instance with its own config, measured besides the first.
second_home="$scratch/second"
mkdir -p "$second_home/config" "$second_home/data" "$second_home/cache"
XDG_CONFIG_HOME="$second_home/config" XDG_DATA_HOME="$second_home/data" \
  XDG_CACHE_HOME="$second_home/cache" "$app" >"$scratch/app2.log" 2>&1 &
second_pid=$!
started_pids+=("$second_pid")
for _ in $(seq 100); do
  [ "$(descendants "$second_pid" | wc -l)" -gt 1 ] && break
  sleep 0.1
done
sleep 5
# shellcheck disable=SC2046 # one pid per word
marginal_json="$(python3 scripts/resident-pages.py $(descendants "$second_pid") --besides $(descendants "$app_pid"))"
marginal_kib="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["unique_kib"])' "$marginal_json")"
kill "$app_pid" "$second_pid" 2>/dev/null || true
wait "$app_pid" "$second_pid" 2>/dev/null || true

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
unique_mib="$(mib "$unique_kib")"
rss_mib="$(mib "$rss_kib")"
pss_mib="$(mib "$pss_kib")"
marginal_mib="$(mib "$marginal_kib")"
deb_mib="$(awk -v b="$deb_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')"

cat <<TABLE
| measure | value | goal | met |
| --- | --- | --- | --- |
| idle resident memory of all the app's processes (${procs}): distinct physical pages | ${unique_mib} MiB | ≤ 120 MB | $(pass "$unique_mib" 114.4) |
| the same, naive RSS sum (shared libraries counted once per process) | ${rss_mib} MiB | — | — |
| the same, PSS sum (shared pages split with every process mapping them) | ${pss_mib} MiB | — | — |
| the same for a second instance next to the first (pages the first does not already have) | ${marginal_mib} MiB | — | — |
| largest contributors (each page charged once) | ${contributors} | — | — |
| time to first paint under Xvfb (median; runs: ${paint_runs} ms; ${paint_metric}) | ${paint_ms} ms | ≤ 1 s | $(pass "$paint_ms" 1000) |
| .deb size ($(basename "$deb")) | ${deb_mib} MiB (${deb_bytes} bytes) | ≤ 15 MB | $(pass "$deb_mib" 14.3) |
TABLE
