#!/usr/bin/env bash
# Runs schemathesis against a real server's /openapi.json: generated requests (bounded
# examples per operation, fixed seed) with an admin key over a demo data directory, checking
# that no answer is a server error (5xx) and the server survives.
#
#   scripts/schemathesis.sh [EXAMPLES]      # default 25 examples per operation
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES="${1:-25}"
PYTHON="${PATRON_TEST_PYTHON:-python3}"
VENV_BIN="$(dirname "$PYTHON")"
if ! "$VENV_BIN/schemathesis" --version >/dev/null 2>&1; then
  echo "==> installing schemathesis"
  "$PYTHON" -m pip install --quiet schemathesis
fi
cargo build --quiet --locked -p patron
PATRON="$PWD/target/debug/patron"
DATA="$(mktemp -d)"
PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
"$PATRON" --data-dir "$DATA" demo --customers 300 --no-serve >/dev/null
KEY="$("$PATRON" --data-dir "$DATA" keys create --role admin | tail -n 1)"
"$PATRON" --data-dir "$DATA" serve --insecure-http --listen "127.0.0.1:$PORT" --rate-limit 0 \
  >"$DATA/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
"$VENV_BIN/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
  --header "Authorization: Bearer $KEY" \
  --checks not_a_server_error \
  --max-examples "$EXAMPLES" --seed 1
kill -0 "$SERVER" || { echo "the server died" >&2; cat "$DATA/server.log" >&2; exit 1; }
