# Sourced by app-e2e.sh and app-footprint.sh: a private Xvfb display, free local ports, and
# cleanup of exactly the processes these scripts started (by pid, at exit).

started_pids=()
cleanup_started() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup_started EXIT

# Starts Xvfb on a display number it picks itself (-displayfd) and exports DISPLAY. The screen
# holds the e2e's large window (1440x900) with room to spare.
start_xvfb() {
  local fifo display
  fifo="$(mktemp -u)"
  mkfifo "$fifo"
  Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$fifo" >/dev/null 2>&1 &
  started_pids+=("$!")
  read -r -t 10 display <"$fifo" || { echo "Xvfb did not start" >&2; rm -f "$fifo"; return 1; }
  rm -f "$fifo"
  export DISPLAY=":$display"
  # No GPU here: WebKit's DMA-BUF renderer cannot start without one.
  export WEBKIT_DISABLE_DMABUF_RENDERER=1
}

# A TCP port nothing listens on now.
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# Waits until something accepts connections on 127.0.0.1:$1.
wait_for_port() {
  local port="$1" tries=0
  until node -e 'require("net").connect(+process.argv[1], "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))' "$port" 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { echo "nothing listens on port $port" >&2; return 1; }
    sleep 0.1
  done
}

# tauri-driver 2 (the WebDriver front for Tauri apps), installed with cargo into a cache
# outside the checkout (~/.cache/pinbridge/tools, like the build cache) only when missing.
ensure_tauri_driver() {
  local tools="${PINBRIDGE_TOOLS:-$HOME/.cache/pinbridge/tools}"
  export PATH="$tools/bin:$PATH"
  if ! command -v tauri-driver >/dev/null 2>&1; then
    echo "==> cargo install tauri-driver 2 (into $tools)" >&2
    cargo install tauri-driver --version "^2" --locked --root "$tools"
  fi
}
