//! Reading `POST /graphql` bodies: one JSON request object, within the body limit, with a
//! document inside `graphql::limits`. Every refusal is a GraphQL-shaped error with a stable
//! code, never the text of an extractor's error.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::delivery::error_response;
use crate::error::ErrorCode;
use crate::graphql::limits;

/// A body refused before anything ran.
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error_response(self.status, self.code, &self.message)
    }
}

fn refused(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Refused {
    Refused {
        status,
        code,
        message: message.into(),
    }
}

/// The request in `body`, or the answer refusing it. Runs before authentication: the limits
/// hold for the partners' pre-auth `login` too.
pub fn read(body: Result<Bytes, BytesRejection>) -> Result<async_graphql::Request, Refused> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadUserInput,
                format!(
                    "the request body is larger than {} KiB",
                    super::MAX_BODY_BYTES / 1024
                ),
            )
        } else {
            tracing::info!(error = %rejection, "unreadable request body");
            refused(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the request body could not be read",
            )
        }
    })?;
    if body.trim_ascii_start().starts_with(b"[") {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "batched requests are not accepted: send one operation per request",
        ));
    }
    let request: async_graphql::Request = serde_json::from_slice(&body).map_err(|e| {
        refused(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            format!("the body is not a GraphQL request: {e}"),
        )
    })?;
    limits::check(&request.query).map_err(|limits::TooComplex(reason)| {
        refused(StatusCode::BAD_REQUEST, ErrorCode::QueryTooComplex, reason)
    })?;
    Ok(request)
}
