//! Behaviour clusters: k-means on standardized behaviour features, k chosen by the mean
//! silhouette (or given), each cluster described in words by the features that set it apart.

use rand::{Rng, SeedableRng};

/// Customers k is chosen on (an evenly spread sample of them).
const SAMPLE: usize = 20_000;

/// Feature names, in the order of a feature row.
pub const FEATURES: [&str; 4] = ["recency", "frequency", "spend", "basket size"];

/// One customer's behaviour, before standardization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// Days since the last order.
    pub recency_days: f64,
    /// Orders.
    pub orders: f64,
    /// Total spent.
    pub spent: f64,
}

/// A clustering of customers with a description per cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    /// The cluster of each customer, `0..k`.
    pub assignment: Vec<usize>,
    /// Per cluster, its description ("frequent, high spend").
    pub descriptions: Vec<String>,
    /// Per cluster, the mean standardized value of each feature.
    pub centres: Vec<[f64; 4]>,
    /// The mean silhouette of the chosen clustering (on a sample).
    pub silhouette: f64,
}

/// Standardized rows: log-scaled (money and counts are skewed) and z-scored per feature.
fn features(customers: &[Behaviour]) -> Vec<[f64; 4]> {
    let raw: Vec<[f64; 4]> = customers
        .iter()
        .map(|c| {
            let basket = if c.orders > 0.0 {
                c.spent / c.orders
            } else {
                0.0
            };
            [
                c.recency_days.max(0.0).ln_1p(),
                c.orders.max(0.0).ln_1p(),
                c.spent.max(0.0).ln_1p(),
                basket.max(0.0).ln_1p(),
            ]
        })
        .collect();
    let n = raw.len().max(1) as f64;
    let mean: [f64; 4] = std::array::from_fn(|f| raw.iter().map(|r| r[f]).sum::<f64>() / n);
    let sd: [f64; 4] = std::array::from_fn(|f| {
        let v = raw.iter().map(|r| (r[f] - mean[f]).powi(2)).sum::<f64>() / n;
        if v > 0.0 {
            v.sqrt()
        } else {
            1.0
        }
    });
    raw.iter()
        .map(|r| std::array::from_fn(|f| (r[f] - mean[f]) / sd[f]))
        .collect()
}

fn distance2(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// k-means with k-means++ seeding; returns (assignment, centres).
fn kmeans(rows: &[[f64; 4]], k: usize, seed: u64) -> (Vec<usize>, Vec<[f64; 4]>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut centres = vec![rows[rng.gen_range(0..rows.len())]];
    let mut nearest: Vec<f64> = rows.iter().map(|r| distance2(r, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().sum();
        let next = if total > 0.0 {
            let mut pick = rng.gen_range(0.0..total);
            nearest
                .iter()
                .position(|d| {
                    pick -= d;
                    pick <= 0.0
                })
                .unwrap_or(rows.len() - 1)
        } else {
            rng.gen_range(0..rows.len())
        };
        centres.push(rows[next]);
        for (d, r) in nearest.iter_mut().zip(rows) {
            *d = d.min(distance2(r, &centres[centres.len() - 1]));
        }
    }
    let mut assignment = vec![usize::MAX; rows.len()];
    for _ in 0..100 {
        let mut changed = false;
        for (a, r) in assignment.iter_mut().zip(rows) {
            let best = (0..k)
                .min_by(|&x, &y| distance2(r, &centres[x]).total_cmp(&distance2(r, &centres[y])))
                .unwrap_or(0);
            if *a != best {
                *a = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sums = vec![[0.0; 4]; k];
        let mut counts = vec![0usize; k];
        for (a, r) in assignment.iter().zip(rows) {
            counts[*a] += 1;
            for f in 0..4 {
                sums[*a][f] += r[f];
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                centres[c] = std::array::from_fn(|f| sums[c][f] / counts[c] as f64);
            }
        }
    }
    (assignment, centres)
}

/// Mean silhouette of an assignment over the first `sample` rows (all rows when fewer).
fn silhouette(rows: &[[f64; 4]], assignment: &[usize], k: usize, sample: usize) -> f64 {
    let idx: Vec<usize> = (0..rows.len())
        .step_by((rows.len() / sample).max(1))
        .collect();
    let mut total = 0.0;
    for &i in &idx {
        let mut sum = vec![0.0; k];
        let mut count = vec![0usize; k];
        for &j in &idx {
            if i != j {
                sum[assignment[j]] += distance2(&rows[i], &rows[j]).sqrt();
                count[assignment[j]] += 1;
            }
        }
        let own = assignment[i];
        if count[own] == 0 {
            continue;
        }
        let a = sum[own] / count[own] as f64;
        let b = (0..k)
            .filter(|&c| c != own && count[c] > 0)
            .map(|c| sum[c] / count[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b);
        }
    }
    total / idx.len() as f64
}

/// Words for a cluster centre: the one or two features furthest from average.
fn describe(centre: &[f64; 4]) -> String {
    let words = |f: usize, z: f64| -> &'static str {
        match (f, z > 0.0) {
            (0, true) => "long since last order",
            (0, false) => "ordered recently",
            (1, true) => "frequent",
            (1, false) => "few orders",
            (2, true) => "high spend",
            (2, false) => "low spend",
            (3, true) => "large baskets",
            _ => "small baskets",
        }
    };
    let mut by: Vec<usize> = (0..4).collect();
    by.sort_by(|&a, &b| centre[b].abs().total_cmp(&centre[a].abs()));
    let mut parts = vec![words(by[0], centre[by[0]])];
    if centre[by[1]].abs() >= 0.5 {
        parts.push(words(by[1], centre[by[1]]));
    }
    if centre[by[0]].abs() < 0.25 {
        return "average".into();
    }
    parts.join(", ")
}

/// Clusters `customers` by behaviour with `k` clusters, or the k in 2..=8 with the best
/// mean silhouette when `k` is `None`. Deterministic for a seed. Fewer than 10 customers
/// (or fewer than k) form one cluster.
pub fn cluster(customers: &[Behaviour], k: Option<usize>, seed: u64) -> Clusters {
    let rows = features(customers);
    let one = |rows: &[[f64; 4]]| Clusters {
        assignment: vec![0; rows.len()],
        descriptions: vec!["all customers".into()],
        centres: vec![[0.0; 4]],
        silhouette: 0.0,
    };
    let ks: Vec<usize> = match k {
        Some(k) => vec![k],
        None => (2..=8).collect(),
    };
    if rows.len() < 10 || ks.iter().any(|&k| k == 0 || k > rows.len()) {
        return one(&rows);
    }
    // k is chosen on an evenly spread sample; the chosen k is then run on everyone.
    let step = (rows.len() / SAMPLE).max(1);
    let sample: Vec<[f64; 4]> = rows.iter().step_by(step).copied().collect();
    let best = ks
        .into_iter()
        .map(|k| {
            let (assignment, _) = kmeans(&sample, k, seed);
            (k, silhouette(&sample, &assignment, k, 2_000))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    match best {
        Some((k, silhouette)) => {
            let (assignment, centres) = kmeans(&rows, k, seed);
            Clusters {
                descriptions: centres.iter().map(describe).collect(),
                assignment,
                centres,
                silhouette,
            }
        }
        None => one(&rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_clear_groups_are_found_and_described() {
        // Loyal big spenders and one-off small buyers who left long ago.
        let mut customers = Vec::new();
        for i in 0..60 {
            let j = f64::from(i % 7);
            customers.push(Behaviour {
                recency_days: 5.0 + j,
                orders: 20.0 + j,
                spent: 2_000.0 + 50.0 * j,
            });
            customers.push(Behaviour {
                recency_days: 300.0 + 9.0 * j,
                orders: 1.0,
                spent: 20.0 + j,
            });
        }
        let c = cluster(&customers, None, 7);
        assert_eq!(c.descriptions.len(), 2, "{c:?}");
        assert!(c.silhouette > 0.7, "{}", c.silhouette);
        let loyal = c.assignment[0];
        assert!(c.assignment.iter().step_by(2).all(|&a| a == loyal));
        assert!(c.assignment.iter().skip(1).step_by(2).all(|&a| a != loyal));
        assert!(
            c.descriptions[loyal].contains("frequent")
                || c.descriptions[loyal].contains("high spend")
                || c.descriptions[loyal].contains("recently"),
            "{:?}",
            c.descriptions
        );
        // The same seed, the same answer; a given k is honoured.
        assert_eq!(cluster(&customers, None, 7), c);
        assert_eq!(cluster(&customers, Some(3), 7).descriptions.len(), 3);
        assert_eq!(
            cluster(&customers[..4], None, 7).descriptions,
            vec!["all customers"]
        );
    }
}
