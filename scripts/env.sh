# Sourced by the scripts: one build cache outside the checkout, so fresh clones (CI) build
# incrementally. Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinbridge/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Incremental compilation buys nothing for a fresh clone (its crates are new to the cache)
# and grows the cache by gigabytes per run.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
