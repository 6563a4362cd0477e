//! Who is calling: API keys (`Authorization: Bearer`) for the API, session cookies for the
//! dashboard. Which role may do what is declared next to each route with [`require`].

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use patron_domain::Role;

/// The caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Role of the key.
    pub role: Role,
    /// Audit name (`key:ID`).
    pub actor: String,
    /// The client's address, for the audit log.
    pub origin: Option<String>,
}

impl Caller {
    /// Records what the caller did, and from where, in the audit log.
    pub async fn audit(
        &self,
        store: &patron_store::Store,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), ApiError> {
        store
            .audit_from(&self.actor, self.origin.as_deref(), action, target, detail)
            .await?;
        Ok(())
    }
}

/// The client's address (`ip:port`) when the server knows it.
#[derive(Debug, Clone)]
pub struct Origin(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The access middleware already authenticated this request (and counted it against
        // the key's rate limit): reuse its answer rather than look the key up twice.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let key = header
            .strip_prefix("Bearer ")
            .ok_or(ApiError::Unauthorized)?
            .trim();
        let info = state
            .store
            .authenticate_key(key)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        state
            .limits
            .admit(info.key_id)
            .map_err(ApiError::TooManyRequests)?;
        let Origin(origin) = Origin::from_request_parts(parts, state)
            .await
            .unwrap_or(Origin(None));
        Ok(Caller {
            role: info.role,
            actor: format!("key:{}", info.key_id),
            origin,
        })
    }
}

/// Fails with 403 unless the caller has one of `roles`.
pub fn require(caller: &Caller, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&caller.role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "patron_session";

/// The session token from a request's cookies.
pub fn session_token(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The cookie that carries the sign-in form's anti-forgery token.
pub const LOGIN_CSRF_COOKIE: &str = "patron_login_csrf";

/// The value of cookie `name` in a request.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(name)?
                .strip_prefix('=')
                .map(str::to_owned)
        })
}

/// The anti-forgery token of a signed-in session's forms: derived from the session token,
/// which only the browser holding the HttpOnly cookie knows, so another site cannot forge it.
pub fn csrf_token(session: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("patron-csrf:{session}")))
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
