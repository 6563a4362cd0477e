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
mod limits;
mod segment;
mod tls;

pub use api::ROUTES;
pub use limits::RateLimiter;
pub use segment::interpret as interpret_tracking;
pub use tls::{reload_on_hangup, tls_config, TlsSetting};

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
    /// Calls per API key.
    pub limits: std::sync::Arc<RateLimiter>,
}

/// Headers every response carries: no framing, no sniffing, no referrer, and a content
/// policy that allows the dashboard's own styles and forms and nothing else (it has no
/// scripts). HSTS is added when serving HTTPS.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

/// The API's OpenAPI 3 description, served at `/openapi.json`; a test keeps it listing
/// exactly the routes of [`ROUTES`].
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How long one request may take before the server gives up on it (408).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The whole application: API, dashboard and health check.
pub fn app(state: AppState) -> Router {
    use axum::http::{HeaderName, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer;
    let mut headers: Vec<(&str, &str)> = SECURITY_HEADERS.to_vec();
    if state.secure_cookies {
        headers.push(("strict-transport-security", "max-age=31536000"));
    }
    let mut router = Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/openapi.json",
            axum::routing::get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    OPENAPI,
                )
            }),
        )
        .merge(api::router(state.clone()))
        .merge(dashboard::router())
        .merge(segment::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
        // Tracking libraries may gzip their batches.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router.with_state(state)
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

/// Runs `warm` once on each worker thread of the current runtime (the threads that answer
/// requests) and returns when all have: for per-thread state that a request would otherwise
/// build on the way (`patron_domain::warm_phone_rules`). Each worker's call waits on a
/// barrier until every worker has one, which is what spreads the calls one per thread: call
/// this once, before serving, while no worker is held by other work.
pub async fn warm_request_threads(warm: impl Fn() + Send + Sync + 'static) -> anyhow::Result<()> {
    /// Arrives at the barrier when dropped, so a call that panics still lets the others go.
    struct Arrive(std::sync::Arc<std::sync::Barrier>);
    impl Drop for Arrive {
        fn drop(&mut self) {
            self.0.wait();
        }
    }
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(workers));
    let warm = std::sync::Arc::new(warm);
    let calls: Vec<_> = (0..workers)
        .map(|_| {
            let (arrive, warm) = (Arrive(barrier.clone()), warm.clone());
            tokio::spawn(async move {
                let _arrive = arrive;
                warm();
            })
        })
        .collect();
    for call in calls {
        call.await
            .map_err(|e| anyhow::anyhow!("warming a request thread failed: {e}"))?;
    }
    Ok(())
}

/// Serves `app` on `listener`, over TLS when `tls` is given, until the process ends.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    app: Router,
) -> anyhow::Result<()> {
    // The client's address reaches handlers, for the audit log.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    // Without TCP_NODELAY a response written in two parts waits for the client's delayed
    // acknowledgement of the first: a lookup whose answer was split took 40 ms, not 3.
    let no_delay = axum_server::accept::NoDelayAcceptor::new();
    let server = axum_server::from_tcp(listener);
    match tls {
        Some(cfg) => {
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(cfg).acceptor(no_delay);
            server.acceptor(tls).serve(service).await?
        }
        None => server.acceptor(no_delay).serve(service).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The threads `warm_request_threads` ran its function on, under a runtime of `workers`.
    fn warmed_threads(workers: Option<usize>) -> Vec<std::thread::ThreadId> {
        let mut builder = match workers {
            Some(n) => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(n);
                b
            }
            None => tokio::runtime::Builder::new_current_thread(),
        };
        let runtime = builder.enable_all().build().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        runtime
            .block_on(super::warm_request_threads(move || {
                record.lock().unwrap().push(std::thread::current().id())
            }))
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        seen
    }

    #[test]
    fn every_worker_thread_is_warmed_once() {
        let threads = warmed_threads(Some(3));
        assert_eq!(threads.len(), 3);
        let distinct: std::collections::HashSet<_> = threads.iter().collect();
        assert_eq!(distinct.len(), 3, "{threads:?}");
        assert_eq!(warmed_threads(None).len(), 1);
    }

    #[test]
    fn a_warm_up_that_panics_is_an_error_not_a_hang() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let calls = std::sync::Arc::new(calls);
        let count = calls.clone();
        let result = runtime.block_on(super::warm_request_threads(move || {
            if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("first warm-up fails");
            }
        }));
        assert!(result.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn the_openapi_description_lists_every_route() {
        let spec: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let mut described: Vec<String> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.starts_with("/api/"))
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| format!("{} {path}", m.to_uppercase()))
            })
            .collect();
        let mut routed: Vec<String> = super::ROUTES
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect();
        described.sort();
        routed.sort();
        assert_eq!(described, routed);
    }
}
