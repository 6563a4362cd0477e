//! API keys, dashboard users and sessions, and the audit log.
//!
//! API keys and session tokens are 256-bit random secrets, so a plain SHA-256 of them is a
//! safe lookup key; only passwords, which people choose, need argon2.

use crate::{now_ms, Result, Store};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use patron_domain::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// Sessions last a working day.
const SESSION_MS: i64 = 12 * 3600 * 1000;

/// Failed sign-ins in a row, within [`LOCK_MS`], after which a user is locked out.
pub const LOCK_AFTER: i64 = 5;
/// How far back failures count, and so how long a lockout lasts.
const LOCK_MS: i64 = 15 * 60 * 1000;

/// The outcome of a sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Signed in: the new session's token.
    Session(String),
    /// Unknown user or wrong password (which of the two is not said).
    Failed,
    /// Too many failures lately: refused without checking the password.
    Locked,
}

/// A dashboard user.
#[derive(Debug, Clone)]
pub struct User {
    /// Row id.
    pub user_id: i64,
    /// Login name.
    pub username: String,
    /// What the user may do.
    pub role: Role,
}

/// An authenticated API key.
#[derive(Debug, Clone, Copy)]
pub struct ApiKeyInfo {
    /// Row id.
    pub key_id: i64,
    /// What the key may do.
    pub role: Role,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKeyRow {
    /// Id.
    pub key_id: i64,
    /// The key's first characters.
    pub prefix: String,
    /// Its role.
    pub role: String,
    /// Its label.
    pub name: Option<String>,
    /// When it was made (ms since epoch).
    pub created_at: i64,
    /// When it was last used, to the minute.
    pub last_used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

fn parse_role(s: &str) -> Role {
    // Roles are written by this crate only; an unknown one means a newer schema, so deny most.
    Role::parse(s).unwrap_or(Role::Ingest)
}

impl Store {
    /// Creates an API key and returns it; only its hash is stored, so this is the only time
    /// the key can be seen.
    pub async fn create_api_key(&self, role: Role, name: Option<&str>) -> Result<String> {
        let key = random_token("ptn_");
        sqlx::query(
            "INSERT INTO api_keys (key_hash, prefix, role, name, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256(&key))
        .bind(key[..12].to_owned())
        .bind(role.as_str())
        .bind(name.map(str::to_owned))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.audit("cli", "api_key.create", Some(role.as_str()), None)
            .await?;
        Ok(key)
    }

    /// Every API key (never the key itself: its first characters, to recognise it).
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        sqlx::query(
            "SELECT key_id, prefix, role, name, created_at, last_used_at, revoked_at \
             FROM api_keys ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ApiKeyRow {
                key_id: r.try_get(0)?,
                prefix: r.try_get(1)?,
                role: r.try_get(2)?,
                name: r.try_get(3)?,
                created_at: r.try_get(4)?,
                last_used_at: r.try_get(5)?,
                revoked_at: r.try_get(6)?,
            })
        })
        .collect()
    }

    /// Revokes a key at once; `false` if there is no such live key.
    pub async fn revoke_api_key(&self, key_id: i64, actor: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(key_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done == 1 {
            self.audit(actor, "api_key.revoke", Some(&key_id.to_string()), None)
                .await?;
        }
        Ok(done == 1)
    }

    /// Looks an API key up; `None` if unknown or revoked. Records its last use.
    pub async fn authenticate_key(&self, key: &str) -> Result<Option<ApiKeyInfo>> {
        let hash = sha256(key);
        let Some(row) = sqlx::query(
            "SELECT key_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let key_id: i64 = row.try_get(0)?;
        // At most one write a minute per key: tracking clients call many times a second, and
        // "last used" needs no finer grain. The statement is not even sent while this process
        // wrote it less than a minute ago: on SQLite an UPDATE takes the write lock whether it
        // changes a row or not (every call would wait behind an import), on PostgreSQL it is
        // a round trip.
        let now = now_ms();
        let used = || self.keys_used.lock().unwrap_or_else(|e| e.into_inner());
        let minute = std::time::Duration::from_secs(60);
        if used().get(&key_id).is_none_or(|at| at.elapsed() >= minute) {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1 WHERE key_id = $2 \
                 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(now)
            .bind(key_id)
            .bind(now - 60_000)
            .execute(&self.pool)
            .await?;
            used().insert(key_id, std::time::Instant::now());
        }
        Ok(Some(ApiKeyInfo {
            key_id,
            role: parse_role(&row.try_get::<String, _>(1)?),
        }))
    }

    /// Creates a user, or resets the password and role of an existing one.
    pub async fn upsert_user(&self, username: &str, password: &str, role: Role) -> Result<()> {
        let salt = SaltString::generate(&mut rand::thread_rng());
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| crate::StoreError::Io(format!("cannot hash password: {e}")))?
            .to_string();
        sqlx::query(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role",
        )
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.audit("cli", "user.upsert", Some(username), None)
            .await?;
        Ok(())
    }

    /// Whether any user exists.
    pub async fn has_users(&self) -> Result<bool> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n > 0)
    }

    /// Checks a password and opens a session. After [`LOCK_AFTER`] failures in a row within
    /// 15 minutes the user is locked out until the oldest of them is 15 minutes old; failures
    /// and lockouts are in the audit log, which is where they are counted from.
    pub async fn login(&self, username: &str, password: &str) -> Result<Login> {
        let now = now_ms();
        let failures: i64 = sqlx::query(
            "SELECT COUNT(*) FROM audit_log WHERE actor = $1 AND action = 'login.failed' \
             AND at > $2 AND at > COALESCE((SELECT MAX(at) FROM audit_log \
             WHERE actor = $1 AND action = 'login'), 0)",
        )
        .bind(username)
        .bind(now - LOCK_MS)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        if failures >= LOCK_AFTER {
            self.audit(username, "login.locked", None, None).await?;
            return Ok(Login::Locked);
        }
        let Some(row) = sqlx::query("SELECT user_id, password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
        else {
            // Unknown names fail and lock out like known ones, so neither says which exist.
            self.audit(username, "login.failed", None, None).await?;
            return Ok(Login::Failed);
        };
        let stored: String = row.try_get(1)?;
        let ok = PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        if !ok {
            self.audit(username, "login.failed", None, None).await?;
            return Ok(Login::Failed);
        }
        let token = random_token("");
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(sha256(&token))
            .bind(row.try_get::<i64, _>(0)?)
            .bind(now)
            .bind(now + SESSION_MS)
            .execute(&self.pool)
            .await?;
        self.audit(username, "login", None, None).await?;
        Ok(Login::Session(token))
    }

    /// The user of a live session.
    pub async fn session_user(&self, token: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.user_id, u.username, u.role FROM sessions s JOIN users u ON u.user_id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(sha256(token))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(User {
                user_id: r.try_get(0)?,
                username: r.try_get(1)?,
                role: parse_role(&r.try_get::<String, _>(2)?),
            })
        })
        .transpose()
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(sha256(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
