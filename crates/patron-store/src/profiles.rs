//! Reading profiles back: search, the customer 360° view, the overview, and CSV-shaped export
//! rows. This is the only place personal fields are decrypted for reading.

use crate::{Result, Store, StoreError};
use futures_util::TryStreamExt;
use patron_domain::{CleanConfig, Email, PersonName, Phone};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A search hit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CustomerSummary {
    /// Profile id.
    pub customer_id: i64,
    /// Full name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone (E.164).
    pub phone: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// Source records in the profile.
    pub records: i64,
}

impl CustomerSummary {
    /// The summary with personal fields masked (for analysts).
    pub fn masked(mut self) -> Self {
        use patron_domain::mask;
        self.name = self.name.as_deref().map(mask::name);
        self.email = self.email.as_deref().map(mask::email);
        self.phone = self.phone.as_deref().map(mask::phone);
        self
    }
}

impl CustomerDetail {
    /// The view with personal fields masked (for analysts): names, emails and phones masked,
    /// the birth date to its year, the street address left out; ids, city, country, orders,
    /// metrics and segments as they are.
    pub fn masked(mut self) -> Self {
        use patron_domain::mask;
        self.summary = self.summary.masked();
        self.birth_date = self.birth_date.as_deref().map(mask::birth_date);
        self.address = None;
        for r in &mut self.identities {
            r.name = r.name.as_deref().map(mask::name);
            r.email = r.email.as_deref().map(mask::email);
            r.phone = r.phone.as_deref().map(mask::phone);
        }
        self
    }
}

/// A source record as shown in the customer view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordView {
    /// Source system.
    pub source: String,
    /// Id in the source.
    pub source_id: String,
    /// Name as that source has it.
    pub name: Option<String>,
    /// Email as that source has it.
    pub email: Option<String>,
    /// Phone as that source has it.
    pub phone: Option<String>,
    /// When Patron received it (ms since epoch).
    pub received_at: i64,
}

/// A customer's order totals.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OrderSummary {
    /// Completed orders.
    pub orders: i64,
    /// Cancelled or refunded orders.
    pub reversed_orders: i64,
    /// First completed order (ms since epoch).
    pub first_order_at: Option<i64>,
    /// Last completed order (ms since epoch).
    pub last_order_at: Option<i64>,
    /// Spend of completed orders per currency, minor units.
    pub spend: Vec<(String, i64)>,
}

/// A stored recommendation with product details.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recommendation {
    /// 1-based rank.
    pub rank: i64,
    /// Product id.
    pub product_id: String,
    /// Product name.
    pub name: Option<String>,
    /// Product category.
    pub category: Option<String>,
    /// Score.
    pub score: f64,
    /// Why.
    pub reason: String,
}

/// The 360° view of one customer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CustomerDetail {
    /// Golden fields.
    #[serde(flatten)]
    pub summary: CustomerSummary,
    /// Gender code.
    pub gender: Option<String>,
    /// Birth date (ISO 8601).
    pub birth_date: Option<String>,
    /// Postal address parts.
    pub address: Option<serde_json::Value>,
    /// The source each golden field's value came from (field → source).
    pub field_sources: Option<serde_json::Value>,
    /// The source records unified into this profile.
    pub identities: Vec<RecordView>,
    /// Its records' tags, each once.
    pub tags: Vec<String>,
    /// Standing marketing consent per channel stated by any record (channel → latest
    /// statement); a channel absent here has none.
    pub consent: std::collections::BTreeMap<&'static str, patron_domain::Standing>,
    /// Order totals.
    pub order_summary: OrderSummary,
    /// RFM metrics, when computed.
    pub rfm: Option<serde_json::Value>,
    /// Forecasts, when computed.
    pub predictions: Option<serde_json::Value>,
    /// Segments the customer is in.
    pub segments: Vec<String>,
    /// Stored recommendations.
    pub recommendations: Vec<Recommendation>,
    /// Open and closed tickets.
    pub tickets: i64,
}

/// Headline numbers for the dashboard.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Overview {
    /// Golden profiles.
    pub customers: i64,
    /// Imported source records.
    pub source_records: i64,
    /// Orders.
    pub orders: i64,
    /// Order lines.
    pub order_lines: i64,
    /// Products.
    pub products: i64,
    /// Behavioural events.
    pub events: i64,
    /// Tickets.
    pub tickets: i64,
    /// Quarantined values and rows.
    pub quarantined: i64,
    /// Revenue of completed orders per currency, minor units.
    pub revenue: Vec<(String, i64)>,
    /// Segment sizes.
    pub segments: Vec<(String, i64)>,
}

/// One exported profile.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileRow {
    /// Profile id.
    pub customer_id: i64,
    /// Full name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Gender code.
    pub gender: Option<String>,
    /// Birth date.
    pub birth_date: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Number of source records.
    pub records: i64,
}

/// One exported record → profile link.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkRow {
    /// Source system.
    pub source: String,
    /// Id in the source.
    pub source_id: String,
    /// Profile id (empty before the first unify run).
    pub customer_id: Option<i64>,
}

const SUMMARY_COLS: &str =
    "c.customer_id, c.name_enc, c.email_enc, c.phone_enc, c.city, c.country, c.records";

impl Store {
    fn summary(&self, row: &AnyRow) -> Result<CustomerSummary> {
        Ok(CustomerSummary {
            customer_id: row.try_get("customer_id")?,
            name: self.open_opt(row, "name_enc")?,
            email: self.open_opt(row, "email_enc")?,
            phone: self.open_opt(row, "phone_enc")?,
            city: row.try_get("city")?,
            country: row.try_get("country")?,
            records: row.try_get("records")?,
        })
    }

    /// Finds customers by email, phone or name (exact after normalization, via blind indexes).
    pub async fn search(
        &self,
        q: &str,
        clean: &CleanConfig,
        limit: i64,
    ) -> Result<Vec<CustomerSummary>> {
        let q = q.trim();
        let mut hashes: Vec<(&str, Vec<u8>)> = Vec::new();
        if let Ok(e) = Email::parse(q) {
            hashes.push(("identity", self.vault.blind("email", &e.match_key())));
        }
        if let Ok(p) = Phone::parse(q, clean.default_region) {
            hashes.push(("identity", self.vault.blind("phone", p.as_str())));
        }
        if let Ok(n) = PersonName::parse(q) {
            // The name as typed, and its order-independent keys (so "Zhang Wei" finds 张伟).
            let mut keys = vec![n.as_str().to_lowercase()];
            keys.extend(n.match_keys());
            keys.dedup();
            for k in keys {
                hashes.push(("name", self.vault.blind("name", &k)));
            }
        }
        let mut out: Vec<CustomerSummary> = Vec::new();
        for (table, hash) in hashes {
            let sql = if table == "identity" {
                format!(
                    "SELECT {SUMMARY_COLS} FROM customers c WHERE c.customer_id IN \
                         (SELECT customer_id FROM identities WHERE value_hash = $1) \
                         ORDER BY c.customer_id LIMIT $2"
                )
            } else {
                format!(
                    "SELECT {SUMMARY_COLS} FROM customers c WHERE c.customer_id IN \
                         (SELECT customer_id FROM name_index WHERE token_hash = $1) \
                         ORDER BY c.customer_id LIMIT $2"
                )
            };
            for row in sqlx::query(&sql)
                .bind(hash)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            {
                let s = self.summary(&row)?;
                if !out.iter().any(|o| o.customer_id == s.customer_id) {
                    out.push(s);
                }
            }
        }
        out.truncate(limit.max(0) as usize);
        Ok(out)
    }

    /// The 360° view of one customer; `None` if no such profile.
    pub async fn customer(&self, id: i64) -> Result<Option<CustomerDetail>> {
        let Some(row) = sqlx::query(&format!(
            "SELECT {SUMMARY_COLS}, c.gender, c.birth_date_enc, c.address_enc, c.field_sources \
             FROM customers c \
             WHERE c.customer_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let summary = self.summary(&row)?;
        let address = self
            .open_opt(&row, "address_enc")?
            .and_then(|a| serde_json::from_str(&a).ok());
        let mut identities = Vec::new();
        let mut tags: Vec<String> = Vec::new();
        for r in sqlx::query(
            "SELECT source, source_id, name_enc, email_enc, phone_enc, received_at, tags \
             FROM source_records WHERE customer_id = $1 ORDER BY received_at, record_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        {
            if let Some(t) = r.try_get::<Option<String>, _>("tags")? {
                crate::add_tags(&mut tags, &t);
            }
            identities.push(RecordView {
                source: r.try_get("source")?,
                source_id: r.try_get("source_id")?,
                name: self.open_opt(&r, "name_enc")?,
                email: self.open_opt(&r, "email_enc")?,
                phone: self.open_opt(&r, "phone_enc")?,
                received_at: r.try_get("received_at")?,
            });
        }
        let mut order_summary = OrderSummary::default();
        for r in sqlx::query(
            "SELECT o.status, o.currency, COUNT(DISTINCT o.order_id) AS n, MIN(o.placed_at) AS first_at, \
             MAX(o.placed_at) AS last_at, CAST(SUM(l.quantity * l.unit_price_minor) AS BIGINT) AS amount \
             FROM orders o JOIN order_lines l ON l.source = o.source AND l.order_id = o.order_id \
             WHERE o.customer_id = $1 GROUP BY o.status, o.currency ORDER BY o.currency",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        {
            let status: String = r.try_get("status")?;
            let n: i64 = r.try_get("n")?;
            if status != "completed" {
                order_summary.reversed_orders += n;
                continue;
            }
            order_summary.orders += n;
            let (first, last): (i64, i64) = (r.try_get("first_at")?, r.try_get("last_at")?);
            order_summary.first_order_at = Some(order_summary.first_order_at.map_or(first, |f| f.min(first)));
            order_summary.last_order_at = Some(order_summary.last_order_at.map_or(last, |l| l.max(last)));
            order_summary.spend.push((r.try_get("currency")?, r.try_get("amount")?));
        }
        let rfm = sqlx::query(
            "SELECT recency_days, frequency, monetary_minor, currency, r, f, m, rfm_segment \
             FROM customer_metrics WHERE customer_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| -> Result<serde_json::Value> {
            Ok(serde_json::json!({
                "recency_days": r.try_get::<i64, _>(0)?,
                "frequency": r.try_get::<i64, _>(1)?,
                "monetary_minor": r.try_get::<i64, _>(2)?,
                "currency": r.try_get::<String, _>(3)?,
                "r": r.try_get::<i64, _>(4)?,
                "f": r.try_get::<i64, _>(5)?,
                "m": r.try_get::<i64, _>(6)?,
                "segment": r.try_get::<String, _>(7)?,
            }))
        })
        .transpose()?;
        let predictions = sqlx::query(
            "SELECT model, expected_purchases_90d, clv_12m_minor, currency, p_alive, churn_risk \
             FROM customer_predictions WHERE customer_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| -> Result<serde_json::Value> {
            Ok(serde_json::json!({
                "model": r.try_get::<String, _>(0)?,
                "expected_purchases_90d": r.try_get::<f64, _>(1)?,
                "clv_12m_minor": r.try_get::<i64, _>(2)?,
                "currency": r.try_get::<String, _>(3)?,
                "p_alive": r.try_get::<Option<f64>, _>(4)?,
                "churn_risk": r.try_get::<Option<String>, _>(5)?,
            }))
        })
        .transpose()?;
        let segments = sqlx::query(
            "SELECT s.name FROM segment_members m JOIN segments s ON s.segment_id = m.segment_id \
             WHERE m.customer_id = $1 ORDER BY s.name",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let recommendations = self.recommendations(id, 100).await?;
        let tickets = self
            .count(
                "SELECT COUNT(*) FROM tickets WHERE customer_id = $1",
                Some(id),
            )
            .await?;
        Ok(Some(CustomerDetail {
            gender: row.try_get("gender")?,
            birth_date: self.open_opt(&row, "birth_date_enc")?,
            address,
            field_sources: row
                .try_get::<Option<String>, _>("field_sources")?
                .and_then(|s| serde_json::from_str(&s).ok()),
            summary,
            identities,
            tags,
            consent: self
                .consents(Some(id))
                .await?
                .remove(&id)
                .into_iter()
                .flat_map(|c| {
                    patron_domain::Channel::ALL
                        .iter()
                        .map(|ch| ch.as_str())
                        .zip(c)
                })
                .filter_map(|(ch, s)| Some((ch, s?)))
                .collect(),
            order_summary,
            rfm,
            predictions,
            segments,
            recommendations,
            tickets,
        }))
    }

    async fn count(&self, sql: &str, arg: Option<i64>) -> Result<i64> {
        let mut q = sqlx::query(sql);
        if let Some(a) = arg {
            q = q.bind(a);
        }
        Ok(q.fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// Headline numbers.
    pub async fn overview(&self) -> Result<Overview> {
        let mut o = Overview {
            customers: self.count("SELECT COUNT(*) FROM customers", None).await?,
            source_records: self
                .count("SELECT COUNT(*) FROM source_records", None)
                .await?,
            orders: self.count("SELECT COUNT(*) FROM orders", None).await?,
            order_lines: self.count("SELECT COUNT(*) FROM order_lines", None).await?,
            products: self.count("SELECT COUNT(*) FROM products", None).await?,
            events: self.count("SELECT COUNT(*) FROM events", None).await?,
            tickets: self.count("SELECT COUNT(*) FROM tickets", None).await?,
            quarantined: self.count("SELECT COUNT(*) FROM quarantine", None).await?,
            ..Overview::default()
        };
        for r in sqlx::query(
            "SELECT o.currency, CAST(SUM(l.quantity * l.unit_price_minor) AS BIGINT) FROM orders o \
             JOIN order_lines l ON l.source = o.source AND l.order_id = o.order_id \
             WHERE o.status = 'completed' GROUP BY o.currency ORDER BY o.currency",
        )
        .fetch_all(&self.pool)
        .await?
        {
            o.revenue.push((r.try_get(0)?, r.try_get(1)?));
        }
        for r in sqlx::query(
            "SELECT s.name, COUNT(m.customer_id) AS n FROM segments s \
             LEFT JOIN segment_members m ON m.segment_id = s.segment_id \
             GROUP BY s.name ORDER BY n DESC, s.name",
        )
        .fetch_all(&self.pool)
        .await?
        {
            o.segments.push((r.try_get(0)?, r.try_get(1)?));
        }
        Ok(o)
    }

    /// Streams golden profiles, decrypted, in id order: all of them, or those `only` holds
    /// (only those are decrypted).
    pub async fn export_profiles(
        &self,
        only: Option<&std::collections::HashSet<i64>>,
        mut each: impl FnMut(ProfileRow) -> std::io::Result<()>,
    ) -> Result<u64> {
        let mut rows = sqlx::query(
            "SELECT customer_id, name_enc, email_enc, phone_enc, gender, birth_date_enc, city, \
             country, records FROM customers ORDER BY customer_id",
        )
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(r) = rows.try_next().await? {
            let customer_id: i64 = r.try_get("customer_id")?;
            if only.is_some_and(|o| !o.contains(&customer_id)) {
                continue;
            }
            each(ProfileRow {
                customer_id,
                name: self.open_opt(&r, "name_enc")?,
                email: self.open_opt(&r, "email_enc")?,
                phone: self.open_opt(&r, "phone_enc")?,
                gender: r.try_get("gender")?,
                birth_date: self.open_opt(&r, "birth_date_enc")?,
                city: r.try_get("city")?,
                country: r.try_get("country")?,
                records: r.try_get("records")?,
            })
            .map_err(io_err)?;
            n += 1;
        }
        Ok(n)
    }

    /// Streams source → profile links for every imported record.
    pub async fn export_links(
        &self,
        mut each: impl FnMut(LinkRow) -> std::io::Result<()>,
    ) -> Result<u64> {
        let mut rows = sqlx::query(
            "SELECT source, source_id, customer_id FROM source_records ORDER BY source, source_id",
        )
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(r) = rows.try_next().await? {
            each(LinkRow {
                source: r.try_get(0)?,
                source_id: r.try_get(1)?,
                customer_id: r.try_get(2)?,
            })
            .map_err(io_err)?;
            n += 1;
        }
        Ok(n)
    }

    /// Streams (segment name, kind, customer id) memberships.
    pub async fn export_segments(
        &self,
        mut each: impl FnMut(String, String, i64) -> std::io::Result<()>,
    ) -> Result<u64> {
        let mut rows = sqlx::query(
            "SELECT s.name, s.kind, m.customer_id FROM segment_members m \
             JOIN segments s ON s.segment_id = m.segment_id ORDER BY s.name, m.customer_id",
        )
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(r) = rows.try_next().await? {
            each(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?).map_err(io_err)?;
            n += 1;
        }
        Ok(n)
    }

    /// Streams stored recommendations.
    pub async fn export_recommendations(
        &self,
        mut each: impl FnMut(crate::RecommendationRow) -> std::io::Result<()>,
    ) -> Result<u64> {
        let mut rows = sqlx::query(
            "SELECT customer_id, rank, product_id, score, reason FROM recommendations \
             ORDER BY customer_id, rank",
        )
        .fetch(&self.pool);
        let mut n = 0;
        while let Some(r) = rows.try_next().await? {
            each(crate::RecommendationRow {
                customer_id: r.try_get(0)?,
                rank: r.try_get(1)?,
                product_id: r.try_get(2)?,
                score: r.try_get(3)?,
                reason: r.try_get(4)?,
            })
            .map_err(io_err)?;
            n += 1;
        }
        Ok(n)
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Write(e)
}
