#!/usr/bin/env bash
# The README's main-job command: builds PinBridge and runs it on the embedded default.
#
# On a desktop (DISPLAY or WAYLAND_DISPLAY set) it opens the desktop app, which with no bank
# configured starts an in-process sandbox bank and the mock PIN pad PB-SIM-0001 (customer
# C-1001, sandbox PIN 123456 typed on the mock device's on-screen keypad): pair, log in and
# pay in the window. The app runs with a scratch settings directory so it is always the
# embedded default, whatever the user configured. PINBRIDGE_DEMO=cli forces the CLI demo.
#
# Without a display it runs `pinbridge demo`: the whole flow in one process, in the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "${PINBRIDGE_DEMO:-app}" != cli ]; then
  if ! command -v node >/dev/null 2>&1 || ! node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "demo: the desktop app's UI needs Node.js 20.19 or newer to build (found: $(node --version 2>/dev/null || echo none)); PINBRIDGE_DEMO=cli runs the terminal demo" >&2
    exit 1
  fi
  (
    cd ui
    stamp=node_modules/.ui-test-lock.sha256
    want="$(sha256sum package-lock.json | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      npm ci --no-audit --no-fund --silent
      echo "$want" >"$stamp"
    fi
    npm run build --silent >/dev/null
  )
  cargo build --release --locked -p pinbridge-app --features custom-protocol -q
  config="$(mktemp -d)"
  trap 'rm -rf "$config"' EXIT
  echo "PinBridge: opening the desktop app (embedded sandbox bank, mock PIN pad PB-SIM-0001; customer C-1001, PIN 123456 on the on-screen keypad)" >&2
  XDG_CONFIG_HOME="$config" "$CARGO_TARGET_DIR/release/pinbridge-app" "$@"
  exit $?
fi

cargo build --release --locked -p companion --bin pinbridge -q
exec "$CARGO_TARGET_DIR/release/pinbridge" demo "$@"
