#!/usr/bin/env bash
# Online matching latency: builds (once per size) a data directory with PEOPLE generated
# people imported and unified, serves it, and times POST /api/v1/match for records sampled
# from the same file, one at a time over one HTTPS connection (bench/unify/online_lookup.py).
#
#   bench/unify/online.sh [PEOPLE] [LOOKUPS]     # default 670000 people (~1,000,000 records), 2000
#
# Environment: PATRON_BIN (default target/release/patron of this checkout; never built here);
# PG_ADMIN_URL (set: the store is PostgreSQL instead of the embedded SQLite, in a database
# `patron_online_PEOPLE` created through this role, which must be allowed to CREATE DATABASE,
# and kept for the next run, like the SQLite store; e.g. the test suite's
# postgres://patron_test:patron_test@127.0.0.1:5432/postgres).
set -euo pipefail

PEOPLE="${1:-670000}"
LOOKUPS="${2:-2000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
PATRON_BIN="${PATRON_BIN:-$ROOT/target/release/patron}"
DATA="$ROOT/bench/data/customers-$PEOPLE"
STORE="$ROOT/bench/data/unified-$PEOPLE"
DB=()
if [[ -n "${PG_ADMIN_URL:-}" ]]; then
    command -v psql >/dev/null || { echo "error: psql is missing (apt-get install postgresql-client)" >&2; exit 1; }
    PG_DB="patron_online_$PEOPLE"
    # The same server and options (`?sslmode=…`), another database.
    PG_BASE="${PG_ADMIN_URL%%\?*}"
    PG_QUERY="${PG_ADMIN_URL#"$PG_BASE"}"
    PG_URL="${PG_BASE%/*}/$PG_DB$PG_QUERY"
    # The data directory keeps the store's master key; the database keeps everything else.
    STORE="$STORE-pg"
    DB=(--database-url "$PG_URL")
fi

if [[ ! -x "$PATRON_BIN" ]]; then
    echo "error: no Patron binary at $PATRON_BIN (build it with 'cargo build --release -p patron')" >&2
    exit 1
fi
if [[ ! -s "$DATA/customers.csv" ]]; then
    echo "Generating $PEOPLE people into $DATA..." >&2
    rm -rf "$DATA.partial"
    "$PATRON_BIN" demo --customers "$PEOPLE" --no-orders --generate-only "$DATA.partial" >&2
    rm -rf "$DATA"
    mv "$DATA.partial" "$DATA"
fi
# A store is complete once its directory is in place (SQLite: it holds the database; PostgreSQL:
# it holds the master key, and is moved into place only after the database's unify run).
if [[ -d "$STORE" && -n "${PG_URL:-}" ]] &&
    [[ "$(psql -tA "$PG_ADMIN_URL" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
    echo "The database $PG_DB is gone: building the store again." >&2
    rm -rf "$STORE"
fi
if [[ ! -d "$STORE" ]]; then
    echo "Importing and unifying into $STORE${PG_URL:+ and $PG_URL}..." >&2
    rm -rf "$STORE.partial"
    if [[ -n "${PG_URL:-}" ]]; then
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
    fi
    "$PATRON_BIN" --data-dir "$STORE.partial" "${DB[@]}" import customers "$DATA/customers.csv" > /dev/null
    "$PATRON_BIN" --data-dir "$STORE.partial" "${DB[@]}" run unify >&2
    mv "$STORE.partial" "$STORE"
fi

KEY="$("$PATRON_BIN" --data-dir "$STORE" "${DB[@]}" keys create --role agent --name bench | tail -n 1)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The API's per-key rate limit (100 calls/s by default) would answer most lookups 429 in a
# fraction of a millisecond; this measures matching, so it is lifted.
"$PATRON_BIN" --data-dir "$STORE" "${DB[@]}" serve --listen "127.0.0.1:$PORT" --rate-limit 100000000 \
    > "$STORE/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
    sleep 0.2
done
if [[ -n "${PG_URL:-}" ]]; then
    PROFILES="$(psql -tA "$PG_URL" -c 'SELECT COUNT(*) FROM customers')"
    KIND="PostgreSQL $(psql -tA "$PG_URL" -c 'SHOW server_version' | cut -d' ' -f1)"
else
    PROFILES="$(python3 -c "import sqlite3; print(sqlite3.connect('$STORE/patron.db').execute('SELECT COUNT(*) FROM customers').fetchone()[0])")"
    KIND="SQLite"
fi
echo "Online matching against $PROFILES profiles ($PEOPLE people, $KIND), $(nproc) cores, $(date -u +%F):" >&2
python3 "$HERE/online_lookup.py" "https://127.0.0.1:$PORT" "$KEY" "$DATA/customers.csv" "$LOOKUPS"
