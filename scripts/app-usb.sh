#!/usr/bin/env bash
# The production desktop app with a PIN pad on the kernel's real USB stack: in the real-stack
# VM (scripts/real-stack-test.sh: QEMU, dummy_hcd + FunctionFS), pinpad-sim serves as a USB
# gadget and the app, under Xvfb, driven by tauri-driver + WebKitWebDriver
# (src-tauri/e2e/usb-device.mjs), lists it as a USB device, connects and checks it genuine.
# The screenshot is docs/screenshots/app-over-usb.png. Not in the test command: the app's
# release build and WebKit under TCG take minutes. Last line: "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ "${APP_USB_NO_BUILD:-0}" != 1 ]; then bash scripts/app-build.sh >&2; fi
shots="$(mktemp -d)"
trap 'rm -rf "$shots"' EXIT
status=0
PINBRIDGE_RIG_APP="$CARGO_TARGET_DIR/release/pinbridge-app" PINBRIDGE_RIG_STACKS=app \
  PINBRIDGE_RIG_SHOT_DIR="$shots" PINBRIDGE_VM_TIMEOUT="${PINBRIDGE_VM_TIMEOUT:-900}" \
  bash scripts/real-stack-test.sh || status=$?
if [ -s "$shots/app-usb.png" ]; then
  mkdir -p docs/screenshots
  cp "$shots/app-usb.png" docs/screenshots/app-over-usb.png
  echo "app-usb: docs/screenshots/app-over-usb.png" >&2
fi
exit "$status"
