//! A grant of rows one nation provided to another nation's partner accounts.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sharing_agreements")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The nation whose partner accounts gain access.
    pub grantee_nation: String,
    /// Rows provided by this nation are shared…
    pub provider_country: String,
    /// …optionally only those with this partner country…
    pub partner_country: Option<String>,
    /// …and this HS code prefix…
    pub hs_prefix: Option<String>,
    /// …declared within this period.
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
