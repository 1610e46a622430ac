//! The HTTP surface: `POST /graphql`, GraphiQL where enabled, sign-in (`/auth/*`), and health
//! probes. Served on the plain listener (`DARTTS_LISTEN`) and, when configured, on the
//! foreign partners' mTLS listener (`DARTTS_TLS_LISTEN`, `tls`) too.

pub(crate) mod negotiate;
mod request;
pub mod tls;

pub use negotiate::MediaType;

use std::net::SocketAddr;

use async_graphql::http::GraphiQLSource;
use axum::Extension;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::access_request;
use crate::audit::{AuditEvent, EventType};
use crate::auth;
use crate::auth::partner::{ClientCert, PreAuth};
use crate::delivery;
use crate::error::ErrorCode;
use crate::export;
use crate::graphql::{self, Executors};
use crate::state::AppState;

/// No legitimate query document comes near this.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "DARTTS_LISTEN={0}: without a sign-in configured (DARTTS_OIDC_ISSUER or \
         DARTTS_TLS_LISTEN) the server only listens on a loopback address (127.0.0.1 or ::1)"
    )]
    NotLoopback(SocketAddr),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
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
    schema: Executors,
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
        .route("/export/{file}", get(export::handle))
        // Single sign-on driven by the server (404 unless an OIDC client is configured).
        .route("/auth/login", get(auth::login::login))
        .route("/auth/callback", get(auth::login::callback))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        // Enforced by the body extractors, so a refusal (also of a chunked body) is the
        // handler's GraphQL-shaped answer, not the limit layer's text.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(http)
}

/// How long open mTLS connections get to finish once shutdown starts.
const TLS_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds both listeners (the mTLS one first, when configured) and serves until Ctrl-C /
/// SIGTERM; `on_tls_ready` and `on_ready` get their bound addresses.
///
/// The plain listener stays on loopback unless real sign-in is configured. With OIDC, every
/// token on it comes from the agency's provider or a session it vouched for. With the mTLS
/// listener, partners sign in there and their certificate-bound tokens are refused here; the
/// plain listener then serves health probes and operators inside the deployment's network,
/// with tokens that need a shell on the server (`dartts token`). Without either, the only
/// tokens are local ones and the server stays a single-machine tool.
pub async fn serve(
    state: AppState,
    on_ready: impl FnOnce(SocketAddr),
    on_tls_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let addr = state.settings.listen;
    let sign_in_configured = state.settings.oidc.is_some() || state.settings.tls.is_some();
    if !addr.ip().is_loopback() && !sign_in_configured {
        return Err(ServeError::NotLoopback(addr));
    }
    let mtls = match &state.settings.tls {
        Some(settings) => Some(tls::bind(settings, state.clone()).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    if let Some(addr) = state.settings.operations.metrics_listen {
        let bound = crate::metrics::serve(state.clone(), addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        eprintln!("dartts: metrics at http://{bound}/metrics");
    }
    let app = router(state);
    if let Some(mtls) = &mtls {
        on_tls_ready(mtls.addr);
    }
    on_ready(listener.local_addr()?);
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Connection info gives the audit log each request's source address.
    let plain = axum::serve(
        listener,
        app.clone()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));
    let Some(mtls) = mtls else {
        plain.await?;
        return Ok(());
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    let stop_tls = stopped(stop_rx);
    tokio::spawn(async move {
        stop_tls.await;
        stopper.graceful_shutdown(Some(TLS_GRACE));
    });
    let plain = async { plain.await.map_err(ServeError::from) };
    let secure = async {
        tls::serve(mtls, app, handle)
            .await
            .map_err(ServeError::from)
    };
    tokio::try_join!(plain, secure)?;
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

async fn graphiql(
    State(http): State<Http>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    client_cert: Option<Extension<ClientCert>>,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
) -> Response {
    if http.state.settings.graphiql {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    }
    // Operations are POST-only: a GET with a query string could carry a mutation past CSRF
    // defences, so it is not accepted at all.
    let message = "use POST";
    let source = client.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    let cert = client_cert.map(|Extension(c)| c);
    let detail =
        serde_json::json!({ "method": "GET", "querySha256": query.0.as_deref().map(sha256) });
    let refused = Refused {
        code: ErrorCode::BadUserInput,
        message,
        detail,
    };
    audit_if_known(&http, &headers, cert.as_ref(), source, refused).await;
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        message,
    )
        .into_response()
}

fn sha256(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// A request refused before it ran, as its audit record describes it.
struct Refused<'a> {
    code: ErrorCode,
    message: &'a str,
    detail: serde_json::Value,
}

/// Audits a request refused before it was authenticated (its method or body), when it carries
/// the token of a known account: every refusal of a known principal leaves an event with its
/// actor, like the refusals after authentication. A request without a valid token gets no
/// event here: it was refused for its shape, and whoever sent it is not known.
async fn audit_if_known(
    http: &Http,
    headers: &HeaderMap,
    cert: Option<&ClientCert>,
    source: Option<String>,
    refused: Refused<'_>,
) {
    let Ok(principal) = auth::authenticate(&http.state, headers, cert).await else {
        return;
    };
    let mut base = AuditEvent::new(EventType::Query, "failed")
        .actor(principal.username)
        .detail(refused.detail);
    if let Some(s) = source {
        base = base.source(s);
    }
    delivery::audit_refused(&http.state, base, refused.code, refused.message).await;
}

/// JSON only: async-graphql would otherwise parse a `text/plain` body as JSON, which lets a
/// plain HTML form post a query cross-site.
async fn graphql_post(
    State(http): State<Http>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    client_cert: Option<Extension<ClientCert>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    let source = client.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    let cert = client_cert.map(|Extension(c)| c);
    if !json {
        let message = "Content-Type must be application/json";
        let refused = Refused {
            code: ErrorCode::BadUserInput,
            message,
            detail: serde_json::json!({ "method": "POST" }),
        };
        audit_if_known(&http, &headers, cert.as_ref(), source, refused).await;
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response();
    }
    let body = match request::body(&headers, body).await {
        Ok(b) => b,
        Err(refusal) => {
            let refused = Refused {
                code: refusal.code,
                message: &refusal.message,
                detail: serde_json::json!({ "method": "POST" }),
            };
            audit_if_known(&http, &headers, cert.as_ref(), source, refused).await;
            return refusal.into_response();
        }
    };
    let request = match request::read(&body) {
        Ok(r) => r,
        Err(refusal) => {
            // Hashed, as a query's document is: the body may hold a screened name.
            let refused = Refused {
                code: refusal.code,
                message: &refusal.message,
                detail: serde_json::json!({ "method": "POST", "bodySha256": sha256(&body) }),
            };
            audit_if_known(&http, &headers, cert.as_ref(), source, refused).await;
            return refusal.into_response();
        }
    };
    // A partner signing in has no token yet: over mTLS, a document that only asks for `login`
    // runs without one (an Authorization header is ignored, so an expired token does not
    // stand in the way of a new one). Anything else needs a token, as everywhere.
    if let Some(cert) = &cert
        && graphql::login::is_login_only(&request)
    {
        let media = MediaType::from_headers(&headers);
        return pre_auth(&http, request, cert.clone(), source, media).await;
    }
    let principal = match auth::authenticate(&http.state, &headers, cert.as_ref()).await {
        Ok(p) => p,
        Err(e) => {
            delivery::audit_refusal(&http.state, &e, source).await;
            return delivery::refuse(&e);
        }
    };
    delivery::execute(
        &http.state,
        &http.schema,
        principal,
        request,
        source,
        MediaType::from_headers(&headers),
    )
    .await
}

/// Runs a login-only document without a principal: the field guard then resolves only
/// PRE_AUTH fields (`Mutation.login` and its result). The answer may hold a token: never
/// cached.
async fn pre_auth(
    http: &Http,
    mut request: async_graphql::Request,
    cert: ClientCert,
    source: Option<String>,
    media: MediaType,
) -> Response {
    let shape = http.schema.shape(&mut request);
    let mut response = http
        .schema
        .per_field
        .execute(request.data(PreAuth { cert, source }))
        .await;
    crate::error::scrub(&mut response.errors);
    // A sign-in delivers no records: the count is not needed.
    if let Some(shape) = &shape {
        shape.apply(&mut response);
    }
    let mut response = negotiate::graphql_response(response, media);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
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
