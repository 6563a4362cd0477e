//! The JSON API over real HTTPS: authentication, roles, search, the customer view.

use crate::helpers::{spawn_app, spawn_app_with_fixtures, Db, TestApp, TestEnv};
use patron_domain::Role;
use reqwest::StatusCode;

async fn search(app: &TestApp, q: &str) -> Vec<serde_json::Value> {
    let resp = app
        .client
        .get(app.url("/api/v1/customers"))
        .query(&[("q", q)])
        .bearer_auth(&app.keys[&Role::Agent])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{q}");
    let body: serde_json::Value = resp.json().await.unwrap();
    body["customers"].as_array().unwrap().clone()
}

async fn search_and_view(db: Db) {
    let app = spawn_app_with_fixtures(db).await;
    // Email in any case, phone in any format, name in any case: all find Ann's one profile.
    for q in [
        "ANN.LEE@example.com",
        "+1 (415) 555-2671",
        "+14155552671",
        "ann lee",
        "Lee",
    ] {
        let found = search(&app, q).await;
        assert_eq!(found.len(), 1, "{q}: {found:?}");
        assert_eq!(found[0]["email"], "ann.lee@example.com", "{q}");
    }
    assert!(search(&app, "nobody-here@example.com").await.is_empty());
    let id = search(&app, "ann.lee@example.com").await[0]["customer_id"]
        .as_i64()
        .unwrap();

    let resp = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{id}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let c: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        c["name"], "Ann L.",
        "the most recent record's name survives"
    );
    assert_eq!(c["phone"], "+14155552671");
    assert_eq!(c["identities"].as_array().unwrap().len(), 3);
    assert_eq!(c["order_summary"]["orders"], 2);
    assert_eq!(c["rfm"]["frequency"], 2);
    assert!(c["segments"].as_array().unwrap().len() == 1);
    assert!(c["recommendations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn search_and_customer_view_on_sqlite() {
    search_and_view(Db::Sqlite).await;
}

#[tokio::test]
async fn search_and_customer_view_on_postgres() {
    search_and_view(Db::Postgres).await;
}

#[tokio::test]
async fn authentication_and_roles() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let path = "/api/v1/customers?q=ann@example.com";
    let none = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = app
        .client
        .get(app.url(path))
        .bearer_auth("ptn_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    for (role, expected) in [
        (Role::Admin, StatusCode::OK),
        (Role::Analyst, StatusCode::OK),
        (Role::Agent, StatusCode::OK),
        (Role::Ingest, StatusCode::FORBIDDEN),
    ] {
        assert_eq!(app.get_as(role, path).await.status(), expected, "{role:?}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let resp = app.get_as(Role::Admin, "/api/v1/customers").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("q is required"));
    assert_eq!(
        app.get_as(Role::Admin, "/api/v1/customers/abc")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get_as(Role::Admin, "/api/v1/customers/999999")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_server_speaks_only_https() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let plain = app.base.replace("https://", "http://");
    let resp = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(
        resp.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served"
    );
    // A client that checks certificates accepts the generated one once told to trust it.
    let pem = std::fs::read(app.env.data_dir().join("tls/cert.pem")).unwrap();
    let strict = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let resp = strict.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn quarantine_is_listed_for_admins_only() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let resp = app
        .get_as(Role::Admin, "/api/v1/quarantine?kind=customers")
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{body}");
    assert!(entries
        .iter()
        .any(|e| e["field"] == "email" && e["value"] == "not-an-email"));
    for role in [Role::Agent, Role::Analyst, Role::Ingest] {
        assert_eq!(
            app.get_as(role, "/api/v1/quarantine").await.status(),
            StatusCode::FORBIDDEN
        );
    }
    let orders = app
        .get_as(Role::Admin, "/api/v1/quarantine?kind=orders")
        .await;
    let body: serde_json::Value = orders.json().await.unwrap();
    assert_eq!(body["entries"][0]["field"], "unit_price");
    assert_eq!(
        app.get_as(Role::Admin, "/api/v1/quarantine?kind=x")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}

/// A shop's pages call the unaudited reads many times a second, also while an import holds
/// the embedded database's write lock for minutes: a key's last use is written at most once a
/// minute, and the calls in between must not ask for the lock at all.
#[tokio::test]
async fn a_read_waits_for_no_write_lock_once_its_key_was_seen() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let ann = app.env.profile_of("web", "w1").await;
    let path = format!("/api/v1/customers/{ann}/recommendations");
    assert_eq!(
        app.get_as(Role::Agent, &path).await.status(),
        StatusCode::OK
    );
    let db = rusqlite::Connection::open(app.env.data_dir().join("patron.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let resp = app.get_as(Role::Agent, &path).await;
    db.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
}

/// A read whose audit entry cannot get the write lock within the busy timeout (an import
/// holds it) is told to retry, not answered "internal error", and succeeds once the lock is
/// free; a change in the same position is a 500, since it may have been saved before.
#[tokio::test]
async fn a_read_that_cannot_write_its_audit_entry_is_told_to_retry_a_change_is_not() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let ann = app.env.profile_of("web", "w1").await;
    let bob = app.env.profile_of("web", "w2").await;
    let path = format!("/api/v1/customers/{ann}");
    // The keys' last use is written first, so the calls below wait only in their own writes.
    assert_eq!(
        app.get_as(Role::Agent, &path).await.status(),
        StatusCode::OK
    );
    let review = app.get_as(Role::Admin, "/api/v1/review").await;
    assert_eq!(review.status(), StatusCode::OK);
    let db = rusqlite::Connection::open(app.env.data_dir().join("patron.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let read = app.get_as(Role::Agent, &path).await;
    let change = app
        .client
        .post(app.url("/api/v1/never-merges"))
        .bearer_auth(&app.keys[&Role::Admin])
        .json(&serde_json::json!({"a": ann, "b": bob}))
        .send()
        .await
        .unwrap();
    db.execute_batch("ROLLBACK").unwrap();
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(read.headers()["retry-after"], "5");
    let body: serde_json::Value = read.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("retry"), "{body}");
    assert_eq!(change.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(change.headers().get("retry-after").is_none());
    assert_eq!(
        app.get_as(Role::Agent, &path).await.status(),
        StatusCode::OK
    );
}
