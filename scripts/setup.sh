#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test PinBridge. Idempotent: each
# step checks first, so running it again costs a second.
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Build tools for -sys crates; libusb (rusb, the USB transport) and libdbus (btleplug's BlueZ
# backend, the BLE transport) headers that pkg-config finds for them.
for pkg in build-essential pkg-config libusb-1.0-0-dev libdbus-1-dev; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

# The desktop app (src-tauri, Tauri 2 on Linux): WebKitGTK 4.1, whose -dev package brings the
# GTK 3, libsoup 3 and JavaScriptCore headers with it. No tray (appindicator), no AppImage
# (patchelf), no SVG at run time (librsvg): the app uses none of them.
# Its real-window end-to-end test and footprint script: a virtual X server and WebKit's own
# WebDriver (WebKitWebDriver), which tauri-driver fronts.
for pkg in libwebkit2gtk-4.1-dev xvfb webkit2gtk-driver; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done
# The fonts its screenshots are taken in: a Latin font (DejaVu Sans) and a CJK one (WenQuanYi
# Micro Hei), the two the UI's font stack names before the generic sans-serif on Linux. Without
# a CJK font zh-CN renders as boxes; with only a CJK one Latin text takes its full-width
# punctuation. pngquant shrinks the screenshots kept in docs/screenshots/.
for pkg in fonts-dejavu-core fonts-wqy-microhei pngquant; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

# The multi-process end-to-end tests read the bank's journal with the sqlite3 shell.
for pkg in sqlite3; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

# scripts/keystore-test.sh: the pairing keys in a real Secret Service (GNOME Keyring) on a
# private D-Bus session bus.
for pkg in gnome-keyring dbus-daemon; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup (https://rustup.rs) and run again" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done
