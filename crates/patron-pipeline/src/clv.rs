//! `patron eval clv`: fits the customer-base models (BG/NBD, Pareto/NBD, Gamma-Gamma) on a
//! plain transactions file, to check them against published results or a retailer's own
//! holdout period.

use anyhow::{bail, Context};
use patron_engine::clv::{self, Purchase, Summary};
use std::collections::HashMap;
use std::path::Path;

/// The time unit summaries are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Days.
    Day,
    /// Weeks (7 days).
    Week,
    /// Months of 365.25 / 12 days.
    Month,
}

impl Unit {
    fn days(self) -> f64 {
        match self {
            Unit::Day => 1.0,
            Unit::Week => 7.0,
            Unit::Month => 365.25 / 12.0,
        }
    }
}

/// Mean predicted and actual holdout purchases of the customers with one calibration
/// frequency.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HoldoutBucket {
    /// Repeat purchases in calibration (the last bucket is "7+").
    pub frequency: String,
    /// Customers in the bucket.
    pub customers: usize,
    /// Mean purchase occasions in the holdout period.
    pub actual: f64,
    /// Mean BG/NBD conditional expectation for the holdout period.
    pub predicted: f64,
}

/// What `patron eval clv` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClvReport {
    /// Customers with a purchase by the end of calibration.
    pub customers: usize,
    /// Of those, customers with a repeat purchase.
    pub repeat_customers: usize,
    /// The time unit of the parameters.
    pub unit: Unit,
    /// BG/NBD (r, alpha, a, b).
    pub bgnbd: clv::Fit,
    /// Pareto/NBD (r, alpha, s, beta).
    pub pareto_nbd: clv::Fit,
    /// Gamma-Gamma (p, q, gamma), on repeat customers' mean repeat spend.
    pub gamma_gamma: clv::Fit,
    /// Wall seconds of each fit (standard errors included), for benchmarks.
    pub seconds: HashMap<&'static str, f64>,
    /// Predicted against actual purchases per calibration frequency, with a holdout end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Vec<HoldoutBucket>>,
}

/// Reads `customer_id,date,amount` rows (a header naming those columns; dates as ISO 8601
/// or `YYYYMMDD`), and fits the three models on the purchases up to `calibration_end`.
pub fn eval_clv(
    path: &Path,
    calibration_end: &str,
    unit: Unit,
    holdout_end: Option<&str>,
) -> anyhow::Result<ClvReport> {
    let day = |s: &str| -> anyhow::Result<i32> {
        let d = patron_domain::parse_date(
            s.trim(),
            patron_domain::DateReading::Likely(patron_domain::DateOrder::DayFirst),
        )
        .map_err(|e| anyhow::anyhow!("date {s:?}: {e}"))?;
        Ok(d.signed_duration_since(chrono::NaiveDate::default())
            .num_days() as i32)
    };
    let end = day(calibration_end).context("--calibration-end")?;
    let holdout = holdout_end
        .map(|h| day(h).context("--holdout-end"))
        .transpose()?;
    if holdout.is_some_and(|h| h <= end) {
        bail!("--holdout-end must be after --calibration-end");
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let header = reader.headers()?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .with_context(|| {
                format!(
                    "{}: no column {name:?} (need customer_id,date,amount)",
                    path.display()
                )
            })
    };
    let (c_id, c_date, c_amount) = (col("customer_id")?, col("date")?, col("amount")?);
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut purchases = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.with_context(|| format!("{}: line {line}", path.display()))?;
        let next = ids.len() as u32;
        let customer = *ids.entry(row[c_id].to_owned()).or_insert(next);
        let amount: f64 = row[c_amount].parse().with_context(|| {
            format!(
                "{}: line {line}: amount {:?}",
                path.display(),
                &row[c_amount]
            )
        })?;
        let date = day(&row[c_date]).with_context(|| format!("{}: line {line}", path.display()))?;
        purchases.push(Purchase {
            customer,
            day: date,
            amount,
        });
    }
    let all = clv::summarize(&purchases, ids.len(), end, unit.days());
    let customers: Vec<(usize, Summary)> = all
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i, s)))
        .collect();
    if customers.is_empty() {
        bail!("no purchases on or before the calibration end");
    }
    let summaries: Vec<Summary> = customers.iter().map(|(_, s)| *s).collect();
    let timed = |f: fn(&[Summary]) -> clv::Fit| {
        let start = std::time::Instant::now();
        let fit = f(&summaries);
        (fit, start.elapsed().as_secs_f64())
    };
    let (bgnbd, bgnbd_seconds) = timed(clv::fit_bgnbd);
    let (pareto_nbd, pareto_seconds) = timed(clv::fit_pareto);
    let (gamma_gamma, gamma_gamma_seconds) = timed(clv::fit_gamma_gamma);
    let holdout = holdout.map(|h| {
        let actual = clv::occasions_between(&purchases, ids.len(), end, h);
        let t = f64::from(h - end) / unit.days();
        let mut buckets: Vec<(usize, f64, f64)> = vec![(0, 0.0, 0.0); 8];
        for (i, s) in &customers {
            let b = &mut buckets[(s.x as usize).min(7)];
            b.0 += 1;
            b.1 += f64::from(actual[*i]);
            b.2 += clv::bgnbd_expected(&bgnbd.params, s, t);
        }
        buckets
            .into_iter()
            .enumerate()
            .filter(|(_, b)| b.0 > 0)
            .map(|(k, (n, actual, predicted))| HoldoutBucket {
                frequency: if k == 7 { "7+".into() } else { k.to_string() },
                customers: n,
                actual: actual / n as f64,
                predicted: predicted / n as f64,
            })
            .collect()
    });
    Ok(ClvReport {
        customers: summaries.len(),
        repeat_customers: summaries.iter().filter(|s| s.x > 0.0).count(),
        unit,
        bgnbd,
        pareto_nbd,
        gamma_gamma,
        seconds: HashMap::from([
            ("bgnbd", bgnbd_seconds),
            ("pareto_nbd", pareto_seconds),
            ("gamma_gamma", gamma_gamma_seconds),
        ]),
        holdout,
    })
}
