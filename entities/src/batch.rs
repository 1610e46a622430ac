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
    /// Hex SHA-256 of the raw input; with `dataset` it makes a reload a no-op (unless this batch
    /// was purged).
    pub sha256: String,
    pub accepted_rows: i64,
    pub rejected_rows: i64,
    pub as_of: Date,
    pub provider_country: Option<String>,
    pub profile: Option<String>,
    pub loaded_by: String,
    pub loaded_at: DateTimeUtc,
    /// Where the raw input is kept, relative to the data directory (content-addressed); an SDN
    /// batch lists its files separated by `;`.
    pub raw_path: String,
    /// When `dartts purge` removed this batch's rows, rejections and raw files (retention,
    /// DESIGN §3); the row itself stays as the record that the load happened.
    pub purged_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
