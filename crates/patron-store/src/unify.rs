//! The unify stage's storage side: a snapshot of source records to cluster, and the bulk write
//! of its result (record → profile, golden profiles, identity graph, search index, order
//! attribution) in one transaction, so readers never see half a re-clustering.

use crate::bulk::{bind, insert, run_steps, Insert, Step, Val};
use crate::{now_ms, Backend, Result, Store, Vault};
use futures_util::TryStreamExt;
use rayon::prelude::*;
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

/// A golden field's name as users see it: the column without its `_enc` suffix.
pub fn field_name(column: &str) -> &str {
    column.strip_suffix("_enc").unwrap_or(column)
}

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
    /// Blind index of the loyalty id.
    pub loyalty_hash: Option<Vec<u8>>,
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
    /// The source each golden value came from, per [`GOLDEN_FIELDS`] entry.
    pub sources: [Option<String>; 8],
}

/// A profile's records moving into another profile, kept so it can be undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The profile that holds the records now.
    pub survivor: i64,
    /// The profile id that went away (it resolves to `survivor` from now on).
    pub merged: i64,
    /// The record ids that moved.
    pub records: Vec<i64>,
}

/// A recorded merge that has not been undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeEntry {
    /// Its id.
    pub merge_id: i64,
    /// What moved where.
    pub merge: Merge,
}

/// The result of (re-)clustering some or all profiles, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Unification {
    /// The profile ids whose rows this replaces (the old and the new ones); `None`: all.
    pub scope: Option<Vec<i64>>,
    /// Where the records went.
    pub placement: Placement,
    /// The profiles they make.
    pub profiles: Profiles,
}

/// What a unification knows once its records are clustered, before any golden record is
/// made: written first.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// `(record id, profile id)` for every record in scope.
    pub assignments: Vec<(i64, i64)>,
    /// The identity graph of those profiles: (profile, kind, blind index).
    pub identities: Vec<(i64, &'static str, Vec<u8>)>,
    /// Their name search index: (profile, token blind index).
    pub name_tokens: Vec<(i64, Vec<u8>)>,
}

/// The profiles of a [`Placement`]: golden records, and what merged.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    /// The golden profile of every profile in scope that has records.
    pub golden: Vec<GoldenRow>,
    /// Profiles whose records moved into another one.
    pub merges: Vec<Merge>,
    /// Earlier merges this undoes.
    pub undone: Vec<i64>,
    /// Who made the change, for the merges' audit entries.
    pub actor: String,
}

/// A source record named by its source, with the profile it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordRef {
    /// Row id.
    pub record_id: i64,
    /// Source system.
    pub source: String,
    /// Id in the source.
    pub source_id: String,
    /// Current profile.
    pub customer_id: Option<i64>,
}

/// A pair waiting for a person's decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReviewItem {
    /// Queue id, for accept and reject.
    pub review_id: i64,
    /// One record.
    pub a: RecordRef,
    /// The other.
    pub b: RecordRef,
    /// Match weight (log2 odds) the last run gave the pair.
    pub weight: f64,
    /// Whether they are in one profile now.
    pub linked: bool,
}

/// A person's decision about two records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The same person.
    Same,
    /// Different persons.
    Different,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Same => "same",
            Decision::Different => "different",
        }
    }
}

impl Store {
    /// Reads every source record for clustering.
    pub async fn unify_snapshot(&self) -> Result<Vec<UnifyRecord>> {
        self.unify_records("", Vec::new()).await
    }

    /// Reads every source record for clustering, each with what `featurize` makes of it (given
    /// the vault, to open its sealed fields). A SQLite store featurizes the records already
    /// read while it reads the rest.
    pub async fn unify_snapshot_with<T: Send + 'static>(
        &self,
        featurize: impl Fn(&Vault, &UnifyRecord) -> T + Send + Sync + 'static,
    ) -> Result<(Vec<UnifyRecord>, Vec<T>)> {
        if let Some(native) = &self.native {
            let vault = self.vault.clone();
            let each = move |r: &UnifyRecord| featurize(&vault, r);
            return native
                .query_overlapped(unify_records_sql(""), native_unify_record, each)
                .await;
        }
        let records = self.unify_records("", Vec::new()).await?;
        let made = records
            .par_iter()
            .map(|r| featurize(&self.vault, r))
            .collect();
        Ok((records, made))
    }

    /// Reads the records of the given profiles.
    pub async fn profile_records(&self, profiles: &[i64]) -> Result<Vec<UnifyRecord>> {
        if profiles.is_empty() {
            return Ok(Vec::new());
        }
        let list = crate::bulk::numbered_list(profiles.len());
        // Through the narrow table's index: the planner does not always see that the filter
        // makes the view's outer join an inner one.
        let filter = format!(
            "WHERE record_id IN (SELECT record_id FROM record_profiles WHERE customer_id IN ({list}))"
        );
        let args = profiles.iter().map(|&p| Val::from(p)).collect();
        self.unify_records(&filter, args).await
    }

    /// The countries of the latest `records` records, the most frequent first: what the
    /// next records will mostly be, read from the end of the table without a scan.
    pub async fn recent_countries(&self, records: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT country FROM \
             (SELECT country FROM source_record_data ORDER BY record_id DESC LIMIT $1) r \
             WHERE country IS NOT NULL GROUP BY country ORDER BY COUNT(*) DESC, country",
        )
        .bind(records)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// How many records no profile holds yet.
    pub async fn unplaced_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM record_profiles WHERE customer_id IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Records no profile holds yet (imported since the last unify run), oldest first.
    pub async fn unplaced_records(&self) -> Result<Vec<UnifyRecord>> {
        self.unify_records(
            "WHERE record_id IN (SELECT record_id FROM record_profiles WHERE customer_id IS NULL)",
            Vec::new(),
        )
        .await
    }

    /// The records of the profiles that share an identity (an email or phone blind index) or
    /// a whole-name key (a name's blind index) with a record: the candidates of online
    /// matching, at most `limit` profiles per key so a shared store phone or a common name
    /// stays cheap.
    pub async fn candidate_records(
        &self,
        identities: &[Vec<u8>],
        names: &[Vec<u8>],
        limit: i64,
    ) -> Result<Vec<UnifyRecord>> {
        // One statement for every key and the records they find: each round trip costs more
        // than the lookups (on PostgreSQL, two fewer per lookup).
        let mut parts = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        for (table, column, hashes) in [
            ("identities", "value_hash", identities),
            ("name_index", "token_hash", names),
        ] {
            for _ in hashes {
                parts.push(format!(
                    "SELECT * FROM (SELECT customer_id FROM {table} WHERE {column} = {} LIMIT {}) t{}",
                    next(),
                    next(),
                    parts.len()
                ));
            }
        }
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        // Through the narrow table's index, as `profile_records`.
        let filter = format!(
            "WHERE record_id IN (SELECT record_id FROM record_profiles WHERE customer_id IN ({}))",
            parts.join(" UNION ")
        );
        let args = identities
            .iter()
            .chain(names)
            .flat_map(|h| [Val::from(h.clone()), Val::from(limit)])
            .collect();
        self.unify_records(&filter, args).await
    }

    async fn unify_records(&self, filter: &str, args: Vec<Val>) -> Result<Vec<UnifyRecord>> {
        let sql = unify_records_sql(filter);
        // A SQLite store's records are read natively: the pool's per-value copies were a
        // quarter of a unify run, and its thread hops most of an online lookup.
        if let Some(native) = &self.native {
            return native.query(sql, args, native_unify_record).await;
        }
        let mut query = sqlx::query(&sql);
        for a in args {
            query = bind(query, a);
        }
        let mut rows = query.fetch(&self.pool);
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
                loyalty_hash: row.try_get("loyalty_hash")?,
                recency: row.try_get("recency")?,
                received_at: row.try_get("received_at")?,
                fields,
            });
        }
        Ok(out)
    }

    /// The largest profile id ever handed out (0 when none), so new ids never reuse old ones,
    /// an erased person's included.
    pub async fn max_customer_id(&self) -> Result<i64> {
        let erased = crate::subject::erased_ids_up_to(&mut *self.pool.acquire().await?).await?;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(m), 0) AS m FROM \
             (SELECT MAX(customer_id) AS m FROM customers \
              UNION ALL SELECT MAX(customer_id) FROM record_profiles \
              UNION ALL SELECT MAX(alias_id) FROM customer_aliases) t",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("m")?.max(erased))
    }

    /// Writes a unification result in one transaction: record → profile assignments, golden
    /// profiles, identity graph and name index of the profiles in scope, merges with their
    /// aliases and audit entries, and the re-attribution of orders. Profiles in scope that no
    /// record points to any more are removed.
    pub async fn apply_unification(&self, u: Unification) -> Result<()> {
        let Unification {
            scope,
            placement,
            profiles,
        } = u;
        self.write_unification(scope.as_deref(), placement, || profiles)
            .await
    }

    /// [`Store::apply_unification`] of `placement` and the profiles `rest` makes of it: a
    /// SQLite store writes the placement (assignments and lookup tables) while `rest` runs
    /// (survivorship, at 200,000 records shorter than that write), then each later step as
    /// soon as it is made. A panic in `rest` writes nothing. `rest` is not async, so nothing
    /// can write through the store while this holds the write lock.
    pub async fn write_unification(
        &self,
        scope: Option<&[i64]>,
        placement: Placement,
        rest: impl FnOnce() -> Profiles,
    ) -> Result<()> {
        match &self.native {
            Some(native) => {
                // Dropped unfinished (a panic in `rest`), the write rolls back.
                let mut write = native.start();
                placement_steps(scope, Backend::Sqlite, placement, &mut |step| {
                    write.send(step)
                });
                profile_steps(scope, rest(), &mut |step| write.send(step));
                write.commit().await?;
            }
            None => {
                let mut steps = Vec::new();
                placement_steps(scope, self.backend, placement, &mut |step| steps.push(step));
                profile_steps(scope, rest(), &mut |step| steps.push(step));
                let mut tx = self.begin_membership_change().await?;
                run_steps(&mut tx, self.backend, steps).await?;
                tx.commit().await?;
            }
        }
        let started = std::time::Instant::now();
        // The merges' audit entries join the chain.
        self.seal_audit().await?;
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "write: audit sealed"
        );
        Ok(())
    }

    /// The profile that now holds the records of a merged-away profile id.
    pub async fn alias_of(&self, id: i64) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT customer_id FROM customer_aliases WHERE alias_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Whether a profile exists.
    pub async fn profile_exists(&self, id: i64) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM customers WHERE customer_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// A record named by its source and id there.
    pub async fn record_ref(&self, source: &str, source_id: &str) -> Result<Option<RecordRef>> {
        let row = sqlx::query(
            "SELECT record_id, source, source_id, customer_id FROM source_records \
             WHERE source = $1 AND source_id = $2",
        )
        .bind(source)
        .bind(source_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| record_ref(&r, "")).transpose()
    }

    /// Records or replaces a person's decision about two records.
    pub async fn decide(
        &self,
        pairs: &[(i64, i64)],
        decision: Decision,
        actor: &str,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_membership_change().await?;
        let stored = stored_records(&mut tx, pairs.iter().flat_map(|&(a, b)| [a, b])).await?;
        let rows = pairs
            .iter()
            .filter(|(a, b)| stored.contains(a) && stored.contains(b))
            .map(|&(a, b)| {
                vec![
                    a.min(b).into(),
                    a.max(b).into(),
                    decision.as_str().into(),
                    actor.into(),
                    now.into(),
                ]
            })
            .collect();
        insert(
            &mut tx,
            self.backend,
            "match_decisions",
            &["record_a", "record_b", "decision", "actor", "at"],
            "ON CONFLICT (record_a, record_b) DO UPDATE SET decision = excluded.decision, \
             actor = excluded.actor, at = excluded.at",
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every decision: `(record a, record b, decision)`.
    pub async fn decisions(&self) -> Result<Vec<(i64, i64, Decision)>> {
        let rows = sqlx::query("SELECT record_a, record_b, decision FROM match_decisions")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let d: String = r.try_get(2)?;
                let d = if d == "same" {
                    Decision::Same
                } else {
                    Decision::Different
                };
                Ok((r.try_get(0)?, r.try_get(1)?, d))
            })
            .collect()
    }

    /// Replaces the review queue with the pairs of the latest run: `(record a, record b,
    /// weight)`, most uncertain first.
    pub async fn replace_review_queue(&self, pairs: Vec<(i64, i64, f64)>) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin_membership_change().await?;
        sqlx::query("DELETE FROM review_queue")
            .execute(&mut *tx)
            .await?;
        let stored = stored_records(&mut tx, pairs.iter().flat_map(|&(a, b, _)| [a, b])).await?;
        let rows = pairs
            .into_iter()
            .filter(|(a, b, _)| stored.contains(a) && stored.contains(b))
            .map(|(a, b, w)| vec![a.min(b).into(), a.max(b).into(), w.into(), now.into()])
            .collect();
        insert(
            &mut tx,
            self.backend,
            "review_queue",
            &["record_a", "record_b", "weight", "created_at"],
            "ON CONFLICT (record_a, record_b) DO NOTHING",
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The review queue, most uncertain first.
    pub async fn review_list(&self, limit: i64, offset: i64) -> Result<Vec<ReviewItem>> {
        self.review_items("ORDER BY q.review_id LIMIT $1 OFFSET $2", &[limit, offset])
            .await
    }

    /// One queued pair.
    pub async fn review_item(&self, review_id: i64) -> Result<Option<ReviewItem>> {
        Ok(self
            .review_items("WHERE q.review_id = $1", &[review_id])
            .await?
            .pop())
    }

    async fn review_items(&self, tail: &str, args: &[i64]) -> Result<Vec<ReviewItem>> {
        let sql = format!(
            "SELECT q.review_id, q.weight, \
             a.record_id AS a_record_id, a.source AS a_source, a.source_id AS a_source_id, \
             a.customer_id AS a_customer_id, \
             b.record_id AS b_record_id, b.source AS b_source, b.source_id AS b_source_id, \
             b.customer_id AS b_customer_id \
             FROM review_queue q JOIN source_records a ON a.record_id = q.record_a \
             JOIN source_records b ON b.record_id = q.record_b {tail}"
        );
        let mut query = sqlx::query(&sql);
        for a in args {
            query = query.bind(*a);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let (a, b) = (record_ref(r, "a_")?, record_ref(r, "b_")?);
                Ok(ReviewItem {
                    review_id: r.try_get("review_id")?,
                    linked: a.customer_id.is_some() && a.customer_id == b.customer_id,
                    a,
                    b,
                    weight: r.try_get("weight")?,
                })
            })
            .collect()
    }

    /// Takes pairs off the review queue.
    pub async fn review_remove(&self, pairs: &[(i64, i64)]) -> Result<()> {
        for &(a, b) in pairs {
            sqlx::query("DELETE FROM review_queue WHERE record_a = $1 AND record_b = $2")
                .bind(a.min(b))
                .bind(a.max(b))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The latest merge that took `merged`'s records away and is not undone yet.
    pub async fn merge_to_undo(&self, merged: i64) -> Result<Option<MergeEntry>> {
        let row = sqlx::query(
            "SELECT merge_id, survivor, records FROM merges WHERE merged = $1 \
             AND undone_at IS NULL ORDER BY merge_id DESC LIMIT 1",
        )
        .bind(merged)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let records: String = row.try_get("records")?;
        Ok(Some(MergeEntry {
            merge_id: row.try_get("merge_id")?,
            merge: Merge {
                survivor: row.try_get("survivor")?,
                merged,
                records: serde_json::from_str(&records).unwrap_or_default(),
            },
        }))
    }

    /// Every record and the profile it belongs to: `(source, source id, profile)`.
    pub async fn links(&self) -> Result<Vec<(String, String, Option<i64>)>> {
        let rows = sqlx::query(
            "SELECT source, source_id, customer_id FROM source_records ORDER BY customer_id, record_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}

/// The records clustering reads, with `filter` (a `WHERE` clause or nothing), by id.
fn unify_records_sql(filter: &str) -> String {
    format!(
        "SELECT record_id, source, source_id, customer_id, email_hash, phone_hash, name_tokens, \
         COALESCE(source_created_at, updated_at) AS recency, received_at, {}, loyalty_hash \
         FROM source_records {filter} ORDER BY record_id",
        GOLDEN_FIELDS.join(", ")
    )
}

/// A [`UnifyRecord`] from a native SQLite row of the snapshot query (same column order).
fn native_unify_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<UnifyRecord> {
    let mut fields: [Option<FieldValue>; 8] = Default::default();
    for (i, col) in GOLDEN_FIELDS.iter().enumerate() {
        fields[i] = if col.ends_with("_enc") {
            row.get::<_, Option<Vec<u8>>>(9 + i)?
                .map(FieldValue::Sealed)
        } else {
            row.get::<_, Option<String>>(9 + i)?.map(FieldValue::Plain)
        };
    }
    Ok(UnifyRecord {
        record_id: row.get(0)?,
        source: row.get(1)?,
        source_id: row.get(2)?,
        customer_id: row.get(3)?,
        email_hash: row.get(4)?,
        phone_hash: row.get(5)?,
        name_tokens: row.get(6)?,
        loyalty_hash: row.get(9 + GOLDEN_FIELDS.len())?,
        recency: row.get(7)?,
        received_at: row.get(8)?,
        fields,
    })
}

fn record_ref(r: &sqlx::any::AnyRow, prefix: &str) -> Result<RecordRef> {
    Ok(RecordRef {
        record_id: r.try_get(format!("{prefix}record_id").as_str())?,
        source: r.try_get(format!("{prefix}source").as_str())?,
        source_id: r.try_get(format!("{prefix}source_id").as_str())?,
        customer_id: r.try_get(format!("{prefix}customer_id").as_str())?,
    })
}

/// Gives orders the profile of their customer's record (a filter is appended by callers).
pub(crate) const ATTRIBUTE_ORDERS: &str =
    "UPDATE orders SET customer_id = (SELECT r.customer_id FROM source_records r \
     WHERE r.source = orders.source AND r.source_id = orders.customer_source_id)";

/// Which of `ids` are stored records. A record erased since whoever names it (a unify run's
/// review pair, a person's decision) read it is not; ids are never reused, so a stored id is
/// the record that was read.
async fn stored_records(
    conn: &mut sqlx::AnyConnection,
    ids: impl Iterator<Item = i64>,
) -> Result<std::collections::HashSet<i64>> {
    crate::bulk::existing(conn, "record_profiles", "record_id", dedup(ids.collect())).await
}

/// Gives order lines the profile of their order.
pub(crate) const ATTRIBUTE_ORDER_LINES: &str =
    "UPDATE order_lines SET customer_id = (SELECT o.customer_id FROM orders o \
     WHERE o.source = order_lines.source AND o.order_id = order_lines.order_id)";

/// Columns of a golden profile row: the id, [`GOLDEN_FIELDS`], then bookkeeping.
static GOLDEN_ROW: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut cols = vec!["customer_id"];
    cols.extend(GOLDEN_FIELDS);
    cols.extend(["records", "created_at", "updated_at", "field_sources"]);
    cols
});

/// The first steps of writing a unification, each handed to `emit`: the record → profile
/// assignments of `scope` (`None`: every record), then the lookup tables of its profiles.
fn placement_steps(
    scope: Option<&[i64]>,
    backend: Backend,
    placement: Placement,
    emit: &mut dyn FnMut(Step),
) {
    let Placement {
        assignments,
        identities,
        name_tokens,
    } = placement;
    [
        "DROP TABLE IF EXISTS unify_assign",
        "DROP TABLE IF EXISTS unify_scope",
        "CREATE TEMPORARY TABLE unify_assign (record_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL)",
        "CREATE TEMPORARY TABLE unify_scope (customer_id BIGINT PRIMARY KEY)",
    ]
    .into_iter()
    .map(Step::sql)
    .for_each(&mut *emit);
    if let Some(scope) = scope {
        let rows = dedup(scope.to_vec())
            .into_iter()
            .map(|c| vec![c.into()])
            .collect();
        emit(rows_step("unify_scope", &["customer_id"], "", rows));
    }
    // Rows are built in parallel: at 1,000,000 records building them took 1.5 s on one core.
    let rows = assignments
        .into_par_iter()
        .map(|(r, c)| vec![r.into(), c.into()])
        .collect();
    emit(rows_step(
        "unify_assign",
        &["record_id", "customer_id"],
        "",
        rows,
    ));
    // A record erased since the run read it would come back in its profile's golden record
    // and lookup rows: the write is refused instead. Every stored record has its row in
    // `record_profiles` (made by trigger as it is stored, removed with it). Nothing erases
    // meanwhile: SQLite's write lock is held, and PostgreSQL's erasures wait for this write's
    // advisory lock ([`crate::Store::begin_membership_change`]).
    emit(Step::Refuse {
        sql: "SELECT 1 FROM unify_assign a \
              LEFT JOIN record_profiles r ON r.record_id = a.record_id \
              WHERE r.record_id IS NULL LIMIT 1",
        why:
            "a record read for this change was erased meanwhile; nothing was written: run it again",
    });
    // Only records whose profile changed are written: a nightly re-run moves few. (Updated
    // in place: an upsert joined to the wide record rows to leave erased ones out, reading
    // every page of them: 0.39 s at 200,000 records, against 0.22 s.)
    emit(Step::sql(
        "UPDATE record_profiles SET customer_id = a.customer_id FROM unify_assign a \
         WHERE a.record_id = record_profiles.record_id \
         AND record_profiles.customer_id IS DISTINCT FROM a.customer_id",
    ));

    // Profiles in scope that no record points to any more go. Before the golden records:
    // every profile this write makes has records (the check above refuses one whose records
    // were erased), and on a first run there is nothing yet to scan. NOT EXISTS, not NOT IN:
    // PostgreSQL runs NOT IN over a subquery as a scan of it per row once its ids outgrow
    // work_mem (minutes at 200,000 profiles), NOT EXISTS as a hash join.
    let orphans = "DELETE FROM customers WHERE NOT EXISTS \
         (SELECT 1 FROM record_profiles r WHERE r.customer_id = customers.customer_id)";
    emit(Step::sql(match scope {
        Some(_) => format!("{orphans} AND customer_id IN (SELECT customer_id FROM unify_scope)"),
        None => orphans.to_owned(),
    }));

    // The lookup tables are keyed by hash (what is looked up), so rows are written sorted
    // that way and appended in key order. Their rows are replaced per profile, by the index
    // on profile ids: a record re-imported with a new email keeps its profile, and only that
    // profile's rows know its old hash. A full run drops that index before loading and
    // builds it once after, instead of updating it row by row.
    let identities = dedup(identities.into_iter().map(|(c, k, h)| (h, c, k)).collect());
    let names = dedup(name_tokens.into_iter().map(|(c, h)| (h, c)).collect());
    let (before_load, after_load) = match (scope, backend) {
        (Some(_), _) => (vec![], vec![]),
        (None, Backend::Sqlite) => (
            vec![
                "DROP INDEX IF EXISTS identities_customer",
                "DROP INDEX IF EXISTS name_index_customer",
            ],
            vec![
                "CREATE INDEX identities_customer ON identities (customer_id)",
                "CREATE INDEX name_index_customer ON name_index (customer_id)",
            ],
        ),
        // PostgreSQL inserts 16-byte keys into a B-tree slowly (at 200,000 records the name
        // index took 1.8 s even from another table, against 0.6 s to load it bare and build
        // its key after), so a full run empties both tables and builds every index after the
        // load. (SQLite's two tables are their keys.)
        (None, Backend::Postgres) => (
            vec![
                "DROP INDEX IF EXISTS identities_customer",
                "DROP INDEX IF EXISTS name_index_customer",
                "ALTER TABLE identities DROP CONSTRAINT IF EXISTS identities_pkey",
                "ALTER TABLE name_index DROP CONSTRAINT IF EXISTS name_index_pkey",
                "TRUNCATE identities, name_index",
            ],
            vec![
                "ALTER TABLE identities ADD PRIMARY KEY (value_hash, customer_id, kind)",
                "ALTER TABLE name_index ADD PRIMARY KEY (token_hash, customer_id)",
                "CREATE INDEX identities_customer ON identities (customer_id)",
                "CREATE INDEX name_index_customer ON name_index (customer_id)",
            ],
        ),
    };
    before_load.into_iter().map(Step::sql).for_each(&mut *emit);
    emit(Step::sql(scoped(scope, "DELETE FROM identities")));
    let rows = identities
        .into_par_iter()
        .map(|(h, c, k)| vec![h.into(), c.into(), k.into()])
        .collect();
    emit(rows_step(
        "identities",
        &["value_hash", "customer_id", "kind"],
        "",
        rows,
    ));
    emit(Step::sql(scoped(scope, "DELETE FROM name_index")));
    let rows = names
        .into_par_iter()
        .map(|(h, c)| vec![h.into(), c.into()])
        .collect();
    emit(rows_step(
        "name_index",
        &["token_hash", "customer_id"],
        "",
        rows,
    ));
    after_load.into_iter().map(Step::sql).for_each(&mut *emit);
}

/// `sql` limited to the profiles in `scope` (`None`: all): by a temporary table rather than
/// a bound list, which backends limit.
fn scoped(scope: Option<&[i64]>, sql: &str) -> String {
    match scope {
        Some(_) => format!("{sql} WHERE customer_id IN (SELECT customer_id FROM unify_scope)"),
        None => sql.to_owned(),
    }
}

/// Rows for one table, as a step.
fn rows_step(
    table: &'static str,
    columns: &'static [&'static str],
    suffix: &str,
    rows: Vec<Vec<Val>>,
) -> Step {
    Step::Insert(Insert {
        table,
        columns,
        suffix: suffix.to_owned(),
        rows,
    })
}

/// The rest of writing a unification after [`placement_steps`]: golden records, merges, the
/// orders' attribution, each step handed to `emit` as soon as it is made (a SQLite store
/// writes one while the next is made).
fn profile_steps(scope: Option<&[i64]>, profiles: Profiles, emit: &mut dyn FnMut(Step)) {
    let now = now_ms();
    let Profiles {
        golden,
        merges,
        undone,
        actor,
    } = profiles;
    let set = GOLDEN_ROW[1..]
        .iter()
        .filter(|c| **c != "created_at")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = golden
        .into_par_iter()
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
            let sources: serde_json::Map<String, serde_json::Value> = GOLDEN_FIELDS
                .iter()
                .zip(g.sources)
                .filter_map(|(col, s)| Some((field_name(col).to_owned(), s?.into())))
                .collect();
            let sources = serde_json::Value::Object(sources).to_string();
            row.extend([
                g.records.into(),
                g.created_at.into(),
                now.into(),
                sources.into(),
            ]);
            row
        })
        .collect();
    let upsert = format!("ON CONFLICT (customer_id) DO UPDATE SET {set}");
    emit(rows_step("customers", &GOLDEN_ROW[..], &upsert, rows));

    // Merges: what moved (to undo it), where the old id leads now, and who did it.
    let actor = actor.as_str();
    let rows = merges
        .iter()
        .map(|m| {
            let records = serde_json::to_string(&m.records).unwrap_or_default();
            vec![
                m.survivor.into(),
                m.merged.into(),
                records.into(),
                actor.into(),
                now.into(),
            ]
        })
        .collect();
    emit(rows_step(
        "merges",
        &["survivor", "merged", "records", "actor", "at"],
        "",
        rows,
    ));
    let rows = merges
        .iter()
        .map(|m| {
            vec![
                now.into(),
                actor.into(),
                "profile.merge".into(),
                format!("{} <- {}", m.survivor, m.merged).into(),
                format!("{} records", m.records.len()).into(),
            ]
        })
        .collect();
    emit(rows_step(
        "audit_log",
        &["at", "actor", "action", "target", "detail"],
        "",
        rows,
    ));
    for m in &merges {
        emit(Step::Exec(
            "UPDATE customer_aliases SET customer_id = $1 WHERE customer_id = $2".into(),
            vec![m.survivor.into(), m.merged.into()],
        ));
    }
    let rows = merges
        .iter()
        .map(|m| vec![m.merged.into(), m.survivor.into()])
        .collect();
    emit(rows_step(
        "customer_aliases",
        &["alias_id", "customer_id"],
        "ON CONFLICT (alias_id) DO UPDATE SET customer_id = excluded.customer_id",
        rows,
    ));
    for id in &undone {
        emit(Step::Exec(
            "UPDATE merges SET undone_at = $1 WHERE merge_id = $2".into(),
            vec![now.into(), (*id).into()],
        ));
    }
    // An id that is a live profile again (an unmerge) is nobody's alias. (Looked up alias by
    // alias: `IN (SELECT …)` first listed every profile, 0.03 s at 200,000 with no alias.)
    emit(Step::sql(
        "DELETE FROM customer_aliases WHERE EXISTS \
         (SELECT 1 FROM customers c WHERE c.customer_id = customer_aliases.alias_id)",
    ));

    emit(Step::sql(scoped(scope, ATTRIBUTE_ORDERS)));
    emit(Step::sql(scoped(scope, ATTRIBUTE_ORDER_LINES)));
    emit(Step::sql("DROP TABLE unify_assign"));
    emit(Step::sql("DROP TABLE unify_scope"));
}

fn dedup<T: Ord + Send>(mut v: Vec<T>) -> Vec<T> {
    v.par_sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unification whose golden records could not be made (a panic in survivorship, on the
    /// caller's side of the streamed write) writes nothing and leaves the store writable.
    #[tokio::test]
    async fn a_failed_unification_writes_nothing_and_releases_the_store() {
        let (_dir, store) = crate::temp_store().await;
        let failing = store.clone();
        let panicked = tokio::spawn(async move {
            failing
                .write_unification(Some(&[7]), Placement::default(), || {
                    panic!("survivorship failed")
                })
                .await
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
        // Not waiting for a lock the failed write would still hold.
        store.put_setting("after", b"1").await.unwrap();
        store
            .apply_unification(Unification {
                scope: Some(vec![7]),
                ..Unification::default()
            })
            .await
            .unwrap();
    }

    /// A record id, once given, is never given again: a unify run that read an erased record
    /// must not take a new one for it (its write checks the ids it read are still stored).
    #[tokio::test]
    async fn record_ids_are_never_handed_out_again() {
        let (_dir, store) = crate::temp_store().await;
        let add = |source_id: &'static str| {
            sqlx::query(
                "INSERT INTO source_record_data (source, source_id, received_at, updated_at) \
                 VALUES ('web', $1, 0, 0) RETURNING record_id",
            )
            .bind(source_id)
            .fetch_one(&store.pool)
        };
        let id = |row: sqlx::any::AnyRow| row.try_get::<i64, _>(0).unwrap();
        let first = id(add("a").await.unwrap());
        let newest = id(add("b").await.unwrap());
        sqlx::query("DELETE FROM source_record_data WHERE record_id = $1")
            .bind(newest)
            .execute(&store.pool)
            .await
            .unwrap();
        let next = id(add("c").await.unwrap());
        assert_eq!((first + 1, newest + 1), (newest, next));
    }

    /// A run places the records it read, and a later run moves a record by its assignment
    /// alone; one that read a record erased since writes nothing.
    #[tokio::test]
    async fn a_unification_places_records_and_refuses_erased_ones() {
        let (_dir, store) = crate::temp_store().await;
        sqlx::query(
            "INSERT INTO source_record_data (record_id, source, source_id, received_at, updated_at) \
             VALUES (1, 'web', 'a', 0, 0), (2, 'web', 'b', 0, 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let placed = || async {
            sqlx::query_as::<_, (i64, Option<i64>)>(
                "SELECT record_id, customer_id FROM record_profiles ORDER BY record_id",
            )
            .fetch_all(&store.pool)
            .await
            .unwrap()
        };
        assert_eq!(placed().await, [(1, None), (2, None)]);
        let run = |assignments: Vec<(i64, i64)>| {
            store.apply_unification(Unification {
                placement: Placement {
                    assignments,
                    ..Placement::default()
                },
                ..Unification::default()
            })
        };
        run(vec![(1, 10), (2, 10)]).await.unwrap();
        assert_eq!(placed().await, [(1, Some(10)), (2, Some(10))]);
        run(vec![(1, 10), (2, 11)]).await.unwrap();
        assert_eq!(placed().await, [(1, Some(10)), (2, Some(11))]);
        // Record 3 was read by the run and erased before it wrote.
        let refused = run(vec![(1, 12), (2, 12), (3, 12)]).await.unwrap_err();
        assert!(matches!(refused, crate::StoreError::Stale(_)), "{refused}");
        assert_eq!(placed().await, [(1, Some(10)), (2, Some(11))]);
    }
}
