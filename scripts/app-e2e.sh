#!/usr/bin/env bash
# The real desktop app end to end: the release build (UI embedded) in a real WebKitGTK window
# under Xvfb, driven over W3C WebDriver by tauri-driver + WebKitWebDriver (Debian's
# webkit2gtk-driver). src-tauri/e2e/app.e2e.mjs runs against the app's embedded default (the
# in-process sandbox bank and mock PIN pad PB-SIM-0001): pairing, login and a payment through
# the screens with the PIN typed on the on-screen keypad, the Settings screen, the ACL, and
# screenshots of every screen in both languages into src-tauri/e2e/screenshots/, and the
# customer screens in en and zh-CN, light and dark, at the minimum and a large window size into
# docs/screenshots/ (<screen>_<lang>_<theme>_<size>.png, shrunk with pngquant: they are committed).
# Then src-tauri/e2e/restart.e2e.mjs (one node run, one summary): pair, log in and pay, quit the
# app, start it again over the same scratch home; the device is back, paired, and pays.
#
# Builds first without the Tauri CLI (the test path: `npm run build` in ui/, then
# `cargo build --release -p pinbridge-app --features custom-protocol,sandbox`: the sandbox
# flavour, the one with the embedded default and the QA keypad); APP_E2E_NO_BUILD=1 uses the existing build. tauri-driver is
# installed with cargo into ~/.cache/pinbridge/tools only when missing. This is part of
# scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
source scripts/env.sh
source scripts/app-xvfb.sh

bash scripts/setup.sh
if [ "${APP_E2E_NO_BUILD:-0}" != 1 ]; then
  source scripts/ui-deps.sh
  ui_build "$root/ui" app-e2e
  echo "==> cargo build --release -p pinbridge-app --features custom-protocol,sandbox" >&2
  cargo build --release --locked -p pinbridge-app --features custom-protocol,sandbox
fi
app="$CARGO_TARGET_DIR/release/pinbridge-app"
[ -x "$app" ] || { echo "app-e2e: $app is missing; run without APP_E2E_NO_BUILD" >&2; exit 1; }
ensure_tauri_driver

results="$root/src-tauri/e2e/results"
shots="$root/src-tauri/e2e/screenshots"
rm -rf "$results" "$shots"
mkdir -p "$results" "$shots"
# A scratch home: the app's settings file starts empty and is thrown away.
scratch="$(mktemp -d)"
trap 'cleanup_started; rm -rf "$scratch"' EXIT
export HOME="$scratch/home" XDG_CONFIG_HOME="$scratch/config" XDG_DATA_HOME="$scratch/data" \
  XDG_CACHE_HOME="$scratch/cache" XDG_RUNTIME_DIR="$scratch/run"
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"

start_xvfb
port="$(free_port)"
native_port="$(free_port)"
while [ "$native_port" = "$port" ]; do native_port="$(free_port)"; done
PINBRIDGE_LOG_STDERR=1 tauri-driver --port "$port" --native-port "$native_port" \
  --native-driver /usr/bin/WebKitWebDriver >"$results/driver.log" 2>&1 &
started_pids+=("$!")
wait_for_port "$port"

echo "==> real app end to end (Xvfb $DISPLAY, tauri-driver :$port)" >&2
set +e
docs_shots="$root/docs/screenshots"
rm -f "$docs_shots"/*_*_*_*.png
PINBRIDGE_APP="$app" SCREENSHOTS="$shots" DOC_SCREENSHOTS="$docs_shots" WEBDRIVER="http://127.0.0.1:$port" \
  node --test --test-concurrency=1 --test-reporter=spec src-tauri/e2e/app.e2e.mjs src-tauri/e2e/restart.e2e.mjs 2>&1 | tee "$results/e2e.log"
rc=${PIPESTATUS[0]}
set -e
echo "screenshots: $(ls "$shots"/*.png 2>/dev/null | wc -l) in src-tauri/e2e/screenshots/"
# 64 colours and no metadata: a UI screenshot stays legible at a fifth of its size. pngquant's
# output depends only on its input, so an unchanged screen gives an unchanged file.
shopt -s nullglob
kept=("$docs_shots"/*_*_*_*.png)
if [ "${#kept[@]}" -gt 0 ]; then
  pngquant --force --ext .png --strip --speed 3 64 "${kept[@]}" || echo "app-e2e: pngquant failed; docs/screenshots are not shrunk" >&2
  echo "docs/screenshots: ${#kept[@]} files, $(du -ch "${kept[@]}" | tail -1 | cut -f1)"
fi
if [ "$rc" -ne 0 ]; then
  echo "app-e2e: failed; the driver's and the app's log: src-tauri/e2e/results/driver.log" >&2
fi
exit "$rc"
