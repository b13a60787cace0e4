# Sourced by the scripts that build or test the UI (ui-test.sh, app-build.sh, app-e2e.sh,
# demo.sh): one Node check and one `npm ci` rule.

# Vite 7 needs Node.js 20.19+ (Debian 12's own nodejs is 18). $1 names the caller in the error.
require_node() {
  if ! command -v node >/dev/null 2>&1 || ! node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "$1: Node.js 20.19 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
    return 1
  fi
}

# `npm ci` in ui/ ($1), skipped while node_modules matches package-lock.json (a stamp records
# the lock file's hash after each install).
ui_npm_ci() {
  local ui="$1" stamp want
  stamp="$ui/node_modules/.ui-test-lock.sha256"
  want="$(sha256sum "$ui/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> npm ci (ui)" >&2
    (cd "$ui" && npm ci --no-audit --no-fund) || return 1
    echo "$want" >"$stamp"
  fi
}

# Node checked, dependencies installed, ui/dist built (the UI the release app embeds).
# $1: the ui/ directory; $2: the caller's name for errors.
ui_build() {
  require_node "$2" || return 1
  ui_npm_ci "$1" || return 1
  # A fresh ui/dist makes cargo rebuild the release app that embeds it (minutes): build only
  # when a source is newer than the last build.
  local built="$1/dist/index.html"
  if [ -f "$built" ] && [ -z "$(find "$1/src" "$1/public" "$1/index.html" "$1/package.json" "$1/package-lock.json" \
    "$1/vite.config.ts" "$1/tsconfig.json" -newer "$built" -print -quit 2>/dev/null)" ]; then
    return 0
  fi
  echo "==> vite build (ui/dist)" >&2
  (cd "$1" && npm run build --silent)
}
