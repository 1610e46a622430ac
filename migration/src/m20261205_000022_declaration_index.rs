//! An index on the trade declaration id, on both backends.
//!
//! A declaration id is how an analyst holds a case's record ("show me declaration X"), and the
//! `declarationId` filter is an exact match on it that selects one declaration's lines. With no
//! index it read the whole table: on 1M rows 96–119 ms a page (195–200 ms with `totalCount`) on
//! PostgreSQL, 176–400 ms on SQLite. Built after a first load it costs 0.67–0.73 s per million
//! rows (19 MB), against 17.9 s for the whole load (BENCHMARKS.md). The other exact-match
//! filter that selects few rows, `manufacturerId` (23 of 1M, ~110 ms), keeps the full read:
//! migration 000011 dropped its index for what it cost every load, and it stays a known limit.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "ix_trade_declaration";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table("trade_records")
                    .col("declaration_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table("trade_records").to_owned())
            .await
    }
}
