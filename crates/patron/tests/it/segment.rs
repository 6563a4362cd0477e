//! The Segment-compatible tracking API: auth by write key, every call type, e-commerce events
//! feeding orders, batches with shared context, idempotency, limits, and the official Python
//! client library sending through real HTTPS.

use crate::helpers::{spawn_app, Db, TestApp, TestEnv};
use patron_domain::Role;
use reqwest::StatusCode;
use serde_json::json;

async fn post(app: &TestApp, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .basic_auth(key, Some(""))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let o = app.store.overview().await.unwrap();
    match table {
        "events" => o.events,
        "orders" => o.orders,
        "records" => o.source_records,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn identify_and_order_events_become_records_and_orders() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let key = app.keys[&Role::Ingest].clone();
    let identify = json!({
        "userId": "u-42", "messageId": "m-1", "timestamp": "2024-05-01T10:00:00+08:00",
        "traits": { "email": "Kim@Example.com", "firstName": "Kim", "lastName": "Lee",
                    "phone": "+1 415 555 2671", "address": { "city": "Oakland", "country": "US" } }
    });
    let resp = post(&app, "/v1/identify", &key, identify.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["success"],
        true
    );
    // Delivered twice (a retry): stored once.
    assert_eq!(
        post(&app, "/v1/identify", &key, identify).await.status(),
        StatusCode::OK
    );
    assert_eq!(count(&app, "events").await, 1);
    assert_eq!(count(&app, "records").await, 1);

    let order = json!({
        "userId": "u-42", "messageId": "m-2", "event": "Order Completed",
        "timestamp": "2024-05-02T10:00:00Z",
        "properties": { "order_id": "o-9", "currency": "usd", "total": 59.0, "products": [
            { "product_id": "p1", "sku": "S1", "name": "Green Tea", "category": "Grocery", "price": 9.5, "quantity": 2 },
            { "product_id": "p2", "name": "Teapot", "price": 40, "quantity": 1 }
        ]}
    });
    assert_eq!(
        post(&app, "/v1/track", &key, order).await.status(),
        StatusCode::OK
    );
    assert_eq!(count(&app, "orders").await, 1);
    let refund = json!({"userId": "u-42", "messageId": "m-3", "event": "Order Refunded", "properties": {"order_id": "o-9"}});
    assert_eq!(
        post(&app, "/v1/track", &key, refund).await.status(),
        StatusCode::OK
    );
    for (path, body) in [
        (
            "/v1/page",
            json!({"anonymousId": "a-1", "name": "Home", "messageId": "m-4"}),
        ),
        (
            "/v1/screen",
            json!({"userId": "u-42", "name": "Cart", "messageId": "m-5"}),
        ),
        (
            "/v1/alias",
            json!({"userId": "u-42", "previousId": "a-1", "messageId": "m-6"}),
        ),
        (
            "/v1/track",
            json!({"userId": "u-42", "event": "Product Viewed", "messageId": "m-7", "properties": {"product_id": "p1"}}),
        ),
    ] {
        assert_eq!(
            post(&app, path, &key, body).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    assert_eq!(count(&app, "events").await, 7);

    // After unify the order and the events belong to Kim's profile.
    patron_pipeline::run_stages(
        &app.store,
        &patron_pipeline::Stage::ALL,
        &patron_pipeline::RunConfig {
            currency: patron_domain::Currency::parse("USD").unwrap(),
            clusters: None,
            purchase_model: Default::default(),
            recommend: Default::default(),
        },
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    let found = app
        .store
        .search("kim@example.com", &Default::default(), 5)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name.as_deref(), Some("Kim Lee"));
    assert_eq!(found[0].city.as_deref(), Some("Oakland"));
    let detail = app
        .store
        .customer(found[0].customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        detail.order_summary.reversed_orders, 1,
        "the refund reached the order"
    );
    let catalog = app.store.overview().await.unwrap().products;
    assert_eq!(catalog, 2, "products seen in orders join the catalog");
}

#[tokio::test]
async fn batches_merge_context_and_quarantine_bad_messages() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let key = app.keys[&Role::Ingest].clone();
    let body = json!({
        "context": { "library": { "name": "test" }, "ip": "10.0.0.1" },
        "batch": [
            { "type": "track", "userId": "u1", "event": "Product Added", "messageId": "b-1" },
            { "type": "track", "event": "No One", "messageId": "b-2" },
            { "type": "warp", "userId": "u1", "messageId": "b-3" },
            { "type": "page", "userId": "u1", "name": "Home", "messageId": "b-4", "context": { "ip": "10.0.0.2" } }
        ]
    });
    let resp = post(&app, "/v1/batch", &key, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["rejected"],
        2
    );
    assert_eq!(count(&app, "events").await, 2);
    let q = app
        .store
        .quarantine_list(Some("events"), 10, 0)
        .await
        .unwrap();
    let reasons: Vec<&str> = q.iter().map(|e| e.entry.reason.as_str()).collect();
    assert!(
        reasons.contains(&"userId or anonymousId is required"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("unknown message type")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn write_keys_limits_and_bad_payloads() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let ok = json!({"userId": "u1", "event": "X"});
    let none = app
        .client
        .post(app.url("/v1/track"))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(&app, "/v1/track", "ptn_wrong", ok.clone())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, "/v1/track", &app.keys[&Role::Agent], ok.clone())
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    // writeKey in the body works too.
    let with_key = json!({"userId": "u1", "event": "X", "writeKey": app.keys[&Role::Ingest]});
    let resp = app
        .client
        .post(app.url("/v1/track"))
        .json(&with_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let key = app.keys[&Role::Ingest].clone();
    let bad = |body| post(&app, "/v1/track", &key, body);
    assert_eq!(
        bad(json!({"event": "X"})).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        bad(json!({"userId": "u1"})).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        bad(json!({"userId": "u1", "event": "X", "timestamp": "soon"}))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        bad(json!({"userId": "u1", "event": "Order Completed", "properties": {}}))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let big = json!({"userId": "u1", "event": "X", "properties": {"blob": "x".repeat(33 * 1024)}});
    assert_eq!(bad(big).await.status(), StatusCode::BAD_REQUEST);
    let not_json = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(&key, Some(""))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let many: Vec<_> = (0..2_501)
        .map(|i| json!({"type": "track", "userId": "u", "event": "E", "messageId": i.to_string()}))
        .collect();
    assert_eq!(
        post(&app, "/v1/batch", &key, json!({ "batch": many }))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    // The ingest key writes but reads nothing.
    assert_eq!(
        app.get_as(Role::Ingest, "/api/v1/customers?q=u1")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

/// The official `segment-analytics-python` library, unchanged, pointed at Patron. Needs the
/// Python environment scripts/test.sh prepares (PATRON_TEST_PYTHON).
#[tokio::test]
async fn the_official_python_client_delivers_to_patron() {
    let python = std::env::var("PATRON_TEST_PYTHON").expect(
        "set PATRON_TEST_PYTHON to a python with segment-analytics-python installed (scripts/test.sh does)",
    );
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let script = r#"
import os, segment.analytics as analytics
analytics.write_key = os.environ["WRITE_KEY"]
analytics.host = os.environ["HOST"]
analytics.sync_mode = True
errors = []
analytics.on_error = lambda e, batch: errors.append(e)
analytics.identify("py-1", {"email": "py@example.com", "name": "Py Thon"})
analytics.track("py-1", "Order Completed", {"order_id": "py-o1", "currency": "EUR",
    "products": [{"product_id": "p9", "name": "Mug", "price": 12.5, "quantity": 2}]})
analytics.page("py-1", "Docs", "Install")
analytics.flush()
assert not errors, errors
print("sent")
"#;
    let out = tokio::process::Command::new(&python)
        .args(["-c", script])
        .env("WRITE_KEY", &app.keys[&Role::Ingest])
        .env("HOST", &app.base)
        // Real TLS verification, trusting the certificate Patron generated on first run.
        .env(
            "REQUESTS_CA_BUNDLE",
            app.env.data_dir().join("tls/cert.pem"),
        )
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&app, "events").await, 3);
    assert_eq!(count(&app, "orders").await, 1);
    assert_eq!(count(&app, "records").await, 1);
}

#[tokio::test]
async fn tracking_payloads_and_shopify_buyers_leave_nothing_personal_in_clear() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let key = app.keys[&Role::Ingest].clone();
    let identify = json!({
        "userId": "u-7", "messageId": "p-1",
        "traits": { "email": "secret.person@example.com", "phone": "+1 415 555 2671", "name": "Secret Person" },
        "context": { "ip": "203.0.113.77", "traits": { "email": "secret.person@example.com" } }
    });
    assert_eq!(
        post(&app, "/v1/identify", &key, identify).await.status(),
        StatusCode::OK
    );
    let orders = app.env.write(
        "orders_export.csv",
        "Name,Email,Financial Status,Currency,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Billing Name,Billing Phone\n\
         #1,hidden.buyer@example.com,paid,USD,2024-01-01 10:00:00 +0000,1,Tea,9.50,T1,Hidden Buyer,+44 7911 123456\n",
    );
    app.env
        .patron_ok(&["import", "orders", orders.to_str().unwrap()]);
    app.env.patron_ok(&["run"]);
    let haystack = app.env.database_bytes();
    for needle in [
        "secret.person",
        "203.0.113.77",
        "4155552671",
        "Secret Person",
        "hidden.buyer",
        "Hidden Buyer",
        "7911123456",
    ] {
        assert!(
            !haystack
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{needle} found in clear in the database file"
        );
    }
    // Still findable through the blind indexes.
    let found = app
        .store
        .search("hidden.buyer@example.com", &Default::default(), 5)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn a_retried_message_is_not_applied_twice_and_unknown_refunds_are_kept() {
    let app = spawn_app(TestEnv::new(Db::Sqlite).await).await;
    let key = app.keys[&Role::Ingest].clone();
    let order = json!({
        "userId": "u-1", "messageId": "r-1", "event": "Order Completed",
        "properties": { "order_id": "o-1", "products": [{ "product_id": "p1", "price": 10, "quantity": 1 }] }
    });
    let refund = json!({"userId": "u-1", "messageId": "r-2", "event": "Order Refunded", "properties": {"order_id": "o-1"}});
    assert_eq!(
        post(&app, "/v1/track", &key, order.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&app, "/v1/track", &key, refund).await.status(),
        StatusCode::OK
    );
    // The SDK retries the first delivery (it never saw the answer): the refund must stand.
    assert_eq!(
        post(&app, "/v1/track", &key, order).await.status(),
        StatusCode::OK
    );
    app.env.patron_ok(&["run", "unify"]);
    let ghost = json!({"userId": "u-1", "messageId": "r-3", "event": "Order Cancelled", "properties": {"order_id": "never-seen"}});
    assert_eq!(
        post(&app, "/v1/track", &key, ghost).await.status(),
        StatusCode::OK
    );
    let store = &app.store;
    let overview = store.overview().await.unwrap();
    assert!(
        overview.revenue.is_empty(),
        "the only order stays refunded: {:?}",
        overview.revenue
    );
    let q = store.quarantine_list(Some("events"), 10, 0).await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].entry.reason, "no such order to mark cancelled");
}
