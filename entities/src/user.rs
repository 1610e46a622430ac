//! A local account. Roles and nations are assigned here by admins, never taken from a token.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The SSO subject / login name the account is bound to.
    #[sea_orm(unique)]
    pub username: String,
    /// One of the roles named in `policies/roles.toml`.
    pub role: String,
    /// ISO alpha-2 nation of a foreign partner; absent for domestic roles.
    pub nation: Option<String>,
    /// `PENDING`, `ACTIVE`, `LOCKED` or `DISABLED`.
    pub status: String,
    pub created_at: DateTimeUtc,
    pub created_by: String,
    pub last_login_at: Option<DateTimeUtc>,
    pub last_reviewed_at: Option<DateTimeUtc>,
    /// Username of the supervisor who must vouch for an access request.
    pub supervisor: Option<String>,
    pub justification: Option<String>,
    pub supervisor_approved_by: Option<String>,
    pub supervisor_approved_at: Option<DateTimeUtc>,
    pub admin_approved_by: Option<String>,
    pub admin_approved_at: Option<DateTimeUtc>,
    /// Last unlock: quota usage before it no longer counts.
    pub quota_reset_at: Option<DateTimeUtc>,
    /// argon2id PHC string for the partners' sign-in (certificate + password); unset means the
    /// account cannot sign in with a password.
    #[sea_orm(column_type = "Text", nullable)]
    pub password_hash: Option<String>,
    /// Consecutive failed password sign-ins; the account is LOCKED when it reaches the limit.
    pub failed_logins: i32,
    pub last_failed_login_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
