#!/usr/bin/env bash
# Loading the order snapshot RFM and the other analyze stages start from, out of the SQLite
# store: the issue's 1,000,000 customers and 10,000,000 order lines (the same lines as
# bench/rfm/run.sh), imported through `patron import` and unified first (see bench/README.md).
#
#   bench/rfm/load.sh [CUSTOMERS] [LINES]     # default 1,000,000 customers, 10,000,000 lines
set -euo pipefail

CUSTOMERS="${1:-1000000}"
LINES="${2:-10000000}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$(dirname "$HERE")")"
DATA="$ROOT/bench/data/rfm-$CUSTOMERS-$LINES.csv"
STORE="$ROOT/bench/data/store-$CUSTOMERS-$LINES"

echo "Building patron and the snapshot benchmark..." >&2
(cd "$ROOT" && cargo build --quiet --release -p patron -p patron-engine --example rfm_bench \
    && cargo build --quiet --release -p patron-store --example snapshot_bench)
PATRON="$ROOT/target/release/patron"
if [[ ! -s "$DATA" ]]; then
    echo "Generating $LINES order lines for $CUSTOMERS customers into $DATA..." >&2
    mkdir -p "$(dirname "$DATA")"
    "$ROOT/target/release/examples/rfm_bench" generate "$DATA.partial" "$CUSTOMERS" "$LINES"
    mv "$DATA.partial" "$DATA"
fi
if [[ ! -s "$STORE/patron.db" ]]; then
    rm -rf "$STORE" && mkdir -p "$STORE"
    echo "Writing Patron import files..." >&2
    python3 - "$DATA" "$STORE" "$CUSTOMERS" <<'PY'
import csv, datetime, sys
src, out, customers = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(f"{out}/customers.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["source", "source_id", "email"])
    for c in range(customers):
        w.writerow(["web", f"C{c}", f"c{c}@example.com"])
with open(f"{out}/products.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["product_id", "name", "category"])
    for p in range(100):
        w.writerow([f"P{p}", f"Product {p}", f"Category {p % 8}"])
epoch = datetime.date(1970, 1, 1)
with open(src) as f, open(f"{out}/orders.csv", "w", newline="") as g:
    r, w = csv.reader(f), csv.writer(g)
    next(r)
    w.writerow(["source", "order_id", "customer_source_id", "placed_at", "currency",
                "product_id", "quantity", "unit_price"])
    last, line = None, 0
    for order, customer, day, amount in r:
        line = line + 1 if order == last else 0
        last = order
        placed = (epoch + datetime.timedelta(days=int(day))).isoformat()
        a = int(amount)
        w.writerow(["web", order, f"C{customer}", placed, "USD", f"P{line}", 1,
                    f"{a // 100}.{a % 100:02d}"])
PY
    "$PATRON" --data-dir "$STORE" import products "$STORE/products.csv" >&2
    time "$PATRON" --data-dir "$STORE" import customers "$STORE/customers.csv" >&2
    time "$PATRON" --data-dir "$STORE" import orders "$STORE/orders.csv" >&2
    time "$PATRON" --data-dir "$STORE" run unify >&2
fi
"$ROOT/target/release/examples/snapshot_bench" "$STORE"
