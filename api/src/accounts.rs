//! Local accounts: the only source of a principal's role, nation and status.

use chrono::Utc;
use entities::user;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::policy::{Policy, RowScope};

/// Roles the product knows (DESIGN §2). What each may do is in `policies/roles.toml`.
pub const ROLES: &[&str] = &[
    "HSI_AGENT",
    "HSI_ANALYST",
    "CBP_OFFICER",
    "CBP_IMPORT_SPECIALIST",
    "FOREIGN_PARTNER",
    "ADMIN",
];

pub const ACTIVE: &str = "ACTIVE";
pub const DISABLED: &str = "DISABLED";
pub const PENDING: &str = "PENDING";
pub const LOCKED: &str = "LOCKED";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("unknown role {0:?} (roles: {roles})", roles = ROLES.join(", "))]
    UnknownRole(String),
    #[error("role {0} is scoped to a nation: give --nation XX")]
    NationRequired(String),
    #[error("role {0} is not scoped to a nation; --nation does not apply")]
    NationNotApplicable(String),
    #[error("nation {0}")]
    BadNation(crate::country::NotACountry),
    #[error(
        "role {0} is scoped to a partner nation; US is this system's own nation, not a partner"
    )]
    DomesticNation(String),
    #[error(
        "role {0} reads every row; the foreign instance holds partners' data and has no such users"
    )]
    NotOnInstance(String),
    #[error("username must be 1 to 128 characters: ASCII letters, digits and . _ - @ +")]
    BadUsername,
    #[error("an account named {0:?} already exists (names that differ only in case are one)")]
    Exists(String),
    #[error("no account named {0:?}")]
    NotFound(String),
    #[error("supervisor {0:?} is not an active account (and cannot be the requester)")]
    BadSupervisor(String),
    #[error("account {0:?} is {1}, not PENDING")]
    NotPending(String, String),
    #[error("account {0:?} awaits its supervisor's approval first")]
    AwaitsSupervisor(String),
    #[error("you may not approve {0:?}: only its supervisor, then a different administrator")]
    NotApprover(String),
    #[error("account {0:?} is {1}, not LOCKED")]
    NotLocked(String, String),
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

/// Creates an ACTIVE account (the operator's bootstrap path; the request/approval workflow
/// produces the same row through admins).
pub async fn add(
    db: &DatabaseConnection,
    policy: &Policy,
    username: &str,
    role: &str,
    nation: Option<&str>,
    created_by: &str,
) -> Result<user::Model, AccountError> {
    check_username(username)?;
    let (role, nation) = check_role(policy, role, nation)?;
    check_new(db, username).await?;
    let row = user::ActiveModel {
        username: Set(username.to_owned()),
        role: Set(role),
        nation: Set(nation),
        status: Set(ACTIVE.to_owned()),
        created_at: Set(Utc::now()),
        created_by: Set(created_by.to_owned()),
        ..Default::default()
    };
    Ok(row.insert(db).await?)
}

/// Usernames are ASCII letters, digits and `.` `_` `-` `@` `+` (an agency login or an e-mail
/// address): any other letter can look like one of these (a full-width `Ｓ`, a Cyrillic `а`),
/// and an administrator approving `sqana` must not be approving someone else.
fn check_username(username: &str) -> Result<(), AccountError> {
    if username.is_empty()
        || username.len() > 128
        || !username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b))
    {
        return Err(AccountError::BadUsername);
    }
    Ok(())
}

/// Refuses a new username that an account already has, in any case: `SQANA` and `sqana`
/// would be two accounts that people (and audit readers) take for one.
async fn check_new(db: &DatabaseConnection, username: &str) -> Result<(), AccountError> {
    let existing = user::Entity::find()
        .filter(ExprTrait::eq(
            Expr::expr(Func::lower(Expr::col(user::Column::Username))),
            username.to_ascii_lowercase(),
        ))
        .one(db)
        .await?;
    match existing {
        Some(account) => Err(AccountError::Exists(account.username)),
        None => Ok(()),
    }
}

/// A known role with a nation exactly when its row scope needs one; returns them normalized.
fn check_role(
    policy: &Policy,
    role: &str,
    nation: Option<&str>,
) -> Result<(String, Option<String>), AccountError> {
    if !ROLES.contains(&role) {
        return Err(AccountError::UnknownRole(role.to_owned()));
    }
    if !policy.serves(role) {
        return Err(AccountError::NotOnInstance(role.to_owned()));
    }
    let nation = match nation {
        Some(n) => Some(crate::country::alpha2(n).map_err(AccountError::BadNation)?),
        None => None,
    };
    // Whether a role needs a nation follows from its row scope in the policy, not its name.
    let scoped = policy.permissions(role, Some("ZZ")).rows == RowScope::OwnNation;
    match (scoped, &nation) {
        (true, None) => Err(AccountError::NationRequired(role.to_owned())),
        // A nation scope reads the rows its nation provided: as "US" that is every US
        // declaration, with the real importers on the domestic instance.
        (true, Some(n)) if n == crate::graphql::scope::US => {
            Err(AccountError::DomesticNation(role.to_owned()))
        }
        (false, Some(_)) => Err(AccountError::NationNotApplicable(role.to_owned())),
        _ => Ok((role.to_owned(), nation)),
    }
}

pub async fn find(
    db: &DatabaseConnection,
    username: &str,
) -> Result<Option<user::Model>, sea_orm::DbErr> {
    user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<user::Model>, sea_orm::DbErr> {
    user::Entity::find()
        .order_by_asc(user::Column::Username)
        .all(db)
        .await
}

pub async fn disable(db: &DatabaseConnection, username: &str) -> Result<user::Model, AccountError> {
    let found = find(db, username)
        .await?
        .ok_or_else(|| AccountError::NotFound(username.to_owned()))?;
    let mut row: user::ActiveModel = found.into();
    row.status = Set(DISABLED.to_owned());
    Ok(row.update(db).await?)
}

/// Records a successful sign-in (feeds the access review: "not signed in for N days").
pub async fn touch_login(db: &DatabaseConnection, id: i64) -> Result<(), sea_orm::DbErr> {
    user::Entity::update_many()
        .col_expr(
            user::Column::LastLoginAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Files an access request: a PENDING account that a supervisor, then an admin, must approve.
pub async fn request_access(
    db: &DatabaseConnection,
    policy: &Policy,
    request: AccessRequest<'_>,
) -> Result<user::Model, AccountError> {
    let supervisor = find(db, request.supervisor)
        .await?
        .filter(|s| s.status == ACTIVE)
        .ok_or_else(|| AccountError::BadSupervisor(request.supervisor.to_owned()))?;
    if supervisor.username == request.username {
        return Err(AccountError::BadSupervisor(request.supervisor.to_owned()));
    }
    let (role, nation) = check_role(policy, request.role, request.nation)?;
    check_username(request.username)?;
    check_new(db, request.username).await?;
    let row = user::ActiveModel {
        username: Set(request.username.to_owned()),
        role: Set(role),
        nation: Set(nation),
        status: Set(PENDING.to_owned()),
        created_at: Set(Utc::now()),
        created_by: Set(request.username.to_owned()),
        supervisor: Set(Some(supervisor.username)),
        justification: Set(Some(request.justification.to_owned())),
        ..Default::default()
    };
    Ok(row.insert(db).await?)
}

#[derive(Debug)]
pub struct AccessRequest<'a> {
    pub username: &'a str,
    pub role: &'a str,
    pub nation: Option<&'a str>,
    pub supervisor: &'a str,
    pub justification: &'a str,
}

/// What an approval did.
#[derive(Debug, PartialEq, Eq)]
pub enum Approval {
    /// The supervisor vouched; an admin must still grant.
    BySupervisor,
    /// An admin granted; the account is ACTIVE.
    Granted,
}

/// Records an approval by `approver`. The supervisor named in the request vouches first; then
/// someone holding the ADMIN category grants — never the same person for both steps.
pub async fn approve(
    db: &DatabaseConnection,
    approver: &str,
    approver_is_admin: bool,
    username: &str,
) -> Result<(Approval, user::Model), AccountError> {
    let account = find(db, username).await?;
    // Anyone signed in may call this (a supervisor needs no admin role), so a caller who could
    // not approve the account learns nothing of it: not whether it exists, nor its status.
    let may_approve =
        |a: &user::Model| approver_is_admin || a.supervisor.as_deref() == Some(approver);
    let account = match account {
        Some(a) if may_approve(&a) => a,
        Some(_) => return Err(AccountError::NotApprover(username.to_owned())),
        None if approver_is_admin => return Err(AccountError::NotFound(username.to_owned())),
        None => return Err(AccountError::NotApprover(username.to_owned())),
    };
    if account.status != PENDING {
        return Err(AccountError::NotPending(
            username.to_owned(),
            account.status,
        ));
    }
    let is_supervisor = account.supervisor.as_deref() == Some(approver);
    let mut row: user::ActiveModel = account.clone().into();
    let step = match (
        &account.supervisor_approved_by,
        is_supervisor,
        approver_is_admin,
    ) {
        (None, true, _) => {
            row.supervisor_approved_by = Set(Some(approver.to_owned()));
            row.supervisor_approved_at = Set(Some(Utc::now()));
            Approval::BySupervisor
        }
        (Some(vouched_by), _, true) if vouched_by != approver => {
            row.admin_approved_by = Set(Some(approver.to_owned()));
            row.admin_approved_at = Set(Some(Utc::now()));
            row.status = Set(ACTIVE.to_owned());
            // Approval is a review: the clock for the next access review starts now.
            row.last_reviewed_at = Set(Some(Utc::now()));
            Approval::Granted
        }
        (None, false, true) => return Err(AccountError::AwaitsSupervisor(username.to_owned())),
        _ => return Err(AccountError::NotApprover(username.to_owned())),
    };
    Ok((step, row.update(db).await?))
}

/// Changes an account's role (and nation); the same rules as creating it.
pub async fn change_role(
    db: &DatabaseConnection,
    policy: &Policy,
    username: &str,
    role: &str,
    nation: Option<&str>,
) -> Result<user::Model, AccountError> {
    let (role, nation) = check_role(policy, role, nation)?;
    let account = find(db, username)
        .await?
        .ok_or_else(|| AccountError::NotFound(username.to_owned()))?;
    let mut row: user::ActiveModel = account.into();
    row.role = Set(role);
    row.nation = Set(nation);
    Ok(row.update(db).await?)
}

/// ACTIVE accounts not reviewed for `not_reviewed_days`, or not signed in for
/// `not_signed_in_days` (never counts as long ago).
pub async fn review_due(
    db: &DatabaseConnection,
    not_reviewed_days: i64,
    not_signed_in_days: i64,
) -> Result<Vec<user::Model>, sea_orm::DbErr> {
    use sea_orm::Condition;
    let now = Utc::now();
    let reviewed_before = now - chrono::Duration::days(not_reviewed_days);
    let signed_in_before = now - chrono::Duration::days(not_signed_in_days);
    user::Entity::find()
        .filter(user::Column::Status.eq(ACTIVE))
        .filter(
            Condition::any()
                .add(user::Column::LastReviewedAt.is_null())
                .add(user::Column::LastReviewedAt.lt(reviewed_before))
                .add(user::Column::LastLoginAt.is_null())
                .add(user::Column::LastLoginAt.lt(signed_in_before)),
        )
        .order_by_asc(user::Column::Username)
        .all(db)
        .await
}

pub async fn mark_reviewed(
    db: &DatabaseConnection,
    username: &str,
) -> Result<user::Model, AccountError> {
    let account = find(db, username)
        .await?
        .ok_or_else(|| AccountError::NotFound(username.to_owned()))?;
    let mut row: user::ActiveModel = account.into();
    row.last_reviewed_at = Set(Some(Utc::now()));
    Ok(row.update(db).await?)
}

/// Stores a new password hash (an argon2id PHC string made by `auth::partner::hash_password`)
/// and clears the failure count: the old password's failures say nothing about the new one.
/// The status is left alone; a LOCKED account stays locked until an administrator unlocks it.
pub async fn set_password_hash(
    db: &DatabaseConnection,
    username: &str,
    hash: &str,
) -> Result<user::Model, AccountError> {
    let account = find(db, username)
        .await?
        .ok_or_else(|| AccountError::NotFound(username.to_owned()))?;
    let mut row: user::ActiveModel = account.into();
    row.password_hash = Set(Some(hash.to_owned()));
    row.failed_logins = Set(0);
    row.last_failed_login_at = Set(None);
    Ok(row.update(db).await?)
}

/// Counts a failed password sign-in and locks the account when the count reaches
/// `max_failures`. Both steps are single UPDATEs with the arithmetic and the condition in SQL,
/// so concurrent failures (several replicas, several certificates) cannot lose a count or skip
/// the lock. Only an ACTIVE account is locked: a DISABLED one stays disabled. Returns whether
/// this failure locked the account.
pub async fn record_failed_login(
    db: &DatabaseConnection,
    id: i64,
    max_failures: u32,
) -> Result<bool, sea_orm::DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    user::Entity::update_many()
        .col_expr(
            user::Column::FailedLogins,
            Expr::col(user::Column::FailedLogins).add(1),
        )
        .col_expr(user::Column::LastFailedLoginAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    let locked = user::Entity::update_many()
        .col_expr(user::Column::Status, Expr::value(LOCKED))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::Status.eq(ACTIVE))
        .filter(user::Column::FailedLogins.gte(i64::from(max_failures)))
        .exec(db)
        .await?;
    Ok(locked.rows_affected > 0)
}

/// A successful password sign-in: the failure count starts again from zero.
pub async fn clear_failed_logins(db: &DatabaseConnection, id: i64) -> Result<(), sea_orm::DbErr> {
    user::Entity::update_many()
        .col_expr(
            user::Column::FailedLogins,
            sea_orm::sea_query::Expr::value(0),
        )
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks an ACTIVE account LOCKED (a quota was crossed). The database, not Redis, is the
/// record that survives: authentication refuses LOCKED accounts on every request.
pub async fn lock(db: &DatabaseConnection, id: i64) -> Result<(), sea_orm::DbErr> {
    user::Entity::update_many()
        .col_expr(
            user::Column::Status,
            sea_orm::sea_query::Expr::value(LOCKED),
        )
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::Status.eq(ACTIVE))
        .exec(db)
        .await?;
    Ok(())
}

/// Unlocks a LOCKED account and starts its quota count over from now.
pub async fn unlock(db: &DatabaseConnection, id: i64) -> Result<user::Model, AccountError> {
    let account = user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AccountError::NotFound(id.to_string()))?;
    if account.status != LOCKED {
        return Err(AccountError::NotLocked(account.username, account.status));
    }
    let mut row: user::ActiveModel = account.into();
    row.status = Set(ACTIVE.to_owned());
    row.quota_reset_at = Set(Some(Utc::now()));
    // A lock from failed partner sign-ins too: with the old count kept, one more typo would
    // lock the account again at once.
    row.failed_logins = Set(0);
    Ok(row.update(db).await?)
}
