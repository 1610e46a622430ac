//! The audit log: append-only, hash-chained (DESIGN §6).
//!
//! `audit_events` rows are never updated or deleted (a trigger refuses it on both backends);
//! each row's `hash` covers its content and the previous row's hash, and `audit_head` holds the
//! last id and hash, so removing or editing any row — including the newest — is detected by
//! `dartts audit verify`. Appends serialize on the single `audit_head` row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_events")
                    // Assigned by the appender, not the database: the id is part of the hash.
                    .col(big_integer("id").primary_key())
                    .col(timestamp_with_time_zone("at"))
                    .col(string("instance"))
                    .col(string_null("source"))
                    .col(string_null("actor"))
                    .col(string("event_type"))
                    .col(string("outcome"))
                    .col(big_integer("records"))
                    .col(text("detail"))
                    .col(string("prev_hash"))
                    .col(string("hash"))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("ix_audit_actor_at", ["actor", "at"]),
            ("ix_audit_type_at", ["event_type", "at"]),
        ] {
            let mut index = Index::create();
            index.name(name).table("audit_events");
            for c in columns {
                index.col(c);
            }
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("audit_head")
                    .col(integer("id").primary_key())
                    .col(big_integer("last_id"))
                    .col(string("last_hash"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, '{GENESIS_HASH}')"
        ))
        .await?;
        let refuse = match manager.get_database_backend() {
            DatabaseBackend::Postgres => vec![
                "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$"
                    .to_owned(),
                "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit_events \
                 FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
                    .to_owned(),
            ],
            _ => ["UPDATE", "DELETE"]
                .iter()
                .map(|op| {
                    format!(
                        "CREATE TRIGGER audit_no_{op} BEFORE {op} ON audit_events \
                         BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
                        op = op
                    )
                })
                .collect(),
        };
        for sql in refuse {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_head").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("audit_events").to_owned())
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_append_only()")
                .await?;
        }
        Ok(())
    }
}
