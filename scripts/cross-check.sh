#!/usr/bin/env bash
# The code that differs per OS, compiled for Windows (x86_64-pc-windows-gnu with MinGW-w64):
# the companion library (key store back end, private file ACLs, transports) and the CLI. Not
# part of scripts/test.sh: it needs the Rust standard library for that target
# (`rustup target add`, from static.rust-lang.org) and MinGW's C compiler for the C the
# dependencies build (ring, libusb). Nothing here runs the result; macOS cannot be checked on
# Linux (its C dependencies need Apple's SDK).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
target=x86_64-pc-windows-gnu
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  apt-get update -q && apt-get install -y -q gcc-mingw-w64-x86-64
fi
cargo check --locked --target "$target" -p companion --lib --bins --no-default-features
echo "cross-check: companion compiles for $target"
