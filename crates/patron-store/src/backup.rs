//! Backups: a consistent snapshot of the live database, encrypted and checksummed, and a
//! restore that verifies all of it before replacing anything.
//!
//! The snapshot is `VACUUM INTO` on SQLite (one read transaction: writers carry on, and the
//! copy holds exactly what was committed when it began) and `pg_dump` on PostgreSQL (one
//! repeatable-read snapshot). The file is:
//!
//! ```text
//! MAGIC (16) | nonce prefix (7) | chunk* | SHA-256 of everything before it (32)
//! chunk = ciphertext length (u32, big-endian) | AES-256-GCM ciphertext
//! ```
//!
//! Chunk 0 is the metadata (JSON), then the snapshot in 1 MiB chunks. Each chunk's nonce is
//! the prefix, its index and a last-chunk flag, so chunks cannot be reordered, dropped or cut
//! off without failing authentication. The key is derived from the active master key, and a
//! restore tries every key of the ring, so a backup restores wherever that key still is (keep
//! the master keys apart from the backups, and keep a retired key as long as its backups).

use crate::{now_ms, Backend, Result, Store, StoreConfig, StoreError, Vault};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 16] = b"PATRON-BACKUP-01";
const CHUNK: usize = 1 << 20;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupInfo {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// When the snapshot was taken (ms since epoch).
    pub created_at: i64,
    /// Size of the snapshot before encryption.
    pub bytes: u64,
    /// The Patron version that wrote it.
    pub version: String,
}

fn err(msg: impl Into<String>) -> StoreError {
    StoreError::Backup(msg.into())
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    err(format!("{what} {}: {e}", path.display()))
}

fn nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// A file next to `path` that is removed when dropped (unless renamed away first).
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Encrypts `snapshot` with its metadata into `out` (through a partial file renamed at the
/// end, so a crash never leaves a truncated backup under the real name).
fn seal_file(vault: &Vault, info: &BackupInfo, snapshot: &Path, out: &Path) -> Result<()> {
    let partial = Temp(beside(out, ".partial"));
    let file = std::fs::File::create(&partial.0).map_err(|e| io("cannot create", out, e))?;
    let mut w = HashingWriter {
        inner: BufWriter::new(file),
        hash: Sha256::new(),
    };
    let mut prefix = [0u8; 7];
    rand::thread_rng().fill_bytes(&mut prefix);
    let write = |w: &mut HashingWriter<_>, bytes: &[u8]| {
        w.write_all(bytes).map_err(|e| io("cannot write", out, e))
    };
    write(&mut w, MAGIC)?;
    write(&mut w, &prefix)?;
    // The backup is sealed under the active key; a restore finds it by trying the ring.
    let key = vault.active_key();
    let chunk = |w: &mut HashingWriter<_>, index: u32, last: bool, plain: &[u8]| {
        let sealed = vault.seal_chunk(key, &nonce(&prefix, index, last), plain)?;
        write(w, &(sealed.len() as u32).to_be_bytes())?;
        write(w, &sealed)
    };
    let meta = serde_json::to_vec(info).expect("metadata serializes");
    chunk(&mut w, 0, false, &meta)?;
    let mut input =
        BufReader::new(std::fs::File::open(snapshot).map_err(|e| io("cannot read", snapshot, e))?);
    let mut current = read_chunk(&mut input, snapshot)?;
    let mut index = 1u32;
    loop {
        let next = read_chunk(&mut input, snapshot)?;
        let last = next.is_empty();
        chunk(&mut w, index, last, &current)?;
        if last {
            break;
        }
        current = next;
        index += 1;
    }
    let digest = w.hash.finalize();
    let mut file = w.inner;
    file.write_all(&digest)
        .and_then(|()| file.flush())
        .and_then(|()| file.get_ref().sync_all())
        .map_err(|e| io("cannot write", out, e))?;
    std::fs::rename(&partial.0, out).map_err(|e| io("cannot write", out, e))?;
    Ok(())
}

/// Up to one chunk of `r` (empty at the end).
fn read_chunk(r: &mut impl Read, path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(CHUNK);
    r.take(CHUNK as u64)
        .read_to_end(&mut buf)
        .map_err(|e| io("cannot read", path, e))?;
    Ok(buf)
}

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Checks `file` whole (checksum, then every chunk's authentication) and writes the
/// snapshot it holds into `snapshot`; returns its metadata.
fn open_file(vault: &Vault, file: &Path, snapshot: &Path) -> Result<BackupInfo> {
    let damaged = || err(format!("{} is damaged or was changed", file.display()));
    // The checksum first: it tells a damaged file from a wrong key.
    let len = std::fs::metadata(file)
        .map_err(|e| io("cannot read", file, e))?
        .len();
    if len < (MAGIC.len() + 7 + 32) as u64 {
        return Err(err(format!("{} is not a Patron backup", file.display())));
    }
    let mut r = BufReader::new(std::fs::File::open(file).map_err(|e| io("cannot read", file, e))?);
    let mut hash = Sha256::new();
    let mut left = len - 32;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = r
            .read(&mut buf[..left.min(1 << 16) as usize])
            .map_err(|e| io("cannot read", file, e))?;
        if n == 0 {
            return Err(damaged());
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; 32];
    r.read_exact(&mut stored).map_err(|_| damaged())?;
    let mut r = BufReader::new(std::fs::File::open(file).map_err(|e| io("cannot read", file, e))?);
    let mut magic = [0u8; 16];
    r.read_exact(&mut magic).map_err(|_| damaged())?;
    if &magic != MAGIC {
        return Err(err(format!("{} is not a Patron backup", file.display())));
    }
    if hash.finalize().as_slice() != stored {
        return Err(damaged());
    }
    let mut prefix = [0u8; 7];
    r.read_exact(&mut prefix).map_err(|_| damaged())?;
    let mut body = (&mut r).take(len - 32 - 16 - 7);
    // The next sealed chunk; `None` at the end of the file.
    let mut next = || -> Result<Option<Vec<u8>>> {
        let mut n = [0u8; 4];
        match body.read_exact(&mut n) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(_) => return Err(damaged()),
        }
        let mut sealed = vec![0u8; u32::from_be_bytes(n) as usize];
        body.read_exact(&mut sealed).map_err(|_| damaged())?;
        Ok(Some(sealed))
    };
    let meta = next()?.ok_or_else(damaged)?;
    // The first key of the ring that opens the metadata opens the whole backup.
    let (key, meta) = vault
        .key_ids()
        .into_iter()
        .rev()
        .find_map(|key| {
            let plain = vault
                .open_chunk(key, &nonce(&prefix, 0, false), &meta)
                .ok()?;
            Some((key, plain))
        })
        .ok_or_else(|| {
            err(format!(
                "{} does not open with any of the master keys (or was changed)",
                file.display()
            ))
        })?;
    let info: BackupInfo = serde_json::from_slice(&meta).map_err(|_| damaged())?;
    let out = std::fs::File::create(snapshot).map_err(|e| io("cannot create", snapshot, e))?;
    let mut out = BufWriter::new(out);
    let mut index = 1u32;
    loop {
        // A chunk opens either as a middle chunk or as the last one; nothing may follow the
        // last, and the file may not end before it.
        let sealed = next()?.ok_or_else(damaged)?;
        let (plain, last) = match vault.open_chunk(key, &nonce(&prefix, index, false), &sealed) {
            Ok(p) => (p, false),
            Err(_) => (
                vault
                    .open_chunk(key, &nonce(&prefix, index, true), &sealed)
                    .map_err(|_| damaged())?,
                true,
            ),
        };
        out.write_all(&plain)
            .map_err(|e| io("cannot write", snapshot, e))?;
        if last {
            if next()?.is_some() {
                return Err(damaged());
            }
            break;
        }
        index += 1;
    }
    out.flush().map_err(|e| io("cannot write", snapshot, e))?;
    Ok(info)
}

/// `postgres://user:password@host/db` → the URL without the password, and the password
/// (percent-decoded), so it reaches `pg_dump` through the environment, not the process list.
fn split_password(url: &str) -> (String, Option<String>) {
    if let (Some(s), Some(at)) = (url.find("://"), url.rfind('@')) {
        if at > s {
            if let Some((user, password)) = url[s + 3..at].split_once(':') {
                let mut plain = Vec::new();
                let b = password.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    let hex = b
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                        (b'%', Some(v)) => {
                            plain.push(v);
                            i += 3;
                        }
                        (c, _) => {
                            plain.push(c);
                            i += 1;
                        }
                    }
                }
                let bare = format!("{}://{user}{}", &url[..s], &url[at..]);
                return (bare, Some(String::from_utf8_lossy(&plain).into_owned()));
            }
        }
    }
    (url.to_owned(), None)
}

/// Runs a PostgreSQL client tool against `url`.
fn pg_tool(tool: &str, url: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
    let (bare, password) = split_password(url);
    let mut cmd = std::process::Command::new(tool);
    cmd.args(args).arg("--dbname").arg(&bare);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.output().map_err(|e| {
        err(format!(
            "cannot run {tool} (is the PostgreSQL client installed?): {e}"
        ))
    })?;
    if !out.status.success() {
        return Err(err(format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Store {
    /// Writes a consistent, encrypted backup of the whole database to `out` while others
    /// keep reading and writing.
    pub async fn backup(&self, out: &Path) -> Result<BackupInfo> {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let snapshot = Temp(dir.join(format!(
            ".patron-snapshot-{}-{}",
            std::process::id(),
            now_ms()
        )));
        let created_at = now_ms();
        let backend = match self.backend {
            Backend::Sqlite => {
                let path = snapshot.0.to_string_lossy().replace('\'', "''");
                sqlx::query(&format!("VACUUM INTO '{path}'"))
                    .execute(&self.pool)
                    .await?;
                "sqlite"
            }
            Backend::Postgres => {
                let url = self
                    .postgres_url
                    .clone()
                    .expect("PostgreSQL stores keep their URL");
                let file = snapshot.0.clone();
                tokio::task::spawn_blocking(move || {
                    pg_tool(
                        "pg_dump",
                        &url,
                        &[
                            "--format=custom".as_ref(),
                            "--file".as_ref(),
                            file.as_os_str(),
                        ],
                    )
                })
                .await
                .map_err(|e| err(format!("pg_dump stopped: {e}")))??;
                "postgres"
            }
        };
        let info = BackupInfo {
            backend: backend.into(),
            created_at,
            bytes: std::fs::metadata(&snapshot.0)
                .map_err(|e| io("cannot read", &snapshot.0, e))?
                .len(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let vault = self.vault.clone();
        let (out, meta) = (out.to_owned(), info.clone());
        tokio::task::spawn_blocking(move || seal_file(&vault, &meta, &snapshot.0, &out))
            .await
            .map_err(|e| err(format!("backup writer stopped: {e}")))??;
        Ok(info)
    }
}

/// Restores the backup `file` into the database `cfg` names, after checking all of it: its
/// checksum, every chunk's authentication under this master key, and (SQLite) the restored
/// file's integrity. Nothing is replaced unless every check passes. Stop the server first.
pub async fn restore(cfg: &StoreConfig, file: &Path) -> Result<BackupInfo> {
    let vault = Vault::load(&cfg.data_dir, cfg.master_key.as_deref())?;
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| io("cannot create", &cfg.data_dir, e))?;
    let snapshot = Temp(
        cfg.data_dir
            .join(format!(".patron-restore-{}", std::process::id())),
    );
    let (f, s) = (file.to_owned(), snapshot.0.clone());
    let info = tokio::task::spawn_blocking(move || open_file(&vault, &f, &s))
        .await
        .map_err(|e| err(format!("restore stopped: {e}")))??;
    match (cfg.database_url.as_deref(), info.backend.as_str()) {
        (None, "sqlite") => {
            let check: String = rusqlite::Connection::open(&snapshot.0)?.query_row(
                "PRAGMA integrity_check",
                [],
                |r| r.get(0),
            )?;
            if check != "ok" {
                return Err(err(format!("the backed-up database is corrupt: {check}")));
            }
            let db = cfg.data_dir.join("patron.db");
            for stale in ["patron.db-wal", "patron.db-shm"] {
                match std::fs::remove_file(cfg.data_dir.join(stale)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io("cannot remove", &cfg.data_dir.join(stale), e)),
                }
            }
            std::fs::rename(&snapshot.0, &db).map_err(|e| io("cannot replace", &db, e))?;
        }
        (Some(url), "postgres") if url.starts_with("postgres") => {
            let (url, path) = (url.to_owned(), snapshot.0.clone());
            tokio::task::spawn_blocking(move || {
                pg_tool(
                    "pg_restore",
                    &url,
                    &[
                        "--clean".as_ref(),
                        "--if-exists".as_ref(),
                        "--no-owner".as_ref(),
                        "--single-transaction".as_ref(),
                        path.as_os_str(),
                    ],
                )
            })
            .await
            .map_err(|e| err(format!("pg_restore stopped: {e}")))??;
        }
        (url, backend) => {
            return Err(err(format!(
                "this is a {backend} backup; restore it into {} database",
                match (url, backend) {
                    (_, "sqlite") => "the embedded (SQLite)",
                    _ => "a PostgreSQL (--database-url)",
                },
            )))
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_files_open_whole_and_only_whole() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::new(&[7u8; 32]);
        let snapshot = dir.path().join("snap");
        // Two and a half chunks, so there are middle chunks and a short last one.
        let data: Vec<u8> = (0..(CHUNK * 5 / 2)).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&snapshot, &data).unwrap();
        let info = BackupInfo {
            backend: "sqlite".into(),
            created_at: 1,
            bytes: data.len() as u64,
            version: "test".into(),
        };
        let sealed = dir.path().join("b.backup");
        seal_file(&vault, &info, &snapshot, &sealed).unwrap();
        let out = dir.path().join("out");
        assert_eq!(open_file(&vault, &sealed, &out).unwrap(), info);
        assert_eq!(std::fs::read(&out).unwrap(), data);

        // Another key, a flipped byte, a cut-off file: each refused.
        let other = Vault::new(&[8u8; 32]);
        let e = open_file(&other, &sealed, &out).unwrap_err().to_string();
        assert!(
            e.contains("does not open with any of the master keys"),
            "{e}"
        );
        let bytes = std::fs::read(&sealed).unwrap();
        let mut flipped = bytes.clone();
        flipped[1000] ^= 1;
        std::fs::write(&sealed, &flipped).unwrap();
        let e = open_file(&vault, &sealed, &out).unwrap_err().to_string();
        assert!(e.contains("damaged or was changed"), "{e}");
        // Dropping the last chunk and re-hashing (a forger without the key can recompute the
        // checksum): the last-chunk flag still catches it.
        let last_len = (data.len() - 2 * CHUNK) + 16 + 4;
        let mut cut = bytes[..bytes.len() - 32 - last_len].to_vec();
        let digest = Sha256::digest(&cut);
        cut.extend_from_slice(&digest);
        std::fs::write(&sealed, &cut).unwrap();
        let e = open_file(&vault, &sealed, &out).unwrap_err().to_string();
        assert!(e.contains("damaged or was changed"), "{e}");
    }

    #[test]
    fn passwords_leave_the_url() {
        assert_eq!(
            split_password("postgres://u:p%40ss@h:5432/db"),
            ("postgres://u@h:5432/db".to_owned(), Some("p@ss".to_owned()))
        );
        assert_eq!(
            split_password("postgres://h/db"),
            ("postgres://h/db".to_owned(), None)
        );
    }
}
