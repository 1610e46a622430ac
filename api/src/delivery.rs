//! What happens between an authenticated GraphQL request and the bytes sent back: execution,
//! then the quota reservation and the audit record — both *before* delivery.
//!
//! Order matters: execute (counting every record resolved, `graphql::records`) → reserve them (over the limit:
//! lock, deliver nothing) → append the audit event (fails: deliver nothing) → send. Mutations
//! are also audited as `attempted` before they run, so an administrative change whose audit
//! cannot be written never happens.

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, OperationType};
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::accounts;
use crate::admission;
use crate::audit::{AuditEvent, EventType};
use crate::auth::{AuthError, Principal};
use crate::error::ErrorCode;
use crate::freshness::warning::{self, DatasetsRead};
use crate::graphql::Executors;
use crate::graphql::guard::RequestSource;
use crate::graphql::records::Delivered;
use crate::introspection;
use crate::quota::{self, QuotaError};
use crate::server::{self, MediaType};
use crate::state::AppState;
use crate::time_limit;

/// A refusal shaped like a GraphQL response, with the HTTP status that goes with it.
pub fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, Json(body)).into_response()
}

/// A request refused before anything was delivered: the answer, and the code its audit record
/// names (`refuse_audited`).
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    /// A failure of ours: the client gets a reference to the logged cause, never the cause.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            crate::error::internal_message(&format!("{context}: {err}")),
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, &self.message)
    }
}

pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Response {
    Refusal::internal(context, err).into_response()
}

/// Answers a request of a known principal that is refused before anything is delivered, and
/// audits it as every refusal is: with the actor, and the outcome the answer's code names. A
/// denial is an `access_denied` event carrying the reason, as `execute` records one; any other
/// refusal keeps the request's own event type (`base`) and records the code only, since its
/// message may echo the caller's input (a screened name in a filter). Nothing is delivered
/// either way, so a failed audit write is logged and the refusal still sent.
pub async fn refuse_audited(state: &AppState, base: AuditEvent, refusal: Refusal) -> Response {
    audit_refused(state, base, refusal.code, &refusal.message).await;
    refusal.into_response()
}

/// The audit record of `refuse_audited`, for a refusal answered in another shape.
pub async fn audit_refused(state: &AppState, base: AuditEvent, code: ErrorCode, message: &str) {
    let outcome = code.audit_outcome();
    let mut detail = match base.detail.clone() {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    detail.insert("code".to_owned(), json!(code.as_str()));
    let event_type = if outcome == "denied" {
        detail.insert("denied".to_owned(), json!([message]));
        EventType::AccessDenied
    } else {
        base.event_type
    };
    let event = AuditEvent {
        event_type,
        outcome,
        detail: serde_json::Value::Object(detail),
        ..base
    };
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "audit of a refused request failed");
    }
}

/// A GraphQL-shaped error body with the right HTTP status, for requests refused before
/// execution. The reason for an invalid token is logged, not sent.
pub fn refuse(err: &AuthError) -> Response {
    match err {
        AuthError::Invalid(reason) | AuthError::UnknownAccount(reason) => {
            tracing::info!(reason, "token refused");
        }
        AuthError::Certificate(reason) => tracing::info!(reason, "client certificate refused"),
        _ => {}
    }
    crate::metrics::request("refused", std::iter::once(err.code().as_str().to_owned()));
    let message = match err {
        AuthError::Internal(reason) => {
            crate::error::internal_message(&format!("authentication failed: {reason}"))
        }
        other => other.to_string(),
    };
    let body = json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": err.code().as_str() } }],
    });
    let mut response = (err.status(), Json(body)).into_response();
    if err.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// The operation a request runs: the one named by `operationName`, else the document's only
/// one. `None` when no operation has that name, or none is named and there are several
/// (execution then refuses the request).
pub fn chosen<'a>(
    document: &'a ExecutableDocument,
    wanted: Option<&str>,
) -> Option<(Option<&'a Name>, &'a OperationDefinition)> {
    let mut operations = document.operations.iter();
    let found = match wanted {
        Some(wanted) => operations.find(|(name, _)| name.map(|n| n.as_str()) == Some(wanted)),
        None => operations.next().filter(|_| operations.next().is_none()),
    };
    found.map(|(name, op)| (name, &op.node))
}

/// What the request's operation is, from the document parsed when the request was read
/// (`server::request::read`).
struct Operation {
    is_mutation: bool,
    /// For the audit record: the client's label for its query.
    name: Option<String>,
    /// The analyses it runs at its root: the turns it waits for (`admission`).
    analyses: usize,
}

fn operation(request: &mut async_graphql::Request) -> Operation {
    let operation_name = request.operation_name.clone();
    let unknown = Operation {
        is_mutation: false,
        name: operation_name.clone(),
        analyses: 0,
    };
    // Taken out while the parsed document borrows the request, and put back.
    let variables = std::mem::take(&mut request.variables);
    let operation = match request.parsed_query() {
        Ok(doc) => match chosen(doc, operation_name.as_deref()) {
            Some((name, op)) => Operation {
                is_mutation: op.ty == OperationType::Mutation,
                name: name.map(|n| n.to_string()).or(operation_name),
                analyses: if op.ty == OperationType::Query {
                    admission::analyses(doc, op, &variables)
                } else {
                    0
                },
            },
            None => unknown,
        },
        Err(_) => unknown,
    };
    request.variables = variables;
    operation
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
    schema: &Executors,
    principal: Principal,
    request: async_graphql::Request,
    source: Option<String>,
    media: MediaType,
) -> Response {
    // Ties the audit rows of this request, its trace and the client's `x-request-id` together.
    let request_id = uuid::Uuid::new_v4().to_string();
    // The operation's name is the client's label for its query; variables are never recorded.
    let span = tracing::info_span!(
        "graphql.request",
        request_id = %request_id,
        graphql.operation.name = request.operation_name.as_deref().unwrap_or(""),
        records = tracing::field::Empty,
        http.status = tracing::field::Empty,
    );
    let response = execute_in_span(state, schema, principal, request, source, request_id, media)
        .instrument(span.clone())
        .await;
    span.record("http.status", response.status().as_u16());
    response
}

async fn execute_in_span(
    state: &AppState,
    schema: &Executors,
    principal: Principal,
    mut request: async_graphql::Request,
    source: Option<String>,
    request_id: String,
    media: MediaType,
) -> Response {
    let Operation {
        is_mutation,
        name: operation_name,
        analyses,
    } = operation(&mut request);
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
    let account = quota::Account::from(&principal);
    // Introspection shows only what this principal may use; the permissions go into the
    // request with the principal, so they are kept here for after execution.
    let introspection =
        introspection::Plan::of(&request).map(|plan| (plan, principal.permissions.clone()));
    let delivered = Delivered::default();
    let read = DatasetsRead::default();
    let records_by_id = crate::graphql::records_by_id::loader(state, &principal.permissions);
    let batches = crate::graphql::batch_loader(state, &principal.permissions);
    let shape = schema.shape(&mut request);
    let (schema, planned) = schema.choose(&mut request, &state.policy, &principal.permissions);
    crate::metrics::execution(planned);
    let execution = schema.execute(
        request
            .data(records_by_id)
            .data(batches)
            .data(principal)
            .data(delivered.clone())
            .data(read.clone())
            .data(RequestSource(source.clone())),
    );
    // A query gets the time limit; a mutation runs to its end, so that none is left between
    // its `attempted` record and its commit (a statement past the limit still fails on
    // PostgreSQL, and the transaction rolls back).
    let conflict = shape
        .as_ref()
        .and_then(crate::graphql::shape::Pending::conflict);
    let executed = if let Some(error) = conflict {
        // A validation error async-graphql's own validation misses: refused the same way,
        // before anything runs.
        Some(async_graphql::Response::from_errors(vec![error]))
    } else if is_mutation {
        Some(execution.await)
    } else {
        // The wait for a turn is part of the request's time.
        let execution = async {
            let _turns = state.admission.enter(account.user_id, analyses).await;
            execution.await
        };
        time_limit::run(state.settings.operations.request_time_limit, execution).await
    };
    let Some(mut response) = executed else {
        return timed_out(state, base("timed_out").detail(detail), Some(&request_id)).await;
    };
    if let Some((plan, permissions)) = introspection {
        match introspection::View::parse(&schema.sdl()) {
            Ok(view) => plan.apply(
                &view.restrict(introspection::rule(&state.policy, &permissions)),
                &mut response,
            ),
            Err(e) => {
                let refusal =
                    Refusal::internal("cannot read the served schema for introspection", &e);
                return refuse_audited(state, base("failed").detail(detail), refusal).await;
            }
        }
    }
    crate::error::scrub(&mut response.errors);
    // A statement stopped at the limit (it may beat the timer above by a hair) ends the request
    // the same way: whatever else resolved is not delivered.
    if response
        .errors
        .iter()
        .any(|e| ErrorCode::of(e.extensions.as_ref()) == Some(ErrorCode::Timeout))
    {
        return timed_out(state, base("timed_out").detail(detail), Some(&request_id)).await;
    }
    // Before anything is counted or audited: a failure here delivers nothing and costs nothing.
    match warning::warnings(state, &read).await {
        Ok(w) if w.is_empty() => {}
        Ok(w) => {
            response.extensions.insert(
                "warnings".to_owned(),
                async_graphql::Value::from_json(serde_json::Value::Array(w)).unwrap_or_default(),
            );
        }
        Err(e) => {
            let refusal = Refusal::internal("cannot read data set freshness", &format!("{e:?}"));
            return refuse_audited(state, base("failed").detail(detail), refusal).await;
        }
    }
    // The records the shaped response delivers; where shaping left part of it as built, what
    // the hook counted resolving (more, never less). Without the hook there is no such
    // count: a response nothing can count is not delivered (no planned operation reaches
    // this; the golden permission cases run every case both ways).
    let records = match (shape.and_then(|shape| shape.apply(&mut response)), planned) {
        (Some(records), _) => records,
        (None, false) => delivered.get(),
        (None, true) => {
            let refusal = Refusal::internal(
                "cannot count the records of a planned response",
                &"shape left part of it as built",
            );
            return refuse_audited(state, base("failed").detail(detail), refusal).await;
        }
    };

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
        let started = std::time::Instant::now();
        let reserved = state
            .quota
            .reserve(&state.db, &account, quota, records, None)
            .await;
        crate::metrics::quota_reservation(started.elapsed());
        match reserved {
            Ok(reservation) => {
                if let Some(used) = reservation.refused_with_used() {
                    return lock(
                        state,
                        account.user_id,
                        &username,
                        &source,
                        quota.records,
                        used,
                        records,
                    )
                    .await;
                }
            }
            Err(e) => {
                let refusal = quota_refusal(e);
                return refuse_audited(state, base("failed").detail(detail), refusal).await;
            }
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
    let internal_error = response
        .errors
        .iter()
        .any(|e| ErrorCode::of(e.extensions.as_ref()) == Some(ErrorCode::Internal));
    // An outcome names what happened: a failure of ours is not the caller's.
    let outcome = match (
        response.errors.is_empty(),
        response.data == async_graphql::Value::Null,
    ) {
        _ if internal_error => ErrorCode::Internal.audit_outcome(),
        (true, _) => "ok",
        (false, false) => "partial",
        (false, true) => "failed",
    };
    tracing::Span::current().record("records", records);
    crate::metrics::request(
        outcome,
        response.errors.iter().filter_map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|c| c.to_string().trim_matches('"').to_owned())
        }),
    );
    let records_i64 = i64::try_from(records).unwrap_or(i64::MAX);
    if let Err(e) = state
        .audit
        .record(base(outcome).records(records_i64).detail(detail))
        .await
    {
        return internal("audit write failed; response withheld", &e);
    }
    let mut http = server::negotiate::graphql_response(response, media);
    if let Ok(value) = axum::http::HeaderValue::from_str(&request_id) {
        http.headers_mut().insert("x-request-id", value);
    }
    http
}

/// A query stopped at the time limit: audited (no records), answered 504 with `TIMEOUT`,
/// nothing delivered and nothing counted against the quota.
pub async fn timed_out(state: &AppState, event: AuditEvent, request_id: Option<&str>) -> Response {
    crate::metrics::request(
        ErrorCode::Timeout.audit_outcome(),
        std::iter::once(ErrorCode::Timeout.as_str().to_owned()),
    );
    if let Err(e) = state.audit.record(event.records(0)).await {
        return internal("audit write failed; response withheld", &e);
    }
    let mut response = timeout_refusal();
    if let Some(Ok(value)) = request_id.map(axum::http::HeaderValue::from_str) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The answer to a request stopped at the time limit.
pub fn timeout_refusal() -> Response {
    error_response(
        StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Timeout,
        crate::error::TIMEOUT_MESSAGE,
    )
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

/// The refusal when the quota cannot be reserved: the store is down (fail closed), or the
/// counter it lost cannot be rebuilt from the audit log.
pub fn quota_refusal(err: QuotaError) -> Refusal {
    match err {
        QuotaError::Rebuild(e) => Refusal::internal("cannot rebuild a quota counter", &e),
        QuotaError::Unavailable(_) => {
            tracing::warn!(error = %err, "quota store unavailable; refusing");
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::QuotaUnavailable,
                "the download quota service is unavailable; nothing was delivered, try again shortly",
            )
        }
    }
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
        // Before any token is read: the certificate (named in the reason) is what is known.
        AuthError::Certificate(reason) => (EventType::AccessDenied, None, reason.clone()),
        AuthError::Internal(reason) => (EventType::RequestFailed, None, reason.clone()),
        AuthError::Unavailable => (EventType::RequestFailed, None, err.to_string()),
        // The account exists and its token was verified: the name is the account's, not a
        // claim, so the record says whose disabled, locked or pending account kept trying. A
        // bad token has no actor (its claimed name is whatever the forger wrote); an unknown
        // account's name above comes from a token whose signature was verified.
        AuthError::Disabled(username)
        | AuthError::Locked(username)
        | AuthError::Pending(username) => (
            EventType::AccessDenied,
            Some(username.clone()),
            err.to_string(),
        ),
    };
    let outcome = match err {
        AuthError::Internal(_) | AuthError::Unavailable => err.code().audit_outcome(),
        _ => "denied",
    };
    let mut event = AuditEvent::new(event_type, outcome).detail(json!({ "reason": reason }));
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
