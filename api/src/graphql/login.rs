//! `login(username, password)`: the foreign partners' sign-in over the mTLS listener
//! (`auth::partner` has the rules: throttling, lockout, indistinguishable failures).
//!
//! It is the one operation that runs without a token. The server lets a request through
//! unauthenticated only when it arrived with a verified client certificate and
//! `is_login_only` holds for its document; the field guard then resolves PRE_AUTH fields only.
//! Both checks must agree for anything to run, so neither alone is the whole defence.

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Context, Object, SimpleObject};
use serde_json::json;

use crate::audit::{AuditEvent, EventType};
use crate::auth::partner::{PartnerError, PreAuth};
use crate::error::ApiError;
use crate::state::AppState;

/// The mutation field a pre-authentication request may consist of.
pub const LOGIN_FIELD: &str = "login";
/// More `login` fields than this in one request is not a sign-in: each attempt takes at least
/// a second when it fails, and one request should not hold a connection for minutes.
pub const MAX_LOGIN_FIELDS: usize = 10;

/// A signed-in partner's token: send it as `Authorization: Bearer <token>` over the same mTLS
/// connection setup (the same client certificate); with any other certificate, or over plain
/// HTTP, it is refused.
#[derive(SimpleObject)]
pub struct LoginResult {
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// Always `Bearer`.
    pub token_type: String,
}

#[derive(Default)]
pub struct LoginMutation;

#[Object]
impl LoginMutation {
    /// Signs a foreign partner in with username and password, over the mTLS listener only
    /// (the client certificate is the first factor). Each `login` field, aliases included, is
    /// one attempt; failures are slowed down and lock the account after the configured count.
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        #[graphql(secret)] password: String,
    ) -> async_graphql::Result<LoginResult> {
        let (Some(pre_auth), Ok(state)) = (ctx.data_opt::<PreAuth>(), ctx.data::<AppState>())
        else {
            // The guard lets `login` run only in a pre-authentication request; this is the
            // second lock on the same door.
            return Err(ApiError::Unauthenticated(
                "sign in over the partner (mTLS) listener".into(),
            )
            .into());
        };
        let Some(partner_login) = state.partner_login.as_deref() else {
            return Err(
                ApiError::Unauthenticated("password sign-in is not configured".into()).into(),
            );
        };
        let result = partner_login
            .login(state, &pre_auth.cert, &username, &password)
            .await;
        // Every attempt is audited (never the password). A sign-in whose audit record cannot
        // be written does not happen; a refusal is refused either way.
        let (event_type, outcome, reason) = match &result {
            Ok(_) => (EventType::LoginOk, "ok", None),
            Err(PartnerError::Refused(r)) => (EventType::LoginFailed, "denied", Some(r.clone())),
            Err(other) => (EventType::LoginFailed, "denied", Some(other.to_string())),
        };
        let mut event = AuditEvent::new(event_type, outcome)
            .actor(username.clone())
            .detail(json!({ "certificate": pre_auth.cert.thumbprint, "reason": reason }));
        if let Some(source) = &pre_auth.source {
            event = event.source(source.clone());
        }
        let audited = state.audit.record(event).await;
        match result {
            Ok(issued) => {
                audited.map_err(|e| ApiError::Internal(Box::new(e)))?;
                Ok(LoginResult {
                    token: issued.token,
                    expires_in: issued.expires_in,
                    token_type: "Bearer".to_owned(),
                })
            }
            Err(e) => {
                if let Err(audit_error) = audited {
                    tracing::error!(error = %audit_error, "audit of a failed sign-in failed");
                }
                Err(login_error(e, pre_auth).into())
            }
        }
    }
}

fn login_error(err: PartnerError, pre_auth: &PreAuth) -> ApiError {
    match err {
        PartnerError::Refused(reason) => {
            // Logged for operators; the partner sees one message for every refusal.
            tracing::info!(
                reason,
                source = pre_auth.source.as_deref().unwrap_or("-"),
                certificate = pre_auth.cert.thumbprint,
                "partner sign-in refused"
            );
            ApiError::Unauthenticated(PartnerError::Refused(String::new()).to_string())
        }
        PartnerError::Locked => ApiError::AccountLocked(PartnerError::Locked.to_string()),
        PartnerError::Internal(reason) => ApiError::Internal(reason.into()),
        other @ PartnerError::WeakPassword => ApiError::bad_input(other.to_string()),
    }
}

/// True when `request` is exactly one mutation whose top-level selection consists only of
/// `login` fields (aliases allowed, each one attempt; at most `MAX_LOGIN_FIELDS`). Anything
/// else — a query, a second operation, a fragment spread or inline fragment at the top,
/// `__typename`, another mutation field, a document that does not parse — is false, and the
/// request then needs a token.
pub fn is_login_only(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let operation = match &document.operations {
        DocumentOperations::Single(operation) => operation,
        DocumentOperations::Multiple(operations) => {
            // Several named operations: one of them runs, but the others would have to be
            // checked too to be sure which; one is all a sign-in needs.
            let mut all = operations.values();
            match (all.next(), all.next()) {
                (Some(only), None) => only,
                _ => return false,
            }
        }
    };
    let operation = &operation.node;
    if operation.ty != OperationType::Mutation {
        return false;
    }
    let items = &operation.selection_set.node.items;
    (1..=MAX_LOGIN_FIELDS).contains(&items.len())
        && items.iter().all(|item| match &item.node {
            Selection::Field(field) => field.node.name.node.as_str() == LOGIN_FIELD,
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login_only(query: &str) -> bool {
        is_login_only(&async_graphql::Request::new(query))
    }

    #[test]
    fn only_login_mutations_pass_without_a_token() {
        for ok in [
            r#"mutation { login(username: "a", password: "b") { token } }"#,
            r#"mutation SignIn($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresIn } }"#,
            r#"mutation { a: login(username: "a", password: "1") { token } b: login(username: "a", password: "2") { token } }"#,
            r#"mutation { login(username: "a", password: "b") { ...T } } fragment T on LoginResult { token }"#,
        ] {
            assert!(login_only(ok), "{ok}");
        }
        for refused in [
            "{ tradeRecords { totalCount } }",
            r#"query { login(username: "a", password: "b") { token } }"#,
            r#"{ login(username: "a", password: "b") { token } }"#,
            r#"mutation { login(username: "a", password: "b") { token } disableUser(username: "x") { id } }"#,
            r#"mutation { login(username: "a", password: "b") { token } __typename }"#,
            r#"mutation { ... on Mutation { disableUser(username: "x") { id } } }"#,
            r#"mutation { ...M } fragment M on Mutation { login(username: "a", password: "b") { token } }"#,
            r#"mutation A { login(username: "a", password: "b") { token } } mutation B { disableUser(username: "x") { id } }"#,
            r#"mutation A { login(username: "a", password: "b") { token } } query B { me { username } }"#,
            "mutation { }",
            "mutation { login(",
            "",
            "subscription { login }",
            &format!(
                "mutation {{ {} }}",
                (0..=MAX_LOGIN_FIELDS)
                    .map(|i| format!(r#"a{i}: login(username: "a", password: "b") {{ token }}"#))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ] {
            assert!(!login_only(refused), "{refused}");
        }
    }
}
