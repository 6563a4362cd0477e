//! RFM: recency, frequency and monetary value per customer, scored 1–5 by quintile, and the
//! customary named segments.

use rayon::prelude::*;

/// One order, already net of refunds and cancellations, in the reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// Dense customer index (`0..customers`).
    pub customer: u32,
    /// Day the order was placed, as days since 1970-01-01.
    pub day: i32,
    /// Order value in minor units.
    pub amount: i64,
}

/// A customer's RFM values and scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfm {
    /// Days from the last order to the reference day.
    pub recency_days: i32,
    /// Number of orders.
    pub frequency: u32,
    /// Total order value in minor units.
    pub monetary: i64,
    /// Recency score, 5 = most recent.
    pub r: u8,
    /// Frequency score, 5 = most frequent.
    pub f: u8,
    /// Monetary score, 5 = highest spend.
    pub m: u8,
    /// Named segment from the R and F scores (shared among the customers it names).
    pub segment: std::sync::Arc<str>,
}

/// One entry of a score map: R and F score ranges (inclusive) and the segment they name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentRule {
    /// Recency scores, lowest and highest.
    pub r: (u8, u8),
    /// Frequency scores, lowest and highest.
    pub f: (u8, u8),
    /// The segment's name.
    pub name: String,
}

/// How customers are scored and named: the number of bins per score (5: quintiles) and the
/// score map, checked in order (the first entry that covers an R and F pair names it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RfmConfig {
    /// Bins per score, 2 to 10.
    pub bins: u8,
    /// The score map.
    pub segments: Vec<SegmentRule>,
}

impl Default for RfmConfig {
    fn default() -> Self {
        RfmConfig {
            bins: 5,
            segments: SEGMENTS
                .iter()
                .map(|&(r0, r1, f0, f1, name)| SegmentRule {
                    r: (r0, r1),
                    f: (f0, f1),
                    name: name.to_owned(),
                })
                .collect(),
        }
    }
}

impl RfmConfig {
    /// Checks the bin count and that the map names every score pair, with scores in range.
    pub fn validate(&self) -> Result<(), String> {
        if !(2..=10).contains(&self.bins) {
            return Err(format!("bins must be 2 to 10, not {}", self.bins));
        }
        for rule in &self.segments {
            let ok = |(lo, hi): (u8, u8)| 1 <= lo && lo <= hi && hi <= self.bins;
            if !ok(rule.r) || !ok(rule.f) || rule.name.trim().is_empty() {
                return Err(format!(
                    "segment '{}': scores must be ranges within 1..={} and the name non-empty",
                    rule.name, self.bins
                ));
            }
        }
        let missing: Vec<String> = (1..=self.bins)
            .flat_map(|r| (1..=self.bins).map(move |f| (r, f)))
            .filter(|&(r, f)| self.segment(r, f).is_none())
            .map(|(r, f)| format!("r={r} f={f}"))
            .collect();
        if !missing.is_empty() {
            return Err(format!("no segment for {}", missing.join(", ")));
        }
        Ok(())
    }

    /// The segment that names an R and F score pair.
    pub fn segment(&self, r: u8, f: u8) -> Option<&str> {
        self.segments
            .iter()
            .find(|s| (s.r.0..=s.r.1).contains(&r) && (s.f.0..=s.f.1).contains(&f))
            .map(|s| s.name.as_str())
    }
}

/// Computes RFM for every customer with at least one order; `None` for the others.
/// `as_of_day` is the reference day recency is measured from; `cfg` must be valid
/// ([`RfmConfig::validate`]).
pub fn rfm(
    orders: &[Order],
    customers: usize,
    as_of_day: i32,
    cfg: &RfmConfig,
) -> Vec<Option<Rfm>> {
    let mut last = vec![i32::MIN; customers];
    let mut freq = vec![0u32; customers];
    let mut money = vec![0i64; customers];
    for o in orders {
        let c = o.customer as usize;
        last[c] = last[c].max(o.day);
        freq[c] += 1;
        money[c] = money[c].saturating_add(o.amount);
    }
    let buyers: Vec<usize> = (0..customers).filter(|&c| freq[c] > 0).collect();
    let recency: Vec<i64> = buyers
        .iter()
        .map(|&c| i64::from(as_of_day - last[c]))
        .collect();
    // Smaller recency is better, so score its negation.
    let neg_recency: Vec<i64> = recency.iter().map(|r| -r).collect();
    let freq_b: Vec<i64> = buyers.iter().map(|&c| i64::from(freq[c])).collect();
    let money_b: Vec<i64> = buyers.iter().map(|&c| money[c]).collect();
    let (r, (f, m)) = rayon::join(
        || scores(&neg_recency, cfg.bins),
        || rayon::join(|| scores(&freq_b, cfg.bins), || scores(&money_b, cfg.bins)),
    );
    let bins = usize::from(cfg.bins);
    let other: std::sync::Arc<str> = "Other".into();
    // One shared name per score pair, looked up once.
    let names: Vec<std::sync::Arc<str>> = (0..bins * bins)
        .map(|k| {
            let (r, f) = ((k / bins) as u8 + 1, (k % bins) as u8 + 1);
            cfg.segment(r, f)
                .map_or(other.clone(), std::sync::Arc::from)
        })
        .collect();
    let mut out = vec![None; customers];
    for (i, &c) in buyers.iter().enumerate() {
        out[c] = Some(Rfm {
            recency_days: recency[i] as i32,
            frequency: freq[c],
            monetary: money[c],
            r: r[i],
            f: f[i],
            m: m[i],
            segment: names[usize::from(r[i] - 1) * bins + usize::from(f[i] - 1)].clone(),
        });
    }
    out
}

/// Scores values 1–5 by quintile of rank (see [`scores`]).
pub fn quintiles(values: &[i64]) -> Vec<u8> {
    scores(values, 5)
}

/// Scores values 1–`bins` by rank, larger value = higher score. Equal values always get the
/// same score (the score of the first rank they occupy), so the result never depends on
/// input order.
pub fn scores(values: &[i64], bins: u8) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.par_sort_unstable_by_key(|&i| values[i]);
    let mut scores = vec![0u8; n];
    let mut first_rank = 0;
    for (rank, &i) in order.iter().enumerate() {
        if rank > 0 && values[i] != values[order[rank - 1]] {
            first_rank = rank;
        }
        scores[i] = (first_rank * usize::from(bins) / n) as u8 + 1;
    }
    scores
}

/// The customary RFM segment map over recency and frequency scores, checked in order.
const SEGMENTS: &[(u8, u8, u8, u8, &str)] = &[
    (5, 5, 4, 5, "Champions"),
    (3, 4, 4, 5, "Loyal"),
    (4, 5, 2, 3, "Potential Loyalist"),
    (5, 5, 1, 1, "New"),
    (4, 4, 1, 1, "Promising"),
    (3, 3, 3, 3, "Need Attention"),
    (3, 3, 1, 2, "About to Sleep"),
    (1, 2, 5, 5, "Can't Lose Them"),
    (1, 2, 3, 4, "At Risk"),
    (1, 1, 1, 1, "Lost"),
    (1, 2, 1, 2, "Hibernating"),
];

/// The named segment of an R and F score pair under the default map.
pub fn segment(r: u8, f: u8) -> String {
    RfmConfig::default()
        .segment(r, f)
        .unwrap_or("Hibernating")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    #[test]
    fn quintile_scores() {
        let f = |v: &Vec<i64>| quintiles(v);
        check(f, vec![], vec![]);
        check(f, vec![10, 20, 30, 40, 50], vec![1, 2, 3, 4, 5]);
        check(f, vec![50, 40, 30, 20, 10], vec![5, 4, 3, 2, 1]);
        // Ties share a score whatever their position.
        check(f, vec![1, 1, 1, 1, 9], vec![1, 1, 1, 1, 5]);
        check(f, vec![7, 7], vec![1, 1]);
        check(
            f,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
        );
    }

    #[test]
    fn every_score_pair_has_a_segment() {
        for r in 1..=5 {
            for f in 1..=5 {
                let covered = SEGMENTS.iter().any(|(r0, r1, f0, f1, _)| {
                    (*r0..=*r1).contains(&r) && (*f0..=*f1).contains(&f)
                });
                assert!(covered, "r={r} f={f}");
            }
        }
        let f = |rf: &(u8, u8)| segment(rf.0, rf.1);
        check(f, (5, 5), "Champions".to_owned());
        check(f, (1, 1), "Lost".to_owned());
        check(f, (1, 5), "Can't Lose Them".to_owned());
        check(f, (5, 1), "New".to_owned());
        assert_eq!(RfmConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_custom_bin_count_needs_a_map_that_covers_it() {
        let three = RfmConfig {
            bins: 3,
            segments: vec![
                SegmentRule {
                    r: (3, 3),
                    f: (1, 3),
                    name: "Active".into(),
                },
                SegmentRule {
                    r: (1, 2),
                    f: (1, 3),
                    name: "Lapsing".into(),
                },
            ],
        };
        assert_eq!(three.validate(), Ok(()));
        check(
            |v: &Vec<i64>| scores(v, 3),
            vec![1, 2, 3, 4, 5, 6],
            vec![1, 1, 2, 2, 3, 3],
        );
        let gap = RfmConfig {
            segments: three.segments[..1].to_vec(),
            ..three.clone()
        };
        assert!(gap.validate().unwrap_err().contains("r=1 f=1"));
        let default_map = RfmConfig {
            bins: 3,
            ..RfmConfig::default()
        };
        assert!(
            default_map.validate().is_err(),
            "5-score ranges do not fit 3 bins"
        );
        assert!(RfmConfig { bins: 11, ..three }.validate().is_err());
    }

    #[test]
    fn rfm_values() {
        let orders = [
            Order {
                customer: 0,
                day: 100,
                amount: 500,
            },
            Order {
                customer: 0,
                day: 90,
                amount: 300,
            },
            Order {
                customer: 2,
                day: 10,
                amount: 100,
            },
        ];
        let got = rfm(&orders, 3, 100, &RfmConfig::default());
        let a = got[0].as_ref().unwrap();
        assert_eq!((a.recency_days, a.frequency, a.monetary), (0, 2, 800));
        assert_eq!((a.r, a.f, a.m), (3, 3, 3));
        assert!(got[1].is_none());
        let c = got[2].as_ref().unwrap();
        assert_eq!((c.recency_days, c.r, c.f, c.m), (90, 1, 1, 1));
    }
}
