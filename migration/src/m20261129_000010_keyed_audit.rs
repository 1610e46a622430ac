//! The audit chain becomes keyed (HMAC-SHA-256 with a key the database never holds) from the
//! next event on. `audit_head.keyed_from` is the first id hashed with the key: the events
//! before it were written with plain SHA-256 and `dartts audit verify` checks them as such,
//! reporting how many there are. A signed checkpoint (`dartts audit checkpoint`) records the
//! value, so moving it later to pass keyed rows off as unkeyed ones is found.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT")
            .await?;
        db.execute_unprepared("UPDATE audit_head SET keyed_from = last_id + 1")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE audit_head DROP COLUMN keyed_from")
            .await?;
        Ok(())
    }
}
