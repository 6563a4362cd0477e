//! Offline evaluation of recommenders: splits and ranking metrics.

use rand::{Rng, SeedableRng};

/// (user, item, weight) interactions.
pub type Triplets = Vec<(u32, u32, f32)>;

/// Leave-one-out: for every user with at least two distinct items, one of them (chosen at
/// random, seeded) moves with all its interactions to the held-out set. Returns the training
/// triplets and the held-out (user, item) pairs, sorted by user.
pub fn leave_one_out(triplets: &[(u32, u32, f32)], seed: u64) -> (Triplets, Vec<(u32, u32)>) {
    let mut sorted = triplets.to_vec();
    sorted.sort_unstable_by_key(|&(u, i, _)| (u, i));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut held) = (Vec::with_capacity(sorted.len()), Vec::new());
    for user in sorted.chunk_by(|a, b| a.0 == b.0) {
        let mut items: Vec<u32> = user.iter().map(|t| t.1).collect();
        items.dedup();
        if items.len() < 2 {
            train.extend_from_slice(user);
            continue;
        }
        let out = items[rng.gen_range(0..items.len())];
        held.push((user[0].0, out));
        train.extend(user.iter().filter(|t| t.1 != out));
    }
    (train, held)
}

/// The `k` best items by `scores`, best first, skipping those whose score is not finite
/// (callers set excluded items to −∞). Ties go to the smaller index.
pub fn top_k(scores: &[f32], k: usize) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        if !s.is_finite() || (best.len() == k && s <= best[k - 1].0) {
            continue;
        }
        let at = best.partition_point(|&(b, _)| b >= s);
        best.insert(at, (s, i as u32));
        best.truncate(k);
    }
    best.into_iter().map(|(_, i)| i).collect()
}

/// Hit rate and NDCG at k of leave-one-out recommendations.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HitRate {
    /// Share of users whose held-out item is in their top k.
    pub hr: f64,
    /// Mean of 1 / log2(rank + 2) over users (0 when missed; rank from 0).
    pub ndcg: f64,
    /// Users evaluated.
    pub users: usize,
}

/// Scores each user's list against their one held-out item.
pub fn hit_rate(held: &[(u32, u32)], lists: &[Vec<u32>]) -> HitRate {
    let (mut hits, mut gain) = (0usize, 0f64);
    for (&(_, item), list) in held.iter().zip(lists) {
        if let Some(rank) = list.iter().position(|&i| i == item) {
            hits += 1;
            gain += 1.0 / (rank as f64 + 2.0).log2();
        }
    }
    let n = held.len().max(1) as f64;
    HitRate {
        hr: hits as f64 / n,
        ndcg: gain / n,
        users: held.len(),
    }
}

/// Precision, recall and NDCG at k against several held-out items per user, and the share
/// of the catalogue recommended to anyone.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ranking {
    /// Mean share of each list that was bought.
    pub precision: f64,
    /// Mean share of each user's purchases that the list holds.
    pub recall: f64,
    /// Mean NDCG with binary relevance.
    pub ndcg: f64,
    /// Distinct items recommended over all lists, as a share of `catalogue`.
    pub coverage: f64,
    /// Users evaluated.
    pub users: usize,
}

/// Ranking metrics at `k`: `truth[u]` is user u's held-out items (sorted), `lists[u]` their
/// recommendations; users without held-out items are skipped.
pub fn ranking(truth: &[Vec<u32>], lists: &[Vec<u32>], k: usize, catalogue: usize) -> Ranking {
    let (mut p, mut r, mut g, mut n) = (0f64, 0f64, 0f64, 0usize);
    let mut seen = vec![false; catalogue];
    for (t, list) in truth.iter().zip(lists) {
        for &i in list {
            seen[i as usize] = true;
        }
        if t.is_empty() {
            continue;
        }
        n += 1;
        let list = &list[..list.len().min(k)];
        let mut hits = 0usize;
        let mut dcg = 0f64;
        for (rank, i) in list.iter().enumerate() {
            if t.binary_search(i).is_ok() {
                hits += 1;
                dcg += 1.0 / (rank as f64 + 2.0).log2();
            }
        }
        let ideal: f64 = (0..t.len().min(k))
            .map(|rank| 1.0 / (rank as f64 + 2.0).log2())
            .sum();
        p += hits as f64 / k.max(1) as f64;
        r += hits as f64 / t.len() as f64;
        g += dcg / ideal;
    }
    let users = n;
    let n = n.max(1) as f64;
    Ranking {
        precision: p / n,
        recall: r / n,
        ndcg: g / n,
        coverage: seen.iter().filter(|s| **s).count() as f64 / catalogue.max(1) as f64,
        users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    #[test]
    fn leave_one_out_holds_out_one_item_of_users_with_two() {
        let t = [
            (0, 1, 1.0),
            (0, 2, 1.0),
            (0, 2, 1.0),
            (1, 5, 1.0),
            (2, 3, 1.0),
            (2, 4, 2.0),
        ];
        let (train, held) = leave_one_out(&t, 7);
        assert_eq!(held.iter().map(|h| h.0).collect::<Vec<_>>(), vec![0, 2]);
        for (u, i) in &held {
            assert!(
                !train.iter().any(|t| t.0 == *u && t.1 == *i),
                "all of it moved"
            );
            assert!(train.iter().any(|t| t.0 == *u), "the user keeps the rest");
        }
        assert!(
            train.contains(&(1, 5, 1.0)),
            "a single item stays in training"
        );
        assert_eq!(leave_one_out(&t, 7), (train, held), "seeded");
    }

    #[test]
    fn top_k_picks_the_best_finite_scores() {
        let f = |s: &Vec<f32>| top_k(s, 2);
        check(f, vec![0.1, 0.9, f32::NEG_INFINITY, 0.5], vec![1, 3]);
        check(f, vec![0.5, 0.5, 0.5], vec![0, 1]);
        check(f, vec![f32::NEG_INFINITY, 0.2], vec![1]);
        assert!(top_k(&[0.3, 0.1], 0).is_empty());
    }

    #[test]
    fn metrics() {
        let hr = hit_rate(&[(0, 7), (1, 8)], &[vec![7, 1], vec![1, 2]]);
        assert_eq!((hr.hr, hr.ndcg, hr.users), (0.5, 0.5, 2));
        let r = ranking(&[vec![1, 2], vec![]], &[vec![2, 3], vec![4]], 2, 10);
        assert_eq!((r.precision, r.recall, r.users), (0.5, 0.5, 1));
        assert!((r.ndcg - 1.0 / (1.0 + 1.0 / 3f64.log2())).abs() < 1e-9);
        assert_eq!(r.coverage, 0.3);
    }
}
