#!/usr/bin/env bash
# Every test PinBridge has: formatting, lints, the no_std build, unit, property, vector and
# end-to-end tests. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The desktop app's sandbox flavour (the embedded default, QA) is a feature: lint it too.
cargo clippy -p pinbridge-app --all-targets --locked --features sandbox -- -D warnings

step "firmware-protocol builds without std (no_std + alloc)"
cargo build -p firmware-protocol --no-default-features --locked

step "golden vectors re-derived by independent Python (standard library only)"
python3 firmware-protocol/tests/vectors/check_link.py
python3 firmware-protocol/tests/vectors/check_message_auth.py

step "PostgreSQL for the store tests (a throwaway local cluster)"
eval "$(bash scripts/postgres.sh)"

step "tests (store tests run on SQLite files and on PostgreSQL)"
cargo test --workspace --locked
# The workspace run tests the app's production flavour (tests/production.rs); its flows on the
# embedded sandbox bank (tests/flows.rs) and the shell tests again run in the sandbox flavour.
cargo test -p pinbridge-app --locked --features sandbox

step "pairing keys in a real OS key store (GNOME Keyring's Secret Service in a private D-Bus session)"
bash scripts/keystore-test.sh

step "the production app binary links no sandbox crate (debug build: every symbol kept)"
cargo build -p pinbridge-app --locked
bash scripts/check-production-app.sh "$CARGO_TARGET_DIR/debug/pinbridge-app"

step "ui: typecheck, Vitest, build, browser end-to-end in Chromium (mocked IPC)"
bash scripts/ui-test.sh

step "real stacks: the flows through the Linux kernel's USB stack and BlueZ in a QEMU VM (bounded; last line N passed, M failed)"
bash scripts/real-stack-test.sh

step "desktop app: the release build under Xvfb, pairing, login and a payment on the embedded mock device"
bash scripts/app-e2e.sh

step "the bank's soak, 30 s per backend: 1,000 sessions, SQLite FULL at 3,000 payments/s, PostgreSQL at 1,000/s; no error, 97% of the rate, RSS every 10 s (the 10-minute one: SOAK_SECONDS=600)"
SOAK_SECONDS=30 BACKENDS="full postgres" bash bank-sandbox/bench/load.sh

step "fuzz smoke run (10 s per target; the long runs: bash scripts/fuzz.sh 600)"
bash scripts/fuzz.sh 10
