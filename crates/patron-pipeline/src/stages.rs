//! The analyze stages over stored data: unify, segment (RFM) and recommend. Each reads a
//! snapshot from the store, calls the pure engine, and writes its results back in bulk.

use anyhow::Context;
use patron_domain::Currency;
use patron_engine::{clusters, clv, predict, rfm};
use patron_store::{MetricRow, OrderSnapshot, PredictionRow, Store};
use std::collections::BTreeMap;

/// A stage that `patron run` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Identity resolution into golden profiles.
    Unify,
    /// RFM scores and segments.
    Segment,
    /// Purchase and spend forecasts.
    Predict,
    /// Recommendations (ALS, item-to-item, popularity fallbacks, business rules).
    Recommend,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [
        Stage::Unify,
        Stage::Segment,
        Stage::Predict,
        Stage::Recommend,
    ];

    /// The stage's name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Unify => "unify",
            Stage::Segment => "segment",
            Stage::Predict => "predict",
            Stage::Recommend => "recommend",
        }
    }
}

/// Settings of the analyze stages.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The currency RFM monetary values are reported in; orders in other currencies are
    /// counted and left out rather than mixed.
    pub currency: Currency,
    /// How recommendations are made.
    pub recommend: crate::recommend::RecommendConfig,
    /// Behaviour clusters to make; `None` chooses k by silhouette.
    pub clusters: Option<usize>,
    /// The purchase model forecasts come from.
    pub purchase_model: PurchaseModelKind,
}

/// Which customer-base model `predict` fits for purchases and P(alive); Gamma-Gamma gives
/// the spend either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PurchaseModelKind {
    /// BG/NBD (Fader, Hardie & Lee 2005): fast, the usual choice.
    #[default]
    BgNbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987).
    ParetoNbd,
}

impl PurchaseModelKind {
    /// Parses `bg-nbd` or `pareto-nbd`.
    pub fn parse(raw: &str) -> Option<PurchaseModelKind> {
        match raw.trim().to_lowercase().as_str() {
            "bg-nbd" | "bgnbd" => Some(PurchaseModelKind::BgNbd),
            "pareto-nbd" | "pareto" | "paretonbd" => Some(PurchaseModelKind::ParetoNbd),
            _ => None,
        }
    }
}

/// What one stage did, for the CLI and the jobs log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageSummary {
    /// The stage.
    pub stage: &'static str,
    /// Headline counts, in words and numbers.
    pub counts: Vec<(&'static str, u64)>,
    /// What the counts suggest doing, if anything.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Runs `stages` in pipeline order, recording each as a job.
pub async fn run_stages(
    store: &Store,
    stages: &[Stage],
    cfg: &RunConfig,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<StageSummary>> {
    let mut out = Vec::new();
    for stage in Stage::ALL.into_iter().filter(|s| stages.contains(s)) {
        progress.set_message(stage.name());
        let job = store.start_job(stage.name()).await?;
        let result = match stage {
            Stage::Unify => crate::identity::unify_stage(store).await,
            Stage::Segment => segment_stage(store, cfg).await,
            Stage::Predict => predict_stage(store, cfg).await,
            Stage::Recommend => recommend_stage(store, cfg).await,
        };
        let (status, summary) = match &result {
            Ok(s) => ("done", serde_json::to_string(s)?),
            Err(e) => (
                "failed",
                serde_json::json!({ "error": format!("{e:#}") }).to_string(),
            ),
        };
        store.finish_job(job, status, &summary).await?;
        out.push(result.with_context(|| format!("stage {} failed", stage.name()))?);
        progress.inc(1);
    }
    // Rule segments test profiles, metrics and forecasts: re-evaluate them once all the
    // stages asked for have run.
    if [Stage::Unify, Stage::Segment, Stage::Predict]
        .iter()
        .any(|s| stages.contains(s))
    {
        let (segments, entered, left) = crate::segments::refresh(store).await?;
        if segments > 0 {
            out.push(StageSummary {
                stage: "rule segments",
                counts: vec![
                    ("segments re-evaluated", segments),
                    ("customers entered", entered),
                    ("customers left", left),
                ],
                notes: Vec::new(),
            });
        }
    }
    Ok(out)
}

const DAY_MS: i64 = 86_400_000;

/// The orders RFM and forecasts are computed from: completed, in the reporting currency.
struct UsableOrders {
    orders: Vec<rfm::Order>,
    /// Each order's channel, an index into [`OrderSnapshot::channels`].
    channels: Vec<u16>,
    /// Recency and tenure are measured to the day after the latest order, so a historical
    /// export scores the same whenever it is loaded.
    as_of_day: i32,
    reversed: u64,
    other_currency: u64,
    /// Orders per currency other than the reporting one.
    other_currencies: BTreeMap<String, u64>,
}

fn usable_orders(snap: &OrderSnapshot, currency: &str) -> UsableOrders {
    let mut u = UsableOrders {
        orders: Vec::with_capacity(snap.orders.len()),
        channels: Vec::with_capacity(snap.orders.len()),
        as_of_day: 0,
        reversed: 0,
        other_currency: 0,
        other_currencies: BTreeMap::new(),
    };
    for o in &snap.orders {
        if &*o.status != "completed" {
            u.reversed += 1;
        } else if &*o.currency != currency {
            u.other_currency += 1;
            match u.other_currencies.get_mut(&*o.currency) {
                Some(n) => *n += 1,
                None => {
                    u.other_currencies.insert(o.currency.to_string(), 1);
                }
            }
        } else {
            u.orders.push(rfm::Order {
                customer: o.customer,
                day: o.placed_at.div_euclid(DAY_MS) as i32,
                amount: o.amount,
            });
            u.channels.push(o.channel);
        }
    }
    u.as_of_day = u.orders.iter().map(|o| o.day).max().unwrap_or(0) + 1;
    u
}

impl UsableOrders {
    /// A hint when most orders are in another currency than the reporting one: the store's
    /// currency was most likely never set.
    fn currency_note(&self, currency: &str) -> Option<String> {
        let (other, n) = self.other_currencies.iter().max_by_key(|(_, n)| **n)?;
        (*n as usize > self.orders.len()).then(|| {
            format!(
                "most orders are in {other}, not the reporting currency {currency}: run with \
                 --currency {other} (or PATRON_CURRENCY={other}) to score them"
            )
        })
    }
}

/// Most categories and channels the cluster features name; smaller ones are left out.
const MIX_CATEGORIES: usize = 8;
const MIX_CHANNELS: usize = 6;

/// Category and channel mix per customer: the biggest categories by spend and channels by
/// orders, and per dense customer index its shares of spend per category and of usable
/// orders per channel (`customers × categories` and `customers × channels`, row by row).
fn mix_shares(snap: &OrderSnapshot, u: &UsableOrders) -> (clusters::Mix, Vec<f64>, Vec<f64>) {
    let top = |totals: Vec<f64>, n: usize| -> Vec<Option<usize>> {
        let mut by: Vec<usize> = (0..totals.len()).filter(|&i| totals[i] > 0.0).collect();
        by.sort_by(|&a, &b| totals[b].total_cmp(&totals[a]).then(a.cmp(&b)));
        by.truncate(n);
        // From each category or channel to its column, if it has one.
        let mut column = vec![None; totals.len()];
        for (j, &i) in by.iter().enumerate() {
            column[i] = Some(j);
        }
        column
    };
    let names = |column: &[Option<usize>], all: &[String]| -> Vec<String> {
        let mut named: Vec<(usize, String)> = column
            .iter()
            .enumerate()
            .filter_map(|(i, j)| Some((*j)?).map(|j| (j, all[i].clone())))
            .collect();
        named.sort();
        named.into_iter().map(|(_, n)| n).collect()
    };
    let n = snap.customers.len();
    let mut category_total = vec![0.0; snap.categories.len()];
    for &(_, k, amount) in &snap.category_spend {
        category_total[usize::from(k)] += amount as f64;
    }
    let category_column = top(category_total, MIX_CATEGORIES);
    let mut channel_total = vec![0.0; snap.channels.len()];
    for &h in &u.channels {
        channel_total[usize::from(h)] += 1.0;
    }
    let channel_column = top(channel_total, MIX_CHANNELS);
    let mix = clusters::Mix {
        categories: names(&category_column, &snap.categories),
        channels: names(&channel_column, &snap.channels),
    };
    let (nc, nh) = (mix.categories.len(), mix.channels.len());
    let mut categories = vec![0.0; n * nc];
    let mut spent = vec![0.0; n];
    for &(c, k, amount) in &snap.category_spend {
        spent[c as usize] += amount as f64;
        if let Some(j) = category_column[usize::from(k)] {
            categories[c as usize * nc + j] += amount as f64;
        }
    }
    let mut channels = vec![0.0; n * nh];
    let mut orders = vec![0.0; n];
    for (o, &h) in u.orders.iter().zip(&u.channels) {
        orders[o.customer as usize] += 1.0;
        if let Some(j) = channel_column[usize::from(h)] {
            channels[o.customer as usize * nh + j] += 1.0;
        }
    }
    // Counts to shares of each customer's own total (a customer without any stays at 0).
    for (shares, totals, width) in [(&mut categories, &spent, nc), (&mut channels, &orders, nh)] {
        for (row, &total) in shares.chunks_mut(width.max(1)).zip(totals) {
            if total > 0.0 {
                row.iter_mut().for_each(|v| *v /= total);
            }
        }
    }
    (mix, categories, channels)
}

async fn segment_stage(store: &Store, cfg: &RunConfig) -> anyhow::Result<StageSummary> {
    let snap = store.order_snapshot().await?;
    let currency = cfg.currency.as_str();
    let u = usable_orders(&snap, currency);
    let rfm_cfg = rfm_config(store).await?;
    let scores = rfm::rfm(&u.orders, snap.customers.len(), u.as_of_day, &rfm_cfg);
    // The dense customer index of each scored customer.
    let scored_index: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].is_some()).collect();
    let metrics: Vec<MetricRow> = scores
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let s = s?;
            Some(MetricRow {
                customer_id: snap.customers[i],
                recency_days: i64::from(s.recency_days),
                frequency: i64::from(s.frequency),
                monetary_minor: s.monetary,
                currency: currency.to_owned(),
                r: i64::from(s.r),
                f: i64::from(s.f),
                m: i64::from(s.m),
                segment: s.segment.to_string(),
            })
        })
        .collect();
    let scored = metrics.len() as u64;
    let (mix, category_shares, channel_shares) = mix_shares(&snap, &u);
    let (nc, nh) = (mix.categories.len(), mix.channels.len());
    let behaviour: Vec<clusters::Behaviour> = metrics
        .iter()
        .zip(&scored_index)
        .map(|(m, &i)| {
            let categories = category_shares[i * nc..(i + 1) * nc].to_vec();
            let channels = channel_shares[i * nh..(i + 1) * nh].to_vec();
            clusters::Behaviour {
                recency_days: m.recency_days as f64,
                orders: m.frequency as f64,
                spent: m.monetary_minor as f64,
                categories,
                channels,
            }
        })
        .collect();
    let found = clusters::cluster(&behaviour, &mix, cfg.clusters, 0x5eed);
    // Clusters are numbered by size, largest first, and named by what sets them apart.
    let mut sizes = vec![0usize; found.descriptions.len()];
    for &c in &found.assignment {
        sizes[c] += 1;
    }
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), c));
    let mut names = vec![String::new(); sizes.len()];
    for (rank, &c) in order.iter().enumerate() {
        names[c] = format!("Cluster {}: {}", rank + 1, found.descriptions[c]);
    }
    // Too few buyers to cluster (one cluster of everyone) is no segmentation at all.
    let members: Vec<(i64, String)> = if names.len() < 2 {
        names.clear();
        Vec::new()
    } else {
        metrics
            .iter()
            .zip(&found.assignment)
            .map(|(m, &c)| (m.customer_id, names[c].clone()))
            .collect()
    };
    store.write_metrics(metrics).await?;
    store.write_clusters(members).await?;
    Ok(StageSummary {
        stage: "segment",
        counts: vec![
            ("customers scored", scored),
            ("behaviour clusters", names.len() as u64),
            ("orders used", u.orders.len() as u64),
            ("cancelled or refunded orders left out", u.reversed),
            ("orders in other currencies left out", u.other_currency),
            (
                "orders without a known customer",
                snap.unattributed_orders as u64,
            ),
        ],
        notes: u.currency_note(currency).into_iter().collect(),
    })
}

/// Where the RFM bins and score map are kept.
pub const RFM_SETTING: &str = "rfm";

/// The stored RFM configuration (the default when none was set).
pub async fn rfm_config(store: &Store) -> anyhow::Result<rfm::RfmConfig> {
    match store.setting(RFM_SETTING).await? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
        None => Ok(rfm::RfmConfig::default()),
    }
}

/// Validates and stores an RFM configuration; it applies from the next segment run.
pub async fn set_rfm_config(
    store: &Store,
    cfg: &rfm::RfmConfig,
    actor: &str,
) -> anyhow::Result<()> {
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("RFM configuration: {e}"))?;
    let json = serde_json::to_vec(cfg)?;
    store.put_setting(RFM_SETTING, &json).await?;
    store
        .audit(
            actor,
            "rfm.set",
            None,
            Some(&String::from_utf8_lossy(&json)),
        )
        .await?;
    Ok(())
}

/// Reads a score map: a CSV with `r_from,r_to,f_from,f_to,segment`, checked in order.
pub fn read_score_map(path: &std::path::Path) -> anyhow::Result<Vec<rfm::SegmentRule>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        let score = |k: usize| -> anyhow::Result<u8> {
            row.get(k).and_then(|v| v.parse().ok()).with_context(|| {
                format!(
                    "{}: line {}: column {} is not a score",
                    path.display(),
                    i + 2,
                    k + 1
                )
            })
        };
        out.push(rfm::SegmentRule {
            r: (score(0)?, score(1)?),
            f: (score(2)?, score(3)?),
            name: row.get(4).unwrap_or_default().to_owned(),
        });
    }
    Ok(out)
}

/// Monthly acquisition cohorts over completed orders in the reporting currency.
pub async fn cohort_report(
    store: &Store,
    cfg: &RunConfig,
) -> anyhow::Result<Vec<patron_engine::cohorts::CohortCell>> {
    let snap = store.order_snapshot().await?;
    let u = usable_orders(&snap, cfg.currency.as_str());
    Ok(patron_engine::cohorts::cohorts(&u.orders))
}

/// Below this many repeat buyers the customer-base models have too little to learn from, and
/// forecasts fall back to each customer's own run rate.
const MIN_REPEAT_BUYERS: usize = 30;

/// Annual discount rate of the 12-month CLV.
const ANNUAL_DISCOUNT: f64 = 0.10;

/// The churn-risk band of a probability of being active.
fn churn_risk(p_alive: f64) -> &'static str {
    if p_alive < 0.3 {
        "high"
    } else if p_alive < 0.7 {
        "medium"
    } else {
        "low"
    }
}

async fn predict_stage(store: &Store, cfg: &RunConfig) -> anyhow::Result<StageSummary> {
    let snap = store.order_snapshot().await?;
    let currency = cfg.currency.as_str();
    let u = usable_orders(&snap, currency);
    let n = snap.customers.len();
    let purchases: Vec<clv::Purchase> = u
        .orders
        .iter()
        .map(|o| clv::Purchase {
            customer: o.customer,
            day: o.day,
            amount: o.amount as f64,
        })
        .collect();
    // Calibration ends on the last order day; the unit is the week, as in the papers.
    let summaries = clv::summarize(&purchases, n, u.as_of_day - 1, 7.0);
    let known: Vec<clv::Summary> = summaries.iter().flatten().copied().collect();
    let repeat_buyers = known
        .iter()
        .filter(|s| s.x > 0.0 && s.monetary > 0.0)
        .count();
    let kind = cfg.purchase_model;
    let fitted = (repeat_buyers >= MIN_REPEAT_BUYERS)
        .then(|| {
            let purchases = match kind {
                PurchaseModelKind::BgNbd => clv::fit_bgnbd(&known),
                PurchaseModelKind::ParetoNbd => clv::fit_pareto(&known),
            };
            (purchases, clv::fit_gamma_gamma(&known))
        })
        // Gamma-Gamma's mean spend exists only for q > 1; BG/NBD's expectation for a > 1.
        .filter(|(pm, gg)| {
            gg.params[1] > 1.0 && (kind == PurchaseModelKind::ParetoNbd || pm.params[2] > 1.0)
        });
    let (model_name, fitted_label) = match kind {
        PurchaseModelKind::BgNbd => ("bg-nbd+gamma-gamma", "with BG/NBD and Gamma-Gamma"),
        PurchaseModelKind::ParetoNbd => {
            ("pareto-nbd+gamma-gamma", "with Pareto/NBD and Gamma-Gamma")
        }
    };
    let horizon = clv::Horizon {
        purchases: 90.0 / 7.0,
        period: 365.25 / 12.0 / 7.0,
        periods: 12,
        discount: (1.0 + ANNUAL_DISCOUNT).powf(1.0 / 12.0) - 1.0,
    };
    let (mut first, mut freq, mut money) = (vec![i32::MAX; n], vec![0u32; n], vec![0i64; n]);
    for o in &u.orders {
        let c = o.customer as usize;
        first[c] = first[c].min(o.day);
        freq[c] += 1;
        money[c] = money[c].saturating_add(o.amount);
    }
    let rows: Vec<PredictionRow> = (0..n)
        .filter_map(|c| {
            let s = summaries[c]?;
            let row = |model, expected: f64, clv_12m: i64, p_alive: Option<f64>| PredictionRow {
                customer_id: snap.customers[c],
                model,
                expected_purchases_90d: expected,
                clv_12m_minor: clv_12m,
                currency: currency.to_owned(),
                p_alive,
                churn_risk: p_alive.map(churn_risk),
            };
            Some(match &fitted {
                Some((pm, gg)) => {
                    let model = match kind {
                        PurchaseModelKind::BgNbd => clv::PurchaseModel::BgNbd(&pm.params),
                        PurchaseModelKind::ParetoNbd => clv::PurchaseModel::ParetoNbd(&pm.params),
                    };
                    let f = clv::forecast(model, &gg.params, &s, horizon);
                    row(
                        model_name,
                        f.expected_purchases,
                        f.value.round() as i64,
                        Some(f.p_alive),
                    )
                }
                None => {
                    let f = predict::run_rate(predict::History {
                        frequency: freq[c],
                        tenure_days: u.as_of_day - first[c],
                        monetary: money[c],
                    });
                    row("run-rate", f.expected_purchases_90d, f.clv_12m, None)
                }
            })
        })
        .collect();
    let count = rows.len() as u64;
    let at_risk = rows.iter().filter(|r| r.churn_risk == Some("high")).count() as u64;
    store.write_predictions(rows).await?;
    Ok(StageSummary {
        stage: "predict",
        counts: vec![
            ("customers forecast", count),
            ("repeat buyers", repeat_buyers as u64),
            (fitted_label, if fitted.is_some() { count } else { 0 }),
            ("at high churn risk", at_risk),
        ],
        notes: Vec::new(),
    })
}

async fn recommend_stage(store: &Store, cfg: &RunConfig) -> anyhow::Result<StageSummary> {
    let counts = crate::recommend::run_recommend(store, &cfg.recommend).await?;
    Ok(StageSummary {
        stage: "recommend",
        counts: counts.to_vec(),
        notes: Vec::new(),
    })
}
