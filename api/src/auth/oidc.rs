//! Bearer tokens from the agency's OpenID provider (domestic single sign-on).
//!
//! At start-up the provider is discovered (`<issuer>/.well-known/openid-configuration`) and its
//! signing keys fetched from `jwks_uri`; a provider that cannot be reached or describes itself
//! wrongly stops start-up, so a misconfiguration shows at deploy time, not at the first login.
//!
//! How a token is checked, and why:
//! - The key is chosen by the token's `kid` among the provider's keys, and the algorithm comes
//!   from that key (RSA → RS256, P-256 → ES256: the allow-list), never from the token's header.
//!   The header's `alg` must merely agree. So `alg: none`, or HS256 "signed" with the RSA public
//!   key as an HMAC secret (the classic key-confusion forgery), cannot pass: there is no HMAC key
//!   here at all.
//! - `iss` must equal the configured issuer, `aud` must contain the configured audience, and
//!   `exp` is required, `nbf` checked when present, both with `LEEWAY_SECONDS` of clock skew.
//! - An unknown `kid` usually means the provider rotated its keys: the key set is fetched again,
//!   at most once per `REFETCH_INTERVAL`, so a stream of tokens with made-up key ids cannot make
//!   this server hammer the provider. The key set is also refreshed when older than
//!   `KEYS_MAX_AGE`, so a key the provider withdrew stops being accepted.
//! - The token only says *who* the user is (the claim named by `DARTTS_OIDC_USERNAME_CLAIM`).
//!   Roles, nation and status come from the local account, never from token claims: the
//!   provider is trusted to authenticate people, not to grant access to trade data.
//!
//! No `typ` check (`at+jwt`): many providers do not set it. An ID token is kept out by the
//! audience instead, as long as `DARTTS_OIDC_AUDIENCE` is the API's identifier and not the
//! client id of some front end.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{OidcSettings, web_url};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
/// At most one on-demand key-set fetch per this interval.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// A key set older than this is fetched again before use.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Every call to the provider gives up after this long.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents and key sets are a few kilobytes; refuse anything absurd.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// RSA keys shorter than this are not trusted (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot reach the OpenID provider at {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the OpenID provider's {what} at {url} is not usable: {reason}")]
    Metadata {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
    /// Why a token was refused: for the log, never for the client.
    #[error("{0}")]
    Token(String),
}

/// The parts of the provider's discovery document this server uses.
#[derive(Clone, Debug, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

/// A token the provider signed, checked.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The local account name: the value of the configured username claim.
    pub username: String,
    /// The token's `exp`, Unix seconds.
    pub expires_at: i64,
}

struct VerifyKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    fetched: Instant,
}

pub struct OidcVerifier {
    issuer: String,
    audience: String,
    username_claim: String,
    metadata: ProviderMetadata,
    http: reqwest::Client,
    /// Read on every request, replaced whole on a refetch; never held across an `.await`.
    keys: RwLock<KeySet>,
    /// When the last on-demand refetch started. The async mutex also makes refetches
    /// single-flight: requests that need new keys wait for the one fetch under way.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("username_claim", &self.username_claim)
            .field("jwks_uri", &self.metadata.jwks_uri)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for talking to the provider: bounded in time, and not following redirects,
/// so the provider's own URLs are the only ones trusted.
pub fn http_client() -> Result<reqwest::Client, OidcError> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| OidcError::Client(e.to_string()))
}

impl OidcVerifier {
    /// Discovers the provider and fetches its keys; any failure is a start-up error.
    pub async fn discover(settings: &OidcSettings) -> Result<Self, OidcError> {
        let http = http_client()?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            settings.issuer.trim_end_matches('/')
        );
        let document = fetch_json(&http, &url).await?;
        let invalid = |reason: String| OidcError::Metadata {
            what: "discovery document",
            url: url.clone(),
            reason,
        };
        let metadata: ProviderMetadata =
            serde_json::from_value(document).map_err(|e| invalid(e.to_string()))?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched
        // for, or an attacker controlling the document could vouch for another issuer.
        if metadata.issuer != settings.issuer {
            return Err(invalid(format!(
                "it names issuer {:?}, not {:?} (DARTTS_OIDC_ISSUER must match it exactly)",
                metadata.issuer, settings.issuer
            )));
        }
        web_url(&metadata.jwks_uri, true).map_err(|e| invalid(format!("jwks_uri: {e}")))?;
        let verifier = OidcVerifier {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            username_claim: settings.username_claim.clone(),
            http,
            keys: RwLock::new(KeySet {
                by_kid: HashMap::new(),
                fetched: Instant::now(),
            }),
            last_refetch: tokio::sync::Mutex::new(None),
            metadata,
        };
        let keys = verifier.fetch_keys().await?;
        if keys.by_kid.is_empty() {
            return Err(OidcError::Metadata {
                what: "key set",
                url: verifier.metadata.jwks_uri.clone(),
                reason: "it holds no RS256 or ES256 signing key with a key id".into(),
            });
        }
        verifier.store(keys);
        Ok(verifier)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// Checks a token the provider signed and returns whom it names, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Verified, OidcError> {
        let refused = OidcError::Token;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| refused(format!("bad token header: {e}")))?;
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| refused("the token names no key id".into()))?;
        if self.keys_are_old() {
            self.refetch(None).await;
        }
        let key = match self.key(kid) {
            Some(key) => key,
            None => {
                self.refetch(Some(kid)).await;
                self.key(kid)
                    .ok_or_else(|| refused(format!("unknown key id {kid:?}")))?
            }
        };
        if header.alg != key.algorithm {
            return Err(refused(format!(
                "header algorithm {:?} does not match key {kid:?} ({:?})",
                header.alg, key.algorithm
            )));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        // `nbf` is validated when present but not required: providers commonly omit it from
        // access tokens, and requiring it would lock every user out.
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let claims =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.key, &validation)
                .map_err(|e| refused(e.to_string()))?
                .claims;
        let username = claims
            .get(&self.username_claim)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                refused(format!(
                    "no string claim {:?} (DARTTS_OIDC_USERNAME_CLAIM)",
                    self.username_claim
                ))
            })?
            .to_owned();
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| refused("exp is not an integer".into()))?;
        Ok(Verified {
            username,
            expires_at,
        })
    }

    fn key(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        // A poisoned lock still holds a whole key set: it is only ever replaced, not edited.
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.by_kid.get(kid).cloned()
    }

    fn keys_are_old(&self) -> bool {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.fetched.elapsed() > KEYS_MAX_AGE
    }

    fn store(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// Fetches the key set again, for a token whose key id is unknown (`kid`) or because the
    /// set is old (`None`); rate-limited and single-flight. A failed fetch keeps the old set:
    /// a provider hiccup should not log everybody out.
    async fn refetch(&self, kid: Option<&str>) {
        let mut last = match kid {
            // This request cannot be served without the key: wait for a fetch under way.
            Some(_) => self.last_refetch.lock().await,
            // A routine refresh: the keys in hand still work, so never queue behind another
            // request's fetch (which may be waiting out a provider outage).
            None => match self.last_refetch.try_lock() {
                Ok(guard) => guard,
                Err(_) => return,
            },
        };
        // Another request may have fetched what this one needs while it waited for the lock.
        let still_needed = match kid {
            Some(kid) => self.key(kid).is_none(),
            None => self.keys_are_old(),
        };
        if !still_needed {
            return;
        }
        if let Some(at) = *last
            && at.elapsed() < REFETCH_INTERVAL
        {
            tracing::debug!(?kid, "key set fetched recently; not fetching it again yet");
            return;
        }
        *last = Some(Instant::now());
        match self.fetch_keys().await {
            Ok(keys) if !keys.by_kid.is_empty() => {
                tracing::info!(
                    keys = keys.by_kid.len(),
                    ?kid,
                    "fetched the provider's key set"
                );
                self.store(keys);
            }
            Ok(_) => tracing::warn!("the provider's key set holds no usable key; keeping ours"),
            Err(e) => tracing::warn!(error = %e, "cannot refresh the provider's key set"),
        }
    }

    async fn fetch_keys(&self) -> Result<KeySet, OidcError> {
        let url = &self.metadata.jwks_uri;
        let document = fetch_json(&self.http, url).await?;
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| OidcError::Metadata {
                what: "key set",
                url: url.clone(),
                reason: "no \"keys\" array".into(),
            })?;
        let mut by_kid = HashMap::new();
        for value in keys {
            match usable_key(value) {
                Ok((kid, key)) => {
                    by_kid.insert(kid, Arc::new(key));
                }
                Err(reason) => tracing::debug!(reason, "skipping a key in the provider's set"),
            }
        }
        Ok(KeySet {
            by_kid,
            fetched: Instant::now(),
        })
    }
}

/// A signing key this server accepts, with the one algorithm it may be used with.
fn usable_key(value: &Value) -> Result<(String, VerifyKey), String> {
    let jwk: Jwk = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or("no kid")?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err(format!("{kid}: not a signing key"));
    }
    let declared = jwk.common.key_algorithm;
    let (algorithm, key) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) if matches!(declared, None | Some(KeyAlgorithm::RS256)) => {
            let modulus = URL_SAFE_NO_PAD
                .decode(rsa.n.trim_end_matches('='))
                .map_err(|e| format!("{kid}: bad modulus: {e}"))?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return Err(format!("{kid}: RSA key shorter than {MIN_RSA_BITS} bits"));
            }
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(&rsa.n, &rsa.e).map_err(|e| e.to_string())?,
            )
        }
        AlgorithmParameters::EllipticCurve(ec)
            if ec.curve == EllipticCurve::P256
                && matches!(declared, None | Some(KeyAlgorithm::ES256)) =>
        {
            (
                Algorithm::ES256,
                DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|e| e.to_string())?,
            )
        }
        _ => return Err(format!("{kid}: not an RS256 or ES256 key")),
    };
    Ok((kid, VerifyKey { algorithm, key }))
}

async fn fetch_json(http: &reqwest::Client, url: &str) -> Result<Value, OidcError> {
    let fetch = |reason: String| OidcError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fetch(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(fetch(format!("HTTP {}", response.status())));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(fetch("the response is too large".into()));
    }
    let body = response.bytes().await.map_err(|e| fetch(error_chain(&e)))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(fetch("the response is too large".into()));
    }
    serde_json::from_slice(&body).map_err(|e| fetch(format!("not JSON: {e}")))
}

/// reqwest's top-level message ("error sending request") hides the cause an operator needs
/// ("connection refused", "dns error"), so the whole chain is shown.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `iss` claim of a token, read without checking anything: only used to decide which
/// verifier to hand the token to, never to trust it.
pub fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Issuer>(token)
        .ok()?
        .iss
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rs256_and_es256_signing_keys_are_used() {
        // A 2048-bit modulus of 0xff bytes is not a real key but has the right length.
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 256]);
        let short = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let rsa = |extra: Value| {
            let mut k = json!({ "kty": "RSA", "kid": "r", "n": n, "e": "AQAB" });
            for (key, v) in extra.as_object().unwrap() {
                k[key] = v.clone();
            }
            k
        };
        assert_eq!(
            usable_key(&rsa(json!({}))).unwrap().1.algorithm,
            Algorithm::RS256
        );
        assert_eq!(
            usable_key(&rsa(json!({ "alg": "RS256", "use": "sig" })))
                .unwrap()
                .1
                .algorithm,
            Algorithm::RS256
        );
        for (extra, why) in [
            (json!({ "alg": "PS256" }), "PS256"),
            (json!({ "alg": "RS512" }), "RS512"),
            (json!({ "use": "enc" }), "encryption key"),
            (json!({ "kid": null }), "no kid"),
            (json!({ "n": short }), "1024-bit"),
        ] {
            assert!(usable_key(&rsa(extra)).is_err(), "{why}");
        }
        let oct = json!({ "kty": "oct", "kid": "h", "k": "c2VjcmV0" });
        assert!(usable_key(&oct).is_err(), "HMAC keys are never used");
        let p384 = json!({ "kty": "EC", "kid": "e", "crv": "P-384", "x": "AA", "y": "AA" });
        assert!(usable_key(&p384).is_err(), "P-384");
    }

    #[test]
    fn the_issuer_is_read_without_trusting_it() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://sso.example","sub":"x"}"#);
        let token = format!("e30.{claims}.sig");
        assert_eq!(
            unverified_issuer(&token).as_deref(),
            Some("https://sso.example")
        );
        assert_eq!(unverified_issuer("garbage"), None);
    }
}
