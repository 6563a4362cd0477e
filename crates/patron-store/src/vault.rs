//! Encryption at rest and blind indexes for personal data.
//!
//! One 256-bit master key, kept in the data directory (mode 0600) or given through
//! `PATRON_MASTER_KEY`, derives two independent keys: one for AES-256-GCM field encryption, one
//! for the HMAC-SHA256 blind indexes that let Patron find a customer by email or phone without
//! storing either in clear. A ciphertext is `key id (1 byte) ‖ nonce (12) ‖ ciphertext + tag`,
//! so a later key rotation can tell old from new.

use crate::StoreError;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;
use zeroize::Zeroizing;

const KEY_ID: u8 = 1;
/// Blind indexes are truncated to 128 bits: collisions stay negligible at billions of values
/// and the indexes stay small.
const BLIND_LEN: usize = 16;

/// Encrypts and decrypts personal fields and computes their blind indexes.
pub struct Vault {
    cipher: Aes256Gcm,
    /// Backups have a key of their own, so a backup's chunks can never pass for fields.
    backup: Aes256Gcm,
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
    /// Builds a vault from a master key.
    pub fn new(master: &[u8; 32]) -> Vault {
        let enc = derive(master, b"patron/v1/encrypt");
        let index_key = derive(master, b"patron/v1/blind-index");
        let backup = derive(master, b"patron/v1/backup");
        Vault {
            cipher: Aes256Gcm::new_from_slice(&enc[..]).expect("32-byte key"),
            backup: Aes256Gcm::new_from_slice(&backup[..]).expect("32-byte key"),
            index_mac: <Hmac<Sha256> as Mac>::new_from_slice(&index_key[..])
                .expect("any key length"),
        }
    }

    /// Loads the master key: `given` (hex, from `PATRON_MASTER_KEY`) if set, else
    /// `DATA_DIR/master.key`, which is created with mode 0600 on first run.
    pub fn load(data_dir: &Path, given: Option<&str>) -> Result<Vault, StoreError> {
        let hex_key = match given {
            Some(k) => Zeroizing::new(k.trim().to_owned()),
            None => {
                let path = data_dir.join("master.key");
                if !path.exists() {
                    create_key_file(&path)?;
                }
                Zeroizing::new(
                    std::fs::read_to_string(&path)
                        .map_err(|e| {
                            StoreError::Key(format!("cannot read {}: {e}", path.display()))
                        })?
                        .trim()
                        .to_owned(),
                )
            }
        };
        let mut master = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_key.as_bytes(), &mut master[..]).map_err(|_| {
            StoreError::Key("the master key must be 64 hexadecimal characters".into())
        })?;
        Ok(Vault::new(&master))
    }

    /// Encrypts a value.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::AeadInPlace;
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encrypted in place behind the header, in one allocation.
        let mut out = Vec::with_capacity(1 + 12 + plain.len() + 16);
        out.push(KEY_ID);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut out[13..])
            .expect("AES-GCM encryption does not fail for in-memory buffers");
        out.extend_from_slice(&tag);
        out
    }

    /// Seals one chunk of a backup under the backup key with the given nonce.
    pub(crate) fn seal_chunk(&self, nonce: &[u8; 12], plain: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::Aead;
        self.backup
            .encrypt(nonce.into(), plain)
            .expect("AES-GCM encryption of a bounded chunk cannot fail")
    }

    /// Opens one chunk of a backup; fails if it was changed, moved or sealed with another key.
    pub(crate) fn open_chunk(
        &self,
        nonce: &[u8; 12],
        sealed: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        use aes_gcm::aead::Aead;
        self.backup
            .decrypt(nonce.into(), sealed)
            .map_err(|_| StoreError::Decrypt)
    }

    /// Encrypts text.
    pub fn seal_str(&self, plain: &str) -> Vec<u8> {
        self.seal(plain.as_bytes())
    }

    /// Decrypts a value sealed by [`Vault::seal`] with the same master key.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != KEY_ID {
            return Err(StoreError::Decrypt);
        }
        self.cipher
            .decrypt(Nonce::from_slice(&sealed[1..13]), &sealed[13..])
            .map_err(|_| StoreError::Decrypt)
    }

    /// Decrypts text.
    pub fn open_str(&self, sealed: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| StoreError::Decrypt)
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
}

fn derive(master: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("any key length");
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn create_key_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Write;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(&mut key[..]);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| StoreError::Key(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(Zeroizing::new(hex::encode(&key[..])).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| StoreError::Key(format!("cannot write {}: {e}", path.display())))
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
}
