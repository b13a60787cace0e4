#!/usr/bin/env bash
# A throwaway local PostgreSQL for the bank-sandbox store tests.
#
#   eval "$(bash scripts/postgres.sh)"     # install if missing, start, export PINBRIDGE_PG_URL
#   bash scripts/postgres.sh stop          # stop it and delete its data directory
#
# Installs PostgreSQL from Debian packages if missing (apt-get, as root or through sudo),
# then runs a private cluster as a non-root user, listening on 127.0.0.1 only, with its data
# in a temporary directory. Idempotent: a cluster already running on the port is reused.
# PINBRIDGE_PG_SETTINGS adds server settings for a new start (e.g. "-c shared_buffers=1GB").
# stdout carries only the `export` line; progress goes to stderr.
set -euo pipefail

PORT="${PINBRIDGE_PG_PORT:-55432}"
DATA="${PINBRIDGE_PG_DIR:-${TMPDIR:-/tmp}/pinbridge-pg-$PORT}"
DB_USER="pinbridge"
log() { printf 'postgres.sh: %s\n' "$*" >&2; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

pg_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && printf '%s\n' "$dir"
}

# The cluster must not run as root: use the packaged `postgres` user when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-start}" = "stop" ]; then
  BIN="$(pg_bindir || true)"
  if [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
  fi
  $SUDO rm -rf "$DATA"
  log "stopped and removed $DATA"
  exit 0
fi

BIN="$(pg_bindir || true)"
if [ -z "$BIN" ]; then
  log "installing PostgreSQL from Debian packages"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
  BIN="$(pg_bindir)"
fi
# The Debian package starts its own cluster on 5432; ours is separate and on $PORT.

if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  log "creating a cluster in $DATA"
  mkdir -p "$DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres "$DATA"
  chmod 700 "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --no-instructions >&2
fi

if as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  log "cluster already running on 127.0.0.1:$PORT"
else
  log "starting on 127.0.0.1:$PORT"
  # pg_stat_statements: per-statement calls, plans and blocks, for the plan tests and for
  # whoever measures the bank on this cluster (CREATE EXTENSION pg_stat_statements).
  as_owner "$BIN/pg_ctl" -D "$DATA" -w -t 60 -l "$DATA/server.log" \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DATA -c max_connections=300 -c shared_preload_libraries=pg_stat_statements ${PINBRIDGE_PG_SETTINGS:-}" \
    start >&2
fi

echo "export PINBRIDGE_PG_URL=postgres://$DB_USER@127.0.0.1:$PORT/postgres"
