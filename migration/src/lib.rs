//! Schema migrations. The same migration runs on SQLite (embedded default) and PostgreSQL
//! (production); backend-specific SQL is confined to clearly marked branches.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

mod m20261127_000001_initial;
mod m20261127_000002_users;
mod m20261127_000003_account_lifecycle;
mod m20261127_000004_audit;
mod m20261127_000005_passwords;
mod m20261127_000006_quota_reset;
mod m20261127_000007_sharing_agreements;
mod m20261127_000008_audit_privileges;
mod m20261127_000009_purge;
mod m20261127_000011_read_indexes;
mod m20261129_000010_keyed_audit;
mod m20261129_000012_peer_profiles;
mod m20261204_000013_profile_key_by_hs_code;
mod m20261204_000014_importer_years;
mod m20261204_000015_page_ids_in_indexes;
mod m20261204_000016_peer_group_facts_in_index;
mod m20261204_000017_hs6_years;
mod m20261204_000018_batch_check_per_statement;
mod m20261204_000019_byte_order_text;
mod m20261205_000020_date_index_ids;
mod m20261205_000021_value_index_dates;
mod m20261205_000022_declaration_index;
mod m20261206_000023_importer_name_index;
mod m20261206_000024_value_index_dates_sqlite;
mod m20261207_000025_audit_file_sqlite;
mod m20261207_000026_key_indexes;
mod m20261207_000027_source_lines;

pub use m20261204_000014_importer_years::{TABLE as IMPORTER_YEARS, fill as fill_importer_years};
pub use m20261204_000017_hs6_years::{TABLE as HS6_YEARS, fill as fill_hs6_years};
pub use m20261207_000025_audit_file_sqlite::AUDIT_SCHEMA;

/// Runs `sql` on PostgreSQL only, for what SQLite does not have or does not need.
async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    only_on(manager, DatabaseBackend::Postgres, sql).await
}

/// Runs `sql` (one call, however many statements: two calls may run on two pooled connections,
/// see migration 000013) on `backend` only.
async fn only_on(
    manager: &SchemaManager<'_>,
    backend: DatabaseBackend,
    sql: &str,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != backend {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(sql)
        .await
        .map(|_| ())
}

/// Rebuilds each `(name, key columns)` index of `trade_records` with `include` after its key
/// (`" INCLUDE (id)"`, `""`, …), on PostgreSQL: SQLite indexes hold the rowid anyway.
async fn rebuild_trade_indexes(
    manager: &SchemaManager<'_>,
    indexes: &[(&str, &str)],
    include: &str,
) -> Result<(), DbErr> {
    rebuild_trade_indexes_on(manager, DatabaseBackend::Postgres, indexes, "", include).await
}

/// Rebuilds each `(name, key columns)` index of `trade_records` on `backend` only, with
/// `key_end` appended to its key columns and `include` after them, in one `only_on` call.
async fn rebuild_trade_indexes_on(
    manager: &SchemaManager<'_>,
    backend: DatabaseBackend,
    indexes: &[(&str, &str)],
    key_end: &str,
    include: &str,
) -> Result<(), DbErr> {
    let sql: String = indexes
        .iter()
        .map(|(name, key)| {
            format!(
                "DROP INDEX {name}; CREATE INDEX {name} ON trade_records ({key}{key_end}){include}; "
            )
        })
        .collect();
    only_on(manager, backend, &sql).await
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_initial::Migration),
            Box::new(m20261127_000002_users::Migration),
            Box::new(m20261127_000003_account_lifecycle::Migration),
            Box::new(m20261127_000004_audit::Migration),
            Box::new(m20261127_000005_passwords::Migration),
            Box::new(m20261127_000006_quota_reset::Migration),
            Box::new(m20261127_000007_sharing_agreements::Migration),
            Box::new(m20261127_000008_audit_privileges::Migration),
            Box::new(m20261127_000009_purge::Migration),
            Box::new(m20261129_000010_keyed_audit::Migration),
            Box::new(m20261127_000011_read_indexes::Migration),
            Box::new(m20261129_000012_peer_profiles::Migration),
            Box::new(m20261204_000013_profile_key_by_hs_code::Migration),
            Box::new(m20261204_000014_importer_years::Migration),
            Box::new(m20261204_000015_page_ids_in_indexes::Migration),
            Box::new(m20261204_000016_peer_group_facts_in_index::Migration),
            Box::new(m20261204_000017_hs6_years::Migration),
            Box::new(m20261204_000018_batch_check_per_statement::Migration),
            Box::new(m20261204_000019_byte_order_text::Migration),
            Box::new(m20261205_000020_date_index_ids::Migration),
            Box::new(m20261205_000021_value_index_dates::Migration),
            Box::new(m20261205_000022_declaration_index::Migration),
            Box::new(m20261206_000023_importer_name_index::Migration),
            Box::new(m20261206_000024_value_index_dates_sqlite::Migration),
            Box::new(m20261207_000025_audit_file_sqlite::Migration),
            Box::new(m20261207_000026_key_indexes::Migration),
            Box::new(m20261207_000027_source_lines::Migration),
        ]
    }
}
