//! Passwords for the foreign partners' sign-in (DESIGN §6: client certificate **and** user id +
//! password). The hash is an argon2id PHC string (salt and parameters inside it); accounts
//! without one cannot sign in with a password. `failed_logins` counts consecutive failures and
//! locks the account at `DARTTS_LOGIN_MAX_FAILURES`; a successful sign-in resets it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: &[&str] = &["password_hash", "failed_logins", "last_failed_login_at"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE statement; the default lets it add a NOT NULL
        // column to a table that already has rows.
        for column in [
            text_null("password_hash"),
            integer("failed_logins").default(0).to_owned(),
            timestamp_with_time_zone_null("last_failed_login_at"),
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
