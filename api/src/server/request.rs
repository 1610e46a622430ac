//! Reading `POST /graphql` bodies: one JSON request object, within the body limit, with a
//! document inside `graphql::limits`. Every refusal is a GraphQL-shaped error with a stable
//! code, never the text of an extractor's error.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};

use crate::delivery::Refusal;
use crate::error::ErrorCode;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::error::ApiError;
use crate::graphql::{filters, limits};

fn too_large() -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BadUserInput,
        format!(
            "the request body is larger than {} KiB",
            super::MAX_BODY_BYTES / 1024
        ),
    )
}

/// The body, at most `MAX_BODY_BYTES`. An announced `Content-Length` over the limit is refused
/// before a byte is read (the client may still be waiting to send it), a chunked body as soon
/// as it passes the limit.
pub async fn body(headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > super::MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|error| {
            tracing::info!(%error, "unreadable request body");
            Refusal::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadUserInput,
                "the request body could not be read",
            )
        })?;
        if bytes.len() + chunk.len() > super::MAX_BODY_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// The request in `body`, or the answer refusing it. Runs before authentication: the limits
/// hold for the partners' pre-auth `login` too.
pub fn read(body: &[u8]) -> Result<async_graphql::Request, Refusal> {
    if body.trim_ascii_start().starts_with(b"[") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "batched requests are not accepted: send one operation per request",
        ));
    }
    let mut request: async_graphql::Request = serde_json::from_slice(body).map_err(|e| {
        // serde's own wording names Rust types ("expected struct Request"); the category and
        // position are what a client can act on.
        let what = if e.is_data() {
            "it must be a JSON object with a string \"query\" and optional \"operationName\" \
             (string) and \"variables\" (object)"
        } else {
            "it is not valid JSON"
        };
        Refusal::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            format!(
                "the body is not a GraphQL request: {what} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let document = limits::check(&request.query).map_err(|limits::TooComplex(reason)| {
        Refusal::new(StatusCode::BAD_REQUEST, ErrorCode::QueryTooComplex, reason)
    })?;
    let variables = serde_json::to_value(&request.variables).unwrap_or_default();
    let literals = document.as_ref().map(literals).unwrap_or_default();
    for input in std::iter::once(&variables).chain(&literals) {
        filters::refuse_nul(input).map_err(|e| {
            let message = match e {
                ApiError::BadUserInput(m) => m,
                other => format!("{other:?}"),
            };
            Refusal::new(StatusCode::BAD_REQUEST, ErrorCode::BadUserInput, message)
        })?;
    }
    // Parsed once: the audit record and async-graphql's executor read this document instead
    // of parsing the text again (each parse was about 2% of a small request's time).
    if let Some(document) = document {
        request.set_parsed_query(document);
    }
    Ok(request)
}

/// Every argument value written in the document, as JSON.
fn literals(doc: &ExecutableDocument) -> Vec<serde_json::Value> {
    fn values(set: &SelectionSet, out: &mut Vec<serde_json::Value>) {
        for item in &set.items {
            let (directives, inner) = match &item.node {
                Selection::Field(f) => {
                    out.extend(f.node.arguments.iter().map(|(_, v)| json(&v.node)));
                    (&f.node.directives, Some(&f.node.selection_set.node))
                }
                Selection::InlineFragment(i) => {
                    (&i.node.directives, Some(&i.node.selection_set.node))
                }
                Selection::FragmentSpread(s) => (&s.node.directives, None),
            };
            for d in directives {
                out.extend(d.node.arguments.iter().map(|(_, v)| json(&v.node)));
            }
            if let Some(inner) = inner {
                values(inner, out);
            }
        }
    }
    // Written as JSON, a variable becomes `{"$var": name}`: its value is checked separately.
    fn json(value: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(value).unwrap_or_default()
    }
    let mut out = Vec::new();
    for (_, op) in doc.operations.iter() {
        for var in &op.node.variable_definitions {
            if let Some(default) = &var.node.default_value {
                out.push(json(&default.node));
            }
        }
        values(&op.node.selection_set.node, &mut out);
    }
    for fragment in doc.fragments.values() {
        values(&fragment.node.selection_set.node, &mut out);
    }
    out
}
