//! The audit log's protection on PostgreSQL, beyond the row trigger of the audit migration.
//!
//! * `TRUNCATE` fires no row trigger, so a statement trigger refuses it too.
//! * The role that runs the migrations gives up its own `UPDATE`, `DELETE` and `TRUNCATE` on
//!   `audit_events`. Deployments that run the API as this same role (the simple ones, and the
//!   tests) then cannot rewrite history without first granting themselves the right back, a
//!   deliberate act. Deployments with a separate application role grant it as
//!   `docs/operations.md` shows, which leaves these privileges out.
//!
//! SQLite has neither privileges nor `TRUNCATE`; its row triggers already cover `DELETE`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_events \
             FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
        )
        .await?;
        db.execute_unprepared(
            "REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC, CURRENT_USER",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("GRANT UPDATE, DELETE, TRUNCATE ON audit_events TO CURRENT_USER")
            .await?;
        db.execute_unprepared("DROP TRIGGER IF EXISTS audit_no_truncate ON audit_events")
            .await?;
        Ok(())
    }
}
