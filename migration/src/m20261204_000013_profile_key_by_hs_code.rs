//! The peer profiles' key led by `hs_code`: a load's profile refresh deletes and rewrites the
//! profiles of the HS codes it touched, and with `measure` first that delete read the whole
//! table once per round of codes (32 ms of 120 rounds for 200,000 generated rows). The anomaly
//! join compares every key column for equality, so the order does not matter to it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Replaces the key in one call. Two calls may run on two pooled SQLite connections, and the
/// second, still reading the schema from before the drop, then refused the create with "index
/// ux_peer_profiles_key already exists". The statements are plain SQL both engines take.
async fn key(manager: &SchemaManager<'_>, columns: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "DROP INDEX ux_peer_profiles_key; \
             CREATE UNIQUE INDEX ux_peer_profiles_key ON peer_profiles ({columns})"
        ))
        .await
        .map(|_| ())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        key(manager, "hs_code, measure, quantity_unit, year, origin").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        key(manager, "measure, hs_code, quantity_unit, year, origin").await
    }
}
