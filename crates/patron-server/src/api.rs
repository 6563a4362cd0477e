//! The JSON API under `/api/v1`.

use crate::auth::{require, Caller};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use patron_domain::Role;
use serde::Deserialize;

/// Roles that may read customer profiles.
const READ_CUSTOMERS: &[Role] = &[Role::Admin, Role::Agent, Role::Analyst];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/customers", get(search))
        .route("/api/v1/customers/{id}", get(customer))
        .route("/api/v1/quarantine", get(quarantine))
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
    require(&caller, &[Role::Admin])?;
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
    state
        .store
        .audit(
            &caller.actor,
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
    require(&caller, READ_CUSTOMERS)?;
    let q = params.q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "q is required: an email, phone or name".into(),
        ));
    }
    let limit = params.limit.unwrap_or(20).clamp(1, 100);
    let found = state.store.search(&q, &state.clean, limit).await?;
    let ids: Vec<String> = found.iter().map(|c| c.customer_id.to_string()).collect();
    state
        .store
        .audit(&caller.actor, "customer.search", Some(&ids.join(",")), None)
        .await?;
    Ok(Json(serde_json::json!({ "customers": found })))
}

async fn customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<patron_store::CustomerDetail>, ApiError> {
    require(&caller, READ_CUSTOMERS)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest("customer id must be a number".into()))?;
    let detail = state.store.customer(id).await?.ok_or(ApiError::NotFound)?;
    state
        .store
        .audit(&caller.actor, "customer.read", Some(&id.to_string()), None)
        .await?;
    Ok(Json(detail))
}
