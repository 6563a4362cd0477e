//! Rule segments' storage: the per-customer attributes and metrics rules are evaluated over,
//! the segments themselves, their members and the history of who entered and left.

use crate::bulk::insert;
use crate::{now_ms, Result, Store, StoreError};
use patron_domain::Standing;
use sqlx::Row;
use std::collections::{BTreeMap, HashSet};

/// What a rule can test about one customer (money in major units of its currency).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentFacts {
    /// Profile id.
    pub customer_id: i64,
    /// Golden country, city and gender code.
    pub country: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Gender code.
    pub gender: Option<String>,
    /// Source records in the profile.
    pub records: f64,
    /// The source systems of its records.
    pub sources: Vec<String>,
    /// Its records' tags, each once.
    pub tags: Vec<String>,
    /// The channels it has standing marketing consent on.
    pub consents: Vec<String>,
    /// RFM metrics: days since the last order, orders, total spent, scores, segment.
    pub days_since_last_order: Option<f64>,
    /// Orders.
    pub orders: Option<f64>,
    /// Total spent, major units.
    pub total_spent: Option<f64>,
    /// R, F and M scores.
    pub rfm: [Option<f64>; 3],
    /// Named RFM segment.
    pub rfm_segment: Option<String>,
    /// Forecasts.
    pub expected_purchases_90d: Option<f64>,
    /// 12-month CLV, major units.
    pub clv_12m: Option<f64>,
    /// Probability of being active.
    pub p_alive: Option<f64>,
    /// Churn-risk band.
    pub churn_risk: Option<String>,
    /// Behaviour cluster.
    pub cluster: Option<String>,
}

/// A segment with its size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentInfo {
    /// Id.
    pub segment_id: i64,
    /// Unique name.
    pub name: String,
    /// `rfm` or `rule`.
    pub kind: String,
    /// The rule, for rule segments.
    pub definition: Option<String>,
    /// Current members.
    pub members: i64,
}

fn major(minor: Option<i64>, currency: Option<String>) -> Option<f64> {
    let exponent = currency
        .and_then(|c| patron_domain::Currency::parse(&c).ok())
        .map_or(2, |c| c.exponent());
    minor.map(|m| m as f64 / 10f64.powi(i32::from(exponent)))
}

/// A profile's standing consent per channel, in [`Channel::ALL`] order.
///
/// [`Channel::ALL`]: patron_domain::Channel::ALL
pub type Consents = [Option<Standing>; 3];

impl Store {
    /// Standing marketing consent per profile (of one profile, or of all), folded from its
    /// records' statements. Profiles no record states consent for are absent.
    pub async fn consents(&self, customer: Option<i64>) -> Result<BTreeMap<i64, Consents>> {
        let mut q = sqlx::query(
            "SELECT customer_id, source, consent_email, consent_sms, consent_wechat, consent_at \
             FROM source_records WHERE consent_at IS NOT NULL AND customer_id IS NOT NULL \
             AND ($1 IS NULL OR customer_id = $1)",
        );
        q = q.bind(customer);
        let mut out: BTreeMap<i64, Consents> = BTreeMap::new();
        for r in q.fetch_all(&self.pool).await? {
            let standing = out.entry(r.try_get(0)?).or_default();
            let source: String = r.try_get(1)?;
            let at: i64 = r.try_get(5)?;
            for (i, slot) in standing.iter_mut().enumerate() {
                if let Some(flag) = r.try_get::<Option<i64>, _>(2 + i)? {
                    Standing::fold(slot, flag != 0, &source, at);
                }
            }
        }
        Ok(out)
    }

    /// Every profile's segment facts, by profile id.
    pub async fn segment_facts(&self) -> Result<Vec<SegmentFacts>> {
        let rows = sqlx::query(
            "SELECT c.customer_id, c.country, c.city, c.gender, c.records, m.recency_days, \
             m.frequency, m.monetary_minor, m.currency AS m_currency, m.r, m.f, m.m, m.rfm_segment, \
             p.expected_purchases_90d, p.clv_12m_minor, p.currency AS p_currency, p.p_alive, \
             p.churn_risk, (SELECT s.name FROM segment_members sm \
             JOIN segments s ON s.segment_id = sm.segment_id \
             WHERE sm.customer_id = c.customer_id AND s.kind = 'cluster') AS cluster \
             FROM customers c \
             LEFT JOIN customer_metrics m ON m.customer_id = c.customer_id \
             LEFT JOIN customer_predictions p ON p.customer_id = c.customer_id \
             ORDER BY c.customer_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut sources: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let mut tags: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT customer_id, source, tags FROM source_records WHERE customer_id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let id: i64 = r.try_get(0)?;
            let source: String = r.try_get(1)?;
            let mine = sources.entry(id).or_default();
            if !mine.contains(&source) {
                mine.push(source);
            }
            if let Some(list) = r.try_get::<Option<String>, _>(2)? {
                crate::add_tags(tags.entry(id).or_default(), &list);
            }
        }
        let mut consents: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (id, standing) in self.consents(None).await? {
            let granted = patron_domain::Channel::ALL
                .iter()
                .zip(standing)
                .filter(|(_, s)| s.as_ref().is_some_and(|s| s.granted))
                .map(|(c, _)| c.as_str().to_owned());
            consents.insert(id, granted.collect());
        }
        let num = |r: &sqlx::any::AnyRow, c: &str| -> Result<Option<f64>> {
            Ok(r.try_get::<Option<i64>, _>(c)?.map(|v| v as f64))
        };
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("customer_id")?;
                Ok(SegmentFacts {
                    customer_id: id,
                    country: r.try_get("country")?,
                    city: r.try_get("city")?,
                    gender: r.try_get("gender")?,
                    records: r.try_get::<i64, _>("records")? as f64,
                    sources: sources.remove(&id).unwrap_or_default(),
                    tags: tags.remove(&id).unwrap_or_default(),
                    consents: consents.remove(&id).unwrap_or_default(),
                    days_since_last_order: num(r, "recency_days")?,
                    orders: num(r, "frequency")?,
                    total_spent: major(r.try_get("monetary_minor")?, r.try_get("m_currency")?),
                    rfm: [num(r, "r")?, num(r, "f")?, num(r, "m")?],
                    rfm_segment: r.try_get("rfm_segment")?,
                    expected_purchases_90d: r.try_get("expected_purchases_90d")?,
                    clv_12m: major(r.try_get("clv_12m_minor")?, r.try_get("p_currency")?),
                    p_alive: r.try_get("p_alive")?,
                    churn_risk: r.try_get("churn_risk")?,
                    cluster: r.try_get("cluster")?,
                })
            })
            .collect()
    }

    /// Creates a rule segment; an existing name is an error.
    pub async fn create_rule_segment(&self, name: &str, rule: &str) -> Result<i64> {
        let exists = sqlx::query("SELECT 1 FROM segments WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!(
                "a segment named '{name}' exists"
            )));
        }
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO segments (name, kind, definition, created_at, updated_at) \
             VALUES ($1, 'rule', $2, $3, $3) RETURNING segment_id",
        )
        .bind(name)
        .bind(rule)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Every segment with its member count, by name.
    pub async fn segments(&self) -> Result<Vec<SegmentInfo>> {
        let rows = sqlx::query(
            "SELECT s.segment_id, s.name, s.kind, s.definition, \
             (SELECT COUNT(*) FROM segment_members m WHERE m.segment_id = s.segment_id) AS members \
             FROM segments s ORDER BY s.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SegmentInfo {
                    segment_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    definition: r.try_get(3)?,
                    members: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Members of a segment, by profile id.
    pub async fn segment_members(
        &self,
        segment_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT customer_id FROM segment_members WHERE segment_id = $1 \
             ORDER BY customer_id LIMIT $2 OFFSET $3",
        )
        .bind(segment_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Sets a segment's members, recording who entered and who left. Returns (entered, left).
    pub async fn set_segment_members(
        &self,
        segment_id: i64,
        members: &[i64],
    ) -> Result<(u64, u64)> {
        let now = now_ms();
        let mut tx = self.begin_membership_change().await?;
        let old: HashSet<i64> =
            sqlx::query("SELECT customer_id FROM segment_members WHERE segment_id = $1")
                .bind(segment_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
        // Members computed before an erasure (or a merge) do not bring the gone profile back.
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        let new = crate::bulk::existing(&mut tx, "customers", "customer_id", members).await?;
        let mut history = Vec::new();
        for c in new.difference(&old) {
            history.push(vec![
                segment_id.into(),
                (*c).into(),
                "entered".into(),
                now.into(),
            ]);
        }
        let entered = history.len() as u64;
        for c in old.difference(&new) {
            history.push(vec![
                segment_id.into(),
                (*c).into(),
                "left".into(),
                now.into(),
            ]);
        }
        let left = history.len() as u64 - entered;
        sqlx::query(
            "DELETE FROM segment_members WHERE segment_id = $1 AND NOT EXISTS \
                     (SELECT 1 FROM customers c WHERE c.customer_id = segment_members.customer_id)",
        )
        .bind(segment_id)
        .execute(&mut *tx)
        .await?;
        for c in old.difference(&new) {
            sqlx::query("DELETE FROM segment_members WHERE segment_id = $1 AND customer_id = $2")
                .bind(segment_id)
                .bind(*c)
                .execute(&mut *tx)
                .await?;
        }
        let rows = new
            .difference(&old)
            .map(|c| vec![(*c).into(), segment_id.into(), now.into()])
            .collect();
        insert(
            &mut tx,
            self.backend,
            "segment_members",
            &["customer_id", "segment_id", "since"],
            "",
            rows,
        )
        .await?;
        insert(
            &mut tx,
            self.backend,
            "segment_history",
            &["segment_id", "customer_id", "change", "at"],
            "",
            history,
        )
        .await?;
        sqlx::query("UPDATE segments SET updated_at = $1 WHERE segment_id = $2")
            .bind(now)
            .bind(segment_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((entered, left))
    }
}
