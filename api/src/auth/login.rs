//! The server-driven sign-in: `GET /auth/login` → the provider → `GET /auth/callback`, for a
//! front end that wants the server to run the OAuth flow and get back a token.
//!
//! Authorization code with PKCE (S256), driven by the `oauth2` crate. `/auth/login` creates a
//! random `state`, a PKCE verifier and a browser-binding secret, keeps them server-side for
//! `STATE_TTL`, sets the binding secret as a cookie and redirects to the provider.
//! `/auth/callback` takes the state back (single use), checks the cookie, exchanges the code
//! with the verifier, checks the provider's access token exactly as a bearer token is checked,
//! looks the account up (it must be ACTIVE) and answers
//! `{ "token": "...", "expiresIn": N, "tokenType": "Bearer" }` — a session token signed by this
//! server (`local_token::TokenUse::Session`). Errors are JSON `{ "code", "message" }`.
//!
//! Why the cookie: the code and state travel in a URL, which ends up in browser history,
//! proxies and Referer headers. Whoever replays that URL first would otherwise get the user's
//! session token; the cookie ties the callback to the browser that started the sign-in.
//!
//! Why a session token of our own rather than the provider's access token: it is short, its
//! lifetime never exceeds the provider token's, and the account's status is still read on every
//! request, so disabling an account cuts a session off at once. No ID token is used (the
//! provider's access token says who signed in), hence no `nonce`: PKCE and the single-use
//! state already bind the code to this sign-in.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use serde_json::json;

use crate::accounts;
use crate::auth::local_token::TokenUse;
use crate::auth::oidc::{self, OidcError, OidcVerifier};
use crate::auth::{self, AuthError};
use crate::config::{OidcLoginSettings, OidcSettings, web_url};
use crate::error::ErrorCode;
use crate::state::AppState;

/// How long a user has to sign in at the provider.
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// Sign-ins in progress at once; beyond this `/auth/login` answers 503, so unauthenticated
/// requests cannot grow the map without bound.
pub const MAX_PENDING: usize = 10_000;
/// Upper bound of a session token's lifetime; it never outlives the provider's token either.
pub const SESSION_TTL_SECONDS: i64 = 3600;
/// Scopes asked for. `openid` makes it an OpenID sign-in; the others let a provider put
/// `preferred_username` / `email` in its tokens for `DARTTS_OIDC_USERNAME_CLAIM`.
const SCOPES: [&str; 3] = ["openid", "profile", "email"];
const COOKIE: &str = "dartts_login";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Discovery(#[from] OidcError),
    #[error("the OpenID provider's discovery document has no usable {what}: {reason}")]
    Endpoint { what: &'static str, reason: String },
    #[error("DARTTS_OIDC_REDIRECT_URL: {0}")]
    RedirectUrl(String),
    #[error("single sign-on is not configured on this server")]
    NotConfigured,
    #[error("unknown, expired or already used sign-in; start again at /auth/login")]
    UnknownState,
    #[error("this sign-in was started in another browser; start again at /auth/login")]
    OtherBrowser,
    #[error("the callback needs exactly one `code` and one `state` parameter")]
    BadCallback,
    /// The provider's `error` parameter, or an `iss` that is not our provider (RFC 9207).
    #[error("the identity provider did not complete the sign-in")]
    Provider(String),
    /// The code was refused at the token endpoint (expired, replayed, wrong verifier…).
    #[error("the identity provider did not complete the sign-in")]
    Exchange(String),
    #[error("you signed in, but there is no DARTTS account for you; request access first")]
    NoAccount(String),
    #[error("too many sign-ins in progress; try again shortly")]
    Busy,
    #[error(transparent)]
    Auth(AuthError),
    #[error("internal error")]
    Internal(String),
}

impl LoginError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            LoginError::NotConfigured => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            LoginError::UnknownState | LoginError::OtherBrowser | LoginError::BadCallback => {
                (StatusCode::BAD_REQUEST, ErrorCode::BadUserInput)
            }
            LoginError::Provider(_) | LoginError::Exchange(_) => {
                (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated)
            }
            LoginError::NoAccount(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            LoginError::Busy => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            LoginError::Auth(e) => (e.status(), e.code()),
            LoginError::Discovery(_)
            | LoginError::Endpoint { .. }
            | LoginError::RedirectUrl(_)
            | LoginError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        // Reasons are logged, never sent: they would tell a forger which check failed.
        match &self {
            LoginError::Provider(reason)
            | LoginError::Exchange(reason)
            | LoginError::NoAccount(reason)
            | LoginError::Auth(AuthError::Invalid(reason) | AuthError::UnknownAccount(reason)) => {
                tracing::info!(reason, "sign-in refused");
            }
            LoginError::Auth(AuthError::Internal(reason)) | LoginError::Internal(reason) => {
                tracing::error!(reason, "sign-in failed");
            }
            other => tracing::info!(error = %other, "sign-in refused"),
        }
        let (status, code) = self.status_and_code();
        let message = match &self {
            other if code == ErrorCode::Internal => crate::error::internal_message(other),
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(json!({ "code": code.as_str(), "message": message })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// What `/auth/login` remembers until the callback.
struct Pending {
    verifier: PkceCodeVerifier,
    /// The secret in the browser's cookie.
    binding: String,
    expires: Instant,
}

pub struct LoginFlow {
    client: Client,
    http: reqwest::Client,
    issuer: String,
    /// Secure cookies when this server is reached over https.
    secure_cookie: bool,
    /// Sign-ins in progress, by `state`. In memory because a sign-in lasts minutes and losing
    /// them on restart only means "sign in again"; with several replicas the callback must
    /// reach the replica that served `/auth/login` (sticky sessions) or this must move to a
    /// shared store (Redis): a known limit of this first version.
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for LoginFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFlow")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Discovers the provider (and sets up the sign-in flow when a client is configured). Runs at
/// start-up of `dartts serve`; an unreachable or inconsistent provider stops it.
pub async fn start(
    settings: &OidcSettings,
) -> Result<(OidcVerifier, Option<LoginFlow>), LoginError> {
    let verifier = OidcVerifier::discover(settings).await?;
    let flow = match &settings.login {
        Some(login) => Some(LoginFlow::new(login, &verifier)?),
        None => None,
    };
    Ok((verifier, flow))
}

impl LoginFlow {
    fn new(settings: &OidcLoginSettings, verifier: &OidcVerifier) -> Result<Self, LoginError> {
        let metadata = verifier.metadata();
        let endpoint = |what: &'static str, value: &Option<String>| {
            let value = value.as_deref().ok_or(LoginError::Endpoint {
                what,
                reason: "missing".into(),
            })?;
            web_url(value, true).map_err(|reason| LoginError::Endpoint { what, reason })?;
            Ok::<_, LoginError>(value.to_owned())
        };
        let auth_url = AuthUrl::new(endpoint(
            "authorization_endpoint",
            &metadata.authorization_endpoint,
        )?)
        .map_err(|e| LoginError::Endpoint {
            what: "authorization_endpoint",
            reason: e.to_string(),
        })?;
        let token_url = TokenUrl::new(endpoint("token_endpoint", &metadata.token_endpoint)?)
            .map_err(|e| LoginError::Endpoint {
                what: "token_endpoint",
                reason: e.to_string(),
            })?;
        let redirect = RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| LoginError::RedirectUrl(e.to_string()))?;
        let mut client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            .set_redirect_uri(redirect);
        if let Some(secret) = &settings.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(LoginFlow {
            client,
            http: oidc::http_client()?,
            issuer: verifier.issuer().to_owned(),
            secure_cookie: settings.redirect_url.starts_with("https://"),
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The provider URL to send the browser to, and the binding secret for its cookie.
    fn begin(&self) -> Result<(String, String), LoginError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.map(|s| Scope::new(s.to_owned())))
            .set_pkce_challenge(challenge)
            .url();
        let binding = random_hex()?;
        let now = Instant::now();
        let mut pending = self.pending();
        pending.retain(|_, p| p.expires > now);
        if pending.len() >= MAX_PENDING {
            return Err(LoginError::Busy);
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                verifier,
                binding: binding.clone(),
                expires: now + STATE_TTL,
            },
        );
        Ok((url.to_string(), binding))
    }

    /// Takes the sign-in for `state` out of the map if the browser's cookie matches; an entry
    /// is left in place for a wrong cookie, so someone replaying a leaked callback URL cannot
    /// spoil the real user's sign-in.
    fn take(&self, state: &str, cookie: Option<&str>) -> Result<PkceCodeVerifier, LoginError> {
        let mut pending = self.pending();
        let entry = pending.get(state).ok_or(LoginError::UnknownState)?;
        if entry.expires <= Instant::now() {
            pending.remove(state);
            return Err(LoginError::UnknownState);
        }
        if !cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), entry.binding.as_bytes())) {
            return Err(LoginError::OtherBrowser);
        }
        pending
            .remove(state)
            .map(|p| p.verifier)
            .ok_or(LoginError::UnknownState)
    }

    /// Exchanges the code for the provider's access token.
    async fn exchange(
        &self,
        code: String,
        verifier: PkceCodeVerifier,
    ) -> Result<String, LoginError> {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| {
                LoginError::Exchange(match e {
                    RequestTokenError::ServerResponse(r) => format!("token endpoint: {r}"),
                    other => oidc::error_chain(&other),
                })
            })?;
        Ok(response.access_token().secret().clone())
    }

    fn cookie(&self, value: &str, max_age: u64) -> Result<HeaderValue, LoginError> {
        // Path-scoped to the callback, HttpOnly, and SameSite=Lax: Lax still sends it on the
        // top-level redirect back from the provider, which Strict would not.
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/auth/callback; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        ))
        .map_err(|e| LoginError::Internal(e.to_string()))
    }
}

/// `GET /auth/login`: 303 to the provider.
pub async fn login(State(state): State<AppState>) -> Response {
    let Some(flow) = state.login.as_deref() else {
        return LoginError::NotConfigured.into_response();
    };
    let result = flow.begin().and_then(|(url, binding)| {
        let location =
            HeaderValue::from_str(&url).map_err(|e| LoginError::Internal(e.to_string()))?;
        Ok((location, flow.cookie(&binding, STATE_TTL.as_secs())?))
    });
    match result {
        Ok((location, cookie)) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (header::SET_COOKIE, cookie),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /auth/callback?code=…&state=…`: the session token, as JSON.
pub async fn callback(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match finish(&state, query.as_deref().unwrap_or(""), &headers).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn finish(
    state: &AppState,
    query: &str,
    headers: &HeaderMap,
) -> Result<Response, LoginError> {
    let (Some(flow), Some(verifier)) = (state.login.as_deref(), state.oidc.as_deref()) else {
        return Err(LoginError::NotConfigured);
    };
    let params = CallbackParams::parse(query)?;
    let sign_in_state = params.state.ok_or(LoginError::UnknownState)?;
    let pkce = flow.take(&sign_in_state, cookie(headers, COOKIE))?;
    // From here on the state is used up, whatever happens.
    if let Some(error) = params.error {
        return Err(LoginError::Provider(format!("provider error {error:?}")));
    }
    // RFC 9207: a provider that names itself in the response must be ours (mix-up defence).
    if let Some(iss) = params.iss
        && iss != flow.issuer
    {
        return Err(LoginError::Provider(format!(
            "response from issuer {iss:?}"
        )));
    }
    let code = params.code.ok_or(LoginError::BadCallback)?;
    let access_token = flow.exchange(code, pkce).await?;
    let verified = verifier
        .verify(&access_token)
        .await
        .map_err(|e| LoginError::Auth(AuthError::Invalid(e.to_string())))?;
    let principal = match auth::principal_for(state, &verified.username).await {
        Ok(p) => p,
        Err(AuthError::UnknownAccount(name)) => {
            return Err(LoginError::NoAccount(format!("no account {name:?}")));
        }
        Err(e) => return Err(LoginError::Auth(e)),
    };
    accounts::touch_login(&state.db, principal.user_id)
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    let now = chrono::Utc::now().timestamp();
    let ttl = SESSION_TTL_SECONDS.min(verified.expires_at - now).max(1);
    let token = state
        .signer
        .issue_for(TokenUse::Session, &principal.username, ttl)
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    tracing::info!(username = principal.username, "signed in through SSO");
    Ok((
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // The binding cookie has done its job.
            (header::SET_COOKIE, flow.cookie("", 0)?),
        ],
        Json(json!({ "token": token, "expiresIn": ttl, "tokenType": "Bearer" })),
    )
        .into_response())
}

#[derive(Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

impl CallbackParams {
    /// RFC 6749 §3.1: a parameter must not appear twice; a duplicate is refused rather than
    /// guessing which one the provider meant.
    fn parse(query: &str) -> Result<Self, LoginError> {
        let mut params = CallbackParams::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                "iss" => &mut params.iss,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(LoginError::BadCallback);
            }
        }
        Ok(params)
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn random_hex() -> Result<String, LoginError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| LoginError::Internal(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_parameters_must_not_repeat() {
        let p = CallbackParams::parse("code=a&state=b&iss=http%3A%2F%2Fx").unwrap();
        assert_eq!(
            (p.code.as_deref(), p.state.as_deref(), p.iss.as_deref()),
            (Some("a"), Some("b"), Some("http://x"))
        );
        assert!(CallbackParams::parse("code=a&state=b&state=c").is_err());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; dartts_login=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
