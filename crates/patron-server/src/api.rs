//! The JSON API under `/api/v1`.

use crate::auth::{require, Caller};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use patron_domain::Role;
use patron_pipeline::identity;
use serde::Deserialize;

/// Roles that may read customer profiles.
const READ_CUSTOMERS: &[Role] = &[Role::Admin, Role::Agent, Role::Analyst];
/// Roles that may see how records match (field levels and weights, no personal values).
const EXPLAIN_MATCHES: &[Role] = &[Role::Admin, Role::Analyst];
/// Roles that may define and read segments (pseudonymous: ids and metrics).
const SEGMENTS: &[Role] = &[Role::Admin, Role::Analyst];
/// Admins only: changing which records make a profile, data subject requests, and the
/// quarantine (rejected values are personal data in clear).
const ADMIN: &[Role] = &[Role::Admin];

/// Every API route and the roles that may call it: the one place access is declared. A
/// middleware enforces it before any handler runs; a route missing here is refused to all.
pub const ROUTES: &[(Method, &str, &[Role])] = &[
    (Method::GET, "/api/v1/customers", READ_CUSTOMERS),
    (Method::GET, "/api/v1/customers/{id}", READ_CUSTOMERS),
    (Method::DELETE, "/api/v1/customers/{id}", ADMIN),
    (Method::GET, "/api/v1/customers/{id}/export", ADMIN),
    (
        Method::GET,
        "/api/v1/customers/{id}/recommendations",
        READ_CUSTOMERS,
    ),
    (Method::GET, "/api/v1/products/{id}/similar", READ_CUSTOMERS),
    (Method::GET, "/api/v1/quarantine", ADMIN),
    (Method::POST, "/api/v1/match", READ_CUSTOMERS),
    (Method::GET, "/api/v1/match/explain", EXPLAIN_MATCHES),
    (Method::GET, "/api/v1/review", ADMIN),
    (Method::POST, "/api/v1/review/{id}/accept", ADMIN),
    (Method::POST, "/api/v1/review/{id}/reject", ADMIN),
    (Method::POST, "/api/v1/merges", ADMIN),
    (Method::POST, "/api/v1/unmerges", ADMIN),
    (Method::POST, "/api/v1/never-merges", ADMIN),
    (Method::GET, "/api/v1/segments", SEGMENTS),
    (Method::POST, "/api/v1/segments", SEGMENTS),
    (Method::GET, "/api/v1/segments/{id}/members", SEGMENTS),
];

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/customers", get(search))
        .route(
            "/api/v1/customers/{id}",
            get(customer).delete(subject_erase),
        )
        .route("/api/v1/customers/{id}/export", get(subject_export))
        .route(
            "/api/v1/customers/{id}/recommendations",
            get(recommendations),
        )
        .route("/api/v1/products/{id}/similar", get(similar_products))
        .route("/api/v1/quarantine", get(quarantine))
        .route("/api/v1/match", post(match_record))
        .route("/api/v1/match/explain", get(explain))
        .route("/api/v1/review", get(review_list))
        .route("/api/v1/review/{id}/accept", post(review_accept))
        .route("/api/v1/review/{id}/reject", post(review_reject))
        .route("/api/v1/merges", post(merge))
        .route("/api/v1/unmerges", post(unmerge))
        .route("/api/v1/never-merges", post(never_merge))
        .route("/api/v1/segments", get(segment_list).post(segment_create))
        .route("/api/v1/segments/{id}/members", get(segment_members))
        .route_layer(axum::middleware::from_fn_with_state(state, authorize))
}

/// Checks the caller against [`ROUTES`]: 401 without a valid key, 403 without the role.
async fn authorize(
    State(state): State<AppState>,
    matched: MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    let allowed = ROUTES
        .iter()
        .find(|(m, p, _)| *m == parts.method && *p == matched.as_str())
        .map_or(&[][..], |(_, _, roles)| *roles);
    require(&caller, allowed)?;
    parts.extensions.insert(caller);
    // A busy database is answered 503 with Retry-After: safe to retry for a read (at most its
    // audit entry was not written), not for a change that may have been saved before the
    // step that found the database busy (an erasure, then its audit entry): that is a 500.
    let reads = parts.method == Method::GET || matched.as_str() == "/api/v1/match";
    let resp = next
        .run(axum::extract::Request::from_parts(parts, body))
        .await;
    if resp.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE && !reads {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "the database was busy during a change; whether it was saved is unknown"
        )));
    }
    Ok(resp)
}

fn customer_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest("customer id must be a number".into()))
}

/// Everything stored about a person (GDPR Art. 15/20).
async fn subject_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = customer_id(&id)?;
    let data = state
        .store
        .subject_export(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    caller
        .audit(&state.store, "subject.export", Some(&id.to_string()), None)
        .await?;
    Ok(Json(data))
}

/// Erases a person (GDPR Art. 17); answers what was removed.
async fn subject_erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<patron_store::Erasure>, ApiError> {
    let id = customer_id(&id)?;
    let erased = state
        .store
        .erase_subject(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    caller
        .audit(
            &state.store,
            "subject.erase",
            Some(&erased.customer_id.to_string()),
            Some(&erased.to_string()),
        )
        .await?;
    Ok(Json(erased))
}

#[derive(Deserialize)]
struct QuarantineParams {
    kind: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Rejected values are personal data in clear: admins only.
async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<QuarantineParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = params.kind.as_deref().filter(|k| !k.is_empty());
    if let Some(k) = kind {
        if !["customers", "orders", "products", "events"].contains(&k) {
            return Err(ApiError::BadRequest(
                "kind must be customers, orders, products or events".into(),
            ));
        }
    }
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let offset = params.offset.unwrap_or(0).max(0);
    let entries = state.store.quarantine_list(kind, limit, offset).await?;
    caller
        .audit(
            &state.store,
            "quarantine.list",
            kind,
            Some(&format!("{} rows", entries.len())),
        )
        .await?;
    Ok(Json(serde_json::json!({ "entries": entries })))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<i64>,
}

async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<SearchParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = params.q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "q is required: an email, phone or name".into(),
        ));
    }
    let limit = params.limit.unwrap_or(20).clamp(1, 100);
    let found = state.store.search(&q, &state.clean, limit).await?;
    let ids: Vec<String> = found.iter().map(|c| c.customer_id.to_string()).collect();
    caller
        .audit(&state.store, "customer.search", Some(&ids.join(",")), None)
        .await?;
    let found: Vec<_> = if caller.role == Role::Analyst {
        found.into_iter().map(|c| c.masked()).collect()
    } else {
        found
    };
    Ok(Json(serde_json::json!({ "customers": found })))
}

/// A profile; a merged-away id redirects (308) to the profile that holds its records now.
async fn customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    let Some(detail) = state.store.customer(id).await? else {
        let to = state.store.alias_of(id).await?.ok_or(ApiError::NotFound)?;
        return Ok(Redirect::permanent(&format!("/api/v1/customers/{to}")).into_response());
    };
    caller
        .audit(&state.store, "customer.read", Some(&id.to_string()), None)
        .await?;
    // Analysts work with pseudonymous data: they see that a customer exists, not who.
    let detail = if caller.role == Role::Analyst {
        detail.masked()
    } else {
        detail
    };
    Ok(Json(detail).into_response())
}

#[derive(serde::Deserialize)]
struct TopK {
    k: Option<i64>,
}

/// A customer's stored recommendations. Not audited: it is the hot path of a shop's pages,
/// and it answers with product ids and reasons under a pseudonymous profile id, none of the
/// personal fields (name, contact, birth date, address) whose reads the audit log records,
/// although a reason may name a product the customer bought.
async fn recommendations(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TopK>,
) -> Result<Response, ApiError> {
    let id = customer_id(&id)?;
    let k = q.k.unwrap_or(10).clamp(1, 100);
    let recs = state.store.recommendations(id, k).await?;
    if recs.is_empty() && !state.store.customer_exists(id).await? {
        let to = state.store.alias_of(id).await?.ok_or(ApiError::NotFound)?;
        let path = format!("/api/v1/customers/{to}/recommendations?k={k}");
        return Ok(Redirect::permanent(&path).into_response());
    }
    Ok(Json(serde_json::json!({ "customer_id": id, "recommendations": recs })).into_response())
}

/// Products most often bought by the same customers as this one.
async fn similar_products(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TopK>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let k = q.k.unwrap_or(10).clamp(1, 100);
    let similar = state
        .store
        .similar_products(&id, k)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(
        serde_json::json!({ "product_id": id, "similar": similar }),
    ))
}

/// Which stored profiles a customer record belongs to, best first, without storing it. The
/// body is one record with the columns of a customer import file (`name`, `email`, `phone`,
/// `birth_date`, `address_line1`, `postal_code`, `city`, `country`, …), cleaned the same way.
async fn match_record(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut values: Vec<(&str, String)> =
        vec![("source", "lookup".into()), ("source_id", "-".into())];
    for (key, value) in &body {
        let Some(column) = patron_domain::CUSTOMER_COLUMNS
            .iter()
            .find(|c| **c == key.as_str() && !["source", "source_id"].contains(c))
        else {
            return Err(ApiError::BadRequest(format!("unknown field \"{key}\"")));
        };
        let text = match value {
            serde_json::Value::String(v) => v.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => continue,
            _ => return Err(ApiError::BadRequest(format!("\"{key}\" must be a string"))),
        };
        values.push((column, text));
    }
    let row = patron_domain::RawRow::new(values.iter().map(|(c, v)| (*c, v.as_str())).collect());
    let (record, report) = patron_domain::clean_customer(&row, &state.clean)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // A field that does not clean is left out of the match, as an import quarantines it and
    // keeps the record: a mistyped phone must not hide the profile the email finds. The
    // caller is told which fields were ignored and why.
    let ignored: Vec<serde_json::Value> = report
        .issues
        .iter()
        .map(|i| serde_json::json!({ "field": i.field, "reason": i.reason }))
        .collect();
    if record.name.is_none() && record.email.is_none() && record.phone.is_none() {
        let why: Vec<String> = report
            .issues
            .iter()
            .map(|i| format!("{}: {}", i.field, i.reason))
            .collect();
        let why = match why.is_empty() {
            true => String::new(),
            false => format!(" (ignored {})", why.join("; ")),
        };
        return Err(ApiError::BadRequest(format!(
            "give at least one valid name, email or phone{why}"
        )));
    }
    let probe = identity::Probe::of_record(state.store.vault(), &record);
    let mut matches = identity::find_matches(&state.store, &probe).await?;
    matches.truncate(10);
    let ids: Vec<String> = matches.iter().map(|m| m.customer_id.to_string()).collect();
    caller
        .audit(&state.store, "match.lookup", Some(&ids.join(",")), None)
        .await?;
    Ok(Json(
        serde_json::json!({ "matches": matches, "ignored": ignored }),
    ))
}

#[derive(Deserialize)]
struct ExplainParams {
    a: String,
    b: String,
}

/// Why two records (`SOURCE:ID`) are or are not one person, field by field.
async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<ExplainParams>,
) -> Result<Json<patron_engine::matching::Explanation>, ApiError> {
    let explanation = identity::explain(&state.store, &p.a, &p.b).await?;
    let target = format!("{},{}", p.a, p.b);
    caller
        .audit(&state.store, "match.explain", Some(&target), None)
        .await?;
    Ok(Json(explanation))
}

#[derive(Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn review_list(
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = page.limit.unwrap_or(50).clamp(1, 1000);
    let items = state
        .store
        .review_list(limit, page.offset.unwrap_or(0).max(0))
        .await?;
    Ok(Json(serde_json::json!({ "pairs": items })))
}

async fn review_accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    identity::review_accept(&state.store, id, &caller.actor).await?;
    Ok(Json(serde_json::json!({ "accepted": id })))
}

async fn review_reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    identity::review_reject(&state.store, id, &caller.actor).await?;
    Ok(Json(serde_json::json!({ "rejected": id })))
}

#[derive(Deserialize)]
struct MergeBody {
    survivor: i64,
    merged: i64,
}

async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<MergeBody>,
) -> Result<Json<identity::Correction>, ApiError> {
    let done = identity::merge(&state.store, body.survivor, body.merged, &caller.actor).await?;
    Ok(Json(done))
}

/// Either `{"profile": ID}` (undo the merge that took it away) or `{"record": "SOURCE:ID"}`
/// (take one record out of its profile).
#[derive(Deserialize)]
struct UnmergeBody {
    profile: Option<i64>,
    record: Option<String>,
}

async fn unmerge(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<UnmergeBody>,
) -> Result<Json<identity::Correction>, ApiError> {
    let done = match (body.profile, body.record) {
        (Some(id), None) => identity::unmerge(&state.store, id, &caller.actor).await?,
        (None, Some(name)) => {
            let record = identity::record(&state.store, &name).await?;
            identity::split(&state.store, &record, &caller.actor).await?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either \"profile\" or \"record\"".into(),
            ))
        }
    };
    Ok(Json(done))
}

#[derive(Deserialize)]
struct PairBody {
    a: i64,
    b: i64,
}

async fn never_merge(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PairBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    identity::never_merge(&state.store, body.a, body.b, &caller.actor).await?;
    Ok(Json(serde_json::json!({ "kept_apart": [body.a, body.b] })))
}

async fn segment_list(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        serde_json::json!({ "segments": state.store.segments().await? }),
    ))
}

#[derive(Deserialize)]
struct NewSegment {
    name: String,
    rule: String,
}

/// Creates a rule segment; a rule that does not parse is a 400 naming the column of the
/// mistake, a taken name a 409.
async fn segment_create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewSegment>,
) -> Result<(axum::http::StatusCode, Json<patron_store::SegmentInfo>), ApiError> {
    let s = patron_pipeline::segments::create(&state.store, &body.name, &body.rule, &caller.actor)
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(s)))
}

async fn segment_members(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state
        .store
        .segments()
        .await?
        .iter()
        .any(|s| s.segment_id == id)
    {
        return Err(ApiError::NotFound);
    }
    let limit = page.limit.unwrap_or(100).clamp(1, 10_000);
    let members = state
        .store
        .segment_members(id, limit, page.offset.unwrap_or(0).max(0))
        .await?;
    Ok(Json(serde_json::json!({ "customer_ids": members })))
}
