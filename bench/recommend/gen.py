#!/usr/bin/env python3
"""Seeded synthetic implicit-feedback data for the recommendation benchmark, already split.

The shape is meant to look like a store's purchase log, so that ALS has real structure to find
and HR@10 / NDCG@10 mean something (uniform random data would make every model score ~0):

* Item popularity is Zipf-like: the item of popularity rank r (1-based) has weight r^-0.8.
  Ranks are a random permutation of the item ids, so an id says nothing about popularity.
* Latent taste clusters (default 50): every item belongs to one cluster (uniformly at random);
  every user has one home cluster (cluster k chosen with probability ~ (k+1)^-0.5, so some
  tastes are more common than others). 75% of a user's draws come from the home cluster, by
  popularity rank within the cluster (Zipf, exponent 0.8); the other 25% from the whole
  catalogue by global popularity (the "bestseller" noise every real log has).
* User activity is power-law: 1 + floor(scale * Lomax(1.7)) draws, capped at 1,000, so most
  users have a handful of purchases and a few have hundreds; `scale` is solved for so that the
  draws, once repeated (user, item) pairs are merged, give the requested number of distinct
  interactions. A small overshoot is trimmed, only from users who keep at least one pair, so
  the file has exactly --interactions rows and every user appears.
* Weight = purchase count, 1 mostly and sometimes 2-5; repeat purchases are likelier inside
  the home cluster (P(w=1) 0.75 there, 0.90 elsewhere), so the weight carries signal too.

Then a leave-one-out split: every user with >= 2 interactions has ONE of them, uniformly at
random (seeded), moved to holdout.csv. Same rule as split.py, vectorized here because split.py
is standard-library only (it must run on a bare test venv) and would be slow on 2M rows.

Writes OUT/train.csv (`user,item,weight`), OUT/holdout.csv (`user,item`) and OUT/gen.json
(the arguments and a few statistics). Ids are strings `u123` / `i456`. Deterministic for a
given seed and numpy's PCG64. Takes about 15 s at the default size.

usage: gen.py [--users 100000] [--items 20000] [--interactions 2000000] [--clusters 50]
              [--seed 1] [--out bench/data/recommend/synthetic]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HOME_SHARE = 0.75          # fraction of a user's draws from the home cluster
ITEM_ZIPF = 0.8            # global popularity exponent
CLUSTER_ITEM_ZIPF = 0.8    # popularity exponent within a cluster
CLUSTER_ZIPF = 0.5         # how uneven the cluster sizes (in users) are
ACTIVITY_SHAPE = 1.7       # Lomax tail index of user activity
MAX_DRAWS_PER_USER = 1000
# P(weight = 1..5) inside the home cluster and outside it.
WEIGHT_P_HOME = [0.75, 0.14, 0.06, 0.03, 0.02]
WEIGHT_P_OTHER = [0.90, 0.07, 0.02, 0.007, 0.003]


def draws_per_user(activity, scale):
    return np.minimum(1 + np.floor(scale * activity), MAX_DRAWS_PER_USER).astype(np.int64)


def generate(args):
    rng = np.random.default_rng(args.seed)
    U, I, K = args.users, args.items, args.clusters

    # --- items: global popularity and cluster membership -----------------------------------
    rank = rng.permutation(I)                       # rank[i] = popularity rank of item i, 0-based
    global_w = (rank + 1.0) ** -ITEM_ZIPF
    global_cdf = np.cumsum(global_w)
    global_cdf /= global_cdf[-1]
    item_cluster = rng.integers(0, K, size=I)
    # Items sorted by (cluster, popularity rank): each cluster is one contiguous segment.
    by_cluster = np.lexsort((rank, item_cluster))
    seg_start = np.searchsorted(item_cluster[by_cluster], np.arange(K))
    seg_size = np.bincount(item_cluster, minlength=K)
    if (seg_size == 0).any():
        sys.exit("gen.py: a cluster got no items; use fewer clusters or more items")
    # Within-cluster rank (0-based) of each position in by_cluster, and its Zipf weight.
    pos_in_seg = np.arange(I) - np.repeat(seg_start, seg_size)
    w = (pos_in_seg + 1.0) ** -CLUSTER_ITEM_ZIPF
    # One concatenated CDF: cluster k's segment runs from k to k+1, so a draw for cluster k is
    # searchsorted(cdf, k + uniform) -- all clusters sampled in one vectorized call.
    seg_cum = np.cumsum(w)
    seg_base = np.repeat(np.concatenate(([0.0], seg_cum[seg_start[1:] - 1])), seg_size)
    seg_tot = np.repeat(np.add.reduceat(w, seg_start), seg_size)
    cluster_cdf = np.repeat(np.arange(K, dtype=np.float64), seg_size) + (seg_cum - seg_base) / seg_tot

    # --- users: home cluster and activity ---------------------------------------------------
    cluster_p = (np.arange(K) + 1.0) ** -CLUSTER_ZIPF
    cluster_p /= cluster_p.sum()
    user_cluster = rng.choice(K, size=U, p=cluster_p)
    activity = rng.pareto(ACTIVITY_SHAPE, size=U)   # numpy's pareto is Lomax (Pareto II)

    def draw(scale):
        n = draws_per_user(activity, scale)
        users = np.repeat(np.arange(U, dtype=np.int64), n)
        home = rng.random(users.size) < HOME_SHARE
        items = np.empty(users.size, dtype=np.int64)
        uc = user_cluster[users[home]]
        pos = np.searchsorted(cluster_cdf, uc + rng.random(uc.size), side="right")
        # Guard the float edge (k + u rounding up to k+1) by clamping into the segment.
        pos = np.clip(pos, seg_start[uc], seg_start[uc] + seg_size[uc] - 1)
        items[home] = by_cluster[pos]
        n_other = int((~home).sum())
        items[~home] = np.minimum(np.searchsorted(global_cdf, rng.random(n_other), side="right"), I - 1)
        key = users * I + items
        key, first = np.unique(key, return_index=True)  # distinct pairs, sorted by (user, item)
        return key, home[first]

    # Solve for the activity scale: start from the mean, then correct by the ratio of wanted to
    # distinct pairs (merging repeats loses a share that grows with scale) until within 0.5%
    # over the target; a handful of rounds at most.
    target = args.interactions
    scale = target / U / (1.0 / (ACTIVITY_SHAPE - 1.0))
    for _ in range(12):
        key, home = draw(scale)
        if target <= key.size <= target * 1.005:
            break
        scale *= (target * 1.002) / key.size
    else:
        if key.size < target:
            sys.exit(f"gen.py: could only reach {key.size} distinct pairs for {target} "
                     "(too many interactions for these users/items?)")

    users, items = key // I, key % I
    # Trim the overshoot to exactly `target`, only from users with >= 2 pairs.
    excess = key.size - target
    if excess > 0:
        counts = np.bincount(users, minlength=U)
        # Never drop the first pair of a user: it keeps every user present.
        first_of_user = np.r_[True, users[1:] != users[:-1]]
        candidates = np.flatnonzero(~first_of_user & (counts[users] >= 2))
        drop = rng.choice(candidates, size=excess, replace=False)
        keep = np.ones(key.size, dtype=bool)
        keep[drop] = False
        users, items, home = users[keep], items[keep], home[keep]

    weights = np.where(
        home,
        rng.choice(5, size=users.size, p=WEIGHT_P_HOME),
        rng.choice(5, size=users.size, p=WEIGHT_P_OTHER),
    ) + 1

    # --- leave-one-out -------------------------------------------------------------------------
    # users is sorted; a random key per row, and the smallest key of each user is held out.
    counts = np.bincount(users, minlength=U)
    order = np.lexsort((rng.random(users.size), users))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    eligible = counts >= 2
    held_rows = order[starts[eligible]]
    is_held = np.zeros(users.size, dtype=bool)
    is_held[held_rows] = True

    stats = {
        "users": int((counts > 0).sum()),
        "items_with_interactions": int(np.unique(items).size),
        "interactions": int(users.size),
        "train_rows": int(users.size - held_rows.size),
        "holdout_rows": int(held_rows.size),
        "home_cluster_share": round(float(home.mean()), 4),
        "weight_counts": {str(k): int(v) for k, v in zip(*np.unique(weights, return_counts=True))},
        "user_interactions_quantiles": {
            q: int(np.quantile(counts, float(q))) for q in ["0.1", "0.5", "0.9", "0.99", "1.0"]},
        "item_interactions_max": int(np.bincount(items, minlength=I).max()),
        "activity_scale": round(float(scale), 4),
    }
    return users, items, weights, is_held, stats


def write_csv(path, header, columns):
    """Writes rows through a temporary name and a rename, so a killed run leaves no half file
    that run.sh would take for finished data."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(header + "\n")
        chunk = 200_000
        n = len(columns[0])
        for lo in range(0, n, chunk):
            cols = [c[lo:lo + chunk] for c in columns]
            f.write("".join(",".join(row) + "\n" for row in zip(*cols)))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=2_000_000,
                    help="distinct (user, item) pairs, before the holdout split")
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "bench", "data", "recommend", "synthetic"))
    args = ap.parse_args()
    if args.interactions > args.users * args.items:
        sys.exit("gen.py: more interactions than user x item pairs")

    t0 = time.perf_counter()
    users, items, weights, is_held, stats = generate(args)
    t1 = time.perf_counter()

    os.makedirs(args.out, exist_ok=True)
    u_str = np.char.add("u", users.astype(str)).tolist()
    i_str = np.char.add("i", items.astype(str)).tolist()
    w_str = weights.astype(str).tolist()
    train = np.flatnonzero(~is_held).tolist()
    held = np.flatnonzero(is_held).tolist()
    write_csv(os.path.join(args.out, "train.csv"), "user,item,weight",
              [[u_str[k] for k in train], [i_str[k] for k in train], [w_str[k] for k in train]])
    write_csv(os.path.join(args.out, "holdout.csv"), "user,item",
              [[u_str[k] for k in held], [i_str[k] for k in held]])
    t2 = time.perf_counter()

    meta = {"args": {k: v for k, v in vars(args).items() if k != "out"}, "stats": stats,
            "seconds": {"generate": round(t1 - t0, 2), "write": round(t2 - t1, 2)}}
    with open(os.path.join(args.out, "gen.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(json.dumps(meta), file=sys.stderr)


if __name__ == "__main__":
    main()
