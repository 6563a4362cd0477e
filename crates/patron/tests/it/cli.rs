//! The CLI contract end to end: import → run → export on both databases, and every kind of
//! bad input giving a clear one-line error or a quarantined row, never a panic.

use crate::helpers::{csv_rows, Db, TestEnv, CUSTOMERS, ORDERS, PRODUCTS};

/// `patron quarantine export --kind customers` into `fix.csv` of the data directory.
fn export_customer_quarantine(env: &TestEnv) -> (std::process::Output, std::path::PathBuf) {
    let fix = env.data_dir().join("fix.csv");
    let args = ["quarantine", "export", "--kind", "customers", "--out"];
    let mut args = args.to_vec();
    args.push(fix.to_str().unwrap());
    (env.patron(&args), fix)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn round_trip(db: Db) {
    let env = TestEnv::new(db).await;
    let products = env.write("products.csv", PRODUCTS);
    let customers = env.write("customers.csv", CUSTOMERS);
    let orders = env.write("orders.csv", ORDERS);
    let out = env.patron_ok(&["import", "products", products.to_str().unwrap()]);
    assert!(out.contains("read 4, stored 4, rejected 0"), "{out}");
    let out = env.patron_ok(&["import", "customers", customers.to_str().unwrap()]);
    assert!(
        out.contains("read 6, stored 5, rejected 1, 1 stored with fields quarantined"),
        "{out}"
    );
    assert!(out.contains("birth_date 1, email 1, source_id 1"), "{out}");
    assert!(
        out.contains("unknown columns ignored: favourite_colour"),
        "{out}"
    );
    let out = env.patron_ok(&["import", "orders", orders.to_str().unwrap()]);
    assert!(out.contains("read 7, stored 6, rejected 1"), "{out}");
    assert!(out.contains("unit_price 1"), "{out}");
    assert!(
        out.contains("1 customers these orders name have no customer record"),
        "the order of an unknown customer id waits for its record: {out}"
    );

    let out = env.patron_ok(&["run"]);
    assert!(out.contains("unify: records 5,"), "{out}");
    assert!(out.contains(", profiles 3,"), "{out}");
    assert!(out.contains("orders without a known customer 1"), "{out}");

    let links = csv_rows(&env.patron_ok(&["export", "links"]));
    assert_eq!(links.len(), 5);
    let id =
        |sid: &str| links.iter().find(|l| l["source_id"] == sid).unwrap()["customer_id"].clone();
    assert!(!id("w1").is_empty());
    assert_eq!(id("w1"), id("p1"), "same email, different case and spacing");
    assert_eq!(id("w1"), id("a1"), "same phone, different format");
    assert_ne!(id("w1"), id("w2"));
    assert_ne!(id("w2"), id("w3"));

    let profiles = csv_rows(&env.patron_ok(&["export", "profiles"]));
    assert_eq!(profiles.len(), 3);
    let ann = profiles
        .iter()
        .find(|p| p["customer_id"] == id("w1"))
        .unwrap();
    assert_eq!(ann["email"], "ann.lee@example.com");
    assert_eq!(ann["phone"], "+14155552671");
    assert_eq!(ann["records"], "3");
    let cai = profiles
        .iter()
        .find(|p| p["customer_id"] == id("w3"))
        .unwrap();
    assert_eq!(
        cai["email"], "",
        "the invalid email was quarantined, not stored"
    );
    assert_eq!(cai["country"], "CN");
    assert_eq!(cai["gender"], "M");

    let store = env.store().await;
    let ann_id: i64 = id("w1").parse().unwrap();
    let detail = store.customer(ann_id).await.unwrap().unwrap();
    assert_eq!(detail.order_summary.orders, 2);
    assert_eq!(detail.order_summary.spend, vec![("USD".to_owned(), 8_400)]);
    let rfm = detail.rfm.unwrap();
    assert_eq!(rfm["frequency"], 2);
    assert_eq!(rfm["monetary_minor"], 8_400);
    // Run-rate forecast: 2 orders over the 46 days from Ann's first order (May 1) to the day
    // after the latest order (June 16), at 42.00 per order.
    let forecast = detail.predictions.unwrap();
    assert_eq!(forecast["model"], "run-rate");
    assert_eq!(forecast["clv_12m_minor"], 66_652);
    let expected = forecast["expected_purchases_90d"].as_f64().unwrap();
    assert!((expected - 2.0 / 46.0 * 90.0).abs() < 1e-9, "{expected}");
    let bob: i64 = id("w2").parse().unwrap();
    let bob = store.customer(bob).await.unwrap().unwrap();
    assert_eq!(
        bob.order_summary.orders, 1,
        "the refunded order does not count"
    );
    assert_eq!(bob.order_summary.reversed_orders, 1);

    let segments = csv_rows(&env.patron_ok(&["export", "segments"]));
    assert_eq!(
        segments.len(),
        2,
        "Ann and Bob have completed orders, Cai none"
    );
    assert!(segments.iter().all(|s| s["kind"] == "rfm"));

    let recs = csv_rows(&env.patron_ok(&["export", "recommendations"]));
    let recs_of = |c: &str| -> Vec<String> {
        recs.iter()
            .filter(|r| r["customer_id"] == c)
            .map(|r| r["product_id"].clone())
            .collect()
    };
    assert_eq!(
        recs_of(&id("w1")),
        Vec::<String>::new(),
        "Ann bought every active product"
    );
    let mut bob = recs_of(&id("w2"));
    bob.sort();
    assert_eq!(
        bob,
        vec!["p2", "p3"],
        "unseen and active, in the model's order"
    );
    assert_eq!(recs_of(&id("w3")), vec!["p1", "p2", "p3"]);
    assert!(
        !recs.iter().any(|r| r["product_id"] == "p4"),
        "inactive products are never recommended"
    );

    // Export to a file as well as to standard output.
    let out_file = env.data_dir().join("links.csv");
    env.patron_ok(&["export", "links", "--out", out_file.to_str().unwrap()]);
    assert_eq!(
        csv_rows(&std::fs::read_to_string(out_file).unwrap()).len(),
        5
    );
}

#[tokio::test]
async fn import_run_export_round_trip_on_sqlite() {
    round_trip(Db::Sqlite).await;
}

#[tokio::test]
async fn import_run_export_round_trip_on_postgres() {
    round_trip(Db::Postgres).await;
}

async fn reimport_changes_nothing(db: Db) {
    let env = TestEnv::new(db).await;
    let customers = env.write("customers.csv", CUSTOMERS);
    env.patron_ok(&["import", "customers", customers.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    let before = env.patron_ok(&["export", "links"]);
    let profiles_before = env.patron_ok(&["export", "profiles"]);
    let quarantine_before = env.patron_ok(&["quarantine", "list"]);
    assert_eq!(csv_rows(&quarantine_before).len(), 3);
    env.patron_ok(&["import", "customers", customers.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    assert_eq!(
        env.patron_ok(&["export", "links"]),
        before,
        "profile ids are stable"
    );
    assert_eq!(env.patron_ok(&["export", "profiles"]), profiles_before);
    assert_eq!(
        env.patron_ok(&["quarantine", "list"]),
        quarantine_before,
        "bad rows are not quarantined twice"
    );
}

#[tokio::test]
async fn reimport_changes_nothing_on_sqlite() {
    reimport_changes_nothing(Db::Sqlite).await;
}

#[tokio::test]
async fn reimport_changes_nothing_on_postgres() {
    reimport_changes_nothing(Db::Postgres).await;
}

#[tokio::test]
async fn a_new_record_joins_the_existing_profile_and_keeps_its_id() {
    let env = TestEnv::new(Db::Sqlite).await;
    let first = env.write(
        "a.csv",
        "source,source_id,email\nweb,1,kim@example.com\nweb,2,lee@example.com\n",
    );
    env.patron_ok(&["import", "customers", first.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    let before = csv_rows(&env.patron_ok(&["export", "links"]));
    let second = env.write("b.csv", "source,source_id,email\nshop,9,KIM@example.com\n");
    env.patron_ok(&["import", "customers", second.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    let after = csv_rows(&env.patron_ok(&["export", "links"]));
    let id = |rows: &[std::collections::HashMap<String, String>], sid: &str| {
        rows.iter().find(|r| r["source_id"] == sid).unwrap()["customer_id"].clone()
    };
    assert_eq!(id(&after, "1"), id(&before, "1"));
    assert_eq!(id(&after, "9"), id(&before, "1"));
    assert_eq!(id(&after, "2"), id(&before, "2"));
}

#[tokio::test]
async fn malformed_and_non_utf8_rows_are_quarantined_and_good_rows_stored() {
    let env = TestEnv::new(Db::Sqlite).await;
    let mut bytes =
        b"source,source_id,email\nweb,1,a@example.com\nweb,2,b@example.com,extra\n".to_vec();
    bytes.extend_from_slice(b"web,3,\xff\xfe@example.com\nweb,4,d@example.com\n");
    let path = env.data_dir().join("dirty.csv");
    std::fs::write(&path, bytes).unwrap();
    let out = env.patron_ok(&["import", "customers", path.to_str().unwrap()]);
    assert!(out.contains("read 4, stored 2, rejected 2"), "{out}");
    env.patron_ok(&["run", "unify"]);
    let links = csv_rows(&env.patron_ok(&["export", "links"]));
    let ids: Vec<&str> = links.iter().map(|l| l["source_id"].as_str()).collect();
    assert_eq!(ids, vec!["1", "4"]);
    assert_eq!(env.store().await.quarantine_count().await.unwrap(), 2);
    // Rows unreadable as fields cannot go back through the export as columns: said so.
    let (out, _) = export_customer_quarantine(&env);
    let err = stderr(&out);
    assert!(
        err.contains("2 of them could not be read as fields"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_required_column_is_a_one_line_error() {
    let env = TestEnv::new(Db::Sqlite).await;
    let path = env.write("c.csv", "source,email\nweb,a@example.com\n");
    let out = env.patron(&["import", "customers", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("missing required column 'source_id'"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let path = env.write("o.csv", "source,order_id\nweb,1\n");
    let err = stderr(&env.patron(&["import", "orders", path.to_str().unwrap()]));
    assert!(
        err.contains("missing required column 'customer_source_id'"),
        "{err}"
    );
}

#[tokio::test]
async fn unreadable_files_and_empty_files_are_clear_errors() {
    let env = TestEnv::new(Db::Sqlite).await;
    let out = env.patron(&["import", "customers", "/no/such/file.csv"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read /no/such/file.csv"),
        "{}",
        stderr(&out)
    );
    let empty = env.write("empty.csv", "");
    let out = env.patron(&["import", "products", empty.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let env = TestEnv::new(Db::Sqlite).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patron"))
        .args(["--data-dir", env.data_dir().to_str().unwrap()])
        .args([
            "--database-url",
            "postgres://patron:secret@127.0.0.1:1/none",
            "run",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "error: cannot open the database at postgres://patron:***@127.0.0.1:1/none"
        ),
        "{err}"
    );
    assert!(
        !err.contains("secret") && !err.contains("panicked"),
        "{err}"
    );
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let env = TestEnv::new(Db::Sqlite).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env.patron(&["serve", "--listen", &addr]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[tokio::test]
async fn bad_flags_are_clear_errors() {
    let env = TestEnv::new(Db::Sqlite).await;
    let err = stderr(&env.patron(&["keys", "create", "--role", "king"]));
    assert!(err.contains("unknown role"), "{err}");
    let err = stderr(&env.patron(&["--default-region", "Atlantis", "run"]));
    assert!(err.contains("--default-region"), "{err}");
    let err = stderr(&env.patron(&["--currency", "XYZ", "run"]));
    assert!(err.contains("--currency"), "{err}");
}

#[tokio::test]
async fn personal_data_is_encrypted_in_the_database_file() {
    let env = TestEnv::new(Db::Sqlite).await;
    let customers = env.write("customers.csv", CUSTOMERS);
    env.patron_ok(&["import", "customers", customers.to_str().unwrap()]);
    env.patron_ok(&["run"]);
    // Remove the fixture so only the database files are searched.
    std::fs::remove_file(customers).unwrap();
    let haystack = env.database_bytes();
    assert!(haystack.len() > 10_000);
    for needle in [
        "ann.lee@example.com",
        "Ann Lee",
        "4155552671",
        "1990-01-02",
        "bob@example.org",
    ] {
        assert!(
            !haystack
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{needle} found in clear in the database file"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.data_dir().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn the_wrong_master_key_is_refused() {
    let env = TestEnv::new(Db::Sqlite).await;
    env.patron_ok(&["run"]);
    let out = env.patron(&["--master-key", &"ab".repeat(32), "run"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("different master key"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn keys_create_prints_a_working_key_as_the_last_line() {
    let env = TestEnv::new(Db::Sqlite).await;
    let out = env.patron_ok(&["keys", "create", "--role", "agent"]);
    let key = out.trim().lines().last().unwrap();
    let info = env
        .store()
        .await
        .authenticate_key(key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.role, patron_domain::Role::Agent);
}

#[tokio::test]
async fn demo_builds_a_data_dir_that_serves() {
    let env = TestEnv::new(Db::Sqlite).await;
    let out = env.patron_ok(&["demo", "--customers", "400", "--seed", "3", "--no-serve"]);
    assert!(out.contains("Generated 400 people"), "{out}");
    assert!(out.contains("Dashboard user: admin  password: "), "{out}");
    let store = env.store().await;
    let o = store.overview().await.unwrap();
    assert!(o.customers > 300 && o.customers < 600, "{o:?}");
    assert!(
        o.orders > 0 && o.products == 1000 && o.events > 0 && o.tickets > 0,
        "{o:?}"
    );
    assert!(o.quarantined > 0, "the demo's dirt is quarantined");
    assert!(o.segments.iter().any(|(_, n)| *n > 0));
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("Dashboard user: admin  password: "))
        .unwrap();
    assert!(matches!(
        store.login("admin", password).await.unwrap(),
        patron_store::Login::Session(_)
    ));
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("Admin API key:  "))
        .unwrap()
        .to_owned();

    // `patron serve` on that data dir answers over HTTPS with the demo's data.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_patron"))
        .args([
            "--data-dir",
            env.data_dir().to_str().unwrap(),
            "serve",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(env.data_dir().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "patron serve did not come up");
    let resp = client
        .get(format!("{base}/api/v1/customers/1"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(!body["identities"].as_array().unwrap().is_empty(), "{body}");
    // It read the database file once in the background, so lookups after a restart do not
    // wait on the disk.
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(env.data_dir().join("serve.log")).unwrap();
        if log.contains("database read into the page cache") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(log.contains("database read into the page cache"), "{log}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// UCI's Online Retail shape: an orders-only export with its own column names, month-first
/// dates, no currency column, returns as negative quantities and guest lines without a
/// customer id.
const ONLINE_RETAIL: &str = "\
Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/13/2010 8:28,1.85,17850,United Kingdom
C536379,D,Discount,-1,12/14/2010 9:41,27.50,14527,United Kingdom
536380,22961,JAM MAKING SET PRINTED,24,12/14/2010 9:41,1.45,,United Kingdom
536381,22139,RETROSPOT TEA SET CERAMIC 11 PC,23,12/14/2010 9:41,4.25,15311,United Kingdom
";

async fn an_orders_only_export_imports_and_scores(db: Db) {
    let env = TestEnv::new(db).await;
    let orders = env.write("online_retail.csv", ONLINE_RETAIL);
    let file = orders.to_str().unwrap();
    let out = env.patron(&["import", "orders", file, "--source", "uci"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--file-currency GBP"),
        "a file without a currency says how to give one: {}",
        stderr(&out)
    );

    let out = env.patron_ok(&[
        "import",
        "orders",
        file,
        "--source",
        "uci",
        "--file-currency",
        "GBP",
    ]);
    assert!(out.contains("read 6, stored 2, rejected 4"), "{out}");
    assert!(
        out.contains("unknown columns ignored: Description, Country"),
        "the other columns are found by their names: {out}"
    );
    assert!(
        out.contains("2 customers these orders name have no customer record")
            && out.contains("--customers-from-orders"),
        "{out}"
    );
    let rejected = csv_rows(&env.patron_ok(&["quarantine", "list"]));
    let reason = |field: &str| -> Vec<String> {
        rejected
            .iter()
            .filter(|r| r["field"] == field)
            .map(|r| r["reason"].clone())
            .collect()
    };
    let dates = reason("placed_at");
    assert_eq!(
        dates.len(),
        2,
        "12/1/2010 is 1 December or 12 January: {rejected:?}"
    );
    assert!(
        dates.iter().all(|r| r.contains("--date-order")),
        "{dates:?}"
    );
    assert!(
        reason("quantity")[0].contains("return or cancellation"),
        "{rejected:?}"
    );
    assert_eq!(reason("customer_source_id").len(), 1, "{rejected:?}");

    let out = env.patron_ok(&[
        "import",
        "orders",
        file,
        "--source",
        "uci",
        "--file-currency",
        "GBP",
        "--date-order",
        "mdy",
        "--customers-from-orders",
    ]);
    assert!(out.contains("read 6, stored 4, rejected 2"), "{out}");
    assert!(
        out.contains("2 customers these orders name had no customer record: each is now a record"),
        "{out}"
    );
    let rejected = csv_rows(&env.patron_ok(&["quarantine", "list"]));
    assert_eq!(
        rejected.len(),
        2,
        "the dates read now leave the quarantine: {rejected:?}"
    );

    let out = env.patron_ok(&["run"]);
    assert!(
        out.contains("most orders are in GBP, not the reporting currency USD"),
        "{out}"
    );
    env.patron_ok(&["run", "--currency", "GBP"]);
    let links = csv_rows(&env.patron_ok(&["export", "links"]));
    assert_eq!(links.len(), 2, "{links:?}");
    let profile =
        |sid: &str| links.iter().find(|l| l["source_id"] == sid).unwrap()["customer_id"].clone();
    let metrics = csv_rows(&env.patron_ok(&["export", "metrics"]));
    let first = metrics
        .iter()
        .find(|m| m["customer_id"] == profile("17850"))
        .unwrap();
    assert_eq!(first["frequency"], "2", "1 and 13 December: {first:?}");
    assert_eq!(first["monetary"], "46.74", "6 × 2.55 + 6 × 3.39 + 6 × 1.85");

    // The customer file arriving later fills in the record its orders made.
    let customers = env.write(
        "customers.csv",
        "Customer ID,Name,Email\n17850,Ann Lee,ann@example.com\n",
    );
    let path = customers.to_str().unwrap();
    let out = env.patron_ok(&["import", "customers", path, "--source", "uci"]);
    assert!(
        out.contains("1 records known only by the id their orders gave are filled in"),
        "{out}"
    );
    env.patron_ok(&["run", "unify"]);
    let profiles = csv_rows(&env.patron_ok(&["export", "profiles"]));
    let ann = profiles
        .iter()
        .find(|p| p["customer_id"] == profile("17850"))
        .unwrap();
    assert_eq!(
        ann["email"], "ann@example.com",
        "the same profile, filled in"
    );
    assert_eq!(ann["records"], "1");
}

/// Olist's order items joined to its orders: one row per unit bought, no quantity column,
/// marketplace status words, a `price` column.
#[tokio::test]
async fn order_items_one_row_per_unit_import_as_summed_lines() {
    let env = TestEnv::new(Db::Sqlite).await;
    let items = env.write(
        "olist.csv",
        "order_id,order_item_id,product_id,seller_id,price,freight_value,customer_id,order_status,order_purchase_timestamp\n\
         e481f5,1,872850,3504c0,29.99,8.72,9ef432,delivered,2017-10-02 10:56:33\n\
         53cdb2,1,595fac,289cdb,118.70,22.76,b0830f,delivered,2018-07-24 20:41:37\n\
         53cdb2,2,595fac,289cdb,118.70,22.76,b0830f,delivered,2018-07-24 20:41:37\n\
         47770e,1,aa4383,4869f7,159.90,19.22,41ce2a,unavailable,2018-08-08 08:38:49\n\
         949d5b,1,d0b61b,66922f,45.00,27.20,f88197,processing,2017-11-18 19:28:06\n",
    );
    let out = env.patron_ok(&[
        "import",
        "orders",
        items.to_str().unwrap(),
        "--source",
        "olist",
        "--file-currency",
        "BRL",
        "--map",
        "order_item_id=-",
        "--map",
        "seller_id=-",
        "--map",
        "freight_value=-",
        "--customers-from-orders",
    ]);
    assert!(out.contains("read 5, stored 5, rejected 0"), "{out}");
    assert!(!out.contains("unknown columns"), "{out}");
    assert!(out.contains("4 customers these orders name"), "{out}");
    let quantity = env
        .scalar("SELECT quantity FROM order_lines WHERE order_id = '53cdb2'")
        .await;
    assert_eq!(
        quantity, 2,
        "two rows of one product are one line of two units"
    );
    let cancelled = env
        .scalar("SELECT COUNT(*) FROM orders WHERE status = 'cancelled'")
        .await;
    assert_eq!(cancelled, 1, "an unavailable order was never fulfilled");
    let out = env.patron_ok(&["run", "--currency", "BRL"]);
    assert!(
        out.contains("orders used 3, cancelled or refunded orders left out 1"),
        "{out}"
    );
}

#[tokio::test]
async fn a_rejected_row_exported_with_the_file_currency_imports_once_fixed() {
    let env = TestEnv::new(Db::Sqlite).await;
    let orders = env.write(
        "orders.csv",
        "source,order_id,customer_source_id,placed_at,Currency,product_id,quantity,unit_price\n\
         web,o1,c1,2024-01-02,,p1,two,5.00\n",
    );
    let file = orders.to_str().unwrap();
    let out = env.patron_ok(&["import", "orders", file, "--file-currency", "EUR"]);
    assert!(out.contains("rejected 1"), "{out}");
    let fix = env.data_dir().join("fix.csv");
    let fix = fix.to_str().unwrap();
    env.patron_ok(&["quarantine", "export", "--kind", "orders", "--out", fix]);
    let exported = std::fs::read_to_string(fix).unwrap();
    assert!(
        exported.starts_with("currency,") && exported.contains("EUR"),
        "the file's own blank column gives way to the currency given: {exported}"
    );
    std::fs::write(fix, exported.replace(",two,", ",2,")).unwrap();
    let out = env.patron_ok(&["import", "orders", fix]);
    assert!(out.contains("read 1, stored 1, rejected 0"), "{out}");
    assert_eq!(csv_rows(&env.patron_ok(&["quarantine", "list"])).len(), 0);
}

#[tokio::test]
async fn an_orders_only_export_imports_and_scores_on_sqlite() {
    an_orders_only_export_imports_and_scores(Db::Sqlite).await;
}

#[tokio::test]
async fn an_orders_only_export_imports_and_scores_on_postgres() {
    an_orders_only_export_imports_and_scores(Db::Postgres).await;
}

#[tokio::test]
async fn a_gzipped_gb18030_semicolon_file_with_its_own_column_names_imports() {
    let env = TestEnv::new(Db::Sqlite).await;
    let text = "Quelle;Kundennummer;姓名;E-mail;Mobile;Date of Birth;Country\n\
                pos;K1;张伟;ZHANG.WEI@EXAMPLE.CN;138 0013 8000;1990年1月2日;中国\n\
                pos;K2;李娜;li.na@example.cn;+86 139 0013 9000;1991-03-04;CN\n";
    let (gb, _, _) = encoding_rs::GB18030.encode(text);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &gb).unwrap();
    let path = env.data_dir().join("kunden.csv.gz");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let out = env.patron_ok(&[
        "import",
        "customers",
        path.to_str().unwrap(),
        "--map",
        "Quelle=source",
        "--map",
        "Kundennummer=source_id",
        "--map",
        "姓名=name",
    ]);
    assert!(
        out.contains("(CSV (';'-separated), gb18030, gzip): read 2, stored 2, rejected 0"),
        "{out}"
    );
    env.patron_ok(&["run", "unify"]);
    let profiles = csv_rows(&env.patron_ok(&["export", "profiles"]));
    let zhang = profiles
        .iter()
        .find(|p| p["name"] == "张伟")
        .expect("name decoded from GB18030");
    assert_eq!(zhang["email"], "zhang.wei@example.cn");
    assert_eq!(zhang["phone"], "+8613800138000");
    assert_eq!(zhang["birth_date"], "1990-01-02");
    assert_eq!(zhang["country"], "CN");
}

#[tokio::test]
async fn json_lines_import_with_nested_fields_and_bad_lines() {
    let env = TestEnv::new(Db::Sqlite).await;
    let path = env.write(
        "customers.jsonl",
        "{\"source\":\"app\",\"source_id\":\"u1\",\"email\":\"Kim@Example.com\",\"address\":{\"city\":\"Seoul\",\"country\":\"KR\"},\"vip\":true,\"tier\":\"gold\"}\n\
         \n\
         {\"source\":\"app\",\"source_id\":\"u2\",\"phone\":\"+82 10-1234-5678\"}\n\
         {not json}\n\
         [1,2]\n\
         {\"source\":\"app\",\"email\":\"no-id@example.com\"}\n\
         {\"source\":\"app\",\"source_id\":\"u3\",\"phone\":\"\",\"mobile\":\"+82 10-9999-0000\"}\n\
         {\"source\":\"app\",\"source_id\":\"u4\",\"phone\":\"+82 10 1111 2222\",\"mobile\":\"+82 10 3333 4444\"}\n\
         {\"source\":\"app\",\"id\":\"u5\",\"email\":\"bare-id@example.com\"}\n\
         {\"source\":\"app\",\"customer_id\":null,\"id\":\"line-9\",\"email\":\"null-id@example.com\"}\n",
    );
    let out = env.patron_ok(&[
        "import",
        "customers",
        path.to_str().unwrap(),
        "--map",
        "address.city=city",
        "--map",
        "address.country=country",
        "--map",
        "tier=-",
    ]);
    assert!(
        out.contains("(JSON Lines, UTF-8): read 9, stored 4, rejected 5"),
        "{out}"
    );
    // Two keys holding one field: a blank one gives way, two values are refused.
    let rejected = csv_rows(&env.patron_ok(&["quarantine", "list"]));
    assert!(
        rejected
            .iter()
            .any(|r| r["reason"].contains("keys \"mobile\" and \"phone\" both hold phone")),
        "{rejected:?}"
    );
    // A key ignored on purpose is not reported as unknown; a bare `id` is the record's id
    // unless another key holds it, even as null (that row has no id, and is rejected).
    assert!(out.contains("unknown columns ignored: id, vip"), "{out}");
    assert!(!out.contains("tier"), "{out}");
    env.patron_ok(&["run", "unify"]);
    let profiles = csv_rows(&env.patron_ok(&["export", "profiles"]));
    assert_eq!(profiles.len(), 4);
    assert!(profiles.iter().any(|p| p["phone"] == "+821099990000"));
    let links = csv_rows(&env.patron_ok(&["export", "links"]));
    assert!(links.iter().any(|l| l["source_id"] == "u5"), "{links:?}");
    assert!(
        !links.iter().any(|l| l["source_id"] == "line-9"),
        "{links:?}"
    );
    let kim = profiles
        .iter()
        .find(|p| p["email"] == "kim@example.com")
        .unwrap();
    assert_eq!(
        (kim["city"].as_str(), kim["country"].as_str()),
        ("Seoul", "KR")
    );
    assert!(profiles.iter().any(|p| p["phone"] == "+821012345678"));
}

/// FEBRL's columns import without a map: `rec_id`, `address_1` and `suburb` hold their
/// fields because no other column does; beside a `city` column, `suburb` is only unknown.
#[tokio::test]
async fn fallback_spellings_hold_a_field_only_when_nothing_else_does() {
    let env = TestEnv::new(Db::Sqlite).await;
    let febrl = env.write(
        "febrl.csv",
        "rec_id, given_name, surname, street_number, address_1, suburb, postcode\n\
         rec-1-org, mitchell, green, 7, wallaby place, delmar, 2119\n",
    );
    let out = env.patron_ok(&[
        "import",
        "customers",
        febrl.to_str().unwrap(),
        "--source",
        "f",
    ]);
    assert!(out.contains("stored 1"), "{out}");
    assert!(
        out.contains("unknown columns ignored: street_number\n"),
        "{out}"
    );
    assert!(out.contains("city "), "{out}");
    let both = env.write(
        "both.csv",
        "customer_id,name,city,suburb\nc1,Ann Lee,Sydney,Bondi\n",
    );
    let out = env.patron_ok(&[
        "import",
        "customers",
        both.to_str().unwrap(),
        "--source",
        "f",
    ]);
    assert!(out.contains("unknown columns ignored: suburb"), "{out}");
}

#[tokio::test]
async fn a_mapping_to_an_unknown_column_is_a_clear_error() {
    let env = TestEnv::new(Db::Sqlite).await;
    let path = env.write("c.csv", "Kunde,Mail\n1,a@example.com\n");
    let err = stderr(&env.patron(&[
        "import",
        "customers",
        path.to_str().unwrap(),
        "--map",
        "Mail=mailbox",
    ]));
    assert!(err.contains("'mailbox' is not a customers column"), "{err}");
    let err = stderr(&env.patron(&["import", "customers", path.to_str().unwrap()]));
    assert!(
        err.contains("missing required column 'source'") && err.contains("--map"),
        "{err}"
    );
    let err = stderr(&env.patron(&[
        "import",
        "customers",
        path.to_str().unwrap(),
        "--encoding",
        "klingon",
    ]));
    assert!(err.contains("unknown encoding"), "{err}");
}

#[tokio::test]
async fn gmail_aliases_unify_and_pinyin_finds_chinese_names() {
    let env = TestEnv::new(Db::Sqlite).await;
    let path = env.write(
        "c.csv",
        "source,source_id,name,email\n\
         web,1,\"ZHANG, Wei\",Zhang.Wei+shop@gmail.com\n\
         app,2,Mr. Wei Zhang,zhangwei@googlemail.com\n\
         wechat,3,李娜先生,\n",
    );
    env.patron_ok(&["import", "customers", path.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    let links = csv_rows(&env.patron_ok(&["export", "links"]));
    assert_eq!(
        links[0]["customer_id"], links[1]["customer_id"],
        "one Gmail mailbox"
    );
    let profiles = csv_rows(&env.patron_ok(&["export", "profiles"]));
    let email = &profiles
        .iter()
        .find(|p| p["customer_id"] == links[0]["customer_id"])
        .unwrap()["email"];
    assert!(
        ["zhang.wei+shop@gmail.com", "zhangwei@googlemail.com"].contains(&email.as_str()),
        "addresses are stored as given, only matched folded: {email}"
    );
    assert!(
        profiles.iter().any(|p| p["name"] == "李娜"),
        "honorific dropped"
    );

    let store = env.store().await;
    let clean = patron_domain::CleanConfig::default();
    for q in ["Li Na", "na li", "李娜", "LI NA"] {
        let found = store.search(q, &clean, 10).await.unwrap();
        assert_eq!(found.len(), 1, "{q}");
        assert_eq!(found[0].name.as_deref(), Some("李娜"), "{q}");
    }
    let found = store
        .search("zhangwei@gmail.com", &clean, 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn quarantined_rows_are_listed_exported_fixed_and_resolved() {
    let env = TestEnv::new(Db::Sqlite).await;
    let path = env.write(
        "c.csv",
        "Quelle,source_id,email,phone,country\n\
         web,1,ann(at)example.com,+1 415 555 2671,US\n\
         web,2,bob@example.com,12345,US\n\
         web,,nobody@example.com,,\n",
    );
    env.patron_ok(&[
        "import",
        "customers",
        path.to_str().unwrap(),
        "--map",
        "Quelle=source",
    ]);
    let list = csv_rows(&env.patron_ok(&["quarantine", "list", "--kind", "customers"]));
    assert_eq!(list.len(), 3, "{list:?}");
    let email = list.iter().find(|r| r["field"] == "email").unwrap();
    assert_eq!(email["value"], "ann(at)example.com");
    assert_eq!(
        (
            email["source_id"].as_str(),
            email["row"].as_str(),
            email["whole_row"].as_str()
        ),
        ("1", "1", "false")
    );
    let phone = list.iter().find(|r| r["field"] == "phone").unwrap();
    assert_eq!(phone["reason"], "not a valid number for its country");
    // The raw row is kept only where something is to be fixed: no second copy of the
    // personal data of clean records.
    let with_raw = "SELECT COUNT(*) FROM source_records WHERE raw_enc IS NOT NULL";
    assert_eq!(env.scalar(with_raw).await, 2);
    let whole = list.iter().find(|r| r["whole_row"] == "true").unwrap();
    assert_eq!(
        (whole["field"].as_str(), whole["row"].as_str()),
        ("source_id", "3")
    );

    let (out, fix) = export_customer_quarantine(&env);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = csv_rows(&std::fs::read_to_string(&fix).unwrap());
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.contains_key("Quelle")),
        "original column names"
    );
    let fixed = std::fs::read_to_string(&fix)
        .unwrap()
        .replace("ann(at)example.com", "ann@example.com")
        .replace("12345", "+1 212 555 0199");
    std::fs::write(&fix, fixed).unwrap();
    env.patron_ok(&[
        "import",
        "customers",
        fix.to_str().unwrap(),
        "--map",
        "Quelle=source",
    ]);
    let list = csv_rows(&env.patron_ok(&["quarantine", "list"]));
    assert_eq!(
        list.len(),
        1,
        "fixed records resolve their entries: {list:?}"
    );
    assert_eq!(list[0]["field"], "source_id");
    assert_eq!(
        env.scalar(with_raw).await,
        0,
        "fixed records keep no raw row"
    );
    env.patron_ok(&["run", "unify"]);
    let profiles = csv_rows(&env.patron_ok(&["export", "profiles"]));
    assert!(profiles.iter().any(|p| p["email"] == "ann@example.com"));
    assert!(profiles.iter().any(|p| p["phone"] == "+12125550199"));
}

#[tokio::test]
async fn shopify_customer_and_order_exports_import_and_link() {
    let env = TestEnv::new(Db::Sqlite).await;
    let customers = env.write(
        "customers_export.csv",
        "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,Default Address Address1,Default Address Address2,Default Address City,Default Address Province Code,Default Address Country Code,Default Address Zip,Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,Tax Exempt,Tags\n\
         '7001,Ann,Lee,ann@example.com,yes,,1 Main St,,Oakland,CA,US,94601,,'+14155552671,no,93.50,2,,no,vip\n\
         '7002,Bob,Stone,bob@example.com,no,,,,London,,GB,,,,no,0.00,0,,no,\n",
    );
    let old_form = env.write(
        "customers_old.csv",
        "First Name,Last Name,Email,Company,Address1,Address2,City,Province,Province Code,Country,Country Code,Zip,Phone,Accepts Marketing,Total Spent,Total Orders,Tags,Note,Tax Exempt\n\
         Cai,Lin,cai@example.cn,,,,Shanghai,,,China,CN,,,no,0,0,,,no\n",
    );
    let orders = env.write(
        "orders_export.csv",
        "Name,Email,Financial Status,Paid at,Fulfillment Status,Currency,Subtotal,Total,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Billing Name,Billing City,Billing Country,Billing Phone,Cancelled at,Vendor\n\
         #1001,ANN@example.com,paid,2024-05-01 10:00:00 -0700,fulfilled,USD,59.00,59.00,2024-05-01 10:00:00 -0700,2,Green Tea,9.50,TEA-1,Ann Lee,Oakland,US,,,Tea Garden\n\
         #1001,,,,,,,,,1,Teapot,40.00,POT-1,,,,,,Copperline\n\
         #1002,new@example.com,refunded,,,USD,25.00,25.00,2024-06-01 09:00:00 +0000,1,Yoga Mat,25.00,MAT-1,Dee New,Paris,FR,,,Summit\n\
         #1003,bob@example.com,voided,,,USD,9.50,9.50,2024-06-02 09:00:00 +0000,1,Green Tea,9.50,TEA-1,Bob Stone,London,GB,,2024-06-02 10:00:00 +0000,Tea Garden\n",
    );
    let out = env.patron_ok(&["import", "customers", customers.to_str().unwrap()]);
    assert!(
        out.contains("Shopify customer export): read 2, stored 2, rejected 0"),
        "{out}"
    );
    let out = env.patron_ok(&["import", "customers", old_form.to_str().unwrap()]);
    assert!(out.contains("read 1, stored 1"), "{out}");
    let out = env.patron_ok(&["import", "orders", orders.to_str().unwrap()]);
    assert!(
        out.contains("Shopify order export): read 4, stored 4, rejected 0"),
        "{out}"
    );
    assert!(
        out.contains("3 buyer records taken from the orders"),
        "{out}"
    );
    env.patron_ok(&["run"]);

    let store = env.store().await;
    let clean = patron_domain::CleanConfig::default();
    let ann = &store.search("ann@example.com", &clean, 5).await.unwrap()[0];
    assert_eq!(
        ann.records, 2,
        "the customer export and the order's buyer are one person"
    );
    assert_eq!(ann.phone.as_deref(), Some("+14155552671"));
    let detail = store.customer(ann.customer_id).await.unwrap().unwrap();
    assert_eq!(detail.order_summary.orders, 1);
    assert_eq!(
        detail.order_summary.spend,
        vec![("USD".to_owned(), 5_900)],
        "both lines of #1001"
    );
    let bob = &store.search("bob@example.com", &clean, 5).await.unwrap()[0];
    let detail = store.customer(bob.customer_id).await.unwrap().unwrap();
    assert_eq!(
        (
            detail.order_summary.orders,
            detail.order_summary.reversed_orders
        ),
        (0, 1),
        "cancelled"
    );
    let dee = &store.search("new@example.com", &clean, 5).await.unwrap()[0];
    assert_eq!(dee.name.as_deref(), Some("Dee New"));
    let cai = &store.search("cai@example.cn", &clean, 5).await.unwrap()[0];
    assert_eq!(cai.country.as_deref(), Some("CN"));
}

#[tokio::test]
async fn quoted_fields_with_newlines_commas_and_quotes_import() {
    let env = TestEnv::new(Db::Sqlite).await;
    let path = env.write(
        "c.csv",
        "source,source_id,name,address_line1,email\n\
         web,1,\"Lee, Ann\",\"1 Main St\nApt 2\",ann@example.com\n\
         web,2,\"Bob \"\"Bobby\"\" Stone\",,bob@example.com\n",
    );
    let out = env.patron_ok(&["import", "customers", path.to_str().unwrap()]);
    assert!(out.contains("read 2, stored 2, rejected 0"), "{out}");
    env.patron_ok(&["run", "unify"]);
    let profiles = csv_rows(&env.patron_ok(&["export", "profiles"]));
    let names: Vec<&str> = profiles.iter().map(|p| p["name"].as_str()).collect();
    assert_eq!(names, vec!["Ann Lee", "Bob \"Bobby\" Stone"]);
}

#[tokio::test]
async fn a_truncated_gzip_file_is_an_error_not_a_partial_success() {
    let env = TestEnv::new(Db::Sqlite).await;
    for (name, header, line) in [
        (
            "c.jsonl.gz",
            "",
            "{\"source\":\"web\",\"source_id\":\"ID\",\"email\":\"pID@example.com\"}\n",
        ),
        (
            "c.csv.gz",
            "source,source_id,email\n",
            "web,ID,pID@example.com\n",
        ),
    ] {
        let mut text = header.to_owned();
        for i in 0..20_000 {
            text.push_str(&line.replace("ID", &i.to_string()));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let path = env.data_dir().join(name);
        std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let out = env.patron(&["import", "customers", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name}");
        assert!(
            stderr(&out).contains("cannot read the file after row"),
            "{name}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn fixing_one_line_of_an_order_keeps_its_other_lines() {
    let env = TestEnv::new(Db::Sqlite).await;
    let customers = env.write("c.csv", "source,source_id,email\nweb,1,kim@example.com\n");
    env.patron_ok(&["import", "customers", customers.to_str().unwrap()]);
    let orders = env.write(
        "o.csv",
        "source,order_id,customer_source_id,placed_at,currency,product_id,quantity,unit_price\n\
         web,o1,1,2024-05-01,USD,tea,1,9.50\n\
         web,o1,1,2024-05-01,USD,pot,1,forty\n\
         web,o1,1,2024-05-01,USD,tea,2,9.50\n",
    );
    let out = env.patron_ok(&["import", "orders", orders.to_str().unwrap()]);
    assert!(out.contains("read 3, stored 2, rejected 1"), "{out}");
    let fix = env.data_dir().join("fix.csv");
    env.patron_ok(&[
        "quarantine",
        "export",
        "--kind",
        "orders",
        "--out",
        fix.to_str().unwrap(),
    ]);
    let fixed = std::fs::read_to_string(&fix)
        .unwrap()
        .replace("forty", "40.00");
    std::fs::write(&fix, fixed).unwrap();
    env.patron_ok(&["import", "orders", fix.to_str().unwrap()]);
    assert!(
        csv_rows(&env.patron_ok(&["quarantine", "list"])).is_empty(),
        "the fix resolved it"
    );
    env.patron_ok(&["run"]);
    let store = env.store().await;
    let kim = &store
        .search("kim@example.com", &Default::default(), 1)
        .await
        .unwrap()[0];
    let detail = store.customer(kim.customer_id).await.unwrap().unwrap();
    // Tea twice (1 + 2) at 9.50 and the fixed teapot: nothing overwritten, nothing lost.
    assert_eq!(
        detail.order_summary.spend,
        vec![("USD".to_owned(), 3 * 950 + 4_000)]
    );
}

/// A shop's export with local phone numbers and no country column: the phones are
/// quarantined with a reason that says what to do, the import says it too, and importing
/// again with a default region keeps them.
#[tokio::test]
async fn local_phones_without_a_country_point_to_the_default_region() {
    let env = TestEnv::new(Db::Sqlite).await;
    let file = env.write(
        "local.csv",
        "source,source_id,name,phone\nweb,1,Ann Lee,(415) 555-2671\nweb,2,Bo Lin,+44 20 7946 0018\n",
    );
    let out = env.patron_ok(&["import", "customers", file.to_str().unwrap()]);
    assert!(out.contains("(quarantined: phone 1)"), "{out}");
    assert!(
        out.contains("1 phones have no country code") && out.contains("--default-region"),
        "{out}"
    );
    let listed = csv_rows(&env.patron_ok(&["quarantine", "list"]));
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0]["reason"].contains("set a default region"),
        "{listed:?}"
    );

    let out = env.patron_ok(&[
        "--default-region",
        "US",
        "import",
        "customers",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.contains("stored 2, rejected 0, 0 stored with fields quarantined"),
        "{out}"
    );
    assert!(!out.contains("no country code"), "{out}");
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM source_records WHERE phone_hash IS NOT NULL")
            .await,
        2
    );
}

/// The same home written two ways (an abbreviated street type, a postal code with and
/// without its space) compares as the same street and postal code.
#[tokio::test]
async fn an_abbreviated_street_and_a_spaced_postal_code_agree_exactly() {
    let env = TestEnv::new(Db::Sqlite).await;
    let file = env.write(
        "homes.csv",
        "source,source_id,name,address_line1,postal_code,city,country\n\
         web,a,Ann Lee,12 Main St.,SW1A 1AA,London,GB\n\
         pos,b,Ann Lee,\"12, Main Street\",sw1a1aa,London,GB\n\
         web,c,Bo Lin,1 High St,N1 9GU,London,GB\n",
    );
    env.patron_ok(&["import", "customers", file.to_str().unwrap()]);
    env.patron_ok(&["run", "unify"]);
    let explained: serde_json::Value =
        serde_json::from_str(&env.patron_ok(&["explain", "web:a", "pos:b"])).unwrap();
    let level = |field: &str| {
        explained["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == field)
            .unwrap()["level"]
            .clone()
    };
    assert_eq!(level("address"), "exact", "{explained}");
    assert_eq!(level("postal_code"), "exact", "{explained}");
}

/// Exports from other systems: no source column, a second column for one field, one person
/// on two rows, Latin-1 text, a JSON Lines file from a Windows editor. Each is stored or
/// refused with a message that says what to do; nothing is dropped unmentioned.
#[tokio::test]
async fn other_systems_exports_are_stored_or_refused_with_what_to_do() {
    let env = TestEnv::new(Db::Sqlite).await;
    let import = |file: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["import", "customers", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        env.patron(&args)
    };

    // No source column: refused with the option that supplies it, then stored with it.
    let till = env.write(
        "till.csv",
        "Customer No.,Name,E-mail\nC1,Ann Lee,ann@example.com\nC2,Bo Lin,bo(at)example.com\n",
    );
    let out = import(&till, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--source"), "{}", stderr(&out));
    let out = import(&till, &["--source", "pos"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM source_records WHERE source = 'pos' AND source_id = 'C1'")
            .await,
        1
    );
    // The row kept for fixing carries the source it was given, so it imports again alone.
    let (_, fix) = export_customer_quarantine(&env);
    let rows = csv_rows(&std::fs::read_to_string(fix).unwrap());
    assert_eq!(rows[0]["source"], "pos", "{rows:?}");

    // A row with nothing that says who it is: rejected with that reason, not an empty profile.
    let blank = env.write("blank.csv", "source,source_id,name,gender\nweb,B1,   ,F\n");
    let out = String::from_utf8(import(&blank, &[]).stdout).unwrap();
    assert!(out.contains("stored 0, rejected 1"), "{out}");

    // Two columns for one field: refused whole, nothing stored, the way out named.
    let two = env.write(
        "two.csv",
        "source,source_id,name,Phone,Mobile\nweb,T1,Bo Lin,+1 415 555 0100,+1 415 555 0101\n",
    );
    let out = import(&two, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("both hold phone") && err.contains("--map 'Mobile=-'"),
        "{err}"
    );
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM source_records WHERE source_id = 'T1'")
            .await,
        0
    );
    assert!(import(&two, &["--map", "Mobile=-"]).status.success());
    let same = env.write(
        "same.csv",
        "source,source_id,email,email\nweb,S1,a@example.com,b@example.com\n",
    );
    let err = stderr(&import(&same, &[]));
    assert!(
        err.contains("columns 3 and 4 both hold email") && err.contains("rename"),
        "{err}"
    );

    // One id on two rows: the later row replaces the earlier, and the summary says so.
    let rows = env.write(
        "rows.csv",
        "source,source_id,name,email,phone\nweb,X1,Ann Lee,ann@example.com,\nweb,X1,,,+14155550177\n",
    );
    let out = String::from_utf8(import(&rows, &[]).stdout).unwrap();
    assert!(
        out.contains("1 rows repeat the source and id") && out.contains("web:X1"),
        "{out}"
    );

    // Latin-1 read as UTF-8: rejected with the encoding option named; read right with it.
    let path = env.data_dir().join("latin1.csv");
    std::fs::write(
        &path,
        b"source,source_id,name\nweb,L1,J\xfcrgen M\xfcller\n",
    )
    .unwrap();
    let out = String::from_utf8(import(&path, &["--encoding", "utf-8"]).stdout).unwrap();
    assert!(
        out.contains("rejected 1") && out.contains("--encoding"),
        "{out}"
    );
    let out = String::from_utf8(import(&path, &["--encoding", "windows-1252"]).stdout).unwrap();
    assert!(out.contains("stored 1, rejected 0"), "{out}");

    // JSON Lines with a byte order mark: the first row is a row like the others.
    let path = env.data_dir().join("bom.jsonl");
    std::fs::write(
        &path,
        "\u{feff}{\"source\":\"app\",\"source_id\":\"J1\",\"name\":\"Ann Lee\"}\r\n\
         {\"source\":\"app\",\"source_id\":\"J2\",\"name\":\"Bo Lin\"}\r\n",
    )
    .unwrap();
    let out = String::from_utf8(import(&path, &[]).stdout).unwrap();
    assert!(out.contains("read 2, stored 2, rejected 0"), "{out}");
}

/// `patron import FILE | head` or `patron export links | head` closes the pipe early: the
/// command ends quietly, as a shell tool does, not with a panic or an error.
#[tokio::test]
async fn a_reader_that_stops_early_ends_the_command_quietly() {
    let env = TestEnv::new(Db::Sqlite).await;
    let file = env.write("c.csv", "source,source_id,name\nweb,1,Ann Lee\n");
    for args in [
        vec!["import", "customers", file.to_str().unwrap()],
        vec!["export", "links"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_patron"))
            .arg("--data-dir")
            .arg(env.data_dir())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
        // 141 is a SIGPIPE's status; 0 if the output fitted in the pipe before it closed.
        assert!(
            matches!(out.status.code(), Some(0 | 141)),
            "{args:?}: {:?}",
            out.status
        );
    }
}
