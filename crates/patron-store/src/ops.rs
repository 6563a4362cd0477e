//! Behavioural events, service tickets and the jobs log.

use crate::bulk::insert;
use crate::{now_ms, Result, Store};
use sqlx::Row;

/// A behavioural event to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Idempotency key: an event with a known message id is ignored.
    pub message_id: String,
    /// The source system.
    pub source: String,
    /// The source's user id, resolved to a profile by the unify stage.
    pub user_id: Option<String>,
    /// A device or cookie id.
    pub anonymous_id: Option<String>,
    /// `track`, `page`, `identify`, ...
    pub kind: String,
    /// Event name (`Product Viewed`).
    pub name: Option<String>,
    /// Properties, traits and context as JSON; sealed at rest, since tracking payloads carry
    /// personal data (traits, IP addresses) in free-form fields.
    pub properties: Option<String>,
    /// When it happened, ms since epoch.
    pub occurred_at: i64,
}

/// A service ticket to store.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// The source system of the customer who raised it.
    pub source: String,
    /// The ticket's id in that system; re-imports of the same ticket are ignored.
    pub ticket_ref: String,
    /// That customer's id in the source.
    pub customer_source_id: String,
    /// One-line subject.
    pub subject: String,
    /// Body text (encrypted at rest).
    pub body: String,
    /// `open`, `pending`, `closed`.
    pub status: String,
    /// `low`, `normal`, `high`.
    pub priority: String,
    /// `email`, `chat`, `phone`, `wechat`.
    pub channel: String,
    /// When it was raised, ms since epoch.
    pub created_at: i64,
}

impl Store {
    /// Stores events, skipping known message ids; returns how many were new.
    pub async fn insert_events(&self, events: Vec<NewEvent>) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let rows = events
            .into_iter()
            .map(|e| {
                vec![
                    e.message_id.into(),
                    e.source.into(),
                    e.user_id.into(),
                    e.anonymous_id.into(),
                    e.kind.into(),
                    e.name.into(),
                    e.properties.map(|p| self.vault.seal_str(&p)).into(),
                    e.occurred_at.into(),
                    now.into(),
                ]
            })
            .collect();
        let n = insert(
            &mut tx,
            self.backend,
            "events",
            &[
                "message_id",
                "source",
                "user_id",
                "anonymous_id",
                "kind",
                "name",
                "properties_enc",
                "occurred_at",
                "received_at",
            ],
            "ON CONFLICT (message_id) DO NOTHING",
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Sets an order's status (`refunded`, `cancelled`); returns whether the order exists.
    pub async fn set_order_status(
        &self,
        source: &str,
        order_id: &str,
        status: &str,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE orders SET status = $1 WHERE source = $2 AND order_id = $3")
            .bind(status)
            .bind(source)
            .bind(order_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds catalog products seen in events unless the catalog already has them: an event's
    /// product fields never overwrite the catalog's.
    pub async fn add_missing_products(&self, products: Vec<patron_domain::Product>) -> Result<()> {
        if products.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut seen = std::collections::HashSet::new();
        let rows = products
            .into_iter()
            .filter(|p| seen.insert(p.product_id.clone()))
            .map(|p| crate::records::product_row(p, now))
            .collect();
        let mut tx = self.pool.begin().await?;
        insert(
            &mut tx,
            self.backend,
            "products",
            crate::records::PRODUCT_COLS,
            "ON CONFLICT (product_id) DO NOTHING",
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Which of `ids` are message ids of events already stored.
    pub async fn known_message_ids(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        let mut known = std::collections::HashSet::new();
        for chunk in ids.chunks(1_000) {
            let list: Vec<String> = (1..=chunk.len())
                .map(|n| crate::bulk::placeholder(self.backend, n))
                .collect();
            let sql = format!(
                "SELECT message_id FROM events WHERE message_id IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.clone());
            }
            for row in q.fetch_all(&self.pool).await? {
                known.insert(row.try_get::<String, _>(0)?);
            }
        }
        Ok(known)
    }

    /// Stores tickets.
    pub async fn insert_tickets(&self, tickets: Vec<NewTicket>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let rows = tickets
            .into_iter()
            .map(|t| {
                vec![
                    t.source.into(),
                    t.ticket_ref.into(),
                    t.customer_source_id.into(),
                    t.subject.into(),
                    self.vault.seal_str(&t.body).into(),
                    t.status.into(),
                    t.priority.into(),
                    t.channel.into(),
                    t.created_at.into(),
                    t.created_at.into(),
                ]
            })
            .collect();
        let n = insert(
            &mut tx,
            self.backend,
            "tickets",
            &[
                "source",
                "ticket_ref",
                "customer_source_id",
                "subject",
                "body_enc",
                "status",
                "priority",
                "channel",
                "created_at",
                "updated_at",
            ],
            "ON CONFLICT (source, ticket_ref) DO NOTHING",
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Resolves events, tickets and orders not yet attributed to profiles through their source
    /// ids (run after unify, online placement and order imports); `aliases`: also through
    /// tracking alias calls (the matching rules can switch that off).
    pub async fn attribute_activity(&self, aliases: bool) -> Result<()> {
        sqlx::query(
            "UPDATE events SET customer_id = (SELECT r.customer_id FROM source_records r \
             WHERE r.source = events.source AND r.source_id = events.user_id)",
        )
        .execute(&self.pool)
        .await?;
        // Orders imported since the last unify run belong to their customer record's profile.
        for update in [
            crate::unify::ATTRIBUTE_ORDERS,
            crate::unify::ATTRIBUTE_ORDER_LINES,
        ] {
            sqlx::query(&format!("{update} WHERE customer_id IS NULL"))
                .execute(&self.pool)
                .await?;
        }
        // An anonymous visitor's events belong to whoever a message with both ids names, and
        // an aliased id's events to the id it became (Segment's identity links).
        sqlx::query(
            "UPDATE events SET customer_id = (SELECT MIN(r.customer_id) FROM events e \
             JOIN source_records r ON r.source = e.source AND r.source_id = e.user_id \
             WHERE e.source = events.source AND e.anonymous_id = events.anonymous_id) \
             WHERE customer_id IS NULL AND anonymous_id IS NOT NULL",
        )
        .execute(&self.pool)
        .await?;
        if aliases {
            sqlx::query(
                "UPDATE events SET customer_id = (SELECT MIN(r.customer_id) FROM events a \
                 JOIN source_records r ON r.source = a.source AND r.source_id = a.user_id \
                 WHERE a.kind = 'alias' AND a.source = events.source AND a.name = events.user_id) \
                 WHERE customer_id IS NULL",
            )
            .execute(&self.pool)
            .await?;
        }
        sqlx::query(
            "UPDATE tickets SET customer_id = (SELECT r.customer_id FROM source_records r \
             WHERE r.source = tickets.source AND r.source_id = tickets.customer_source_id)",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pairs of records that tracking says are one user: an `alias` call's previousId and
    /// userId, each known as a record of the same source.
    pub async fn alias_links(&self) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT a.record_id, b.record_id FROM events e \
             JOIN source_records a ON a.source = e.source AND a.source_id = e.user_id \
             JOIN source_records b ON b.source = e.source AND b.source_id = e.name \
             WHERE e.kind = 'alias'",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Records the start of a long-running job; returns its id.
    pub async fn start_job(&self, kind: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO jobs (kind, status, started_at) VALUES ($1, 'running', $2) RETURNING job_id",
        )
        .bind(kind)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Records the end of a job with its summary (JSON).
    pub async fn finish_job(&self, job_id: i64, status: &str, summary: &str) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = $1, finished_at = $2, summary = $3 WHERE job_id = $4",
        )
        .bind(status)
        .bind(now_ms())
        .bind(summary)
        .bind(job_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
