//! Master key rotation: every sealed value re-encrypted under the newest key, online.
//!
//! A rotation adds a key to the ring ([`Vault::add_master_key`]), records itself in
//! `settings`, then walks every table that holds ciphertext in primary-key order and, batch by
//! batch, re-seals the values whose key id is not the active one. Each batch is one
//! transaction, and each value is replaced only if it is still the one read (compare and
//! swap), so a request that rewrote it meanwhile keeps its write. Because the walk selects by
//! key id, a rotation stopped anywhere (crash, `--max-batches`) resumes where it stopped by
//! simply running again. Running processes pick the new key up from the key file within
//! [`RELOAD_EVERY`]; the rotation keeps passing over the data until a pass finds nothing left
//! and that long has passed, so values they sealed just before switching are caught too.
//!
//! [`Vault::add_master_key`]: crate::Vault::add_master_key

use crate::vault::RELOAD_EVERY;
use crate::{now_ms, Result, Store, StoreError, Vault};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;
use std::time::Duration;

/// Every column holding ciphertext, by table and primary key. A new sealed column must be
/// added here, or rotation leaves it under the old key (the store tests check the list).
pub(crate) const SEALED: &[(&str, &str, &[&str])] = &[
    (
        "customers",
        "customer_id",
        &[
            "name_enc",
            "email_enc",
            "phone_enc",
            "birth_date_enc",
            "address_enc",
        ],
    ),
    (
        "source_record_data",
        "record_id",
        &[
            "name_enc",
            "email_enc",
            "phone_enc",
            "birth_date_enc",
            "address_enc",
            "raw_enc",
        ],
    ),
    ("events", "event_id", &["properties_enc"]),
    ("tickets", "ticket_id", &["body_enc"]),
    ("quarantine", "quarantine_id", &["value_enc", "raw_enc"]),
];

/// Passes over the data before a rotation gives up on values that keep arriving under an
/// old key.
const MAX_PASSES: usize = 10;

/// How a rotation walks the data.
#[derive(Debug, Clone)]
pub struct RotationOptions {
    /// Rows read per batch (one transaction).
    pub batch: usize,
    /// Stop after this many batches that changed something; run again to continue.
    pub max_batches: Option<usize>,
    /// Rest between batches, to leave the database to live traffic.
    pub pause: Duration,
}

impl Default for RotationOptions {
    fn default() -> Self {
        RotationOptions {
            batch: 500,
            max_batches: None,
            pause: Duration::ZERO,
        }
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The key everything is being re-sealed under.
    pub key: u8,
    /// Whether this run continued an unfinished rotation.
    pub resumed: bool,
    /// Values re-sealed by this run, by `table.column`.
    pub resealed: BTreeMap<String, u64>,
    /// Whether every sealed value is now under `key`.
    pub complete: bool,
    /// Values still sealed under each other key.
    pub remaining: BTreeMap<u8, u64>,
}

impl Store {
    /// Starts a rotation (adding a key to the key file) or, if one was left unfinished,
    /// continues it; then re-seals. `progress` gets rows looked at and rows in all.
    pub async fn rotate_master_key(
        &self,
        actor: &str,
        opts: &RotationOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Rotation> {
        let (key, resumed) = self.start_rotation(actor).await?;
        let started: i64 = self
            .setting("rotation_started")
            .await?
            .and_then(|b| String::from_utf8(b).ok()?.parse().ok())
            .unwrap_or_else(now_ms);
        let total = self.sealed_rows().await?;
        let mut resealed = BTreeMap::new();
        let mut batches = 0usize;
        let mut first_pass = true;
        for pass in 1.. {
            if pass > MAX_PASSES {
                // Someone keeps sealing under an old key: a process that cannot see the key
                // file (keys in its environment) was not restarted with the new ring.
                tracing::warn!("values keep arriving under an old key after {MAX_PASSES} passes");
                return self.rotation_report(key, resumed, resealed).await;
            }
            let mut changed = 0u64;
            let mut seen = 0u64;
            for (table, pk, cols) in SEALED {
                let mut after = i64::MIN;
                loop {
                    let (rows, last, counts) =
                        self.reseal_batch(table, pk, cols, after, opts).await?;
                    seen += rows;
                    if first_pass {
                        progress(seen, total);
                    }
                    let in_batch: u64 = counts.iter().sum();
                    for (col, n) in cols.iter().zip(counts).filter(|(_, n)| *n > 0) {
                        *resealed.entry(format!("{table}.{col}")).or_insert(0) += n;
                    }
                    changed += in_batch;
                    if in_batch > 0 {
                        batches += 1;
                        if opts.max_batches.is_some_and(|max| batches >= max) {
                            return self.rotation_report(key, resumed, resealed).await;
                        }
                        tokio::time::sleep(opts.pause).await;
                    }
                    match last {
                        Some(last) if rows as usize == opts.batch.max(1) => after = last,
                        _ => break,
                    }
                }
            }
            changed += self.reseal_canary().await?;
            first_pass = false;
            let waited = Duration::from_millis((now_ms() - started).max(0) as u64);
            if changed == 0 && waited >= RELOAD_EVERY * 2 {
                break;
            }
            if changed == 0 {
                tokio::time::sleep(RELOAD_EVERY * 2 - waited).await;
            }
        }
        sqlx::query("DELETE FROM settings WHERE name IN ('rotation', 'rotation_started')")
            .execute(&self.pool)
            .await?;
        self.put_setting("rotation_done", now_ms().to_string().as_bytes())
            .await?;
        self.audit(
            actor,
            "keys.rotate_master.done",
            Some(&key.to_string()),
            None,
        )
        .await?;
        self.rotation_report(key, resumed, resealed).await
    }

    /// The key a rotation re-seals under, and whether it continues an unfinished one.
    async fn start_rotation(&self, actor: &str) -> Result<(u8, bool)> {
        // Claimed in the database first, so two rotations started at once cannot both add
        // a key: the second finds the claim and continues the first's rotation.
        let claimed = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('rotation', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(vec![0u8])
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            // Unfinished (or being started elsewhere): continue, towards the newest key.
            let active = self.vault.active_key();
            self.put_setting("rotation", &[active]).await?;
            return Ok((active, true));
        }
        let key = match self.new_rotation_key() {
            Ok(key) => key,
            Err(e) => {
                sqlx::query("DELETE FROM settings WHERE name = 'rotation'")
                    .execute(&self.pool)
                    .await?;
                return Err(e);
            }
        };
        self.put_setting("rotation", &[key]).await?;
        self.put_setting("rotation_started", now_ms().to_string().as_bytes())
            .await?;
        // The key check value goes first: a process started now with a ring lacking the new
        // key is refused at once instead of reading half-rotated data.
        self.reseal_canary().await?;
        self.audit(
            actor,
            "keys.rotate_master.start",
            Some(&key.to_string()),
            None,
        )
        .await?;
        Ok((key, false))
    }

    /// The key a new rotation moves to: a new one in the key file, or the newest of a ring
    /// given in the environment.
    fn new_rotation_key(&self) -> Result<u8> {
        if self.vault.keys_from_file() {
            self.vault.add_master_key()
        } else if self.vault.key_ids().len() > 1 {
            // Keys given in the environment: the operator added the new one there.
            Ok(self.vault.active_key())
        } else {
            Err(StoreError::Key(
                "PATRON_MASTER_KEY holds one key: add the new one (`1:OLD,2:NEW`) and restart \
                 the servers with it, then rotate (see docs/SECURITY.md)"
                    .into(),
            ))
        }
    }

    /// Re-seals the values of one batch of `table` after primary key `after`; returns the rows
    /// read, the last key read (`None` at the end) and the values re-sealed per column.
    async fn reseal_batch(
        &self,
        table: &str,
        pk: &str,
        cols: &[&str],
        after: i64,
        opts: &RotationOptions,
    ) -> Result<(u64, Option<i64>, Vec<u64>)> {
        let rows = sqlx::query(&format!(
            "SELECT {pk}, {} FROM {table} WHERE {pk} > $1 ORDER BY {pk} LIMIT $2",
            cols.join(", ")
        ))
        .bind(after)
        .bind(opts.batch.max(1) as i64)
        .fetch_all(&self.pool)
        .await?;
        let last = rows.last().map(|r| r.try_get::<i64, _>(0)).transpose()?;
        let mut updates = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            for (i, col) in cols.iter().enumerate() {
                let Some(old) = row.try_get::<Option<Vec<u8>>, _>(i + 1)? else {
                    continue;
                };
                match self.vault.reseal(&old) {
                    Ok(Some(new)) => updates.push((id, i, old, new)),
                    Ok(None) => {}
                    // Damaged, or under a key no longer in the ring: left as it is and
                    // reported (`remaining`), so one bad value cannot stop the rotation.
                    Err(StoreError::Decrypt) => {
                        tracing::warn!("{table}.{col} of row {id} does not decrypt; left as is");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let mut counts = vec![0u64; cols.len()];
        if !updates.is_empty() {
            let mut tx = self.pool.begin().await?;
            for (id, i, old, new) in updates {
                let done = sqlx::query(&format!(
                    "UPDATE {table} SET {col} = $1 WHERE {pk} = $2 AND {col} = $3",
                    col = cols[i]
                ))
                .bind(new)
                .bind(id)
                .bind(old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                counts[i] += done;
            }
            tx.commit().await?;
        }
        Ok((rows.len() as u64, last, counts))
    }

    /// Re-seals the key check value; returns 1 if it was under another key.
    async fn reseal_canary(&self) -> Result<u64> {
        let Some(old) = self.setting("key_check").await? else {
            return Ok(0);
        };
        let Some(new) = self.vault.reseal(&old)? else {
            return Ok(0);
        };
        Ok(
            sqlx::query("UPDATE settings SET value = $1 WHERE name = 'key_check' AND value = $2")
                .bind(new)
                .bind(old)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Rows in the tables that hold ciphertext.
    async fn sealed_rows(&self) -> Result<u64> {
        let mut total = 0;
        for (table, _, _) in SEALED {
            let n: i64 = sqlx::query(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            total += n as u64;
        }
        Ok(total)
    }

    /// How many stored values are sealed under each master key.
    pub async fn sealed_by_key(&self) -> Result<BTreeMap<u8, u64>> {
        let mut usage = BTreeMap::new();
        let mut count = |key: Option<u8>, n: i64| {
            if let Some(key) = key {
                *usage.entry(key).or_insert(0) += n as u64;
            }
        };
        for (table, _, cols) in SEALED {
            for col in *cols {
                let rows = sqlx::query(&format!(
                    "SELECT substr({col}, 1, 1), count(*) FROM {table} \
                     WHERE {col} IS NOT NULL GROUP BY substr({col}, 1, 1)"
                ))
                .fetch_all(&self.pool)
                .await?;
                for row in rows {
                    let head: Vec<u8> = row.try_get(0)?;
                    count(Vault::key_of(&head), row.try_get(1)?);
                }
            }
        }
        if let Some(canary) = self.setting("key_check").await? {
            count(Vault::key_of(&canary), 1);
        }
        Ok(usage)
    }

    async fn rotation_report(
        &self,
        key: u8,
        resumed: bool,
        resealed: BTreeMap<String, u64>,
    ) -> Result<Rotation> {
        let mut remaining = self.sealed_by_key().await?;
        remaining.remove(&key);
        Ok(Rotation {
            key,
            resumed,
            resealed,
            complete: remaining.is_empty(),
            remaining,
        })
    }

    /// Removes master key `id` from the key file, refusing while anything stored (or an
    /// unfinished rotation) still needs it.
    pub async fn retire_master_key(&self, id: u8, actor: &str) -> Result<()> {
        if id == self.vault.active_key() {
            return Err(StoreError::Key(format!(
                "key {id} is the active key and cannot be retired"
            )));
        }
        if self.setting("rotation").await?.is_some() {
            return Err(StoreError::Key(
                "a rotation is unfinished: run `patron keys rotate-master` to complete it first"
                    .into(),
            ));
        }
        // Right after a rotation a process may not have switched keys yet; wait that out.
        let done: i64 = self
            .setting("rotation_done")
            .await?
            .and_then(|b| String::from_utf8(b).ok()?.parse().ok())
            .unwrap_or(0);
        let settle = (RELOAD_EVERY * 2).as_millis() as i64;
        if now_ms() - done < settle {
            tokio::time::sleep(Duration::from_millis(
                (settle - (now_ms() - done)).max(0) as u64
            ))
            .await;
        }
        if let Some(n) = self.sealed_by_key().await?.get(&id) {
            return Err(StoreError::Key(format!(
                "{n} stored values are still sealed with key {id}; run `patron keys rotate-master` first"
            )));
        }
        self.vault.retire_master_key(id)?;
        self.audit(actor, "keys.retire_master", Some(&id.to_string()), None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    /// Rotation re-seals only the columns `SEALED` names: it must name every one.
    #[tokio::test]
    async fn every_ciphertext_column_is_rotated() {
        let (_dir, store) = crate::temp_store().await;
        let rows = sqlx::query(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name LIKE '%\\_enc' ESCAPE '\\' ORDER BY 1, 2",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        let mut in_schema: Vec<String> = rows
            .iter()
            .map(|r| format!("{}.{}", r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect();
        let mut listed: Vec<String> = super::SEALED
            .iter()
            .flat_map(|(t, _, cols)| cols.iter().map(move |c| format!("{t}.{c}")))
            .collect();
        in_schema.sort();
        listed.sort();
        assert_eq!(listed, in_schema);
    }
}
