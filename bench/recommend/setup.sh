#!/usr/bin/env bash
# Installs what the recommendation benchmark's Python side needs into bench/.venv:
#   implicit       the reference ALS implementation Patron is compared with. Pinned to 0.7.3,
#                  the newest release with a manylinux x86_64 wheel for CPython 3.11 (the
#                  venv's Python); --only-binary so pip never falls back to compiling the
#                  Cython/C++ extension (slow on this 2-core machine and needs a toolchain).
#                  The PyPI wheel is CPU-only (no CUDA extension), which is what we want.
#   threadpoolctl  to pin BLAS to one thread so implicit's timing counts only its own threads.
#   scipy          the CSR matrix implicit takes as input.
# Idempotent: a package that already imports is not touched.
#
#   bench/recommend/setup.sh
#
# Environment: PYTHON (default bench/.venv/bin/python; the venv is created with python3 if
# it does not exist yet).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
PYTHON="${PYTHON:-$ROOT/bench/.venv/bin/python}"
IMPLICIT_VERSION="${IMPLICIT_VERSION:-0.7.3}"

if [[ ! -x "$PYTHON" ]]; then
    # Only create the default venv; a PYTHON given by the caller must already exist.
    if [[ "$PYTHON" == "$ROOT/bench/.venv/bin/python" ]]; then
        echo "Creating $ROOT/bench/.venv" >&2
        python3 -m venv "$ROOT/bench/.venv"
    else
        echo "error: PYTHON=$PYTHON is not executable" >&2
        exit 1
    fi
fi

missing=()
# module name -> pip requirement
for pair in "scipy:scipy" "threadpoolctl:threadpoolctl" "implicit:implicit==$IMPLICIT_VERSION" \
            "numpy:numpy" "pandas:pandas"; do
    mod="${pair%%:*}"
    req="${pair#*:}"
    if ! "$PYTHON" -c "import $mod" 2>/dev/null; then
        missing+=("$req")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "recommend bench: all Python packages present" >&2
    exit 0
fi
echo "recommend bench: installing ${missing[*]}" >&2
"$PYTHON" -m pip install --quiet --only-binary=:all: "${missing[@]}"
"$PYTHON" -c 'import implicit, scipy, threadpoolctl; print("implicit", implicit.__version__)' >&2
