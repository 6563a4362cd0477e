#!/usr/bin/env bash
# Identity resolution on data Patron's own generator did not make: pseudopeople's simulated
# population (IHME; noisy census, survey, benefit, social security and tax records of one
# town's 16,000 people, with the true person of each record), turned into a customers file
# by bench/unify/pseudopeople_customers.py and resolved by Patron and Splink side by side
# with bench/unify/run.sh. See bench/README.md.
#
#   bench/unify/pseudopeople.sh [SEED]     # pseudopeople's noise seed, default 0
#
# Environment: as bench/unify/run.sh; PYTHON (the interpreter that creates
# bench/.venv-pseudopeople, default python3); MIDDLE_INITIALS=1 writes middle initials after
# first names (into bench/data/pseudopeople-SEED-mi).
set -euo pipefail

SEED="${1:-0}"
if ! [[ "$SEED" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SEED]   (pseudopeople's noise seed, a number; default 0)" >&2
    exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$HERE")"
# Its own environment: pseudopeople pins pandas and numpy through its vivarium packages,
# which must not move the versions Splink's environment was measured with.
VENV="$BENCH/.venv-pseudopeople"
DATA="$BENCH/data/pseudopeople-$SEED${MIDDLE_INITIALS:+-mi}"

# run.sh checks these too, but only after the minutes spent making the data.
PATRON_BIN="${PATRON_BIN:-$(dirname "$BENCH")/target/release/patron}"
source "$BENCH/lib.sh"
require_patron "$PATRON_BIN"
require_time

require_venv "$VENV" pseudopeople "pseudopeople==1.3.1"

# Generated into a scratch directory and moved into place only when complete.
if [[ ! -s "$DATA/customers.csv" || ! -s "$DATA/truth.csv" ]]; then
    echo "Generating pseudopeople's sample population (noise seed $SEED) into $DATA..." >&2
    mkdir -p "$BENCH/data"
    rm -rf "$DATA.partial"
    "$VENV/bin/python" "$HERE/pseudopeople_customers.py" "$DATA.partial" --seed "$SEED" \
        ${MIDDLE_INITIALS:+--middle-initials} >&2
    rm -rf "$DATA"
    mv "$DATA.partial" "$DATA"
fi

PATRON_BIN="$PATRON_BIN" exec "$HERE/run.sh" "$DATA"
