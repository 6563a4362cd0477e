#!/usr/bin/env bash
# Side-by-side identity-resolution benchmark: `patron run unify` against Splink 5 (DuckDB
# backend, bench/unify/splink_dedupe.py) on the same generated customer records, both scored
# against the generator's true persons. See bench/README.md.
#
#   bench/unify/run.sh [PEOPLE]     # default 133000 people, about 200,000 customer records
#   bench/unify/run.sh DIR          # DIR/customers.csv and DIR/truth.csv made elsewhere
#                                   # (bench/unify/pseudopeople.sh makes one)
#
# Environment: PATRON_BIN (default: target/release/patron of this checkout; never built here),
# PYTHON (the interpreter that creates bench/.venv, default python3), SPLINK_THRESHOLD (the
# match probability Splink keeps and clusters pairs at, default 0.95), SPLINK_BLOCKING (`patron`,
# the default: Patron's 16 rules with its block cap; `simple`: the 9 uncapped rules used
# until session 7).
set -euo pipefail

PEOPLE="${1:-133000}"
DATA=""
if [[ "$PEOPLE" =~ ^[1-9][0-9]*$ ]]; then
    :
elif [[ -d "$PEOPLE" ]]; then
    DATA="$(CDPATH='' cd -- "$PEOPLE" && pwd)"
    PEOPLE=""
else
    echo "usage: $0 [PEOPLE | DIR]   (a positive number of people to generate, or a directory" >&2
    echo "       holding customers.csv and truth.csv)" >&2
    exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$HERE")"
ROOT="$(dirname "$BENCH")"
PATRON_BIN="${PATRON_BIN:-$ROOT/target/release/patron}"
VENV="$BENCH/.venv"
DATA="${DATA:-$BENCH/data/customers-$PEOPLE}"  # the directory given, or the generated one
CSV="$DATA/customers.csv"
TRUTH="$DATA/truth.csv"

source "$BENCH/lib.sh"
require_patron "$PATRON_BIN"
require_time

# The Python side's environment, once (shared with bench/import/, whose per-field cleaning
# functions the Splink script reuses).
require_venv "$VENV" "pandas, phonenumbers, cryptography, pypinyin, splink" \
    pandas phonenumbers cryptography pypinyin "splink==5.0.0"

# The input, once per size: generated into a scratch directory and moved into place only when
# complete, so an interrupted run never leaves a truncated file to be reused.
if [[ -z "$PEOPLE" && ( ! -s "$CSV" || ! -s "$TRUTH" ) ]]; then
    echo "error: $DATA has no customers.csv and truth.csv" >&2
    exit 1
fi
if [[ ! -s "$CSV" || ! -s "$TRUTH" ]]; then
    echo "Generating $PEOPLE people into $DATA..." >&2
    mkdir -p "$BENCH/data"
    rm -rf "$DATA.partial"
    "$PATRON_BIN" demo --customers "$PEOPLE" --no-orders --generate-only "$DATA.partial" >&2
    rm -rf "$DATA"
    mv "$DATA.partial" "$DATA"
fi
ROWS=$(( $(wc -l < "$CSV") - 1 ))

WORK="$(mktemp -d "${TMPDIR:-/tmp}/patron-unify-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Both sides read the file from the page cache.
cat "$CSV" "$TRUTH" > /dev/null

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

# One field of a one-line JSON object, with the venv's Python.
field() { "$VENV/bin/python" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

echo "Resolving $ROWS customer records ($CSV)..." >&2

# Patron: import into a fresh data directory (schema, master key, standardization), then the
# unify stage alone (the compared step), then its own evaluation against the truth.
measure patron-import "$PATRON_BIN" --data-dir "$WORK/patron-data" import customers "$CSV"
IMPORT_S=$SECONDS_TAKEN
echo "patron import: $(head -n 1 "$WORK/patron-import.out")" >&2
measure patron-unify "$PATRON_BIN" --data-dir "$WORK/patron-data" run unify
PATRON_S=$SECONDS_TAKEN PATRON_RSS=$RSS_KB PATRON_CPU=$CPU
echo "patron: $(grep -m 1 '^unify:' "$WORK/patron-unify.out" || head -n 1 "$WORK/patron-unify.out")" >&2
"$PATRON_BIN" --data-dir "$WORK/patron-data" eval unify --truth "$TRUTH" > "$WORK/patron-eval.out"
PATRON_JSON="$("$VENV/bin/python" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$WORK/patron-eval.out")"
echo "patron eval: $PATRON_JSON" >&2

# Splink: pre-clean, train, predict, cluster and score, in one process.
measure splink "$VENV/bin/python" "$HERE/splink_dedupe.py" "$CSV" "$TRUTH" --threads "$(nproc)" \
    ${SPLINK_THRESHOLD:+--threshold "$SPLINK_THRESHOLD"} ${SPLINK_BLOCKING:+--blocking "$SPLINK_BLOCKING"}
SPLINK_RSS=$RSS_KB SPLINK_CPU=$CPU
SPLINK_JSON="$(tail -n 1 "$WORK/splink.out")"
# The whole script's time, less the pandas time spent making the capped blocking keys (they
# stand in for a block-size cap Splink lacks, so they count against neither side).
SPLINK_S=$(awk -v a="$SECONDS_TAKEN" -v k="$(field "$SPLINK_JSON" seconds_blocking_keys)" \
    'BEGIN { printf "%.2f", a - k }')
echo "splink: $SPLINK_JSON" >&2

row() { # tool records step_seconds whole_seconds rss_kb cpu precision recall f1
    awk -v tool="$1" -v n="$2" -v s="$3" -v w="$4" -v kb="$5" -v cpu="$6" -v p="$7" -v r="$8" -v f="$9" \
        'BEGIN { printf "| %s | %d | %.2f | %.2f | %s | %.0f | %.4f | %.4f | %.4f |\n",
                 tool, n, s, w, cpu, kb / 1024, p, r, f }'
}

SPLINK_LINK_S=$(field "$SPLINK_JSON" seconds_link)
PATRON_WHOLE=$(awk -v a="$IMPORT_S" -v b="$PATRON_S" 'BEGIN { printf "%.2f", a + b }')

echo
echo "Identity resolution, $ROWS rows (${PEOPLE:+$PEOPLE people, }$DATA), $(nproc) cores, $(date -u +%Y-%m-%d):"
echo
echo "| tool | records | resolve s | whole s | CPU | max RSS MB | precision | recall | F1 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
row "$("$PATRON_BIN" --version | sed 's/^patron/Patron/')" \
    "$(field "$PATRON_JSON" records)" "$PATRON_S" "$PATRON_WHOLE" "$PATRON_RSS" "$PATRON_CPU" \
    "$(field "$PATRON_JSON" precision)" "$(field "$PATRON_JSON" recall)" "$(field "$PATRON_JSON" f1)"
row "Splink $(field "$SPLINK_JSON" splink) (DuckDB $(field "$SPLINK_JSON" duckdb)), p ≥ $(field "$SPLINK_JSON" threshold)" \
    "$(field "$SPLINK_JSON" records)" "$SPLINK_LINK_S" "$SPLINK_S" "$SPLINK_RSS" "$SPLINK_CPU" \
    "$(field "$SPLINK_JSON" precision)" "$(field "$SPLINK_JSON" recall)" "$(field "$SPLINK_JSON" f1)"
echo
awk -v p="$PATRON_S" -v s="$SPLINK_LINK_S" -v pw="$PATRON_WHOLE" -v sw="$SPLINK_S" \
    -v pre="$(field "$SPLINK_JSON" seconds_preclean)" -v tr="$(field "$SPLINK_JSON" seconds_training)" \
    -v pc="$(field "$SPLINK_JSON" seconds_predict_cluster)" \
    -v keys="$(field "$SPLINK_JSON" seconds_blocking_keys)" -v blocking="$(field "$SPLINK_JSON" blocking)" 'BEGIN {
    if (p > 0) printf "Speed ratio Splink/Patron: %.2fx (resolve seconds: Splink training + predict + cluster against the whole `patron run unify` command)\n", s / p
    if (pw > 0) printf "End to end: %.2fx (Patron import + unify commands against the whole Splink script, Python start and scoring included)\n", sw / pw
    printf "(Splink phases: pre-clean %.2f s, training %.2f s, predict + cluster %.2f s; blocking \"%s\", its capped keys %.2f s, counted in neither figure.)\n", pre, tr, pc, blocking, keys
}'
