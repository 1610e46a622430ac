//! `trade_importer_years`: a rollup of `trade_records` per batch, provider, reporting country,
//! direction, declaration year and importer (issue 8). Totals by importer over whole years are
//! the question analysts ask most and the widest `GROUP BY` the row store answers (a year of
//! 1M rows: 250,000 rows read and hashed per request); this table holds about one row per
//! importer, year and batch — 152,000 for those 1M generated rows — so the same totals read a
//! sixth of the rows, already summed.
//!
//! Rows are kept per batch so that a load appends its own rows (`fill` for one batch, in the
//! load's transaction) and a purge deletes them with the batch's other rows. The year is kept
//! in `declaration_date` as its first day, under the column name of `trade_records`, so that a
//! filter or scope condition written for `trade_records` applies to this table unchanged when
//! it reads only columns kept here (`analysis::rollup` decides when that is so).
//!
//! Quantities follow the totals' rule (summed only over one unit): `quantity` sums the
//! quantities that carry a unit, and `min_unit`/`max_unit` say whether all of them carry the
//! same one, so groups of rollup rows combine exactly as groups of records do.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub const TABLE: &str = "trade_importer_years";

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
        "INSERT INTO {TABLE} (batch_id, provider_country, reporting_country, direction, \
         declaration_date, importer_id, importer_name, declared_value_usd, quantity, min_unit, \
         max_unit, net_weight_kg, record_count) \
         SELECT batch_id, provider_country, reporting_country, direction, {year}, importer_id, \
         importer_name, SUM(declared_value_usd), \
         SUM(CASE WHEN quantity_unit IS NOT NULL THEN quantity END), MIN(quantity_unit), \
         MAX(quantity_unit), SUM(net_weight_kg), COUNT(*) \
         FROM trade_records {filter} \
         GROUP BY batch_id, provider_country, reporting_country, direction, {year}, importer_id, \
         importer_name"
    )
}

/// On PostgreSQL the date index carries the sums, so a year's totals are an index-only scan
/// (about a fifth less time than reading the rows); SQLite has no `INCLUDE`.
fn covering(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            " INCLUDE (declared_value_usd, quantity, min_unit, max_unit, net_weight_kg, \
             record_count)"
        }
        _ => "",
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One call: two calls may run on two pooled SQLite connections, and the second may
        // still read the schema from before the first (see migration 000013).
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE {TABLE} (\
                 batch_id BIGINT NOT NULL REFERENCES batches (id) ON DELETE RESTRICT, \
                 provider_country VARCHAR NOT NULL, \
                 reporting_country VARCHAR NOT NULL, \
                 direction VARCHAR NOT NULL, \
                 declaration_date DATE NOT NULL, \
                 importer_id VARCHAR NULL, \
                 importer_name VARCHAR NULL, \
                 declared_value_usd DOUBLE PRECISION NOT NULL, \
                 quantity DOUBLE PRECISION NULL, \
                 min_unit VARCHAR NULL, \
                 max_unit VARCHAR NULL, \
                 net_weight_kg DOUBLE PRECISION NULL, \
                 record_count BIGINT NOT NULL); \
                 CREATE INDEX ix_importer_years_date ON {TABLE} (declaration_date, importer_id){}; \
                 CREATE INDEX ix_importer_years_batch ON {TABLE} (batch_id); \
                 {}",
                covering(manager.get_database_backend()),
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
