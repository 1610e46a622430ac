//! Retention purge (DESIGN §3): a purged batch keeps its `batches` row, marked with when it was
//! purged, so the provenance of a load (file, digest, counts, who loaded it and when) outlives
//! its data; `dartts purge` deletes the rows, rejections and raw files.
//!
//! The "same file loaded twice is a no-op" rule only holds among batches that still have data:
//! the unique index on `(dataset, sha256)` becomes partial (`WHERE purged_at IS NULL`, the
//! same syntax on SQLite and PostgreSQL), so a file whose first load was purged can be loaded
//! again as a new batch instead of being reported "already loaded" with nothing behind it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const FULL_INDEX: &str = "ux_batches_dataset_sha256";
const LIVE_INDEX: &str = "ux_batches_dataset_sha256_live";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("batches")
                    .add_column(timestamp_with_time_zone_null("purged_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(FULL_INDEX).table("batches").to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(LIVE_INDEX)
                    .table("batches")
                    .col("dataset")
                    .col("sha256")
                    .unique()
                    .cond_where(Expr::col("purged_at").is_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(LIVE_INDEX).table("batches").to_owned())
            .await?;
        // Fails if a purged file was loaded again (two rows with one digest): going back would
        // have to drop one of them, which a migration must not decide.
        manager
            .create_index(
                Index::create()
                    .name(FULL_INDEX)
                    .table("batches")
                    .col("dataset")
                    .col("sha256")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("batches")
                    .drop_column("purged_at")
                    .to_owned(),
            )
            .await
    }
}
