//! Reading the quarantine back: the list a data team works through, and the rejected rows as
//! they were given, so they can be fixed and imported again.

use crate::{QuarantineEntry, Result, Store};
use sqlx::Row;

/// One quarantined value or row, decrypted for an authorized reader.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuarantineRow {
    /// Entry id.
    pub quarantine_id: i64,
    /// When it was quarantined (ms since epoch).
    pub at: i64,
    /// What was rejected, where and why.
    #[serde(flatten)]
    pub entry: QuarantineEntry,
}

/// The import kinds, as `QuarantineEntry::kind` spells them.
const KINDS: [&str; 4] = ["customers", "orders", "products", "events"];

impl Store {
    /// Quarantine entries, newest first, optionally of one kind.
    pub async fn quarantine_list(
        &self,
        kind: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<QuarantineRow>> {
        let rows = sqlx::query(
            "SELECT quarantine_id, at, kind, file, row_no, source, source_id, field, value_enc, \
             reason, whole_row FROM quarantine WHERE ($1 = '' OR kind = $1) \
             ORDER BY quarantine_id DESC LIMIT $2 OFFSET $3",
        )
        .bind(kind.unwrap_or("").to_owned())
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(QuarantineRow {
                    quarantine_id: r.try_get("quarantine_id")?,
                    at: r.try_get("at")?,
                    entry: QuarantineEntry {
                        kind: KINDS.into_iter().find(|k| *k == kind).unwrap_or("unknown"),
                        file: r.try_get("file")?,
                        row_no: r.try_get("row_no")?,
                        source: r.try_get("source")?,
                        source_id: r.try_get("source_id")?,
                        field: r.try_get("field")?,
                        value: self.open_opt(r, "value_enc")?,
                        reason: r.try_get("reason")?,
                        whole_row: r.try_get::<i64, _>("whole_row")? != 0,
                        raw: None,
                    },
                })
            })
            .collect()
    }

    /// The raw input rows (JSON objects, as read) behind the open quarantine entries of one
    /// kind: rejected rows as given, and for records that lost a field, the record's stored
    /// input. Each row once, oldest first.
    pub async fn quarantine_raw_rows(&self, kind: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT q.raw_enc AS raw FROM quarantine q \
             WHERE q.kind = $1 AND q.whole_row = 1 AND q.raw_enc IS NOT NULL \
             UNION ALL \
             SELECT r.raw_enc AS raw FROM source_records r WHERE $1 = 'customers' \
             AND r.raw_enc IS NOT NULL AND EXISTS \
             (SELECT 1 FROM quarantine q WHERE q.kind = 'customers' AND q.whole_row = 0 \
              AND q.source = r.source AND q.source_id = r.source_id)",
        )
        .bind(kind.to_owned())
        .fetch_all(&self.pool)
        .await?;
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<String> = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(raw) = self.open_opt(r, "raw")? {
                if seen.insert(raw.clone()) {
                    out.push(raw);
                }
            }
        }
        Ok(out)
    }
}
