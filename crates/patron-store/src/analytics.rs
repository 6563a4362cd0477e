//! The analyze stages' storage side: a compact order snapshot for the engine, and bulk writes
//! of metrics, RFM segments and recommendations.

use crate::bulk::{insert, Val};
use crate::{now_ms, Result, Store};
use futures_util::TryStreamExt;
use sqlx::Row;
use std::collections::HashMap;

/// One order of a known customer, summed over its lines.
#[derive(Debug, Clone)]
pub struct OrderFact {
    /// Dense customer index into [`OrderSnapshot::customers`].
    pub customer: u32,
    /// Milliseconds since the epoch, UTC.
    pub placed_at: i64,
    /// `completed`, `cancelled` or `refunded`.
    pub status: String,
    /// Sum of quantity × unit price, minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Index into [`OrderSnapshot::channels`]: the source the order came from.
    pub channel: u16,
}

/// Everything the RFM and recommendation stages read, with dense indexes.
#[derive(Debug, Default)]
pub struct OrderSnapshot {
    /// Dense customer index → profile id.
    pub customers: Vec<i64>,
    /// Orders of known customers.
    pub orders: Vec<OrderFact>,
    /// Dense item index → product id.
    pub products: Vec<String>,
    /// Whether each product may be recommended.
    pub active: Vec<bool>,
    /// Distinct (customer index, item index) purchase pairs.
    pub purchases: Vec<(u32, u32)>,
    /// The sources orders came from (web, app, pos, ...), indexed by [`OrderFact::channel`].
    pub channels: Vec<String>,
    /// Product categories, indexed by `category_spend`.
    pub categories: Vec<String>,
    /// (customer index, category index, spend in minor units) of completed orders, for
    /// each customer and category of a catalogued product it bought.
    pub category_spend: Vec<(u32, u16, i64)>,
    /// Orders whose buyer matches no imported customer record.
    pub unattributed_orders: i64,
}

/// One customer's RFM result.
#[derive(Debug, Clone)]
pub struct MetricRow {
    /// Profile id.
    pub customer_id: i64,
    /// Days since the last order.
    pub recency_days: i64,
    /// Number of orders.
    pub frequency: i64,
    /// Spend in minor units of `currency`.
    pub monetary_minor: i64,
    /// Reporting currency.
    pub currency: String,
    /// Recency score.
    pub r: i64,
    /// Frequency score.
    pub f: i64,
    /// Monetary score.
    pub m: i64,
    /// Named RFM segment.
    pub segment: String,
}

/// One customer's forecast.
#[derive(Debug, Clone)]
pub struct PredictionRow {
    /// Profile id.
    pub customer_id: i64,
    /// The model that made it.
    pub model: &'static str,
    /// Expected orders in the next 90 days.
    pub expected_purchases_90d: f64,
    /// Expected spend in the next 12 months, minor units of `currency`.
    pub clv_12m_minor: i64,
    /// Reporting currency.
    pub currency: String,
    /// Probability the customer is still active (models that estimate it).
    pub p_alive: Option<f64>,
    /// `high`, `medium` or `low` churn risk, from `p_alive`.
    pub churn_risk: Option<&'static str>,
}

/// One stored recommendation.
#[derive(Debug, Clone)]
pub struct RecommendationRow {
    /// Profile id.
    pub customer_id: i64,
    /// 1-based rank.
    pub rank: i64,
    /// Recommended product.
    pub product_id: String,
    /// Model score.
    pub score: f64,
    /// Why, in words.
    pub reason: String,
}

/// Dense indexes for a few distinct names (sources, categories).
#[derive(Default)]
struct Interner(HashMap<String, u16>);

impl Interner {
    /// The index of `name` in `names`, adding it when new; `None` past 65,535 names.
    fn index(&mut self, names: &mut Vec<String>, name: String) -> Option<u16> {
        if let Some(&i) = self.0.get(&name) {
            return Some(i);
        }
        let i = u16::try_from(names.len()).ok()?;
        names.push(name.clone());
        self.0.insert(name, i);
        Some(i)
    }
}

impl Store {
    /// Reads orders, products and purchases for the analyze stages.
    pub async fn order_snapshot(&self) -> Result<OrderSnapshot> {
        let mut snap = OrderSnapshot::default();
        let mut customer_index: HashMap<i64, u32> = HashMap::new();
        let mut rows =
            sqlx::query("SELECT customer_id FROM customers ORDER BY customer_id").fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let id: i64 = row.try_get(0)?;
            customer_index.insert(id, snap.customers.len() as u32);
            snap.customers.push(id);
        }
        drop(rows);
        let orders_sql = "SELECT o.customer_id, o.placed_at, o.status, o.currency, \
             CAST(SUM(l.quantity * l.unit_price_minor) AS BIGINT) AS amount, o.source \
             FROM orders o JOIN order_lines l ON l.source = o.source AND l.order_id = o.order_id \
             WHERE o.customer_id IS NOT NULL \
             GROUP BY o.source, o.order_id, o.customer_id, o.placed_at, o.status, o.currency";
        // (profile id, source, fact with the id and channel not yet made dense)
        let orders: Vec<(i64, String, OrderFact)> = match &self.native {
            // Millions of rows: the pool's per-value copies would dominate the load.
            Some(native) => {
                native
                    .query(orders_sql.to_owned(), |r| {
                        Ok((
                            r.get(0)?,
                            r.get(5)?,
                            OrderFact {
                                customer: 0,
                                placed_at: r.get(1)?,
                                status: r.get(2)?,
                                currency: r.get(3)?,
                                amount: r.get(4)?,
                                channel: 0,
                            },
                        ))
                    })
                    .await?
            }
            None => {
                let mut out = Vec::new();
                let mut rows = sqlx::query(orders_sql).fetch(&self.pool);
                while let Some(row) = rows.try_next().await? {
                    out.push((
                        row.try_get(0)?,
                        row.try_get(5)?,
                        OrderFact {
                            customer: 0,
                            placed_at: row.try_get(1)?,
                            status: row.try_get(2)?,
                            currency: row.try_get(3)?,
                            amount: row.try_get(4)?,
                            channel: 0,
                        },
                    ));
                }
                out
            }
        };
        let mut channels = Interner::default();
        for (id, source, mut fact) in orders {
            if let Some(&customer) = customer_index.get(&id) {
                fact.customer = customer;
                // Beyond 65,535 sources the rest share the last index; no retailer has that many.
                fact.channel = channels
                    .index(&mut snap.channels, source)
                    .unwrap_or(u16::MAX);
                snap.orders.push(fact);
            }
        }
        snap.unattributed_orders =
            sqlx::query("SELECT COUNT(*) FROM orders WHERE customer_id IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        let mut item_index: HashMap<String, u32> = HashMap::new();
        // Per product, its category's index.
        let mut item_category: Vec<Option<u16>> = Vec::new();
        let mut categories = Interner::default();
        let mut rows =
            sqlx::query("SELECT product_id, active, category FROM products ORDER BY product_id")
                .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let id: String = row.try_get(0)?;
            let active: i64 = row.try_get(1)?;
            let category: Option<String> = row.try_get(2)?;
            item_index.insert(id.clone(), snap.products.len() as u32);
            snap.products.push(id);
            snap.active.push(active != 0);
            item_category.push(category.and_then(|c| categories.index(&mut snap.categories, c)));
        }
        drop(rows);
        let purchases_sql = "SELECT l.customer_id, l.product_id, \
             CAST(SUM(l.quantity * l.unit_price_minor) AS BIGINT) FROM order_lines l \
             JOIN orders o ON o.source = l.source AND o.order_id = l.order_id \
             WHERE l.customer_id IS NOT NULL AND o.status = 'completed' \
             GROUP BY l.customer_id, l.product_id";
        let purchases: Vec<(i64, String, i64)> = match &self.native {
            Some(native) => {
                native
                    .query(purchases_sql.to_owned(), |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .await?
            }
            None => {
                let mut out = Vec::new();
                let mut rows = sqlx::query(purchases_sql).fetch(&self.pool);
                while let Some(row) = rows.try_next().await? {
                    out.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
                }
                out
            }
        };
        let mut spend: HashMap<(u32, u16), i64> = HashMap::new();
        for (c, p, amount) in purchases {
            // Lines naming products missing from the catalog cannot be recommended; skip them.
            if let (Some(&c), Some(&p)) = (customer_index.get(&c), item_index.get(&p)) {
                snap.purchases.push((c, p));
                if let Some(cat) = item_category[p as usize] {
                    *spend.entry((c, cat)).or_default() += amount;
                }
            }
        }
        snap.category_spend = spend.into_iter().map(|((c, k), a)| (c, k, a)).collect();
        snap.category_spend.sort_unstable();
        Ok(snap)
    }

    /// Replaces all RFM metrics and the RFM segments' memberships.
    pub async fn write_metrics(&self, metrics: Vec<MetricRow>) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM customer_metrics")
            .execute(&mut *tx)
            .await?;
        let members: Vec<(i64, String)> = metrics
            .iter()
            .map(|m| (m.customer_id, m.segment.clone()))
            .collect();
        let rows = metrics
            .into_iter()
            .map(|m| {
                vec![
                    m.customer_id.into(),
                    m.recency_days.into(),
                    m.frequency.into(),
                    m.monetary_minor.into(),
                    m.currency.into(),
                    m.r.into(),
                    m.f.into(),
                    m.m.into(),
                    m.segment.into(),
                    now.into(),
                ]
            })
            .collect();
        insert(
            &mut tx,
            self.backend,
            "customer_metrics",
            &[
                "customer_id",
                "recency_days",
                "frequency",
                "monetary_minor",
                "currency",
                "r",
                "f",
                "m",
                "rfm_segment",
                "computed_at",
            ],
            "",
            rows,
        )
        .await?;
        replace_memberships(&mut tx, self.backend, "rfm", members).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the behaviour clusters: `(customer, cluster name)` for every clustered
    /// customer. Clusters of earlier runs that are gone are removed.
    pub async fn write_clusters(&self, members: Vec<(i64, String)>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        replace_memberships(&mut tx, self.backend, "cluster", members).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces all stored predictions.
    pub async fn write_predictions(&self, rows: Vec<PredictionRow>) -> Result<()> {
        let now = now_ms();
        let rows = rows
            .into_iter()
            .map(|p| {
                vec![
                    p.customer_id.into(),
                    p.model.into(),
                    p.expected_purchases_90d.into(),
                    p.clv_12m_minor.into(),
                    p.currency.into(),
                    now.into(),
                    p.p_alive.into(),
                    p.churn_risk.map(str::to_owned).into(),
                ]
            })
            .collect();
        let columns = [
            "customer_id",
            "model",
            "expected_purchases_90d",
            "clv_12m_minor",
            "currency",
            "computed_at",
            "p_alive",
            "churn_risk",
        ];
        self.replace_all("customer_predictions", &columns, rows)
            .await
    }

    /// Replaces all stored recommendations.
    pub async fn write_recommendations(&self, recs: Vec<RecommendationRow>) -> Result<()> {
        let now = now_ms();
        let rows = recs
            .into_iter()
            .map(|r| {
                vec![
                    r.customer_id.into(),
                    r.rank.into(),
                    r.product_id.into(),
                    r.score.into(),
                    r.reason.into(),
                    now.into(),
                ]
            })
            .collect();
        let columns = [
            "customer_id",
            "rank",
            "product_id",
            "score",
            "reason",
            "computed_at",
        ];
        self.replace_all("recommendations", &columns, rows).await
    }

    /// Swaps a stage's whole result table in one transaction, so readers see the old result or
    /// the new one, never a mix.
    async fn replace_all(&self, table: &str, columns: &[&str], rows: Vec<Vec<Val>>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
        insert(&mut tx, self.backend, table, columns, "", rows).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Replaces the memberships of the segments of one `kind` (computed, not rule, segments):
/// the segments named in `members` are created if new, the kind's segments no longer named
/// are removed, and every member is replaced. A name already taken by a segment of another
/// kind is left alone.
async fn replace_memberships(
    tx: &mut sqlx::AnyConnection,
    backend: crate::Backend,
    kind: &str,
    members: Vec<(i64, String)>,
) -> Result<()> {
    let now = now_ms();
    let mut names: Vec<&String> = members.iter().map(|(_, n)| n).collect();
    names.sort();
    names.dedup();
    let rows = names
        .iter()
        .map(|n| vec![n.as_str().into(), kind.into(), now.into(), now.into()])
        .collect();
    insert(
        &mut *tx,
        backend,
        "segments",
        &["name", "kind", "created_at", "updated_at"],
        "ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
        rows,
    )
    .await?;
    sqlx::query(
        "DELETE FROM segment_members WHERE segment_id IN \
         (SELECT segment_id FROM segments WHERE kind = $1)",
    )
    .bind(kind)
    .execute(&mut *tx)
    .await?;
    let mut ids = HashMap::new();
    for row in sqlx::query("SELECT segment_id, name FROM segments WHERE kind = $1")
        .bind(kind)
        .fetch_all(&mut *tx)
        .await?
    {
        let (id, name): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        if names.contains(&&name) {
            ids.insert(name, id);
        } else {
            sqlx::query("DELETE FROM segments WHERE segment_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let rows = members
        .into_iter()
        .filter_map(|(c, s)| Some(vec![c.into(), (*ids.get(&s)?).into(), now.into()]))
        .collect();
    insert(
        &mut *tx,
        backend,
        "segment_members",
        &["customer_id", "segment_id", "since"],
        "",
        rows,
    )
    .await?;
    Ok(())
}
