//! Tokens the server signs itself: local tokens for the embedded default and development
//! (`dartts token`), and short-lived session tokens handed out after a single sign-on
//! (`/auth/callback`).
//!
//! HS256 with a 256-bit key generated on first use and kept in the data directory (mode 0600).
//! The verifier fixes the algorithm, issuer, audience and key id itself; nothing in the token's
//! header chooses how it is checked, so `alg: none` or a token signed for another key fails.
//!
//! One key signs both kinds, so the kind is bound into the token as its audience and checked
//! on the way in: a session token is not a local token and vice versa. That matters because a
//! server with SSO configured refuses local tokens (anyone with a shell and the key file could
//! mint them) but must accept the sessions it issued itself.
//!
//! A third kind, partner tokens, is issued by the foreign partners' `login` over the mTLS
//! listener and is bound to the client certificate it was issued to (RFC 8705 §3:
//! `cnf: {"x5t#S256": …}`): `verify_bound` accepts it only with that certificate, so a stolen
//! token is useless without the partner's private key.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ISSUER: &str = "dartts-local";
/// The audience of local tokens (`dartts token`).
pub const AUDIENCE: &str = "dartts";
/// The audience of session tokens issued after a single sign-on.
pub const SESSION_AUDIENCE: &str = "dartts-session";
/// The audience of certificate-bound partner tokens (`login` over mTLS).
pub const PARTNER_AUDIENCE: &str = "dartts-partner";

/// What a server-signed token is for; each kind has its own audience.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    /// `dartts token`: only accepted when no OIDC provider is configured.
    Local,
    /// Issued by `/auth/callback` after the provider vouched for the user.
    Session,
    /// Issued by the partners' `login`; always carries `cnf` (see `issue_bound`).
    Partner,
}

impl TokenUse {
    fn audience(self) -> &'static str {
        match self {
            TokenUse::Local => AUDIENCE,
            TokenUse::Session => SESSION_AUDIENCE,
            TokenUse::Partner => PARTNER_AUDIENCE,
        }
    }
}
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// RFC 7800 confirmation: the key the bearer must also prove possession of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 8705 §3.1: the base64url SHA-256 thumbprint of the client certificate (DER).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

pub struct LocalSigner {
    key: Vec<u8>,
    kid: String,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner")
            .field("kid", &self.kid)
            .field("key", &"***")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("token key: {0}")]
    Key(#[from] crate::key_file::KeyFileError),
    #[error("cannot sign: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

impl LocalSigner {
    /// Reads `<data_dir>/local-token.key`, creating it on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SignerError> {
        let (key, _) = crate::key_file::load_or_create(&data_dir.join("local-token.key"))?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: Vec<u8>) -> Self {
        let kid = hex::encode(&Sha256::digest(&key)[..8]);
        LocalSigner { key, kid }
    }

    /// A local token (`dartts token`).
    pub fn issue(&self, username: &str, ttl_seconds: i64) -> Result<String, SignerError> {
        self.issue_for(TokenUse::Local, username, ttl_seconds)
    }

    pub fn issue_for(
        &self,
        kind: TokenUse,
        username: &str,
        ttl_seconds: i64,
    ) -> Result<String, SignerError> {
        self.sign(kind, username, ttl_seconds, None)
    }

    /// A partner token bound to the client certificate with thumbprint `x5t_s256`.
    pub fn issue_bound(
        &self,
        username: &str,
        ttl_seconds: i64,
        x5t_s256: &str,
    ) -> Result<String, SignerError> {
        let cnf = Confirmation {
            x5t_s256: x5t_s256.to_owned(),
        };
        self.sign(TokenUse::Partner, username, ttl_seconds, Some(cnf))
    }

    fn sign(
        &self,
        kind: TokenUse,
        username: &str,
        ttl_seconds: i64,
        cnf: Option<Confirmation>,
    ) -> Result<String, SignerError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: username.to_owned(),
            iss: ISSUER.to_owned(),
            aud: kind.audience().to_owned(),
            exp: now + ttl_seconds,
            nbf: now,
            iat: now,
            cnf,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&self.key),
        )?)
    }

    /// The claims of a valid local token, or why it is not valid (for the log, never the
    /// client).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        self.verify_for(TokenUse::Local, token)
    }

    /// Like `verify`, for the given kind of token only.
    pub fn verify_for(&self, kind: TokenUse, token: &str) -> Result<Claims, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("bad header: {e}"))?;
        if header.alg != Algorithm::HS256 {
            return Err(format!("algorithm {:?} not allowed", header.alg));
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err("unknown key id".into());
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[kind.audience()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&self.key), &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }

    /// The claims of a valid partner token presented over a connection whose client
    /// certificate has thumbprint `presented` (`None`: no certificate, e.g. the plain
    /// listener). The token's `cnf` must name exactly that certificate.
    pub fn verify_bound(&self, token: &str, presented: Option<&str>) -> Result<Claims, String> {
        let claims = self.verify_for(TokenUse::Partner, token)?;
        let bound = claims
            .cnf
            .as_ref()
            .map(|c| c.x5t_s256.as_str())
            .ok_or("partner token without cnf")?;
        match presented {
            Some(thumbprint) if thumbprint == bound => Ok(claims),
            Some(_) => Err("token bound to another client certificate".into()),
            None => Err("certificate-bound token without a client certificate".into()),
        }
    }
}

/// The `aud` of a token, unverified: it only picks which verifier then checks everything.
pub fn unverified_audience(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Audience {
        aud: Option<serde_json::Value>,
    }
    match jsonwebtoken::dangerous::insecure_decode_claims::<Audience>(token)
        .ok()?
        .aud?
    {
        serde_json::Value::String(aud) => Some(aud),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forgeries_do_not() {
        let signer = LocalSigner::from_key(vec![7; 32]);
        let token = signer.issue("alice", 60).unwrap();
        assert_eq!(signer.verify(&token).unwrap().sub, "alice");

        let other = LocalSigner::from_key(vec![8; 32]);
        assert!(
            signer.verify(&other.issue("alice", 60).unwrap()).is_err(),
            "other key"
        );
        assert!(
            signer
                .verify(&signer.issue("alice", -120).unwrap())
                .is_err(),
            "expired"
        );

        // alg: none with the right claims.
        let parts: Vec<&str> = token.split('.').collect();
        use base64::Engine;
        let none_header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            signer.kid
        ));
        assert!(
            signer
                .verify(&format!("{none_header}.{}.", parts[1]))
                .is_err(),
            "alg none"
        );
    }

    #[test]
    fn session_and_local_tokens_are_not_interchangeable() {
        let signer = LocalSigner::from_key(vec![7; 32]);
        let session = signer.issue_for(TokenUse::Session, "alice", 60).unwrap();
        let local = signer.issue("alice", 60).unwrap();
        assert_eq!(
            signer.verify_for(TokenUse::Session, &session).unwrap().sub,
            "alice"
        );
        assert!(signer.verify(&session).is_err(), "session used as local");
        assert!(
            signer.verify_for(TokenUse::Session, &local).is_err(),
            "local used as session"
        );
    }

    #[test]
    fn partner_tokens_need_their_certificate() {
        let signer = LocalSigner::from_key(vec![7; 32]);
        let token = signer.issue_bound("kr-partner", 60, "thumb-a").unwrap();
        assert_eq!(
            unverified_audience(&token).as_deref(),
            Some(PARTNER_AUDIENCE)
        );
        let claims = signer.verify_bound(&token, Some("thumb-a")).unwrap();
        assert_eq!(claims.sub, "kr-partner");
        assert!(signer.verify_bound(&token, Some("thumb-b")).is_err());
        assert!(signer.verify_bound(&token, None).is_err());
        // Not usable as another kind, and other kinds are not partner tokens.
        assert!(signer.verify(&token).is_err());
        assert!(signer.verify_for(TokenUse::Session, &token).is_err());
        let local = signer.issue("kr-partner", 60).unwrap();
        assert!(signer.verify_bound(&local, Some("thumb-a")).is_err());
        // A partner-audience token without `cnf` is refused, whatever certificate comes with it.
        let unbound = signer
            .issue_for(TokenUse::Partner, "kr-partner", 60)
            .unwrap();
        assert!(signer.verify_bound(&unbound, Some("thumb-a")).is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalSigner::load_or_create(dir.path()).unwrap();
        let b = LocalSigner::load_or_create(dir.path()).unwrap();
        assert_eq!(a.kid, b.kid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("local-token.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
