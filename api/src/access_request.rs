//! `POST /auth/request-access`: how a signed-in person without an account asks for one.
//!
//! The caller proves who they are with a token (SSO in production) whose subject has no local
//! account yet; the request names a role, a supervisor and a reason, and creates a PENDING
//! account that the supervisor and then an administrator approve (`approveAccess`). The role
//! asked for is only a request: nothing is granted until both approvals are recorded.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::accounts::{self, AccessRequest, AccountError};
use crate::auth::partner::ClientCert;
use crate::auth::{self, AuthError};
use crate::error::ErrorCode;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Body {
    role: String,
    nation: Option<String>,
    supervisor: String,
    justification: String,
}

const MAX_JUSTIFICATION: usize = 2_000;

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "code": code.as_str(), "message": message })),
    )
        .into_response()
}

pub async fn handle(
    State(state): State<AppState>,
    client_cert: Option<Extension<ClientCert>>,
    headers: HeaderMap,
    body: Result<Json<Body>, JsonRejection>,
) -> Response {
    let cert = client_cert.map(|Extension(c)| c);
    let username = match auth::authenticate(&state, &headers, cert.as_ref()).await {
        Err(AuthError::UnknownAccount(username)) => username,
        Ok(_) => {
            return error(
                StatusCode::CONFLICT,
                ErrorCode::BadUserInput,
                "you already have an account",
            );
        }
        Err(e @ (AuthError::Disabled(_) | AuthError::Pending(_) | AuthError::Locked(_))) => {
            return error(StatusCode::CONFLICT, e.code(), &e.to_string());
        }
        Err(e) => return error(e.status(), e.code(), &e.to_string()),
    };
    let body = match body {
        Ok(Json(body)) => body,
        // The rejection names the JSON problem (missing field, wrong type), never internals.
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                &format!(
                    "send JSON {{ role, nation?, supervisor, justification }}: {}",
                    rejection.body_text()
                ),
            );
        }
    };
    let justification = body.justification.trim();
    if justification.is_empty() || justification.chars().count() > MAX_JUSTIFICATION {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            &format!("justification must be 1 to {MAX_JUSTIFICATION} characters"),
        );
    }
    let request = AccessRequest {
        username: &username,
        role: &body.role,
        nation: body.nation.as_deref(),
        supervisor: &body.supervisor,
        justification,
    };
    match accounts::request_access(&state.db, &state.policy, request).await {
        Ok(account) => (
            StatusCode::CREATED,
            Json(json!({ "username": account.username, "status": account.status, "supervisor": account.supervisor })),
        )
            .into_response(),
        Err(AccountError::Database(e)) => {
            let reference = uuid::Uuid::new_v4();
            tracing::error!(%reference, error = %e, "access request failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                &format!("internal error (reference {reference})"),
            )
        }
        Err(e @ AccountError::Exists(_)) => error(StatusCode::CONFLICT, ErrorCode::BadUserInput, &e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, &e.to_string()),
    }
}
