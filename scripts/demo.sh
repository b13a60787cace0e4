#!/usr/bin/env bash
# The README's main-job command: builds PinBridge and runs it on the embedded default.
#
# On a desktop (DISPLAY or WAYLAND_DISPLAY set) it opens the desktop app's sandbox flavour
# (`--features sandbox`; the production build has no embedded bank), which with no bank
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
  source scripts/ui-deps.sh
  if ! ui_build "$PWD/ui" demo >/dev/null; then
    echo "demo: the desktop app's UI did not build; PINBRIDGE_DEMO=cli runs the terminal demo" >&2
    exit 1
  fi
  cargo build --release --locked -p pinbridge-app --features custom-protocol,sandbox -q
  config="$(mktemp -d)"
  trap 'rm -rf "$config"' EXIT
  echo "PinBridge: opening the desktop app (embedded sandbox bank, mock PIN pad PB-SIM-0001; customer C-1001, PIN 123456 on the on-screen keypad)" >&2
  XDG_CONFIG_HOME="$config" "$CARGO_TARGET_DIR/release/pinbridge-app" "$@"
  exit $?
fi

cargo build --release --locked -p companion --bin pinbridge -q
exec "$CARGO_TARGET_DIR/release/pinbridge" demo "$@"
