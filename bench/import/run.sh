#!/usr/bin/env bash
# Side-by-side customer import benchmark: `patron import customers` against the pandas +
# phonenumbers script next to this file, on the same generated CSV, each into a fresh
# database. See bench/README.md.
#
#   bench/import/run.sh [PEOPLE]     # default 670000 people, about 1,000,000 customer rows
#
# Environment: PATRON_BIN (default: target/release/patron of this checkout; never built here),
# PYTHON (the interpreter that creates bench/.venv, default python3).
set -euo pipefail

PEOPLE="${1:-670000}"
if ! [[ "$PEOPLE" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [PEOPLE]   (a positive number of people to generate)" >&2
    exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$HERE")"
ROOT="$(dirname "$BENCH")"
PATRON_BIN="${PATRON_BIN:-$ROOT/target/release/patron}"
VENV="$BENCH/.venv"
DATA="$BENCH/data/customers-$PEOPLE"
CSV="$DATA/customers.csv"

source "$BENCH/lib.sh"
require_patron "$PATRON_BIN"
require_time

# The Python side's environment, once.
require_venv "$VENV" "pandas, phonenumbers, cryptography" pandas phonenumbers cryptography

# The input, once per size: generated into a scratch directory and moved into place only when
# complete, so an interrupted run never leaves a truncated file to be reused.
if [[ ! -s "$CSV" ]]; then
    echo "Generating $PEOPLE people into $DATA..." >&2
    mkdir -p "$BENCH/data"
    rm -rf "$DATA.partial"
    "$PATRON_BIN" demo --customers "$PEOPLE" --no-orders --generate-only "$DATA.partial" >&2
    rm -rf "$DATA"
    mv "$DATA.partial" "$DATA"
fi
ROWS=$(( $(wc -l < "$CSV") - 1 ))

WORK="$(mktemp -d "${TMPDIR:-/tmp}/patron-import-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Both sides read the file from the page cache.
cat "$CSV" > /dev/null

# Runs a command, recording wall seconds (date arithmetic) and, through /usr/bin/time, max
# RSS in KiB and CPU use; its standard output goes to $WORK/NAME.out.
measure() {
    local name="$1"; shift
    local t0 t1 status=0
    t0=$(date +%s.%N)
    /usr/bin/time -f '%M %P' -o "$WORK/$name.time" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || status=$?
    t1=$(date +%s.%N)
    if (( status != 0 )); then
        echo "error: $name failed (exit $status):" >&2
        cat "$WORK/$name.err" >&2
        exit 1
    fi
    SECONDS_TAKEN=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    read -r RSS_KB CPU < <(tail -n 1 "$WORK/$name.time")
}

echo "Importing $ROWS customer rows ($CSV)..." >&2

# Patron sets up its schema and master key as part of the command, as a first import does.
measure patron "$PATRON_BIN" --data-dir "$WORK/patron-data" import customers "$CSV"
PATRON_S=$SECONDS_TAKEN PATRON_RSS=$RSS_KB PATRON_CPU=$CPU
# Its summary line: "FILE (...): read N, stored N, rejected N, ... (quarantined: email 17, ...)".
PATRON_STORED=$(sed -n '1s/.*, stored \([0-9][0-9]*\),.*/\1/p' "$WORK/patron.out")
PATRON_Q=$(sed -n '1s/.*(quarantined: \([^)]*\)).*/\1/p' "$WORK/patron.out" \
    | awk -F', ' '{ for (i = 1; i <= NF; i++) { n = split($i, w, " "); s += w[n] } } END { print s + 0 }')
echo "patron: $(head -n 1 "$WORK/patron.out")" >&2

measure pandas "$VENV/bin/python" "$HERE/pandas_import.py" "$CSV" "$WORK/pandas.sqlite"
PANDAS_S=$SECONDS_TAKEN PANDAS_RSS=$RSS_KB PANDAS_CPU=$CPU
PANDAS_JSON="$(tail -n 1 "$WORK/pandas.out")"
echo "pandas: $PANDAS_JSON" >&2
read -r PANDAS_STORED PANDAS_Q PANDAS_INNER < <("$VENV/bin/python" -c \
    'import json, sys; r = json.loads(sys.argv[1]); print(r["stored"], r["quarantined"], r["seconds"])' \
    "$PANDAS_JSON")

row() { # tool stored quarantined seconds rss_kb cpu
    awk -v tool="$1" -v rows="$ROWS" -v stored="$2" -v q="$3" -v s="$4" -v kb="$5" -v cpu="$6" \
        'BEGIN { printf "| %s | %d | %d | %d | %.2f | %.0f | %s | %.0f |\n",
                 tool, rows, stored, q, s, (s > 0 ? rows / s : 0), cpu, kb / 1024 }'
}

echo
echo "Customer import, $ROWS rows ($PEOPLE people), $(nproc) cores, $(date -u +%Y-%m-%d):"
echo
echo "| tool | rows | stored | quarantined | seconds | rows/s | CPU | max RSS MB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
row "$("$PATRON_BIN" --version | sed 's/^patron/Patron/')" "$PATRON_STORED" "$PATRON_Q" "$PATRON_S" "$PATRON_RSS" "$PATRON_CPU"
row "pandas + phonenumbers" "$PANDAS_STORED" "$PANDAS_Q" "$PANDAS_S" "$PANDAS_RSS" "$PANDAS_CPU"
echo
awk -v p="$PATRON_S" -v q="$PANDAS_S" -v inner="$PANDAS_INNER" -v rows="$ROWS" 'BEGIN {
    if (p > 0) printf "Speed ratio Patron/pandas: %.2fx (rows/s, wall time of each whole command)\n", q / p
    if (inner > 0) printf "(The pandas script alone, without interpreter start and imports: %.2f s, %.0f rows/s.)\n", inner, rows / inner
}'
