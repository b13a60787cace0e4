#!/usr/bin/env bash
# The release step of the integrity allow-lists (CN102610045A, docs/SECURITY.md): prints the
# SHA-256 of each released executable as the JSON body of the bank's
# `POST /v1/admin/allowed-hashes`, one per line. The app and the CLI measure their own
# executable at login (`app`); the reference PIN pad reports its firmware image (`firmware`).
# Usage: scripts/release-hashes.sh [TARGET_DIR/release] > allowed-hashes.jsonl
set -euo pipefail
dir="${1:-${CARGO_TARGET_DIR:-target}/release}"
emit() { # kind file label
  [ -f "$2" ] || return 0
  printf '{"kind": "%s", "hash": "%s", "label": "%s"}\n' "$1" "$(sha256sum "$2" | cut -d' ' -f1)" "$3"
}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
emit app "$dir/pinbridge" "pinbridge $version"
emit app "$dir/pinbridge-app" "PinBridge app $version"
