//! The analyze stages' storage side: a compact order snapshot for the engine, and bulk writes
//! of metrics, RFM segments and recommendations.

use crate::bulk::{insert, Val};
use crate::{now_ms, Result, Store};
use futures_util::TryStreamExt;
use rustc_hash::FxHashMap;
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Arc;

/// One order of a known customer, summed over its lines.
#[derive(Debug, Clone)]
pub struct OrderFact {
    /// Dense customer index into [`OrderSnapshot::customers`].
    pub customer: u32,
    /// Milliseconds since the epoch, UTC.
    pub placed_at: i64,
    /// `completed`, `cancelled` or `refunded` (shared: there are three).
    pub status: Arc<str>,
    /// Sum of quantity × unit price, minor units.
    pub amount: i64,
    /// ISO 4217 code (shared among the orders in it).
    pub currency: Arc<str>,
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
    fn index(&mut self, names: &mut Vec<String>, name: &str) -> Option<u16> {
        if let Some(&i) = self.0.get(name) {
            return Some(i);
        }
        let i = u16::try_from(names.len()).ok()?;
        names.push(name.to_owned());
        self.0.insert(name.to_owned(), i);
        Some(i)
    }
}

/// Builds the snapshot from one sequential pass over orders and one over their lines, in
/// whatever order the tables hold them: at ten million lines, index-ordered joins and
/// grouping in the database cost random reads per line, while a scan is one read per page.
/// The tables are written in import order, so a line's order is almost always the previous
/// line's or the one after it; only the others are searched for.
#[derive(Default)]
struct SnapshotBuilder {
    snap: OrderSnapshot,
    /// Dense index by profile id − the smallest id (`u32::MAX`: no such profile). Profile
    /// ids are handed out in sequence, so this table is small and one read per order, where
    /// a hash map of a million ids is two cache misses.
    customer_table: Option<(i64, Vec<u32>)>,
    item_index: FxHashMap<Vec<u8>, u32>,
    item_category: Vec<Option<u16>>,
    channels: Interner,
    categories: Interner,
    /// Statuses and currencies, each allocated once.
    words: FxHashMap<String, Arc<str>>,
    /// Every order read, in table order (`customer` is `u32::MAX` for orders of no known
    /// customer, which are left out at the end).
    facts: Vec<OrderFact>,
    /// Whether each fact has a line (orders without lines are no orders).
    has_line: Vec<bool>,
    /// The orders' keys, `source \0 order_id`, one after another in one buffer (millions of
    /// orders, no allocation each); fact i's key ends at `key_end[i]`.
    keys: Vec<u8>,
    key_end: Vec<usize>,
    /// The fact the previous line belonged to.
    last: Option<usize>,
    /// Facts sorted by key, made the first time a line is not next to its order.
    sorted: Option<Vec<u32>>,
    /// (customer, item, amount) of each line of a completed order.
    lines: Vec<(u32, u32, i64)>,
}

impl SnapshotBuilder {
    /// Profiles in ascending id order.
    fn customer(&mut self, id: i64) {
        self.snap.customers.push(id);
    }

    /// The dense index of profile `id`.
    fn customer_index(&mut self, id: i64) -> Option<u32> {
        let customers = &self.snap.customers;
        let (min, table) = self.customer_table.get_or_insert_with(|| {
            let (Some(&min), Some(&max)) = (customers.first(), customers.last()) else {
                return (0, Vec::new());
            };
            // Far sparser ids (none Patron makes) fall back to a binary search below.
            if max - min > 4 * customers.len() as i64 + 1_000_000 {
                return (min, Vec::new());
            }
            let mut table = vec![u32::MAX; (max - min + 1) as usize];
            for (i, &c) in customers.iter().enumerate() {
                table[(c - min) as usize] = i as u32;
            }
            (min, table)
        });
        if table.is_empty() {
            return customers.binary_search(&id).ok().map(|i| i as u32);
        }
        let at = usize::try_from(id - *min).ok()?;
        table.get(at).copied().filter(|&i| i != u32::MAX)
    }

    fn product(&mut self, id: &str, active: bool, category: Option<&str>) {
        self.item_index
            .insert(id.as_bytes().to_vec(), self.snap.products.len() as u32);
        self.snap.products.push(id.to_owned());
        self.snap.active.push(active);
        let category = category.and_then(|c| self.categories.index(&mut self.snap.categories, c));
        self.item_category.push(category);
    }

    fn order(
        &mut self,
        source: &str,
        order_id: &str,
        customer_id: Option<i64>,
        placed_at: i64,
        status: &str,
        currency: &str,
    ) {
        let customer = match customer_id {
            None => {
                self.snap.unattributed_orders += 1;
                return;
            }
            Some(id) => self.customer_index(id).unwrap_or(u32::MAX),
        };
        // Consecutive orders mostly share their source, status and currency.
        let previous = self.facts.last();
        let channel = match previous {
            Some(p)
                if self
                    .snap
                    .channels
                    .get(usize::from(p.channel))
                    .is_some_and(|c| c == source) =>
            {
                p.channel
            }
            // Beyond 65,535 sources the rest share the last index; no retailer has that many.
            _ => self
                .channels
                .index(&mut self.snap.channels, source)
                .unwrap_or(u16::MAX),
        };
        let words = &mut self.words;
        let mut word = |w: &str, previous: Option<&Arc<str>>| match previous {
            Some(p) if &**p == w => p.clone(),
            _ => match words.get(w) {
                Some(shared) => shared.clone(),
                None => {
                    let shared: Arc<str> = Arc::from(w);
                    words.insert(w.to_owned(), shared.clone());
                    shared
                }
            },
        };
        let status = word(status, previous.map(|p| &p.status));
        let currency = word(currency, previous.map(|p| &p.currency));
        self.facts.push(OrderFact {
            customer,
            placed_at,
            status,
            amount: 0,
            currency,
            channel,
        });
        self.has_line.push(false);
        self.keys.extend_from_slice(source.as_bytes());
        self.keys.push(0);
        self.keys.extend_from_slice(order_id.as_bytes());
        self.key_end.push(self.keys.len());
    }

    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.key_end[i - 1] };
        &self.keys[start..self.key_end[i]]
    }

    fn is(&self, i: usize, source: &[u8], order_id: &[u8]) -> bool {
        let k = self.key(i);
        k.len() == source.len() + 1 + order_id.len()
            && k.starts_with(source)
            && k[source.len()] == 0
            && k.ends_with(order_id)
    }

    /// The fact of the order `(source, order_id)`, if it was read. Lines are compared as
    /// bytes: they only need to equal what was read as text.
    fn find(&mut self, source: &[u8], order_id: &[u8]) -> Option<usize> {
        if let Some(last) = self.last {
            for i in [last, last + 1] {
                if i < self.facts.len() && self.is(i, source, order_id) {
                    return Some(i);
                }
            }
        }
        if self.sorted.is_none() {
            let mut sorted: Vec<u32> = (0..self.facts.len() as u32).collect();
            sorted.sort_unstable_by(|&a, &b| self.key(a as usize).cmp(self.key(b as usize)));
            self.sorted = Some(sorted);
        }
        let sorted = self.sorted.as_ref()?;
        let wanted = [source, &[0], order_id].concat();
        let at = sorted
            .binary_search_by(|&f| self.key(f as usize).cmp(&wanted))
            .ok()?;
        Some(sorted[at] as usize)
    }

    fn line(
        &mut self,
        source: &[u8],
        order_id: &[u8],
        product_id: &[u8],
        quantity: i64,
        price: i64,
    ) {
        let Some(f) = self.find(source, order_id) else {
            return;
        };
        self.last = Some(f);
        let amount = quantity.saturating_mul(price);
        let order = &mut self.facts[f];
        order.amount = order.amount.saturating_add(amount);
        self.has_line[f] = true;
        // Lines naming products missing from the catalog cannot be recommended; skip them.
        if let (true, true, Some(&item)) = (
            order.customer != u32::MAX,
            &*order.status == "completed",
            self.item_index.get(product_id),
        ) {
            self.lines.push((order.customer, item, amount));
        }
    }

    fn finish(self) -> OrderSnapshot {
        let mut snap = self.snap;
        snap.orders = self
            .facts
            .into_iter()
            .zip(self.has_line)
            .filter_map(|(f, has)| (has && f.customer != u32::MAX).then_some(f))
            .collect();
        // Lines grouped by customer with a counting sort (customers are dense), then each
        // customer's few lines sorted by item: linear in the lines, where one sort of
        // millions of lines is not.
        let mut start = vec![0usize; snap.customers.len() + 1];
        for &(c, _, _) in &self.lines {
            start[c as usize + 1] += 1;
        }
        for c in 0..snap.customers.len() {
            start[c + 1] += start[c];
        }
        let mut next = start.clone();
        let mut grouped = vec![(0u32, 0i64); self.lines.len()];
        for &(c, item, amount) in &self.lines {
            grouped[next[c as usize]] = (item, amount);
            next[c as usize] += 1;
        }
        drop(self.lines);
        let mut by_category: Vec<(u16, i64)> = Vec::new();
        for c in 0..snap.customers.len() {
            let mine = &mut grouped[start[c]..start[c + 1]];
            mine.sort_unstable_by_key(|&(item, _)| item);
            by_category.clear();
            for (i, &(item, amount)) in mine.iter().enumerate() {
                if i == 0 || mine[i - 1].0 != item {
                    snap.purchases.push((c as u32, item));
                }
                if let Some(k) = self.item_category[item as usize] {
                    match by_category.iter_mut().find(|(have, _)| *have == k) {
                        Some((_, spent)) => *spent += amount,
                        None => by_category.push((k, amount)),
                    }
                }
            }
            by_category.sort_unstable();
            snap.category_spend
                .extend(by_category.iter().map(|&(k, spent)| (c as u32, k, spent)));
        }
        snap
    }
}

const SNAPSHOT_CUSTOMERS: &str = "SELECT customer_id FROM customers ORDER BY customer_id";
const SNAPSHOT_PRODUCTS: &str =
    "SELECT product_id, active, category FROM products ORDER BY product_id";
const SNAPSHOT_ORDERS: &str =
    "SELECT source, order_id, customer_id, placed_at, status, currency FROM orders";
const SNAPSHOT_LINES: &str =
    "SELECT source, order_id, product_id, quantity, unit_price_minor FROM order_lines";

impl Store {
    /// Reads orders, products and purchases for the analyze stages.
    pub async fn order_snapshot(&self) -> Result<OrderSnapshot> {
        if let Some(native) = &self.native {
            // Millions of rows: the pool's per-value copies would dominate the load.
            return native
                .read(|conn| {
                    let mut b = SnapshotBuilder::default();
                    let mut st = conn.prepare(SNAPSHOT_CUSTOMERS)?;
                    let mut rows = st.query([])?;
                    while let Some(r) = rows.next()? {
                        b.customer(r.get(0)?);
                    }
                    let mut st = conn.prepare(SNAPSHOT_PRODUCTS)?;
                    let mut rows = st.query([])?;
                    while let Some(r) = rows.next()? {
                        let active: i64 = r.get(1)?;
                        let category = r.get_ref(2)?.as_str_or_null()?;
                        b.product(r.get_ref(0)?.as_str()?, active != 0, category);
                    }
                    let mut st = conn.prepare(SNAPSHOT_ORDERS)?;
                    let mut rows = st.query([])?;
                    while let Some(r) = rows.next()? {
                        b.order(
                            r.get_ref(0)?.as_str()?,
                            r.get_ref(1)?.as_str()?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get_ref(4)?.as_str()?,
                            r.get_ref(5)?.as_str()?,
                        );
                    }
                    let mut st = conn.prepare(SNAPSHOT_LINES)?;
                    let mut rows = st.query([])?;
                    while let Some(r) = rows.next()? {
                        b.line(
                            r.get_ref(0)?.as_bytes()?,
                            r.get_ref(1)?.as_bytes()?,
                            r.get_ref(2)?.as_bytes()?,
                            r.get(3)?,
                            r.get(4)?,
                        );
                    }
                    Ok(b.finish())
                })
                .await;
        }
        let mut b = SnapshotBuilder::default();
        let mut rows = sqlx::query(SNAPSHOT_CUSTOMERS).fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            b.customer(r.try_get(0)?);
        }
        drop(rows);
        let mut rows = sqlx::query(SNAPSHOT_PRODUCTS).fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let active: i64 = r.try_get(1)?;
            let category: Option<String> = r.try_get(2)?;
            b.product(
                &r.try_get::<String, _>(0)?,
                active != 0,
                category.as_deref(),
            );
        }
        drop(rows);
        // Both in key order, so each order's lines follow it.
        let orders = format!("{SNAPSHOT_ORDERS} ORDER BY source, order_id");
        let mut rows = sqlx::query(&orders).fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            b.order(
                &r.try_get::<String, _>(0)?,
                &r.try_get::<String, _>(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                &r.try_get::<String, _>(4)?,
                &r.try_get::<String, _>(5)?,
            );
        }
        drop(rows);
        let lines = format!("{SNAPSHOT_LINES} ORDER BY source, order_id");
        let mut rows = sqlx::query(&lines).fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            b.line(
                r.try_get::<String, _>(0)?.as_bytes(),
                r.try_get::<String, _>(1)?.as_bytes(),
                r.try_get::<String, _>(2)?.as_bytes(),
                r.try_get(3)?,
                r.try_get(4)?,
            );
        }
        drop(rows);
        Ok(b.finish())
    }

    /// Replaces all RFM metrics and the RFM segments' memberships.
    pub async fn write_metrics(&self, metrics: Vec<MetricRow>) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_membership_change().await?;
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
        drop_gone_profiles(&mut tx, "customer_metrics").await?;
        replace_memberships(&mut tx, self.backend, "rfm", members).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the behaviour clusters: `(customer, cluster name)` for every clustered
    /// customer. Clusters of earlier runs that are gone are removed.
    pub async fn write_clusters(&self, members: Vec<(i64, String)>) -> Result<()> {
        let mut tx = self.begin_membership_change().await?;
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
    /// the new one, never a mix. A per-profile table keeps no rows of profiles gone since the
    /// stage read its input.
    pub(crate) async fn replace_all(
        &self,
        table: &str,
        columns: &[&str],
        rows: Vec<Vec<Val>>,
    ) -> Result<()> {
        let mut tx = self.begin_membership_change().await?;
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
        insert(&mut tx, self.backend, table, columns, "", rows).await?;
        if columns.contains(&"customer_id") {
            drop_gone_profiles(&mut tx, table).await?;
        }
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
    // Only this kind's: a rule segment's refresh writes who left it into its history.
    sqlx::query(&format!(
        "DELETE FROM segment_members WHERE segment_id IN \
         (SELECT segment_id FROM segments WHERE kind = $1) AND {}",
        gone("segment_members")
    ))
    .bind(kind)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Removes `table`'s rows of profiles that no longer exist. A stage computes from what it read
/// seconds or minutes before it writes: a person erased meanwhile (or a profile merged away)
/// would otherwise come back as its rows. Runs in the write's membership-change transaction,
/// so no erasure comes between it and the commit.
async fn drop_gone_profiles(tx: &mut sqlx::AnyConnection, table: &str) -> Result<()> {
    sqlx::query(&format!("DELETE FROM {table} WHERE {}", gone(table)))
        .execute(tx)
        .await?;
    Ok(())
}

/// The condition that a `table` row's profile no longer exists.
fn gone(table: &str) -> String {
    format!("NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_id = {table}.customer_id)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_find_their_orders_in_any_order() {
        let mut b = SnapshotBuilder::default();
        for id in [10, 11, 13] {
            b.customer(id);
        }
        b.product("p1", true, Some("Tea"));
        b.product("p2", true, None);
        for (source, order, customer, status) in [
            ("web", "1", Some(10), "completed"),
            ("web", "2", Some(13), "completed"),
            ("pos", "1", Some(11), "refunded"),
            ("pos", "2", None, "completed"),
            ("pos", "3", Some(99), "completed"),
            ("app", "9", Some(10), "completed"),
        ] {
            b.order(source, order, customer, 0, status, "USD");
        }
        // Out of table order, repeated, for a missing order, a missing product, and none for
        // app:9 (an order without lines is no order).
        for (source, order, product, qty) in [
            ("pos", "1", "p1", 1),
            ("web", "1", "p1", 2),
            ("web", "2", "p2", 1),
            ("web", "1", "p2", 1),
            ("web", "1", "p1", 1),
            ("web", "7", "p1", 1),
            ("web", "2", "gone", 3),
            ("pos", "3", "p1", 1),
        ] {
            b.line(
                source.as_bytes(),
                order.as_bytes(),
                product.as_bytes(),
                qty,
                100,
            );
        }
        let snap = b.finish();
        let orders: Vec<(u32, &str, i64)> = snap
            .orders
            .iter()
            .map(|o| (o.customer, &*o.status, o.amount))
            .collect();
        assert_eq!(
            orders,
            vec![
                (0, "completed", 400),
                (2, "completed", 400),
                (1, "refunded", 100)
            ]
        );
        assert_eq!(snap.unattributed_orders, 1);
        assert_eq!(snap.purchases, vec![(0, 0), (0, 1), (2, 1)]);
        assert_eq!(snap.categories, vec!["Tea"]);
        assert_eq!(snap.category_spend, vec![(0, 0, 300)]);
        assert_eq!(snap.channels, vec!["web", "pos", "app"]);
    }
}
