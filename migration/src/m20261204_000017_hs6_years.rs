//! `trade_hs6_years`: a rollup of `trade_records` per batch, provider, reporting country,
//! partner country, direction, HS subheading (6 digits) and declaration year (issue 8).
//!
//! Mirror trade compares what two nations report per HS6 and year, and totals by chapter,
//! heading or partner over whole years ask the same shape: both grouped every record of the
//! nations involved per request (about 170,000 rows for one partner of 1.43M generated rows,
//! ten times that at 10M). Here those records are already summed per cell: 37,000 rows for
//! that partner at 1.43M, and the cells grow far slower than the records.
//!
//! Same conventions as `trade_importer_years` (migration 000014): rows per batch, so that a
//! load appends its own and a purge deletes them; columns under the names of `trade_records`,
//! with the year's first day in `declaration_date` and the 6-digit subheading in `hs_code`, so
//! a filter or scope condition written for the records applies unchanged when it reads only
//! what is kept here — and an HS prefix of at most 6 digits selects the same cells
//! (`analysis::rollup` decides when that is so); quantities summed over one unit only, with
//! `min_unit`/`max_unit`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub const TABLE: &str = "trade_hs6_years";

/// The statement that sums `trade_records` into this table: for the batch bound as `$1` when
/// `one_batch`, else for every row (the migration itself, `dartts analysis refresh`).
pub fn fill(backend: DbBackend, one_batch: bool) -> String {
    let year = match backend {
        DbBackend::Postgres => "CAST(date_trunc('year', declaration_date) AS date)",
        // SQLite keeps dates as ISO text.
        _ => "substr(declaration_date, 1, 4) || '-01-01'",
    };
    let filter = if one_batch { "WHERE batch_id = $1" } else { "" };
    format!(
        "INSERT INTO {TABLE} (batch_id, provider_country, reporting_country, partner_country, \
         direction, hs_code, declaration_date, declared_value_usd, quantity, min_unit, max_unit, \
         net_weight_kg, record_count) \
         SELECT batch_id, provider_country, reporting_country, partner_country, direction, \
         substr(hs_code, 1, 6), {year}, SUM(declared_value_usd), \
         SUM(CASE WHEN quantity_unit IS NOT NULL THEN quantity END), MIN(quantity_unit), \
         MAX(quantity_unit), SUM(net_weight_kg), COUNT(*) \
         FROM trade_records {filter} \
         GROUP BY batch_id, provider_country, reporting_country, partner_country, direction, \
         substr(hs_code, 1, 6), {year}"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One call: two calls may run on two pooled SQLite connections, and the second may
        // still read the schema from before the first (see migration 000013).
        //
        // What a load pays for this table is its insert, so it carries only what the questions
        // asked of it need (measured on 1M records, 431,000 rows: 1.5 s with no index, +0.5 s
        // per index, +1.15 s for a foreign key's per-row check): one nation as reporter or as
        // partner (mirror trade, either side). A year across all nations, an HS prefix and
        // purge's delete by batch read the table whole; it is a fraction of the records. No
        // foreign key to `batches`: only the load's own transaction writes a batch's rows,
        // after the batch row, and purge deletes them with the batch (`purge::BATCH_TABLES`,
        // checked against the schema by a test).
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE {TABLE} (\
                 batch_id BIGINT NOT NULL, \
                 provider_country VARCHAR NOT NULL, \
                 reporting_country VARCHAR NOT NULL, \
                 partner_country VARCHAR NULL, \
                 direction VARCHAR NOT NULL, \
                 hs_code VARCHAR NOT NULL, \
                 declaration_date DATE NOT NULL, \
                 declared_value_usd DOUBLE PRECISION NOT NULL, \
                 quantity DOUBLE PRECISION NULL, \
                 min_unit VARCHAR NULL, \
                 max_unit VARCHAR NULL, \
                 net_weight_kg DOUBLE PRECISION NULL, \
                 record_count BIGINT NOT NULL); \
                 CREATE INDEX ix_hs6_years_reporting ON {TABLE} (reporting_country, declaration_date); \
                 CREATE INDEX ix_hs6_years_partner ON {TABLE} (partner_country, declaration_date); \
                 {}",
                fill(manager.get_database_backend(), false)
            ))
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TABLE).to_owned())
            .await
    }
}
