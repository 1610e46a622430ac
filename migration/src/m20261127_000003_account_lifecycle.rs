//! Access requests and reviews: who asked, who vouched (the supervisor), who granted (an
//! admin), and when the account was last reviewed (DESIGN §6).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: &[&str] = &[
    "supervisor",
    "justification",
    "supervisor_approved_by",
    "supervisor_approved_at",
    "admin_approved_by",
    "admin_approved_at",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE statement.
        for column in [
            string_null("supervisor"),
            text_null("justification"),
            string_null("supervisor_approved_by"),
            timestamp_with_time_zone_null("supervisor_approved_at"),
            string_null("admin_approved_by"),
            timestamp_with_time_zone_null("admin_approved_at"),
        ] {
            manager
                .alter_table(Table::alter().table("users").add_column(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS.iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table("users")
                        .drop_column(*column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
