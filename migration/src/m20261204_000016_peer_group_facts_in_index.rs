//! The per-record facts and the id in the peer-group index (PostgreSQL), so that one HS code's
//! price anomalies are found from the index alone.
//!
//! `priceAnomalies` joins a code's records with their peer profiles on (HS code, unit, year)
//! and compares each record's logarithm with the profile's fences; only the page's rows are
//! then read whole (`analysis::anomalies`, a deferred join). With the logarithms, the origin
//! (same-origin peers) and the id in the index, finding them is an index-only scan: at 10M
//! generated rows the busiest code's page read every one of that code's rows from the table.
//! SQLite keeps its plain index: the embedded default holds small data.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "ix_trade_peer_group";
const KEY: &str = "hs_code, quantity_unit, peer_year";

/// Rebuilds the index with `include` after its key, in one call (see migration 000013).
async fn rebuild(manager: &SchemaManager<'_>, include: &str) -> Result<(), DbErr> {
    super::on_postgres(
        manager,
        &format!("DROP INDEX {INDEX}; CREATE INDEX {INDEX} ON trade_records ({KEY}){include}"),
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(
            manager,
            " INCLUDE (log_unit_price, log_value_per_kg, country_of_origin, id)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, "").await
    }
}
