//! What happens between an authenticated GraphQL request and the bytes sent back: execution,
//! then the quota reservation and the audit record — both *before* delivery.
//!
//! Order matters: execute → count the records in the result → reserve them (over the limit:
//! lock, deliver nothing) → append the audit event (fails: deliver nothing) → send. Mutations
//! are also audited as `attempted` before they run, so an administrative change whose audit
//! cannot be written never happens.

use async_graphql::parser::types::OperationType;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::accounts;
use crate::audit::{AuditEvent, EventType};
use crate::auth::{AuthError, Principal};
use crate::error::ErrorCode;
use crate::graphql::DarttsSchema;
use crate::introspection;
use crate::quota::{self, QuotaError, Reservation};
use crate::state::AppState;

/// Fields whose list items are analytical records, besides connection `edges`.
/// `hits` and `partyHits` are screening hits (`ScreeningHit`, `PartyHit`): each is one
/// delivered record.
const RECORD_LISTS: &[&str] = &["linkedFinancialTransactions", "hits", "partyHits"];

/// Records in a response: every connection edge and every item of a record list.
pub fn count_records(data: &Value) -> u64 {
    match data {
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::Array(items) if key == "edges" || RECORD_LISTS.contains(&key.as_str()) => {
                    items.len() as u64 + items.iter().map(count_records).sum::<u64>()
                }
                other => count_records(other),
            })
            .sum(),
        Value::Array(items) => items.iter().map(count_records).sum(),
        _ => 0,
    }
}

/// A refusal shaped like a GraphQL response, with the HTTP status that goes with it.
pub fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, Json(body)).into_response()
}

pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Response {
    let reference = uuid::Uuid::new_v4();
    tracing::error!(%reference, error = %err, "{context}");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        &format!("internal error (reference {reference})"),
    )
}

/// The operation's type and name, for the audit record (the document was already accepted
/// by the body limit; parsing it twice is cheap next to executing it).
fn operation(request: &async_graphql::Request) -> (bool, Option<String>) {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return (false, request.operation_name.clone());
    };
    let wanted = request.operation_name.as_deref();
    // The operation that runs: the one named by `operationName`, else the document's only one.
    let chosen = doc
        .operations
        .iter()
        .find(|(name, _)| wanted.is_none() || name.map(|n| n.as_str()) == wanted);
    match chosen {
        Some((name, op)) => (
            op.node.ty == OperationType::Mutation,
            name.map(|n| n.to_string())
                .or_else(|| request.operation_name.clone()),
        ),
        None => (false, request.operation_name.clone()),
    }
}

/// The document is hashed, never stored: an inline literal (a screened name) is as sensitive
/// as a variable.
fn document_hash(request: &async_graphql::Request) -> String {
    hex::encode(Sha256::digest(request.query.as_bytes()))
}

fn variables_hash(request: &async_graphql::Request) -> String {
    let text = serde_json::to_string(&request.variables).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub async fn execute(
    state: &AppState,
    schema: &DarttsSchema,
    principal: Principal,
    request: async_graphql::Request,
    source: Option<String>,
) -> Response {
    let (is_mutation, operation_name) = operation(&request);
    let event_type = if is_mutation {
        EventType::Mutation
    } else {
        EventType::Query
    };
    let username = principal.username.clone();
    let base = |outcome| {
        let mut event = AuditEvent::new(event_type, outcome).actor(username.clone());
        if let Some(s) = &source {
            event = event.source(s.clone());
        }
        event
    };
    // Ties the audit rows of this request together and to the client's `x-request-id`.
    let request_id = uuid::Uuid::new_v4().to_string();
    let detail = json!({
        "requestId": request_id,
        "operationName": operation_name,
        "variablesSha256": variables_hash(&request),
        "documentSha256": document_hash(&request),
    });
    if is_mutation {
        let intent = base("attempted").detail(detail.clone());
        if let Err(e) = state.audit.record(intent).await {
            return internal("audit write failed; mutation refused", &e);
        }
    }

    let quota = principal.permissions.quota;
    let user_id = principal.user_id;
    let reset_at = principal.quota_reset_at;
    // Introspection shows only what this principal may use; the permissions go into the
    // request with the principal, so they are kept here for after execution.
    let introspection =
        introspection::Plan::of(&request).map(|plan| (plan, principal.permissions.clone()));
    let mut response = schema.execute(request.data(principal)).await;
    if let Some((plan, permissions)) = introspection {
        match introspection::View::parse(&schema.sdl()) {
            Ok(view) => plan.apply(
                &view.restrict(introspection::rule(&state.policy, &permissions)),
                &mut response,
            ),
            Err(e) => return internal("cannot read the served schema for introspection", &e),
        }
    }
    crate::error::scrub(&mut response.errors);
    let data = serde_json::to_value(&response.data).unwrap_or(Value::Null);
    let records = count_records(&data);

    let denied: Vec<String> = response
        .errors
        .iter()
        .filter(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| {
                    *c == async_graphql::Value::from(ErrorCode::ForbiddenField.as_str())
                })
        })
        .map(|e| e.message.clone())
        .collect();

    if let (Some(quota), true) = (quota, records > 0) {
        let account = quota::Account {
            user_id,
            username: &username,
            reset_at,
        };
        match state
            .quota
            .reserve(&state.db, &account, quota, records, None)
            .await
        {
            Ok(Reservation::Granted { .. } | Reservation::Replayed) => {}
            Ok(Reservation::Exceeded { used }) => {
                return lock(
                    state,
                    user_id,
                    &username,
                    &source,
                    quota.records,
                    used,
                    records,
                )
                .await;
            }
            Ok(Reservation::Locked) => {
                return lock(
                    state,
                    user_id,
                    &username,
                    &source,
                    quota.records,
                    0,
                    records,
                )
                .await;
            }
            Err(QuotaError::Rebuild(e)) => return internal("cannot rebuild a quota counter", &e),
            Err(e) => return quota_unavailable(&e),
        }
    }

    if !denied.is_empty() {
        let event = base("denied").detail(json!({
            "requestId": request_id,
            "operationName": detail["operationName"],
            "denied": denied,
        }));
        let event = AuditEvent {
            event_type: EventType::AccessDenied,
            ..event
        };
        if let Err(e) = state.audit.record(event).await {
            return internal("audit write failed; response withheld", &e);
        }
    }
    let outcome = match (response.errors.is_empty(), data.is_null()) {
        (true, _) => "ok",
        (false, false) => "partial",
        (false, true) => "failed",
    };
    let records_i64 = i64::try_from(records).unwrap_or(i64::MAX);
    if let Err(e) = state
        .audit
        .record(base(outcome).records(records_i64).detail(detail))
        .await
    {
        return internal("audit write failed; response withheld", &e);
    }
    let mut http = async_graphql_axum::GraphQLResponse::from(response).into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&request_id) {
        http.headers_mut().insert("x-request-id", value);
    }
    http
}

/// The quota was crossed (or the store holds a lock): lock the account durably, audit it, and
/// deliver nothing.
pub async fn lock(
    state: &AppState,
    user_id: i64,
    username: &str,
    source: &Option<String>,
    limit: u64,
    used: u64,
    asked: u64,
) -> Response {
    if let Err(e) = accounts::lock(&state.db, user_id).await {
        return internal("cannot record the account lock", &e);
    }
    let mut event = AuditEvent::new(EventType::QuotaLock, "denied")
        .actor(username)
        .detail(json!({ "limit": limit, "used": used, "requested": asked }));
    if let Some(s) = source {
        event = event.source(s.clone());
    }
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, user = username, "audit of a quota lock failed");
    }
    error_response(
        StatusCode::FORBIDDEN,
        ErrorCode::AccountLocked,
        "download quota exceeded: nothing was delivered and the account is locked until an administrator unlocks it",
    )
}

pub fn quota_unavailable(err: &QuotaError) -> Response {
    tracing::warn!(error = %err, "quota store unavailable; refusing");
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::QuotaUnavailable,
        "the download quota service is unavailable; nothing was delivered, try again shortly",
    )
}

/// Audits a request refused before execution (bad token, disabled or locked account).
pub async fn audit_refusal(state: &AppState, err: &AuthError, source: Option<String>) {
    let (event_type, actor, reason) = match err {
        AuthError::Invalid(reason) => (EventType::TokenRefused, None, reason.clone()),
        AuthError::UnknownAccount(subject) => (
            EventType::TokenRefused,
            Some(subject.clone()),
            "no local account".to_owned(),
        ),
        AuthError::Missing => (EventType::TokenRefused, None, "no token".to_owned()),
        other => (EventType::AccessDenied, None, other.to_string()),
    };
    let mut event = AuditEvent::new(event_type, "denied").detail(json!({ "reason": reason }));
    if let Some(a) = actor {
        event = event.actor(a);
    }
    if let Some(s) = source {
        event = event.source(s);
    }
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "audit of a refused request failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_edges_and_record_lists_wherever_they_appear() {
        let data = json!({
            "a": { "totalCount": 99, "edges": [
                { "node": { "linkedFinancialTransactions": [{ "x": 1 }, { "x": 2 }] } },
                { "node": { "linkedFinancialTransactions": [] } },
            ] },
            "b": { "edges": [{ "node": {} }] },
            "me": { "categories": ["TRADE", "SDN"] },
        });
        assert_eq!(count_records(&data), 2 + 2 + 1);
        assert_eq!(count_records(&json!(null)), 0);
    }
}
