//! The handshake's client verifier, with an audit record when it refuses a revoked certificate:
//! a withdrawn partner, or whoever holds its key, still trying is what a revocation is there to
//! catch. Only `Revoked` is recorded: webpki checks revocation once the chain verified to a
//! partner CA, so the certificate is one that CA issued. Every other refusal (no certificate,
//! another CA, a self-made certificate that merely expired) can come from anyone on the network
//! and stays in the log only, as before: an audit row each would let them fill the log. A
//! revoked certificate is recorded at most once per `QUIET` (a client retrying in a loop).
//!
//! A verifier is not told who is connecting, and an audit record says where from: `WithPeer`
//! runs each connection's accept, handshake included, with the peer's address in a task-local
//! that the verifier reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum_server::accept::Accept;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpStream;
use tokio::task::futures::TaskLocalFuture;

use crate::auth::AuthError;
use crate::auth::partner::ClientCert;
use crate::delivery;
use crate::state::AppState;

tokio::task_local! {
    /// The address of the peer whose connection is being accepted (`WithPeer`).
    static PEER: Option<SocketAddr>;
}

/// An acceptor (the TLS one) run with the connection's peer address in `PEER`.
#[derive(Clone)]
pub struct WithPeer<A>(pub A);

impl<A, S> Accept<TcpStream, S> for WithPeer<A>
where
    A: Accept<TcpStream, S>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = TaskLocalFuture<Option<SocketAddr>, A::Future>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok();
        PEER.scope(peer, self.0.accept(stream, service))
    }
}

/// How long one certificate's refusals go unrecorded after one was.
const QUIET: Duration = Duration::from_secs(60);
/// More certificates than any partner CA has: past it, the quiet periods over are forgotten.
const REMEMBERED: usize = 1024;

#[derive(Debug)]
pub struct Audited {
    inner: Arc<dyn ClientCertVerifier>,
    recorder: Arc<Recorder>,
}

/// What the verifiers of successive lists share: the audit and each certificate's last record.
pub struct Recorder {
    state: AppState,
    quiet: Quiet,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    pub fn new(state: AppState) -> Arc<Self> {
        Arc::new(Recorder {
            state,
            quiet: Quiet::default(),
        })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// When each certificate's refusal was last recorded.
#[derive(Default)]
struct Quiet {
    last: Mutex<HashMap<String, Instant>>,
}

impl Quiet {
    /// Whether `thumbprint`'s refusal at `now` is due a record (and, if so, marks it recorded).
    fn due(&self, thumbprint: &str, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last
            .get(thumbprint)
            .is_some_and(|at| now.saturating_duration_since(*at) < QUIET)
        {
            return false;
        }
        if last.len() >= REMEMBERED {
            last.retain(|_, at| now.saturating_duration_since(*at) < QUIET);
        }
        last.insert(thumbprint.to_owned(), now);
        true
    }
}

impl Audited {
    pub fn new(inner: Arc<dyn ClientCertVerifier>, recorder: Arc<Recorder>) -> Self {
        Audited { inner, recorder }
    }
}

impl ClientCertVerifier for Audited {
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(rustls::Error::InvalidCertificate(CertificateError::Revoked)) = &verdict {
            let thumbprint = ClientCert::from_der(end_entity).thumbprint;
            let source = PEER.try_with(|peer| peer.map(|addr| addr.ip().to_string()));
            // The handshake runs inside the runtime; outside it (never here) nothing is lost
            // but the record, and the refusal stands either way.
            if self.recorder.quiet.due(&thumbprint, Instant::now())
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                let recorder = Arc::clone(&self.recorder);
                runtime.spawn(async move {
                    let refusal = AuthError::Certificate(format!(
                        "client certificate {thumbprint} refused at the handshake: revoked"
                    ));
                    delivery::audit_refusal(&recorder.state, &refusal, source.ok().flatten()).await;
                });
            }
        }
        verdict
    }

    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_certificate_per_quiet_period() {
        let quiet = Quiet::default();
        let start = Instant::now();
        assert!(quiet.due("a", start));
        assert!(!quiet.due("a", start + QUIET / 2));
        assert!(quiet.due("b", start + QUIET / 2));
        assert!(quiet.due("a", start + QUIET));
        assert!(!quiet.due("b", start + QUIET));
    }

    #[test]
    fn certificates_past_their_quiet_period_are_forgotten_when_many() {
        let quiet = Quiet::default();
        let start = Instant::now();
        for n in 0..REMEMBERED {
            assert!(quiet.due(&n.to_string(), start));
        }
        // Full: the next one clears those whose quiet period is over, and only those.
        assert!(quiet.due("late", start + QUIET / 2));
        assert_eq!(quiet.last.lock().unwrap().len(), REMEMBERED + 1);
        assert!(quiet.due("later", start + QUIET * 2));
        assert_eq!(quiet.last.lock().unwrap().len(), 1);
        assert!(!quiet.due("later", start + QUIET * 2));
    }
}
