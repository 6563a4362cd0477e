//! Shared test scaffolding: databases, the CLI runner, `spawn_app()`, and small CSV fixtures.

use patron_domain::{CleanConfig, Role};
use patron_server::{AppState, TlsSetting};
use patron_store::{Store, StoreConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A data directory plus, for PostgreSQL, a freshly created database.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

impl TestEnv {
    pub async fn new(db: Db) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(fresh_postgres_database().await),
        };
        TestEnv { dir, database_url }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            data_dir: self.dir.path().to_owned(),
            database_url: self.database_url.clone(),
            master_key: None,
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.store_config()).await.expect("open store")
    }

    /// Runs the real `patron` binary against this environment.
    pub fn patron(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patron"));
        cmd.arg("--data-dir").arg(self.dir.path());
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.args(args)
            .env_remove("PATRON_DATABASE_URL")
            .env_remove("PATRON_MASTER_KEY")
            .env_remove("PATRON_DATA_DIR")
            .output()
            .expect("run patron")
    }

    /// Runs `patron` and asserts it succeeded; returns standard output.
    pub fn patron_ok(&self, args: &[&str]) -> String {
        let out = self.patron(args);
        assert!(
            out.status.success(),
            "patron {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// The bytes of the SQLite database files (main file and WAL), to search for values
    /// that must never be stored in clear.
    pub fn database_bytes(&self) -> Vec<u8> {
        // The last connection to close checkpoints and removes the WAL; a file that vanished
        // while being read means its content moved into the main file, so read them again.
        'again: loop {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(self.data_dir()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("patron.db") {
                    match std::fs::read(path) {
                        Ok(b) => bytes.extend(b),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue 'again,
                        Err(e) => panic!("read {name}: {e}"),
                    }
                }
            }
            return bytes;
        }
    }

    /// A connection straight to the test's database, bypassing Patron.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir().join("patron.db").display()));
        sqlx::AnyConnection::connect(&url).await.expect("connect")
    }

    /// The integer a one-value SQL query returns, read straight from the database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Row;
        let mut conn = self.connect().await;
        let row = sqlx::query(sql).fetch_one(&mut conn).await.expect(sql);
        row.try_get(0).expect("an integer")
    }

    /// Every non-null value of every column of `sql`'s rows, as bytes (blobs as they are).
    pub async fn blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        use sqlx::Row;
        let mut conn = self.connect().await;
        let rows = sqlx::query(sql).fetch_all(&mut conn).await.expect(sql);
        rows.iter()
            .flat_map(|r| {
                (0..r.columns().len())
                    .filter_map(|i| r.try_get::<Option<Vec<u8>>, _>(i).ok().flatten())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Runs statements straight on the database, as someone with the file or a database login
    /// could; returns the database's error message on failure.
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        let mut conn = self.connect().await;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The profile record `source:id` belongs to.
    pub async fn profile_of(&self, source: &str, id: &str) -> i64 {
        self.scalar(&format!(
            "SELECT customer_id FROM source_records WHERE source = '{source}' AND source_id = '{id}'"
        ))
        .await
    }

    /// Writes a fixture file into the data directory's parent-free area and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write fixture");
        path
    }
}

/// A server over a fresh data dir with the fixtures (products, customers, orders) imported
/// through the CLI and every stage run.
pub async fn spawn_app_with_fixtures(db: Db) -> TestApp {
    let env = TestEnv::new(db).await;
    for (kind, name, body) in [
        ("products", "p.csv", PRODUCTS),
        ("customers", "c.csv", CUSTOMERS),
        ("orders", "o.csv", ORDERS),
    ] {
        let path = env.write(name, body);
        env.patron_ok(&["import", kind, path.to_str().unwrap()]);
    }
    env.patron_ok(&["run"]);
    spawn_app(env).await
}

/// Creates an empty database on the test PostgreSQL server and returns its URL.
async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin_url = std::env::var("PATRON_TEST_DATABASE_URL").expect(
        "PostgreSQL tests need PATRON_TEST_DATABASE_URL (a role that may CREATE DATABASE); \
         scripts/test.sh installs and starts a server and sets it",
    );
    let name = format!("patron_test_{}", random_suffix());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin_url.rsplit_once('/').expect("URL with a database").0;
    format!("{base}/{name}")
}

fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A running server over real HTTPS, with an API key per role.
pub struct TestApp {
    pub env: TestEnv,
    pub base: String,
    pub client: reqwest::Client,
    pub keys: HashMap<Role, String>,
    pub store: Store,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_as(&self, role: Role, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.keys[&role])
            .send()
            .await
            .expect("request")
    }
}

/// Starts the real application (same `app()` as `patron serve`) on a free port with HTTPS
/// from a freshly generated self-signed certificate.
pub async fn spawn_app(env: TestEnv) -> TestApp {
    spawn_app_limited(env, patron_server::RateLimiter::new(0, 1)).await
}

/// [`spawn_app`] with rate limits per key.
pub async fn spawn_app_limited(env: TestEnv, limits: patron_server::RateLimiter) -> TestApp {
    let store = env.store().await;
    let mut keys = HashMap::new();
    for role in Role::ALL {
        keys.insert(role, store.create_api_key(role, None).await.unwrap());
    }
    let listener = patron_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = patron_server::tls_config(&TlsSetting::SelfSigned(env.data_dir().join("tls")))
        .await
        .unwrap();
    let app = patron_server::app(AppState {
        store: store.clone(),
        clean: CleanConfig::default(),
        secure_cookies: true,
        limits: std::sync::Arc::new(limits),
    });
    tokio::spawn(patron_server::serve(listener, tls, app));
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base: format!("https://localhost:{port}"),
        env,
        client,
        keys,
        store,
    }
}

/// Customers: Ann appears in web and pos (same email, different case), and again in the app
/// with only her phone, in another format; Bob once; one row without a source id, one with a
/// bad email and an impossible birth date.
pub const CUSTOMERS: &str = "\
source,source_id,name,email,phone,gender,birth_date,city,country,created_at,favourite_colour
web,w1,Ann Lee,ann.lee@example.com,+1 415 555 2671,F,1990-01-02,San Francisco,US,2024-01-01 10:00:00,blue
pos,p1,ANN LEE, Ann.Lee@Example.COM ,,female,01/02/1990,San Francisco,United States,2024-02-01 10:00:00,
app,a1,Ann L.,,(415) 555-2671,,,,US,2024-03-01 10:00:00,
web,w2,Bob Stone,bob@example.org,,M,1985-05-06,London,GB,2024-01-05 09:00:00,
web,,Nobody,nobody@example.org,,,,,,,
web,w3,Cai Lin,not-an-email,,男,1990-02-30,上海,中国,2024-04-01 09:00:00,
";

pub const PRODUCTS: &str = "\
product_id,sku,name,category,brand,price,currency,active
p1,S1,Green Tea,Grocery,Tea Garden,9.50,USD,true
p2,S2,Teapot,Kitchen,Copperline,40.00,USD,true
p3,S3,Yoga Mat,Sports,Summit,25.00,USD,true
p4,S4,Old Mug,Kitchen,Copperline,5.00,USD,false
";

/// Orders: Ann buys through web and pos, Bob once; one line with a bad price, one refunded
/// order, and one order of an unknown customer.
pub const ORDERS: &str = "\
source,order_id,customer_source_id,placed_at,status,currency,product_id,quantity,unit_price
web,o1,w1,2024-05-01T10:00:00Z,completed,USD,p1,2,9.50
web,o1,w1,2024-05-01T10:00:00Z,completed,USD,p2,1,40.00
pos,o2,p1,2024-06-01T10:00:00+08:00,completed,USD,p3,1,25.00
web,o3,w2,2024-06-15T10:00:00Z,completed,USD,p1,1,9.50
web,o4,w2,2024-06-20T10:00:00Z,refunded,USD,p2,1,40.00
web,o5,w2,2024-06-21T10:00:00Z,completed,USD,p3,1,25.999
web,o6,ghost,2024-06-22T10:00:00Z,completed,USD,p3,1,25.00
";

/// Parses CSV output into rows of (column → value).
pub fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .map(str::to_owned)
                .zip(rec.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}
