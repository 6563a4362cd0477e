//! Writing collected input: customer source records, products, order lines and quarantine
//! entries, one transaction per batch so a batch's good rows and its rejects land together.

use crate::bulk::{insert, placeholder, Insert, Val};
use crate::{now_ms, Result, Store};
use patron_domain::{Channel, CustomerRecord, OrderLine, Product};
use sqlx::Row;
use std::collections::HashMap;

/// One rejected value or row, with everything needed to find and fix it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuarantineEntry {
    /// What was being imported (`customers`, `orders`, `products`).
    pub kind: &'static str,
    /// The file (or channel) it came from.
    pub file: String,
    /// 1-based data row number in that file (the header is row 0).
    pub row_no: i64,
    /// The row's source, when known.
    pub source: Option<String>,
    /// The row's source id, when known.
    pub source_id: Option<String>,
    /// The field that was rejected (for whole rows: the field that decided it).
    pub field: String,
    /// The rejected value (encrypted at rest: it may be personal).
    pub value: Option<String>,
    /// Why.
    pub reason: String,
    /// Whether the whole row was rejected, or only this field.
    pub whole_row: bool,
    /// The raw row, for whole-row rejects, so it can be fixed and re-submitted.
    #[serde(skip)]
    pub raw: Option<String>,
}

/// A customer record sealed and blind-indexed for storage by [`Store::prepare_customer`].
/// Preparing is pure CPU work, so callers do it in parallel before a batch is written.
#[derive(Debug)]
pub struct PreparedCustomer {
    source: String,
    source_id: String,
    row: Vec<Val>,
}

impl PreparedCustomer {
    /// The record's source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The record's id in its source.
    pub fn source_id(&self) -> &str {
        &self.source_id
    }
}

/// What one import batch writes.
#[derive(Debug, Default)]
pub struct RecordBatch {
    /// Prepared customer records, upserted on (source, source_id).
    pub customers: Vec<PreparedCustomer>,
    /// Prepared customer records stored only where no record of their source and id exists
    /// (customers known only from their orders), never replacing one.
    pub absent_customers: Vec<PreparedCustomer>,
    /// Products, upserted on product_id.
    pub products: Vec<Product>,
    /// Order lines, upserted on (source, order_id, product_id); a product's line carries the
    /// order's whole quantity of it.
    pub order_lines: Vec<OrderLine>,
    /// Rejected values and rows.
    pub quarantine: Vec<QuarantineEntry>,
}

const CUSTOMER_COLS: &[&str] = &[
    "source",
    "source_id",
    "name_enc",
    "email_enc",
    "phone_enc",
    "birth_date_enc",
    "address_enc",
    "gender",
    "city",
    "country",
    "email_hash",
    "phone_hash",
    "name_tokens",
    "raw_enc",
    "source_created_at",
    "received_at",
    "updated_at",
    "loyalty_hash",
    "tags",
    "consent_email",
    "consent_sms",
    "consent_wechat",
    "consent_at",
];

/// A batch turned into statements: what [`Store::write_batch`] executes in one transaction,
/// through the pool (multi-row statements) or the native SQLite writer (one prepared
/// statement per table, run many times).
#[derive(Debug, Default)]
pub(crate) struct BatchPlan {
    pub(crate) inserts: Vec<Insert>,
    /// Per kind, the (source, id in the source) of stored records whose earlier quarantine
    /// entries are resolved, except those in `keep`.
    pub(crate) resolve: Vec<(&'static str, Vec<(String, String)>)>,
    /// Entry hashes of this batch's own quarantine entries: problems the stored versions
    /// still have.
    pub(crate) keep: std::collections::HashSet<Vec<u8>>,
}

const ORDER_COLS: &[&str] = &[
    "source",
    "order_id",
    "customer_source_id",
    "placed_at",
    "status",
    "currency",
];

const ORDER_LINE_COLS: &[&str] = &[
    "source",
    "order_id",
    "product_id",
    "quantity",
    "unit_price_minor",
    "currency",
];

const QUARANTINE_COLS: &[&str] = &[
    "at",
    "kind",
    "file",
    "row_no",
    "source",
    "source_id",
    "field",
    "value_enc",
    "reason",
    "whole_row",
    "raw_enc",
    "entry_hash",
];

impl Store {
    /// Writes a batch in one transaction.
    pub async fn write_batch(&self, batch: RecordBatch) -> Result<()> {
        let plan = self.plan_batch(batch);
        if let Some(native) = &self.native {
            return native.write(plan).await;
        }
        let mut tx = self.pool.begin().await?;
        for i in plan.inserts {
            insert(&mut tx, self.backend, i.table, i.columns, &i.suffix, i.rows).await?;
        }
        for (kind, keys) in &plan.resolve {
            resolve_quarantine(&mut tx, self.backend, kind, keys, &plan.keep).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    fn plan_batch(&self, batch: RecordBatch) -> BatchPlan {
        let now = now_ms();
        // What this batch stores, per kind, as (source, id in the source) the way quarantine
        // entries name them; products have no source.
        let mut plan = BatchPlan {
            resolve: vec![
                (
                    "customers",
                    batch
                        .customers
                        .iter()
                        .map(|p| (p.source.clone(), p.source_id.clone()))
                        .collect(),
                ),
                (
                    "orders",
                    batch
                        .order_lines
                        .iter()
                        .map(|l| (l.source.clone(), l.order_id.clone()))
                        .collect(),
                ),
                (
                    "products",
                    batch
                        .products
                        .iter()
                        .map(|p| (String::new(), p.product_id.clone()))
                        .collect(),
                ),
            ],
            ..BatchPlan::default()
        };
        if !batch.customers.is_empty() {
            // One statement may not touch the same key twice (PostgreSQL refuses); the last
            // occurrence in the batch wins, as it would across batches.
            let last = last_per_key(&batch.customers, |p| (&p.source, &p.source_id));
            let rows = take(batch.customers, &last)
                .into_iter()
                .map(|p| p.row)
                .collect();
            // A re-import restating the same consent keeps when it was first stated, so a
            // stale export cannot outdate a withdrawal made since in another source.
            let set = CUSTOMER_COLS[2..]
                .iter()
                .filter(|c| **c != "received_at")
                .map(|c| match *c {
                    "consent_at" => "consent_at = CASE WHEN \
                        source_record_data.consent_email IS NOT DISTINCT FROM excluded.consent_email \
                        AND source_record_data.consent_sms IS NOT DISTINCT FROM excluded.consent_sms \
                        AND source_record_data.consent_wechat IS NOT DISTINCT FROM excluded.consent_wechat \
                        THEN COALESCE(source_record_data.consent_at, excluded.consent_at) \
                        ELSE excluded.consent_at END"
                        .to_owned(),
                    c => format!("{c} = excluded.{c}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            plan.inserts.push(Insert {
                table: "source_record_data",
                columns: CUSTOMER_COLS,
                suffix: format!("ON CONFLICT (source, source_id) DO UPDATE SET {set}"),
                rows,
            });
        }
        if !batch.absent_customers.is_empty() {
            plan.inserts.push(Insert {
                table: "source_record_data",
                columns: CUSTOMER_COLS,
                suffix: "ON CONFLICT (source, source_id) DO NOTHING".into(),
                rows: batch.absent_customers.into_iter().map(|p| p.row).collect(),
            });
        }
        if !batch.products.is_empty() {
            let last = last_per_key(&batch.products, |p| &p.product_id);
            let rows = take(batch.products, &last)
                .into_iter()
                .map(|p| product_row(p, now))
                .collect();
            plan.inserts.push(Insert {
                table: "products",
                columns: PRODUCT_COLS,
                suffix: "ON CONFLICT (product_id) DO UPDATE SET sku = excluded.sku, \
                         name = excluded.name, category = excluded.category, \
                         brand = excluded.brand, price_minor = excluded.price_minor, \
                         currency = excluded.currency, active = excluded.active, \
                         stock = excluded.stock, tags = excluded.tags, \
                         updated_at = excluded.updated_at"
                    .into(),
                rows,
            });
        }
        if !batch.order_lines.is_empty() {
            let orders = last_per_key(&batch.order_lines, |l| (&l.source, &l.order_id))
                .into_iter()
                .map(|i| {
                    let l = &batch.order_lines[i];
                    vec![
                        l.source.as_str().into(),
                        l.order_id.as_str().into(),
                        l.customer_source_id.as_str().into(),
                        l.placed_at.timestamp_millis().into(),
                        l.status.code().into(),
                        l.unit_price.currency.as_str().into(),
                    ]
                })
                .collect();
            plan.inserts.push(Insert {
                table: "orders",
                columns: ORDER_COLS,
                suffix: "ON CONFLICT (source, order_id) DO UPDATE SET \
                         customer_source_id = excluded.customer_source_id, \
                         placed_at = excluded.placed_at, status = excluded.status, \
                         currency = excluded.currency"
                    .into(),
                rows: orders,
            });
            let last = last_per_key(&batch.order_lines, |l| {
                (&l.source, &l.order_id, &l.product_id)
            });
            let lines = take(batch.order_lines, &last)
                .into_iter()
                .map(|l| {
                    vec![
                        l.source.into(),
                        l.order_id.into(),
                        l.product_id.into(),
                        l.quantity.into(),
                        l.unit_price.minor.into(),
                        l.unit_price.currency.as_str().into(),
                    ]
                })
                .collect();
            plan.inserts.push(Insert {
                table: "order_lines",
                columns: ORDER_LINE_COLS,
                suffix: "ON CONFLICT (source, order_id, product_id) DO UPDATE SET \
                         quantity = excluded.quantity, \
                         unit_price_minor = excluded.unit_price_minor, \
                         currency = excluded.currency"
                    .into(),
                rows: lines,
            });
        }
        if !batch.quarantine.is_empty() {
            let rows = batch
                .quarantine
                .into_iter()
                .map(|q| {
                    // Identifies the entry without its file and row, so re-importing the same
                    // bad input does not quarantine it twice.
                    let identity = serde_json::json!([
                        q.field,
                        q.source,
                        q.source_id,
                        q.value,
                        q.reason,
                        q.whole_row,
                        q.raw
                    ])
                    .to_string();
                    let entry_hash = self.vault.blind("quarantine", &identity);
                    plan.keep.insert(entry_hash.clone());
                    vec![
                        now.into(),
                        q.kind.into(),
                        q.file.into(),
                        q.row_no.into(),
                        q.source.into(),
                        q.source_id.into(),
                        q.field.into(),
                        q.value.map(|v| self.vault.seal_str(&v)).into(),
                        q.reason.into(),
                        i64::from(q.whole_row).into(),
                        q.raw.map(|v| self.vault.seal_str(&v)).into(),
                        entry_hash.into(),
                    ]
                })
                .collect();
            plan.inserts.push(Insert {
                table: "quarantine",
                columns: QUARANTINE_COLS,
                suffix: "ON CONFLICT (kind, entry_hash) DO NOTHING".into(),
                rows,
            });
        }
        plan
    }

    /// The customers orders name (source and customer id) that no customer record has: buyers
    /// known only by their orders. Only orders no profile holds yet are looked at.
    pub async fn customers_only_in_orders(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT o.source, o.customer_source_id FROM orders o \
             WHERE o.customer_id IS NULL AND NOT EXISTS (SELECT 1 FROM source_record_data r \
             WHERE r.source = o.source AND r.source_id = o.customer_source_id) \
             ORDER BY o.source, o.customer_source_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// How many records hold nothing to match on (customers known only by the id their
    /// orders give, records whose every value was quarantined).
    pub async fn records_known_by_id_count(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM source_record_data WHERE name_enc IS NULL \
             AND email_enc IS NULL AND phone_enc IS NULL AND birth_date_enc IS NULL \
             AND address_enc IS NULL AND loyalty_hash IS NULL AND city IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Seals the personal fields of a cleaned record and computes its blind indexes. `raw` is
    /// its input as received (JSON), given only when some of its fields were quarantined: it
    /// is kept, sealed, so the row can be exported, fixed and re-submitted. Other records keep
    /// no second copy of their personal data.
    pub fn prepare_customer(&self, r: &CustomerRecord, raw: Option<&str>) -> PreparedCustomer {
        PreparedCustomer {
            source: r.source.clone(),
            source_id: r.source_id.clone(),
            row: self.customer_row(r, raw, now_ms()),
        }
    }

    fn customer_row(&self, r: &CustomerRecord, raw: Option<&str>, now: i64) -> Vec<Val> {
        let v = &self.vault;
        let seal = |s: Option<&str>| s.map(|s| v.seal_str(s));
        let a = &r.address;
        let address = [&a.line1, &a.line2, &a.region, &a.postal_code]
            .iter()
            .any(|p| p.is_some())
            .then(|| {
                // Keys in alphabetical order, as every stored address has had them.
                #[derive(serde::Serialize)]
                struct Stored<'a> {
                    city: &'a Option<String>,
                    line1: &'a Option<String>,
                    line2: &'a Option<String>,
                    postal_code: &'a Option<String>,
                    region: &'a Option<String>,
                }
                serde_json::to_string(&Stored {
                    city: &a.city,
                    line1: &a.line1,
                    line2: &a.line2,
                    postal_code: &a.postal_code,
                    region: &a.region,
                })
                .expect("strings serialize")
            });
        let name_tokens = r.name.as_ref().map(|n| {
            n.search_tokens()
                .iter()
                .flat_map(|t| v.blind("name", t))
                .collect::<Vec<u8>>()
        });
        vec![
            r.source.as_str().into(),
            r.source_id.as_str().into(),
            seal(r.name.as_ref().map(|n| n.as_str())).into(),
            seal(r.email.as_ref().map(|e| e.as_str())).into(),
            seal(r.phone.as_ref().map(|p| p.as_str())).into(),
            seal(r.birth_date.map(|d| d.to_string()).as_deref()).into(),
            seal(address.as_deref()).into(),
            r.gender.map(|g| g.code().to_owned()).into(),
            a.city.clone().into(),
            r.country.map(|c| c.as_str().to_owned()).into(),
            r.email
                .as_ref()
                .map(|e| v.blind("email", &e.match_key()))
                .into(),
            r.phone
                .as_ref()
                .map(|p| v.blind("phone", p.as_str()))
                .into(),
            name_tokens.into(),
            seal(raw).into(),
            r.created_at.map(|t| t.timestamp_millis()).into(),
            now.into(),
            now.into(),
            r.loyalty_id
                .as_ref()
                .map(|id| v.blind("loyalty", id))
                .into(),
            (!r.tags.is_empty()).then(|| r.tags.join(",")).into(),
            r.consent.email.map(i64::from).into(),
            r.consent.sms.map(i64::from).into(),
            r.consent.wechat.map(i64::from).into(),
            // A statement without a time of its own counts from when Patron received it.
            Channel::ALL
                .iter()
                .any(|c| r.consent.get(*c).is_some())
                .then(|| r.consent.at.map_or(now, |t| t.timestamp_millis()))
                .into(),
        ]
    }

    /// Counts quarantined entries, for summaries and the dashboard.
    pub async fn quarantine_count(&self) -> Result<i64> {
        use sqlx::Row;
        Ok(sqlx::query("SELECT COUNT(*) FROM quarantine")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }
}

pub(crate) const PRODUCT_COLS: &[&str] = &[
    "product_id",
    "sku",
    "name",
    "category",
    "brand",
    "price_minor",
    "currency",
    "active",
    "stock",
    "tags",
    "updated_at",
];

/// A product as a row of [`PRODUCT_COLS`].
pub(crate) fn product_row(p: Product, now: i64) -> Vec<Val> {
    vec![
        p.product_id.into(),
        p.sku.into(),
        p.name.into(),
        p.category.into(),
        p.brand.into(),
        p.price.map(|m| m.minor).into(),
        p.price.map(|m| m.currency.as_str().to_owned()).into(),
        i64::from(p.active).into(),
        p.stock.into(),
        p.tags.into(),
        now.into(),
    ]
}

/// Deletes the quarantine entries of records (source, source id) of `kind` that were stored
/// again, except those in `keep` (problems the new version still has).
async fn resolve_quarantine(
    conn: &mut sqlx::AnyConnection,
    backend: crate::Backend,
    kind: &str,
    keys: &[(String, String)],
    keep: &std::collections::HashSet<Vec<u8>>,
) -> sqlx::Result<()> {
    use sqlx::Row;
    for chunk in keys.chunks(5_000) {
        // By id only, through the (kind, source_id, source) index; the source, NULL for
        // products, is compared here.
        let mut sql = format!(
            "SELECT quarantine_id, entry_hash, COALESCE(source, ''), source_id FROM quarantine \
             WHERE kind = {} AND source_id IN (",
            placeholder(backend, 1)
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&placeholder(backend, 2 + i));
        }
        sql.push(')');
        let mut q = sqlx::query(&sql).bind(kind.to_owned());
        for (_, id) in chunk {
            q = q.bind(id.clone());
        }
        let wanted: std::collections::HashSet<(&str, &str)> = chunk
            .iter()
            .map(|(s, id)| (s.as_str(), id.as_str()))
            .collect();
        let mut stale = Vec::new();
        for row in q.fetch_all(&mut *conn).await? {
            let hash: Vec<u8> = row.try_get(1)?;
            let source: String = row.try_get(2)?;
            let id: String = row.try_get(3)?;
            if wanted.contains(&(source.as_str(), id.as_str())) && !keep.contains(&hash) {
                stale.push(row.try_get::<i64, _>(0)?);
            }
        }
        for ids in stale.chunks(5_000) {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            // Ids are integers from the database itself, so listing them inline is safe.
            sqlx::query(&format!(
                "DELETE FROM quarantine WHERE quarantine_id IN ({})",
                list.join(", ")
            ))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// For each distinct key in first-seen order, the index of the last item with that key. Keys
/// borrow from the items, so finding duplicates copies nothing.
fn last_per_key<'a, T, K: std::hash::Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<usize> {
    let mut slots: Vec<usize> = Vec::with_capacity(items.len());
    let mut slot_of: HashMap<K, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match slot_of.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => slots[*e.get()] = i,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(slots.len());
                slots.push(i);
            }
        }
    }
    slots
}

/// The items at `indices` (each at most once), in that order.
fn take<T>(items: Vec<T>, indices: &[usize]) -> Vec<T> {
    if indices.len() == items.len() && indices.iter().enumerate().all(|(a, b)| a == *b) {
        return items;
    }
    let mut items: Vec<Option<T>> = items.into_iter().map(Some).collect();
    indices.iter().filter_map(|&i| items[i].take()).collect()
}
