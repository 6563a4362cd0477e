//! Identity resolution, simplest form: records that share any deterministic key (a
//! normalized email, an E.164 phone, ...) are one person. Keys are opaque to the engine (the
//! store hands it keyed hashes), so the engine never sees personal data.

use std::collections::HashMap;
use std::hash::Hash;

/// The result of clustering: which cluster each record fell into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clustering {
    /// `cluster_of[i]` is the cluster of record `i`; clusters are numbered `0..clusters`
    /// in order of their first record.
    pub cluster_of: Vec<u32>,
    /// How many clusters there are.
    pub clusters: usize,
}

/// Clusters records that share at least one key, transitively (union-find).
pub fn cluster_by_keys<K: Hash + Eq>(keys: &[Vec<K>]) -> Clustering {
    let mut parent: Vec<u32> = (0..keys.len() as u32).collect();
    let mut owner: HashMap<&K, u32> = HashMap::new();
    for (i, record_keys) in keys.iter().enumerate() {
        for k in record_keys {
            match owner.get(k) {
                Some(&j) => union(&mut parent, i as u32, j),
                None => {
                    owner.insert(k, i as u32);
                }
            }
        }
    }
    let mut number: HashMap<u32, u32> = HashMap::new();
    let cluster_of = (0..keys.len() as u32)
        .map(|i| {
            let root = find(&mut parent, i);
            let next = number.len() as u32;
            *number.entry(root).or_insert(next)
        })
        .collect();
    Clustering {
        cluster_of,
        clusters: number.len(),
    }
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        parent[i as usize] = parent[parent[i as usize] as usize];
        i = parent[i as usize];
    }
    i
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // The smaller index becomes the root so results do not depend on hash order.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi as usize] = lo;
    }
}

/// Gives every cluster a profile id, keeping the ids downstream systems already hold.
///
/// `prior[i]` is the profile record `i` belonged to before this run. A cluster keeps the
/// smallest prior id among its records unless a larger cluster already claimed it (a split);
/// clusters without one get fresh ids counting up from `next_id`. Returns the id per cluster.
pub fn assign_ids(clustering: &Clustering, prior: &[Option<i64>], mut next_id: i64) -> Vec<i64> {
    let mut sizes = vec![0usize; clustering.clusters];
    let mut candidate: Vec<Option<i64>> = vec![None; clustering.clusters];
    for (i, &c) in clustering.cluster_of.iter().enumerate() {
        sizes[c as usize] += 1;
        if let Some(p) = prior[i] {
            let slot = &mut candidate[c as usize];
            *slot = Some(slot.map_or(p, |q| q.min(p)));
        }
    }
    let mut order: Vec<usize> = (0..clustering.clusters).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), c));
    let mut claimed = std::collections::HashSet::new();
    let mut ids = vec![0; clustering.clusters];
    for c in order {
        ids[c] = match candidate[c] {
            Some(p) if claimed.insert(p) => p,
            _ => {
                next_id += 1;
                next_id - 1
            }
        };
    }
    ids
}

/// Survivorship: for each cluster and each field, the record whose value becomes the golden
/// value. The rule is "most recent record that has the field"; `has[i]` is a bit set of the
/// fields record `i` has, `recency[i]` orders records (larger is newer, ties go to the later
/// index). Returns, per cluster, the winning record index per field (`None`: no record has it).
pub fn survivors(
    clustering: &Clustering,
    has: &[u32],
    recency: &[i64],
    fields: usize,
) -> Vec<Vec<Option<usize>>> {
    let mut best: Vec<Vec<Option<usize>>> = vec![vec![None; fields]; clustering.clusters];
    for (i, &c) in clustering.cluster_of.iter().enumerate() {
        for (f, slot) in best[c as usize].iter_mut().enumerate() {
            if has[i] & (1 << f) == 0 {
                continue;
            }
            if slot.is_none_or(|j| (recency[i], i) >= (recency[j], j)) {
                *slot = Some(i);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    #[test]
    fn clusters_share_keys_transitively() {
        let f = |keys: &Vec<Vec<&str>>| cluster_by_keys(keys).cluster_of;
        check(f, vec![], vec![]);
        check(f, vec![vec!["a"], vec!["b"]], vec![0, 1]);
        check(f, vec![vec!["a"], vec!["a", "b"], vec!["b"]], vec![0, 0, 0]);
        check(
            f,
            vec![vec!["a"], vec!["c"], vec!["b", "a"], vec![]],
            vec![0, 1, 0, 2],
        );
        // A chain only joins at the end: 0-2 via x, 1-3 via y, 2-3 via z.
        check(
            f,
            vec![vec!["x"], vec!["y"], vec!["x", "z"], vec!["y", "z"]],
            vec![0, 0, 0, 0],
        );
    }

    #[test]
    fn ids_are_stable_and_splits_get_new_ids() {
        let f = |(clusters, prior): &(Vec<u32>, Vec<Option<i64>>)| {
            let n = clusters.iter().max().map_or(0, |m| *m as usize + 1);
            let c = Clustering {
                cluster_of: clusters.clone(),
                clusters: n,
            };
            assign_ids(&c, prior, 100)
        };
        // Fresh records get fresh ids.
        check(f, (vec![0, 1], vec![None, None]), vec![100, 101]);
        // A merge keeps the smaller existing id.
        check(f, (vec![0, 0], vec![Some(7), Some(3)]), vec![3]);
        // A split: the larger part keeps the id, the other gets a new one.
        check(
            f,
            (vec![0, 1, 1], vec![Some(5), Some(5), Some(5)]),
            vec![100, 5],
        );
    }

    #[test]
    fn survivorship_takes_most_recent_value_per_field() {
        let c = Clustering {
            cluster_of: vec![0, 0, 1],
            clusters: 2,
        };
        // Field 0 in both records of cluster 0, field 1 only in the older one.
        let got = survivors(&c, &[0b11, 0b01, 0b00], &[1, 2, 0], 2);
        assert_eq!(got, vec![vec![Some(1), Some(0)], vec![None, None]]);
    }
}
