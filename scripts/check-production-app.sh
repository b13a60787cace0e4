#!/usr/bin/env bash
# Checks that a production-flavour desktop app binary carries no sandbox code: no symbol and no
# string of the sandbox crates (bank-sandbox, device-sim; their Rust names bank_sandbox and
# device_sim appear in every mangled symbol and panic location they contribute), and none of
# the QA commands' names (each registered command's name is a string in the binary).
#   bash scripts/check-production-app.sh target/release/pinbridge-app
# Exits non-zero naming what it found. scripts/app-build.sh runs it on the .deb's binary,
# scripts/test.sh on the debug build; run on a sandbox build (--features sandbox) it fails.
set -euo pipefail
bin="${1:?usage: check-production-app.sh <pinbridge-app binary>}"
[ -f "$bin" ] || { echo "check-production-app: no file $bin" >&2; exit 2; }

found=0
# Symbol table (kept in release: the profile strips debuginfo only) and every printable string.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
nm --defined-only "$bin" >"$scratch/text" 2>/dev/null || true
strings -n 6 "$bin" >>"$scratch/text"
for needle in bank_sandbox device_sim bank-sandbox/src device-sim/src qa_key_press qa_mock_start qa_push_confirmation; do
  if grep -F -- "$needle" "$scratch/text" >"$scratch/hits"; then
    echo "check-production-app: $bin contains '$needle' ($(wc -l <"$scratch/hits") lines), e.g.:" >&2
    head -3 "$scratch/hits" | cut -c1-160 >&2
    found=1
  fi
done
if [ "$found" -ne 0 ]; then
  echo "check-production-app: FAILED: sandbox code in a production binary" >&2
  exit 1
fi
echo "check-production-app: $bin: no bank_sandbox / device_sim symbol or string, no QA command" >&2
