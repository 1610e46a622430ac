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
//! Revocation (`DARTTS_TLS_CLIENT_CRL`, optional): the partner CAs' revocation lists, checked
//! by the same verifier (`crl` checks each list comes from a configured CA first). The file is
//! read again every `CRL_CHECK_INTERVAL`; a changed file that passes those checks replaces the
//! lists for new handshakes and for every request on a connection already open, which the
//! verifier checks again (`client_cert`), so a certificate revoked mid-connection is refused on
//! its next request and the connection closed. A changed file that fails keeps the previous
//! lists in force, and says so in the log. A list past its `nextUpdate` refuses its CA's
//! certificates until a newer one is in the file.

mod audited;
mod crl;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::tls::TlsInfo;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{CertRevocationListError, RootCertStore, ServerConfig};

use crate::auth::AuthError;
use crate::auth::partner::ClientCert;
use crate::config::TlsSettings;
use crate::delivery;
use crate::state::AppState;

/// How often the revocation list file is read again. Revoking is urgent, reading a small file
/// is not expensive.
const CRL_CHECK_INTERVAL: Duration = Duration::from_secs(5);

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
    #[error("DARTTS_TLS_CLIENT_CRL={path}: {reason}")]
    ClientCrl { path: String, reason: String },
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
    trust: Arc<Trust>,
    /// The revocation list file as read for `config`: what a change is measured against.
    crl: Option<Vec<u8>>,
    pub addr: SocketAddr,
}

/// The client verifier in force: the handshake's, kept here too so that every request is
/// checked against the lists of now, not those of its connection's handshake.
struct Trust {
    settings: TlsSettings,
    /// Unaudited: a request it refuses is audited by `client_cert`.
    verifier: RwLock<Arc<dyn ClientCertVerifier>>,
    /// Audits the handshakes the lists refuse (`audited`), and holds the state requests are
    /// audited with.
    recorder: Arc<audited::Recorder>,
}

impl Trust {
    fn check(&self, chain: &[Vec<u8>]) -> Result<(), String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err("no client certificate".into());
        };
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let verifier = Arc::clone(&self.verifier.read().unwrap_or_else(PoisonError::into_inner));
        verifier
            .verify_client_cert(
                &CertificateDer::from(leaf.as_slice()),
                &intermediates,
                UnixTime::now(),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Reads the PEM files and binds `settings.listen`; any problem stops start-up, naming the
/// setting. `state` audits the handshakes and requests refused for their certificate.
pub async fn bind(settings: &TlsSettings, state: AppState) -> Result<Bound, TlsError> {
    let recorder = audited::Recorder::new(state);
    let crl = match &settings.client_crl {
        Some(path) => Some(std::fs::read(path).map_err(|e| TlsError::File {
            setting: "DARTTS_TLS_CLIENT_CRL",
            path: path.display().to_string(),
            reason: e.to_string(),
        })?),
        None => None,
    };
    let loaded = load(settings, crl.as_deref(), &recorder)?;
    if crl.is_some() {
        in_force(&loaded);
    }
    let config = RustlsConfig::from_config(loaded.config);
    let trust = Arc::new(Trust {
        settings: settings.clone(),
        verifier: RwLock::new(loaded.verifier),
        recorder,
    });
    let addr = settings.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .and_then(|l| l.into_std())
        .map_err(|source| TlsError::Bind { addr, source })?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        listener,
        config,
        trust,
        crl,
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
    let watcher = match (&bound.trust.settings.client_crl, bound.crl) {
        (Some(path), Some(read)) => Some(tokio::spawn(watch(
            Arc::clone(&bound.trust),
            bound.config.clone(),
            path.clone(),
            read,
        ))),
        _ => None,
    };
    let app = router.layer(middleware::from_fn_with_state(bound.trust, client_cert));
    let tls = RustlsAcceptor::new(bound.config);
    let mut server = axum_server::from_tcp(bound.listener)?.acceptor(audited::WithPeer(tls));
    server
        .http_builder()
        .http1()
        .header_read_timeout(REQUEST_HEAD_TIMEOUT);
    let served = server
        .handle(handle)
        .http1_only()
        .first_request_timeout(REQUEST_HEAD_TIMEOUT)
        // Refused handshakes (no certificate, an untrusted one) are worth seeing in the log.
        .accept_error_handler(|peer, error| {
            tracing::info!(peer = ?peer, %error, "mTLS connection refused");
        })
        // Connection info, as on the plain listener: the source address of each request.
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    served?;
    Ok(())
}

/// Re-reads the revocation list file every `CRL_CHECK_INTERVAL` and, when it changed and
/// passes `load`, puts its lists in force for handshakes and requests alike.
async fn watch(
    trust: Arc<Trust>,
    config: RustlsConfig,
    path: std::path::PathBuf,
    mut last: Vec<u8>,
) {
    let mut unreadable = false;
    loop {
        tokio::time::sleep(CRL_CHECK_INTERVAL).await;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(error) => {
                if !unreadable {
                    crate::metrics::partner_crl_reload("unreadable");
                    tracing::error!(
                        path = %path.display(),
                        %error,
                        "cannot read the partner revocation list file; the lists read before \
                         stay in force"
                    );
                }
                unreadable = true;
                continue;
            }
        };
        unreadable = false;
        if last == bytes {
            continue;
        }
        match load(&trust.settings, Some(&bytes), &trust.recorder) {
            Ok(loaded) => {
                config.reload_from_config(Arc::clone(&loaded.config));
                *trust
                    .verifier
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&loaded.verifier);
                crate::metrics::partner_crl_reload("ok");
                tracing::info!(
                    path = %path.display(),
                    lists = loaded.lists,
                    "partner revocation lists reloaded"
                );
                in_force(&loaded);
            }
            Err(error) => {
                crate::metrics::partner_crl_reload("refused");
                tracing::error!(
                    %error,
                    "the changed partner revocation list file is refused; the lists read \
                     before stay in force"
                );
            }
        }
        last = bytes;
    }
}

/// Reports the lists just put in force (metrics, and a warning when one is already out of
/// date).
fn in_force(loaded: &Loaded) {
    crate::metrics::partner_crl_in_force(loaded.revoked, loaded.next_update);
    let now = i64::try_from(UnixTime::now().as_secs()).unwrap_or(i64::MAX);
    if loaded.next_update.is_some_and(|next| next < now) {
        tracing::warn!(
            next_update = loaded.next_update,
            "a partner revocation list is past its nextUpdate: that CA's certificates are \
             refused until a newer list is in DARTTS_TLS_CLIENT_CRL"
        );
    }
}

/// The server configuration and its client verifier, from the files of `settings` and the
/// revocation list file's content `crl`; the configuration's verifier audits with `recorder`.
struct Loaded {
    config: Arc<ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
    lists: usize,
    revoked: usize,
    next_update: Option<i64>,
}

/// Why rustls refuses a list `crl::read` let through, in words an operator can act on.
fn unusable_list(e: &CertRevocationListError) -> String {
    let what = match e {
        CertRevocationListError::UnsupportedDeltaCrl => {
            "a delta list; give the CA's complete list".to_owned()
        }
        // webpki reads the version as required, so a version 1 list (which has none) does not
        // parse, and a version past 2 is refused as such.
        CertRevocationListError::ParseError => {
            "a list it cannot parse (a version 1 list is one); version 2 is needed".to_owned()
        }
        CertRevocationListError::UnsupportedCrlVersion => {
            "a list of another version; version 2 is needed".to_owned()
        }
        CertRevocationListError::UnsupportedIndirectCrl => {
            "an indirect list; each CA's own list is needed".to_owned()
        }
        other => format!("{other:?}"),
    };
    format!("a list rustls cannot use: {what}")
}

fn load(
    settings: &TlsSettings,
    crl: Option<&[u8]>,
    recorder: &Arc<audited::Recorder>,
) -> Result<Loaded, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates("DARTTS_TLS_CERT", &settings.cert)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| TlsError::File {
        setting: "DARTTS_TLS_KEY",
        path: settings.key.display().to_string(),
        reason: format!("no usable private key: {e}"),
    })?;
    let cas = certificates("DARTTS_TLS_CLIENT_CA", &settings.client_ca)?;
    let lists = match &settings.client_crl {
        None => None,
        Some(path) => {
            let refused = |reason: String| TlsError::ClientCrl {
                path: path.display().to_string(),
                reason,
            };
            let pem = crl.ok_or_else(|| refused("the file was not read".into()))?;
            Some(crl::read(pem, &cas).map_err(refused)?)
        }
    };
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| TlsError::ClientCa(format!("not a usable CA certificate: {e}")))?;
    }
    // Requires a certificate (no `allow_unauthenticated`): the handshake itself refuses
    // clients without one.
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let (mut count, mut revoked, mut next_update) = (0, 0, None);
    if let Some(lists) = lists {
        (count, revoked, next_update) = (lists.ders.len(), lists.revoked, lists.next_update);
        // The whole chain is checked and a certificate whose issuer has no list is refused
        // (rustls's defaults); a list past its nextUpdate no longer vouches for anything.
        builder = builder
            .with_crls(lists.ders)
            .enforce_revocation_expiration();
    }
    let verifier = builder
        .build()
        .map_err(|e| match (e, &settings.client_crl) {
            // One `crl::read` let through but rustls cannot use (a delta list, a version-1 list).
            (VerifierBuilderError::InvalidCrl(e), Some(path)) => TlsError::ClientCrl {
                path: path.display().to_string(),
                reason: unusable_list(&e),
            },
            (e, _) => TlsError::ClientCa(e.to_string()),
        })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::ServerCert(e.to_string()))?
        .with_client_cert_verifier(Arc::new(audited::Audited::new(
            Arc::clone(&verifier),
            Arc::clone(recorder),
        )))
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::ServerCert(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        verifier,
        lists: count,
        revoked,
        next_update,
    })
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

/// Makes the leaf certificate available to handlers as a `ClientCert`, once the verifier in
/// force accepts its chain again: the handshake may predate a revocation.
async fn client_cert(
    State(trust): State<Arc<Trust>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(info) = request.extensions().get::<Arc<TlsInfo>>().cloned() else {
        // The verifier requires a certificate, so this is a bug, never a partner's mistake.
        return (StatusCode::UNAUTHORIZED, "client certificate required").into_response();
    };
    let Some(leaf) = info.peer_certificates.first() else {
        return (StatusCode::UNAUTHORIZED, "client certificate required").into_response();
    };
    let cert = ClientCert::from_der(leaf);
    if let Err(reason) = trust.check(&info.peer_certificates) {
        let refusal =
            AuthError::Certificate(format!("client certificate {}: {reason}", cert.thumbprint));
        let source = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        delivery::audit_refusal(trust.recorder.state(), &refusal, source).await;
        let mut response = delivery::refuse(&refusal);
        // The next handshake meets the same verifier and fails: nothing more on this one.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    request.extensions_mut().insert(cert);
    next.run(request).await
}
