//! Local accounts: the only source of a principal's role, nation and status.

use chrono::Utc;
use entities::user;
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
    #[error("{0:?} is not an ISO 3166 alpha-2 country code")]
    BadNation(String),
    #[error("username must be 1 to 128 characters without spaces or control characters")]
    BadUsername,
    #[error("an account named {0:?} already exists")]
    Exists(String),
    #[error("no account named {0:?}")]
    NotFound(String),
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
    if username.is_empty()
        || username.len() > 128
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AccountError::BadUsername);
    }
    if !ROLES.contains(&role) {
        return Err(AccountError::UnknownRole(role.to_owned()));
    }
    let nation = match nation {
        Some(n) => {
            let upper = n.trim().to_ascii_uppercase();
            if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(AccountError::BadNation(n.to_owned()));
            }
            Some(upper)
        }
        None => None,
    };
    // Whether a role needs a nation follows from its row scope in the policy, not its name.
    let scoped = policy.permissions(role, Some("ZZ")).rows == RowScope::OwnNation;
    match (scoped, &nation) {
        (true, None) => return Err(AccountError::NationRequired(role.to_owned())),
        (false, Some(_)) => return Err(AccountError::NationNotApplicable(role.to_owned())),
        _ => {}
    }
    if find(db, username).await?.is_some() {
        return Err(AccountError::Exists(username.to_owned()));
    }
    let row = user::ActiveModel {
        username: Set(username.to_owned()),
        role: Set(role.to_owned()),
        nation: Set(nation),
        status: Set(ACTIVE.to_owned()),
        created_at: Set(Utc::now()),
        created_by: Set(created_by.to_owned()),
        ..Default::default()
    };
    Ok(row.insert(db).await?)
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
