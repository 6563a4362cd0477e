//! Online matching: records imported or identified after a unify run join their profile at
//! once, with the run's model, and a lookup finds the profiles a record belongs to without
//! storing it.

use crate::helpers::{spawn_app_with_fixtures, Db, TestApp};
use patron_domain::Role;
use reqwest::StatusCode;
use serde_json::json;

async fn new_records_join_their_profiles_without_a_run(db: Db) {
    let app = spawn_app_with_fixtures(db).await;
    let env = &app.env;
    let ann = app.env.profile_of("web", "w1").await;
    // Ann from a new shop (her email in capitals, her phone in another format), a stranger,
    // and two records of one new person.
    let file = env.write(
        "new.csv",
        "source,source_id,name,email,phone,city,country\n\
         shop,s1,ANN LEE,Ann.Lee@Example.com,+1 415-555-2671,San Francisco,US\n\
         shop,s2,Zed Quux,zed@quux.example,,Oslo,NO\n\
         shop,s3,Zed Quux,zed@quux.example,+47 412 34 567,Oslo,NO\n",
    );
    let out = env.patron_ok(&["import", "customers", file.to_str().unwrap()]);
    assert!(
        out.contains("placed 3 new records online: 2 joined existing profiles, 1 started new ones"),
        "{out}"
    );
    assert_eq!(app.env.profile_of("shop", "s1").await, ann);
    let zed = app.env.profile_of("shop", "s2").await;
    assert_ne!(zed, ann);
    assert_eq!(app.env.profile_of("shop", "s3").await, zed);
    let c: serde_json::Value = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{ann}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["identities"].as_array().unwrap().len(), 4);
    let z: serde_json::Value = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{zed}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(z["phone"], "+4741234567", "the golden record is rewritten");

    // A full run re-estimates and reconciles; it agrees here, and keeps the ids.
    env.patron_ok(&["run", "unify"]);
    assert_eq!(app.env.profile_of("shop", "s1").await, ann);
    assert_eq!(app.env.profile_of("shop", "s3").await, zed);
}

#[tokio::test]
async fn new_records_join_their_profiles_without_a_run_on_sqlite() {
    new_records_join_their_profiles_without_a_run(Db::Sqlite).await;
}

#[tokio::test]
async fn new_records_join_their_profiles_without_a_run_on_postgres() {
    new_records_join_their_profiles_without_a_run(Db::Postgres).await;
}

/// A store's records without email or phone (a till's, a paper form's) are found online by
/// their birth date and postal code too: a new record whose name is misspelt beyond its name
/// keys still joins its person, and her namesake born fifty years later at the same postal
/// code does not. The first file has no duplicates, so the model is the starting guess (EM
/// on it had taken most matches to have different birth dates, and joined the namesake).
async fn a_misspelt_name_is_found_by_birth_date_and_postal_code(db: Db) {
    use crate::helpers::TestEnv;
    let env = TestEnv::new(db).await;
    // 400 people, each once (the model is fitted on them), Margaret Okonkwo first.
    let given = [
        "Margaret", "Harley", "Cooper", "Ann", "Lachlan", "Micah", "Breana", "Jessica", "Thomas",
        "Chloe", "Oliver", "Ruby", "Jack", "Isla", "Noah", "Mia", "Liam", "Zoe", "Ethan", "Grace",
    ];
    let family = [
        "Okonkwo", "McCarthy", "Ryan", "Green", "Reid", "Thorpe", "Neumann", "Goode", "Stanley",
        "Wallace", "Bennett", "Hughes", "Murphy", "Nguyen", "Patel", "Kelly", "Walsh", "Byrne",
        "Dixon", "Hart",
    ];
    let cities = [
        "Cleveland",
        "Marsden",
        "Bondi Junction",
        "Yagoona",
        "Harbord",
    ];
    let mut first = String::from("source,source_id,name,birth_date,postal_code,city,country\n");
    for i in 0..400usize {
        let born = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()
            + chrono::Duration::days(i as i64 * 53);
        first += &format!(
            "pos,{i},{} {},{born},{},{},AU\n",
            given[i % 20],
            family[i / 20],
            2100 + i % 40,
            cities[i % 5],
        );
    }
    let first = env.write("first.csv", &first);
    env.patron_ok(&["import", "customers", first.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    let margaret = env.profile_of("pos", "0").await;
    let later = env.write(
        "later.csv",
        "source,source_id,name,birth_date,postal_code,city,country\n\
         shop,1,Margret Okonkow,1940-01-01,2100,Cleveland,AU\n\
         shop,2,Margaret Okonkwo,1990-07-01,2100,Cleveland,AU\n",
    );
    let out = env.patron_ok(&["import", "customers", later.to_str().unwrap()]);
    assert!(
        out.contains("placed 2 new records online: 1 joined existing profiles, 1 started new ones"),
        "{out}"
    );
    assert_eq!(env.profile_of("shop", "1").await, margaret);
    assert_ne!(env.profile_of("shop", "2").await, margaret);
}

#[tokio::test]
async fn a_misspelt_name_is_found_by_birth_date_and_postal_code_on_sqlite() {
    a_misspelt_name_is_found_by_birth_date_and_postal_code(Db::Sqlite).await;
}

#[tokio::test]
async fn a_misspelt_name_is_found_by_birth_date_and_postal_code_on_postgres() {
    a_misspelt_name_is_found_by_birth_date_and_postal_code(Db::Postgres).await;
}

async fn lookup(app: &TestApp, role: Role, body: serde_json::Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/match"))
        .bearer_auth(&app.keys[&role])
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lookup_finds_the_profile_without_storing_the_record() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let ann = app.env.profile_of("web", "w1").await;
    let records = app.env.scalar("SELECT COUNT(*) FROM source_records").await;

    let resp = lookup(&app, Role::Agent, json!({"email": "ANN.LEE@example.com"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    let best = &body["matches"][0];
    assert_eq!(best["customer_id"], ann);
    assert_eq!(best["links"], true);
    assert_eq!(best["deterministic"], true);

    // Name and phone in another format: still Ann.
    let body: serde_json::Value = lookup(
        &app,
        Role::Agent,
        json!({"name": "Ann Lee", "phone": "(415) 555-2671", "country": "US"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["matches"][0]["customer_id"], ann);

    // Someone else: nothing links.
    let body: serde_json::Value = lookup(
        &app,
        Role::Agent,
        json!({"name": "Zed Quux", "email": "zed@quux.example"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(body["matches"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["links"] == false));

    // A field that does not clean is ignored, and said so; the rest still finds Ann.
    let body: serde_json::Value = lookup(
        &app,
        Role::Agent,
        json!({"name": "Ann Lee", "email": "ann.lee@", "phone": "(415) 555-2671", "country": "US"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["matches"][0]["customer_id"], ann, "{body}");
    assert_eq!(body["ignored"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["ignored"][0]["field"], "email", "{body}");
    assert!(body["ignored"][0]["reason"].as_str().unwrap().len() > 3);

    // Bad requests, and a role that may not read customers.
    for (bad, why) in [
        (json!({"colour": "blue"}), "unknown field"),
        (json!({"city": "Oslo"}), "one valid name"),
        (
            json!({"email": "not-an-email", "city": "Oslo"}),
            "ignored email:",
        ),
        (json!({"email": ["a"]}), "must be a string"),
    ] {
        let resp = lookup(&app, Role::Agent, bad.clone()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(why), "{bad}: {text}");
    }
    assert_eq!(
        lookup(&app, Role::Ingest, json!({"email": "ann.lee@example.com"}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.env.scalar("SELECT COUNT(*) FROM source_records").await,
        records,
        "a lookup stores nothing"
    );
}

#[tokio::test]
async fn an_identified_user_joins_the_profile_with_the_same_email() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let ann = app.env.profile_of("web", "w1").await;
    let identify = json!({
        "userId": "u-7", "messageId": "m-7", "timestamp": "2024-07-01T10:00:00Z",
        "traits": { "email": "ann.lee@example.com", "name": "Ann Lee" }
    });
    let resp = app
        .client
        .post(app.url("/v1/identify"))
        .basic_auth(&app.keys[&Role::Ingest], Some(""))
        .json(&identify)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sql = "SELECT customer_id FROM source_records WHERE source_id = 'u-7'";
    assert_eq!(app.env.scalar(sql).await, ann);
}

#[tokio::test]
async fn tracking_aliases_and_anonymous_ids_link_to_the_profile() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let key = app.keys[&Role::Ingest].clone();
    let send = |path: &'static str, body: serde_json::Value| {
        let req = app
            .client
            .post(app.url(path))
            .basic_auth(&key, Some(""))
            .json(&body);
        async move { req.send().await.unwrap().status() }
    };
    // A visitor browses anonymously, then signs up as u-1; later the app renames u-1 to u-2
    // (an alias), and u-2 is identified with other contact details.
    let calls = [
        (
            "/v1/track",
            json!({"anonymousId": "visitor-9", "event": "Product Viewed", "messageId": "a1"}),
        ),
        (
            "/v1/identify",
            json!({"userId": "u-1", "anonymousId": "visitor-9", "messageId": "a2",
            "traits": {"name": "Gus Hale", "email": "gus@hale.example"}}),
        ),
        (
            "/v1/alias",
            json!({"userId": "u-2", "previousId": "u-1", "messageId": "a3"}),
        ),
        (
            "/v1/identify",
            json!({"userId": "u-2", "messageId": "a4",
            "traits": {"name": "G. Hale", "phone": "+1 212 555 0190", "address": {"country": "US"}}}),
        ),
    ];
    for (path, body) in calls {
        assert_eq!(send(path, body).await, StatusCode::OK, "{path}");
    }
    let out = app.env.patron_ok(&["run", "unify"]);
    assert!(out.contains("decisions and alias links obeyed 1"), "{out}");
    let of = |id: &str| format!("SELECT customer_id FROM source_records WHERE source_id = '{id}'");
    let gus = app.env.scalar(&of("u-1")).await;
    assert_eq!(
        app.env.scalar(&of("u-2")).await,
        gus,
        "the alias links them"
    );
    let anonymous = "SELECT customer_id FROM events WHERE message_id = 'a1'";
    assert_eq!(
        app.env.scalar(anonymous).await,
        gus,
        "the anonymous visit is the visitor's"
    );
}

#[tokio::test]
async fn a_loyalty_id_links_records_and_is_never_stored_in_clear() {
    let env = crate::helpers::TestEnv::new(Db::Sqlite).await;
    let file = env.write(
        "members.csv",
        "source,source_id,name,email,Member Number,city,country\n\
         pos,m1,Ivy Chen,ivy@one.example,ab-123 45,Boston,US\n\
         web,m2,Ivy Chen,ivy.c@two.example,AB12345,Denver,US\n\
         app,m3,Max Chen,max@three.example,ab12345,Boston,US\n\
         web,m4,Una Moss,una@four.example,,Boston,US\n\
         web,m5,Ole Berg,ole@five.example, -- ,Oslo,NO\n",
    );
    let out = env.patron_ok(&["import", "customers", file.to_str().unwrap()]);
    assert!(
        out.contains("loyalty_id 1"),
        "the blank id is quarantined: {out}"
    );
    env.patron_ok(&["run", "unify"]);
    // Read before any connection of this test opens the file (closing one removes the WAL).
    let bytes = env.database_bytes();
    assert!(!bytes.windows(7).any(|w| w == b"AB12345"));
    assert!(!bytes.windows(9).any(|w| w == b"ab-123 45"));
    let of = |id: &str| format!("SELECT customer_id FROM source_records WHERE source_id = '{id}'");
    assert_eq!(
        env.scalar(&of("m1")).await,
        env.scalar(&of("m2")).await,
        "one card, one person"
    );
    assert_ne!(
        env.scalar(&of("m1")).await,
        env.scalar(&of("m3")).await,
        "a card lent to a family member"
    );
}

/// A server warms the page cache by reading its SQLite file as it starts. Closing that read's
/// file handle must not release the locks SQLite holds on the file in the same process
/// (POSIX locks belong to the process and go with any close): without them, the next command
/// run beside the server — here `patron review list`, which opens and closes the database —
/// finds no one else using the file and deletes its log and shared-memory index from under
/// the server, whose next reads fail ("disk I/O error").
#[tokio::test]
async fn warming_the_cache_keeps_the_servers_hold_on_the_file() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let env = &app.env;
    let ann = env.profile_of("web", "w1").await;
    assert!(matches!(
        app.store.warm_cache(),
        Ok(Some(patron_store::Warmed::Read(_)))
    ));
    env.patron_ok(&["review", "list"]);
    let shm = env.data_dir().join("patron.db-shm");
    assert!(shm.exists(), "the server's shared-memory index was deleted");
    let resp = app
        .get_as(Role::Agent, &format!("/api/v1/customers/{ann}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = lookup(&app, Role::Agent, json!({"email": "ann.lee@example.com"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["matches"][0]["customer_id"], ann);
}
