//! The foreign partners' mTLS listener (`DARTTS_TLS_*`): the same router as the plain listener,
//! behind a TLS handshake that requires a client certificate chained to the configured CA.
//!
//! rustls (`ring` provider, TLS 1.2 and 1.3, HTTP/1.1 only like the plain listener) verifies the
//! client chain with `WebPkiClientVerifier`; a client without a certificate, or with one from
//! another CA, fails the handshake and never reaches a handler. axum-server runs the listener
//! (handshake timeout, graceful shutdown) and puts the handshake's `TlsInfo` into every
//! request's extensions; `client_cert` turns the leaf certificate into the `ClientCert` that
//! authentication reads. Clients cannot set extensions, so only this listener can produce one.
//!
//! Revocation: no CRL is configured yet; a partner's certificate is withdrawn by re-issuing the
//! CA or, faster, by disabling the accounts that partner uses.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::tls::TlsInfo;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::auth::partner::ClientCert;
use crate::config::TlsSettings;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting}={path}: {reason}")]
    File {
        setting: &'static str,
        path: String,
        reason: String,
    },
    #[error("DARTTS_TLS_CLIENT_CA: {0}")]
    ClientCa(String),
    #[error("DARTTS_TLS_CERT / DARTTS_TLS_KEY: {0}")]
    ServerCert(String),
    #[error("cannot listen on {addr} (DARTTS_TLS_LISTEN): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("mTLS listener stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound listener with its TLS configuration, not serving yet.
pub struct Bound {
    listener: std::net::TcpListener,
    config: RustlsConfig,
    pub addr: SocketAddr,
}

/// Reads the PEM files and binds `settings.listen`; any problem stops start-up, naming the
/// setting.
pub async fn bind(settings: &TlsSettings) -> Result<Bound, TlsError> {
    let config = RustlsConfig::from_config(server_config(settings)?);
    let addr = settings.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .and_then(|l| l.into_std())
        .map_err(|source| TlsError::Bind { addr, source })?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        listener,
        config,
        addr,
    })
}

/// How long a connection may take to send its first request, and any request its headers
/// (a connection that trickles bytes holds a task and a socket).
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on the bound listener until `handle` is told to shut down.
pub async fn serve(
    bound: Bound,
    router: Router,
    handle: Handle<SocketAddr>,
) -> Result<(), TlsError> {
    let app = router.layer(middleware::from_fn(client_cert));
    let mut server = axum_server::from_tcp_rustls(bound.listener, bound.config)?;
    server
        .http_builder()
        .http1()
        .header_read_timeout(REQUEST_HEAD_TIMEOUT);
    server
        .handle(handle)
        .http1_only()
        .first_request_timeout(REQUEST_HEAD_TIMEOUT)
        // Refused handshakes (no certificate, an untrusted one) are worth seeing in the log.
        .accept_error_handler(|peer, error| {
            tracing::info!(peer = ?peer, %error, "mTLS connection refused");
        })
        // Connection info, as on the plain listener: the source address of each request.
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await?;
    Ok(())
}

fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("DARTTS_TLS_CERT", &settings.cert)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| TlsError::File {
        setting: "DARTTS_TLS_KEY",
        path: settings.key.display().to_string(),
        reason: format!("no usable private key: {e}"),
    })?;
    let mut roots = RootCertStore::empty();
    for ca in certificates("DARTTS_TLS_CLIENT_CA", &settings.client_ca)? {
        roots
            .add(ca)
            .map_err(|e| TlsError::ClientCa(format!("not a usable CA certificate: {e}")))?;
    }
    // Requires a certificate (no `allow_unauthenticated`): the handshake itself refuses
    // clients without one.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::ClientCa(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::ServerCert(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::ServerCert(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every CERTIFICATE block of a PEM file; at least one.
fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::File {
        setting,
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(error("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// Makes the verified leaf certificate available to handlers as a `ClientCert`.
async fn client_cert(mut request: Request, next: Next) -> Response {
    let cert = request
        .extensions()
        .get::<Arc<TlsInfo>>()
        .and_then(|info| info.peer_certificates.first())
        .map(|der| ClientCert::from_der(der));
    match cert {
        Some(cert) => {
            request.extensions_mut().insert(cert);
            next.run(request).await
        }
        // The verifier requires a certificate, so this is a bug, never a partner's mistake.
        None => (StatusCode::UNAUTHORIZED, "client certificate required").into_response(),
    }
}
