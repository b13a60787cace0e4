# Sourced by the scripts: one build cache outside the checkout, so fresh clones (CI) build
# incrementally. Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinbridge/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
