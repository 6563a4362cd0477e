#!/usr/bin/env bash
# Fuzzes the public parsers with cargo-fuzz (libFuzzer) for a bounded number of runs each:
#   rules       the segment rule language (parse, type-check, evaluate)
#   clean       the clean stage over any values in any customer or order column
#   csv_import  opening an import file (gzip, encoding, format) and reading its rows
#   tracking    the tracking API's Segment-spec payloads
# A crash stops the script with the input in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [RUNS]        # default 200,000 runs per target, fixed seed (repeatable)
#
# The machine's one toolchain is stable; libFuzzer's instrumentation needs unstable rustc
# flags, which RUSTC_BOOTSTRAP=1 allows for this build only. No sanitizer (-s none): the
# crates forbid unsafe code, so what fuzzing looks for here is panics and wrong answers.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-200000}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
cd fuzz
for target in rules clean csv_import tracking; do
  echo "==> fuzzing $target ($RUNS runs)"
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -s none "corpus/$target" -- \
    -runs="$RUNS" -seed=1 -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    if compgen -G "artifacts/$target/*" >/dev/null; then
      echo "fuzzing $target failed; a crashing input is in fuzz/artifacts/$target/" >&2
    else
      echo "fuzzing $target failed before any input crashed it (see the log above)" >&2
    fi
    exit 1
  fi
  grep -E "^Done" "$log"
  rm -f "$log"
done
