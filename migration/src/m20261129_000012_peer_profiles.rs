//! Price analysis (issue 8): per-record facts the peer statistics are computed over, and the
//! materialized peer profiles.
//!
//! Peer statistics cannot be recomputed per query over the whole table (`percentile_cont`
//! over 1M rows took 3.9 s), so each load writes, with its rows, the natural logarithm of the
//! unit price and of the value per kg and the year (computed in Rust at ingest: SQLite has no
//! `ln`), and then recomputes the profiles of the peer groups it touched. A query compares a
//! record's logarithm with its group's bounds with plain arithmetic, which both engines index
//! and evaluate the same way.
//!
//! Rows loaded before this migration have no facts (NULL) and are not analysed until they are
//! loaded again; the columns are nullable so adding them is instant on PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const FACT_COLUMNS: &[&str] = &["peer_year", "log_unit_price", "log_value_per_kg"];
const PROFILE_KEY: &str = "ux_peer_profiles_key";
const FACT_INDEX: &str = "ix_trade_peer_group";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("trade_records")
                    .add_column(integer_null("peer_year"))
                    .to_owned(),
            )
            .await?;
        for column in &FACT_COLUMNS[1..] {
            manager
                .alter_table(
                    Table::alter()
                        .table("trade_records")
                        .add_column(double_null(*column))
                        .to_owned(),
                )
                .await?;
        }
        // The peer group of a record, in the order the anomaly query joins on it.
        manager
            .create_index(
                Index::create()
                    .name(FACT_INDEX)
                    .table("trade_records")
                    .col("hs_code")
                    .col("quantity_unit")
                    .col("peer_year")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("peer_profiles")
                    .col(big_pk_auto("id"))
                    // UNIT_PRICE (log USD per quantity unit) or VALUE_PER_KG (log USD per kg).
                    .col(string_len("measure", 16))
                    .col(string_len("hs_code", 10))
                    // The quantity unit for UNIT_PRICE; empty for VALUE_PER_KG.
                    .col(string_len("quantity_unit", 16))
                    .col(integer("year"))
                    // Empty: every origin; else the peers of one country of origin.
                    .col(string_len("origin", 2))
                    .col(big_integer("peer_count"))
                    .col(double("median"))
                    .col(double("q1"))
                    .col(double("q3"))
                    .col(double("mad"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PROFILE_KEY)
                    .table("peer_profiles")
                    .col("measure")
                    .col("hs_code")
                    .col("quantity_unit")
                    .col("year")
                    .col("origin")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("peer_profiles").to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(FACT_INDEX)
                    .table("trade_records")
                    .to_owned(),
            )
            .await?;
        for column in FACT_COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("trade_records")
                        .drop_column(*column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
