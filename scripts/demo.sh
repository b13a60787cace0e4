#!/usr/bin/env bash
# The README's main-job command: builds PinBridge and runs it on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo build --release --locked -p companion --bin pinbridge -q
exec "$CARGO_TARGET_DIR/release/pinbridge" demo "$@"
