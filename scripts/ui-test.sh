#!/usr/bin/env bash
# The UI's tests: typecheck, Vitest unit tests, production build, and the browser end-to-end
# tests (Debian's Chromium driven by playwright-core against the built UI with the MockBackend).
# Installs what a fresh Debian 12 machine lacks (run as root, or with sudo). Idempotent: with
# everything present it skips the installs and `npm ci`.
# Screenshots of every screen in both languages: ui/test-results/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../ui"

step() { printf '\n==> %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- system packages: Chromium for the e2e tests, a CJK font so zh-CN screenshots are legible.
need_apt=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need_apt+=(chromium)
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  need_apt+=(fonts-wqy-microhei)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- Node 20.19+, npm ci when package-lock.json changed.
source ../scripts/ui-deps.sh
require_node ui-test
ui_npm_ci "$PWD"

mkdir -p test-results
step "typecheck"
npx --no-install tsc --noEmit -p tsconfig.json

step "vitest run"
set +e
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json 2>&1 | tee test-results/vitest.log
unit_rc=${PIPESTATUS[0]}
set -e
unit_summary="$(sed 's/\x1b\[[0-9;]*m//g' test-results/vitest.log | grep -E '^\s+Tests\s' | tail -1 | sed 's/^ *//')"
if [ "$unit_rc" -ne 0 ]; then
  echo "ui-test: unit tests failed (${unit_summary:-no summary})" >&2
  exit "$unit_rc"
fi

step "vite build"
npx --no-install vite build

step "browser end-to-end (Chromium, mocked IPC)"
set +e
node --test --test-concurrency=1 --test-reporter=spec e2e/app.e2e.mjs 2>&1 | tee test-results/e2e.log
e2e_rc=${PIPESTATUS[0]}
set -e

# Closing lines: the Vitest summary, then one plain count over both suites (an e2e test that
# could not run, e.g. because Chromium did not start, counts as failed).
counts="$(node -e '
  const fs = require("fs");
  const u = JSON.parse(fs.readFileSync("test-results/vitest.json", "utf8"));
  const log = fs.readFileSync("test-results/e2e.log", "utf8").replace(/\x1b\[[0-9;]*m/g, "");
  const n = (k) => Number((log.match(new RegExp("^\\S+ " + k + " (\\d+)", "m")) || [0, 0])[1]);
  console.log(u.numPassedTests + n("pass"), u.numFailedTests + n("fail") + n("cancelled"));
')"
read -r passed failed <<<"$counts"
echo
echo "vitest: ${unit_summary}"
echo "screenshots: $(ls test-results/screenshots/*.png 2>/dev/null | wc -l) in ui/test-results/screenshots/"
echo "ui: ${passed} passed, ${failed} failed"
if [ "$e2e_rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  exit 1
fi
