#!/usr/bin/env python3
"""Leave-one-out split of an implicit-feedback file, for the recommendation benchmark.

Reads a CSV with at least the columns `user,item` (and optionally `weight`; any other column,
such as `timestamp`, is ignored). Repeated (user, item) rows are merged into one interaction
whose weight is the sum of theirs (a missing weight counts as 1), because both Patron and
`implicit` see one matrix cell per pair. Then, for every user with at least two distinct items,
ONE of them, drawn uniformly with a seeded RNG, is held out. Users with a single item stay in
train whole and are not evaluated (a user with nothing left in train could not be scored).

Writes OUT/train.csv (`user,item,weight`) and OUT/holdout.csv (`user,item`).

Only the standard library is used on purpose: fetch_movielens.sh runs this with whatever
Python the project's test command hands it (PATRON_TEST_PYTHON, a bare venv without numpy or
pandas). The draw is a function of the set of interactions and the seed only, not of the row
order in the file: users are visited in sorted order and each user's items are sorted before
the draw. (gen.py does the same kind of split vectorized with numpy on its 2M rows; the two
use different random streams, so do not expect identical picks for identical input.)

usage: split.py --input FILE --out DIR [--seed 1]
"""
import argparse
import csv
import os
import random
import sys


def read_interactions(path):
    """Returns {user: {item: weight}} with repeated pairs summed, in first-seen order."""
    by_user = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        for col in ("user", "item"):
            if col not in fields:
                sys.exit(f"split.py: {path} has no '{col}' column (columns: {', '.join(fields)})")
        has_weight = "weight" in fields
        for row in reader:
            w = float(row["weight"]) if has_weight and row["weight"] != "" else 1.0
            items = by_user.setdefault(row["user"], {})
            items[row["item"]] = items.get(row["item"], 0.0) + w
    return by_user


def leave_one_out(by_user, seed):
    """Returns {user: held-out item} for every user with >= 2 distinct items."""
    rng = random.Random(seed)
    held = {}
    for user in sorted(by_user):
        items = by_user[user]
        if len(items) >= 2:
            held[user] = sorted(items)[rng.randrange(len(items))]
    return held


def fmt_weight(w):
    # Integral weights (the usual case: counts) are written as integers, so the files stay small
    # and read the same in every tool.
    return str(int(w)) if w == int(w) else repr(w)


def write_split(by_user, held, out_dir):
    """Writes train.csv and holdout.csv, each through a temporary name and a rename, so an
    interrupted run never leaves a half-written file that a later run would take as done."""
    os.makedirs(out_dir, exist_ok=True)
    train_path = os.path.join(out_dir, "train.csv")
    holdout_path = os.path.join(out_dir, "holdout.csv")
    n_train = 0
    with open(train_path + ".tmp", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["user", "item", "weight"])
        for user, items in by_user.items():
            out = held.get(user)
            for item, weight in items.items():
                if item != out:
                    w.writerow([user, item, fmt_weight(weight)])
                    n_train += 1
    with open(holdout_path + ".tmp", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["user", "item"])
        for user in sorted(held):
            w.writerow([user, held[user]])
    os.replace(train_path + ".tmp", train_path)
    os.replace(holdout_path + ".tmp", holdout_path)
    return n_train


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="CSV with user,item[,weight] columns")
    ap.add_argument("--out", required=True, help="folder for train.csv and holdout.csv")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    by_user = read_interactions(args.input)
    held = leave_one_out(by_user, args.seed)
    n_train = write_split(by_user, held, args.out)
    print(f"split.py: {len(by_user)} users, {n_train + len(held)} distinct interactions -> "
          f"{n_train} train, {len(held)} held out (seed {args.seed}) in {args.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
