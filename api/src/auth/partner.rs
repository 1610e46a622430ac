//! The foreign partners' sign-in (DESIGN §6): a client certificate signed by the configured CA
//! (checked during the TLS handshake of the mTLS listener, `server::tls`) **and** a username +
//! password (GraphQL `login`), answered with a token bound to that certificate.
//!
//! - **Passwords** are argon2id PHC strings (`hash_password`) set by an operator with
//!   `dartts user set-password`. The crate's default parameters (argon2id, 19 MiB, 2 passes,
//!   1 lane) are OWASP's recommended minimum; they live inside each PHC string, so raising them
//!   later re-hashes nothing and breaks no stored password.
//! - **Indistinguishable failures**: an unknown username, an account without a password, a
//!   wrong password, a disabled or pending account and a certificate of another nation all
//!   answer the same UNAUTHENTICATED error after the same work — one argon2 verification,
//!   against a dummy hash when there is no real one — and the same delay.
//! - **Throttling**: attempts made with one certificate run one at a time, and each failure
//!   holds that turn for `FAILURE_DELAY`, so one partner can make at most about one guess per
//!   second however many requests, connections or aliases it sends. Aliased `login` fields in
//!   one request are mutation fields, which GraphQL runs in order; each is one attempt.
//! - **Lockout**: `DARTTS_LOGIN_MAX_FAILURES` consecutive failures lock an ACTIVE account
//!   (`accounts::record_failed_login`). A LOCKED account answers ACCOUNT_LOCKED whatever the
//!   password, so a correct guess after the lock is not revealed. This tells whoever caused the
//!   lock that the account exists; only holders of a partner certificate can try, and telling a
//!   locked-out partner why matters more.
//! - **Nation**: when the certificate's subject names a country (C=) and the account has a
//!   nation, they must match: a partner's certificate cannot be used with another nation's
//!   stolen password. Certificates without C= are accepted (not every CA writes one); the
//!   account's nation, not the certificate's, still decides which rows are seen.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::accounts;
use crate::keyed_turns::KeyedTurns;
use crate::state::AppState;

/// Lifetime of a partner token; the partner signs in again after it (the certificate alone
/// never renews anything).
pub const PARTNER_TOKEN_TTL_SECONDS: i64 = 3600;
/// How long each failed attempt holds its certificate's turn.
pub const FAILURE_DELAY: Duration = Duration::from_secs(1);
/// argon2 verifications running at once (19 MiB and a few tens of milliseconds each): bounds
/// the memory and CPU a burst of sign-ins from many certificates can take.
const CONCURRENT_HASHES: usize = 4;
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The client certificate of the TLS connection a request arrived on. Only the mTLS listener
/// inserts it (as a request extension), after rustls verified the chain to the configured CA;
/// clients cannot set extensions, so its presence proves the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// RFC 8705 §3.1 `x5t#S256`: base64url (no padding) SHA-256 of the leaf certificate's DER.
    pub thumbprint: String,
    /// The subject's countryName (C=), upper case, when it carries exactly one.
    pub country: Option<String>,
}

impl ClientCert {
    pub fn from_der(der: &[u8]) -> Self {
        ClientCert {
            thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
            country: subject_country(der),
        }
    }
}

/// The subject's single countryName. Parsing only: rustls already verified the certificate, and
/// a certificate we cannot parse here simply has no country.
fn subject_country(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut countries = cert.subject().iter_country();
    let first = countries.next()?.as_str().ok()?;
    if countries.next().is_some() {
        return None;
    }
    Some(first.trim().to_ascii_uppercase())
}

/// Request data for a request let through without a token: a login-only document that arrived
/// with a verified client certificate (`server`). The field guard resolves only PRE_AUTH
/// fields for it.
#[derive(Clone, Debug)]
pub struct PreAuth {
    pub cert: ClientCert,
    /// The client's address, for the log (and the audit log).
    pub source: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// Every refusal that must not say why; the reason is logged, never sent.
    #[error("unknown username or wrong password")]
    Refused(String),
    #[error("this account is locked; an administrator must unlock it")]
    Locked,
    #[error(
        "a password must have at least {MIN_PASSWORD_CHARS} characters and at most \
         {MAX_PASSWORD_BYTES} bytes, on one line, without control characters"
    )]
    WeakPassword,
    #[error("internal error")]
    Internal(String),
}

impl From<sea_orm::DbErr> for PartnerError {
    fn from(e: sea_orm::DbErr) -> Self {
        PartnerError::Internal(e.to_string())
    }
}

/// An argon2id PHC string for `password` (fresh random salt, default parameters).
pub fn hash_password(password: &str) -> Result<String, PartnerError> {
    if password.chars().count() < MIN_PASSWORD_CHARS
        || password.len() > MAX_PASSWORD_BYTES
        // A NUL or an escape typed or pasted by mistake would make a password nobody can
        // type again at a login form.
        || password.chars().any(char::is_control)
    {
        return Err(PartnerError::WeakPassword);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PartnerError::Internal(format!("argon2: {e}")))
}

/// What a successful sign-in hands back.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub expires_in: i64,
}

/// Shared by every request of the process (in `AppState`).
pub struct PartnerLogin {
    max_failures: u32,
    /// Verified against when there is no real hash, so that path costs the same.
    dummy_hash: String,
    /// One attempt at a time per certificate thumbprint.
    turns: KeyedTurns<String>,
    hashing: Semaphore,
}

impl std::fmt::Debug for PartnerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerLogin")
            .field("max_failures", &self.max_failures)
            .finish_non_exhaustive()
    }
}

impl PartnerLogin {
    pub fn new(max_failures: u32) -> Result<Self, PartnerError> {
        // A random dummy password: its hash has the same parameters as real ones and matches
        // nothing anyone can type.
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| PartnerError::Internal(e.to_string()))?;
        let dummy_hash = hash_password(&hex::encode(secret))?;
        Ok(PartnerLogin {
            max_failures,
            dummy_hash,
            turns: KeyedTurns::default(),
            hashing: Semaphore::new(CONCURRENT_HASHES),
        })
    }

    /// One sign-in attempt with `cert`'s turn held; a failure keeps the turn for
    /// `FAILURE_DELAY` before answering.
    pub async fn login(
        &self,
        state: &AppState,
        cert: &ClientCert,
        username: &str,
        password: &str,
    ) -> Result<Issued, PartnerError> {
        let turn = self.turns.of(cert.thumbprint.clone());
        let _held = turn.lock().await;
        let result = self.attempt(state, cert, username, password).await;
        if let Err(PartnerError::Refused(_) | PartnerError::Locked) = &result {
            tokio::time::sleep(FAILURE_DELAY).await;
        }
        result
    }

    async fn attempt(
        &self,
        state: &AppState,
        cert: &ClientCert,
        username: &str,
        password: &str,
    ) -> Result<Issued, PartnerError> {
        let account = accounts::find(&state.db, username).await?;
        let stored = account.as_ref().and_then(|a| a.password_hash.clone());
        // Always exactly one verification, whatever follows.
        let password_ok = self.verify(password, stored.as_deref()).await?;
        let Some(account) = account.filter(|a| a.password_hash.is_some()) else {
            return Err(PartnerError::Refused(format!(
                "no account {username:?} with a password"
            )));
        };
        if account.status == accounts::LOCKED {
            return Err(PartnerError::Locked);
        }
        let nation_ok = match (&cert.country, &account.nation) {
            (Some(country), Some(nation)) => country == nation,
            _ => true,
        };
        if !password_ok || !nation_ok {
            let locked =
                accounts::record_failed_login(&state.db, account.id, self.max_failures).await?;
            if locked {
                tracing::warn!(username, "account locked after repeated failed sign-ins");
            }
            return Err(PartnerError::Refused(if password_ok {
                format!(
                    "{username:?} is a {:?} account; the certificate is from {:?}",
                    account.nation, cert.country
                )
            } else {
                format!("wrong password for {username:?}")
            }));
        }
        if account.status != accounts::ACTIVE {
            return Err(PartnerError::Refused(format!(
                "{username:?} is {}",
                account.status
            )));
        }
        accounts::clear_failed_logins(&state.db, account.id).await?;
        accounts::touch_login(&state.db, account.id).await?;
        let token = state
            .signer
            .issue_bound(
                &account.username,
                PARTNER_TOKEN_TTL_SECONDS,
                &cert.thumbprint,
            )
            .map_err(|e| PartnerError::Internal(e.to_string()))?;
        tracing::info!(username, "signed in with certificate and password");
        Ok(Issued {
            token,
            expires_in: PARTNER_TOKEN_TTL_SECONDS,
        })
    }

    /// Whether `password` matches `stored` (or, without one, the dummy hash — the answer is then
    /// ignored). Runs on the blocking pool: argon2 is deliberately slow.
    async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, PartnerError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| PartnerError::Internal(e.to_string()))?;
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| PartnerError::Internal(format!("stored password hash: {e}")))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .map_err(|e| PartnerError::Internal(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "salts differ");
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horse batterY", &parsed)
                .is_err()
        );
        for weak in ["short", "line one\nline two", &"x".repeat(2000)] {
            assert!(matches!(
                hash_password(weak),
                Err(PartnerError::WeakPassword)
            ));
        }
    }
}
