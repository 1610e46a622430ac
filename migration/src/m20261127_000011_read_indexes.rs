//! Trade indexes chosen from the analysts' query shapes instead of one per filter column.
//!
//! Every index is paid for on each loaded row, so each must serve a shape (ARCHITECTURE.md,
//! "Trade indexes", has the shapes and each index's measured ingest cost):
//! * `(country_of_origin, declared_value_usd DESC)`: one origin's top rows by value, the first
//!   page read straight off the index and a deep page sought by keyset cursor;
//! * `(hs_code, declaration_date)`: an HS prefix (a range on `hs_code`) with a date range, and
//!   its `totalCount` answered from the index alone;
//! * `(partner_country, declared_value_usd DESC)`: one partner's top rows, and the partner arm
//!   of a nation's row scope;
//! * `(declared_value_usd DESC)`: any other filter sorted by value (the index is walked in order
//!   and filtered, which stops after a page);
//! * the existing `(declaration_date)` B-tree (date ranges, sorted by date), `(importer_id)`
//!   (one importer), `(provider_country, declaration_date)` (a nation's row scope) and
//!   `(batch_id)` (a load's rows, purge).
//!
//! Dropped, because no filter-plus-sort shape uses them: single-column B-trees on `hs_code`
//! (`LIKE` cannot use it under a non-C collation; replaced by the composite),
//! `importer_name` and `manufacturer_id` (substring filters cannot use a B-tree; exact ids are
//! rare), the `(country_of_origin, declaration_date)`, `(country_of_export, declaration_date)`
//! and `(reporting_country, partner_country)` composites (superseded), and the BRIN index on
//! `declaration_date` (the B-tree on the same column serves every range it would).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, columns as `column` or `column DESC`) of the indexes this migration adds.
const ADDED: &[(&str, &[&str])] = &[
    (
        "ix_trade_origin_value",
        &["country_of_origin", "declared_value_usd DESC"],
    ),
    ("ix_trade_hs_date", &["hs_code", "declaration_date"]),
    (
        "ix_trade_partner_value",
        &["partner_country", "declared_value_usd DESC"],
    ),
    ("ix_trade_value", &["declared_value_usd DESC"]),
];

/// (name, columns) of the indexes this migration drops, for `down`.
const DROPPED: &[(&str, &[&str])] = &[
    ("ix_trade_hs_code", &["hs_code"]),
    ("ix_trade_importer_name", &["importer_name"]),
    ("ix_trade_manufacturer_id", &["manufacturer_id"]),
    (
        "ix_trade_origin",
        &["country_of_origin", "declaration_date"],
    ),
    (
        "ix_trade_export",
        &["country_of_export", "declaration_date"],
    ),
    (
        "ix_trade_partner",
        &["reporting_country", "partner_country"],
    ),
];

const BRIN: &str = "ix_trade_date_brin";

fn create(name: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table("trade_records");
    for column in columns {
        match column.strip_suffix(" DESC") {
            Some(c) => index.col((Alias::new(c), IndexOrder::Desc)),
            None => index.col(Alias::new(*column)),
        };
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in DROPPED {
            manager
                .drop_index(Index::drop().name(*name).table("trade_records").to_owned())
                .await?;
        }
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {BRIN}"))
                .await?;
        }
        for (name, columns) in ADDED {
            manager.create_index(create(name, columns)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in ADDED {
            manager
                .drop_index(Index::drop().name(*name).table("trade_records").to_owned())
                .await?;
        }
        for (name, columns) in DROPPED {
            manager.create_index(create(name, columns)).await?;
        }
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "CREATE INDEX {BRIN} ON trade_records USING brin (declaration_date)"
                ))
                .await?;
        }
        Ok(())
    }
}
