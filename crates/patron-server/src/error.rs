//! The one error type of HTTP handlers, mapped to status codes in one place. Internal errors
//! are logged with their cause and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or unknown credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Known credentials without the needed role.
    #[error("this key's role may not do that")]
    Forbidden,
    /// No such resource.
    #[error("not found")]
    NotFound,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The key made too many calls; it may call again after this many seconds.
    #[error("too many requests for this key; retry after {0} s")]
    TooManyRequests(u64),
    /// The request does not fit the current state.
    #[error("{0}")]
    Conflict(String),
    /// Anything else; never shown to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<patron_store::StoreError> for ApiError {
    fn from(e: patron_store::StoreError) -> Self {
        match e {
            // Made from what was read before a record was erased: the message says so.
            patron_store::StoreError::Stale(m) => ApiError::Conflict(m),
            e => ApiError::Internal(e.into()),
        }
    }
}

impl From<patron_pipeline::identity::IdentityError> for ApiError {
    fn from(e: patron_pipeline::identity::IdentityError) -> Self {
        use patron_pipeline::identity::IdentityError as E;
        match e {
            // The message names the missing profile, record or pair, which the caller gave.
            E::NotFound(_) => ApiError::NotFound,
            E::Invalid(m) => ApiError::BadRequest(m),
            E::Refused(m) => ApiError::Conflict(m),
            E::Store(e) => ApiError::Internal(e),
        }
    }
}

impl From<patron_pipeline::segments::SegmentError> for ApiError {
    fn from(e: patron_pipeline::segments::SegmentError) -> Self {
        use patron_pipeline::segments::SegmentError as E;
        match e {
            E::Rule { error, .. } => ApiError::BadRequest(format!("rule: {error}")),
            E::Name(m) => ApiError::Conflict(m),
            E::NotFound(_) => ApiError::NotFound,
            E::Store(e) => ApiError::Internal(e),
        }
    }
}

impl ApiError {
    /// An internal error that is SQLite's write lock held too long by another writer: the
    /// client may retry, and is told so.
    fn busy(&self) -> bool {
        matches!(self, ApiError::Internal(e) if e.chain().any(patron_store::is_busy))
    }

    fn status(&self) -> StatusCode {
        if self.busy() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let busy = self.busy();
        let message = match &self {
            ApiError::Internal(e) if busy => {
                tracing::warn!(error = %format!("{e:#}"), "database busy");
                "the database is busy with another write (an import, a unify run); retry \
                 after a few seconds"
                    .to_owned()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (
            self.status(),
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response();
        let retry_after = match self {
            ApiError::TooManyRequests(seconds) => Some(seconds),
            // SQLite's busy timeout is 5 s: sooner, a retry would likely wait it out again.
            _ if busy => Some(5),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
