//! A FinCEN BSA report line (CTR, CMIR, SAR-like). Domestic instance only.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "financial_transactions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    /// The line of the delivered file the row was read from (from migration 000027; earlier rows
    /// have none): where a load names a row it rejects after writing it.
    pub source_line: Option<i64>,
    pub report_id: String,
    /// `CTR`, `CMIR` or `SAR`.
    pub report_type: String,
    pub transaction_date: Date,
    pub amount_usd: f64,
    /// `IN`, `OUT` or absent when the report is not about cash.
    pub cash_direction: Option<String>,
    pub filer_institution: Option<String>,
    pub subject_name: String,
    pub subject_tin: Option<String>,
    pub subject_dob: Option<Date>,
    pub subject_address: Option<String>,
    pub subject_id_number: Option<String>,
    pub account_number: Option<String>,
    pub counterparty_name: Option<String>,
    pub counterparty_account: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
