#!/usr/bin/env python3
"""The `implicit` side of the recommendation benchmark: trains implicit's CPU ALS (conjugate
gradient solver, native Cython/OpenMP code) on train.csv and scores HR@10 / NDCG@10 on a
leave-one-out holdout.csv, the same protocol as `patron eval recommend`.

Objective (Hu, Koren & Volinsky 2008): minimize
    sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + lambda (sum_u |x_u|^2 + sum_i |y_i|^2)
with p_ui = 1 for observed pairs, 0 otherwise, and c_ui = 1 + alpha * w_ui for observed pairs,
1 otherwise. implicit takes the matrix it is given as the confidence itself (c_ui = its
`alpha` * stored value; unobserved cells count as c = 1), so this script stores
1 + alpha * weight and passes implicit alpha = 1.0: both tools then solve the identical
problem. lambda is NOT scaled by the number of ratings (no ALS-WR weighting) in implicit.

Timing: only `model.fit(...)` (which includes implicit's own transpose of the matrix and the
random initialization), with time.perf_counter (`train_seconds`, wall) and time.process_time
(`train_cpu_seconds`, all threads). Reading, CSR building and evaluation are not timed.

Evaluation: for each holdout user known to train, the top 10 items by x_u.y_i among all train
items, excluding the user's train items. Hit if the held-out item is among them; NDCG@10 =
1/log2(rank + 2) with rank 0-based, 0 on a miss. A held-out item that never occurs in train
cannot be recommended and counts as a miss; a holdout user absent from train is skipped and
counted in `users_skipped`.

Prints one JSON object on stdout.

usage: implicit_eval.py --train FILE --holdout FILE [--factors 64] [--iterations 15]
                        [--regularization 0.05] [--alpha 10] [--threads 2] [--cg-steps 3]
                        [--seed 1]
"""
import os

# BLAS must be single-threaded BEFORE numpy loads it: implicit parallelizes over users itself
# (OpenMP, num_threads), and a multithreaded BLAS under that oversubscribes the cores and makes
# ALS several times slower (implicit warns about exactly this). Both names, whichever BLAS
# numpy/scipy were built with.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

# Belt and braces: threadpoolctl also caps BLAS pools loaded by other wheels (scipy ships its
# own OpenBLAS, separate from numpy's).
_blas_limit = threadpool_limits(limits=1, user_api="blas")

with warnings.catch_warnings():
    # The PyPI wheel also carries a CUDA extension; without a GPU it warns on import and is
    # never used: the model below is the CPU class, imported directly.
    warnings.simplefilter("ignore")
    import implicit  # noqa: E402
    import implicit.cpu._als  # noqa: E402
    from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="CSV user,item,weight")
    ap.add_argument("--holdout", required=True, help="CSV user,item")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regularization", type=float, default=0.05)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cg-steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=10_000,
                    help="users per recommend() call during evaluation (bounds memory)")
    return ap.parse_args()


def main():
    args = parse_args()

    train = pd.read_csv(args.train, dtype={"user": str, "item": str, "weight": np.float64})
    holdout = pd.read_csv(args.holdout, dtype={"user": str, "item": str})
    user_codes, user_ids = pd.factorize(train["user"])
    item_codes, item_ids = pd.factorize(train["item"])
    n_users, n_items = len(user_ids), len(item_ids)

    # Weights first, summed over any repeated (user, item) rows (tocsr sums duplicates), THEN the
    # confidence transform: c = 1 + alpha * (total weight), one cell per pair.
    W = sp.coo_matrix(
        (train["weight"].to_numpy(np.float64), (user_codes, item_codes)),
        shape=(n_users, n_items)).tocsr()
    W.sum_duplicates()
    C = W.copy()
    C.data = (1.0 + args.alpha * C.data).astype(np.float32)
    C = C.astype(np.float32)
    C.sort_indices()

    model = AlternatingLeastSquares(
        factors=args.factors,
        regularization=args.regularization,
        alpha=1.0,                   # confidence is already in the matrix (see module doc)
        dtype=np.float32,
        use_native=True,             # the compiled solver, not the pure-Python fallback
        use_cg=True,
        iterations=args.iterations,
        calculate_training_loss=False,
        num_threads=args.threads,
        random_state=args.seed,
    )
    # cg_steps is an attribute, not a constructor argument, in implicit 0.7 (default 3).
    model.cg_steps = args.cg_steps
    solver = model.solver
    assert getattr(solver, "func", None) is implicit.cpu._als.least_squares_cg, solver
    assert solver.keywords.get("cg_steps") == args.cg_steps, solver.keywords

    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(C, show_progress=False)
    train_seconds = time.perf_counter() - start
    # CPU seconds of all threads: with THREADS threads on an idle machine about THREADS times
    # train_seconds; much less than that means the machine was busy and the wall time is
    # inflated (a cross-check only; the comparison uses wall time).
    train_cpu_seconds = time.process_time() - cpu_start

    # --- evaluation ------------------------------------------------------------------------
    user_index = pd.Index(user_ids)
    item_index = pd.Index(item_ids)
    hu = user_index.get_indexer(holdout["user"])
    hi = item_index.get_indexer(holdout["item"])       # -1: item never in train, a sure miss
    known = hu >= 0
    users_skipped = int((~known).sum())
    hu, hi = hu[known], hi[known]

    hits = 0
    ndcg = 0.0
    for lo in range(0, hu.size, args.batch):
        uids = hu[lo:lo + args.batch]
        ids, _ = model.recommend(uids, C[uids], N=10, filter_already_liked_items=True)
        match = ids == hi[lo:lo + args.batch, None]   # at most one True per row (ids distinct)
        row_hit = match.any(axis=1)
        rank = match.argmax(axis=1)
        hits += int(row_hit.sum())
        ndcg += float((row_hit / np.log2(rank + 2.0)).sum())
    evaluated = int(hu.size)

    print(json.dumps({
        "library": "implicit",
        "version": implicit.__version__,
        "solver": "cpu als conjugate gradient (implicit.cpu._als.least_squares_cg)",
        "factors": args.factors,
        "iterations": args.iterations,
        "regularization": args.regularization,
        "alpha": args.alpha,
        "cg_steps": args.cg_steps,
        "threads": args.threads,
        "seed": args.seed,
        "users": n_users,
        "items": n_items,
        "train_nnz": int(C.nnz),
        "train_seconds": round(train_seconds, 4),
        "train_cpu_seconds": round(train_cpu_seconds, 4),
        "hr_at_10": hits / evaluated if evaluated else 0.0,
        "ndcg_at_10": ndcg / evaluated if evaluated else 0.0,
        "users_evaluated": evaluated,
        "users_skipped": users_skipped,
        "holdout_items_unseen_in_train": int((hi < 0).sum()),
    }))


if __name__ == "__main__":
    sys.exit(main())
