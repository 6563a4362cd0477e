//! Recommendations: implicit-feedback ALS (`als`), item-to-item co-purchase (`similar`),
//! popularity, and the evaluation that compares them (`eval`).

pub mod als;
pub mod eval;
pub mod matrix;
pub mod similar;

/// The models Patron can recommend with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Implicit-feedback ALS.
    Als,
    /// Item-to-item co-purchase.
    ItemToItem,
    /// ALS and item-to-item fused by reciprocal rank.
    Blend,
    /// Most customers bought it.
    Popularity,
}

impl Model {
    /// Every model, in the order reports list them.
    pub const ALL: [Model; 4] = [
        Model::Als,
        Model::ItemToItem,
        Model::Blend,
        Model::Popularity,
    ];

    /// The model's name in commands and reports.
    pub fn name(self) -> &'static str {
        match self {
            Model::Als => "als",
            Model::ItemToItem => "item-to-item",
            Model::Blend => "blend",
            Model::Popularity => "popularity",
        }
    }

    /// Parses a model name.
    pub fn parse(s: &str) -> Option<Model> {
        Model::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// Why an item was recommended, for the reason shown next to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Why {
    /// ALS: the customer's tastes; `like` is the bought item closest to it in taste space.
    Taste {
        /// The closest bought item, if the customer bought any.
        like: Option<u32>,
    },
    /// Item-to-item: often bought with this item the customer bought.
    BoughtWith(u32),
    /// Popular with everyone.
    Popular,
    /// Filled in from the caller's fallback list with this index (popular in a segment,
    /// a country, overall).
    Fallback(usize),
}

/// One recommendation of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// Dense item index.
    pub item: u32,
    /// The model's score (comparable within one customer's list only).
    pub score: f32,
    /// Why.
    pub why: Why,
}

/// Trained models over one users × items matrix.
#[derive(Debug, Clone, Default)]
pub struct Models {
    /// ALS factors, if trained.
    pub als: Option<als::AlsModel>,
    /// Item neighbours, if computed.
    pub similar: Option<similar::Neighbours>,
    /// Distinct buyers per item.
    pub popularity: Vec<f32>,
}

/// Buffers reused between customers.
#[derive(Debug, Default)]
pub struct Scratch {
    scores: Vec<f32>,
    because: Vec<(u32, f32)>,
}

/// Candidates each model contributes to a blend.
const BLEND_DEPTH: usize = 100;

impl Models {
    /// Trains what `models` need on `m`.
    pub fn train(
        m: &matrix::Csr,
        models: &[Model],
        als_params: &als::AlsParams,
        similar_params: &similar::SimilarParams,
    ) -> Models {
        let wants = |x: Model| models.contains(&x) || models.contains(&Model::Blend);
        Models {
            als: wants(Model::Als).then(|| als::train(m, als_params)),
            similar: wants(Model::ItemToItem).then(|| similar::neighbours(m, similar_params)),
            popularity: buyers(m),
        }
    }

    /// The `k` best items for `user` (a row of the training matrix, or past it for a
    /// customer the model never saw) who bought `history`, among items `keep` allows.
    pub fn rank(
        &self,
        model: Model,
        user: usize,
        history: &[u32],
        k: usize,
        keep: &dyn Fn(u32) -> bool,
        s: &mut Scratch,
    ) -> Vec<Pick> {
        let items = self.popularity.len();
        s.scores.resize(items, 0.0);
        s.because.resize(items, (0, 0.0));
        let picks = |s: &mut Scratch, why: &dyn Fn(u32, &Scratch) -> Why| {
            for (i, v) in s.scores.iter_mut().enumerate() {
                if !keep(i as u32) {
                    *v = f32::NEG_INFINITY;
                }
            }
            eval::top_k(&s.scores, k)
                .into_iter()
                .map(|i| Pick {
                    item: i,
                    score: s.scores[i as usize],
                    why: why(i, s),
                })
                .collect::<Vec<_>>()
        };
        match model {
            Model::Als => {
                let Some(als) = self.als.as_ref().filter(|a| user < a.users.len() / a.k) else {
                    return Vec::new();
                };
                als.scores(user, &mut s.scores);
                picks(s, &|i, _| Why::Taste {
                    like: history.iter().copied().max_by(|a, b| {
                        let sim =
                            |h: u32| als::factor_dot(als.item(h as usize), als.item(i as usize));
                        sim(*a).total_cmp(&sim(*b))
                    }),
                })
            }
            Model::ItemToItem => {
                let Some(nb) = &self.similar else {
                    return Vec::new();
                };
                similar::score_history(nb, history, &mut s.scores, &mut s.because);
                for v in s.scores.iter_mut().filter(|v| **v <= 0.0) {
                    *v = f32::NEG_INFINITY;
                }
                picks(s, &|i, s| Why::BoughtWith(s.because[i as usize].0))
            }
            Model::Popularity => {
                s.scores.copy_from_slice(&self.popularity);
                picks(s, &|_, _| Why::Popular)
            }
            Model::Blend => {
                // Reciprocal rank fusion: robust to the two models' scores living on
                // different scales; 60 is the customary damping constant.
                let a = self.rank(Model::Als, user, history, BLEND_DEPTH, keep, s);
                let b = self.rank(Model::ItemToItem, user, history, BLEND_DEPTH, keep, s);
                let mut fused: Vec<Pick> = Vec::with_capacity(a.len() + b.len());
                for (list, other) in [(&a, &b), (&b, &a)] {
                    for (rank, p) in list.iter().enumerate() {
                        if fused.iter().any(|f| f.item == p.item) {
                            continue;
                        }
                        let mut score = 1.0 / (60.0 + rank as f32);
                        if let Some(r) = other.iter().position(|o| o.item == p.item) {
                            score += 1.0 / (60.0 + r as f32);
                        }
                        fused.push(Pick { score, ..*p });
                    }
                }
                fused.sort_by(|x, y| y.score.total_cmp(&x.score).then(x.item.cmp(&y.item)));
                fused.truncate(k);
                fused
            }
        }
    }
}

/// Business rules applied to a model's ranked picks.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    /// Category index of every item (`u32::MAX`: none); at most `max_per_category` items of
    /// one category make a list, for diversity.
    pub category: &'a [u32],
    /// Items per category in one list.
    pub max_per_category: usize,
    /// Score multiplier of every item (from its merchandising tags; 1 for none).
    pub boost: &'a [f32],
}

/// A customer's final list: the model's picks boosted and re-sorted, capped per category,
/// then filled up to `k` from the fallback rankings in order (each pick marked
/// [`Why::Fallback`] with the list's index). `keep` has already filtered the model's picks
/// and filters the fallbacks the same way.
pub fn assemble(
    mut picks: Vec<Pick>,
    fallbacks: &[&[u32]],
    keep: &dyn Fn(u32) -> bool,
    rules: &Rules<'_>,
    k: usize,
) -> Vec<Pick> {
    for p in &mut picks {
        // Scores may be negative (ALS): dividing those moves a boosted item up as well.
        let b = rules.boost[p.item as usize];
        if b > 0.0 {
            p.score = if p.score >= 0.0 {
                p.score * b
            } else {
                p.score / b
            };
        } else {
            // A factor of 0 sends the item behind every other pick.
            p.score = f32::MIN;
        }
    }
    picks.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    let mut out: Vec<Pick> = Vec::with_capacity(k);
    let mut per_category: Vec<(u32, usize)> = Vec::new();
    let mut admit = |p: Pick, out: &mut Vec<Pick>| {
        if out.len() >= k || out.iter().any(|o| o.item == p.item) {
            return;
        }
        let cat = rules.category[p.item as usize];
        if cat != u32::MAX {
            match per_category.iter_mut().find(|(c, _)| *c == cat) {
                Some((_, n)) if *n >= rules.max_per_category => return,
                Some((_, n)) => *n += 1,
                None => per_category.push((cat, 1)),
            }
        }
        out.push(p);
    };
    for p in picks {
        admit(p, &mut out);
    }
    for (f, list) in fallbacks.iter().enumerate() {
        for &item in *list {
            if out.len() >= k {
                return out;
            }
            if keep(item) {
                let pick = Pick {
                    item,
                    score: 0.0,
                    why: Why::Fallback(f),
                };
                admit(pick, &mut out);
            }
        }
    }
    out
}

/// Distinct buyers of every item of a users × items matrix.
pub fn buyers(m: &matrix::Csr) -> Vec<f32> {
    let mut n = vec![0f32; m.cols_n];
    for &c in &m.cols {
        n[c as usize] += 1.0;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_boost_cap_categories_and_fill_from_fallbacks() {
        let pick = |item, score| Pick {
            item,
            score,
            why: Why::Popular,
        };
        // Items 0-2 are category 0, 3 category 1, 4 none; item 3 is boosted 2x.
        let category = [0, 0, 0, 1, u32::MAX, 1];
        let boost = [1.0, 1.0, 1.0, 2.0, 1.0, 1.0];
        let rules = Rules {
            category: &category,
            max_per_category: 2,
            boost: &boost,
        };
        let picks = vec![pick(0, 0.9), pick(1, 0.8), pick(2, 0.7), pick(3, 0.5)];
        let keep = |i: u32| i != 5;
        let got = assemble(picks, &[&[5, 1, 4]], &keep, &rules, 4);
        let items: Vec<(u32, Why)> = got.iter().map(|p| (p.item, p.why)).collect();
        assert_eq!(
            items,
            vec![
                (3, Why::Popular),
                (0, Why::Popular),
                (1, Why::Popular),
                (4, Why::Fallback(0))
            ],
            "3 boosted to the top, 2 over the category cap, 5 not kept, 1 not twice"
        );
    }
}
