//! Item-to-item co-purchase: "customers who bought X also bought Y".
//!
//! Two items are similar when the same customers bought both. Raw co-purchase counts favour
//! best-sellers (everyone's basket holds the bestseller), so the count is normalized by both
//! items' popularity — cosine similarity of their buyer sets, `n(X∩Y) / √(n(X)·n(Y))` — and
//! shrunk towards zero when few customers support it (`n / (n + shrink)`), so one shared
//! buyer of two rare items does not make them twins.

use super::matrix::Csr;
use rayon::prelude::*;

/// The most similar items of every item.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    /// Row starts into `items` and `sims`.
    pub ptr: Vec<usize>,
    /// Similar items, most similar first.
    pub items: Vec<u32>,
    /// Their similarity in (0, 1].
    pub sims: Vec<f32>,
}

impl Neighbours {
    /// Item `i`'s neighbours and similarities.
    pub fn of(&self, i: usize) -> (&[u32], &[f32]) {
        let span = self.ptr[i]..self.ptr[i + 1];
        (&self.items[span.clone()], &self.sims[span])
    }
}

/// Settings of the item-to-item model.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarParams {
    /// Neighbours kept per item.
    pub neighbours: usize,
    /// Customers two items must share to be neighbours at all.
    pub min_common: u32,
    /// Shrinkage: similarity is scaled by common / (common + shrink).
    pub shrink: f32,
    /// Items of one customer considered for pairs (the first, in item order): a reseller's
    /// thousands of lines would otherwise make every pair of them "similar" and cost
    /// quadratic time.
    pub max_basket: usize,
}

impl Default for SimilarParams {
    fn default() -> Self {
        SimilarParams {
            neighbours: 50,
            min_common: 2,
            shrink: 10.0,
            max_basket: 500,
        }
    }
}

/// Neighbours of every item of a users × items matrix (weights are ignored: a customer
/// either bought an item or not).
pub fn neighbours(user_items: &Csr, params: &SimilarParams) -> Neighbours {
    let item_users = user_items.transpose();
    let buyers: Vec<f32> = (0..item_users.rows)
        .map(|i| item_users.row(i).0.len() as f32)
        .collect();
    let basket = |u: u32| {
        let cols = user_items.row(u as usize).0;
        &cols[..cols.len().min(params.max_basket)]
    };
    let lists: Vec<Vec<(u32, f32)>> = (0..item_users.rows)
        .into_par_iter()
        .map_init(
            || (vec![0u32; item_users.rows], Vec::new()),
            |(counts, touched), i| {
                for &u in item_users.row(i).0 {
                    for &j in basket(u) {
                        if j as usize != i {
                            if counts[j as usize] == 0 {
                                touched.push(j);
                            }
                            counts[j as usize] += 1;
                        }
                    }
                }
                let mut list: Vec<(u32, f32)> = touched
                    .drain(..)
                    .filter_map(|j| {
                        let common = std::mem::take(&mut counts[j as usize]);
                        (common >= params.min_common).then(|| {
                            let c = common as f32;
                            let cosine = c / (buyers[i] * buyers[j as usize]).sqrt();
                            (j, cosine * c / (c + params.shrink))
                        })
                    })
                    .collect();
                list.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                list.truncate(params.neighbours);
                list
            },
        )
        .collect();
    let mut ptr = Vec::with_capacity(lists.len() + 1);
    ptr.push(0);
    let (mut items, mut sims) = (Vec::new(), Vec::new());
    for list in lists {
        for (j, s) in list {
            items.push(j);
            sims.push(s);
        }
        ptr.push(items.len());
    }
    Neighbours { ptr, items, sims }
}

/// Scores every item for a customer who bought `history`: the sum of its similarities to
/// what they bought. `because[j]` is the bought item that contributed most to `j` and its
/// similarity, for the reason shown ("bought with X").
pub fn score_history(
    nb: &Neighbours,
    history: &[u32],
    scores: &mut [f32],
    because: &mut [(u32, f32)],
) {
    scores.iter_mut().for_each(|s| *s = 0.0);
    because.iter_mut().for_each(|b| *b = (0, 0.0));
    for &i in history {
        let (items, sims) = nb.of(i as usize);
        for (&j, &s) in items.iter().zip(sims) {
            scores[j as usize] += s;
            if s > because[j as usize].1 {
                because[j as usize] = (i, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item 0 is a bestseller bought by everyone; items 1 and 2 are always bought together
    /// by a few. Raw counts would pair 1 with the bestseller; cosine pairs it with 2.
    #[test]
    fn corrects_for_popularity() {
        let mut t = Vec::new();
        for u in 0..100u32 {
            t.push((u, 0, 1.0));
            if u < 6 {
                t.push((u, 1, 1.0));
                t.push((u, 2, 1.0));
            }
            if u % 3 == 0 {
                t.push((u, 3, 1.0));
            }
        }
        let m = Csr::from_triplets(100, 4, &t);
        let nb = neighbours(&m, &SimilarParams::default());
        assert_eq!(nb.of(1).0[0], 2);
        assert_eq!(nb.of(2).0[0], 1);
        let mut scores = vec![0.0; 4];
        let mut because = vec![(0, 0.0); 4];
        score_history(&nb, &[1], &mut scores, &mut because);
        assert!(scores[2] > scores[0] && scores[2] > scores[3], "{scores:?}");
        assert_eq!(because[2].0, 1);
    }
}
