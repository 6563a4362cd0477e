//! The unify stage's storage side: a snapshot of source records to cluster, and the bulk write
//! of its result (record → profile, golden profiles, identity graph, search index, order
//! attribution) in one transaction, so readers never see half a re-clustering.

use crate::bulk::{insert, Val};
use crate::{now_ms, Result, Store};
use futures_util::TryStreamExt;
use sqlx::Row;

/// Fields a golden profile takes from its records, in survivorship bit order.
pub const GOLDEN_FIELDS: [&str; 8] = [
    "name_enc",
    "email_enc",
    "phone_enc",
    "birth_date_enc",
    "address_enc",
    "gender",
    "city",
    "country",
];

/// One source record as the unify stage sees it. Personal values stay sealed; matching uses
/// their blind indexes only.
#[derive(Debug, Clone)]
pub struct UnifyRecord {
    /// Row id.
    pub record_id: i64,
    /// The record's source system.
    pub source: String,
    /// The record's id in its source.
    pub source_id: String,
    /// Profile before this run.
    pub customer_id: Option<i64>,
    /// Blind index of the email.
    pub email_hash: Option<Vec<u8>>,
    /// Blind index of the phone.
    pub phone_hash: Option<Vec<u8>>,
    /// Concatenated 16-byte blind indexes of the name's search tokens.
    pub name_tokens: Option<Vec<u8>>,
    /// Survivorship order: when the source created or last changed the record.
    pub recency: i64,
    /// When Patron first received it.
    pub received_at: i64,
    /// Sealed or plain values of [`GOLDEN_FIELDS`], in order.
    pub fields: [Option<FieldValue>; 8],
}

/// A golden-field value, sealed (personal) or plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Ciphertext of a personal field.
    Sealed(Vec<u8>),
    /// A non-personal value (gender code, city, country).
    Plain(String),
}

/// A golden profile to write.
#[derive(Debug, Clone)]
pub struct GoldenRow {
    /// Profile id.
    pub customer_id: i64,
    /// The surviving value per [`GOLDEN_FIELDS`] entry.
    pub fields: [Option<FieldValue>; 8],
    /// Number of source records in the profile.
    pub records: i64,
    /// The earliest receipt among its records.
    pub created_at: i64,
}

impl Store {
    /// Reads every source record for clustering.
    pub async fn unify_snapshot(&self) -> Result<Vec<UnifyRecord>> {
        let sql = format!(
            "SELECT record_id, source, source_id, customer_id, email_hash, phone_hash, name_tokens, \
             COALESCE(source_created_at, updated_at) AS recency, received_at, {} \
             FROM source_records ORDER BY record_id",
            GOLDEN_FIELDS.join(", ")
        );
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            let mut fields: [Option<FieldValue>; 8] = Default::default();
            for (i, col) in GOLDEN_FIELDS.iter().enumerate() {
                fields[i] = if col.ends_with("_enc") {
                    row.try_get::<Option<Vec<u8>>, _>(*col)?
                        .map(FieldValue::Sealed)
                } else {
                    row.try_get::<Option<String>, _>(*col)?
                        .map(FieldValue::Plain)
                };
            }
            out.push(UnifyRecord {
                record_id: row.try_get("record_id")?,
                source: row.try_get("source")?,
                source_id: row.try_get("source_id")?,
                customer_id: row.try_get("customer_id")?,
                email_hash: row.try_get("email_hash")?,
                phone_hash: row.try_get("phone_hash")?,
                name_tokens: row.try_get("name_tokens")?,
                recency: row.try_get("recency")?,
                received_at: row.try_get("received_at")?,
                fields,
            });
        }
        Ok(out)
    }

    /// The largest profile id ever handed out (0 when none), so new ids never reuse old ones.
    pub async fn max_customer_id(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(customer_id), 0) AS m FROM \
             (SELECT customer_id FROM customers UNION ALL SELECT customer_id FROM source_records) t",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("m")?)
    }

    /// Writes a unification result: `assignments` (record id, profile id) for every record,
    /// the golden profiles, and the identity graph (profile, kind, blind index). Profiles no
    /// record points to any more are removed; orders are re-attributed.
    pub async fn apply_unification(
        &self,
        assignments: Vec<(i64, i64)>,
        golden: Vec<GoldenRow>,
        identities: Vec<(i64, &'static str, Vec<u8>)>,
        name_tokens: Vec<(i64, Vec<u8>)>,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DROP TABLE IF EXISTS unify_assign")
            .execute(&mut *tx)
            .await?;
        sqlx::query("CREATE TEMPORARY TABLE unify_assign (record_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await?;
        let rows = assignments
            .into_iter()
            .map(|(r, c)| vec![r.into(), c.into()])
            .collect();
        insert(
            &mut tx,
            self.backend,
            "unify_assign",
            &["record_id", "customer_id"],
            "",
            rows,
        )
        .await?;
        sqlx::query(
            "UPDATE source_records SET customer_id = \
             (SELECT a.customer_id FROM unify_assign a WHERE a.record_id = source_records.record_id) \
             WHERE record_id IN (SELECT record_id FROM unify_assign)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DROP TABLE unify_assign")
            .execute(&mut *tx)
            .await?;

        let mut cols: Vec<&str> = vec!["customer_id"];
        cols.extend(GOLDEN_FIELDS);
        cols.extend(["records", "created_at", "updated_at"]);
        let set = cols[1..]
            .iter()
            .filter(|c| **c != "created_at")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = golden
            .into_iter()
            .map(|g| {
                let mut row: Vec<Val> = vec![g.customer_id.into()];
                row.extend(
                    g.fields
                        .into_iter()
                        .zip(GOLDEN_FIELDS)
                        .map(|(v, col)| match v {
                            Some(FieldValue::Sealed(b)) => Val::from(b),
                            Some(FieldValue::Plain(s)) => Val::from(s),
                            None if col.ends_with("_enc") => Val::Blob(None),
                            None => Val::Text(None),
                        }),
                );
                row.extend([g.records.into(), g.created_at.into(), now.into()]);
                row
            })
            .collect();
        insert(
            &mut tx,
            self.backend,
            "customers",
            &cols,
            &format!("ON CONFLICT (customer_id) DO UPDATE SET {set}"),
            rows,
        )
        .await?;
        sqlx::query(
            "DELETE FROM customers WHERE customer_id NOT IN \
             (SELECT customer_id FROM source_records WHERE customer_id IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;

        sqlx::query("DELETE FROM identities")
            .execute(&mut *tx)
            .await?;
        let rows = dedup(identities)
            .into_iter()
            .map(|(c, k, h)| vec![c.into(), k.into(), h.into()])
            .collect();
        insert(
            &mut tx,
            self.backend,
            "identities",
            &["customer_id", "kind", "value_hash"],
            "",
            rows,
        )
        .await?;
        sqlx::query("DELETE FROM name_index")
            .execute(&mut *tx)
            .await?;
        let rows = dedup(name_tokens)
            .into_iter()
            .map(|(c, h)| vec![c.into(), h.into()])
            .collect();
        insert(
            &mut tx,
            self.backend,
            "name_index",
            &["customer_id", "token_hash"],
            "",
            rows,
        )
        .await?;

        sqlx::query(
            "UPDATE orders SET customer_id = (SELECT r.customer_id FROM source_records r \
             WHERE r.source = orders.source AND r.source_id = orders.customer_source_id)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE order_lines SET customer_id = (SELECT o.customer_id FROM orders o \
             WHERE o.source = order_lines.source AND o.order_id = order_lines.order_id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn dedup<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}
