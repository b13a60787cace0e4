#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10: the smoke run of the test command).
# `bash scripts/fuzz.sh 600` is the long run whose figures go to docs/BENCHMARKS.md.
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets the machine's one
# stable toolchain accept them, since no other toolchain can be installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
source scripts/env.sh
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
# Sanitizer builds must not share artifacts with the normal build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR%/}-fuzz"
mkdir -p "$CARGO_TARGET_DIR"
cd fuzz
targets=$(cargo fuzz list)
for target in $targets; do
  mkdir -p "corpus/$target"
  if [ -d "seeds/$target" ]; then cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true; fi
  echo "fuzz: $target for ${seconds}s" >&2
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 \
    2> "$CARGO_TARGET_DIR/$target-${seconds}s.log" || { tail -40 "$CARGO_TARGET_DIR/$target-${seconds}s.log" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$CARGO_TARGET_DIR/$target-${seconds}s.log" | sed "s/^/fuzz: $target: /" >&2
done
