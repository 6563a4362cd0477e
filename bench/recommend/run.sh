#!/usr/bin/env bash
# Recommendation benchmark: Patron's implicit-feedback ALS (`patron eval recommend`) against
# the `implicit` library's CPU conjugate-gradient ALS, on the same train/holdout files, the
# same objective (confidence c = 1 + alpha * weight, unscaled L2 regularization), the same
# hyperparameters and the same thread count. Compares training time (each side times only its
# own fit) and HR@10 / NDCG@10 on a leave-one-out holdout.
#
#   bench/recommend/run.sh [synthetic|movielens]        (default: synthetic)
#   bench/recommend/run.sh --dataset movielens
#
#   synthetic  100,000 users x 20,000 items, 2,000,000 interactions with taste clusters, made
#              by gen.py (seed 1) into bench/data/recommend/synthetic/ unless already there
#   movielens  MovieLens 100k ratings as implicit feedback, fetch_movielens.sh into
#              bench/data/recommend/movielens/
#
# Environment (all optional):
#   REG (0.05) ALPHA (10) FACTORS (64) ITERATIONS (15) THREADS (2) SEED (1: the random initial factors' seed, on both sides)
#   RUNS (3)   each side is run RUNS times; the best training time is reported (the quality
#              numbers are deterministic for a given seed, so the last run's are shown)
#   PATRON_BIN (target/release/patron; never built here: cargo build --release -p patron)
#   PYTHON (bench/.venv/bin/python)
#
# Threads default to 2 because that is the whole machine this project benchmarks on; BLAS is
# pinned to one thread on the implicit side (implicit_eval.py) so both sides run exactly
# THREADS worker threads.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
PATRON_BIN="${PATRON_BIN:-$ROOT/target/release/patron}"
export PYTHON="${PYTHON:-$ROOT/bench/.venv/bin/python}"
REG="${REG:-0.05}"
ALPHA="${ALPHA:-10}"
FACTORS="${FACTORS:-64}"
ITERATIONS="${ITERATIONS:-15}"
THREADS="${THREADS:-2}"
SEED="${SEED:-1}"
RUNS="${RUNS:-3}"

dataset=synthetic
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dataset) dataset="${2:?--dataset needs a value}"; shift 2 ;;
        --dataset=*) dataset="${1#--dataset=}"; shift ;;
        synthetic|movielens) dataset="$1"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (expected synthetic or movielens)" >&2; exit 2 ;;
    esac
done

# --- Python side and data ---------------------------------------------------------------------
"$HERE/setup.sh"
DATA="$ROOT/bench/data/recommend/$dataset"
case "$dataset" in
    synthetic)
        # gen.py writes train/holdout under temporary names, so both present means complete.
        if [[ ! -s "$DATA/train.csv" || ! -s "$DATA/holdout.csv" ]]; then
            echo "Generating synthetic data into $DATA ..." >&2
            "$PYTHON" "$HERE/gen.py" --out "$DATA"
        fi ;;
    movielens)
        "$HERE/fetch_movielens.sh" "$DATA" ;;
    *) echo "run.sh: unknown dataset '$dataset'" >&2; exit 2 ;;
esac
TRAIN="$DATA/train.csv"
HOLDOUT="$DATA/holdout.csv"

# --- JSON fields: jq when installed, else the venv's Python -------------------------------------
# fields KIND JSON -> "train_seconds hr_at_10 ndcg_at_10 users_evaluated" on one line, where
# KIND is `implicit` (a flat object) or `patron` (the "als" entry of {"models": [...]}).
fields() {
    local kind=$1 json=$2
    if command -v jq >/dev/null 2>&1; then
        local sel='.'
        [[ $kind == patron ]] && sel='.models[] | select(.model == "als")'
        jq -r "$sel | [.train_seconds, .hr_at_10, .ndcg_at_10, .users_evaluated] | @tsv" <<<"$json"
    else
        "$PYTHON" -c '
import json, sys
r = json.loads(sys.argv[2])
if sys.argv[1] == "patron":
    r = next(m for m in r["models"] if m["model"] == "als")
print("\t".join(str(r[k]) for k in ["train_seconds", "hr_at_10", "ndcg_at_10", "users_evaluated"]))
' "$kind" "$json"
    fi
}
min() { sort -g | head -n 1; }

# --- implicit ---------------------------------------------------------------------------------
implicit_times=()
for _ in $(seq "$RUNS"); do
    IMPLICIT_JSON="$("$PYTHON" "$HERE/implicit_eval.py" --train "$TRAIN" --holdout "$HOLDOUT" \
        --factors "$FACTORS" --iterations "$ITERATIONS" --regularization "$REG" --alpha "$ALPHA" \
        --threads "$THREADS" --seed "$SEED")"
    read -r t _ _ _ < <(fields implicit "$IMPLICIT_JSON")
    implicit_times+=("$t")
done
read -r _ I_HR I_NDCG I_USERS < <(fields implicit "$IMPLICIT_JSON")
I_T="$(printf '%s\n' "${implicit_times[@]}" | min)"
I_VERSION="$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' <<<"$IMPLICIT_JSON")"

# --- Patron -----------------------------------------------------------------------------------
patron_ok=1
if [[ ! -x "$PATRON_BIN" ]]; then
    echo "warning: no Patron binary at $PATRON_BIN (build it with 'cargo build --release -p patron')" >&2
    patron_ok=0
elif ! "$PATRON_BIN" eval recommend --help >/dev/null 2>&1; then
    echo "warning: $PATRON_BIN has no 'eval recommend' subcommand (rebuild it)" >&2
    patron_ok=0
fi
if [[ $patron_ok == 1 ]]; then
    patron_times=()
    for _ in $(seq "$RUNS"); do
        PATRON_JSON="$("$PATRON_BIN" eval recommend --interactions "$TRAIN" --holdout "$HOLDOUT" \
            --models als --factors "$FACTORS" --iterations "$ITERATIONS" \
            --regularization "$REG" --alpha "$ALPHA" --threads "$THREADS" --als-seed "$SEED")"
        read -r t _ _ _ < <(fields patron "$PATRON_JSON")
        patron_times+=("$t")
    done
    read -r _ P_HR P_NDCG P_USERS < <(fields patron "$PATRON_JSON")
    P_T="$(printf '%s\n' "${patron_times[@]}" | min)"
fi

# --- report -----------------------------------------------------------------------------------
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo
echo "Implicit-feedback ALS on $dataset ($(($(wc -l <"$TRAIN") - 1)) train interactions," \
     "$(($(wc -l <"$HOLDOUT") - 1)) held out), $(date -u +%F)"
echo "Machine: $(nproc) cores, ${cpu:-unknown CPU}"
echo "factors=$FACTORS iterations=$ITERATIONS regularization=$REG alpha=$ALPHA threads=$THREADS" \
     "(implicit: CG, 3 steps, seed $SEED); train seconds are the best of $RUNS runs"
echo
printf '| %-16s | %9s | %7s | %8s | %15s |\n' tool "train s" "HR@10" "NDCG@10" "users evaluated"
printf '|%s|%s:|%s:|%s:|%s:|\n' ------------------ ---------- -------- --------- ----------------
if [[ $patron_ok == 1 ]]; then
    printf '| %-16s | %9.3f | %7.4f | %8.4f | %15s |\n' "Patron" "$P_T" "$P_HR" "$P_NDCG" "$P_USERS"
fi
printf '| %-16s | %9.3f | %7.4f | %8.4f | %15s |\n' "implicit $I_VERSION" "$I_T" "$I_HR" "$I_NDCG" "$I_USERS"
echo
if [[ $patron_ok == 1 ]]; then
    awk -v i="$I_T" -v p="$P_T" 'BEGIN {
        r = i / p
        printf "implicit/Patron training time: %.2f (Patron is %.2f\xc3\x97 %s)\n", r, (r >= 1 ? r : 1 / r), (r >= 1 ? "faster" : "slower")
    }'
    if [[ "$P_USERS" != "$I_USERS" ]]; then
        echo "warning: the two sides evaluated different numbers of users ($P_USERS vs $I_USERS)" >&2
    fi
else
    echo "Patron not run (see the warning above)."
    exit 1
fi
