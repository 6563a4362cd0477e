//! What identity resolution ([`crate::matching`]) hands on: clusterings, the profile ids
//! given to them (stable across runs) and survivorship.

/// The result of clustering: which cluster each record fell into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clustering {
    /// `cluster_of[i]` is the cluster of record `i`; clusters are numbered `0..clusters`
    /// in order of their first record.
    pub cluster_of: Vec<u32>,
    /// How many clusters there are.
    pub clusters: usize,
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
