#!/usr/bin/env bash
# CLV model fitting: `patron eval clv` against the `lifetimes` library on the same
# transactions (default: the full CDNOW master file, 23,570 customers, calibration to
# 1997-09-30, weeks). Compares the BG/NBD + Gamma-Gamma fit times each side reports for itself
# (Patron's `seconds` field, the script's timers around `fit`) and prints both sides'
# parameters. See bench/README.md.
#
#   bench/clv/run.sh [ORDERS.csv CAL_END]
#
# Environment: PATRON_BIN (default target/release/patron; never built here), PYTHON.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
PATRON_BIN="${PATRON_BIN:-$ROOT/target/release/patron}"
VENV="$ROOT/bench/.venv"
CAL_END="${2:-1997-09-30}"

if [[ ! -x "$PATRON_BIN" ]]; then
    echo "error: no Patron binary at $PATRON_BIN (build it with 'cargo build --release -p patron')" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c 'import lifetimes, pandas' 2>/dev/null; then
    echo "Setting up $VENV (lifetimes, pandas)..." >&2
    [[ -x "$VENV/bin/python" ]] || "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet lifetimes pandas
fi
if [[ $# -ge 1 ]]; then
    ORDERS="$1"
else
    MASTER="$ROOT/data/external/cdnow/CDNOW_master.txt"
    [[ -s "$MASTER" ]] || "$ROOT/scripts/fetch-datasets.sh" cdnow >&2
    ORDERS="$(mktemp --suffix=.csv)"
    trap 'rm -f "$ORDERS"' EXIT
    # customer_id date(YYYYMMDD) cds dollars -> customer_id,date,amount
    tail -n +2 "$MASTER" | awk 'NF == 4 { printf "%s,%s-%s-%s,%s\n", $1, substr($2,1,4), substr($2,5,2), substr($2,7,2), $4 }' |
        sed '1i customer_id,date,amount' > "$ORDERS"
fi

RUNS=5
best() { sort -g | head -n 1; }
patron_times=()
for _ in $(seq "$RUNS"); do
    patron_times+=("$("$PATRON_BIN" eval clv --orders "$ORDERS" --calibration-end "$CAL_END" |
        "$VENV/bin/python" -c 'import json, sys; r = json.load(sys.stdin); s = r["seconds"]; print(s["bgnbd"] + s["gamma_gamma"])')")
done
PATRON_JSON="$("$PATRON_BIN" eval clv --orders "$ORDERS" --calibration-end "$CAL_END")"
lifetimes_times=()
for _ in $(seq "$RUNS"); do
    LIFETIMES_JSON="$("$VENV/bin/python" "$HERE/lifetimes_fit.py" "$ORDERS" "$CAL_END")"
    lifetimes_times+=("$(echo "$LIFETIMES_JSON" | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["seconds_fit"])')")
done
P="$(printf '%s\n' "${patron_times[@]}" | best)"
L="$(printf '%s\n' "${lifetimes_times[@]}" | best)"

echo "BG/NBD + Gamma-Gamma fit, best of $RUNS, $(nproc) cores, $(date -u +%F):"
"$VENV/bin/python" - "$P" "$L" "$PATRON_JSON" "$LIFETIMES_JSON" <<'PY'
import json, sys
p_s, l_s = float(sys.argv[1]), float(sys.argv[2])
p, l = json.loads(sys.argv[3]), json.loads(sys.argv[4])
fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)
print()
print("| tool | customers | fit s | BG/NBD r, alpha, a, b | Gamma-Gamma p, q, gamma |")
print("|---|---:|---:|---|---|")
print(f"| Patron | {p['customers']} | {p_s:.4f} | {fmt(p['bgnbd']['params'])} | {fmt(p['gamma_gamma']['params'])} |")
print(f"| lifetimes | {l['customers']} | {l_s:.4f} | {fmt(l['bgnbd'])} | {fmt(l['gamma_gamma'])} |")
print()
print(f"Speed ratio lifetimes/Patron: {l_s / p_s:.1f}x")
same = all(f"{a:.3g}" == f"{b:.3g}" for a, b in zip(p['bgnbd']['params'] + p['gamma_gamma']['params'], l['bgnbd'] + l['gamma_gamma']))
print(f"Same parameters to 3 significant figures: {'yes' if same else 'NO'}")
PY
