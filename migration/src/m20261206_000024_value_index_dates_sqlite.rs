//! The declaration date in the trade origin-by-value and partner-by-value indexes on SQLite,
//! as migration 000021 put it in PostgreSQL's.
//!
//! A country with a date range ("origin CN in 2024") or a country in date order is an
//! analyst's everyday page. SQLite found the country's rows through its by-value index and
//! then read each row from the table to test its date: on the embedded default with 1M rows,
//! origin CN in 2024 by id took 0.54–0.69 s a page and origin CN by date 0.50–0.66 s (the
//! 19,416 records of CN read one by one). SQLite has no `INCLUDE`; as a last key column the date
//! serves the same filters from the index alone (25–54 and 27 ms through HTTP; `EXPLAIN QUERY
//! PLAN`: covering index), and the value order, query 1, still reads the index's first entries
//! (4 ms a request). Both indexes are rebuilt, about 4 s on 1M rows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use super::m20261205_000021_value_index_dates::INDEXES;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::rebuild_trade_indexes_on(
            manager,
            DatabaseBackend::Sqlite,
            INDEXES,
            ", declaration_date",
            "",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::rebuild_trade_indexes_on(manager, DatabaseBackend::Sqlite, INDEXES, "", "").await
    }
}
