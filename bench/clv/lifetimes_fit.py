#!/usr/bin/env python3
"""The `lifetimes` side of the CLV benchmark: reads a `customer_id,date,amount` CSV, builds
the per-customer summaries the papers use (purchases on one day are one occasion; times in
weeks from the first purchase; calibration to CAL_END) and fits BG/NBD and Gamma-Gamma.
Prints one JSON line: parameters, log-likelihoods and the seconds of each step.

usage: lifetimes_fit.py ORDERS.csv CAL_END
"""
import json
import sys
import time

start = time.perf_counter()
import pandas as pd  # noqa: E402
from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: E402
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402

imported = time.perf_counter()
path, cal_end = sys.argv[1], sys.argv[2]
df = pd.read_csv(path, dtype={"customer_id": str}, parse_dates=["date"])
summary = summary_data_from_transaction_data(
    df, "customer_id", "date", monetary_value_col="amount",
    observation_period_end=cal_end, freq="D")
# Days to weeks, as in Fader, Hardie & Lee (2005).
summary["recency"] /= 7.0
summary["T"] /= 7.0
summarized = time.perf_counter()
bgf = BetaGeoFitter(penalizer_coef=0.0)
bgf.fit(summary["frequency"], summary["recency"], summary["T"])
bg_done = time.perf_counter()
repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
ggf = GammaGammaFitter(penalizer_coef=0.0)
ggf.fit(repeat["frequency"], repeat["monetary_value"])
gg_done = time.perf_counter()
print(json.dumps({
    "customers": int(len(summary)),
    "repeat_customers": int(len(repeat)),
    "bgnbd": [float(bgf.params_[k]) for k in ["r", "alpha", "a", "b"]],
    "bgnbd_log_likelihood": float(-bgf._negative_log_likelihood_ * len(summary)),
    "gamma_gamma": [float(ggf.params_[k]) for k in ["p", "q", "v"]],
    "seconds_import": round(imported - start, 3),
    "seconds_summary": round(summarized - imported, 3),
    "seconds_fit_bgnbd": round(bg_done - summarized, 3),
    "seconds_fit_gamma_gamma": round(gg_done - bg_done, 3),
    "seconds_fit": round(gg_done - summarized, 3),
}))
