#!/usr/bin/env bash
# Builds the desktop app's Linux bundle, production flavour (no `sandbox` feature: no sandbox
# bank, no mock devices, no QA; the bank comes from /etc/pinbridge/bank.toml): the UI (npm ci + vite build into ui/dist), then the app
# in release with that UI embedded, packed as a .deb by the Tauri CLI. Prints the .deb's path
# and size. Installs what a fresh Debian 12 machine lacks (scripts/setup.sh; the Tauri CLI with
# cargo if it is missing). Incremental: a second run rebuilds only what changed.
#   bash scripts/app-build.sh            # ui + release build + .deb
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
bash scripts/setup.sh
source scripts/env.sh

step() { printf '\n==> %s\n' "$*" >&2; }

# --- the UI (ui/dist).
source scripts/ui-deps.sh
ui_build "$root/ui" app-build

# --- the Tauri CLI (cargo tauri), version 2, in the tools cache beside tauri-driver.
tools="${PINBRIDGE_TOOLS:-$HOME/.cache/pinbridge/tools}"
export PATH="$tools/bin:$PATH"
if ! cargo tauri --version 2>/dev/null | grep -q '^tauri-cli 2\.'; then
  step "cargo install tauri-cli 2 (into $tools)"
  cargo install tauri-cli --version "^2" --locked --root "$tools"
fi

# --- release build + .deb. The CLI turns on tauri/custom-protocol, which embeds ui/dist;
# a plain `cargo build` would load the Vite dev server instead.
step "cargo tauri build --bundles deb"
source "$root/scripts/app-profile.sh"
cd "$root/src-tauri"
cargo tauri build --ci --bundles deb

deb_dir="$CARGO_TARGET_DIR/release/bundle/deb"
deb="$(ls -t "$deb_dir"/*.deb 2>/dev/null | head -1)"
if [ -z "$deb" ]; then
  echo "app-build: no .deb in $deb_dir" >&2
  exit 1
fi
# --- the shipped binary links no sandbox code (scripts/check-production-app.sh).
step "check: no sandbox crate in the production binary"
bash "$root/scripts/check-production-app.sh" "$CARGO_TARGET_DIR/release/pinbridge-app"
size="$(stat -c %s "$deb")"
echo
echo "binary: $CARGO_TARGET_DIR/release/pinbridge-app ($(stat -c %s "$CARGO_TARGET_DIR/release/pinbridge-app") bytes)"
echo "deb: $deb ($size bytes, $(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }'))"
