//! One line of one trade declaration, in the canonical shape every partner layout maps onto.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "trade_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub batch_id: i64,
    /// The line of the delivered file the row was read from (from migration 000027; earlier rows
    /// have none): where a load names a row it rejects after writing it.
    pub source_line: Option<i64>,
    /// ISO 3166 alpha-2 code of the nation that delivered the file (drives row scoping).
    pub provider_country: String,
    pub declaration_id: String,
    pub line_number: i32,
    pub declaration_date: Date,
    /// `IMPORT` or `EXPORT`, seen from `reporting_country`.
    pub direction: String,
    pub hs_code: String,
    pub commodity_description: Option<String>,
    pub importer_name: Option<String>,
    pub importer_id: Option<String>,
    pub importer_address: Option<String>,
    pub exporter_name: Option<String>,
    pub manufacturer_name: Option<String>,
    pub manufacturer_id: Option<String>,
    pub country_of_origin: Option<String>,
    pub country_of_export: Option<String>,
    pub country_of_destination: Option<String>,
    pub reporting_country: String,
    pub partner_country: Option<String>,
    pub port: Option<String>,
    pub transport_mode: Option<String>,
    pub quantity: Option<f64>,
    pub quantity_unit: Option<String>,
    pub net_weight_kg: Option<f64>,
    /// Amount as declared, in `declared_currency`.
    pub declared_value: f64,
    pub declared_currency: String,
    pub declared_value_usd: f64,
    /// Year of `declaration_date`: the period of the record's peer group.
    pub peer_year: Option<i32>,
    /// ln(USD per quantity unit), when quantity and value are positive (written at load).
    pub log_unit_price: Option<f64>,
    /// ln(USD per kg), when net weight and value are positive (written at load).
    pub log_value_per_kg: Option<f64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
