//! Account administration: listing, access review, approvals, role changes, disabling.
//!
//! Every field here carries ADMIN data (`policies/fields.toml`) except `approveAccess`, which a
//! supervisor must be able to call for their own staff; that resolver decides from the
//! request's permission set (does it hold ADMIN?) and the account's recorded supervisor.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entities::user;

use super::guard::{audit_event, principal};
use crate::accounts::{self, AccountError, Approval};
use crate::audit::EventType;
use crate::error::ApiError;
use crate::policy::{Category, Policy};
use crate::state::AppState;

/// Records an account change before it is made: a change that cannot be audited is not made.
pub(super) async fn audit_change(
    ctx: &Context<'_>,
    detail: serde_json::Value,
) -> async_graphql::Result<()> {
    let state = ctx.data::<AppState>()?;
    let event = audit_event(ctx, EventType::AdminChange, "attempted")?.detail(detail);
    state
        .audit
        .record(event)
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(())
}

/// A local account as administrators see it.
#[derive(SimpleObject)]
pub struct Account {
    pub id: ID,
    pub username: String,
    pub role: String,
    pub nation: Option<String>,
    /// `PENDING`, `ACTIVE`, `LOCKED` or `DISABLED`.
    pub status: String,
    pub supervisor: Option<String>,
    pub justification: Option<String>,
    pub supervisor_approved_by: Option<String>,
    pub admin_approved_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub last_reviewed_at: Option<DateTime<Utc>>,
}

impl From<user::Model> for Account {
    fn from(m: user::Model) -> Self {
        Account {
            id: ID(m.id.to_string()),
            username: m.username,
            role: m.role,
            nation: m.nation,
            status: m.status,
            supervisor: m.supervisor,
            justification: m.justification,
            supervisor_approved_by: m.supervisor_approved_by,
            admin_approved_by: m.admin_approved_by,
            created_at: m.created_at,
            last_login_at: m.last_login_at,
            last_reviewed_at: m.last_reviewed_at,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalStep {
    /// The supervisor vouched; an administrator must still grant access.
    Supervisor,
    /// Access granted: the account is ACTIVE.
    Granted,
}

#[derive(SimpleObject)]
pub struct ApprovalResult {
    pub step: ApprovalStep,
    pub account: Account,
}

fn account_error(e: AccountError) -> async_graphql::Error {
    match e {
        AccountError::Database(db) => ApiError::from(db).into(),
        AccountError::NotFound(_) => ApiError::NotFound(e.to_string()).into(),
        AccountError::NotApprover(_) => ApiError::Forbidden(e.to_string()).into(),
        other => ApiError::bad_input(other.to_string()).into(),
    }
}

const MAX_REVIEW_DAYS: i32 = 3650;

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Every local account, by username.
    async fn users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Account>> {
        let state = ctx.data::<AppState>()?;
        let rows = accounts::list(&state.db).await.map_err(ApiError::from)?;
        Ok(rows.into_iter().map(Account::from).collect())
    }

    /// ACTIVE accounts due for the periodic access review.
    async fn access_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 90)] not_reviewed_days: i32,
        #[graphql(default = 45)] not_signed_in_days: i32,
    ) -> async_graphql::Result<Vec<Account>> {
        for days in [not_reviewed_days, not_signed_in_days] {
            if !(0..=MAX_REVIEW_DAYS).contains(&days) {
                return Err(ApiError::bad_input(format!(
                    "days must be between 0 and {MAX_REVIEW_DAYS}"
                ))
                .into());
            }
        }
        let state = ctx.data::<AppState>()?;
        let rows = accounts::review_due(
            &state.db,
            i64::from(not_reviewed_days),
            i64::from(not_signed_in_days),
        )
        .await
        .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(Account::from).collect())
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Approves a PENDING access request: first by the supervisor it names, then by a
    /// different administrator, which makes the account ACTIVE.
    async fn approve_access(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> async_graphql::Result<ApprovalResult> {
        audit_change(
            ctx,
            serde_json::json!({ "action": "approve_access", "username": username }),
        )
        .await?;
        let state = ctx.data::<AppState>()?;
        let me = principal(ctx)?;
        let is_admin = me.permissions.allows(Category::Admin);
        let (step, account) = accounts::approve(&state.db, &me.username, is_admin, &username)
            .await
            .map_err(account_error)?;
        let step = match step {
            Approval::BySupervisor => ApprovalStep::Supervisor,
            Approval::Granted => ApprovalStep::Granted,
        };
        Ok(ApprovalResult {
            step,
            account: account.into(),
        })
    }

    /// Disables an account; it is refused from its next request on.
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> async_graphql::Result<Account> {
        audit_change(
            ctx,
            serde_json::json!({ "action": "disable_user", "username": username }),
        )
        .await?;
        let state = ctx.data::<AppState>()?;
        if principal(ctx)?.username == username {
            return Err(
                ApiError::bad_input("administrators cannot disable their own account").into(),
            );
        }
        Ok(accounts::disable(&state.db, &username)
            .await
            .map_err(account_error)?
            .into())
    }

    /// Changes an account's role (and nation, for nation-scoped roles).
    async fn change_role(
        &self,
        ctx: &Context<'_>,
        username: String,
        role: String,
        nation: Option<String>,
    ) -> async_graphql::Result<Account> {
        audit_change(ctx, serde_json::json!({ "action": "change_role", "username": username, "role": role, "nation": nation })).await?;
        let state = ctx.data::<AppState>()?;
        let policy = ctx.data::<Arc<Policy>>()?;
        if principal(ctx)?.username == username {
            return Err(ApiError::bad_input("administrators cannot change their own role").into());
        }
        Ok(
            accounts::change_role(&state.db, policy, &username, &role, nation.as_deref())
                .await
                .map_err(account_error)?
                .into(),
        )
    }

    /// Records that an account's access was reviewed and is still needed.
    async fn mark_reviewed(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> async_graphql::Result<Account> {
        audit_change(
            ctx,
            serde_json::json!({ "action": "mark_reviewed", "username": username }),
        )
        .await?;
        let state = ctx.data::<AppState>()?;
        Ok(accounts::mark_reviewed(&state.db, &username)
            .await
            .map_err(account_error)?
            .into())
    }
}
