//! One load of one input file: the provenance every analytical row points back to.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "batches")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `trade`, `financial`, `subjects` or `sdn`.
    pub dataset: String,
    pub file_name: String,
    /// Hex SHA-256 of the raw input; with `dataset` it makes a reload a no-op.
    pub sha256: String,
    pub accepted_rows: i64,
    pub rejected_rows: i64,
    pub as_of: Date,
    pub provider_country: Option<String>,
    pub profile: Option<String>,
    pub loaded_by: String,
    pub loaded_at: DateTimeUtc,
    /// Where the raw input is kept, relative to the data directory (content-addressed).
    pub raw_path: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
