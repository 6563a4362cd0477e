//! Data subject requests: everything stored about one person (GDPR Art. 15 and 20, PIPL
//! Art. 45), and erasing it (Art. 17, PIPL Art. 47).
//!
//! Erasure removes the person's records, profile, identities, events, tickets, quarantined
//! rows, metrics, forecasts, recommendations, memberships and matching decisions. Orders stay,
//! so revenue and product figures stay true, but lose every link to the person: no profile,
//! and the buyer's id in the source replaced. The audit log keeps its entries (ids only,
//! never personal values) and gains one for the erasure.

use crate::{Backend, Result, Store};
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use sqlx::Row;

/// What an erasure removed or detached, per kind of data.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// The profile erased.
    pub customer_id: i64,
    /// Source records deleted.
    pub records: u64,
    /// Orders kept for the figures but detached from the person.
    pub orders_detached: u64,
    /// Behavioural events deleted.
    pub events: u64,
    /// Service tickets deleted.
    pub tickets: u64,
    /// Quarantined rows deleted.
    pub quarantined: u64,
    /// Rows of derived tables deleted (metrics, forecasts, recommendations, memberships,
    /// history, identities, name index, decisions, review pairs, merges, aliases).
    pub derived: u64,
}

/// Counts only: fit for the audit log.
impl std::fmt::Display for Erasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records, {} orders detached, {} events, {} tickets, {} quarantined, {} derived",
            self.records,
            self.orders_detached,
            self.events,
            self.tickets,
            self.quarantined,
            self.derived
        )
    }
}

impl Store {
    /// The profile a person is known by now: `id` itself, or the profile a merged-away id
    /// resolves to. `None` when there is no such person.
    async fn subject(&self, id: i64) -> Result<Option<i64>> {
        live_profile(&mut *self.pool.acquire().await?, id).await
    }

    /// Everything stored about the person with profile `id`, decrypted, as one JSON document;
    /// `None` when there is no such person.
    pub async fn subject_export(&self, id: i64) -> Result<Option<Value>> {
        let Some(id) = self.subject(id).await? else {
            return Ok(None);
        };
        let Some(profile) = self.customer(id).await? else {
            return Ok(None);
        };
        let mut records = Vec::new();
        for r in sqlx::query(
            "SELECT record_id, source, source_id, name_enc, email_enc, phone_enc, birth_date_enc, \
             address_enc, gender, city, country, source_created_at, received_at, updated_at, \
             tags, consent_email, consent_sms, consent_wechat, consent_at \
             FROM source_records WHERE customer_id = $1 ORDER BY record_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        {
            records.push(json!({
                "source": r.try_get::<String, _>("source")?,
                "source_id": r.try_get::<String, _>("source_id")?,
                "name": self.open_opt(&r, "name_enc")?,
                "email": self.open_opt(&r, "email_enc")?,
                "phone": self.open_opt(&r, "phone_enc")?,
                "birth_date": self.open_opt(&r, "birth_date_enc")?,
                "address": self.open_opt(&r, "address_enc")?
                    .and_then(|a| serde_json::from_str::<Value>(&a).ok()),
                "gender": r.try_get::<Option<String>, _>("gender")?,
                "city": r.try_get::<Option<String>, _>("city")?,
                "country": r.try_get::<Option<String>, _>("country")?,
                "created_at": r.try_get::<Option<i64>, _>("source_created_at")?,
                "received_at": r.try_get::<i64, _>("received_at")?,
                "updated_at": r.try_get::<i64, _>("updated_at")?,
                "tags": r.try_get::<Option<String>, _>("tags")?,
                "consent": {
                    "email": r.try_get::<Option<i64>, _>("consent_email")?.map(|v| v != 0),
                    "sms": r.try_get::<Option<i64>, _>("consent_sms")?.map(|v| v != 0),
                    "wechat": r.try_get::<Option<i64>, _>("consent_wechat")?.map(|v| v != 0),
                    "at": r.try_get::<Option<i64>, _>("consent_at")?,
                },
            }));
        }
        let mut orders = Vec::new();
        for r in sqlx::query(
            "SELECT o.source, o.order_id, o.placed_at, o.status, o.currency, l.product_id, \
             l.quantity, l.unit_price_minor FROM orders o JOIN order_lines l \
             ON l.source = o.source AND l.order_id = o.order_id \
             WHERE o.customer_id = $1 ORDER BY o.placed_at, o.order_id, l.product_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        {
            orders.push(json!({
                "source": r.try_get::<String, _>(0)?,
                "order_id": r.try_get::<String, _>(1)?,
                "placed_at": r.try_get::<i64, _>(2)?,
                "status": r.try_get::<String, _>(3)?,
                "currency": r.try_get::<String, _>(4)?,
                "product_id": r.try_get::<String, _>(5)?,
                "quantity": r.try_get::<i64, _>(6)?,
                "unit_price_minor": r.try_get::<i64, _>(7)?,
            }));
        }
        let mut events = Vec::new();
        let mut rows = sqlx::query(
            "SELECT source, kind, name, properties_enc, occurred_at FROM events \
             WHERE customer_id = $1 ORDER BY occurred_at, event_id",
        )
        .bind(id)
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            events.push(json!({
                "source": r.try_get::<String, _>(0)?,
                "kind": r.try_get::<String, _>(1)?,
                "name": r.try_get::<Option<String>, _>(2)?,
                "properties": self.open_opt(&r, "properties_enc")?
                    .and_then(|p| serde_json::from_str::<Value>(&p).ok()),
                "occurred_at": r.try_get::<i64, _>(4)?,
            }));
        }
        drop(rows);
        let mut tickets = Vec::new();
        for r in sqlx::query(
            "SELECT source, ticket_ref, subject, body_enc, status, priority, channel, created_at, \
             updated_at FROM tickets WHERE customer_id = $1 ORDER BY created_at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        {
            tickets.push(json!({
                "source": r.try_get::<String, _>(0)?,
                "ticket_ref": r.try_get::<String, _>(1)?,
                "subject": r.try_get::<String, _>(2)?,
                "body": self.open_opt(&r, "body_enc")?,
                "status": r.try_get::<String, _>(4)?,
                "priority": r.try_get::<String, _>(5)?,
                "channel": r.try_get::<String, _>(6)?,
                "created_at": r.try_get::<i64, _>(7)?,
                "updated_at": r.try_get::<i64, _>(8)?,
            }));
        }
        let mut history = Vec::new();
        for r in sqlx::query(
            "SELECT s.name, h.change, h.at FROM segment_history h \
             JOIN segments s ON s.segment_id = h.segment_id WHERE h.customer_id = $1 ORDER BY h.at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        {
            history.push(json!({
                "segment": r.try_get::<String, _>(0)?,
                "change": r.try_get::<String, _>(1)?,
                "at": r.try_get::<i64, _>(2)?,
            }));
        }
        Ok(Some(json!({
            "customer_id": id,
            "profile": profile,
            "source_records": records,
            "orders": orders,
            "events": events,
            "tickets": tickets,
            "segment_history": history,
        })))
    }

    /// Erases the person with profile `id` (see the module documentation); `None` when there
    /// is no such person. On SQLite the log is then checkpointed and truncated, so no copy of
    /// the erased rows stays in the write-ahead log either.
    pub async fn erase_subject(&self, id: i64) -> Result<Option<Erasure>> {
        // An id no one holds is answered without waiting for the write lock (behind a unify
        // run's write, seconds).
        if live_profile(&mut *self.pool.acquire().await?, id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        // The person is looked up again inside the transaction: a unify run that merged their
        // profile away commits before it or waits for it.
        let mut tx = self.begin_membership_change().await?;
        let Some(id) = live_profile(&mut tx, id).await? else {
            return Ok(None);
        };
        let mut e = Erasure {
            customer_id: id,
            ..Erasure::default()
        };
        let ids: Vec<(i64, String, String)> = sqlx::query(
            "SELECT record_id, source, source_id FROM source_records WHERE customer_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_>>()?;
        let order_ids: Vec<(String, String)> =
            sqlx::query("SELECT source, order_id FROM orders WHERE customer_id = $1")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_>>()?;
        for (record, source, source_id) in &ids {
            for sql in [
                "DELETE FROM match_decisions WHERE record_a = $1 OR record_b = $1",
                "DELETE FROM review_queue WHERE record_a = $1 OR record_b = $1",
            ] {
                e.derived += sqlx::query(sql)
                    .bind(record)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            e.quarantined += sqlx::query(
                "DELETE FROM quarantine WHERE kind = 'customers' AND source = $1 AND source_id = $2",
            )
            .bind(source)
            .bind(source_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // Tracking calls name the person by their id in the source.
            e.events += sqlx::query("DELETE FROM events WHERE source = $1 AND user_id = $2")
                .bind(source)
                .bind(source_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        for (source, order_id) in &order_ids {
            e.quarantined += sqlx::query(
                "DELETE FROM quarantine WHERE kind = 'orders' AND source = $1 AND source_id = $2",
            )
            .bind(source)
            .bind(order_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        e.orders_detached = sqlx::query(
            "UPDATE orders SET customer_id = NULL, customer_source_id = 'erased' \
             WHERE customer_id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE order_lines SET customer_id = NULL WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        e.events += sqlx::query("DELETE FROM events WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        e.tickets = sqlx::query("DELETE FROM tickets WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for sql in [
            "DELETE FROM customer_metrics WHERE customer_id = $1",
            "DELETE FROM customer_predictions WHERE customer_id = $1",
            "DELETE FROM recommendations WHERE customer_id = $1",
            "DELETE FROM segment_members WHERE customer_id = $1",
            "DELETE FROM segment_history WHERE customer_id = $1",
            "DELETE FROM identities WHERE customer_id = $1",
            "DELETE FROM name_index WHERE customer_id = $1",
            "DELETE FROM merges WHERE survivor = $1 OR merged = $1",
            "DELETE FROM customer_aliases WHERE customer_id = $1 OR alias_id = $1",
        ] {
            e.derived += sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        // The erased id is not given to anyone else later: other systems may still hold it.
        let given = erased_ids_up_to(&mut tx).await?;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(ERASED_IDS_UP_TO)
        .bind(given.max(id).to_string().into_bytes())
        .execute(&mut *tx)
        .await?;
        e.records = sqlx::query(
            "DELETE FROM source_record_data WHERE record_id IN \
             (SELECT record_id FROM record_profiles WHERE customer_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM record_profiles WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM customers WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(e))
    }
}

/// Profile `id` if it exists, else the profile a merged-away `id` resolves to.
async fn live_profile(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT customer_id, 0 AS alias FROM customers WHERE customer_id = $1 \
         UNION ALL SELECT customer_id, 1 FROM customer_aliases WHERE alias_id = $1 \
         ORDER BY alias LIMIT 1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// The setting that holds the largest profile id ever erased: [`Store::max_customer_id`]
/// counts it, so no new profile takes an erased person's id.
const ERASED_IDS_UP_TO: &str = "erased_profile_ids_up_to";

/// The largest profile id ever erased (0 when none).
pub(crate) async fn erased_ids_up_to(conn: &mut sqlx::AnyConnection) -> Result<i64> {
    let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
        .bind(ERASED_IDS_UP_TO)
        .fetch_optional(conn)
        .await?;
    let value: Option<Vec<u8>> = row.map(|r| r.try_get(0)).transpose()?;
    Ok(value
        .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    /// Erasing an id no one holds answers "no such person" at once, also while another
    /// connection holds the embedded database's write lock (a unify run's write), where
    /// taking the lock first would wait the busy timeout out and fail.
    #[tokio::test]
    async fn erasing_an_unknown_id_takes_no_write_lock() {
        let (dir, store) = crate::temp_store().await;
        let db = rusqlite::Connection::open(dir.path().join("patron.db")).unwrap();
        db.execute_batch("BEGIN IMMEDIATE").unwrap();
        let erased = store.erase_subject(42).await;
        db.execute_batch("ROLLBACK").unwrap();
        assert!(erased.unwrap().is_none());
    }
}
