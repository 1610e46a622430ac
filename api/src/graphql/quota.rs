//! `quotaStatus` and `unlockUser` (DESIGN §5).

use std::sync::Arc;

use async_graphql::{Context, ID, Object, SimpleObject};
use entities::user;
use sea_orm::EntityTrait;
use serde_json::json;

use super::admin::Account;
use super::guard::{audit_event, principal};
use crate::accounts::{self, AccountError};
use crate::audit::EventType;
use crate::error::{ApiError, outcome_of};
use crate::policy::{Category, Policy};
use crate::quota;
use crate::state::AppState;

/// How much of its download allowance an account has used.
#[derive(SimpleObject)]
pub struct QuotaStatus {
    /// Records delivered in the current window.
    pub used: i64,
    /// The role's limit; null when the role is unlimited.
    pub limit: Option<i64>,
    /// `DAY` or `UNTIL_UNLOCK`; null when unlimited.
    pub window: Option<String>,
    pub locked: bool,
}

fn parse_user_id(id: &ID) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .map_err(|_| ApiError::bad_input(format!("{:?} is not a user id", id.as_str())))
}

fn unavailable(e: quota::QuotaError) -> async_graphql::Error {
    match e {
        quota::QuotaError::Rebuild(db) => ApiError::from(db).into(),
        other => {
            let mut err: async_graphql::Error = ApiError::Internal(Box::new(other)).into();
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", "QUOTA_UNAVAILABLE");
            err
        }
    }
}

#[derive(Default)]
pub struct QuotaQuery;

#[Object]
impl QuotaQuery {
    /// Your own quota, or (administrators) another account's.
    async fn quota_status(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
    ) -> async_graphql::Result<QuotaStatus> {
        let state = ctx.data::<AppState>()?;
        let policy = ctx.data::<Arc<Policy>>()?;
        let me = principal(ctx)?;
        let target = match &user_id {
            None => me.user_id,
            Some(id) => parse_user_id(id)?,
        };
        if target != me.user_id && !me.permissions.allows(Category::Admin) {
            return Err(ApiError::ForbiddenField(
                "quotaStatus(userId:) is for administrators".into(),
            )
            .into());
        }
        let account = user::Entity::find_by_id(target)
            .one(&state.db)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
        let perms = policy.permissions(&account.role, account.nation.as_deref());
        let db_locked = account.status == accounts::LOCKED;
        let Some(q) = perms.quota else {
            return Ok(QuotaStatus {
                used: 0,
                limit: None,
                window: None,
                locked: db_locked,
            });
        };
        let key = quota::Account::from(&account);
        let usage = state
            .quota
            .usage(&state.db, &key, q)
            .await
            .map_err(unavailable)?;
        Ok(QuotaStatus {
            used: i64::try_from(usage.used).unwrap_or(i64::MAX),
            limit: Some(i64::try_from(q.records).unwrap_or(i64::MAX)),
            window: Some(q.window.as_str().to_owned()),
            locked: db_locked || usage.locked,
        })
    }
}

#[derive(Default)]
pub struct QuotaMutation;

#[Object]
impl QuotaMutation {
    /// Unlocks an account locked by its download quota and starts its count over. Audited
    /// with the reason given.
    async fn unlock_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        reason: String,
    ) -> async_graphql::Result<Account> {
        let state = ctx.data::<AppState>()?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1_000 {
            return Err(ApiError::bad_input("reason must be 1 to 1000 characters").into());
        }
        let id = parse_user_id(&user_id)?;
        // Audit first: an unlock that cannot be audited does not happen. The outcome follows
        // in a second event, saying what the answer says.
        let detail = json!({ "userId": id, "reason": reason });
        let audit = |outcome| {
            let detail = detail.clone();
            async move {
                let event = audit_event(ctx, EventType::Unlock, outcome)?.detail(detail);
                state
                    .audit
                    .record(event)
                    .await
                    .map(|_| ())
                    .map_err(|e| ApiError::Internal(Box::new(e)))
            }
        };
        audit("attempted").await?;
        let unlocked = match accounts::unlock(&state.db, id).await {
            Ok(account) => state
                .quota
                .unlock(id)
                .await
                .map(|()| account)
                .map_err(unavailable),
            Err(AccountError::Database(db)) => Err(ApiError::from(db).into()),
            Err(AccountError::NotFound(_)) => Err(ApiError::NotFound("no such user".into()).into()),
            Err(other) => Err(ApiError::bad_input(other.to_string()).into()),
        };
        let outcome = match &unlocked {
            Ok(_) => "ok",
            Err(e) => outcome_of(e),
        };
        audit(outcome).await?;
        let account = unlocked?;
        Ok(account.into())
    }
}
