//! Recommendations, simplest real form: the most popular products the customer has not
//! bought yet. Later models (ALS, item-to-item) fall back to this for cold-start customers.

use rayon::prelude::*;

/// One recommended item.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Dense item index.
    pub item: u32,
    /// Score in (0, 1]: the item's buyers relative to the most bought item.
    pub score: f32,
}

/// Items ranked by distinct buyers; ties by smaller index for determinism.
/// `purchases` are (customer, item) pairs; duplicates count once.
pub fn popularity(purchases: &[(u32, u32)], items: usize) -> Vec<Scored> {
    let mut pairs = purchases.to_vec();
    pairs.par_sort_unstable();
    pairs.dedup();
    let mut buyers = vec![0u32; items];
    for &(_, item) in &pairs {
        buyers[item as usize] += 1;
    }
    let top = buyers.iter().copied().max().unwrap_or(0).max(1) as f32;
    let mut ranked: Vec<Scored> = (0..items as u32)
        .filter(|&i| buyers[i as usize] > 0)
        .map(|i| Scored {
            item: i,
            score: buyers[i as usize] as f32 / top,
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    ranked
}

/// The top `k` of `ranked` for every customer, skipping items the customer already bought and
/// items not `eligible` (inactive, out of stock).
pub fn top_k_unseen(
    ranked: &[Scored],
    purchases: &[(u32, u32)],
    customers: usize,
    eligible: &[bool],
    k: usize,
) -> Vec<Vec<Scored>> {
    let mut bought: Vec<Vec<u32>> = vec![Vec::new(); customers];
    for &(c, i) in purchases {
        bought[c as usize].push(i);
    }
    bought
        .into_par_iter()
        .map(|mut seen| {
            seen.sort_unstable();
            ranked
                .iter()
                .filter(|s| eligible[s.item as usize] && seen.binary_search(&s.item).is_err())
                .take(k)
                .cloned()
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_distinct_buyers_and_skips_seen_and_ineligible() {
        // Item 2 has three buyers, item 0 two, item 1 one (bought twice by the same person).
        let purchases = [(0, 2), (1, 2), (2, 2), (0, 0), (1, 0), (3, 1), (3, 1)];
        let ranked = popularity(&purchases, 4);
        let items: Vec<u32> = ranked.iter().map(|s| s.item).collect();
        assert_eq!(items, vec![2, 0, 1]);
        assert_eq!(ranked[0].score, 1.0);
        let recs = top_k_unseen(&ranked, &purchases, 5, &[true, false, true, true], 2);
        let items = |c: usize| recs[c].iter().map(|s| s.item).collect::<Vec<_>>();
        assert_eq!(items(0), Vec::<u32>::new()); // bought 2 and 0; 1 is ineligible
        assert_eq!(items(3), vec![2, 0]);
        assert_eq!(items(4), vec![2, 0]); // no purchases: plain popularity
    }
}
