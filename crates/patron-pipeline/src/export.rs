//! Export results as CSV to any writer (a file or standard output).

use patron_store::Store;
use std::io::Write;

/// What `patron export` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Golden profiles.
    Profiles,
    /// source, source_id → customer_id for every imported record.
    Links,
    /// Segment memberships.
    Segments,
    /// Stored recommendations.
    Recommendations,
    /// Per-customer metrics and forecasts (pseudonymous: ids, no personal fields).
    Metrics,
}

/// Writes one export as CSV with a header row; returns the number of data rows.
pub async fn export(store: &Store, kind: ExportKind, out: impl Write) -> anyhow::Result<u64> {
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| std::io::Error::other(e);
    let n = match kind {
        ExportKind::Profiles => {
            w.write_record([
                "customer_id",
                "name",
                "email",
                "phone",
                "gender",
                "birth_date",
                "city",
                "country",
                "records",
            ])?;
            store
                .export_profiles(None, |p| {
                    w.serialize((
                        p.customer_id,
                        p.name,
                        p.email,
                        p.phone,
                        p.gender,
                        p.birth_date,
                        p.city,
                        p.country,
                        p.records,
                    ))
                    .map_err(io)
                })
                .await?
        }
        ExportKind::Links => {
            w.write_record(["source", "source_id", "customer_id"])?;
            store
                .export_links(|l| {
                    w.serialize((l.source, l.source_id, l.customer_id))
                        .map_err(io)
                })
                .await?
        }
        ExportKind::Segments => {
            w.write_record(["segment", "kind", "customer_id"])?;
            store
                .export_segments(|s, k, c| w.serialize((s, k, c)).map_err(io))
                .await?
        }
        ExportKind::Metrics => {
            w.write_record([
                "customer_id",
                "recency_days",
                "frequency",
                "monetary",
                "r",
                "f",
                "m",
                "rfm_segment",
                "cluster",
                "expected_purchases_90d",
                "p_alive",
                "churn_risk",
                "clv_12m",
            ])?;
            let facts = store.segment_facts().await?;
            for f in &facts {
                let int = |v: Option<f64>| v.map(|x| x as i64);
                w.serialize((
                    f.customer_id,
                    int(f.days_since_last_order),
                    int(f.orders),
                    f.total_spent,
                    int(f.rfm[0]),
                    int(f.rfm[1]),
                    int(f.rfm[2]),
                    &f.rfm_segment,
                    &f.cluster,
                    f.expected_purchases_90d
                        .map(|v| (v * 1000.0).round() / 1000.0),
                    f.p_alive.map(|v| (v * 1000.0).round() / 1000.0),
                    &f.churn_risk,
                    f.clv_12m.map(|v| (v * 100.0).round() / 100.0),
                ))?;
            }
            facts.len() as u64
        }
        ExportKind::Recommendations => {
            w.write_record(["customer_id", "rank", "product_id", "score", "reason"])?;
            store
                .export_recommendations(|r| {
                    w.serialize((r.customer_id, r.rank, r.product_id, r.score, r.reason))
                        .map_err(io)
                })
                .await?
        }
    };
    w.flush()?;
    Ok(n)
}
