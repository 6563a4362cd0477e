//! The dashboard in a real browser: headless Chromium driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`, installed by scripts/test.sh), against the real server
//! over HTTPS.

use crate::helpers::{spawn_app_with_fixtures, Db};
use fantoccini::{ClientBuilder, Locator};
use patron_domain::Role;
use std::process::{Child, Command, Stdio};

/// A chromedriver process and a browser session; both end when dropped.
struct Browser {
    client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser() -> Browser {
    let driver_path =
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(&driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {driver_path}: {e}; install chromium and chromium-driver (scripts/test.sh does)")
        });
    let profile = tempfile::tempdir().unwrap();
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--window-size=1280,1000",
                // The test server's certificate is self-signed, as on a first run.
                "--ignore-certificate-errors",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver needs a moment to listen; retry the connection for up to ten seconds.
    let mut last_err = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Browser {
                    client,
                    driver,
                    _profile: profile,
                }
            }
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("cannot start a browser session: {last_err:?}");
}

fn save_screenshot(name: &str, png: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

#[tokio::test]
async fn an_agent_signs_in_searches_and_opens_a_customer_in_chromium() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    app.store
        .upsert_user("maria", "correct horse battery", Role::Agent)
        .await
        .unwrap();
    let b = browser().await;
    let c = &b.client;

    c.goto(&app.url("/")).await.unwrap();
    c.wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/login",
        "signed-out users are sent to sign in"
    );
    c.find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("maria")
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("correct horse battery")
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let count = c
        .wait()
        .for_element(Locator::Id("count-customers"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "3");
    save_screenshot("overview.png", &c.screenshot().await.unwrap());

    c.find(Locator::Css("input[name=q]"))
        .await
        .unwrap()
        .send_keys("+1 415 555 2671")
        .await
        .unwrap();
    c.find(Locator::Css("form[role=search] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let results = c
        .wait()
        .for_element(Locator::Id("results"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(results.contains("1 customer found"), "{results}");
    c.find(Locator::LinkText("Ann L."))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let name = c
        .wait()
        .for_element(Locator::Id("customer-name"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, "Ann L.");
    let page = c.source().await.unwrap();
    assert!(page.contains("ann.lee@example.com"));
    save_screenshot("customer.png", &c.screenshot().await.unwrap());
    b.client.clone().close().await.unwrap();
}
