//! Every text column compared and sorted in byte order (`COLLATE "C"`, PostgreSQL; issue 12).
//!
//! Text keys were compared under the database's collation, which on our servers is
//! `C.UTF-8`: an order by code point, i.e. the order of the UTF-8 bytes, reached through
//! `strcoll` for every comparison, and without the abbreviated keys PostgreSQL uses only for
//! `C`. The order is the same; the work is not. On a 1M-row first load, building the six
//! indexes with text keys took 6.3 s of the load's 24 s under `C.UTF-8`, and 30–45 % less
//! under `C`; inserting the peer profiles (a unique key of four text columns) and every sort
//! or index descent on a text key gain the same way.
//!
//! Under a linguistic collation (`en_US.UTF-8`, say) sorting by a name would now follow the
//! bytes instead; it is also SQLite's order (`BINARY`), so both engines now sort text alike,
//! which keyset cursors over a text sort key already assumed. Every text column of the
//! schema changes together because PostgreSQL refuses to compare two columns of different
//! collations (a join on `hs_code` across tables would fail). Only the indexes on those
//! columns are rebuilt: a change of collation alone does not rewrite the tables.
//! SQLite already compares bytes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Sets `collation` on every text column of the schema's tables but the migrator's own.
fn collate_all(collation: &str) -> String {
    format!(
        "DO $$ DECLARE c record; BEGIN \
           FOR c IN SELECT a.attrelid::regclass AS tbl, a.attname AS col, \
                      format_type(a.atttypid, a.atttypmod) AS typ \
               FROM pg_attribute a \
               JOIN pg_class r ON r.oid = a.attrelid \
               JOIN pg_namespace n ON n.oid = r.relnamespace \
              WHERE n.nspname = current_schema() AND r.relkind IN ('r', 'p') \
                AND r.relname <> 'seaql_migrations' \
                AND a.attnum > 0 AND NOT a.attisdropped \
                AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype) \
           LOOP \
             EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s COLLATE {collation}', \
                            c.tbl, c.col, c.typ); \
           END LOOP; \
         END $$"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::on_postgres(manager, &collate_all("\"C\"")).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::on_postgres(manager, &collate_all("\"default\"")).await
    }
}
