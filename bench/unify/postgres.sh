#!/usr/bin/env bash
# `patron run unify` on PostgreSQL against the same run on the embedded SQLite store, on the
# same generated customer records (bench/unify/run.sh makes them), both scored against the
# generator's true persons. A retailer grows from SQLite onto PostgreSQL; this shows what
# the move costs and catches a statement that is fast on one and slow on the other.
#
#   bench/unify/postgres.sh [PEOPLE]     # default 133000 people, about 200,000 records
#
# Environment: PATRON_BIN (default target/release/patron of this checkout; never built here),
# PG_ADMIN_URL (a role that may CREATE DATABASE; default the test suite's
# postgres://patron_test:patron_test@127.0.0.1:5432/postgres). A scratch database is created
# and dropped again.
set -euo pipefail

PEOPLE="${1:-133000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
PATRON_BIN="${PATRON_BIN:-$ROOT/target/release/patron}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://patron_test:patron_test@127.0.0.1:5432/postgres}"
DATA="$ROOT/bench/data/customers-$PEOPLE"
if [[ ! -x "$PATRON_BIN" ]]; then
    echo "error: no Patron binary at $PATRON_BIN (build it with 'cargo build --release -p patron', or set PATRON_BIN)" >&2
    exit 1
fi
if [[ ! -s "$DATA/customers.csv" ]]; then
    echo "error: $DATA/customers.csv is missing: run bench/unify/run.sh $PEOPLE once first" >&2
    exit 1
fi
command -v psql >/dev/null || { echo "error: psql is missing (apt-get install postgresql-client)" >&2; exit 1; }

DB="patron_unify_bench_$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/patron-pg-bench.XXXXXX")"
cleanup() {
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $DB"
PG_URL="${PG_ADMIN_URL%/*}/$DB"

# run NAME DATABASE_URL: import, then time `run unify` and score it.
run() {
    local name=$1 url=$2 dir="$WORK/$1"
    local -a db=()
    [[ -n "$url" ]] && db=(--database-url "$url")
    "$PATRON_BIN" --data-dir "$dir" "${db[@]}" import customers "$DATA/customers.csv" > /dev/null
    local started ended eval
    started=$(date +%s.%N)
    "$PATRON_BIN" --data-dir "$dir" "${db[@]}" run unify > /dev/null
    ended=$(date +%s.%N)
    eval=$("$PATRON_BIN" --data-dir "$dir" "${db[@]}" eval unify --truth "$DATA/truth.csv")
    python3 -c '
import json, sys
name, started, ended, report = sys.argv[1:]
r = json.loads(report)
seconds = float(ended) - float(started)
print("| %s | %.2f | %.4f | %.4f | %.4f |" % (name, seconds, r["f1"], r["precision"], r["recall"]))
' "$name" "$started" "$ended" "$eval"
}

echo "patron run unify, $(( $(wc -l < "$DATA/customers.csv") - 1 )) rows ($PEOPLE people), $(nproc) cores, $(date -u +%F):"
echo
echo "| store | run unify s | F1 | precision | recall |"
echo "|---|---:|---:|---:|---:|"
run SQLite ""
run "PostgreSQL $(psql -tA "$PG_ADMIN_URL" -c 'SHOW server_version' | cut -d' ' -f1)" "$PG_URL"
