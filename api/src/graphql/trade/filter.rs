//! `TradeRecordFilter`: what `tradeRecords`, the exports and the analyses over trade records
//! filter by, as one condition (`RecordFilter`), and the importers a name or FinCEN link narrows
//! it to.

use async_graphql::{ID, InputObject};
use entities::trade_record::Column;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbBackend};

use super::Direction;
use crate::analysis::red_flags;
use crate::analysis::rollup::{self, Importers};
use crate::error::{ApiError, ApiResult};
use crate::graphql::filters::{
    RecordFilter, check_text, contains, countries, digit_prefix, read_if_set,
};
use crate::graphql::financial;
use crate::graphql::ids::{self, NodeType};
use crate::graphql::scalars::Date;

/// Every condition given must hold. List arguments match any of their values.
#[derive(InputObject, Default)]
pub struct TradeRecordFilter {
    pub declaration_date_from: Option<Date>,
    pub declaration_date_to: Option<Date>,
    /// HS code starts with these digits (2, 4, 6, … digits).
    pub hs_code_prefix: Option<String>,
    pub direction: Option<Direction>,
    pub declaration_id: Option<String>,
    pub country_of_origin: Option<Vec<String>>,
    pub country_of_export: Option<Vec<String>>,
    pub country_of_destination: Option<Vec<String>>,
    pub reporting_country: Option<Vec<String>>,
    pub partner_country: Option<Vec<String>>,
    pub provider_country: Option<Vec<String>>,
    /// Substring (any letter in either case) of the importer's name.
    pub importer_name_contains: Option<String>,
    pub importer_id: Option<String>,
    pub exporter_name_contains: Option<String>,
    pub manufacturer_name_contains: Option<String>,
    pub manufacturer_id: Option<String>,
    pub port: Option<String>,
    pub transport_mode: Option<String>,
    pub declared_value_usd_min: Option<f64>,
    pub declared_value_usd_max: Option<f64>,
    pub batch_id: Option<ID>,
    /// Only records whose importer does (true) or does not (false) appear as the subject of a
    /// FinCEN report. A FINANCIAL predicate: refused to roles that may not read financial data.
    pub linked_financial_activity: Option<bool>,
    /// The importers `importer_name_contains` can match, when `narrow` found few enough.
    #[graphql(skip)]
    pub named_importers: Option<Importers>,
    /// Every importer FinCEN reports name, when `narrow` found few enough: then exactly the
    /// records `linked_financial_activity: true` asks for.
    #[graphql(skip)]
    pub reported_importers: Option<Importers>,
}

impl TradeRecordFilter {
    /// The importers the filtered records are among, when `narrow` found few enough.
    pub fn importers(&self) -> Option<Importers> {
        match (&self.named_importers, &self.reported_importers) {
            (Some(named), Some(reported)) => Some(named.clone().and(reported)),
            (named, reported) => named.as_ref().or(reported.as_ref()).cloned(),
        }
    }
}

/// Most importers `narrow` reads a filter's records by. PostgreSQL weighs the lists against a
/// read of the table with its statistics, and past 5,000 importers they match so much of the
/// table that the read wins anyway. SQLite, without statistics, always takes the lists, which
/// past a few hundred importers cost more than the read they replace (a name on 1M rows,
/// 1,800–4,200 pairs: +0.3–0.5 s a page with `totalCount`).
fn importers_at_most(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Sqlite => 300,
        _ => 5_000,
    }
}

/// Most importers `narrow` lists for `linked_financial_activity: true`. Each listed importer
/// costs PostgreSQL's planner about 9 µs per statement (it estimates every list member; a page
/// in the default order is planned twice, `keyset::id_walk`), and the linked records are
/// usually dense enough that a page met them at once by walking the ids: with 1,800 reported
/// importers (34,459 of 1M records) a page went from 7 to 47 ms while its count and the
/// analyses gained 50–400 ms. Up to 1,000, a page pays at most ~18 ms of planning against
/// ~200 ms of reading saved by every statement that reads all the matches. SQLite: as names.
fn reported_importers_at_most(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Sqlite => importers_at_most(backend),
        _ => 1_000,
    }
}

impl RecordFilter for TradeRecordFilter {
    const RECORD: &'static str = "TradeRecord";

    /// Finds the importers whose name matches `importer_name_contains` in the importer rollup
    /// (`rollup::importers_named`), and those FinCEN reports name for `linked_financial_activity:
    /// true` (`financial::reported_importers`), so that `condition` reads their records by
    /// index: the substring, or the reports' subqueries, alone are a read of every record (on
    /// 1M rows ~200–450 ms), which a search runs in each of its statements. The records are
    /// the same with or without it: `condition` keeps the substring, and the reports' importers
    /// are exactly the linked records' (the subqueries stay when there are too many to list).
    /// The subqueries are not kept beside the list: PostgreSQL, taking the two for independent,
    /// expects a few matches where there are thousands and finds a page's by sorting all of
    /// them (`keyset::id_walk`; 1,800 reported importers on 1M rows: a page took 75 ms with
    /// both, 47 ms with the list alone, 7 ms with the subqueries alone).
    async fn narrow(&mut self, db: &DatabaseConnection) -> ApiResult<()> {
        let backend = db.get_database_backend();
        if let Some(name) = &self.importer_name_contains {
            check_text("importerNameContains", name)?;
            self.named_importers = rollup::importers_named(
                db,
                contains(Column::ImporterName, name),
                importers_at_most(backend),
            )
            .await?;
        }
        if self.linked_financial_activity == Some(true) {
            self.reported_importers =
                financial::reported_importers(db, reported_importers_at_most(backend)).await?;
        }
        Ok(())
    }

    fn fields_read(&self) -> Vec<&'static str> {
        read_if_set(&[
            (
                self.declaration_date_from.is_some() || self.declaration_date_to.is_some(),
                "declarationDate",
            ),
            (self.hs_code_prefix.is_some(), "hsCode"),
            (self.direction.is_some(), "direction"),
            (self.declaration_id.is_some(), "declarationId"),
            (self.country_of_origin.is_some(), "countryOfOrigin"),
            (self.country_of_export.is_some(), "countryOfExport"),
            (
                self.country_of_destination.is_some(),
                "countryOfDestination",
            ),
            (self.reporting_country.is_some(), "reportingCountry"),
            (self.partner_country.is_some(), "partnerCountry"),
            (self.provider_country.is_some(), "providerCountry"),
            (self.importer_name_contains.is_some(), "importerName"),
            (self.importer_id.is_some(), "importerId"),
            (self.exporter_name_contains.is_some(), "exporterName"),
            (
                self.manufacturer_name_contains.is_some(),
                "manufacturerName",
            ),
            (self.manufacturer_id.is_some(), "manufacturerId"),
            (self.port.is_some(), "port"),
            (self.transport_mode.is_some(), "transportMode"),
            (
                self.declared_value_usd_min.is_some() || self.declared_value_usd_max.is_some(),
                "declaredValueUsd",
            ),
            (self.batch_id.is_some(), "batch"),
            (
                self.linked_financial_activity.is_some(),
                "linkedFinancialTransactions",
            ),
        ])
    }

    fn condition(&self) -> ApiResult<Condition> {
        let mut c = Condition::all();
        if let Some(d) = self.declaration_date_from {
            c = c.add(Column::DeclarationDate.gte(d.0));
        }
        if let Some(d) = self.declaration_date_to {
            c = c.add(Column::DeclarationDate.lte(d.0));
        }
        if let Some(prefix) = &self.hs_code_prefix {
            if prefix.is_empty() || prefix.len() > 10 || !prefix.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(ApiError::bad_input("hsCodePrefix must be 1 to 10 digits"));
            }
            c = c.add(digit_prefix(Column::HsCode, prefix));
        }
        if let Some(d) = self.direction {
            c = c.add(Column::Direction.eq(d.as_str()));
        }
        for (value, column, argument) in [
            (&self.declaration_id, Column::DeclarationId, "declarationId"),
            (&self.importer_id, Column::ImporterId, "importerId"),
            (
                &self.manufacturer_id,
                Column::ManufacturerId,
                "manufacturerId",
            ),
            (&self.port, Column::Port, "port"),
            (&self.transport_mode, Column::TransportMode, "transportMode"),
        ] {
            if let Some(v) = value {
                check_text(argument, v)?;
                c = c.add(column.eq(v.as_str()));
            }
        }
        for (value, column, argument) in [
            (
                &self.importer_name_contains,
                Column::ImporterName,
                "importerNameContains",
            ),
            (
                &self.exporter_name_contains,
                Column::ExporterName,
                "exporterNameContains",
            ),
            (
                &self.manufacturer_name_contains,
                Column::ManufacturerName,
                "manufacturerNameContains",
            ),
        ] {
            if let Some(v) = value {
                check_text(argument, v)?;
                c = c.add(contains(column, v));
            }
        }
        if let Some(importers) = self.importers() {
            c = c.add(red_flags::importers_by(
                importers.ids,
                importers.names_without_id,
            ));
        }
        for (column, values, argument) in [
            (
                Column::CountryOfOrigin,
                &self.country_of_origin,
                "countryOfOrigin",
            ),
            (
                Column::CountryOfExport,
                &self.country_of_export,
                "countryOfExport",
            ),
            (
                Column::CountryOfDestination,
                &self.country_of_destination,
                "countryOfDestination",
            ),
            (
                Column::ReportingCountry,
                &self.reporting_country,
                "reportingCountry",
            ),
            (
                Column::PartnerCountry,
                &self.partner_country,
                "partnerCountry",
            ),
            (
                Column::ProviderCountry,
                &self.provider_country,
                "providerCountry",
            ),
        ] {
            c = countries(c, column, values.as_ref(), argument)?;
        }
        for (value, argument) in [
            (self.declared_value_usd_min, "declaredValueUsdMin"),
            (self.declared_value_usd_max, "declaredValueUsdMax"),
        ] {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(ApiError::bad_input(format!(
                    "{argument} must be a finite number"
                )));
            }
        }
        if let Some(v) = self.declared_value_usd_min {
            c = c.add(Column::DeclaredValueUsd.gte(v));
        }
        if let Some(v) = self.declared_value_usd_max {
            c = c.add(Column::DeclaredValueUsd.lte(v));
        }
        if let Some(id) = &self.batch_id {
            c = c.add(Column::BatchId.eq(ids::decode_as(id, NodeType::Batch)?));
        }
        match (self.linked_financial_activity, &self.reported_importers) {
            // `importers()` above lists them.
            (Some(true), Some(_)) => {}
            (Some(true), None) => c = c.add(financial::subject_matches_importer()),
            (Some(false), _) => c = c.add(financial::subject_matches_importer().not()),
            (None, _) => {}
        }
        Ok(c)
    }
}
