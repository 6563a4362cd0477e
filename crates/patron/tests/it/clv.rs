//! Customer-base models against the published CDNOW results (the 1/10 sample of 2,357
//! customers, 39-week calibration ending 1997-09-30, weeks as the unit; `CDNOW_sample.txt`
//! from the `lifetimes` wheel, fetched by `scripts/fetch-datasets.sh cdnow`, which
//! `scripts/test.sh` runs).

use crate::helpers::{Db, TestEnv};
use std::path::PathBuf;

/// The sample as `customer_id,date,amount` (its columns: customer id in the master file, id
/// in the sample, date as YYYYMMDD, CDs bought, dollars).
fn cdnow_csv(env: &TestEnv) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/external/cdnow/CDNOW_sample.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; fetch it with scripts/fetch-datasets.sh cdnow",
            path.display()
        )
    });
    let mut csv = String::from("customer_id,date,amount\n");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        csv.push_str(&format!("{},{},{}\n", f[0], f[2], f[4]));
    }
    env.write("cdnow.csv", &csv)
}

/// `v` to three significant figures.
fn sig3(v: f64) -> f64 {
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

#[tokio::test]
async fn bgnbd_pareto_and_gamma_gamma_match_the_papers_on_cdnow() {
    let env = TestEnv::new(Db::Sqlite).await;
    let csv = cdnow_csv(&env);
    let out = env.patron_ok(&[
        "eval",
        "clv",
        "--orders",
        csv.to_str().unwrap(),
        "--calibration-end",
        "1997-09-30",
        "--unit",
        "week",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["customers"], 2357);
    assert_eq!(report["repeat_customers"], 946);
    let params = |model: &str| -> Vec<f64> {
        report[model]["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| sig3(v.as_f64().unwrap()))
            .collect()
    };
    // Fader, Hardie & Lee (2005): BG/NBD and Pareto/NBD; Fader & Hardie: Gamma-Gamma.
    assert_eq!(params("bgnbd"), [0.243, 4.41, 0.793, 2.43]);
    assert_eq!(
        sig3(report["bgnbd"]["log_likelihood"].as_f64().unwrap()),
        -9580.0
    );
    assert_eq!(params("pareto_nbd"), [0.553, 10.6, 0.606, 11.7]);
    assert_eq!(params("gamma_gamma"), [6.25, 3.74, 15.4]);
    assert_eq!(report["gamma_gamma"]["customers"], 946);
    for model in ["bgnbd", "pareto_nbd", "gamma_gamma"] {
        for se in report[model]["std_errors"].as_array().unwrap() {
            assert!(se.as_f64().is_some_and(|s| s > 0.0), "{model}: {se}");
        }
    }
}

#[tokio::test]
async fn the_holdout_comparison_and_bad_input() {
    let env = TestEnv::new(Db::Sqlite).await;
    let csv = cdnow_csv(&env);
    let csv = csv.to_str().unwrap();
    let out = env.patron_ok(&[
        "eval",
        "clv",
        "--orders",
        csv,
        "--calibration-end",
        "1997-09-30",
        "--holdout-end",
        "1998-06-30",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let buckets = report["holdout"].as_array().unwrap();
    assert_eq!(buckets.len(), 8);
    let total: u64 = buckets
        .iter()
        .map(|b| b["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 2357);
    // More calibration purchases, more predicted and more actual holdout purchases.
    for pair in buckets.windows(2) {
        assert!(pair[1]["predicted"].as_f64() > pair[0]["predicted"].as_f64());
    }

    let fails = |args: &[&str], message: &str| {
        let out = env.patron(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(message),
            "{args:?}: {err}"
        );
    };
    fails(
        &[
            "eval",
            "clv",
            "--orders",
            csv,
            "--calibration-end",
            "1997-09-30",
            "--holdout-end",
            "1997-01-01",
        ],
        "--holdout-end must be after --calibration-end",
    );
    fails(
        &[
            "eval",
            "clv",
            "--orders",
            csv,
            "--calibration-end",
            "someday",
        ],
        "--calibration-end",
    );
    let no_amount = env.write("bad.csv", "customer_id,date\n1,1997-01-01\n");
    fails(
        &[
            "eval",
            "clv",
            "--orders",
            no_amount.to_str().unwrap(),
            "--calibration-end",
            "1997-09-30",
        ],
        "no column \"amount\"",
    );
    let bad_row = env.write(
        "bad2.csv",
        "customer_id,date,amount\n1,1997-01-01,12\n2,1997-13-45,3\n",
    );
    fails(
        &[
            "eval",
            "clv",
            "--orders",
            bad_row.to_str().unwrap(),
            "--calibration-end",
            "1997-09-30",
        ],
        "line 3",
    );
}

#[tokio::test]
async fn run_predict_forecasts_with_the_fitted_models() {
    let env = TestEnv::new(Db::Sqlite).await;
    env.patron_ok(&["demo", "--customers", "600", "--no-serve"]);
    let out = env.patron_ok(&["run", "predict"]);
    assert!(out.contains("with BG/NBD and Gamma-Gamma"), "{out}");
    let count = |sql: &'static str| env.scalar(sql);
    let total = count("SELECT COUNT(*) FROM customer_predictions").await;
    assert!(total > 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM customer_predictions WHERE model = 'bg-nbd+gamma-gamma'").await,
        total
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM customer_predictions WHERE p_alive BETWEEN 0 AND 1 \
             AND churn_risk IN ('low', 'medium', 'high') AND clv_12m_minor >= 0 \
             AND expected_purchases_90d >= 0"
        )
        .await,
        total
    );
    // The bands follow P(alive).
    assert_eq!(
        count("SELECT COUNT(*) FROM customer_predictions WHERE churn_risk = 'high' AND p_alive >= 0.3")
            .await,
        0
    );

    // The metrics export: one row per profile, forecasts where computed, nothing personal.
    env.patron_ok(&["run", "segment"]);
    let rows = crate::helpers::csv_rows(&env.patron_ok(&["export", "metrics"]));
    assert_eq!(
        rows.len() as i64,
        count("SELECT COUNT(*) FROM customers").await
    );
    let forecast = rows.iter().filter(|r| !r["p_alive"].is_empty()).count() as i64;
    assert_eq!(forecast, total);
    let buyer = rows.iter().find(|r| !r["rfm_segment"].is_empty()).unwrap();
    assert!(buyer["frequency"].parse::<i64>().unwrap() >= 1);
    assert!(["low", "medium", "high"].contains(&buyer["churn_risk"].as_str()));
    assert!(!rows[0].contains_key("email") && !rows[0].contains_key("name"));
    // Every buyer is in one behaviour cluster, and clusters are segments rules can use.
    assert!(buyer["cluster"].starts_with("Cluster "), "{buyer:?}");
    let clustered = rows.iter().filter(|r| !r["cluster"].is_empty()).count();
    let scored = rows.iter().filter(|r| !r["rfm_segment"].is_empty()).count();
    assert_eq!(clustered, scored);
    let clusters = count("SELECT COUNT(*) FROM segments WHERE kind = 'cluster'").await;
    assert!((2..=8).contains(&clusters), "{clusters}");
    let rule = format!("cluster = '{}'", buyer["cluster"]);
    let preview: serde_json::Value =
        serde_json::from_str(&env.patron_ok(&["segments", "preview", "--rule", &rule])).unwrap();
    assert!(preview["members"].as_u64().unwrap() >= 1);

    // A given k is honoured. The demo's buyers lean on categories, which a cluster names once
    // there are enough clusters for more than spend and recency (at 600 people, 7 or more).
    let out = env.patron_ok(&["--clusters", "8", "run", "segment"]);
    assert!(out.contains("behaviour clusters 8"), "{out}");
    let names = crate::helpers::csv_rows(&env.patron_ok(&["segments", "list"]));
    let clusters: Vec<&str> = names
        .iter()
        .filter(|r| r["kind"] == "cluster")
        .map(|r| r["name"].as_str())
        .collect();
    assert_eq!(clusters.len(), 8, "{clusters:?}");
    assert!(clusters.iter().any(|n| n.contains("buys ")), "{clusters:?}");
    let out = env.patron(&["--clusters", "40", "run", "segment"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a number from 2 to 20"));

    // Pareto/NBD instead of BG/NBD: the same customers forecast, by the other model.
    let out = env.patron_ok(&["--clv-model", "pareto-nbd", "run", "predict"]);
    assert!(out.contains("with Pareto/NBD and Gamma-Gamma"), "{out}");
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM customer_predictions WHERE model = 'pareto-nbd+gamma-gamma' \
             AND p_alive BETWEEN 0 AND 1 AND expected_purchases_90d >= 0"
        )
        .await,
        total
    );
    let out = env.patron(&["--clv-model", "arima", "run", "predict"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected bg-nbd or pareto-nbd"));
}

#[tokio::test]
async fn too_few_repeat_buyers_fall_back_to_the_run_rate() {
    let env = TestEnv::new(Db::Sqlite).await;
    for (kind, name, body) in [
        ("customers", "c.csv", crate::helpers::CUSTOMERS),
        ("orders", "o.csv", crate::helpers::ORDERS),
    ] {
        let path = env.write(name, body);
        env.patron_ok(&["import", kind, path.to_str().unwrap()]);
    }
    let out = env.patron_ok(&["run", "unify", "predict"]);
    assert!(out.contains("with BG/NBD and Gamma-Gamma 0"), "{out}");
    let sql =
        "SELECT COUNT(*) FROM customer_predictions WHERE model = 'run-rate' AND p_alive IS NULL";
    assert_eq!(
        env.scalar(sql).await,
        env.scalar("SELECT COUNT(*) FROM customer_predictions")
            .await
    );
}

/// Stage results keep every value as written on both stores: quotes, backslashes, control
/// characters, CJK and emoji in text; infinities, extremes and NaN in numbers; NULLs.
/// (PostgreSQL gets narrow rows as one JSON document per batch; SQLite stores NaN as NULL.)
async fn stage_results_keep_every_value(db: Db) {
    use patron_store::{PredictionRow, RecommendationRow};
    use sqlx::Row;
    let app = crate::helpers::spawn_app_with_fixtures(db).await;
    let (env, store) = (&app.env, &app.store);
    let ann = env.profile_of("web", "w1").await;
    let bob = env.profile_of("web", "w2").await;
    let scores = [
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-300,
        f64::MAX,
        -2.5,
        0.1,
    ];
    let reasons = [
        "quote \" backslash \\ slash /",
        "tab\t newline\n return\r",
        "汉字 é 🎉",
        "\\x41 is not bytes",
        "{\"json\": [1, null]}",
        "",
    ];
    store
        .write_recommendations(
            scores
                .iter()
                .zip(reasons)
                .enumerate()
                .map(|(rank, (&score, reason))| RecommendationRow {
                    customer_id: ann,
                    rank: rank as i64 + 1,
                    product_id: format!("p'{rank}"),
                    score,
                    reason: reason.into(),
                })
                .collect(),
        )
        .await
        .unwrap();
    store
        .write_predictions(
            [(ann, Some(f64::NAN), Some("high")), (bob, None, None)]
                .into_iter()
                .map(|(customer_id, p_alive, churn_risk)| PredictionRow {
                    customer_id,
                    model: "bg-nbd",
                    expected_purchases_90d: f64::MIN_POSITIVE,
                    clv_12m_minor: i64::MAX,
                    currency: "USD".into(),
                    p_alive,
                    churn_risk,
                })
                .collect(),
        )
        .await
        .unwrap();
    let mut conn = env.connect().await;
    let rows = sqlx::query(&format!(
        "SELECT product_id, score, reason FROM recommendations WHERE customer_id = {ann} ORDER BY rank"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let stored: Vec<(String, f64, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let written: Vec<(String, f64, String)> = scores
        .iter()
        .zip(reasons)
        .enumerate()
        .map(|(rank, (&s, r))| (format!("p'{rank}"), s, r.to_owned()))
        .collect();
    assert_eq!(stored, written);
    let rows = sqlx::query(
        "SELECT customer_id, expected_purchases_90d, clv_12m_minor, p_alive, churn_risk \
         FROM customer_predictions ORDER BY customer_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let id: i64 = row.get(0);
        assert_eq!(row.get::<f64, _>(1), f64::MIN_POSITIVE);
        assert_eq!(row.get::<i64, _>(2), i64::MAX);
        let p_alive: Option<f64> = row.get(3);
        let churn: Option<String> = row.get(4);
        if id == ann {
            match db {
                Db::Postgres => assert!(p_alive.is_some_and(f64::is_nan), "{p_alive:?}"),
                Db::Sqlite => assert_eq!(p_alive, None),
            }
            assert_eq!(churn.as_deref(), Some("high"));
        } else {
            assert_eq!((p_alive, churn), (None, None));
        }
    }
}

#[tokio::test]
async fn stage_results_keep_every_value_on_sqlite() {
    stage_results_keep_every_value(Db::Sqlite).await;
}

#[tokio::test]
async fn stage_results_keep_every_value_on_postgres() {
    stage_results_keep_every_value(Db::Postgres).await;
}
