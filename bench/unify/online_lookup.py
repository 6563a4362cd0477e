#!/usr/bin/env python3
"""Latency of online matching: POST /api/v1/match for records sampled from a customer CSV,
one at a time over one keep-alive HTTPS connection, as a client sees it (TLS, HTTP, JSON and
the server's work). Prints one JSON line with the statuses seen and, over the answered (200)
lookups only, p50, p90, p99 and max in milliseconds: a rejected record (400: say, an email
that is not one) is answered before any matching, and would flatter the figures.

usage: online_lookup.py BASE_URL API_KEY CUSTOMERS.CSV [N]
"""
import csv
import gc
import http.client
import json
import random
import ssl
import sys
import time
import urllib.parse

FIELDS = ["name", "first_name", "last_name", "email", "phone", "gender", "birth_date",
          "address_line1", "city", "postal_code", "country"]


def main():
    base, key, path = sys.argv[1], sys.argv[2], sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    random.seed(7)
    sample = random.sample(rows, min(n, len(rows)))
    # Only the sample is kept, and it is moved out of the garbage collector's sight: no
    # collection over a million parsed rows may pause a timed lookup (this measures the server).
    del rows
    gc.collect()
    gc.freeze()
    url = urllib.parse.urlparse(base)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    times, statuses, linked = [], {}, 0
    for row in sample:
        body = {k: row[k] for k in FIELDS if row.get(k, "").strip()}
        payload = json.dumps(body)
        start = time.perf_counter()
        conn.request("POST", "/api/v1/match", payload, headers)
        resp = conn.getresponse()
        data = resp.read()
        elapsed = (time.perf_counter() - start) * 1000
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.status == 200:
            times.append(elapsed)
            matches = json.loads(data)["matches"]
            linked += bool(matches and matches[0]["links"])
    if not times:
        sys.exit(f"no lookup was answered: {statuses}")
    times.sort()
    pct = lambda p: round(times[min(len(times) - 1, int(p / 100 * len(times)))], 2)
    print(json.dumps({"lookups": len(sample), "answered": len(times), "statuses": statuses, "found_a_profile": linked,
                      "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
                      "max_ms": round(times[-1], 2)}))


if __name__ == "__main__":
    main()
