#!/usr/bin/env bash
# RFM + rule segments: the engine on its in-memory snapshot against DuckDB on an in-memory
# table of the same order lines, both with 2 threads (see bench/README.md).
#
#   bench/rfm/run.sh [CUSTOMERS] [LINES]     # default 1,000,000 customers, 10,000,000 lines
set -euo pipefail

CUSTOMERS="${1:-1000000}"
LINES="${2:-10000000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
VENV="$ROOT/bench/.venv"
DATA="$ROOT/bench/data/rfm-$CUSTOMERS-$LINES.csv"

if ! "$VENV/bin/python" -c 'import duckdb' 2>/dev/null; then
    echo "Setting up $VENV (duckdb)..." >&2
    [[ -x "$VENV/bin/python" ]] || "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet duckdb
fi
echo "Building the engine's benchmark example..." >&2
(cd "$ROOT" && cargo build --quiet --release -p patron-engine --example rfm_bench)
BIN="$ROOT/target/release/examples/rfm_bench"
if [[ ! -s "$DATA" ]]; then
    echo "Generating $LINES order lines for $CUSTOMERS customers into $DATA..." >&2
    mkdir -p "$(dirname "$DATA")"
    "$BIN" generate "$DATA.partial" "$CUSTOMERS" "$LINES"
    mv "$DATA.partial" "$DATA"
fi
# The engine's thread pool gets the same two threads DuckDB gets.
PATRON_JSON="$(RAYON_NUM_THREADS=2 "$BIN" run "$DATA")"
DUCK_JSON="$("$VENV/bin/python" "$HERE/duckdb_rfm.py" "$DATA" 2)"
echo "patron: $PATRON_JSON" >&2
echo "duckdb: $DUCK_JSON" >&2
"$VENV/bin/python" - "$PATRON_JSON" "$DUCK_JSON" <<'PY'
import json, sys
p, d = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"RFM over {p['lines']:,} order lines ({p['orders']:,} orders, {p['buyers']:,} buyers), 2 threads, best of 3:")
print()
print("| tool | what is timed | seconds |")
print("|---|---|---:|")
print(f"| Patron engine | RFM + 5 rule segments from the order snapshot | {p['seconds_rfm_and_segments']:.4f} |")
print(f"| Patron engine | the same, grouping the lines into orders first | {p['seconds_from_lines']:.4f} |")
print(f"| DuckDB {d['duckdb']} | RFM query (distinct orders, NTILE(5)) over the lines table | {d['seconds_rfm']:.4f} |")
print()
print(f"Speed ratio DuckDB/Patron: {d['seconds_rfm'] / p['seconds_rfm_and_segments']:.2f}x from the snapshot, "
      f"{d['seconds_rfm'] / p['seconds_from_lines']:.2f}x from the lines")
assert p['buyers'] == d['buyers'], "both must score the same buyers"
PY
