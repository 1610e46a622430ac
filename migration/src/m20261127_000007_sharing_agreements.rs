//! Sharing agreements: an administrator grants one partner nation rows another nation
//! provided (optionally only with a given trade partner or HS chapter, and for a period).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sharing_agreements")
                    .col(big_pk_auto("id"))
                    .col(string("grantee_nation"))
                    .col(string("provider_country"))
                    .col(string_null("partner_country"))
                    .col(string_null("hs_prefix"))
                    .col(date("valid_from"))
                    .col(date_null("valid_to"))
                    .col(text("reason"))
                    .col(string("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .col(string_null("revoked_by"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_agreements_grantee")
                    .table("sharing_agreements")
                    .col("grantee_nation")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sharing_agreements").to_owned())
            .await
    }
}
