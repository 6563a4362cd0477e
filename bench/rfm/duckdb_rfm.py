#!/usr/bin/env python3
"""DuckDB's side of the RFM benchmark: loads the order lines into an in-memory table (not
timed), then times the RFM query (distinct orders per customer, NTILE(5) quintiles of
recency, frequency and monetary value) with the given threads. Prints one JSON line.

usage: duckdb_rfm.py LINES.csv THREADS
"""
import json
import sys
import time

import duckdb

path, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads TO {threads}")
con.execute(f"CREATE TABLE lines AS SELECT * FROM read_csv_auto('{path}')")
query = """
WITH c AS (
    SELECT customer_id, MAX(day) AS last_day, COUNT(DISTINCT order_id) AS frequency,
           SUM(amount) AS monetary
    FROM lines GROUP BY customer_id
), as_of AS (SELECT MAX(last_day) + 1 AS d FROM c)
SELECT customer_id, (SELECT d FROM as_of) - last_day AS recency_days, frequency, monetary,
       NTILE(5) OVER (ORDER BY last_day) AS r,
       NTILE(5) OVER (ORDER BY frequency) AS f,
       NTILE(5) OVER (ORDER BY monetary) AS m
FROM c
"""
best = None
for _ in range(3):
    start = time.perf_counter()
    rows = con.execute(f"SELECT COUNT(*), SUM(r), SUM(f), SUM(m) FROM ({query})").fetchone()
    took = time.perf_counter() - start
    best = took if best is None else min(best, took)
lines = con.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
print(json.dumps({"duckdb": duckdb.__version__, "threads": threads, "lines": lines,
                  "buyers": rows[0], "seconds_rfm": round(best, 4)}))
