//! Sharing agreements (DESIGN §2): what a partner nation may see beyond its own rows and the
//! US rows with it. Managed by administrators; read once per request into the permission set.

use chrono::{NaiveDate, Utc};
use entities::sharing_agreement::{self, Column, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

/// One grant as the row scope applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub provider_country: String,
    pub partner_country: Option<String>,
    pub hs_prefix: Option<String>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgreementError {
    /// The input field (GraphQL's name) and what is wrong with it.
    #[error("{0}: {1}")]
    BadCountry(&'static str, crate::country::NotACountry),
    #[error("a nation does not need an agreement to see its own rows")]
    SelfGrant,
    #[error("hsPrefix must be 2 to 10 digits")]
    BadHsPrefix,
    #[error("validTo is before validFrom")]
    BadPeriod,
    #[error("a reason (1 to 1000 characters) is required")]
    BadReason,
    #[error("no sharing agreement {0}")]
    NotFound(i64),
    #[error("sharing agreement {0} is already revoked")]
    AlreadyRevoked(i64),
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

#[derive(Debug)]
pub struct NewAgreement<'a> {
    pub grantee_nation: &'a str,
    pub provider_country: &'a str,
    pub partner_country: Option<&'a str>,
    pub hs_prefix: Option<&'a str>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub reason: &'a str,
}

pub async fn create(
    db: &DatabaseConnection,
    new: NewAgreement<'_>,
    by: &str,
) -> Result<Model, AgreementError> {
    let country = |field, code| {
        crate::country::alpha2(code).map_err(|e| AgreementError::BadCountry(field, e))
    };
    let grantee = country("granteeNation", new.grantee_nation)?;
    let provider = country("providerCountry", new.provider_country)?;
    if grantee == provider {
        return Err(AgreementError::SelfGrant);
    }
    let partner = new
        .partner_country
        .map(|code| country("partnerCountry", code))
        .transpose()?;
    let hs_prefix = match new.hs_prefix {
        Some(p) if (2..=10).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.to_owned())
        }
        Some(_) => return Err(AgreementError::BadHsPrefix),
        None => None,
    };
    if new.valid_to.is_some_and(|to| to < new.valid_from) {
        return Err(AgreementError::BadPeriod);
    }
    let reason = new.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1_000 {
        return Err(AgreementError::BadReason);
    }
    let row = sharing_agreement::ActiveModel {
        grantee_nation: Set(grantee),
        provider_country: Set(provider),
        partner_country: Set(partner),
        hs_prefix: Set(hs_prefix),
        valid_from: Set(new.valid_from),
        valid_to: Set(new.valid_to),
        reason: Set(reason.to_owned()),
        created_by: Set(by.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    Ok(row.insert(db).await?)
}

pub async fn revoke(db: &DatabaseConnection, id: i64, by: &str) -> Result<Model, AgreementError> {
    let found = sharing_agreement::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AgreementError::NotFound(id))?;
    if found.revoked_at.is_some() {
        return Err(AgreementError::AlreadyRevoked(id));
    }
    let mut row: sharing_agreement::ActiveModel = found.into();
    row.revoked_at = Set(Some(Utc::now()));
    row.revoked_by = Set(Some(by.to_owned()));
    Ok(row.update(db).await?)
}

pub async fn list(db: &DatabaseConnection) -> Result<Vec<Model>, sea_orm::DbErr> {
    sharing_agreement::Entity::find()
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// The grants in force for `nation`'s partner accounts (not revoked). Their periods limit
/// which declarations they cover, so an agreement that ended still shows nothing after it.
pub async fn grants_for(
    db: &DatabaseConnection,
    nation: &str,
) -> Result<Vec<Grant>, sea_orm::DbErr> {
    let rows = sharing_agreement::Entity::find()
        .filter(Column::GranteeNation.eq(nation))
        .filter(Column::RevokedAt.is_null())
        .order_by_asc(Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| Grant {
            provider_country: m.provider_country,
            partner_country: m.partner_country,
            hs_prefix: m.hs_prefix,
            valid_from: m.valid_from,
            valid_to: m.valid_to,
        })
        .collect())
}
