//! The analyze stages over stored data: unify, segment (RFM) and recommend. Each reads a
//! snapshot from the store, calls the pure engine, and writes its results back in bulk.

use anyhow::Context;
use patron_domain::Currency;
use patron_domain::{Email, PersonName};
use patron_engine::matching::{self, MatchRecord};
use patron_engine::{predict, recommend, rfm, unify};
use patron_store::{
    FieldValue, GoldenRow, MetricRow, OrderSnapshot, PredictionRow, RecommendationRow, Store,
    UnifyRecord, Vault,
};
use rayon::prelude::*;

/// A stage that `patron run` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Identity resolution into golden profiles.
    Unify,
    /// RFM scores and segments.
    Segment,
    /// Purchase and spend forecasts.
    Predict,
    /// Popularity recommendations.
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
#[derive(Debug, Clone, Copy)]
pub struct RunConfig {
    /// The currency RFM monetary values are reported in; orders in other currencies are
    /// counted and left out rather than mixed.
    pub currency: Currency,
    /// Recommendations stored per customer.
    pub recommendations: usize,
}

/// What one stage did, for the CLI and the jobs log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageSummary {
    /// The stage.
    pub stage: &'static str,
    /// Headline counts, in words and numbers.
    pub counts: Vec<(&'static str, u64)>,
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
            Stage::Unify => unify_stage(store).await,
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
    Ok(out)
}

/// Where the fitted matching model is kept, for explanations and review.
pub const MODEL_SETTING: &str = "unify_model";

async fn unify_stage(store: &Store) -> anyhow::Result<StageSummary> {
    let records = store.unify_snapshot().await?;
    let matches = match_records(store.vault(), &records);
    let matching::Resolution {
        clustering,
        model,
        candidate_pairs,
        linked_pairs,
    } = matching::resolve(&matches, &matching::Settings::default());
    store
        .put_setting(MODEL_SETTING, &serde_json::to_vec(&model)?)
        .await?;
    let prior: Vec<Option<i64>> = records.iter().map(|r| r.customer_id).collect();
    let ids = unify::assign_ids(&clustering, &prior, store.max_customer_id().await? + 1);
    let has: Vec<u32> = records.iter().map(field_bits).collect();
    let recency: Vec<i64> = records.iter().map(|r| r.recency).collect();
    let winners = unify::survivors(&clustering, &has, &recency, 8);

    let mut sizes = vec![0i64; clustering.clusters];
    let mut created = vec![i64::MAX; clustering.clusters];
    for (i, &c) in clustering.cluster_of.iter().enumerate() {
        sizes[c as usize] += 1;
        created[c as usize] = created[c as usize].min(records[i].received_at);
    }
    let golden: Vec<GoldenRow> = winners
        .iter()
        .enumerate()
        .map(|(c, fields)| GoldenRow {
            customer_id: ids[c],
            fields: std::array::from_fn(|f| fields[f].and_then(|i| records[i].fields[f].clone())),
            records: sizes[c],
            created_at: created[c],
        })
        .collect();
    let vault = store.vault();
    let mut identities = Vec::new();
    let mut name_tokens = Vec::new();
    let mut assignments = Vec::with_capacity(records.len());
    let (mut new, mut moved) = (0u64, 0u64);
    for (r, &c) in records.iter().zip(&clustering.cluster_of) {
        let id = ids[c as usize];
        match r.customer_id {
            None => new += 1,
            Some(old) if old != id => moved += 1,
            Some(_) => {}
        }
        assignments.push((r.record_id, id));
        if let Some(h) = &r.email_hash {
            identities.push((id, "email", h.clone()));
        }
        if let Some(h) = &r.phone_hash {
            identities.push((id, "phone", h.clone()));
        }
        let external = format!("{}:{}", r.source, r.source_id);
        identities.push((id, "external", vault.blind("external", &external)));
        for t in r.name_tokens.iter().flat_map(|t| t.chunks(16)) {
            name_tokens.push((id, t.to_vec()));
        }
    }
    let profiles = golden.len() as u64;
    store
        .apply_unification(assignments, golden, identities, name_tokens)
        .await?;
    store.attribute_activity().await?;
    Ok(StageSummary {
        stage: "unify",
        counts: vec![
            ("records", records.len() as u64),
            ("candidate pairs", candidate_pairs as u64),
            ("pairs linked", linked_pairs as u64),
            ("EM iterations", model.iterations as u64),
            ("profiles", profiles),
            ("new records placed", new),
            ("records moved between profiles", moved),
        ],
    })
}

/// Explains the match weight of two stored records named `SOURCE:ID`, with the model the
/// last unify run fitted.
pub async fn explain(store: &Store, a: &str, b: &str) -> anyhow::Result<matching::Explanation> {
    let model = store
        .setting(MODEL_SETTING)
        .await?
        .context("no matching model yet: run `patron run unify` first")?;
    let mut model: matching::Model = serde_json::from_slice(&model)?;
    let records = store.unify_snapshot().await?;
    let find = |name: &str| -> anyhow::Result<usize> {
        let (source, id) = name
            .split_once(':')
            .with_context(|| format!("'{name}': name a record as SOURCE:ID"))?;
        records
            .iter()
            .position(|r| r.source == source && r.source_id == id)
            .with_context(|| format!("no record {name}"))
    };
    let (i, j) = (find(a)?, find(b)?);
    let matches = match_records(store.vault(), &records);
    model.count_term_frequencies(&matches);
    Ok(model.explain(&matches[i], &matches[j]))
}

/// The comparison features of stored records: personal fields are opened in memory only, in
/// parallel, and never written anywhere.
pub fn match_records(vault: &Vault, records: &[UnifyRecord]) -> Vec<MatchRecord> {
    records.par_iter().map(|r| match_record(vault, r)).collect()
}

fn match_record(vault: &Vault, r: &UnifyRecord) -> MatchRecord {
    let open = |i: usize| match &r.fields[i] {
        Some(FieldValue::Sealed(s)) => vault.open_str(s).ok(),
        Some(FieldValue::Plain(p)) => Some(p.clone()),
        None => None,
    };
    let address: Option<serde_json::Value> = open(4).and_then(|a| serde_json::from_str(&a).ok());
    let part = |key: &str| {
        address
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(serde_json::Value::as_str)
            .map(str::to_lowercase)
    };
    MatchRecord {
        names: open(0)
            .and_then(|n| PersonName::parse(&n).ok())
            .map(|n| n.match_keys())
            .unwrap_or_default(),
        email: open(1)
            .and_then(|e| Email::parse(&e).ok())
            .map(|e| e.match_key()),
        phone: open(2),
        birth: open(3).map(|d| d.replace('-', "")),
        address: part("line1"),
        postal: part("postal_code"),
        city: open(6).map(|c| c.to_lowercase()),
        gender: open(5),
    }
}

fn field_bits(r: &UnifyRecord) -> u32 {
    r.fields
        .iter()
        .enumerate()
        .filter(|(_, v)| match v {
            Some(FieldValue::Plain(s)) => !s.is_empty(),
            Some(FieldValue::Sealed(_)) => true,
            None => false,
        })
        .fold(0, |bits, (i, _)| bits | (1 << i))
}

const DAY_MS: i64 = 86_400_000;

/// The orders RFM and forecasts are computed from: completed, in the reporting currency.
struct UsableOrders {
    orders: Vec<rfm::Order>,
    /// Recency and tenure are measured to the day after the latest order, so a historical
    /// export scores the same whenever it is loaded.
    as_of_day: i32,
    reversed: u64,
    other_currency: u64,
}

fn usable_orders(snap: &OrderSnapshot, currency: &str) -> UsableOrders {
    let mut u = UsableOrders {
        orders: Vec::with_capacity(snap.orders.len()),
        as_of_day: 0,
        reversed: 0,
        other_currency: 0,
    };
    for o in &snap.orders {
        if o.status != "completed" {
            u.reversed += 1;
        } else if o.currency != currency {
            u.other_currency += 1;
        } else {
            u.orders.push(rfm::Order {
                customer: o.customer,
                day: o.placed_at.div_euclid(DAY_MS) as i32,
                amount: o.amount,
            });
        }
    }
    u.as_of_day = u.orders.iter().map(|o| o.day).max().unwrap_or(0) + 1;
    u
}

async fn segment_stage(store: &Store, cfg: &RunConfig) -> anyhow::Result<StageSummary> {
    let snap = store.order_snapshot().await?;
    let currency = cfg.currency.as_str();
    let u = usable_orders(&snap, currency);
    let scores = rfm::rfm(&u.orders, snap.customers.len(), u.as_of_day);
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
                segment: s.segment.to_owned(),
            })
        })
        .collect();
    let scored = metrics.len() as u64;
    store.write_metrics(metrics).await?;
    Ok(StageSummary {
        stage: "segment",
        counts: vec![
            ("customers scored", scored),
            ("orders used", u.orders.len() as u64),
            ("cancelled or refunded orders left out", u.reversed),
            ("orders in other currencies left out", u.other_currency),
            (
                "orders without a known customer",
                snap.unattributed_orders as u64,
            ),
        ],
    })
}

async fn predict_stage(store: &Store, cfg: &RunConfig) -> anyhow::Result<StageSummary> {
    let snap = store.order_snapshot().await?;
    let currency = cfg.currency.as_str();
    let u = usable_orders(&snap, currency);
    let n = snap.customers.len();
    let (mut first, mut freq, mut money) = (vec![i32::MAX; n], vec![0u32; n], vec![0i64; n]);
    for o in &u.orders {
        let c = o.customer as usize;
        first[c] = first[c].min(o.day);
        freq[c] += 1;
        money[c] = money[c].saturating_add(o.amount);
    }
    let rows: Vec<PredictionRow> = (0..n)
        .filter(|&c| freq[c] > 0)
        .map(|c| {
            let f = predict::run_rate(predict::History {
                frequency: freq[c],
                tenure_days: u.as_of_day - first[c],
                monetary: money[c],
            });
            PredictionRow {
                customer_id: snap.customers[c],
                model: "run-rate",
                expected_purchases_90d: f.expected_purchases_90d,
                clv_12m_minor: f.clv_12m,
                currency: currency.to_owned(),
            }
        })
        .collect();
    let count = rows.len() as u64;
    store.write_predictions(rows).await?;
    Ok(StageSummary {
        stage: "predict",
        counts: vec![("customers forecast", count)],
    })
}

async fn recommend_stage(store: &Store, cfg: &RunConfig) -> anyhow::Result<StageSummary> {
    let snap = store.order_snapshot().await?;
    let ranked = recommend::popularity(&snap.purchases, snap.products.len());
    let lists = recommend::top_k_unseen(
        &ranked,
        &snap.purchases,
        snap.customers.len(),
        &snap.active,
        cfg.recommendations,
    );
    let mut rows = Vec::new();
    for (c, list) in lists.into_iter().enumerate() {
        for (rank, s) in list.into_iter().enumerate() {
            rows.push(RecommendationRow {
                customer_id: snap.customers[c],
                rank: rank as i64 + 1,
                product_id: snap.products[s.item as usize].clone(),
                score: f64::from(s.score),
                reason: "popular with all customers".into(),
            });
        }
    }
    let n = rows.len() as u64;
    store.write_recommendations(rows).await?;
    Ok(StageSummary {
        stage: "recommend",
        counts: vec![
            ("customers", snap.customers.len() as u64),
            ("recommendations", n),
        ],
    })
}
