//! The HTTP surface: `POST /graphql`, GraphiQL where enabled, sign-in (`/auth/*`), and health
//! probes.

use std::net::SocketAddr;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;

use crate::access_request;
use crate::auth::{self, AuthError};
use crate::graphql::{self, DarttsSchema};
use crate::state::AppState;

/// No legitimate query document comes near this.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "DARTTS_LISTEN={0}: until access control is in place the server only listens on a \
         loopback address (127.0.0.1 or ::1)"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server stopped: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
struct Http {
    schema: DarttsSchema,
    state: AppState,
}

impl FromRef<Http> for AppState {
    fn from_ref(http: &Http) -> AppState {
        http.state.clone()
    }
}

pub fn router(state: AppState) -> Router {
    let http = Http {
        schema: graphql::build(state.clone()),
        state,
    };
    Router::new()
        .route("/graphql", get(graphiql).post(graphql_post))
        .route("/auth/request-access", post(access_request::handle))
        // Single sign-on driven by the server (404 unless an OIDC client is configured).
        .route("/auth/login", get(auth::login::login))
        .route("/auth/callback", get(auth::login::callback))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(http)
}

/// Binds (refusing non-loopback addresses for now) and serves until Ctrl-C / SIGTERM.
pub async fn serve(state: AppState, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let addr = state.settings.listen;
    if !addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    on_ready(listener.local_addr()?);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn graphiql(State(http): State<Http>) -> Response {
    if http.state.settings.graphiql {
        Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response()
    } else {
        // Operations are POST-only: a GET with a query string could carry a mutation past
        // CSRF defences, so it is not accepted at all.
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "use POST",
        )
            .into_response()
    }
}

/// JSON only: async-graphql would otherwise parse a `text/plain` body as JSON, which lets a
/// plain HTML form post a query cross-site.
async fn graphql_post(
    State(http): State<Http>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        )
            .into_response();
    }
    let principal = match auth::authenticate(&http.state, &headers).await {
        Ok(p) => p,
        Err(e) => return refuse(&e),
    };
    let mut response = http
        .schema
        .execute(request.into_inner().data(principal))
        .await;
    crate::error::scrub(&mut response.errors);
    GraphQLResponse::from(response).into_response()
}

/// A GraphQL-shaped error body with the right HTTP status, for requests refused before
/// execution. The reason for an invalid token is logged, not sent.
fn refuse(err: &AuthError) -> Response {
    match err {
        AuthError::Invalid(reason) | AuthError::UnknownAccount(reason) => {
            tracing::info!(reason, "token refused");
        }
        AuthError::Internal(reason) => tracing::error!(reason, "authentication failed"),
        _ => {}
    }
    let message = match err {
        AuthError::Internal(_) => "internal error".to_owned(),
        other => other.to_string(),
    };
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": err.code().as_str() } }],
    });
    let mut response = (err.status(), axum::Json(body)).into_response();
    if err.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

async fn ready(State(http): State<Http>) -> Response {
    match http.state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
