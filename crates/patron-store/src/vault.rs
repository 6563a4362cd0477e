//! Encryption at rest and blind indexes for personal data.
//!
//! A ring of 256-bit master keys, each with a one-byte id, is kept in the data directory
//! (`master.key`, mode 0600) or given through `PATRON_MASTER_KEY`. Each master key derives a
//! field key (AES-256-GCM) and a backup key. A ciphertext is
//! `key id (1 byte) ‖ nonce (12) ‖ ciphertext + tag`: the newest key seals, and any key of the
//! ring opens what it sealed, so `patron keys rotate-master` can re-encrypt while old and new
//! ciphertexts live side by side.
//!
//! Blind indexes (HMAC-SHA256) are keyed by one index key that survives rotations: some of
//! their inputs (loyalty ids, quarantined identities) are deliberately not stored, so an index
//! cannot be recomputed under a new key. It is derived from the first master key until the first
//! rotation writes it into the key file on its own, so that master key can later be retired.
//!
//! The key file, one entry per line (`#` starts a comment):
//!
//! ```text
//! index <64 hex>   the blind-index key (absent before the first rotation)
//! 1 <64 hex>       master keys by id; the highest id seals new data
//! 2 <64 hex>
//! ```
//!
//! A file holding a single bare hex key is key 1. `PATRON_MASTER_KEY` takes the same entries
//! separated by commas, with `:` between label and key (`1:…,2:…,index:…`), or one bare key.

use crate::StoreError;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};
use zeroize::Zeroizing;

/// Blind indexes are truncated to 128 bits: collisions stay negligible at billions of values
/// and the indexes stay small.
const BLIND_LEN: usize = 16;
/// How often a vault backed by a key file looks for a new key in it. A rotation waits at
/// least twice this long before it calls itself complete, so every running process has
/// switched to the new key by then.
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

type Secret = Zeroizing<[u8; 32]>;

/// The keys read from a key file or `PATRON_MASTER_KEY`.
struct KeyEntries {
    index: Option<Secret>,
    masters: BTreeMap<u8, Secret>,
}

/// The master keys in use, by id.
struct Ring {
    active: u8,
    keys: BTreeMap<u8, MasterKeys>,
}

struct MasterKeys {
    field: Aes256Gcm,
    /// Backups have a key of their own, so a backup's chunks can never pass for fields.
    backup: Aes256Gcm,
}

impl MasterKeys {
    fn new(master: &[u8; 32]) -> MasterKeys {
        let field = derive(master, b"patron/v1/encrypt");
        let backup = derive(master, b"patron/v1/backup");
        MasterKeys {
            field: Aes256Gcm::new_from_slice(&field[..]).expect("32-byte key"),
            backup: Aes256Gcm::new_from_slice(&backup[..]).expect("32-byte key"),
        }
    }
}

impl Ring {
    fn new(masters: &BTreeMap<u8, Secret>) -> Ring {
        Ring {
            active: *masters.keys().next_back().expect("a ring has a key"),
            keys: masters
                .iter()
                .map(|(id, k)| (*id, MasterKeys::new(k)))
                .collect(),
        }
    }
}

/// Where the ring came from, when it can change under a running process.
struct KeyFile {
    path: PathBuf,
    /// The file's modification time and length when last read.
    seen: Mutex<Option<(SystemTime, u64)>>,
    /// When the file was last looked at, in milliseconds since `start`.
    checked: AtomicU64,
    /// When it was last re-read for an unknown key id, in milliseconds since `start` + 1 s.
    forced: AtomicU64,
    start: Instant,
}

/// Encrypts and decrypts personal fields and computes their blind indexes.
pub struct Vault {
    ring: RwLock<Arc<Ring>>,
    file: Option<KeyFile>,
    /// The blind-index key as stored (it is written out at the first rotation).
    index_key: Secret,
    /// HMAC keyed with the blind-index key, cloned per value: keying costs as much as hashing
    /// a short value, so it is done once.
    index_mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// Builds a vault from a single master key (key id 1).
    pub fn new(master: &[u8; 32]) -> Vault {
        let masters = BTreeMap::from([(1, Zeroizing::new(*master))]);
        Vault::from_entries(
            KeyEntries {
                index: None,
                masters,
            },
            None,
        )
    }

    fn from_entries(entries: KeyEntries, file: Option<KeyFile>) -> Vault {
        let index_key = entries.index.unwrap_or_else(|| {
            let first = entries.masters.values().next().expect("a ring has a key");
            derive(first, b"patron/v1/blind-index")
        });
        Vault {
            ring: RwLock::new(Arc::new(Ring::new(&entries.masters))),
            file,
            index_mac: <Hmac<Sha256> as Mac>::new_from_slice(&index_key[..])
                .expect("any key length"),
            index_key,
        }
    }

    /// Loads the key ring: `given` (from `PATRON_MASTER_KEY`) if set, else
    /// `DATA_DIR/master.key`, which is created with one new key and mode 0600 on first run.
    pub fn load(data_dir: &Path, given: Option<&str>) -> Result<Vault, StoreError> {
        if let Some(given) = given {
            return Ok(Vault::from_entries(parse_entries(given, ',')?, None));
        }
        let path = data_dir.join("master.key");
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::thread_rng().fill_bytes(&mut key[..]);
            write_key_file(&path, None, &BTreeMap::from([(1, key)]), true)?;
        }
        let (entries, seen) = read_key_file(&path)?;
        let file = KeyFile {
            path,
            seen: Mutex::new(Some(seen)),
            checked: AtomicU64::new(0),
            forced: AtomicU64::new(0),
            start: Instant::now(),
        };
        Ok(Vault::from_entries(entries, Some(file)))
    }

    /// The ring in use, re-read from the key file when it changed (looked at every
    /// [`RELOAD_EVERY`], so the hot path costs one clock read).
    fn ring(&self) -> Arc<Ring> {
        if let Some(file) = &self.file {
            let now = file.start.elapsed().as_millis() as u64;
            let last = file.checked.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= RELOAD_EVERY.as_millis() as u64
                && file
                    .checked
                    .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.reload_if_changed(file);
            }
        }
        self.ring.read().expect("ring lock").clone()
    }

    fn reload_if_changed(&self, file: &KeyFile) {
        let Ok(meta) = std::fs::metadata(&file.path) else {
            return;
        };
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut seen = file.seen.lock().expect("key file lock");
        if *seen == Some(stamp) {
            return;
        }
        match read_key_file(&file.path) {
            Ok((entries, stamp)) => {
                *self.ring.write().expect("ring lock") = Arc::new(Ring::new(&entries.masters));
                *seen = Some(stamp);
                tracing::info!("master keys reloaded from {}", file.path.display());
            }
            // A half-written or broken file must not take the running process down: the keys
            // it has keep working, and the next look may find the file whole.
            Err(e) => tracing::warn!("master keys not reloaded: {e}"),
        }
    }

    /// Re-reads the key file now, whatever its time stamp says (a ciphertext under an unknown
    /// key id just arrived; a rewrite within the file system's time resolution, to the same
    /// length, would look unchanged). At most once a second, so a value under a key that is
    /// really gone does not turn every read into a file read.
    fn reload_now(&self) {
        let Some(file) = &self.file else {
            return;
        };
        let now = file.start.elapsed().as_millis() as u64 + 1_000;
        let last = file.forced.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1_000
            || file
                .forced
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        *file.seen.lock().expect("key file lock") = None;
        self.reload_if_changed(file);
    }

    /// The id of the key that seals new values.
    pub fn active_key(&self) -> u8 {
        self.ring().active
    }

    /// The ids of the master keys in the ring, oldest first.
    pub fn key_ids(&self) -> Vec<u8> {
        self.ring().keys.keys().copied().collect()
    }

    /// Whether the keys come from the key file (which rotation can add to).
    pub fn keys_from_file(&self) -> bool {
        self.file.is_some()
    }

    /// The key id a sealed value was sealed with.
    pub fn key_of(sealed: &[u8]) -> Option<u8> {
        sealed.first().copied()
    }

    /// Encrypts a value under the active key.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let ring = self.ring();
        seal_with(&ring, plain)
    }

    /// Encrypts text.
    pub fn seal_str(&self, plain: &str) -> Vec<u8> {
        self.seal(plain.as_bytes())
    }

    /// Decrypts a value sealed by [`Vault::seal`] under any key of the ring.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 1 + 12 + 16 {
            return Err(StoreError::Decrypt);
        }
        let mut ring = self.ring();
        if !ring.keys.contains_key(&sealed[0]) {
            // Another process may have just added the key this value was sealed with.
            self.reload_now();
            ring = self.ring.read().expect("ring lock").clone();
        }
        let keys = ring.keys.get(&sealed[0]).ok_or(StoreError::Decrypt)?;
        keys.field
            .decrypt(Nonce::from_slice(&sealed[1..13]), &sealed[13..])
            .map_err(|_| StoreError::Decrypt)
    }

    /// Decrypts text.
    pub fn open_str(&self, sealed: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| StoreError::Decrypt)
    }

    /// `sealed` re-encrypted under the active key, or `None` if it already is.
    pub fn reseal(&self, sealed: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let ring = self.ring();
        if Vault::key_of(sealed) == Some(ring.active) {
            return Ok(None);
        }
        let plain = Zeroizing::new(self.open(sealed)?);
        Ok(Some(seal_with(&ring, &plain)))
    }

    /// Seals one chunk of a backup under the active backup key with the given nonce; returns
    /// the key id to record with the backup.
    pub(crate) fn seal_chunk(
        &self,
        key: u8,
        nonce: &[u8; 12],
        plain: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let ring = self.ring();
        let keys = ring.keys.get(&key).ok_or_else(|| {
            StoreError::Key(format!("master key {key} was retired during the backup"))
        })?;
        Ok(keys
            .backup
            .encrypt(nonce.into(), plain)
            .expect("AES-GCM encryption of a bounded chunk cannot fail"))
    }

    /// Opens one chunk of a backup under backup key `key`; fails if it was changed, moved or
    /// sealed with another key.
    pub(crate) fn open_chunk(
        &self,
        key: u8,
        nonce: &[u8; 12],
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let ring = self.ring();
        ring.keys
            .get(&key)
            .ok_or(StoreError::Decrypt)?
            .backup
            .decrypt(nonce.into(), sealed)
            .map_err(|_| StoreError::Decrypt)
    }

    /// The blind index of a normalized value of one kind (`email`, `phone`, `name`, ...). The
    /// kind is part of the input so equal strings of different kinds never collide.
    pub fn blind(&self, kind: &str, value: &str) -> Vec<u8> {
        let mut mac = self.index_mac.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes()[..BLIND_LEN].to_vec()
    }

    /// Adds a new random master key to the key file and makes it the active one; returns its
    /// id. Keys given through `PATRON_MASTER_KEY` are the operator's to add.
    pub fn add_master_key(&self) -> Result<u8, StoreError> {
        let file = self.key_file("add a master key")?;
        let _lock = lock_key_file(&file.path)?;
        let (entries, _) = read_key_file(&file.path)?;
        let id = match entries.masters.keys().next_back() {
            Some(255) => {
                return Err(StoreError::Key(
                    "the key file already holds key 255; retire old keys first".into(),
                ))
            }
            Some(last) => last + 1,
            None => 1,
        };
        let mut masters = entries.masters;
        let mut key = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(&mut key[..]);
        masters.insert(id, key);
        write_key_file(&file.path, Some(&self.index_key), &masters, false)?;
        self.reload_if_changed(file);
        Ok(id)
    }

    /// Removes master key `id` from the key file. The caller checks that nothing is sealed
    /// under it any more; backups made under it can no longer be restored.
    pub fn retire_master_key(&self, id: u8) -> Result<(), StoreError> {
        let file = self.key_file("retire a master key")?;
        let _lock = lock_key_file(&file.path)?;
        let (entries, _) = read_key_file(&file.path)?;
        let mut masters = entries.masters;
        if masters.keys().next_back() == Some(&id) {
            return Err(StoreError::Key(format!(
                "key {id} is the active key and cannot be retired"
            )));
        }
        if masters.remove(&id).is_none() {
            return Err(StoreError::Key(format!("there is no master key {id}")));
        }
        write_key_file(&file.path, Some(&self.index_key), &masters, false)?;
        self.reload_if_changed(file);
        Ok(())
    }

    fn key_file(&self, what: &str) -> Result<&KeyFile, StoreError> {
        self.file.as_ref().ok_or_else(|| {
            StoreError::Key(format!(
                "cannot {what} while the keys come from PATRON_MASTER_KEY: change that \
                 variable instead (see docs/SECURITY.md)"
            ))
        })
    }
}

fn seal_with(ring: &Ring, plain: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::AeadInPlace;
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    // Encrypted in place behind the header, in one allocation.
    let mut out = Vec::with_capacity(1 + 12 + plain.len() + 16);
    out.push(ring.active);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let tag = ring.keys[&ring.active]
        .field
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut out[13..])
        .expect("AES-GCM encryption does not fail for in-memory buffers");
    out.extend_from_slice(&tag);
    out
}

fn derive(master: &[u8; 32], label: &[u8]) -> Secret {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("any key length");
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Parses key entries separated by `sep` (see the module documentation).
fn parse_entries(text: &str, sep: char) -> Result<KeyEntries, StoreError> {
    let bad = |why: String| StoreError::Key(why);
    let key = |hex_key: &str| -> Result<Secret, StoreError> {
        let mut k = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_key.trim().as_bytes(), &mut k[..])
            .map_err(|_| bad("a master key must be 64 hexadecimal characters".into()))?;
        Ok(k)
    };
    let entries: Vec<&str> = text
        .split(sep)
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = KeyEntries {
        index: None,
        masters: BTreeMap::new(),
    };
    if let [single] = entries[..] {
        if !single.contains([' ', '\t', ':']) {
            out.masters.insert(1, key(single)?);
            return Ok(out);
        }
    }
    for entry in entries {
        let (label, value) = entry.split_once([' ', '\t', ':']).ok_or_else(|| {
            bad(format!(
                "expected `ID KEY` or `index KEY`, found {} characters",
                entry.len()
            ))
        })?;
        if label == "index" {
            out.index = Some(key(value)?);
            continue;
        }
        let id: u8 = label.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
            // Never echo a long label: it may be a key written in the wrong place.
            let shown = if label.len() <= 8 {
                label
            } else {
                "a long value"
            };
            bad(format!("a key id must be 1 to 255, not {shown:?}"))
        })?;
        if out.masters.insert(id, key(value)?).is_some() {
            return Err(bad(format!("master key {id} is given twice")));
        }
    }
    if out.masters.is_empty() {
        return Err(bad("no master key given".into()));
    }
    Ok(out)
}

/// An exclusive lock on `master.key.lock` for one read-modify-write of the key file, so two
/// processes adding keys at once cannot both write "key 2" with different secrets.
fn lock_key_file(path: &Path) -> Result<std::fs::File, StoreError> {
    let lock_path = path.with_extension("key.lock");
    let cannot =
        |e: std::io::Error| StoreError::Key(format!("cannot lock {}: {e}", lock_path.display()));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(cannot)?;
    f.lock().map_err(cannot)?;
    Ok(f)
}

fn read_key_file(path: &Path) -> Result<(KeyEntries, (SystemTime, u64)), StoreError> {
    let cannot =
        |e: std::io::Error| StoreError::Key(format!("cannot read {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(cannot)?);
    let entries = parse_entries(&text, '\n')
        .map_err(|e| StoreError::Key(format!("{}: {e}", path.display())))?;
    let stamp = (
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
    );
    Ok((entries, stamp))
}

/// Writes a key file with mode 0600: a new one (`create`, failing if it exists), or a
/// replacement written beside it and renamed over it, so a crash leaves the old file or the
/// new one, never half of either.
fn write_key_file(
    path: &Path,
    index: Option<&Secret>,
    masters: &BTreeMap<u8, Secret>,
    create: bool,
) -> Result<(), StoreError> {
    use std::io::Write;
    let mut text = Zeroizing::new(String::from(
        "# Patron master keys (docs/SECURITY.md). The highest id seals new data; keep older\n\
         # keys while data or backups sealed with them remain.\n",
    ));
    if let Some(index) = index {
        text.push_str(&format!("index {}\n", hex::encode(&index[..])));
    }
    for (id, key) in masters {
        text.push_str(&format!("{id} {}\n", hex::encode(&key[..])));
    }
    let target = if create {
        path.to_owned()
    } else {
        path.with_extension(format!("key.new.{}", std::process::id()))
    };
    // A replacement keeps the owner of the file it replaces: rotating as root must not
    // leave a key file the server's own user cannot read.
    #[cfg(unix)]
    let owner = (!create)
        .then(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
        })
        .flatten();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if create {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let cannot =
        |e: std::io::Error| StoreError::Key(format!("cannot write {}: {e}", target.display()));
    let mut f = opts.open(&target).map_err(cannot)?;
    #[cfg(unix)]
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(cannot)?;
    }
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(cannot)?;
    if !create {
        std::fs::rename(&target, path).map_err(cannot)?;
    }
    // The rename is durable only once the directory is: without this a power cut could bring
    // back the old file while the database already holds values under the new key.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(cannot)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let v = Vault::new(&[7; 32]);
        let sealed = v.seal_str("ann@example.com");
        assert!(!sealed.windows(3).any(|w| w == b"ann"));
        assert_eq!(v.open_str(&sealed).unwrap(), "ann@example.com");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(v.open(&bad).is_err());
        assert!(Vault::new(&[8; 32]).open(&sealed).is_err());
    }

    #[test]
    fn blind_index_is_keyed_and_kind_separated() {
        let v = Vault::new(&[7; 32]);
        assert_eq!(v.blind("email", "a@b.co"), v.blind("email", "a@b.co"));
        assert_ne!(v.blind("email", "a@b.co"), v.blind("phone", "a@b.co"));
        assert_ne!(
            v.blind("email", "a@b.co"),
            Vault::new(&[8; 32]).blind("email", "a@b.co")
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Vault::load(dir.path(), None).unwrap();
        let b = Vault::load(dir.path(), None).unwrap();
        assert_eq!(b.open_str(&a.seal_str("x")).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Vault::load(dir.path(), Some("not hex")).is_err());
    }

    #[test]
    fn a_new_master_key_seals_while_old_ones_still_open_and_indexes_stay() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::load(dir.path(), None).unwrap();
        let old = v.seal_str("ann@example.com");
        let blind = v.blind("email", "ann@example.com");
        assert_eq!(v.add_master_key().unwrap(), 2);
        assert_eq!(v.active_key(), 2);
        let new = v.seal_str("ann@example.com");
        assert_eq!(
            (Vault::key_of(&old), Vault::key_of(&new)),
            (Some(1), Some(2))
        );
        assert_eq!(v.open_str(&old).unwrap(), "ann@example.com");
        let resealed = v.reseal(&old).unwrap().unwrap();
        assert_eq!(Vault::key_of(&resealed), Some(2));
        assert_eq!(v.reseal(&resealed).unwrap(), None);

        // Another process reading the rewritten file opens both and keeps the blind index.
        let other = Vault::load(dir.path(), None).unwrap();
        assert_eq!(other.open_str(&new).unwrap(), "ann@example.com");
        assert_eq!(other.blind("email", "ann@example.com"), blind);

        // Key 1 retired: its values no longer open, the index is unchanged.
        assert!(v.retire_master_key(2).is_err(), "the active key stays");
        v.retire_master_key(1).unwrap();
        let later = Vault::load(dir.path(), None).unwrap();
        assert_eq!(later.key_ids(), vec![2]);
        assert!(later.open(&old).is_err());
        assert_eq!(later.open_str(&resealed).unwrap(), "ann@example.com");
        assert_eq!(later.blind("email", "ann@example.com"), blind);
    }

    #[test]
    fn keys_added_at_once_by_two_processes_are_both_kept() {
        let dir = tempfile::tempdir().unwrap();
        Vault::load(dir.path(), None).unwrap();
        let ids: Vec<u8> = std::thread::scope(|s| {
            let adders: Vec<_> = (0..4)
                .map(|_| {
                    let v = Vault::load(dir.path(), None).unwrap();
                    s.spawn(move || v.add_master_key().unwrap())
                })
                .collect();
            adders.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, vec![2, 3, 4, 5], "{ids:?}");
        assert_eq!(
            Vault::load(dir.path(), None).unwrap().key_ids(),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn a_running_vault_picks_up_a_key_added_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let running = Vault::load(dir.path(), None).unwrap();
        let rotator = Vault::load(dir.path(), None).unwrap();
        rotator.add_master_key().unwrap();
        // A value under the new key opens at once: the unknown id triggers a reload.
        assert_eq!(running.open_str(&rotator.seal_str("x")).unwrap(), "x");
        assert_eq!(running.active_key(), 2);
    }

    #[test]
    fn keys_from_the_environment() {
        let k1 = "11".repeat(32);
        let k2 = "22".repeat(32);
        let single = Vault::load(Path::new("/nonexistent"), Some(&k1)).unwrap();
        let ring =
            Vault::load(Path::new("/nonexistent"), Some(&format!("1:{k1}, 2:{k2}"))).unwrap();
        assert_eq!(ring.active_key(), 2);
        assert_eq!(ring.open_str(&single.seal_str("x")).unwrap(), "x");
        assert_eq!(ring.blind("email", "x"), single.blind("email", "x"));
        for bad in ["", "0:{k1}", "1:abc", "1:{k1},1:{k2}", "x:{k1}"] {
            let bad = bad.replace("{k1}", &k1).replace("{k2}", &k2);
            assert!(
                Vault::load(Path::new("/nonexistent"), Some(&bad)).is_err(),
                "{bad}"
            );
        }
        assert!(ring.add_master_key().is_err());
    }
}
