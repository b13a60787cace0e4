#!/usr/bin/env bash
# Renders the application icons from icons/pinbridge.svg with the Tauri CLI's icon generator
# (`cargo tauri icon`, resvg inside), keeping the desktop set the bundles use: PNGs for Linux and
# the window icon, icon.ico for Windows, icon.icns for macOS. Run after changing the SVG, and
# commit the results (the build reads them; it does not need the CLI).
set -euo pipefail
cd "$(dirname "$0")"
if ! cargo tauri --version 2>/dev/null | grep -q '^tauri-cli 2\.'; then
  cargo install tauri-cli --version "^2" --locked
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo tauri icon pinbridge.svg --output "$out" >/dev/null 2>&1
for f in 32x32.png 64x64.png 128x128.png icon.png icon.ico icon.icns; do
  cp "$out/$f" "$f"
done
ls -l 32x32.png 64x64.png 128x128.png icon.png icon.ico icon.icns
