//! Behaviour clusters: k-means on standardized behaviour features, k chosen by the mean
//! silhouette (or given), each cluster described in words by the features that set it apart.

use rand::{Rng, SeedableRng};

/// Customers k is chosen on (an evenly spread sample of them).
const SAMPLE: usize = 20_000;

/// The behaviour features every customer has, in the order of a feature row; the category
/// and channel mix follow them.
pub const FEATURES: [&str; 4] = ["recency", "frequency", "spend", "basket size"];

/// A mix share counts in a cluster's description only when its customers put at least this
/// much of their spend (or orders) there on average.
const MIX_WORTHY: f64 = 0.3;

/// One customer's behaviour, before standardization.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Days since the last order.
    pub recency_days: f64,
    /// Orders.
    pub orders: f64,
    /// Total spent.
    pub spent: f64,
    /// Share of spend per category, in [`Mix::categories`] order (all zero: none known).
    pub categories: Vec<f64>,
    /// Share of orders per channel, in [`Mix::channels`] order.
    pub channels: Vec<f64>,
}

/// The names of the mix shares in [`Behaviour`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mix {
    /// Product categories.
    pub categories: Vec<String>,
    /// Sales channels (the sources orders come from).
    pub channels: Vec<String>,
}

/// A clustering of customers with a description per cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    /// The cluster of each customer, `0..k`.
    pub assignment: Vec<usize>,
    /// Per cluster, its description ("frequent, high spend", "mostly Electronics").
    pub descriptions: Vec<String>,
    /// The mean silhouette of the chosen clustering (on a sample).
    pub silhouette: f64,
}

/// Feature rows, one after another, `dim` values each.
struct Rows {
    dim: usize,
    data: Vec<f64>,
}

impl Rows {
    fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    fn iter(&self) -> std::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.dim)
    }
}

/// Standardized rows: behaviour log-scaled (money and counts are skewed), every column
/// z-scored, and each mix weighted so that, however many categories or channels it has, it
/// counts as much as one behaviour feature. Also returns each column's weight.
fn features(customers: &[Behaviour], mix: &Mix) -> (Rows, Vec<f64>) {
    let (nc, nh) = (mix.categories.len(), mix.channels.len());
    let dim = FEATURES.len() + nc + nh;
    let mut data = Vec::with_capacity(customers.len() * dim);
    for c in customers {
        let basket = if c.orders > 0.0 {
            c.spent / c.orders
        } else {
            0.0
        };
        data.extend([
            c.recency_days.max(0.0).ln_1p(),
            c.orders.max(0.0).ln_1p(),
            c.spent.max(0.0).ln_1p(),
            basket.max(0.0).ln_1p(),
        ]);
        data.extend((0..nc).map(|j| c.categories.get(j).copied().unwrap_or(0.0)));
        data.extend((0..nh).map(|j| c.channels.get(j).copied().unwrap_or(0.0)));
    }
    let mut weight = vec![1.0; FEATURES.len()];
    weight.extend(std::iter::repeat_n(1.0 / (nc.max(1) as f64).sqrt(), nc));
    weight.extend(std::iter::repeat_n(1.0 / (nh.max(1) as f64).sqrt(), nh));
    let n = customers.len().max(1) as f64;
    for (f, w) in weight.iter().enumerate() {
        let column = || data.iter().skip(f).step_by(dim);
        let mean = column().sum::<f64>() / n;
        let var = column().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        for v in data.iter_mut().skip(f).step_by(dim) {
            *v = (*v - mean) / sd * w;
        }
    }
    (Rows { dim, data }, weight)
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// k-means with k-means++ seeding; returns (assignment, centres).
fn kmeans(rows: &Rows, k: usize, seed: u64) -> (Vec<usize>, Vec<Vec<f64>>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut centres = vec![rows.row(rng.gen_range(0..rows.len())).to_vec()];
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
        centres.push(rows.row(next).to_vec());
        for (d, r) in nearest.iter_mut().zip(rows.iter()) {
            *d = d.min(distance2(r, &centres[centres.len() - 1]));
        }
    }
    let mut assignment = vec![usize::MAX; rows.len()];
    for _ in 0..100 {
        let mut changed = false;
        for (a, r) in assignment.iter_mut().zip(rows.iter()) {
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
        let mut sums = vec![vec![0.0; rows.dim]; k];
        let mut counts = vec![0usize; k];
        for (a, r) in assignment.iter().zip(rows.iter()) {
            counts[*a] += 1;
            for (s, v) in sums[*a].iter_mut().zip(r) {
                *s += v;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                centres[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            }
        }
    }
    (assignment, centres)
}

/// Mean silhouette of an assignment over an evenly spread `sample` of the rows (all rows
/// when fewer).
fn silhouette(rows: &Rows, assignment: &[usize], k: usize, sample: usize) -> f64 {
    let idx: Vec<usize> = (0..rows.len())
        .step_by((rows.len() / sample).max(1))
        .collect();
    let mut total = 0.0;
    for &i in &idx {
        let mut sum = vec![0.0; k];
        let mut count = vec![0usize; k];
        for &j in &idx {
            if i != j {
                sum[assignment[j]] += distance2(rows.row(i), rows.row(j)).sqrt();
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

/// Words for a cluster: the one or two features furthest from average, in z-scores. A
/// category or channel is named only where the cluster leans on it (above average, and
/// at least [`MIX_WORTHY`] of its spend or orders).
fn describe(z: &[f64], mean_share: &[f64], mix: &Mix) -> String {
    let behaviour = |f: usize, high: bool| -> String {
        match (f, high) {
            (0, true) => "long since last order",
            (0, false) => "ordered recently",
            (1, true) => "frequent",
            (1, false) => "few orders",
            (2, true) => "high spend",
            (2, false) => "low spend",
            (3, true) => "large baskets",
            _ => "small baskets",
        }
        .to_owned()
    };
    let nc = mix.categories.len();
    let mut words: Vec<(f64, String)> = (0..FEATURES.len())
        .map(|f| (z[f].abs(), behaviour(f, z[f] > 0.0)))
        .collect();
    for (j, share) in mean_share.iter().enumerate() {
        let f = FEATURES.len() + j;
        if z[f] > 0.0 && *share >= MIX_WORTHY {
            let word = match mix.categories.get(j) {
                Some(c) => format!("buys {c}"),
                None => format!("orders via {}", mix.channels[j - nc]),
            };
            words.push((z[f], word));
        }
    }
    words.sort_by(|a, b| b.0.total_cmp(&a.0));
    if words[0].0 < 0.25 {
        return "average".into();
    }
    let mut parts = vec![words[0].1.clone()];
    if words[1].0 >= 0.5 {
        parts.push(words[1].1.clone());
    }
    parts.join(", ")
}

/// Clusters `customers` by behaviour and mix with `k` clusters, or the k in 2..=8 with the
/// best mean silhouette when `k` is `None`. Deterministic for a seed. Fewer than 10
/// customers (or fewer than k) form one cluster.
pub fn cluster(customers: &[Behaviour], mix: &Mix, k: Option<usize>, seed: u64) -> Clusters {
    let (rows, weight) = features(customers, mix);
    let one = Clusters {
        assignment: vec![0; rows.len()],
        descriptions: vec!["all customers".into()],
        silhouette: 0.0,
    };
    let ks: Vec<usize> = match k {
        Some(k) => vec![k],
        None => (2..=8).collect(),
    };
    if rows.len() < 10 || ks.iter().any(|&k| k == 0 || k > rows.len()) {
        return one;
    }
    // k is chosen on an evenly spread sample; the chosen k is then run on everyone.
    let step = (rows.len() / SAMPLE).max(1);
    let sample = Rows {
        dim: rows.dim,
        data: rows.iter().step_by(step).flatten().copied().collect(),
    };
    let best = ks
        .into_iter()
        .map(|k| {
            let (assignment, _) = kmeans(&sample, k, seed);
            (k, silhouette(&sample, &assignment, k, 2_000))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    let Some((k, silhouette)) = best else {
        return one;
    };
    let (assignment, centres) = kmeans(&rows, k, seed);
    // Mean raw mix shares per cluster, for the descriptions.
    let shares = mix.categories.len() + mix.channels.len();
    let mut share_sum = vec![vec![0.0; shares]; k];
    let mut count = vec![0usize; k];
    for (c, &a) in customers.iter().zip(&assignment) {
        count[a] += 1;
        let mine = c.categories.iter().chain(&c.channels);
        for (s, v) in share_sum[a].iter_mut().zip(mine) {
            *s += v;
        }
    }
    let descriptions = centres
        .iter()
        .zip(share_sum.iter().zip(&count))
        .map(|(centre, (sum, &n))| {
            let z: Vec<f64> = centre.iter().zip(&weight).map(|(v, w)| v / w).collect();
            let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
            describe(&z, &mean, mix)
        })
        .collect();
    Clusters {
        assignment,
        descriptions,
        silhouette,
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
                categories: vec![],
                channels: vec![],
            });
            customers.push(Behaviour {
                recency_days: 300.0 + 9.0 * j,
                orders: 1.0,
                spent: 20.0 + j,
                categories: vec![],
                channels: vec![],
            });
        }
        let none = Mix::default();
        let c = cluster(&customers, &none, None, 7);
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
        assert_eq!(cluster(&customers, &none, None, 7), c);
        assert_eq!(cluster(&customers, &none, Some(3), 7).descriptions.len(), 3);
        assert_eq!(
            cluster(&customers[..4], &none, None, 7).descriptions,
            vec!["all customers"]
        );
    }

    #[test]
    fn category_and_channel_mix_separate_and_describe_alike_spenders() {
        // Alike in spend and frequency; half buy toys in stores, half electronics online.
        let mix = Mix {
            categories: vec!["Toys".into(), "Electronics".into()],
            channels: vec!["pos".into(), "web".into()],
        };
        let customers: Vec<Behaviour> = (0..80)
            .map(|i| {
                // Behaviour spread evenly and independently, with no groups of its own.
                let spread = |m: i32, n: i32| f64::from((i * m) % n) / f64::from(n);
                let toys = i % 2 == 0;
                let (a, b) = if toys { (0.9, 0.1) } else { (0.05, 0.95) };
                Behaviour {
                    recency_days: 20.0 + 30.0 * spread(37, 41),
                    orders: 2.0 + 6.0 * spread(13, 7),
                    spent: 200.0 + 300.0 * spread(29, 31),
                    categories: vec![a, b],
                    channels: vec![a, b],
                }
            })
            .collect();
        let c = cluster(&customers, &mix, None, 7);
        assert_eq!(c.descriptions.len(), 2, "{c:?}");
        let (toys, gadgets) = (c.assignment[0], c.assignment[1]);
        assert_ne!(toys, gadgets);
        assert!(c.assignment.iter().step_by(2).all(|&a| a == toys));
        for (cluster, words) in [
            (toys, ["buys Toys", "orders via pos"]),
            (gadgets, ["buys Electronics", "orders via web"]),
        ] {
            let d = &c.descriptions[cluster];
            assert!(words.iter().any(|w| d.contains(w)), "{d}");
        }
    }
}
