//! Authentication: a request's bearer token becomes a `Principal` — an account, its status
//! checked, and its permissions decided once from the policy. Authorization happens elsewhere
//! (the GraphQL guard and the SQL row scopes) and only ever reads the `Principal`.
//!
//! Which tokens are accepted depends on the configuration:
//! - no OIDC provider (embedded default, development): local tokens from `dartts token`;
//! - `DARTTS_OIDC_ISSUER` set (production): the provider's tokens (`oidc`), and the session
//!   tokens this server issues after a sign-in through it (`login`). Local tokens are refused:
//!   anyone with a shell on the server could mint them, bypassing the agency's sign-on.
//! - in either case, partner tokens from the foreign partners' `login` (`partner`), only over
//!   the mTLS listener and only with the client certificate they were issued to.

pub mod local_token;
pub mod login;
pub mod oidc;
pub mod partner;

use axum::http::{HeaderMap, StatusCode, header};

use crate::auth::local_token::{PARTNER_AUDIENCE, TokenUse};
use crate::auth::partner::ClientCert;
use crate::error::ErrorCode;
use crate::policy::PermissionSet;
use crate::policy::RowScope;
use crate::state::AppState;
use crate::{accounts, agreements};

/// Who is asking, and what they may see. Inserted into every GraphQL request's data.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub nation: Option<String>,
    pub status: String,
    pub permissions: PermissionSet,
    /// The account's last quota reset (unlock): usage before it no longer counts.
    pub quota_reset_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Missing,
    /// The reason is logged, never sent: telling a forger which check failed helps them.
    #[error("the token is not valid")]
    Invalid(String),
    #[error("the token is not valid")]
    UnknownAccount(String),
    /// On the mTLS listener, a certificate the verifier no longer accepts (revoked while the
    /// connection was open, expired, or its CA's revocation list out of date). The reason
    /// names the certificate for the audit record.
    #[error(
        "the client certificate is no longer accepted (revoked, expired, or its CA's revocation \
         list is out of date); connect again with a valid certificate"
    )]
    Certificate(String),
    /// The refusals below name an existing account (a verified token vouched for it), so its
    /// audit record can name the actor.
    #[error("this account is disabled")]
    Disabled(String),
    #[error("this account is not active yet; it awaits approval")]
    Pending(String),
    #[error("this account is locked; an administrator must unlock it")]
    Locked(String),
    /// The database gave no connection (`error::is_unavailable`).
    #[error("{}", crate::error::UNAVAILABLE_MESSAGE)]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl From<sea_orm::DbErr> for AuthError {
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::error::is_unavailable(&err) {
            AuthError::Unavailable
        } else {
            AuthError::Internal(err.to_string())
        }
    }
}

impl AuthError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Missing
            | AuthError::Invalid(_)
            | AuthError::UnknownAccount(_)
            | AuthError::Certificate(_) => ErrorCode::Unauthenticated,
            AuthError::Disabled(_) => ErrorCode::AccountDisabled,
            AuthError::Pending(_) => ErrorCode::Forbidden,
            AuthError::Locked(_) => ErrorCode::AccountLocked,
            AuthError::Unavailable => ErrorCode::Unavailable,
            AuthError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing
            | AuthError::Invalid(_)
            | AuthError::UnknownAccount(_)
            | AuthError::Certificate(_) => StatusCode::UNAUTHORIZED,
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let text = value
        .to_str()
        .map_err(|_| AuthError::Invalid("non-ASCII authorization header".into()))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| AuthError::Invalid("malformed authorization header".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Invalid("not a bearer token".into()));
    }
    Ok(token.trim())
}

/// The principal of a request with `headers`, which arrived with `client_cert` (the mTLS
/// listener) or without one (the plain listener).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    client_cert: Option<&ClientCert>,
) -> Result<Principal, AuthError> {
    let token = bearer(headers)?;
    // The unverified audience only picks the verifier, which checks it again. A partner token
    // is accepted only with the certificate it is bound to, so over the plain listener, or
    // with another partner's certificate, it is refused.
    if local_token::unverified_audience(token).as_deref() == Some(PARTNER_AUDIENCE) {
        let claims = state
            .signer
            .verify_bound(token, client_cert.map(|c| c.thumbprint.as_str()))
            .map_err(AuthError::Invalid)?;
        return principal_for(state, &claims.sub).await;
    }
    let username = match &state.oidc {
        // The unverified `iss` only picks the verifier; that verifier then checks everything,
        // including that `iss` really is its issuer.
        Some(provider) if oidc::unverified_issuer(token).as_deref() == Some(provider.issuer()) => {
            provider
                .verify(token)
                .await
                .map_err(|e| AuthError::Invalid(e.to_string()))?
                .username
        }
        Some(_) => {
            state
                .signer
                .verify_for(TokenUse::Session, token)
                .map_err(|e| AuthError::Invalid(format!("not a provider or session token: {e}")))?
                .sub
        }
        None => {
            state
                .signer
                .verify_for(TokenUse::Local, token)
                .map_err(AuthError::Invalid)?
                .sub
        }
    };
    principal_for(state, &username).await
}

/// The principal for a local account name that a verified token vouched for: the account must
/// exist and be ACTIVE; its role, nation and status, never the token's claims, decide what it
/// may see.
pub async fn principal_for(state: &AppState, username: &str) -> Result<Principal, AuthError> {
    let account = accounts::find(&state.db, username)
        .await?
        .ok_or_else(|| AuthError::UnknownAccount(username.to_owned()))?;
    match account.status.as_str() {
        accounts::ACTIVE => {}
        accounts::DISABLED => return Err(AuthError::Disabled(account.username)),
        accounts::LOCKED => return Err(AuthError::Locked(account.username)),
        _ => return Err(AuthError::Pending(account.username)),
    }
    let mut permissions = state
        .policy
        .permissions(&account.role, account.nation.as_deref());
    // A nation-scoped account also sees what sharing agreements grant its nation: read here,
    // once, so every scope in this request applies the same grants.
    if permissions.rows == RowScope::OwnNation
        && let Some(nation) = &permissions.nation
    {
        permissions.grants = agreements::grants_for(&state.db, nation).await?;
    }
    Ok(Principal {
        user_id: account.id,
        username: account.username,
        nation: account.nation,
        status: account.status,
        permissions,
        quota_reset_at: account.quota_reset_at,
    })
}
