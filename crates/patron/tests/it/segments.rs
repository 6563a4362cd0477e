//! Rule segments through the real CLI and API: preview, create, list, export, re-evaluation
//! with membership history, and rule errors that point at the mistake.

use crate::helpers::{csv_rows, spawn_app_with_fixtures, Db};
use patron_domain::Role;
use reqwest::StatusCode;
use serde_json::json;

/// A member whose profile was merged into another leaves the rule segment on its next
/// refresh, and the history says so (the RFM and cluster writes before it, in the same run,
/// clean up only their own segments).
#[tokio::test]
async fn a_member_merged_away_leaves_its_rule_segment_on_record() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let env = &app.env;
    let ann = env.profile_of("web", "w1").await;
    let bob = env.profile_of("web", "w2").await;
    env.patron_ok(&["segments", "create", "all", "--rule", "records >= 1"]);
    let history = |change: &str, id: i64| {
        format!(
            "SELECT COUNT(*) FROM segment_history WHERE change = '{change}' AND customer_id = {id}"
        )
    };
    assert_eq!(env.scalar(&history("entered", bob)).await, 1);
    env.patron_ok(&["merge", &ann.to_string(), &bob.to_string()]);
    let out = env.patron_ok(&["run", "segment"]);
    assert!(out.contains("customers left 1"), "{out}");
    assert_eq!(env.scalar(&history("left", bob)).await, 1);
    assert_eq!(
        env.scalar(&format!(
            "SELECT COUNT(*) FROM segment_members WHERE customer_id = {bob}"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn rule_segments_are_created_refreshed_and_exported() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let env = &app.env;
    let ann = env
        .scalar("SELECT customer_id FROM source_records WHERE source_id = 'w1'")
        .await;
    let bob = env
        .scalar("SELECT customer_id FROM source_records WHERE source_id = 'w2'")
        .await;
    // Ann spent 84.00 USD, Bob 9.50.
    let rule = "total_spent > 50 and 'web' in sources";
    let preview: serde_json::Value =
        serde_json::from_str(&env.patron_ok(&["segments", "preview", "--rule", rule])).unwrap();
    assert_eq!(preview["members"], 1);
    assert_eq!(preview["sample"][0], ann);
    let created: serde_json::Value =
        serde_json::from_str(&env.patron_ok(&["segments", "create", "big", "--rule", rule]))
            .unwrap();
    assert_eq!(created["members"], 1);

    let out = env.patron(&["segments", "create", "big", "--rule", "orders > 0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("a segment named 'big' exists"));
    let out = env.patron(&["segments", "create", "typo", "--rule", "total_spnt > 50"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("rule: column 1: unknown column 'total_spnt'"),
        "{err}"
    );
    assert!(err.contains("  total_spnt > 50\n  ^"), "{err}");

    // Bob buys more; the next segment run lets him in, and the history says when.
    let more = env.write(
        "more.csv",
        "source,order_id,customer_source_id,placed_at,status,currency,product_id,quantity,unit_price\n\
         web,o9,w2,2024-07-01T10:00:00Z,completed,USD,p2,2,40.00\n",
    );
    env.patron_ok(&["import", "orders", more.to_str().unwrap()]);
    let out = env.patron_ok(&["run", "segment"]);
    assert!(
        out.contains(
            "rule segments: segments re-evaluated 1, customers entered 1, customers left 0"
        ),
        "{out}"
    );
    let exported = csv_rows(&env.patron_ok(&["export", "segments"]));
    let ids: Vec<i64> = exported
        .iter()
        .filter(|r| r["segment"] == "big")
        .map(|r| r["customer_id"].parse().unwrap())
        .collect();
    assert_eq!(ids, {
        let mut v = vec![ann, bob];
        v.sort();
        v
    });
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM segment_history WHERE change = 'entered'")
            .await,
        2
    );
    let list = csv_rows(&env.patron_ok(&["segments", "list"]));
    let big = list.iter().find(|r| r["name"] == "big").unwrap();
    assert_eq!(big["members"], "2");
    assert_eq!(big["kind"], "rule");

    // The API: analysts and admins; rule errors are 400 with the column, names unique.
    let post = |role: Role, body: serde_json::Value| {
        let req = app
            .client
            .post(app.url("/api/v1/segments"))
            .bearer_auth(&app.keys[&role])
            .json(&body);
        async move { req.send().await.unwrap() }
    };
    let resp = post(
        Role::Analyst,
        json!({"name": "gb", "rule": "country = 'GB'"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let gb: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(gb["members"], 1);
    let resp = post(
        Role::Analyst,
        json!({"name": "bad", "rule": "country > 'GB'"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("column 9"));
    assert_eq!(
        post(Role::Admin, json!({"name": "gb", "rule": "orders > 0"}))
            .await
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(Role::Agent, json!({"name": "x", "rule": "orders > 0"}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let members: serde_json::Value = app
        .get_as(
            Role::Analyst,
            &format!("/api/v1/segments/{}/members", gb["segment_id"]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["customer_ids"], json!([bob]));
    assert_eq!(
        app.get_as(Role::Analyst, "/api/v1/segments/999999/members")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let all: serde_json::Value = app
        .get_as(Role::Admin, "/api/v1/segments")
        .await
        .json()
        .await
        .unwrap();
    assert!(all["segments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "big"));
}

/// Tags make segments; campaign exports keep only members whose latest consent statement on
/// the channel grants it, and say how many they left out and why.
async fn campaign_exports_honour_consent(db: Db) {
    let app = spawn_app_with_fixtures(db).await;
    let env = &app.env;
    // Ann grants email consent on the web, then withdraws it in a store a month later; Bob
    // grants email and SMS (no time given: it counts from the import). Dee's flag is not one.
    let consent = env.write(
        "consent.csv",
        "source,source_id,name,email,phone,birth_date,city,country,accepts_marketing,sms_opt_in,consent_at,tags\n\
         web,w1,Ann Lee,ann.lee@example.com,+1 415 555 2671,1990-01-02,San Francisco,US,yes,,2024-05-01T00:00:00Z,VIP\n\
         pos,p1,ANN LEE,Ann.Lee@Example.COM,,01/02/1990,San Francisco,US,no,,2024-06-01,\n\
         web,w2,Bob Stone,bob@example.org,,1985-05-06,London,GB,yes,yes,,vip; Wholesale\n\
         web,w4,Dee Ray,dee@example.org,,,Leeds,GB,maybe,,,\n",
    );
    let out = env.patron_ok(&["import", "customers", consent.to_str().unwrap()]);
    assert!(out.contains("read 4, stored 4, rejected 0"), "{out}");
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM quarantine WHERE field = 'email_consent'")
            .await,
        1
    );
    let (ann, bob) = (
        env.profile_of("web", "w1").await,
        env.profile_of("web", "w2").await,
    );
    env.patron_ok(&["segments", "create", "vip", "--rule", "'vip' in tags"]);

    let export = |channel: &str| {
        let out = env.patron(&["segments", "export", "vip", "--channel", channel]);
        assert!(out.status.success(), "{out:?}");
        (
            csv_rows(&String::from_utf8(out.stdout).unwrap()),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (rows, said) = export("email");
    assert_eq!(rows.len(), 1, "{said}");
    assert_eq!(rows[0]["customer_id"], bob.to_string());
    assert_eq!(rows[0]["email"], "bob@example.org");
    assert_eq!(rows[0]["consent_source"], "web");
    assert!(
        said.contains("wrote 1 members; left out 1 without email consent and 0 without a contact"),
        "{said}"
    );
    // Bob may be texted but has no phone; Ann never said anything about SMS.
    let (rows, said) = export("sms");
    assert!(rows.is_empty());
    assert!(
        said.contains("left out 1 without sms consent and 1 without a contact"),
        "{said}"
    );
    let out = env.patron(&["segments", "export", "vip", "--channel", "fax"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown channel"));

    // Bob withdraws in the app; re-importing the web shop's old "yes" does not outdate that.
    let app_file = env.write(
        "app.csv",
        "source,source_id,email,email_consent\napp,a9,bob@example.org,unsubscribed\n",
    );
    env.patron_ok(&["import", "customers", app_file.to_str().unwrap()]);
    assert_eq!(env.profile_of("app", "a9").await, bob);
    env.patron_ok(&["import", "customers", consent.to_str().unwrap()]);
    let (rows, _) = export("email");
    assert!(rows.is_empty(), "{rows:?}");

    // The customer view shows tags and the standing statement per channel.
    let view: serde_json::Value = app
        .get_as(Role::Admin, &format!("/api/v1/customers/{bob}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["tags"], json!(["vip", "wholesale"]));
    assert_eq!(view["consent"]["email"]["granted"], false);
    assert_eq!(view["consent"]["email"]["source"], "app");
    assert_eq!(view["consent"]["sms"]["granted"], true);
    let view: serde_json::Value = app
        .get_as(Role::Admin, &format!("/api/v1/customers/{ann}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["consent"]["email"]["source"], "pos");
    // Rules can select on consent.
    let p: serde_json::Value = serde_json::from_str(&env.patron_ok(&[
        "segments",
        "preview",
        "--rule",
        "'sms' in consents",
    ]))
    .unwrap();
    assert_eq!(p["sample"], json!([bob]));
}

#[tokio::test]
async fn campaign_exports_honour_consent_on_sqlite() {
    campaign_exports_honour_consent(Db::Sqlite).await;
}

#[tokio::test]
async fn campaign_exports_honour_consent_on_postgres() {
    campaign_exports_honour_consent(Db::Postgres).await;
}

#[tokio::test]
async fn cohorts_report_retention_and_revenue_by_first_order_month() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let rows = csv_rows(&app.env.patron_ok(&["report", "cohorts"]));
    let cell = |cohort: &str, month: &str| {
        rows.iter()
            .find(|r| r["cohort"] == cohort && r["month"] == month)
            .unwrap_or_else(|| panic!("{cohort} {month}: {rows:?}"))
            .clone()
    };
    // Ann first ordered in May (59.00) and again in June (25.00); Bob first in June.
    let may = cell("2024-05", "0");
    assert_eq!(
        (
            may["size"].as_str(),
            may["active"].as_str(),
            may["revenue"].as_str()
        ),
        ("1", "1", "59.00")
    );
    let june = cell("2024-05", "1");
    assert_eq!(
        (june["retention"].as_str(), june["revenue"].as_str()),
        ("1.0000", "25.00")
    );
    assert_eq!(cell("2024-06", "0")["size"], "1");
    assert_eq!(may["currency"], "USD");
}

#[tokio::test]
async fn rfm_bins_and_score_map_are_configurable() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    let env = &app.env;
    let map = env.write(
        "map.csv",
        "r_from,r_to,f_from,f_to,segment\n2,2,1,2,Recent\n1,1,1,2,Earlier\n",
    );
    let out = env.patron(&["rfm", "set", "--bins", "2"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--bins 2: the score map does not fit 2 bins"));
    let gap = env.write(
        "gap.csv",
        "r_from,r_to,f_from,f_to,segment\n2,2,1,2,Recent\n",
    );
    let out = env.patron(&["rfm", "set", "--bins", "2", "--map", gap.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no segment for r=1 f=1, r=1 f=2"));
    let bad = env.write(
        "bad.csv",
        "r_from,r_to,f_from,f_to,segment\nx,2,1,2,Recent\n",
    );
    let out = env.patron(&["rfm", "set", "--bins", "2", "--map", bad.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: column 1 is not a score"));

    env.patron_ok(&["rfm", "set", "--bins", "2", "--map", map.to_str().unwrap()]);
    env.patron_ok(&["run", "segment"]);
    // Bob ordered last (June 15–21) and Ann earlier (June 1): two bins of recency.
    let names = csv_rows(&env.patron_ok(&["segments", "list"]))
        .into_iter()
        .filter(|r| r["kind"] == "rfm")
        .map(|r| (r["name"].clone(), r["members"].clone()))
        .collect::<Vec<_>>();
    assert_eq!(
        names,
        vec![
            ("Earlier".to_owned(), "1".to_owned()),
            ("Recent".to_owned(), "1".to_owned())
        ]
    );
    let scores = env.scalar("SELECT MAX(r) FROM customer_metrics").await;
    assert_eq!(scores, 2);
    env.patron_ok(&["rfm", "set", "--reset"]);
    env.patron_ok(&["run", "segment"]);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM segments WHERE name = 'Recent'")
            .await,
        0
    );
}
