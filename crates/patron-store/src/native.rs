//! Bulk writes and large or frequent reads of a SQLite file through native connections.
//!
//! sqlx's `Any` driver copies every bound value twice on its way to SQLite and runs each
//! statement on a worker thread; for an import that is most of the writer's time. SQLite is
//! fastest with one prepared statement run many times inside one transaction (one row at a
//! time for wide rows, a few dozen for narrow ones), so import batches for a SQLite store are
//! written here, on a blocking thread, from the same [`BatchPlan`] the pooled path executes
//! for PostgreSQL. Snapshots and online lookups read here too, each on a reader connection of
//! its own; everything else uses the pool.

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
    /// online lookup's reads never wait behind an import batch or a unify run's write.
    readers: Mutex<Vec<rusqlite::Connection>>,
    /// Reads at once, each on its own connection (a burst of lookups must not open hundreds).
    reading: tokio::sync::Semaphore,
}

/// Readers kept open between reads; up to [`READERS`] read at once, the rest are closed after.
const IDLE_READERS: usize = 4;
/// Readers open at once.
const READERS: usize = 8;
/// A reader's own page cache (KiB, as SQLite's negative `cache_size`): its reads are mostly
/// served by the operating system's cache, and an idle reader keeps what it holds.
const READER_CACHE: &str = "PRAGMA cache_size = -8192";

impl NativeSqlite {
    pub(crate) fn new(path: PathBuf) -> NativeSqlite {
        NativeSqlite {
            path,
            conn: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            reading: tokio::sync::Semaphore::new(READERS),
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

    /// Starts a transaction on a blocking thread that runs the steps sent to it as they come
    /// (a caller makes the later ones while SQLite writes the first), and commits only when
    /// told to: a write dropped before [`Streamed::commit`] rolls back.
    pub(crate) fn start(self: &std::sync::Arc<Self>) -> Streamed {
        let (sender, steps) = std::sync::mpsc::channel::<Option<Step>>();
        let me = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            me.with_conn(|conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut waited = std::time::Duration::ZERO;
                loop {
                    let asked = std::time::Instant::now();
                    // The sender gone without a commit (an error or a panic on its side):
                    // nothing is kept.
                    let Ok(message) = steps.recv() else {
                        return Err(crate::StoreError::Io(
                            "the write was abandoned before it was complete; nothing was written"
                                .into(),
                        ));
                    };
                    waited += asked.elapsed();
                    let Some(step) = message else { break };
                    let started = std::time::Instant::now();
                    match &step {
                        Step::Exec(sql, vals) => {
                            let mut st = tx.prepare(sql)?;
                            bind_numbered(&mut st, vals)?;
                            st.raw_execute()?;
                        }
                        Step::Insert(insert) => insert_rows(&tx, insert)?,
                        Step::Refuse { sql, why } => {
                            if tx.prepare(sql)?.exists([])? {
                                return Err(crate::StoreError::Stale((*why).to_owned()));
                            }
                        }
                    }
                    let seconds = started.elapsed().as_secs_f64();
                    tracing::debug!(step = %step.label(), seconds, "write step");
                }
                let started = std::time::Instant::now();
                tx.commit()?;
                tracing::debug!(
                    seconds = started.elapsed().as_secs_f64(),
                    waited = waited.as_secs_f64(),
                    "write step: commit"
                );
                Ok(())
            })
        });
        Streamed { sender, done }
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
        let _reading = self.reading.acquire().await;
        tokio::task::spawn_blocking(move || {
            me.with_reader(|conn| {
                let mut st = conn.prepare_cached(&sql)?;
                bind_numbered(&mut st, &args)?;
                let mut rows = st.raw_query();
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(map(row)?);
                }
                Ok(out)
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
        let _reading = self.reading.acquire().await;
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

    /// Runs `read` on a reader, off the async runtime, in one read transaction: for snapshots
    /// that fold millions of rows of several tables as they stream by, all as of one moment
    /// (an import committing between two of its statements would skew the snapshot).
    pub(crate) async fn read<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        let _reading = self.reading.acquire().await;
        tokio::task::spawn_blocking(move || {
            me.with_reader(|conn| {
                let tx = conn.unchecked_transaction()?;
                let out = read(&tx)?;
                tx.commit()?;
                Ok(out)
            })
        })
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
            None => self.open_reader()?,
        };
        let out = f(&conn);
        // A reader left inside a transaction would hold its snapshot, and with it every later
        // checkpoint of the log, for as long as it sat idle: it is closed instead.
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < IDLE_READERS && conn.is_autocommit() {
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

    fn open_reader(&self) -> Result<rusqlite::Connection> {
        let conn = self.open()?;
        conn.execute_batch(READER_CACHE)?;
        Ok(conn)
    }
}

/// A transaction being written by [`NativeSqlite::start`].
pub(crate) struct Streamed {
    /// Steps to run; `None` commits.
    sender: std::sync::mpsc::Sender<Option<Step>>,
    done: tokio::task::JoinHandle<Result<()>>,
}

impl Streamed {
    /// Queues a step. If the writer has already failed, the step is dropped and
    /// [`Streamed::commit`] reports the failure.
    pub(crate) fn send(&mut self, step: Step) {
        let _ = self.sender.send(Some(step));
    }

    /// Runs what is queued, commits, and waits for it.
    pub(crate) async fn commit(self) -> Result<()> {
        let _ = self.sender.send(None);
        self.done
            .await
            .map_err(|e| crate::StoreError::Io(format!("the SQLite writer stopped: {e}")))?
    }
}

/// Binds `args` to `$1`, `$2`, … by number, as sqlx does for the same statements. SQLite
/// numbers `$N` parameters in order of first appearance, so binding by position would put
/// the values of `… $2 … $1` in each other's place.
fn bind_numbered(st: &mut rusqlite::Statement<'_>, args: &[Val]) -> Result<()> {
    if st.parameter_count() != args.len() {
        return Err(
            rusqlite::Error::InvalidParameterCount(args.len(), st.parameter_count()).into(),
        );
    }
    for (i, arg) in args.iter().enumerate() {
        let name = format!("${}", i + 1);
        let index = st
            .parameter_index(&name)?
            .ok_or(rusqlite::Error::InvalidParameterName(name))?;
        st.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

/// Inserts one table's rows through a prepared statement run many times.
fn insert_rows(tx: &rusqlite::Transaction<'_>, insert: &Insert) -> Result<()> {
    // Narrow rows (a lookup table's hash and profile) go several to a statement: one row's
    // statement costs more than the row itself (at 200,000 records the name index's 500,000
    // rows took 0.34 s one by one, 0.23 s this way). Wide ones go one at a time, faster for
    // them (customers, imported records: 4% slower in fours).
    let per_statement = match VALUES_PER_STATEMENT / insert.columns.len().max(1) {
        rows if rows >= 8 => rows,
        _ => 1,
    };
    let sql = |rows| {
        statement(
            Backend::Sqlite,
            insert.table,
            insert.columns,
            rows,
            &insert.suffix,
        )
    };
    let mut full = tx.prepare_cached(&sql(per_statement))?;
    for chunk in insert.rows.chunks(per_statement) {
        // Rows are flattened into one list of values: a short row would shift the next one's.
        debug_assert!(chunk.iter().all(|row| row.len() == insert.columns.len()));
        let values = rusqlite::params_from_iter(chunk.iter().flatten());
        if chunk.len() == per_statement {
            full.execute(values)?;
        } else {
            tx.prepare_cached(&sql(chunk.len()))?.execute(values)?;
        }
    }
    Ok(())
}

/// Bound values per multi-row insert statement of narrow rows.
const VALUES_PER_STATEMENT: usize = 64;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A WAL-mode file with a table of three rows, and the native connections to it.
    fn store() -> (tempfile::TempDir, Arc<NativeSqlite>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');",
        )
        .unwrap();
        (dir, Arc::new(NativeSqlite::new(path)))
    }

    fn pair(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String)> {
        Ok((row.get(0)?, row.get(1)?))
    }

    #[tokio::test]
    async fn numbered_parameters_bind_by_number_not_by_position() {
        let (_dir, native) = store();
        let sql = "SELECT id, v FROM t WHERE id > $2 AND id < $1 AND v <> $3";
        let args = vec![Val::from(3), Val::from(1), Val::from("c".to_owned())];
        let rows = native.query(sql.into(), args, pair).await.unwrap();
        assert_eq!(rows, [(2, "b".to_owned())]);
        // Too few or too many values is an error, not a NULL bound in silence.
        for args in [vec![Val::from(1)], vec![Val::from(1); 4]] {
            assert!(native.query(sql.into(), args, pair).await.is_err());
        }
    }

    #[tokio::test]
    async fn a_streamed_write_keeps_nothing_unless_it_commits_whole() {
        let (_dir, native) = store();
        let add = |id: i64| {
            Step::Exec(
                "INSERT INTO t (id, v) VALUES ($1, 'x')".into(),
                vec![Val::from(id)],
            )
        };
        let count = || native.query("SELECT id FROM t".into(), vec![], |r| r.get::<_, i64>(0));
        // Dropped before its commit (the caller failed while making its later steps).
        let mut write = native.start();
        write.send(add(10));
        drop(write);
        // A step that fails (id 1 exists): the error comes out of the commit.
        let mut write = native.start();
        write.send(add(11));
        write.send(add(1));
        write.send(add(12));
        let err = format!("{:?}", write.commit().await.unwrap_err());
        assert!(err.contains("UNIQUE"), "{err}");
        assert_eq!(
            count().await.unwrap().len(),
            3,
            "nothing of either write was kept"
        );
        // The writer is usable after both.
        let mut write = native.start();
        write.send(add(13));
        write.commit().await.unwrap();
        assert_eq!(count().await.unwrap().len(), 4);
    }

    /// Narrow rows go many to a statement: every row is stored, whether it falls in a full
    /// statement or the short last one, and an upsert's later row wins within a statement too.
    #[tokio::test]
    async fn rows_written_several_to_a_statement_are_each_stored() {
        let (_dir, native) = store();
        let mut rows: Vec<Vec<Val>> = (10..80)
            .map(|id| vec![Val::from(id), Val::from(format!("v{id}"))])
            .collect();
        rows.push(vec![Val::from(2), Val::from("new".to_owned())]);
        rows.push(vec![Val::from(11), Val::from("again".to_owned())]);
        let mut write = native.start();
        write.send(Step::Insert(Insert {
            table: "t",
            columns: &["id", "v"],
            suffix: "ON CONFLICT (id) DO UPDATE SET v = excluded.v".into(),
            rows,
        }));
        write.commit().await.unwrap();
        let all = "SELECT id, v FROM t ORDER BY id".to_owned();
        let stored = native.query(all, vec![], pair).await.unwrap();
        let mut expected: Vec<(i64, String)> = (1..=3)
            .map(|id| (id, ["a", "new", "c"][id as usize - 1].to_owned()))
            .chain((10..80).map(|id| (id, format!("v{id}"))))
            .collect();
        expected[4].1 = "again".into();
        assert_eq!(stored, expected);
    }

    #[tokio::test]
    async fn idle_readers_hold_no_snapshot_that_would_stop_a_checkpoint() {
        let (dir, native) = store();
        let all = "SELECT id, v FROM t ORDER BY id".to_owned();
        assert_eq!(native.query(all, vec![], pair).await.unwrap().len(), 3);
        let n = native
            .read(|conn| conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)))
            .await
            .unwrap();
        assert_eq!(n, 3);
        let mut write = native.start();
        write.send(Step::Exec(
            "INSERT INTO t (id, v) VALUES ($1, $2)".into(),
            vec![Val::from(4), Val::from("d".to_owned())],
        ));
        write.commit().await.unwrap();
        // The reads kept their connection for the next read, outside any transaction: the
        // whole log can be copied back and truncated.
        assert!(!native.readers.lock().unwrap().is_empty());
        let busy: i64 = native
            .with_conn(|conn| {
                Ok(conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(busy, 0, "a reader held the log");
        let log = std::fs::metadata(dir.path().join("t.db-wal")).unwrap();
        assert_eq!(log.len(), 0);
        native.close();
        assert!(native.readers.lock().unwrap().is_empty());
    }
}
