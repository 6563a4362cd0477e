//! Patron's storage: one schema on two databases.
//!
//! SQLite (a file in the data directory, WAL mode) is the embedded default; PostgreSQL is used
//! when a `postgres://` URL is given. Both go through sqlx's `Any` driver with the same SQL,
//! written in the common subset (`$N` placeholders, `ON CONFLICT`), so behaviour cannot drift
//! between them; the schema itself is kept once per dialect under `migrations/`.
//!
//! Personal fields never reach the database in clear: [`Vault`] encrypts them and computes
//! the blind indexes used to look them up. Bulk paths (imports, stage results) write multi-row
//! statements inside one transaction per batch; the request path uses single-row queries.

mod analytics;
mod audit;
mod auth;
mod backup;
mod bulk;
mod native;
mod ops;
mod profiles;
mod quarantine;
mod recommend;
mod records;
mod rotate;
mod segments;
mod subject;
mod unify;
mod vault;
mod warm;

pub use analytics::{MetricRow, OrderFact, OrderSnapshot, PredictionRow, RecommendationRow};
pub use audit::{AuditCheck, AuditEntry};
pub use auth::{ApiKeyInfo, ApiKeyRow, Login, User, LOCK_AFTER};
pub use backup::{restore, BackupInfo};
pub use ops::{NewEvent, NewTicket};
pub use profiles::{
    CustomerDetail, CustomerSummary, LinkRow, OrderSummary, Overview, ProfileRow, Recommendation,
    RecordView,
};
pub use quarantine::QuarantineRow;
pub use recommend::{CatalogItem, InteractionSnapshot, SimilarProduct};
pub use records::{PreparedCustomer, QuarantineEntry, RecordBatch};
pub use rotate::{Rotation, RotationOptions};
pub use segments::{Consents, SegmentFacts, SegmentInfo};
pub use subject::Erasure;
pub use unify::{
    field_name, Decision, FieldValue, GoldenRow, Merge, MergeEntry, Placement, Profiles, RecordRef,
    ReviewItem, Unification, UnifyRecord, GOLDEN_FIELDS,
};
pub use vault::{Vault, RELOAD_EVERY};
pub use warm::Warmed;

use native::NativeSqlite;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tracing::log::LevelFilter;

/// Errors from the storage layer. `Connect`, `Key` and `Migrate` are the user's to fix (wrong
/// URL, wrong key); `Database` and `Decrypt` are internal and should be logged, not shown.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    // Causes are not repeated in messages: `{:#}` prints the chain once.
    #[error("cannot open the database at {url}")]
    Connect {
        /// The URL with any password removed.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The master key is missing, malformed, or not the one this database was written with.
    #[error("master key: {0}")]
    Key(String),
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database schema")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A backup could not be made, or a backup file is damaged, changed or not Patron's.
    #[error("backup: {0}")]
    Backup(String),
    /// A stored ciphertext did not decrypt with the current key.
    #[error("a stored personal field could not be decrypted")]
    Decrypt,
    /// An export could not be written (its reader may have gone away).
    #[error("cannot write export")]
    Write(#[source] std::io::Error),
    /// A bulk write through the native SQLite connection failed.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// The request conflicts with what is stored (a name already taken).
    #[error("{0}")]
    Conflict(String),
    /// A write made from what was read earlier no longer fits what is stored (a record it
    /// read was erased since); nothing of it was written.
    #[error("{0}")]
    Stale(String),
    /// A file system operation on the data directory failed.
    #[error("{0}")]
    Io(String),
}

/// Result alias of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether `e` is SQLite's "database is locked" (another write held the write lock for longer
/// than the busy timeout: an import, a unify run) or every pooled connection was taken for
/// longer than the pool waits. Unlike other errors, worth retrying later; callers walk an
/// error's chain with it.
pub fn is_busy(e: &(dyn std::error::Error + 'static)) -> bool {
    // SQLite's extended codes keep the primary code in their low byte (BUSY = 5).
    let busy = |code: i32| code & 0xff == rusqlite::ffi::SQLITE_BUSY;
    if let Some(sqlx::Error::PoolTimedOut) = e.downcast_ref::<sqlx::Error>() {
        return true;
    }
    if let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() {
        // PostgreSQL's codes are SQLSTATEs, some of them numbers too.
        let sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
        return sqlite && db.code().and_then(|c| c.parse().ok()).is_some_and(busy);
    }
    matches!(
        e.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _)) if busy(f.extended_code)
    )
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The data directory: the SQLite file, the master key, TLS material.
    pub data_dir: PathBuf,
    /// A `postgres://` URL; `None` means the embedded SQLite file.
    pub database_url: Option<String>,
    /// The master key as 64 hex characters; `None` means `DATA_DIR/master.key`.
    pub master_key: Option<String>,
}

/// A handle to Patron's database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    vault: std::sync::Arc<Vault>,
    /// Bulk writes to a SQLite file go through a native connection (see `native.rs`).
    native: Option<std::sync::Arc<native::NativeSqlite>>,
    /// The PostgreSQL URL, for `pg_dump`.
    postgres_url: Option<std::sync::Arc<str>>,
    /// When this process last wrote each API key's `last_used_at`: see
    /// [`Store::authenticate_key`].
    keys_used: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, std::time::Instant>>>,
}

impl Store {
    /// Opens (creating if needed) the database, applies pending migrations and checks that the
    /// master key is the one the database was written with.
    pub async fn open(cfg: &StoreConfig) -> Result<Store> {
        sqlx::any::install_default_drivers();
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            StoreError::Io(format!(
                "cannot create data dir {}: {e}",
                cfg.data_dir.display()
            ))
        })?;
        let (url, backend) = match &cfg.database_url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                (u.clone(), Backend::Postgres)
            }
            Some(u) if u.starts_with("sqlite:") => (u.clone(), Backend::Sqlite),
            Some(u) => {
                return Err(StoreError::Connect {
                    url: redact(u),
                    source: sqlx::Error::Configuration(
                        "expected a postgres:// or sqlite: URL".into(),
                    ),
                })
            }
            None => (sqlite_url(&cfg.data_dir.join("patron.db")), Backend::Sqlite),
        };
        let connect_err = |source| StoreError::Connect {
            url: redact(&url),
            source,
        };
        // Statements carry personal data in their bound values and bulk statements are huge:
        // never log them.
        let options = AnyConnectOptions::from_str(&url)
            .map_err(connect_err)?
            .log_statements(LevelFilter::Off)
            .log_slow_statements(LevelFilter::Off, std::time::Duration::from_secs(60));
        // One direct attempt first: a pool retries refused connections until its acquire
        // timeout, which turns a wrong URL into a long hang instead of an immediate error.
        options
            .connect()
            .await
            .map_err(connect_err)?
            .close()
            .await
            .map_err(connect_err)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in SQLITE_PRAGMAS {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        match backend {
            Backend::Sqlite => {
                // WAL lets the server read while an import writes; it persists in the file.
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            }
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let vault = Vault::load(&cfg.data_dir, cfg.master_key.as_deref())?;
        let native = match backend {
            Backend::Sqlite => sqlite_file(&url).map(|p| std::sync::Arc::new(NativeSqlite::new(p))),
            Backend::Postgres => None,
        };
        let store = Store {
            pool,
            backend,
            vault: std::sync::Arc::new(vault),
            native,
            postgres_url: (backend == Backend::Postgres).then(|| url.as_str().into()),
            keys_used: Default::default(),
        };
        store.check_key().await?;
        Ok(store)
    }

    /// The database behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The vault that encrypts personal fields.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Reads the SQLite file once so that the operating system caches it, for fast lookups
    /// right after a restart (see `warm.rs`); `None` for PostgreSQL, which keeps its own
    /// cache, and for an in-memory database. It blocks for as long as the read takes: run it
    /// on a thread of its own.
    pub fn warm_cache(&self) -> Result<Option<Warmed>> {
        let Some(native) = &self.native else {
            return Ok(None);
        };
        warm::warm(native.path())
            .map(Some)
            .map_err(|e| StoreError::Io(format!("cannot read {}: {e}", native.path().display())))
    }

    /// A transaction that changes which records make up which profiles, or that names records
    /// or profiles (a unify write, an erasure, decisions, the review queue, the analysis
    /// stages' results), run alone among such: on SQLite it holds the write lock from its
    /// start (`BEGIN IMMEDIATE`, so what it reads is not stale when it writes), on PostgreSQL
    /// a transaction-scoped advisory lock. A unify run or a stage can then tell whether what
    /// it read was erased meanwhile, and an erasure finds the person where the last run put
    /// them.
    pub(crate) async fn begin_membership_change(&self) -> Result<sqlx::Transaction<'_, sqlx::Any>> {
        /// The advisory lock's key: "patron" in ASCII.
        const MEMBERSHIP_LOCK: i64 = 0x7061_7472_6f6e;
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MEMBERSHIP_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        })
    }

    /// Closes the connection pool, flushing SQLite's WAL.
    pub async fn close(&self) {
        if let Some(native) = &self.native {
            native.close();
        }
        self.pool.close().await;
    }

    /// A known value sealed, and its blind index, stored on first open and checked on every
    /// later one, so that starting with the wrong keys fails at once instead of writing data
    /// no one can read or find.
    async fn check_key(&self) -> Result<()> {
        const CANARY: &str = "patron key check";
        let checks = [
            ("key_check", self.vault.seal_str(CANARY)),
            ("index_check", self.vault.blind("check", CANARY)),
        ];
        for (name, fresh) in checks {
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(fresh.clone())
            .execute(&self.pool)
            .await?;
            let stored = self.setting(name).await?.unwrap_or_default();
            let good = match name {
                "key_check" => self.vault.open_str(&stored).is_ok_and(|s| s == CANARY),
                _ => stored == fresh,
            };
            if !good {
                return Err(StoreError::Key(match name {
                    "key_check" => "this database was encrypted with a different master key".into(),
                    _ => "the blind-index key is not the one this database was indexed with (after a rotation, keep the `index` entry of the key file)".into(),
                }));
            }
        }
        Ok(())
    }

    /// Stores a named setting (a stage's fitted model, for example).
    pub async fn put_setting(&self, name: &str, value: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name.to_owned())
        .bind(value.to_vec())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A named setting, if stored.
    pub async fn setting(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Several settings in one round trip, in the order of `names`.
    pub async fn settings(&self, names: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let list = crate::bulk::numbered_list(names.len());
        let sql = format!("SELECT name, value FROM settings WHERE name IN ({list})");
        let mut query = sqlx::query(&sql);
        for name in names {
            query = query.bind(name.to_string());
        }
        let mut found = std::collections::HashMap::<String, Vec<u8>>::new();
        for row in query.fetch_all(&self.pool).await? {
            found.insert(row.try_get(0)?, row.try_get(1)?);
        }
        Ok(names.iter().map(|n| found.get(*n).cloned()).collect())
    }

    fn open_opt(&self, row: &AnyRow, col: &str) -> Result<Option<String>> {
        let sealed: Option<Vec<u8>> = row.try_get(col)?;
        sealed.map(|s| self.vault.open_str(&s)).transpose()
    }
}

/// Settings of every SQLite connection, pooled or native.
///
/// - A 64 MB page cache: bulk upserts touch index pages all over the file, and SQLite's default
///   2 MB cache turns that into constant re-reads.
/// - `synchronous = NORMAL`: in WAL mode it never corrupts the file and loses no commit when the
///   process dies; only a power cut may undo the last commits. It syncs at checkpoints instead
///   of at every commit (fsync is slow on virtual disks, and an import commits every 20,000
///   rows), and checkpoints run every 64 MB of log instead of every 4 MB.
/// - `secure_delete`: deleted and overwritten content is zeroed, so an erased person (and an
///   old version of anyone's record) does not live on in free pages of the file.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA cache_size = -65536",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA wal_autocheckpoint = 16384",
    "PRAGMA secure_delete = ON",
];

/// Milliseconds since the Unix epoch, the storage time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// The file behind a `sqlite:` URL; `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Removes the password from a database URL so it can be shown in errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..s], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Adds a record's stored tags (comma-separated) to a profile's, each once, in order.
pub(crate) fn add_tags(into: &mut Vec<String>, stored: &str) {
    for t in stored.split(',') {
        if !into.iter().any(|have| have == t) {
            into.push(t.to_owned());
        }
    }
}

/// A fresh SQLite store in a temporary directory (kept as long as the directory is).
#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        data_dir: dir.path().to_owned(),
        database_url: None,
        master_key: None,
    })
    .await
    .unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn finds_the_file_of_a_sqlite_url() {
        use std::path::PathBuf;
        let file = |u| super::sqlite_file(u);
        assert_eq!(
            file("sqlite:///d/patron.db?mode=rwc"),
            Some(PathBuf::from("/d/patron.db"))
        );
        assert_eq!(file("sqlite://rel/p.db"), Some(PathBuf::from("rel/p.db")));
        assert_eq!(file("sqlite:p.db"), Some(PathBuf::from("p.db")));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://h/db"), None);
    }
}
