//! Indexes on the keys of FinCEN reports and TECS records, on both backends.
//!
//! A load rejects a row whose key an earlier batch holds (`dartts::ingest::repeats`), and asks
//! for every row of its batch whether another batch has its key. Before the load's statistics
//! exist the planner takes a new batch for one row and probes once per row; without an index
//! each probe read the whole table. Trade declarations have theirs already (migration 000022).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str, &str); 2] = [
    ("ix_financial_report", "financial_transactions", "report_id"),
    ("ix_subject_record", "subject_records", "record_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
