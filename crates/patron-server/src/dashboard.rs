//! The server-rendered dashboard: sign-in, overview with customer search, customer page.
//! Templates are askama files under `templates/`, escaped by default; no JavaScript build.

use crate::auth::{
    cookie, csrf_token, same_token, session_token, Origin, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use crate::error::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use patron_store::{CustomerDetail, CustomerSummary, Login, Overview, User};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/customers/{id}", get(customer))
}

#[derive(Template, Default)]
#[template(path = "login.html")]
struct LoginPage {
    failed: bool,
    locked: bool,
    expired: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    user: String,
    csrf: String,
    q: String,
    searched: bool,
    results: Vec<CustomerSummary>,
    o: Overview,
    /// Headline cards: (element id, value, label).
    cards: Vec<(&'static str, String, String)>,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerPage {
    user: String,
    csrf: String,
    c: CustomerDetail,
    spend: Vec<(String, String)>,
    rfm_segment: String,
    /// Expected orders in 90 days and 12-month value with its currency, when forecast.
    forecast: Option<(String, String)>,
}

fn render(t: &impl Template) -> Result<Response, ApiError> {
    let html = t.render().map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Html(html).into_response())
}

/// The signed-in user, or a redirect to the sign-in page.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<User, Response>, ApiError> {
    let user = match session_token(headers) {
        Some(t) => state.store.session_user(&t).await?,
        None => None,
    };
    Ok(user.ok_or_else(|| Redirect::to("/login").into_response()))
}

/// A count with thousands separators (`21,438`).
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}{grouped}", if n < 0 { "-" } else { "" })
}

/// Minor units as a decimal amount with thousands separators (`1,234.50`).
fn money(minor: i64) -> String {
    let whole = thousands((minor / 100).abs());
    format!(
        "{}{whole}.{:02}",
        if minor < 0 { "-" } else { "" },
        (minor % 100).abs()
    )
}

#[derive(Deserialize)]
struct SearchForm {
    q: Option<String>,
}

async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Origin(origin): Origin,
    Query(form): Query<SearchForm>,
) -> Result<Response, ApiError> {
    let user = match signed_in(&state, &headers).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let q = form.q.unwrap_or_default();
    let searched = !q.trim().is_empty();
    let results = if searched {
        let found = state.store.search(&q, &state.clean, 50).await?;
        let ids: Vec<String> = found.iter().map(|c| c.customer_id.to_string()).collect();
        state
            .store
            .audit_from(
                &user.username,
                origin.as_deref(),
                "customer.search",
                Some(&ids.join(",")),
                None,
            )
            .await?;
        // Analysts see that customers exist, not who they are.
        match user.role {
            patron_domain::Role::Analyst => found.into_iter().map(|c| c.masked()).collect(),
            _ => found,
        }
    } else {
        Vec::new()
    };
    let o = state.store.overview().await?;
    let mut cards: Vec<(&'static str, String, String)> = [
        ("count-customers", o.customers, "customer profiles"),
        ("count-records", o.source_records, "source records"),
        ("count-orders", o.orders, "orders"),
        ("count-products", o.products, "products"),
        ("count-events", o.events, "events"),
        ("count-tickets", o.tickets, "tickets"),
        ("count-quarantined", o.quarantined, "quarantined values"),
    ]
    .into_iter()
    .map(|(id, n, label)| (id, thousands(n), label.to_owned()))
    .collect();
    for (currency, minor) in &o.revenue {
        cards.push(("", money(*minor), format!("revenue ({currency})")));
    }
    render(&OverviewPage {
        user: user.username,
        csrf: session_token(&headers)
            .map(|t| csrf_token(&t))
            .unwrap_or_default(),
        q,
        searched,
        results,
        o,
        cards,
    })
}

async fn customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Origin(origin): Origin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = match signed_in(&state, &headers).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    let Some(mut c) = state.store.customer(id).await? else {
        // A merged-away id leads to the profile that holds its records now.
        let to = state.store.alias_of(id).await?.ok_or(ApiError::NotFound)?;
        return Ok(axum::response::Redirect::to(&format!("/customers/{to}")).into_response());
    };
    if user.role == patron_domain::Role::Analyst {
        c = c.masked();
    }
    state
        .store
        .audit_from(
            &user.username,
            origin.as_deref(),
            "customer.read",
            Some(&id.to_string()),
            None,
        )
        .await?;
    let spend = c
        .order_summary
        .spend
        .iter()
        .map(|(cur, m)| (cur.clone(), money(*m)))
        .collect();
    let rfm_segment = c
        .rfm
        .as_ref()
        .and_then(|r| r["segment"].as_str())
        .unwrap_or("—")
        .to_owned();
    let forecast = c.predictions.as_ref().map(|p| {
        (
            format!("{:.1}", p["expected_purchases_90d"].as_f64().unwrap_or(0.0)),
            format!(
                "{} {}",
                money(p["clv_12m_minor"].as_i64().unwrap_or(0)),
                p["currency"].as_str().unwrap_or("")
            ),
        )
    });
    render(&CustomerPage {
        user: user.username,
        csrf: session_token(&headers)
            .map(|t| csrf_token(&t))
            .unwrap_or_default(),
        c,
        spend,
        rfm_segment,
        forecast,
    })
}

async fn login_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    login_form(&state, LoginPage::default(), axum::http::StatusCode::OK)
}

/// The sign-in page with a fresh anti-forgery token, in the form and in a cookie: a sign-in
/// is accepted only when the two agree, so another site cannot sign a browser in.
fn login_form(
    state: &AppState,
    mut page: LoginPage,
    status: axum::http::StatusCode,
) -> Result<Response, ApiError> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    page.csrf = hex::encode(bytes);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{LOGIN_CSRF_COOKIE}={}; Path=/login; HttpOnly; SameSite=Strict{secure}",
        page.csrf
    );
    let mut resp = render(&page)?;
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(resp)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, &expected) {
        let page = LoginPage {
            expired: true,
            ..LoginPage::default()
        };
        return login_form(&state, page, axum::http::StatusCode::FORBIDDEN);
    }
    let token = match state
        .store
        .login(form.username.trim(), &form.password)
        .await?
    {
        Login::Session(token) => token,
        refused => {
            let page = LoginPage {
                failed: refused == Login::Failed,
                locked: refused == Login::Locked,
                ..LoginPage::default()
            };
            return login_form(&state, page, axum::http::StatusCode::UNAUTHORIZED);
        }
    };
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(resp)
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Some(t) = session_token(&headers) {
        if !same_token(&form.csrf, &csrf_token(&t)) {
            return Err(ApiError::Forbidden);
        }
        state.store.logout(&t).await?;
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("patron_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn money_format() {
        assert_eq!(super::money(123_456_789), "1,234,567.89");
        assert_eq!(super::money(5), "0.05");
        assert_eq!(super::money(-1999), "-19.99");
        assert_eq!(super::thousands(21_438), "21,438");
        assert_eq!(super::thousands(999), "999");
    }
}
