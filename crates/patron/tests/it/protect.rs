//! Protection that a security reviewer relies on: the audit log's hash chain, append-only
//! from the application's side, detects entries changed or removed behind its back.

use crate::helpers::{spawn_app_with_fixtures, Db};
use patron_domain::Role;
use reqwest::StatusCode;

async fn audit_chain_detects_tampering(db: Db) {
    let app = spawn_app_with_fixtures(db).await;
    let env = &app.env;
    // Audited actions through the CLI and the API (the API records the client's address).
    env.patron_ok(&["segments", "create", "all", "--rule", "records >= 1"]);
    env.patron_ok(&["export", "profiles"]);
    let ann = env.profile_of("web", "w1").await;
    let resp = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{ann}"))
        .await;
    assert!(resp.status().is_success());

    let check: serde_json::Value =
        serde_json::from_str(&env.patron_ok(&["audit", "verify"])).unwrap();
    assert_eq!(check["intact"], true, "{check}");
    assert_eq!(check["entries"], check["sealed"]);
    assert!(check["entries"].as_i64().unwrap() >= 4, "{check}");
    let list = crate::helpers::csv_rows(&env.patron_ok(&["audit", "list", "--limit", "50"]));
    let read = list
        .iter()
        .find(|r| r["action"] == "customer.read")
        .expect("the read is audited");
    assert_eq!(read["target"], ann.to_string());
    assert_eq!(read["origin"], "127.0.0.1");

    // The application cannot change or delete entries.
    for sql in [
        "UPDATE audit_log SET actor = 'nobody' WHERE audit_id = 1",
        "DELETE FROM audit_log WHERE audit_id = 1",
    ] {
        let err = env.execute(sql).await.unwrap_err();
        assert!(err.contains("append-only"), "{err}");
    }

    // Someone with the database itself can, but the chain shows it.
    let unguard = match db {
        Db::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        Db::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;",
    };
    env.execute(unguard).await.unwrap();
    env.execute("UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 2")
        .await
        .unwrap();
    let out = env.patron(&["audit", "verify"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("entry 2 (audit id"), "{said}");
    assert!(said.contains("does not match its hash"), "{said}");

    // Removing an entry instead breaks the chain where it was.
    let env2 = crate::helpers::TestEnv::new(db).await;
    env2.patron_ok(&["keys", "create", "--role", "agent"]);
    env2.patron_ok(&["segments", "create", "x", "--rule", "records >= 1"]);
    env2.patron_ok(&["segments", "create", "y", "--rule", "records >= 2"]);
    env2.execute(unguard).await.unwrap();
    env2.execute("DELETE FROM audit_log WHERE seq = 2")
        .await
        .unwrap();
    let out = env2.patron(&["audit", "verify"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("entry 2 of the chain is missing"), "{said}");
}

#[tokio::test]
async fn audit_chain_detects_tampering_on_sqlite() {
    audit_chain_detects_tampering(Db::Sqlite).await;
}

#[tokio::test]
async fn audit_chain_detects_tampering_on_postgres() {
    audit_chain_detects_tampering(Db::Postgres).await;
}

/// Requests audited at once each write and seal their entry in one transaction; racing for
/// the same places in the chain, the losers roll back (entry and all) and try again, so
/// every entry is there once and the chain stays whole.
async fn audited_requests_at_once_keep_one_chain(db: Db) {
    let app = spawn_app_with_fixtures(db).await;
    let ann = app.env.profile_of("web", "w1").await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let request = app
            .client
            .get(app.url(&format!("/api/v1/customers/{ann}")))
            .bearer_auth(&app.keys[&Role::Agent]);
        requests.spawn(async move { request.send().await.expect("request").status() });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    let check: serde_json::Value =
        serde_json::from_str(&app.env.patron_ok(&["audit", "verify"])).unwrap();
    assert_eq!(check["intact"], true, "{check}");
    assert_eq!(check["entries"], check["sealed"], "{check}");
    let list = crate::helpers::csv_rows(&app.env.patron_ok(&["audit", "list", "--limit", "500"]));
    let reads = list
        .iter()
        .filter(|r| r["action"] == "customer.read")
        .count();
    assert_eq!(reads, 24);
}

#[tokio::test]
async fn audited_requests_at_once_keep_one_chain_on_sqlite() {
    audited_requests_at_once_keep_one_chain(Db::Sqlite).await;
}

#[tokio::test]
async fn audited_requests_at_once_keep_one_chain_on_postgres() {
    audited_requests_at_once_keep_one_chain(Db::Postgres).await;
}

/// A demo customer with orders, events and a ticket.
async fn busy_customer(env: &crate::helpers::TestEnv) -> i64 {
    env.scalar(
        "SELECT MIN(t.customer_id) FROM tickets t WHERE \
         EXISTS (SELECT 1 FROM events e WHERE e.customer_id = t.customer_id) AND \
         EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = t.customer_id)",
    )
    .await
}

#[tokio::test]
async fn subject_export_and_erase_leave_nothing_personal_in_the_file() {
    let env = &crate::helpers::TestEnv::new(Db::Sqlite).await;
    env.patron_ok(&["demo", "--customers", "300", "--no-serve"]);
    let id = busy_customer(env).await;
    let count = |sql: String| async move { env.scalar(&sql).await };

    // Article 15: everything, decrypted.
    let data: serde_json::Value =
        serde_json::from_str(&env.patron_ok(&["subject", "export", &id.to_string()])).unwrap();
    assert_eq!(data["customer_id"], id);
    for part in ["source_records", "orders", "events", "tickets"] {
        assert!(!data[part].as_array().unwrap().is_empty(), "{part}: {data}");
    }
    let emails: Vec<String> = data["source_records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["email"].as_str().map(str::to_owned))
        .collect();
    assert!(!emails.is_empty());

    // What identifies the person in the file: every sealed value of theirs.
    let sealed = env
        .blobs(&format!(
            "SELECT name_enc, email_enc, phone_enc, birth_date_enc, address_enc, raw_enc \
             FROM source_records WHERE customer_id = {id} \
             UNION ALL SELECT name_enc, email_enc, phone_enc, birth_date_enc, address_enc, NULL \
             FROM customers WHERE customer_id = {id} \
             UNION ALL SELECT properties_enc, NULL, NULL, NULL, NULL, NULL \
             FROM events WHERE customer_id = {id} \
             UNION ALL SELECT body_enc, NULL, NULL, NULL, NULL, NULL \
             FROM tickets WHERE customer_id = {id}"
        ))
        .await;
    assert!(sealed.len() >= 4);
    let revenue = "SELECT SUM(quantity * unit_price_minor) FROM order_lines";
    let revenue_before = count(revenue.into()).await;
    let orders_before = count("SELECT COUNT(*) FROM orders".into()).await;

    let out = env.patron(&["subject", "erase", &id.to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --yes"));
    assert_eq!(
        count(format!(
            "SELECT COUNT(*) FROM customers WHERE customer_id = {id}"
        ))
        .await,
        1
    );
    let said = env.patron_ok(&["subject", "erase", &id.to_string(), "--yes"]);
    assert!(said.contains(&format!("erased customer {id}")), "{said}");

    // Article 17: gone everywhere, derived tables included; the figures still add up.
    for table in [
        "customers",
        "source_records",
        "record_profiles",
        "identities",
        "name_index",
        "events",
        "tickets",
        "orders",
        "order_lines",
        "customer_metrics",
        "customer_predictions",
        "recommendations",
        "segment_members",
        "segment_history",
    ] {
        assert_eq!(
            count(format!(
                "SELECT COUNT(*) FROM {table} WHERE customer_id = {id}"
            ))
            .await,
            0,
            "{table}"
        );
    }
    assert_eq!(count(revenue.into()).await, revenue_before);
    assert_eq!(
        count("SELECT COUNT(*) FROM orders".into()).await,
        orders_before
    );
    let bytes = env.database_bytes();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for blob in &sealed {
        assert!(
            !contains(blob),
            "a sealed value of the erased person is still in the file"
        );
    }
    for email in &emails {
        assert!(!contains(email.as_bytes()), "{email} is still in the file");
    }

    // Done once; audited; the chain still holds.
    let out = env.patron(&["subject", "erase", &id.to_string(), "--yes"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no customer {id}")));
    let log = crate::helpers::csv_rows(&env.patron_ok(&["audit", "list"]));
    assert!(log
        .iter()
        .any(|r| r["action"] == "subject.erase" && r["target"] == id.to_string()));
    env.patron_ok(&["audit", "verify"]);
}

async fn subject_requests_over_the_api(db: Db) {
    let app = spawn_app_with_fixtures(db).await;
    let ann = app.env.profile_of("web", "w1").await;
    let path = format!("/api/v1/customers/{ann}/export");
    let export = |role: Role| app.get_as(role, &path);
    assert_eq!(export(Role::Agent).await.status(), 403);
    let data: serde_json::Value = export(Role::Admin).await.json().await.unwrap();
    assert_eq!(
        data["source_records"].as_array().unwrap().len(),
        3,
        "{data}"
    );
    let delete = |role: Role| {
        app.client
            .delete(app.url(&format!("/api/v1/customers/{ann}")))
            .bearer_auth(&app.keys[&role])
            .send()
    };
    assert_eq!(delete(Role::Analyst).await.unwrap().status(), 403);
    let erased: serde_json::Value = delete(Role::Admin).await.unwrap().json().await.unwrap();
    assert_eq!(erased["customer_id"], ann);
    assert_eq!(erased["records"], 3);
    assert!(erased["orders_detached"].as_i64().unwrap() >= 1, "{erased}");
    assert_eq!(
        app.get_as(Role::Admin, &format!("/api/v1/customers/{ann}"))
            .await
            .status(),
        404
    );
    assert_eq!(delete(Role::Admin).await.unwrap().status(), 404);
}

#[tokio::test]
async fn subject_requests_over_the_api_on_sqlite() {
    subject_requests_over_the_api(Db::Sqlite).await;
}

#[tokio::test]
async fn subject_requests_over_the_api_on_postgres() {
    subject_requests_over_the_api(Db::Postgres).await;
}

/// A unify run reads the records, works for a while, then writes: a person erased in
/// between would come back through the run's golden record and lookup rows. The write is
/// refused whole, with the reason, and nothing of the person returns; nor is an erased
/// profile's id given to someone new.
async fn a_unification_made_before_an_erasure_is_refused_after_it(db: Db) {
    use patron_store::{GoldenRow, Placement, Profiles, Unification};
    let app = spawn_app_with_fixtures(db).await;
    let (env, store) = (&app.env, &app.store);
    let ann = env.profile_of("web", "w1").await;
    let records = store.profile_records(&[ann]).await.unwrap();
    assert_eq!(records.len(), 3);
    let made_before = Unification {
        scope: Some(vec![ann]),
        placement: Placement {
            assignments: records.iter().map(|r| (r.record_id, ann)).collect(),
            identities: vec![(ann, "email", vec![7; 16])],
            name_tokens: vec![(ann, vec![8; 16])],
        },
        profiles: Profiles {
            golden: vec![GoldenRow {
                customer_id: ann,
                fields: Default::default(),
                records: 3,
                created_at: 0,
                sources: Default::default(),
            }],
            actor: "unify".into(),
            ..Profiles::default()
        },
    };
    store
        .erase_subject(ann)
        .await
        .unwrap()
        .expect("ann was there");
    let refused = store.apply_unification(made_before).await.unwrap_err();
    assert!(
        refused.to_string().contains("erased meanwhile"),
        "{refused}"
    );
    for table in ["customers", "identities", "name_index", "record_profiles"] {
        let left = env
            .scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE customer_id = {ann}"
            ))
            .await;
        assert_eq!(left, 0, "{table} has rows of the erased person again");
    }
    // Nor do the run's review pairs or a person's decision made before the erasure bring
    // the erased records back; the pairs of others are kept.
    let erased = records[0].record_id;
    let (x, y) = (
        env.scalar("SELECT MIN(record_id) FROM record_profiles")
            .await,
        env.scalar("SELECT MAX(record_id) FROM record_profiles")
            .await,
    );
    store
        .replace_review_queue(vec![(erased, x, 0.5), (x, y, 0.1)])
        .await
        .unwrap();
    store
        .decide(
            &[(erased, y), (x, y)],
            patron_store::Decision::Different,
            "t",
        )
        .await
        .unwrap();
    for table in ["review_queue", "match_decisions"] {
        let named = format!("SELECT COUNT(*) FROM {table} WHERE {erased} IN (record_a, record_b)");
        assert_eq!(
            env.scalar(&named).await,
            0,
            "{table} names an erased record"
        );
        let kept = format!("SELECT COUNT(*) FROM {table} WHERE record_a = {x} AND record_b = {y}");
        assert_eq!(
            env.scalar(&kept).await,
            1,
            "{table} lost a pair of stored records"
        );
    }
    // The next run, over what is stored now, writes.
    env.patron_ok(&["run", "unify"]);
    // The newest profile's id, once erased, is not given to a new profile.
    let newest = env.scalar("SELECT MAX(customer_id) FROM customers").await;
    store.erase_subject(newest).await.unwrap().expect("there");
    assert!(store.max_customer_id().await.unwrap() >= newest);
}

#[tokio::test]
async fn a_unification_made_before_an_erasure_is_refused_after_it_on_sqlite() {
    a_unification_made_before_an_erasure_is_refused_after_it(Db::Sqlite).await;
}

#[tokio::test]
async fn a_unification_made_before_an_erasure_is_refused_after_it_on_postgres() {
    a_unification_made_before_an_erasure_is_refused_after_it(Db::Postgres).await;
}

/// What the analysis stages computed from data read before an erasure, written after it,
/// leaves the erased person out (their rows would otherwise come back until the next run);
/// everyone else's rows are written.
async fn stage_results_made_before_an_erasure_leave_the_person_out(db: Db) {
    use patron_store::{MetricRow, PredictionRow, RecommendationRow};
    let app = spawn_app_with_fixtures(db).await;
    let (env, store) = (&app.env, &app.store);
    let ann = env.profile_of("web", "w1").await;
    let other = env
        .scalar(&format!(
            "SELECT MIN(customer_id) FROM customers WHERE customer_id <> {ann}"
        ))
        .await;
    let segment = store
        .create_rule_segment("read before", "records >= 1")
        .await
        .unwrap();
    store
        .erase_subject(ann)
        .await
        .unwrap()
        .expect("ann was there");
    let both = [ann, other];
    store
        .write_metrics(
            both.iter()
                .map(|&customer_id| MetricRow {
                    customer_id,
                    recency_days: 3,
                    frequency: 2,
                    monetary_minor: 1000,
                    currency: "USD".into(),
                    r: 5,
                    f: 4,
                    m: 3,
                    segment: "Champions".into(),
                })
                .collect(),
        )
        .await
        .unwrap();
    store
        .write_clusters(
            both.iter()
                .map(|&c| (c, "Bargain hunters".into()))
                .collect(),
        )
        .await
        .unwrap();
    store
        .write_predictions(
            both.iter()
                .map(|&customer_id| PredictionRow {
                    customer_id,
                    model: "bg-nbd",
                    expected_purchases_90d: 1.5,
                    clv_12m_minor: 5000,
                    currency: "USD".into(),
                    p_alive: Some(0.9),
                    churn_risk: Some("low"),
                })
                .collect(),
        )
        .await
        .unwrap();
    store
        .write_recommendations(
            both.iter()
                .map(|&customer_id| RecommendationRow {
                    customer_id,
                    rank: 1,
                    product_id: "p1".into(),
                    score: 0.5,
                    reason: "bought together".into(),
                })
                .collect(),
        )
        .await
        .unwrap();
    let (entered, _) = store.set_segment_members(segment, &both).await.unwrap();
    assert_eq!(entered, 1);
    for table in [
        "customer_metrics",
        "customer_predictions",
        "recommendations",
        "segment_members",
        "segment_history",
    ] {
        let count = |id: i64| format!("SELECT COUNT(*) FROM {table} WHERE customer_id = {id}");
        assert_eq!(
            env.scalar(&count(ann)).await,
            0,
            "{table} has rows of the erased person again"
        );
        assert!(
            env.scalar(&count(other)).await >= 1,
            "{table} lost the rows of others"
        );
    }
}

#[tokio::test]
async fn stage_results_made_before_an_erasure_leave_the_person_out_on_sqlite() {
    stage_results_made_before_an_erasure_leave_the_person_out(Db::Sqlite).await;
}

#[tokio::test]
async fn stage_results_made_before_an_erasure_leave_the_person_out_on_postgres() {
    stage_results_made_before_an_erasure_leave_the_person_out(Db::Postgres).await;
}

/// A backup taken while a writer keeps committing holds every row committed before it
/// began; restoring it checks the file whole first, and refuses changed files and other keys.
async fn backup_while_writing_then_restore(db: Db) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let env = crate::helpers::TestEnv::new(db).await;
    let store = env.store().await;
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, committed, stop) = (store.clone(), committed.clone(), stop.clone());
        async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let event = patron_store::NewEvent {
                    message_id: format!("m{i}"),
                    source: "test".into(),
                    user_id: None,
                    anonymous_id: Some("device".into()),
                    kind: "track".into(),
                    name: Some("Tick".into()),
                    properties: None,
                    occurred_at: i as i64,
                };
                store.insert_events(vec![event]).await.unwrap();
                i += 1;
                committed.store(i, Ordering::SeqCst);
            }
        }
    });
    while committed.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before = committed.load(Ordering::SeqCst);
    let file = env.data_dir().join("mid-stream.backup");
    let args = ["backup", "--out", file.to_str().unwrap()];
    let out = tokio::task::block_in_place(|| env.patron(&args));
    assert!(out.status.success(), "{out:?}");
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let after = committed.load(Ordering::SeqCst);

    // Restored elsewhere with the same master key.
    let there = crate::helpers::TestEnv::new(db).await;
    std::fs::copy(
        env.data_dir().join("master.key"),
        there.data_dir().join("master.key"),
    )
    .unwrap();
    let said = there.patron_ok(&["restore", file.to_str().unwrap()]);
    assert!(said.contains("restored the"), "{said}");
    let restored = there
        .scalar(&format!(
            "SELECT COUNT(*) FROM events WHERE occurred_at < {before}"
        ))
        .await;
    assert_eq!(
        restored as u64, before,
        "every row committed before the backup"
    );
    let total = there.scalar("SELECT COUNT(*) FROM events").await as u64;
    assert!(
        total >= before && total <= after,
        "{before} <= {total} <= {after}"
    );
    there.patron_ok(&["audit", "verify"]);

    // A changed byte: refused, and the database stays as it was.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let changed = there.write("changed.backup", "");
    std::fs::write(&changed, &bytes).unwrap();
    let out = there.patron(&["restore", changed.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is damaged or was changed"),
        "{out:?}"
    );
    assert_eq!(
        there.scalar("SELECT COUNT(*) FROM events").await as u64,
        total
    );
    // Another master key cannot open it.
    let stranger = crate::helpers::TestEnv::new(db).await;
    let out = stranger.patron(&["restore", file.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not open with any of the master keys"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_writing_then_restore_on_sqlite() {
    backup_while_writing_then_restore(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_writing_then_restore_on_postgres() {
    backup_while_writing_then_restore(Db::Postgres).await;
}

#[tokio::test]
async fn scheduled_backups_keep_the_newest() {
    let env = crate::helpers::TestEnv::new(Db::Sqlite).await;
    let store = env.store().await;
    let dir = env.data_dir().join("backups");
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(
            patron_pipeline::backups::backup_into(&store, &dir, 2)
                .await
                .unwrap(),
        );
    }
    let mut left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    left.sort();
    assert_eq!(left, taken[1..].to_vec());
    // The server refuses a nonsense schedule before it starts.
    let out = env.patron(&["serve", "--backup-every", "5w"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the unit must be s, m, h or d"));
}

/// Every API route, sent with every role and with none: 401 without a key, 403 for a role
/// that may not, anything else for one that may. The expectations are written here, apart
/// from the server's own table, and the two must list the same routes.
#[tokio::test]
async fn every_route_answers_every_role_as_declared() {
    use reqwest::Method;
    use Role::{Admin, Agent, Analyst};
    const READ: &[Role] = &[Admin, Analyst, Agent];
    const ANALYSIS: &[Role] = &[Admin, Analyst];
    const ADMIN: &[Role] = &[Admin];
    let expected: &[(Method, &str, &[Role])] = &[
        (Method::GET, "/api/v1/customers", READ),
        (Method::GET, "/api/v1/customers/{id}", READ),
        (Method::DELETE, "/api/v1/customers/{id}", ADMIN),
        (Method::GET, "/api/v1/customers/{id}/export", ADMIN),
        (Method::GET, "/api/v1/customers/{id}/recommendations", READ),
        (Method::GET, "/api/v1/products/{id}/similar", READ),
        (Method::GET, "/api/v1/quarantine", ADMIN),
        (Method::POST, "/api/v1/match", READ),
        (Method::GET, "/api/v1/match/explain", ANALYSIS),
        (Method::GET, "/api/v1/review", ADMIN),
        (Method::POST, "/api/v1/review/{id}/accept", ADMIN),
        (Method::POST, "/api/v1/review/{id}/reject", ADMIN),
        (Method::POST, "/api/v1/merges", ADMIN),
        (Method::POST, "/api/v1/unmerges", ADMIN),
        (Method::POST, "/api/v1/never-merges", ADMIN),
        (Method::GET, "/api/v1/segments", ANALYSIS),
        (Method::POST, "/api/v1/segments", ANALYSIS),
        (Method::GET, "/api/v1/segments/{id}/members", ANALYSIS),
    ];
    let mut declared: Vec<String> = patron_server::ROUTES
        .iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    let mut listed: Vec<String> = expected
        .iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    declared.sort();
    listed.sort();
    assert_eq!(
        declared, listed,
        "the test and the server list the same routes"
    );

    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    for (method, path, allowed) in expected {
        // An id no profile, review pair or segment has: nothing is changed by the calls.
        let url = app.url(&path.replace("{id}", "999999"));
        for role in [
            None,
            Some(Admin),
            Some(Analyst),
            Some(Agent),
            Some(Role::Ingest),
        ] {
            let mut req = app.client.request(method.clone(), &url);
            if *method == Method::POST {
                req = req.json(&serde_json::json!({}));
            }
            if let Some(r) = role {
                req = req.bearer_auth(&app.keys[&r]);
            }
            let status = req.send().await.unwrap().status().as_u16();
            match role {
                None => assert_eq!(status, 401, "{method} {path} without a key"),
                Some(r) if allowed.contains(&r) => {
                    assert!(
                        ![401, 403].contains(&status),
                        "{method} {path} as {r:?}: {status}"
                    )
                }
                Some(r) => assert_eq!(status, 403, "{method} {path} as {r:?}"),
            }
        }
    }

    // Every answer carries the security headers; HTTPS answers carry HSTS.
    let resp = app.get_as(Admin, "/api/v1/segments").await;
    let h = resp.headers();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
}

#[tokio::test]
async fn analysts_see_customers_masked() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let ann = app.env.profile_of("web", "w1").await;
    let path = format!("/api/v1/customers/{ann}");
    let view = |role: Role| {
        let req = app.get_as(role, &path);
        async move { req.await.json::<serde_json::Value>().await.unwrap() }
    };
    let agent = view(Role::Agent).await;
    assert_eq!(agent["email"], "ann.lee@example.com");
    let analyst = view(Role::Analyst).await;
    assert_eq!(analyst["email"], "a***@example.com");
    assert_eq!(analyst["name"], "A. L.");
    assert_eq!(analyst["phone"], "+*********71");
    assert_eq!(analyst["birth_date"], "1990-**-**");
    assert!(analyst["address"].is_null());
    // Nothing that identifies her anywhere in the answer; the figures are the same.
    let text = analyst.to_string();
    for personal in ["ann.lee", "Ann Lee", "ANN LEE", "5552671", "1990-01-02"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    assert_eq!(analyst["order_summary"], agent["order_summary"]);
    assert_eq!(analyst["city"], agent["city"]);
    let found: serde_json::Value = app
        .get_as(Role::Analyst, "/api/v1/customers?q=ann.lee@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["customers"][0]["customer_id"], ann);
    assert_eq!(found["customers"][0]["email"], "a***@example.com");
}

#[tokio::test]
async fn each_key_is_rate_limited_on_its_own() {
    let env = crate::helpers::TestEnv::new(Db::Sqlite).await;
    // Three calls at once, then one a minute: the fourth call in a row must wait.
    let app = crate::helpers::spawn_app_limited(env, patron_server::RateLimiter::new(1, 3)).await;
    // A route whose handler also needs the caller: one call is one token.
    let path = "/api/v1/customers?q=ann";
    for _ in 0..3 {
        assert_eq!(app.get_as(Role::Analyst, path).await.status(), 200);
    }
    let refused = app.get_as(Role::Analyst, path).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another key is not held back by this one.
    assert_eq!(app.get_as(Role::Admin, path).await.status(), 200);
}

/// A renewed certificate is served after SIGHUP, without a restart.
#[tokio::test]
async fn the_certificate_is_reloaded_on_sighup() {
    let env = crate::helpers::TestEnv::new(Db::Sqlite).await;
    let make = |name: &str| {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = env.write(&format!("{name}.pem"), &c.cert.pem());
        let key = env.write(&format!("{name}.key"), &c.key_pair.serialize_pem());
        (cert, key, c.cert.pem())
    };
    let (cert, key, first) = make("first");
    let (new_cert, new_key, second) = make("second");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Stopped however the test ends.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let server = Server(
        std::process::Command::new(env!("CARGO_BIN_EXE_patron"))
            .arg("--data-dir")
            .arg(env.data_dir())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // A client that trusts only one certificate tells which one the server presents.
    let trusts = |pem: &str| {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let url = format!("https://127.0.0.1:{port}/healthz");
        async move { client.get(url).send().await.is_ok() }
    };
    let mut up = false;
    for _ in 0..200 {
        if trusts(&first).await {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the server came up with the first certificate");
    assert!(!trusts(&second).await);

    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let pid = rustix::process::Pid::from_raw(server.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    let mut reloaded = false;
    for _ in 0..200 {
        if trusts(&second).await {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(reloaded, "the second certificate is served after SIGHUP");
}

#[tokio::test]
async fn api_keys_are_listed_without_secrets_and_revoked_at_once() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let env = &app.env;
    assert_eq!(
        app.get_as(Role::Agent, "/api/v1/customers?q=ann")
            .await
            .status(),
        200
    );
    let listed = env.patron_ok(&["keys", "list"]);
    for key in app.keys.values() {
        assert!(!listed.contains(key.as_str()), "a key in clear");
    }
    let rows = crate::helpers::csv_rows(&listed);
    let agent = rows
        .iter()
        .find(|r| r["role"] == "agent" && app.keys[&Role::Agent].starts_with(&r["prefix"]))
        .expect("the agent key is listed");
    assert!(!agent["last_used_at"].is_empty(), "{agent:?}");
    assert!(agent["revoked_at"].is_empty());

    env.patron_ok(&["keys", "revoke", &agent["key_id"]]);
    assert_eq!(
        app.get_as(Role::Agent, "/api/v1/customers?q=ann")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_as(Role::Admin, "/api/v1/customers?q=ann")
            .await
            .status(),
        200
    );
    let again = env.patron(&["keys", "revoke", &agent["key_id"]]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("no live API key"));
    let log = crate::helpers::csv_rows(&env.patron_ok(&["audit", "list"]));
    assert!(log
        .iter()
        .any(|r| r["action"] == "api_key.revoke" && r["target"] == agent["key_id"]));
}

/// `patron keys rotate-master` re-encrypts everything under a new key while the server keeps
/// answering and writing; stopped part-way it continues where it stopped; blind-index lookups,
/// old backups and every decrypted value survive; the old key retires only when unused.
async fn master_key_rotation_online(db: Db) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let env = crate::helpers::TestEnv::new(db).await;
    env.patron_ok(&["demo", "--customers", "150", "--no-serve"]);
    let backup = env.data_dir().join("before-rotation.backup");
    env.patron_ok(&["backup", "--out", backup.to_str().unwrap()]);
    let app = Arc::new(crate::helpers::spawn_app(env).await);
    let masters = |app: &crate::helpers::TestApp| {
        crate::helpers::csv_rows(&app.env.patron_ok(&["keys", "masters"]))
            .into_iter()
            .map(|r| {
                (
                    r["key_id"].clone(),
                    r["sealed_values"].parse::<u64>().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let details = |app: Arc<crate::helpers::TestApp>| async move {
        let mut all = Vec::new();
        for id in 1..=20 {
            let r = app
                .get_as(Role::Admin, &format!("/api/v1/customers/{id}"))
                .await;
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            all.push((
                status,
                body["name"].clone(),
                body["email"].clone(),
                body["phone"].clone(),
            ));
        }
        all
    };
    let before = details(app.clone()).await;
    assert!(before.iter().filter(|d| d.0 == StatusCode::OK).count() >= 10);
    let email = before
        .iter()
        .find_map(|d| d.2.as_str().map(str::to_owned))
        .expect("a customer with an email");
    assert_eq!(masters(&app)[0].0, "1");
    let search = |app: Arc<crate::helpers::TestApp>| {
        let path = format!("/api/v1/customers?q={email}");
        async move {
            let found: serde_json::Value =
                app.get_as(Role::Admin, &path).await.json().await.unwrap();
            found["customers"].clone()
        }
    };
    let found = search(app.clone()).await;
    assert!(!found.as_array().unwrap().is_empty(), "{found}");

    // Live traffic: sealed writes (tracked events with properties) and reads, throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (written, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let traffic = tokio::spawn({
        let (app, stop, written, failed) =
            (app.clone(), stop.clone(), written.clone(), failed.clone());
        async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let status = app
                    .client
                    .post(app.url("/v1/track"))
                    .basic_auth(&app.keys[&Role::Ingest], Some(""))
                    .json(&serde_json::json!({"anonymousId": "visitor", "messageId": format!("rot{i}"),
                        "event": "Viewed", "properties": {"page": format!("/p/{i}")}}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                let read = app
                    .get_as(Role::Agent, &format!("/api/v1/customers/{}", i % 20 + 1))
                    .await;
                if status != StatusCode::OK || read.status().is_server_error() {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                i += 1;
                written.store(i, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    });

    // Stopped part-way (as a crash would): old and new keys side by side, everything readable.
    let run = |args: &'static [&'static str]| {
        let app = app.clone();
        tokio::task::block_in_place(move || app.env.patron(args))
    };
    let out = run(&[
        "keys",
        "rotate-master",
        "--batch-size",
        "10",
        "--max-batches",
        "3",
    ]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && said.contains("Stopped:"), "{out:?}");
    let mixed = masters(&app);
    assert_eq!(mixed.len(), 2);
    assert!(mixed.iter().all(|(_, n)| *n > 0), "{mixed:?}");
    let out = run(&["keys", "retire-master", "1"]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("a rotation is unfinished"),
        "{out:?}"
    );
    assert_eq!(details(app.clone()).await, before);

    let out = run(&["keys", "rotate-master"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains("Rotation to master key 2 continued"),
        "{said}"
    );
    assert!(
        said.contains("Complete: every stored value is sealed with key 2"),
        "{said}"
    );
    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();
    assert!(written.load(Ordering::SeqCst) > 10);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no request failed during rotation"
    );
    // The running server picked the new key up: what it seals now is under key 2.
    let status = app
        .client
        .post(app.url("/v1/track"))
        .basic_auth(&app.keys[&Role::Ingest], Some(""))
        .json(
            &serde_json::json!({"anonymousId": "v", "messageId": "after", "event": "Viewed",
            "properties": {"page": "/after"}}),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let done = masters(&app);
    assert_eq!(done[0], ("1".to_owned(), 0), "{done:?}");
    assert!(done[1].1 > 0);
    assert_eq!(
        details(app.clone()).await,
        before,
        "every value decrypts as before"
    );
    assert_eq!(
        search(app.clone()).await,
        found,
        "the blind index still finds {email}"
    );

    // A backup made under key 1 restores while key 1 is kept; then key 1 retires.
    let there = crate::helpers::TestEnv::new(db).await;
    std::fs::copy(
        app.env.data_dir().join("master.key"),
        there.data_dir().join("master.key"),
    )
    .unwrap();
    there.patron_ok(&["restore", backup.to_str().unwrap()]);
    app.env.patron_ok(&["keys", "retire-master", "1"]);
    assert_eq!(masters(&app).len(), 1);
    assert_eq!(details(app.clone()).await, before);
    let audit = app.env.patron_ok(&["audit", "list", "--limit", "100000"]);
    for action in [
        "keys.rotate_master.start",
        "keys.rotate_master.done",
        "keys.retire_master",
    ] {
        assert!(audit.contains(action), "{action} audited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotation_online_on_sqlite() {
    master_key_rotation_online(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotation_online_on_postgres() {
    master_key_rotation_online(Db::Postgres).await;
}
