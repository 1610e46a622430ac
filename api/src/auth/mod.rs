//! Authentication: a request's bearer token becomes a `Principal` — an account, its status
//! checked, and its permissions decided once from the policy. Authorization happens elsewhere
//! (the GraphQL guard and the SQL row scopes) and only ever reads the `Principal`.

pub mod local_token;

use axum::http::{HeaderMap, StatusCode, header};

use crate::accounts;
use crate::error::ErrorCode;
use crate::policy::PermissionSet;
use crate::state::AppState;

/// Who is asking, and what they may see. Inserted into every GraphQL request's data.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub nation: Option<String>,
    pub status: String,
    pub permissions: PermissionSet,
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
    #[error("this account is disabled")]
    Disabled,
    #[error("this account is not active yet; it awaits approval")]
    Pending,
    #[error("this account is locked; an administrator must unlock it")]
    Locked,
    #[error("internal error")]
    Internal(String),
}

impl AuthError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Missing | AuthError::Invalid(_) | AuthError::UnknownAccount(_) => {
                ErrorCode::Unauthenticated
            }
            AuthError::Disabled => ErrorCode::AccountDisabled,
            AuthError::Pending => ErrorCode::Forbidden,
            AuthError::Locked => ErrorCode::AccountLocked,
            AuthError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::Invalid(_) | AuthError::UnknownAccount(_) => {
                StatusCode::UNAUTHORIZED
            }
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

pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, AuthError> {
    let token = bearer(headers)?;
    let claims = state.signer.verify(token).map_err(AuthError::Invalid)?;
    let account = accounts::find(&state.db, &claims.sub)
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?
        .ok_or_else(|| AuthError::UnknownAccount(claims.sub.clone()))?;
    match account.status.as_str() {
        accounts::ACTIVE => {}
        accounts::DISABLED => return Err(AuthError::Disabled),
        accounts::LOCKED => return Err(AuthError::Locked),
        _ => return Err(AuthError::Pending),
    }
    let permissions = state
        .policy
        .permissions(&account.role, account.nation.as_deref());
    Ok(Principal {
        user_id: account.id,
        username: account.username,
        nation: account.nation,
        status: account.status,
        permissions,
    })
}
