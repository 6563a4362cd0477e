#!/usr/bin/env bash
# Latency of `GET /api/v1/customers/{id}/recommendations?k=10` under a steady 1,000
# requests/s over HTTPS on loopback, from the open-loop load generator in
# crates/patron/examples/loadgen.rs (latency counted from each request's scheduled time).
#
#   bench/recommend/latency.sh            CUSTOMERS (100000) RATE (1000) DURATION (30 s)
#
# The data is a `patron demo` of CUSTOMERS people in bench/data/recommend/api-CUSTOMERS
# (made once); requests go to 5,000 random customers in turn, with an agent key and the
# rate limit off.
set -euo pipefail
cd "$(dirname "$0")/../.."
CUSTOMERS=${CUSTOMERS:-100000}
RATE=${RATE:-1000}
DURATION=${DURATION:-30}
PORT=${PORT:-18443}

cargo build --release -q -p patron --bin patron --example loadgen
patron=target/release/patron
dir=bench/data/recommend/api-$CUSTOMERS
if [[ ! -s $dir/patron.db ]]; then
  echo "making a demo of $CUSTOMERS customers in $dir ..." >&2
  $patron --data-dir "$dir" demo --customers "$CUSTOMERS" --no-serve > "$dir.demo.log" 2>&1
fi
key=$($patron --data-dir "$dir" keys create --role agent --name latency-bench | tail -n 1)
paths=$(mktemp)
trap 'rm -f "$paths"; [[ -n ${server:-} ]] && kill "$server" 2>/dev/null || true' EXIT
$patron --data-dir "$dir" export recommendations | tail -n +2 | cut -d, -f1 | uniq |
  shuf -n 5000 --random-source=<(yes) | sed 's|.*|/api/v1/customers/&/recommendations?k=10|' > "$paths"
$patron --data-dir "$dir" serve --listen "127.0.0.1:$PORT" --rate-limit 0 > "$dir.serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -skf "https://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "GET recommendations, $CUSTOMERS-customer demo, $RATE requests/s for $DURATION s:"
target/release/examples/loadgen "https://127.0.0.1:$PORT" "$paths" "$RATE" "$DURATION" "$key"
