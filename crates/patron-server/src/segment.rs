//! A Segment-compatible tracking API (`/v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen`,
//! `/v1/alias`, `/v1/batch`), so the tracking SDKs retailers already run can point at Patron
//! unchanged. The write key is an API key with the `ingest` (or `admin`) role, sent as the
//! HTTP Basic user name or as `writeKey` in the body.
//!
//! Messages are wire types; they become domain records here, at the edge: `identify` traits
//! become a customer record of source `segment` (so unify links it to the person's other
//! records by email or phone), e-commerce `Order Completed` events become order lines, and
//! every message is stored as an event, once per `messageId`.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use patron_domain::{clean_customer, clean_order_line, clean_product, CleanConfig, RawRow, Role};
use patron_store::{NewEvent, QuarantineEntry, RecordBatch};
use serde_json::{Map, Value};

/// Segment's documented limits.
const MAX_MESSAGE_BYTES: usize = 32 * 1024;
const MAX_BATCH_BYTES: usize = 500 * 1024;
const MAX_BATCH_EVENTS: usize = 2_500;

/// The source name of records and orders that arrive through this API.
const SOURCE: &str = "segment";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/identify", post(|s, h, b| single(s, h, b, "identify")))
        .route("/v1/track", post(|s, h, b| single(s, h, b, "track")))
        .route("/v1/page", post(|s, h, b| single(s, h, b, "page")))
        .route("/v1/screen", post(|s, h, b| single(s, h, b, "screen")))
        .route("/v1/alias", post(|s, h, b| single(s, h, b, "alias")))
        .route("/v1/group", post(|s, h, b| single(s, h, b, "group")))
        .route("/v1/batch", post(batch))
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// Parses a JSON object body.
fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("invalid JSON: {e}"))),
    }
}

/// Checks the write key (Basic user name, or `writeKey` in the body).
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<String, ApiError> {
    use base64::Engine;
    let from_header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok())
        .map(|s| {
            s.split_once(':')
                .map_or(s.clone(), |(user, _)| user.to_owned())
        });
    let key = from_header
        .or_else(|| {
            body.get("writeKey")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let info = state
        .store
        .authenticate_key(&key)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !matches!(info.role, Role::Ingest | Role::Admin) {
        return Err(ApiError::Forbidden);
    }
    state
        .limits
        .admit(info.key_id)
        .map_err(ApiError::TooManyRequests)?;
    Ok(format!("key:{}", info.key_id))
}

async fn single(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
    kind: &'static str,
) -> Result<Json<Value>, ApiError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(bad(format!(
            "a message may be at most {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    let mut msg = object(&body)?;
    authenticate(&state, &headers, &msg).await?;
    msg.insert("type".into(), Value::from(kind));
    let mut request = Request::default();
    request.add(msg, None).map_err(bad)?;
    request.store(&state).await?;
    Ok(Json(serde_json::json!({ "success": true })))
}

async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(bad(format!(
            "a batch may be at most {MAX_BATCH_BYTES} bytes"
        )));
    }
    let mut outer = object(&body)?;
    authenticate(&state, &headers, &outer).await?;
    let Some(Value::Array(items)) = outer.remove("batch") else {
        return Err(bad("a batch needs a 'batch' array"));
    };
    if items.len() > MAX_BATCH_EVENTS {
        return Err(bad(format!(
            "a batch may hold at most {MAX_BATCH_EVENTS} messages"
        )));
    }
    let context = outer.remove("context");
    let mut request = Request::default();
    let mut rejected = 0;
    for (i, item) in items.into_iter().enumerate() {
        let raw = item.to_string();
        let result = match item {
            Value::Object(m) if raw.len() <= MAX_MESSAGE_BYTES => request.add(m, context.as_ref()),
            Value::Object(_) => Err(format!("message larger than {MAX_MESSAGE_BYTES} bytes")),
            _ => Err("a batch item must be a JSON object".into()),
        };
        // One bad message does not cost the others: it is quarantined with its reason.
        if let Err(reason) = result {
            rejected += 1;
            request.rejects.push(QuarantineEntry {
                kind: "events",
                file: "/v1/batch".into(),
                row_no: i as i64 + 1,
                source: Some(SOURCE.into()),
                source_id: None,
                field: "(message)".into(),
                value: None,
                reason,
                whole_row: true,
                raw: Some(raw),
            });
        }
    }
    request.store(&state).await?;
    Ok(Json(
        serde_json::json!({ "success": true, "rejected": rejected }),
    ))
}

/// Interprets a tracking API body as `/v1/batch` (a `batch` array) or a single message
/// would, without storing anything; returns how many messages were accepted. For fuzzing the
/// payload parser: any bytes give an answer, never a panic.
#[doc(hidden)]
pub fn interpret(body: &[u8]) -> Result<usize, String> {
    let mut outer = object(body).map_err(|e| e.to_string())?;
    let mut request = Request::default();
    match outer.remove("batch") {
        Some(Value::Array(items)) => {
            let context = outer.remove("context");
            for item in items {
                if let Value::Object(m) = item {
                    let _ = request.add(m, context.as_ref());
                }
            }
        }
        _ => {
            outer.entry("type").or_insert_with(|| Value::from("track"));
            request.add(outer, None)?;
        }
    }
    Ok(request.messages.len())
}

/// The messages of one request, each with what it means, and the messages rejected.
#[derive(Default)]
struct Request {
    messages: Vec<Work>,
    rejects: Vec<QuarantineEntry>,
}

impl Request {
    fn add(
        &mut self,
        msg: Map<String, Value>,
        batch_context: Option<&Value>,
    ) -> Result<(), String> {
        let mut work = Work::default();
        work.add(msg, batch_context)?;
        self.messages.push(work);
        Ok(())
    }

    /// Applies the messages not seen before: a retried delivery (same `messageId`) must not
    /// apply its effects twice, e.g. re-complete an order refunded in between.
    async fn store(self, state: &AppState) -> Result<(), ApiError> {
        let ids: Vec<String> = self
            .messages
            .iter()
            .flat_map(|w| w.events.iter().map(|e| e.message_id.clone()))
            .collect();
        let known = state.store.known_message_ids(&ids).await?;
        let mut all = Work::default();
        all.batch.quarantine = self.rejects;
        let mut seen = std::collections::HashSet::new();
        for work in self.messages {
            let fresh = work
                .events
                .iter()
                .all(|e| !known.contains(&e.message_id) && seen.insert(e.message_id.clone()));
            if fresh {
                all.merge(work);
            }
        }
        all.store(state).await
    }
}

/// What messages turn into, written together at the end.
#[derive(Default)]
struct Work {
    events: Vec<NewEvent>,
    /// Records with their message as JSON when some of their fields were quarantined.
    customers: Vec<(patron_domain::CustomerRecord, Option<String>)>,
    batch: RecordBatch,
    products: Vec<patron_domain::Product>,
    /// (order id, new status, the message as received).
    status_changes: Vec<(String, &'static str, String)>,
}

impl Work {
    fn merge(&mut self, other: Work) {
        self.events.extend(other.events);
        self.customers.extend(other.customers);
        self.products.extend(other.products);
        self.status_changes.extend(other.status_changes);
        self.batch.customers.extend(other.batch.customers);
        self.batch.order_lines.extend(other.batch.order_lines);
        self.batch.products.extend(other.batch.products);
        self.batch.quarantine.extend(other.batch.quarantine);
    }

    /// Validates one message and queues what it means. Errors are reasons for a client.
    fn add(
        &mut self,
        mut msg: Map<String, Value>,
        batch_context: Option<&Value>,
    ) -> Result<(), String> {
        let kind = msg
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !["identify", "track", "page", "screen", "alias", "group"].contains(&kind.as_str()) {
            return Err(format!("unknown message type {kind:?}"));
        }
        // The batch's context applies to each message; the message's own keys win.
        if let Some(Value::Object(shared)) = batch_context {
            let own = msg
                .entry("context")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(own) = own {
                for (k, v) in shared {
                    own.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let text = |m: &Map<String, Value>, k: &str| -> Option<String> {
            match m.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
        };
        let user_id = text(&msg, "userId");
        let anonymous_id = text(&msg, "anonymousId");
        if user_id.is_none() && anonymous_id.is_none() {
            return Err("userId or anonymousId is required".into());
        }
        let at: DateTime<Utc> = match text(&msg, "timestamp") {
            Some(t) => patron_domain::parse_timestamp(&t).map_err(|e| format!("timestamp: {e}"))?,
            None => Utc::now(),
        };
        let message_id = text(&msg, "messageId").unwrap_or_else(|| {
            // Without a messageId delivery cannot be de-duplicated; a content hash at least
            // makes an identical retry idempotent.
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            Value::Object(msg.clone()).to_string().hash(&mut h);
            format!("patron-{:016x}", h.finish())
        });
        // The customer this message is about, in this source.
        let customer = user_id
            .clone()
            .unwrap_or_else(|| format!("anon:{}", anonymous_id.clone().unwrap_or_default()));
        let name = match kind.as_str() {
            "track" => Some(text(&msg, "event").ok_or("a track call needs an 'event' name")?),
            "page" | "screen" => text(&msg, "name"),
            "alias" => Some(text(&msg, "previousId").ok_or("an alias call needs a 'previousId'")?),
            _ => None,
        };
        match kind.as_str() {
            "identify" => self.identify(&msg, &customer, at)?,
            "track" => self.ecommerce(&msg, name.as_deref().unwrap_or(""), &customer, at)?,
            _ => {}
        }
        let properties: Map<String, Value> =
            ["properties", "traits", "context", "previousId", "groupId"]
                .iter()
                .filter_map(|k| msg.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                .collect();
        self.events.push(NewEvent {
            message_id,
            source: SOURCE.into(),
            user_id: Some(customer),
            anonymous_id,
            kind,
            name,
            properties: Some(Value::Object(properties).to_string()),
            occurred_at: at.timestamp_millis(),
        });
        Ok(())
    }

    /// Identify traits become this source's customer record, cleaned like any import.
    fn identify(
        &mut self,
        msg: &Map<String, Value>,
        customer: &str,
        at: DateTime<Utc>,
    ) -> Result<(), String> {
        let Some(Value::Object(traits)) = msg.get("traits") else {
            return Ok(());
        };
        let address = match traits.get("address") {
            Some(Value::Object(a)) => a.clone(),
            _ => Map::new(),
        };
        let s = |m: &Map<String, Value>, k: &str| match m.get(k) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let at = at.to_rfc3339();
        let values: Vec<(&'static str, String)> = vec![
            ("source", SOURCE.into()),
            ("source_id", customer.to_owned()),
            ("name", s(traits, "name")),
            ("first_name", s(traits, "firstName")),
            ("last_name", s(traits, "lastName")),
            ("email", s(traits, "email")),
            ("phone", s(traits, "phone")),
            ("gender", s(traits, "gender")),
            ("birth_date", s(traits, "birthday")),
            ("address_line1", s(&address, "street")),
            ("city", s(&address, "city")),
            ("region", s(&address, "state")),
            ("postal_code", s(&address, "postalCode")),
            ("country", s(&address, "country")),
            (
                "created_at",
                if s(traits, "createdAt").is_empty() {
                    at
                } else {
                    s(traits, "createdAt")
                },
            ),
        ];
        let row = RawRow::new(values.iter().map(|(c, v)| (*c, v.as_str())).collect());
        let (record, report) =
            clean_customer(&row, &Default::default()).map_err(|e| e.to_string())?;
        let raw = (!report.issues.is_empty()).then(|| Value::Object(msg.clone()).to_string());
        for issue in report.issues {
            self.batch.quarantine.push(QuarantineEntry {
                kind: "customers",
                file: "/v1/identify".into(),
                row_no: 0,
                source: Some(SOURCE.into()),
                source_id: Some(customer.to_owned()),
                field: issue.field.into(),
                value: Some(issue.value),
                reason: issue.reason,
                whole_row: false,
                raw: None,
            });
        }
        self.customers.push((record, raw));
        Ok(())
    }

    /// E-commerce spec v2 events that change orders.
    fn ecommerce(
        &mut self,
        msg: &Map<String, Value>,
        event: &str,
        customer: &str,
        at: DateTime<Utc>,
    ) -> Result<(), String> {
        let props = match msg.get("properties") {
            Some(Value::Object(p)) => p.clone(),
            _ => Map::new(),
        };
        let s = |m: &Map<String, Value>, k: &str| match m.get(k) {
            Some(Value::String(v)) => v.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let order_id = s(&props, "order_id");
        match event {
            "Order Completed" => {
                if order_id.is_empty() {
                    return Err("Order Completed needs properties.order_id".into());
                }
                let currency = match s(&props, "currency") {
                    c if c.is_empty() => "USD".to_owned(),
                    c => c,
                };
                let Some(Value::Array(products)) = props.get("products") else {
                    return Err("Order Completed needs a properties.products array".into());
                };
                let placed_at = at.to_rfc3339();
                let mut lines = Vec::new();
                for (i, p) in products.iter().enumerate() {
                    let Value::Object(p) = p else {
                        return Err(format!("products[{i}] is not an object"));
                    };
                    let product_id = match s(p, "product_id") {
                        id if id.is_empty() => s(p, "sku"),
                        id => id,
                    };
                    let quantity = match s(p, "quantity") {
                        q if q.is_empty() => "1".to_owned(),
                        q => q,
                    };
                    let price = s(p, "price");
                    let values = [
                        ("source", SOURCE.to_owned()),
                        ("order_id", order_id.clone()),
                        ("customer_source_id", customer.to_owned()),
                        ("placed_at", placed_at.clone()),
                        ("status", "completed".to_owned()),
                        ("currency", currency.clone()),
                        ("product_id", product_id.clone()),
                        ("quantity", quantity),
                        ("unit_price", price.clone()),
                    ];
                    let row = RawRow::new(values.iter().map(|(c, v)| (*c, v.as_str())).collect());
                    let line = clean_order_line(&row, &CleanConfig::default())
                        .map_err(|e| format!("products[{i}].{e}"))?;
                    // A product listed twice is one line with the summed quantity.
                    match lines
                        .iter_mut()
                        .find(|l: &&mut patron_domain::OrderLine| l.product_id == line.product_id)
                    {
                        Some(existing) => {
                            existing.quantity = existing.quantity.saturating_add(line.quantity)
                        }
                        None => lines.push(line),
                    }
                    let catalog = [
                        ("product_id", product_id),
                        ("sku", s(p, "sku")),
                        ("name", s(p, "name")),
                        ("category", s(p, "category")),
                        ("brand", s(p, "brand")),
                        ("price", price),
                        ("currency", currency.clone()),
                    ];
                    let row = RawRow::new(catalog.iter().map(|(c, v)| (*c, v.as_str())).collect());
                    if let Ok(product) = clean_product(&row) {
                        self.products.push(product);
                    }
                }
                self.batch.order_lines.extend(lines);
            }
            "Order Refunded" | "Order Cancelled" if !order_id.is_empty() => {
                let status = if event == "Order Refunded" {
                    "refunded"
                } else {
                    "cancelled"
                };
                self.status_changes.push((
                    order_id,
                    status,
                    Value::Object(msg.clone()).to_string(),
                ));
            }
            "Order Refunded" | "Order Cancelled" => {
                return Err(format!("{event} needs properties.order_id"));
            }
            _ => {}
        }
        Ok(())
    }

    async fn store(mut self, state: &AppState) -> Result<(), ApiError> {
        for (record, raw) in &self.customers {
            let prepared = state.store.prepare_customer(record, raw.as_deref());
            self.batch.customers.push(prepared);
        }
        state.store.add_missing_products(self.products).await?;
        state.store.write_batch(self.batch).await?;
        // A refund or cancellation of an order Patron never received is kept, not dropped.
        let mut unknown_orders = RecordBatch::default();
        for (order_id, status, raw) in self.status_changes {
            if !state
                .store
                .set_order_status(SOURCE, &order_id, status)
                .await?
            {
                unknown_orders.quarantine.push(QuarantineEntry {
                    kind: "events",
                    file: "/v1/track".into(),
                    row_no: 0,
                    source: Some(SOURCE.into()),
                    source_id: Some(order_id.clone()),
                    field: "properties.order_id".into(),
                    value: Some(order_id),
                    reason: format!("no such order to mark {status}"),
                    whole_row: true,
                    raw: Some(raw),
                });
            }
        }
        state.store.write_batch(unknown_orders).await?;
        state.store.insert_events(self.events).await?;
        if !self.customers.is_empty() {
            // Identified users join their profile now, not at the next unify run.
            let hidden = indicatif::ProgressBar::hidden();
            patron_pipeline::identity::place_new_records(&state.store, &hidden).await?;
        }
        Ok(())
    }
}
