//! The dashboard over real HTTPS with a cookie-keeping client: sign-in, overview, search,
//! customer page.

use crate::helpers::{spawn_app_with_fixtures, Db};
use patron_domain::Role;
use reqwest::StatusCode;

/// The anti-forgery token of the form on `page`.
fn form_token(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a token")
        + 19;
    page[at..at + 64].to_owned()
}

/// Signs in through the sign-in form, as a browser does: its page first, then the post with
/// the page's token.
async fn sign_in(
    app: &crate::helpers::TestApp,
    username: &str,
    password: &str,
) -> reqwest::Result<reqwest::Response> {
    let page = app
        .client
        .get(app.url("/login"))
        .send()
        .await?
        .text()
        .await?;
    app.client
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", &form_token(&page)),
        ])
        .send()
        .await
}

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

    let wrong = sign_in(&app, "maria", "wrong").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("Wrong user name or password"));

    let ok = sign_in(&app, "maria", "correct horse battery")
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

    // Signing out needs the page's token: a form posted from elsewhere is refused.
    let forged = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let csrf = form_token(
        &app.client
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let out = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let resp = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "signed out");
}

#[tokio::test]
async fn repeated_failed_sign_ins_lock_the_user_out() {
    let app = spawn_app_with_fixtures(Db::Sqlite).await;
    app.store
        .upsert_user("maria", "correct horse battery", Role::Agent)
        .await
        .unwrap();
    let maria = |password: &'static str| sign_in(&app, "maria", password);
    // A success in between starts the count again.
    for _ in 0..patron_store::LOCK_AFTER - 1 {
        assert_eq!(maria("guess").await.unwrap().status(), 401);
    }
    assert_eq!(maria("correct horse battery").await.unwrap().status(), 303);
    for _ in 0..patron_store::LOCK_AFTER {
        let resp = maria("guess").await.unwrap();
        assert!(resp
            .text()
            .await
            .unwrap()
            .contains("Wrong user name or password"));
    }
    // Now even the right password is refused, and says why.
    let resp = maria("correct horse battery").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("locked out for 15 minutes"));
    let locked = app
        .env
        .scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'maria' AND action = 'login.locked'")
        .await;
    assert_eq!(locked, 1);
    // Other users are not affected.
    app.store
        .upsert_user("li", "another long passphrase", Role::Agent)
        .await
        .unwrap();
    let other = sign_in(&app, "li", "another long passphrase")
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::SEE_OTHER);

    // A sign-in posted without the form's token (from another site) is refused.
    let forged = app
        .client
        .post(app.url("/login"))
        .form(&[("username", "li"), ("password", "another long passphrase")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.text().await.unwrap().contains("form expired"));
}
