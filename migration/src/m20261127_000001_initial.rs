//! Initial schema: batches and their rejections, trade, financial, subject and SDN tables.
//!
//! Why trade records are not (yet) partitioned on PostgreSQL: a partitioned table's primary key
//! must include the partition key, so `id` alone could no longer be the key that global GraphQL
//! ids, `batch_rejections` and later link tables point at, and every new year would need a
//! partition created before its rows arrive (a load must never fail for want of one). At the
//! volumes loaded today a plain table with a BRIN index on `declaration_date` (tiny, and
//! effective because loads arrive roughly in date order) plus B-tree indexes on the filter
//! columns serves the query paths. Moving to `PARTITION BY RANGE (declaration_date)` with a
//! composite key is a later migration once volumes call for it (DESIGN §7, "Scale").

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Indexes as (table, name, columns). Names are explicit so `down` and operators can find them.
const INDEXES: &[(&str, &str, &[&str])] = &[
    (
        "batches",
        "ux_batches_dataset_sha256",
        &["dataset", "sha256"],
    ),
    (
        "batch_rejections",
        "ix_batch_rejections_batch",
        &["batch_id", "line_number"],
    ),
    ("trade_records", "ix_trade_batch", &["batch_id"]),
    ("trade_records", "ix_trade_date", &["declaration_date"]),
    ("trade_records", "ix_trade_hs_code", &["hs_code"]),
    ("trade_records", "ix_trade_importer_id", &["importer_id"]),
    (
        "trade_records",
        "ix_trade_importer_name",
        &["importer_name"],
    ),
    (
        "trade_records",
        "ix_trade_manufacturer_id",
        &["manufacturer_id"],
    ),
    (
        "trade_records",
        "ix_trade_origin",
        &["country_of_origin", "declaration_date"],
    ),
    (
        "trade_records",
        "ix_trade_export",
        &["country_of_export", "declaration_date"],
    ),
    (
        "trade_records",
        "ix_trade_partner",
        &["reporting_country", "partner_country"],
    ),
    (
        "trade_records",
        "ix_trade_provider",
        &["provider_country", "declaration_date"],
    ),
    ("financial_transactions", "ix_fin_batch", &["batch_id"]),
    (
        "financial_transactions",
        "ix_fin_date",
        &["transaction_date"],
    ),
    (
        "financial_transactions",
        "ix_fin_subject_name",
        &["subject_name"],
    ),
    (
        "financial_transactions",
        "ix_fin_subject_tin",
        &["subject_tin"],
    ),
    (
        "financial_transactions",
        "ix_fin_account",
        &["account_number"],
    ),
    ("subject_records", "ix_subject_batch", &["batch_id"]),
    ("subject_records", "ix_subject_name", &["name"]),
    (
        "subject_records",
        "ix_subject_business_name",
        &["business_name"],
    ),
    ("sdn_entries", "ux_sdn_batch_ent", &["batch_id", "ent_num"]),
    ("sdn_entries", "ix_sdn_name", &["name"]),
    (
        "sdn_aliases",
        "ix_sdn_alias_entry",
        &["batch_id", "ent_num"],
    ),
    (
        "sdn_addresses",
        "ix_sdn_address_entry",
        &["batch_id", "ent_num"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for (table, name, columns) in INDEXES {
            let mut index = Index::create();
            index.name(*name).table(*table);
            for column in *columns {
                index.col(*column);
            }
            if name.starts_with("ux_") {
                index.unique();
            }
            manager.create_index(index).await?;
        }
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE INDEX ix_trade_date_brin ON trade_records USING brin (declaration_date)",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping a table drops its indexes on both backends.
        for table in tables().iter().rev() {
            if let Some(name) = table.get_table_name() {
                manager
                    .drop_table(Table::drop().table(name.clone()).to_owned())
                    .await?;
            }
        }
        Ok(())
    }
}

fn tables() -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table("batches")
            .col(big_pk_auto("id"))
            .col(string("dataset"))
            .col(string("file_name"))
            .col(string("sha256"))
            .col(big_integer("accepted_rows"))
            .col(big_integer("rejected_rows"))
            .col(date("as_of"))
            .col(string_null("provider_country"))
            .col(string_null("profile"))
            .col(string("loaded_by"))
            .col(timestamp_with_time_zone("loaded_at"))
            .col(string("raw_path"))
            .to_owned(),
        Table::create()
            .table("batch_rejections")
            .col(big_pk_auto("id"))
            .col(big_integer("batch_id"))
            .col(string("file_name"))
            .col(big_integer("line_number"))
            .col(text("reason"))
            .foreign_key(&mut batch_fk("batch_rejections"))
            .to_owned(),
        Table::create()
            .table("trade_records")
            .col(big_pk_auto("id"))
            .col(big_integer("batch_id"))
            .col(string("provider_country"))
            .col(string("declaration_id"))
            .col(integer("line_number"))
            .col(date("declaration_date"))
            .col(string("direction"))
            .col(string("hs_code"))
            .col(text_null("commodity_description"))
            .col(string_null("importer_name"))
            .col(string_null("importer_id"))
            .col(text_null("importer_address"))
            .col(string_null("exporter_name"))
            .col(string_null("manufacturer_name"))
            .col(string_null("manufacturer_id"))
            .col(string_null("country_of_origin"))
            .col(string_null("country_of_export"))
            .col(string_null("country_of_destination"))
            .col(string("reporting_country"))
            .col(string_null("partner_country"))
            .col(string_null("port"))
            .col(string_null("transport_mode"))
            .col(double_null("quantity"))
            .col(string_null("quantity_unit"))
            .col(double_null("net_weight_kg"))
            .col(double("declared_value"))
            .col(string("declared_currency"))
            .col(double("declared_value_usd"))
            .foreign_key(&mut batch_fk("trade_records"))
            .to_owned(),
        Table::create()
            .table("financial_transactions")
            .col(big_pk_auto("id"))
            .col(big_integer("batch_id"))
            .col(string("report_id"))
            .col(string("report_type"))
            .col(date("transaction_date"))
            .col(double("amount_usd"))
            .col(string_null("cash_direction"))
            .col(string_null("filer_institution"))
            .col(string("subject_name"))
            .col(string_null("subject_tin"))
            .col(date_null("subject_dob"))
            .col(text_null("subject_address"))
            .col(string_null("subject_id_number"))
            .col(string_null("account_number"))
            .col(string_null("counterparty_name"))
            .col(string_null("counterparty_account"))
            .foreign_key(&mut batch_fk("financial_transactions"))
            .to_owned(),
        Table::create()
            .table("subject_records")
            .col(big_pk_auto("id"))
            .col(big_integer("batch_id"))
            .col(string("record_id"))
            .col(string("kind"))
            .col(string("creating_agency"))
            .col(string("case_status"))
            .col(date_null("created_date"))
            .col(string_null("name"))
            .col(string_null("business_name"))
            .col(text_null("address"))
            .col(date_null("date_of_birth"))
            .col(string_null("ssn_tin"))
            .col(string_null("passport_number"))
            .col(string_null("passport_country"))
            .col(text_null("bank_accounts"))
            .col(text_null("phones"))
            .col(string_null("drivers_license"))
            .col(string_null("drivers_license_state"))
            .col(string_null("a_number"))
            .col(string_null("plate"))
            .col(string_null("vessel_name"))
            .col(string_null("aircraft_tail_number"))
            .col(text_null("description"))
            .foreign_key(&mut batch_fk("subject_records"))
            .to_owned(),
        Table::create()
            .table("sdn_entries")
            .col(big_pk_auto("id"))
            .col(big_integer("batch_id"))
            .col(big_integer("ent_num"))
            .col(text("name"))
            .col(string("sdn_type"))
            .col(text("programs"))
            .col(text_null("title"))
            .col(string_null("call_sign"))
            .col(string_null("vessel_type"))
            .col(string_null("tonnage"))
            .col(string_null("grt"))
            .col(string_null("vessel_flag"))
            .col(text_null("vessel_owner"))
            .col(text_null("remarks"))
            .col(text_null("date_of_birth"))
            .col(text_null("place_of_birth"))
            .col(text_null("nationality"))
            .col(text_null("citizenship"))
            .col(text_null("passports"))
            .col(text_null("id_numbers"))
            .col(string_null("gender"))
            .foreign_key(&mut batch_fk("sdn_entries"))
            .to_owned(),
        Table::create()
            .table("sdn_aliases")
            .col(big_pk_auto("id"))
            .col(big_integer("batch_id"))
            .col(big_integer("ent_num"))
            .col(big_integer("alt_num"))
            .col(string("alt_type"))
            .col(text("name"))
            .col(text_null("remarks"))
            .foreign_key(&mut batch_fk("sdn_aliases"))
            .to_owned(),
        Table::create()
            .table("sdn_addresses")
            .col(big_pk_auto("id"))
            .col(big_integer("batch_id"))
            .col(big_integer("ent_num"))
            .col(big_integer("add_num"))
            .col(text_null("address"))
            .col(text_null("city"))
            .col(string_null("country"))
            .col(text_null("remarks"))
            .foreign_key(&mut batch_fk("sdn_addresses"))
            .to_owned(),
    ]
}

fn batch_fk(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_batch"))
        .from(table, "batch_id")
        .to("batches", "id")
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}
