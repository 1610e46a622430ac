//! The line of its delivered file each keyed row came from (`source_line`), on both backends.
//!
//! A load rejects the rows that repeat a key (`dartts::ingest::repeats`) after it has written
//! them, with the line each one was read from. Stored with the row, the database can name that
//! line, so the loader no longer keeps every row's key and line in memory (which grew with
//! the file). Rows loaded before this migration have none; only new rows are ever rejected.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 3] = ["trade_records", "financial_transactions", "subject_records"];

const COLUMN: &str = "source_line";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Nullable without a default: PostgreSQL changes the catalog only, whatever the rows.
        for table in TABLES {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(big_integer_null(COLUMN))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            manager
                .alter_table(Table::alter().table(table).drop_column(COLUMN).to_owned())
                .await?;
        }
        Ok(())
    }
}
