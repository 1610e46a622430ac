//! The robust statistics of one peer group (HS code, quantity unit, year, optionally origin)
//! over the logarithm of a price measure, materialized at load time.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "peer_profiles")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `UNIT_PRICE` or `VALUE_PER_KG`.
    pub measure: String,
    pub hs_code: String,
    /// The quantity unit of `UNIT_PRICE` groups; empty for `VALUE_PER_KG`.
    pub quantity_unit: String,
    pub year: i32,
    /// Empty: peers of every origin; else one country of origin.
    pub origin: String,
    pub peer_count: i64,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    /// Median absolute deviation from the median (unscaled).
    pub mad: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
