//! People's corrections to identity resolution, through the real CLI and API: merge, unmerge,
//! never-merge and the review queue take effect at once, later unify runs obey them, orders
//! follow their records, merged-away ids lead to their survivor, and everything is audited.

use crate::helpers::{spawn_app_with_fixtures, Db, TestApp, TestEnv};
use patron_domain::Role;
use reqwest::StatusCode;

async fn order_owner(env: &TestEnv, order: &str) -> i64 {
    env.scalar(&format!(
        "SELECT customer_id FROM orders WHERE order_id = '{order}'"
    ))
    .await
}

fn fails_with(env: &TestEnv, args: &[&str], message: &str) {
    let out = env.patron(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
}

async fn post_as(app: &TestApp, role: Role, path: &str, body: serde_json::Value) -> StatusCode {
    app.client
        .post(app.url(path))
        .bearer_auth(&app.keys[&role])
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

/// The keys online matching and search find profile `id` by: its identity and name rows.
async fn lookup_keys(env: &TestEnv, id: i64) -> Vec<Vec<u8>> {
    let mut keys = env
        .blobs(&format!(
            "SELECT value_hash FROM identities WHERE customer_id = {id} \
             UNION ALL SELECT token_hash FROM name_index WHERE customer_id = {id}"
        ))
        .await;
    keys.sort();
    keys
}

/// Runs a full unify and checks that the profiles' lookup rows, as the correction before it
/// wrote them, are the ones a full run writes: a scoped write must not leave a moved record's
/// keys behind with its old profile, nor miss them in its new one.
async fn full_run_keeps_lookup_keys(env: &TestEnv, ids: &[i64]) {
    let mut before = Vec::new();
    for &id in ids {
        before.push(lookup_keys(env, id).await);
    }
    env.patron_ok(&["run", "unify"]);
    for (&id, keys) in ids.iter().zip(before) {
        assert_eq!(
            lookup_keys(env, id).await,
            keys,
            "lookup rows of profile {id}"
        );
    }
}

async fn merge_unmerge_and_split(db: Db) {
    let app = spawn_app_with_fixtures(db).await;
    let env = &app.env;
    let ann = env.profile_of("web", "w1").await;
    let bob = env.profile_of("web", "w2").await;
    assert_ne!(ann, bob);
    assert_eq!(order_owner(env, "o3").await, bob);

    // Bob's record comes again with a new email: it keeps its profile, whose lookup rows
    // still hold the old email's blind index until something rewrites them.
    let file = env.write(
        "bob.csv",
        "source,source_id,name,email,gender,birth_date,city,country\n\
         web,w2,Bob Stone,bob.stone@example.net,M,1985-05-06,London,GB\n",
    );
    env.patron_ok(&["import", "customers", file.to_str().unwrap()]);
    assert_eq!(env.profile_of("web", "w2").await, bob);

    // Merge Bob into Ann: his record and his orders move, his id leads to Ann.
    let out = env.patron_ok(&["merge", &ann.to_string(), &bob.to_string()]);
    assert!(out.contains("\"records_moved\": 1"), "{out}");
    assert_eq!(env.profile_of("web", "w2").await, ann);
    assert_eq!(order_owner(env, "o3").await, ann);
    let resp = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{bob}"))
        .await;
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        resp.headers()["location"],
        format!("/api/v1/customers/{ann}").as_str()
    );
    let merged: serde_json::Value = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{ann}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(merged["identities"].as_array().unwrap().len(), 4);
    assert!(lookup_keys(env, bob).await.is_empty());
    assert!(!lookup_keys(env, ann).await.is_empty());

    // A full re-run keeps the merge and Ann's id (and the lookup rows the merge wrote).
    full_run_keeps_lookup_keys(env, &[ann, bob]).await;
    assert_eq!(env.profile_of("web", "w2").await, ann);
    assert_eq!(env.profile_of("web", "w1").await, ann);

    // Unmerge restores Bob's profile, id and orders; later runs keep them apart.
    env.patron_ok(&["unmerge", &bob.to_string()]);
    assert_eq!(env.profile_of("web", "w2").await, bob);
    assert_eq!(order_owner(env, "o3").await, bob);
    assert_eq!(order_owner(env, "o1").await, ann);
    let resp = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{bob}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!lookup_keys(env, bob).await.is_empty());
    full_run_keeps_lookup_keys(env, &[ann, bob]).await;
    assert_eq!(env.profile_of("web", "w2").await, bob);

    // Split Ann's app record (same phone as her web record) into its own profile: the
    // deterministic phone link no longer joins them.
    env.patron_ok(&["unmerge", "--record", "app:a1"]);
    let alone = env.profile_of("app", "a1").await;
    assert_ne!(alone, ann);
    full_run_keeps_lookup_keys(env, &[ann, alone]).await;
    assert_eq!(env.profile_of("app", "a1").await, alone);
    assert_eq!(env.profile_of("pos", "p1").await, ann);

    // Never-merge is stored for every record pair of the two profiles.
    env.patron_ok(&["never-merge", &ann.to_string(), &bob.to_string()]);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM match_decisions WHERE decision = 'different'")
            .await,
        // Bob's record against Ann's three (the unmerge; never-merge repeats two of them),
        // and the split record against Ann's other two.
        5
    );

    // Every correction is in the audit log, with who made it.
    for (action, count) in [
        ("profile.merge", 1),
        ("profile.unmerge", 1),
        ("profile.split", 1),
        ("profile.never_merge", 1),
    ] {
        let sql =
            format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}' AND actor = 'cli'");
        assert_eq!(env.scalar(&sql).await, count, "{action}");
    }

    // Bad requests are clear errors and change nothing.
    let a = ann.to_string();
    fails_with(env, &["merge", &a, &a], "already one profile");
    fails_with(env, &["unmerge", &a], "was not merged away");
    fails_with(env, &["never-merge", &a, "999999"], "no profile 999999");
    fails_with(
        env,
        &["unmerge", "--record", "web:nope"],
        "no record web:nope",
    );
    fails_with(
        env,
        &["unmerge", "--record", "web"],
        "name a record as SOURCE:ID",
    );
    fails_with(env, &["review", "accept", "424242"], "no pair 424242");
    assert_eq!(env.profile_of("web", "w2").await, bob);

    // The same over the API: admins only, with statuses that say what went wrong.
    let body = serde_json::json!({ "survivor": ann, "merged": bob });
    for role in [Role::Analyst, Role::Agent, Role::Ingest] {
        assert_eq!(
            post_as(&app, role, "/api/v1/merges", body.clone()).await,
            StatusCode::FORBIDDEN
        );
    }
    let same = serde_json::json!({ "survivor": ann, "merged": ann });
    assert_eq!(
        post_as(&app, Role::Admin, "/api/v1/merges", same).await,
        StatusCode::CONFLICT
    );
    let unknown = serde_json::json!({ "a": ann, "b": 999999 });
    assert_eq!(
        post_as(&app, Role::Admin, "/api/v1/never-merges", unknown).await,
        StatusCode::NOT_FOUND
    );
    let neither = serde_json::json!({});
    assert_eq!(
        post_as(&app, Role::Admin, "/api/v1/unmerges", neither).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_as(&app, Role::Admin, "/api/v1/merges", body).await,
        StatusCode::OK
    );
    assert_eq!(env.profile_of("web", "w2").await, ann);
    let undo = serde_json::json!({ "profile": bob });
    assert_eq!(
        post_as(&app, Role::Admin, "/api/v1/unmerges", undo).await,
        StatusCode::OK
    );
    assert_eq!(env.profile_of("web", "w2").await, bob);

    // Explanations are for admins and analysts, and name records as SOURCE:ID.
    let path = "/api/v1/match/explain?a=web:w1&b=pos:p1";
    let resp = app.get_as(Role::Analyst, path).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let e: serde_json::Value = resp.json().await.unwrap();
    assert!(e["probability"].as_f64().unwrap() > 0.5, "{e}");
    assert_eq!(
        app.get_as(Role::Agent, path).await.status(),
        StatusCode::FORBIDDEN
    );
    let bad = app
        .get_as(Role::Admin, "/api/v1/match/explain?a=w1&b=pos:p1")
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn merge_unmerge_and_split_on_sqlite() {
    merge_unmerge_and_split(Db::Sqlite).await;
}

#[tokio::test]
async fn merge_unmerge_and_split_on_postgres() {
    merge_unmerge_and_split(Db::Postgres).await;
}

/// Background people, so the model has strangers to learn from.
const OTHERS: &str = "\
web,o1,Ann Lee,ann.lee@example.com,+1 415 555 2671,F,1990-01-02,San Francisco,US,2024-01-01 10:00:00
web,o2,Bob Stone,bob@example.org,+1 212 555 0142,M,1985-05-06,New York,US,2024-01-05 09:00:00
web,o3,Carla Diaz,carla@example.net,+1 305 555 0110,F,1979-03-04,Miami,US,2024-01-06 09:00:00
pos,o4,Carla Diaz,carla@example.net,,F,1979-03-04,Miami,US,2024-02-06 09:00:00
";

#[tokio::test]
async fn a_merge_made_by_a_unify_run_can_be_undone() {
    let env = TestEnv::new(Db::Sqlite).await;
    let header = "source,source_id,name,email,phone,gender,birth_date,city,country,created_at\n";
    // Two Dana Wus with different birth dates and nothing else in common: two profiles.
    let first = format!(
        "{header}{OTHERS}\
         web,x1,Dana Wu,dana@example.com,,F,1980-01-01,Oakland,US,2024-03-01 10:00:00\n\
         app,x2,Dana Wu,,+1 415 555 0199,F,1975-07-07,Fresno,US,2024-03-02 10:00:00\n"
    );
    let path = env.write("first.csv", &first);
    env.patron_ok(&["import", "customers", path.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    let (x, y) = (
        env.profile_of("web", "x1").await,
        env.profile_of("app", "x2").await,
    );
    assert_ne!(x, y);

    // A record with the first one's email and the second one's phone joins them.
    let bridge = format!(
        "{header}pos,x3,Dana Wu,dana@example.com,+1 415 555 0199,F,,Oakland,US,2024-04-01 10:00:00\n"
    );
    let path = env.write("bridge.csv", &bridge);
    env.patron_ok(&["import", "customers", path.to_str().unwrap()]);
    let out = env.patron_ok(&["run", "unify"]);
    assert!(out.contains("profiles merged into others 1"), "{out}");
    let (kept, gone) = (x.min(y), x.max(y));
    for (source, id) in [("web", "x1"), ("app", "x2"), ("pos", "x3")] {
        assert_eq!(env.profile_of(source, id).await, kept, "{source}:{id}");
    }
    let sql = format!("SELECT customer_id FROM customer_aliases WHERE alias_id = {gone}");
    assert_eq!(env.scalar(&sql).await, kept);

    // Undo it: the merged-away profile comes back with its record, and stays back.
    let out = env.patron_ok(&["unmerge", &gone.to_string()]);
    assert!(out.contains("\"records_moved\": 1"), "{out}");
    let moved_back = if gone == y {
        ("app", "x2")
    } else {
        ("web", "x1")
    };
    assert_eq!(env.profile_of(moved_back.0, moved_back.1).await, gone);
    env.patron_ok(&["run", "unify"]);
    assert_eq!(env.profile_of(moved_back.0, moved_back.1).await, gone);
    assert_eq!(env.profile_of("pos", "x3").await, kept);
    let sql = format!("SELECT COUNT(*) FROM customer_aliases WHERE alias_id = {gone}");
    assert_eq!(env.scalar(&sql).await, 0);
    fails_with(&env, &["unmerge", &gone.to_string()], "was not merged away");
}

#[tokio::test]
async fn review_decisions_merge_or_keep_apart_and_later_runs_obey() {
    let env = TestEnv::new(Db::Sqlite).await;
    let demo = env.data_dir().join("gen");
    env.patron_ok(&[
        "demo",
        "--customers",
        "400",
        "--no-orders",
        "--generate-only",
        demo.to_str().unwrap(),
    ]);
    env.patron_ok(&[
        "import",
        "customers",
        demo.join("customers.csv").to_str().unwrap(),
    ]);
    env.patron_ok(&["run", "unify"]);
    let list = env.patron_ok(&["review", "list", "--limit", "1000"]);
    let rows = crate::helpers::csv_rows(&list);
    assert!(!rows.is_empty(), "a dirty demo leaves pairs to review");
    let split_pair = rows.iter().find(|r| r["linked"] == "true");
    let join_pair = rows.iter().find(|r| r["linked"] == "false");
    for r in &rows {
        let p: f64 = r["probability"].parse().unwrap();
        assert!((0.1..0.99).contains(&p), "{r:?}");
    }

    if let Some(r) = join_pair {
        env.patron_ok(&["review", "accept", &r["review_id"]]);
        let (a, b) = (&r["record_a"], &r["record_b"]);
        let same = |a: &str, b: &str| {
            format!(
                "SELECT COUNT(DISTINCT customer_id) FROM source_records \
                 WHERE source || ':' || source_id IN ('{a}', '{b}')"
            )
        };
        assert_eq!(env.scalar(&same(a, b)).await, 1);
        env.patron_ok(&["run", "unify"]);
        assert_eq!(env.scalar(&same(a, b)).await, 1, "the next run obeys");
    }
    if let Some(r) = split_pair {
        env.patron_ok(&["review", "reject", &r["review_id"]]);
        let (a, b) = (&r["record_a"], &r["record_b"]);
        let apart = format!(
            "SELECT COUNT(DISTINCT customer_id) FROM source_records \
             WHERE source || ':' || source_id IN ('{a}', '{b}')"
        );
        assert_eq!(env.scalar(&apart).await, 2);
        env.patron_ok(&["run", "unify"]);
        assert_eq!(env.scalar(&apart).await, 2, "the next run obeys");
    }
    assert!(join_pair.is_some() || split_pair.is_some());
    let decided = join_pair.is_some() as i64 + split_pair.is_some() as i64;
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'review.%'")
            .await,
        decided
    );
}

#[tokio::test]
async fn survivorship_rules_choose_each_golden_value_and_record_its_source() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let env = &app.env;
    let ann = env.profile_of("web", "w1").await;
    let golden = || async {
        let c: serde_json::Value = app
            .get_as(Role::Agent, &format!("/api/v1/customers/{ann}"))
            .await
            .json()
            .await
            .unwrap();
        (
            c["name"].as_str().unwrap().to_owned(),
            c["field_sources"]["name"].as_str().unwrap().to_owned(),
        )
    };
    // Ann's records: web "Ann Lee", then pos "ANN LEE" (stored as "Ann Lee"), then app "Ann L.".
    assert_eq!(
        golden().await,
        ("Ann L.".into(), "app".into()),
        "most recent"
    );
    let cases = [
        (vec!["--rule", "name=longest"], ("Ann Lee", "pos")),
        (vec!["--rule", "name=most_frequent"], ("Ann Lee", "pos")),
        (
            vec!["--rule", "name=most_trusted", "--trust", "web,app"],
            ("Ann Lee", "web"),
        ),
        (vec!["--reset"], ("Ann L.", "app")),
    ];
    for (flags, (name, source)) in cases {
        let mut args = vec!["survivorship", "set"];
        args.extend(&flags);
        env.patron_ok(&args);
        env.patron_ok(&["run", "unify"]);
        assert_eq!(golden().await, (name.into(), source.into()), "{flags:?}");
    }
    fails_with(
        env,
        &["survivorship", "set", "--rule", "nme=longest"],
        "unknown field 'nme'",
    );
    fails_with(
        env,
        &["survivorship", "set", "--rule", "name=best"],
        "unknown rule 'best'",
    );
    let sql = "SELECT COUNT(*) FROM audit_log WHERE action = 'survivorship.set'";
    assert_eq!(env.scalar(sql).await, 4);
}
