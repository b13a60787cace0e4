#!/usr/bin/env bash
# Pairing keys in a real OS key store: GNOME Keyring's Secret Service in a private D-Bus
# session (dbus-run-session), its login keyring created and unlocked non-interactively in a
# throwaway data directory, so neither the developer's own keyring nor a desktop is touched.
# Runs companion/tests/keystore_secret_service.rs (ignored by a plain `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

for tool in dbus-run-session gnome-keyring-daemon; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "keystore-test: $tool is missing; run scripts/setup.sh" >&2
    exit 1
  fi
done

# Build outside the session: the daemon need not outlive a compile.
cargo test -q -p companion --test keystore_secret_service --no-run

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -m 700 "$scratch/data" "$scratch/cache" "$scratch/runtime"

# Only the key store's own directories move; cargo and rustup keep HOME.
XDG_DATA_HOME="$scratch/data" XDG_CACHE_HOME="$scratch/cache" XDG_RUNTIME_DIR="$scratch/runtime" \
  dbus-run-session -- env -u PINBRIDGE_KEYSTORE_PASSPHRASE bash -c '
    set -euo pipefail
    # --unlock reads the login keyring password from stdin, creating the keyring if needed.
    printf %s "keystore-test" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    cargo test -q -p companion --test keystore_secret_service -- --ignored
  '
