//! Patron's HTTP server: the JSON API under `/api/v1`, the server-rendered dashboard, and
//! HTTPS. Handlers are thin: they authenticate, call the store, and shape the answer; the
//! server never does analytics itself.
//!
//! [`app`] builds the one router that production and the tests both serve, so tests exercise
//! the real start-up path.

mod api;
mod auth;
mod dashboard;
mod error;
mod segment;
mod tls;

pub use tls::{tls_config, TlsSetting};

use axum::Router;
use patron_domain::CleanConfig;
use patron_store::Store;
use std::net::SocketAddr;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Standardization settings for search input (default phone region).
    pub clean: CleanConfig,
    /// Whether session cookies are marked `Secure` (false only when serving plain HTTP).
    pub secure_cookies: bool,
}

/// The whole application: API, dashboard and health check.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .merge(api::router())
        .merge(dashboard::router())
        .merge(segment::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        // Tracking libraries may gzip their batches.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .with_state(state)
}

/// Binds the listening socket. Separate from [`serve`] so callers learn the real address
/// (port 0 in tests) and a port already in use fails before anything else starts.
pub fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr}: {e}{}",
            if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another program uses this port; pick another with --listen)"
            } else {
                ""
            }
        )
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `app` on `listener`, over TLS when `tls` is given, until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    app: Router,
) -> anyhow::Result<()> {
    // The client's address reaches handlers, for the audit log.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(cfg) => {
            axum_server::from_tcp_rustls(listener, cfg)
                .serve(service)
                .await?
        }
        None => axum_server::from_tcp(listener).serve(service).await?,
    }
    Ok(())
}
