//! Bulk writes to a SQLite file through a native connection.
//!
//! sqlx's `Any` driver copies every bound value twice on its way to SQLite and runs each
//! statement on a worker thread; for an import that is most of the writer's time. SQLite is
//! fastest with one prepared single-row statement run many times inside one transaction, so
//! import batches for a SQLite store are written here, on a blocking thread, from the same
//! [`BatchPlan`] the pooled path executes for PostgreSQL. Everything else keeps using the pool.

use crate::bulk::{statement, Insert, Step, Val};
use crate::records::BatchPlan;
use crate::{Backend, Result, SQLITE_PRAGMAS};
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::path::PathBuf;
use std::sync::Mutex;

/// Native connections to the store's SQLite file, opened when first needed: one that
/// writes, and readers beside it.
#[derive(Debug)]
pub(crate) struct NativeSqlite {
    path: PathBuf,
    /// The writer (SQLite runs one write at a time).
    conn: Mutex<Option<rusqlite::Connection>>,
    /// Idle readers. In WAL mode a read runs beside a write on another connection, so an
    /// online lookup never waits behind an import batch or a unify run's write.
    readers: Mutex<Vec<rusqlite::Connection>>,
}

/// Readers kept open between reads; more are opened when more read at once, and closed after.
const IDLE_READERS: usize = 4;

impl NativeSqlite {
    pub(crate) fn new(path: PathBuf) -> NativeSqlite {
        NativeSqlite {
            path,
            conn: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Writes a batch in one transaction, off the async runtime.
    pub(crate) async fn write(self: &std::sync::Arc<Self>, plan: BatchPlan) -> Result<()> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.write_blocking(&plan))
            .await
            .map_err(|e| crate::StoreError::Io(format!("the SQLite writer stopped: {e}")))?
    }

    /// Drops the connections (SQLite checkpoints the log when its last connection closes).
    pub(crate) fn close(&self) {
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
        if let Ok(mut conn) = self.conn.lock() {
            conn.take();
        }
    }

    fn write_blocking(&self, plan: &BatchPlan) -> Result<()> {
        self.with_conn(|conn| Self::write_plan(conn, plan))
    }

    fn write_plan(conn: &mut rusqlite::Connection, plan: &BatchPlan) -> Result<()> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for insert in &plan.inserts {
            insert_rows(&tx, insert)?;
        }
        for (kind, keys) in &plan.resolve {
            let mut find = tx.prepare_cached(
                "SELECT quarantine_id, entry_hash, COALESCE(source, '') FROM quarantine \
                 WHERE kind = ?1 AND source_id = ?2",
            )?;
            let mut stale = Vec::new();
            for (source, id) in keys {
                let mut rows = find.query((kind, id))?;
                while let Some(row) = rows.next()? {
                    let hash: Vec<u8> = row.get(1)?;
                    let row_source: String = row.get(2)?;
                    if row_source == *source && !plan.keep.contains(&hash) {
                        stale.push(row.get::<_, i64>(0)?);
                    }
                }
            }
            let mut delete =
                tx.prepare_cached("DELETE FROM quarantine WHERE quarantine_id = ?1")?;
            for id in stale {
                delete.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `steps` in one transaction, off the async runtime.
    pub(crate) async fn run(self: &std::sync::Arc<Self>, steps: Vec<Step>) -> Result<()> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            me.with_conn(|conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                for step in &steps {
                    let started = std::time::Instant::now();
                    match step {
                        Step::Exec(sql, vals) => {
                            tx.execute(sql, rusqlite::params_from_iter(vals))?;
                        }
                        Step::Insert(insert) => insert_rows(&tx, insert)?,
                    }
                    let seconds = started.elapsed().as_secs_f64();
                    tracing::debug!(step = %step.label(), seconds, "write step");
                }
                let started = std::time::Instant::now();
                tx.commit()?;
                tracing::debug!(
                    seconds = started.elapsed().as_secs_f64(),
                    "write step: commit"
                );
                Ok(())
            })
        })
        .await
        .map_err(|e| crate::StoreError::Io(format!("the SQLite writer stopped: {e}")))?
    }

    /// Reads every row of `sql` with `args` bound through `map`, off the async runtime: for
    /// snapshots, where the pool's per-value copies dominate, and for online lookups, where
    /// its hops between threads do (a lookup's 60 records: 1.1 ms through the pool).
    pub(crate) async fn query<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        sql: String,
        args: Vec<Val>,
        map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            me.with_reader(|conn| {
                let mut st = conn.prepare_cached(&sql)?;
                let rows = st.query_map(rusqlite::params_from_iter(&args), map)?;
                Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
            })
        })
        .await
        .map_err(|e| crate::StoreError::Io(format!("the SQLite reader stopped: {e}")))?
    }

    /// Reads every row of `sql` through `map`, and hands the rows in chunks to `each` on the
    /// rayon threads as they come: reading is one core's work, and what is made of the rows
    /// (opening sealed fields, parsing) runs beside it instead of after the last row. Returns
    /// the rows and what `each` made of them, both in the rows' order.
    pub(crate) async fn query_overlapped<R: Send + 'static, T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        sql: String,
        map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
        each: impl Fn(&R) -> T + Send + Sync + 'static,
    ) -> Result<(Vec<R>, Vec<T>)> {
        const CHUNK: usize = 4096;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            me.with_reader(|conn| {
                let (tx, rx) = std::sync::mpsc::channel();
                let each = &each;
                // In place: the rows are read on this thread while both rayon threads work
                // through the chunks already read.
                rayon::in_place_scope(|scope| -> Result<()> {
                    let mut st = conn.prepare(&sql)?;
                    let mut rows = st.query([])?;
                    let (mut chunk, mut n, mut done) = (Vec::with_capacity(CHUNK), 0, false);
                    while !done {
                        match rows.next()? {
                            Some(row) => chunk.push(map(row)?),
                            None => done = true,
                        }
                        if chunk.len() == CHUNK || (done && !chunk.is_empty()) {
                            let (part, tx) = (std::mem::take(&mut chunk), tx.clone());
                            scope.spawn(move |_| {
                                let made: Vec<T> = part.iter().map(each).collect();
                                // The receiver outlives the scope; a send cannot fail.
                                let _ = tx.send((n, part, made));
                            });
                            n += 1;
                        }
                    }
                    Ok(())
                })?;
                drop(tx);
                let mut parts: Vec<(usize, Vec<R>, Vec<T>)> = rx.into_iter().collect();
                parts.sort_unstable_by_key(|p| p.0);
                let total = parts.iter().map(|p| p.1.len()).sum();
                let (mut rows, mut made) = (Vec::with_capacity(total), Vec::with_capacity(total));
                for (_, r, t) in parts {
                    rows.extend(r);
                    made.extend(t);
                }
                Ok((rows, made))
            })
        })
        .await
        .map_err(|e| crate::StoreError::Io(format!("the SQLite reader stopped: {e}")))?
    }

    /// Runs `read` on the connection, off the async runtime: for snapshots that fold millions
    /// of rows as they stream by.
    pub(crate) async fn read<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.with_reader(|conn| Ok(read(conn)?)))
            .await
            .map_err(|e| crate::StoreError::Io(format!("the SQLite reader stopped: {e}")))?
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut rusqlite::Connection) -> Result<T>) -> Result<T> {
        // A panic while holding the lock leaves no half-open transaction behind (it rolled back
        // when the transaction was dropped), so the connection is still usable.
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let conn = match &mut *guard {
            Some(conn) => conn,
            empty => empty.insert(self.open()?),
        };
        f(conn)
    }

    /// Runs `f` on an idle reader, or on a new one when none is idle.
    fn with_reader<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let out = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
        out
    }

    fn open(&self) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(&self.path)?;
        // The pool's connections wait up to sqlx's default of 5 s for the write lock; so does
        // this one.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        for pragma in SQLITE_PRAGMAS {
            conn.execute_batch(pragma)?;
        }
        Ok(conn)
    }
}

/// Inserts one table's rows through one prepared single-row statement.
fn insert_rows(tx: &rusqlite::Transaction<'_>, insert: &Insert) -> Result<()> {
    let sql = statement(
        Backend::Sqlite,
        insert.table,
        insert.columns,
        1,
        &insert.suffix,
    );
    let mut st = tx.prepare_cached(&sql)?;
    for row in &insert.rows {
        st.execute(rusqlite::params_from_iter(row))?;
    }
    Ok(())
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Int(Some(v)) => ValueRef::Integer(*v),
            Val::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Val::Blob(Some(b)) => ValueRef::Blob(b),
            Val::Real(Some(v)) => ValueRef::Real(*v),
            Val::Int(None) | Val::Text(None) | Val::Blob(None) | Val::Real(None) => ValueRef::Null,
        }))
    }
}
