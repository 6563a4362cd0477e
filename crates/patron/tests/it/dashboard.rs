//! The dashboard over real HTTPS with a cookie-keeping client: sign-in, overview, search,
//! customer page.

use crate::helpers::{spawn_app_with_fixtures, Db};
use patron_domain::Role;
use reqwest::StatusCode;

#[tokio::test]
async fn sign_in_search_and_open_a_customer() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    app.store
        .upsert_user("maria", "correct horse battery", Role::Agent)
        .await
        .unwrap();

    let resp = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/login");

    let wrong = app
        .client
        .post(app.url("/login"))
        .form(&[("username", "maria"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("Wrong user name or password"));

    let ok = app
        .client
        .post(app.url("/login"))
        .form(&[("username", "maria"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attr), "{cookie}");
    }

    let page = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<b id=\"count-customers\">3</b>"), "{page}");
    // 84.00 (Ann) + 9.50 (Bob) + 25.00 (an order of an unknown customer): all completed sales.
    assert!(page.contains("118.50"), "revenue is shown: {page}");

    let page = app
        .client
        .get(app.url("/?q=ann.lee%40example.com"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("1 customer found"), "{page}");
    let href = page
        .split("href=\"/customers/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = app
        .client
        .get(app.url(&format!("/customers/{href}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"customer-name\">Ann L.</h1>"), "{page}");
    assert!(page.contains("ann.lee@example.com"));

    // Markup in data is escaped, never interpreted.
    let q = "<script>alert(1)</script>";
    let page = app
        .client
        .get(app.url("/"))
        .query(&[("q", q)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains(q) && page.contains("&lt;script&gt;"),
        "{page}"
    );

    let out = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let resp = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "signed out");
}
