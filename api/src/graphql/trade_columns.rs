//! The columns a `tradeRecords` page reads: those its selection resolves, not the whole row.
//!
//! Why: decoding all 31 columns of each row into the entity model (by name: sea-orm formats
//! and hashes each column's name per row) was 14 % of DARTTS's CPU for a page of 50 records
//! with 10 fields (`perf`, BENCHMARKS.md), and PostgreSQL formats and sends every column it is
//! asked for. Here the page selects the columns its fields read and decodes them by position.
//!
//! The look-ahead sees every way a record's fields are asked for (`edges { node }` and `nodes`,
//! aliases, fragments, `@include`/`@skip` counted as included), so it can only ask for more
//! than resolves, never less. A selected field this module cannot place (one added to
//! `TradeRecord` after it) reads the whole row: an unknown field costs speed, never a wrong
//! value. What is not read keeps `TradeRecord::default()`, which nothing resolves.

use std::sync::LazyLock;

use async_graphql::Context;
use entities::trade_record::Column;
use heck::ToLowerCamelCase;
use rustc_hash::FxHashMap;
use sea_orm::{DbErr, IdenStatic, Iterable, QueryResult};

use super::scalars::Date;
use super::trade::{Direction, TradeRecord};

/// Fields that are not a column of their own name: what each one reads.
const COMPUTED: &[(&str, &[Column])] = &[
    // The id is always read.
    ("id", &[]),
    ("__typename", &[]),
    ("batch", &[Column::BatchId]),
    (
        "linkedFinancialTransactions",
        &[Column::ImporterId, Column::ImporterName],
    ),
    (
        "partyHits",
        &[
            Column::ImporterName,
            Column::ExporterName,
            Column::ManufacturerName,
        ],
    ),
];

/// Every column in the entity's order, and what each `TradeRecord` field reads, as bits in
/// that order. A field named after a column reads it: `net_weight_kg` is `netWeightKg`,
/// async-graphql's naming rule for the struct fields of the same names.
struct Catalog {
    columns: Vec<Column>,
    by_field: FxHashMap<String, u64>,
}

impl Catalog {
    fn bit(&self, column: Column) -> u64 {
        self.columns
            .iter()
            .position(|c| c.as_str() == column.as_str())
            .map_or(0, |i| 1 << i)
    }
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let mut catalog = Catalog {
        columns: Column::iter().collect(),
        by_field: FxHashMap::default(),
    };
    for column in Column::iter() {
        let bit = catalog.bit(column);
        catalog
            .by_field
            .insert(column.as_str().to_lower_camel_case(), bit);
    }
    for (field, reads) in COMPUTED {
        let bits = reads.iter().fold(0, |bits, c| bits | catalog.bit(*c));
        catalog.by_field.insert((*field).to_owned(), bits);
    }
    catalog
});

/// The columns one page reads, as bits in the entity's column order (31 columns).
pub struct Projection(u64);

impl Projection {
    /// What the `tradeRecords` field being resolved selects of its records, plus `keys` (the
    /// sort keys, whose values make the cursors).
    pub fn of(ctx: &Context<'_>, keys: impl IntoIterator<Item = Column>) -> Self {
        let catalog = &*CATALOG;
        let mut bits = catalog.bit(Column::Id);
        for key in keys {
            bits |= catalog.bit(key);
        }
        let look = ctx.look_ahead();
        let records = look.field("edges").field("node").selection_fields();
        for record in records
            .into_iter()
            .chain(look.field("nodes").selection_fields())
        {
            for field in record.selection_set() {
                match catalog.by_field.get(field.name()) {
                    Some(reads) => bits |= reads,
                    None => return Projection(u64::MAX),
                }
            }
        }
        Projection(bits)
    }

    /// The columns to select, in the order `decode` expects them.
    pub fn columns(&self) -> impl Iterator<Item = Column> + '_ {
        CATALOG
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, c)| *c)
    }

    /// One row of the page, its columns as `columns` listed them.
    pub fn decode(&self, row: &QueryResult) -> Result<TradeRecord, DbErr> {
        let mut record = TradeRecord::default();
        for (i, column) in self.columns().enumerate() {
            read(&mut record, column, row, i)?;
        }
        Ok(record)
    }
}

/// Column `i` of `row` into the field that shows it. Exhaustive: a new column must be placed
/// (or said to have no field) before this compiles.
fn read(
    record: &mut TradeRecord,
    column: Column,
    row: &QueryResult,
    i: usize,
) -> Result<(), DbErr> {
    let r = record;
    match column {
        Column::Id => r.row_id = row.try_get_by_index(i)?,
        Column::BatchId => r.batch_id = row.try_get_by_index(i)?,
        Column::ProviderCountry => r.provider_country = row.try_get_by_index(i)?,
        Column::DeclarationId => r.declaration_id = row.try_get_by_index(i)?,
        Column::LineNumber => r.line_number = row.try_get_by_index(i)?,
        Column::DeclarationDate => r.declaration_date = Date(row.try_get_by_index(i)?),
        Column::Direction => {
            r.direction = Direction::from_column(&row.try_get_by_index::<String>(i)?);
        }
        Column::HsCode => r.hs_code = row.try_get_by_index(i)?,
        Column::CommodityDescription => r.commodity_description = row.try_get_by_index(i)?,
        Column::ImporterName => r.importer_name = row.try_get_by_index(i)?,
        Column::ImporterId => r.importer_id = row.try_get_by_index(i)?,
        Column::ImporterAddress => r.importer_address = row.try_get_by_index(i)?,
        Column::ExporterName => r.exporter_name = row.try_get_by_index(i)?,
        Column::ManufacturerName => r.manufacturer_name = row.try_get_by_index(i)?,
        Column::ManufacturerId => r.manufacturer_id = row.try_get_by_index(i)?,
        Column::CountryOfOrigin => r.country_of_origin = row.try_get_by_index(i)?,
        Column::CountryOfExport => r.country_of_export = row.try_get_by_index(i)?,
        Column::CountryOfDestination => r.country_of_destination = row.try_get_by_index(i)?,
        Column::ReportingCountry => r.reporting_country = row.try_get_by_index(i)?,
        Column::PartnerCountry => r.partner_country = row.try_get_by_index(i)?,
        Column::Port => r.port = row.try_get_by_index(i)?,
        Column::TransportMode => r.transport_mode = row.try_get_by_index(i)?,
        Column::Quantity => r.quantity = row.try_get_by_index(i)?,
        Column::QuantityUnit => r.quantity_unit = row.try_get_by_index(i)?,
        Column::NetWeightKg => r.net_weight_kg = row.try_get_by_index(i)?,
        Column::DeclaredValue => r.declared_value = row.try_get_by_index(i)?,
        Column::DeclaredCurrency => r.declared_currency = row.try_get_by_index(i)?,
        Column::DeclaredValueUsd => r.declared_value_usd = row.try_get_by_index(i)?,
        // The analysis engine's facts, and the loader's line: no `TradeRecord` field shows them.
        Column::PeerYear | Column::LogUnitPrice | Column::LogValuePerKg | Column::SourceLine => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_computed_field_and_column_has_a_place() {
        let catalog = &*CATALOG;
        assert!(
            catalog.columns.len() <= 64,
            "the projection is a 64-bit set"
        );
        for name in [
            "declarationId",
            "netWeightKg",
            "declaredValueUsd",
            "partyHits",
        ] {
            assert!(catalog.by_field.contains_key(name), "{name}");
        }
        // A computed field reads at least the columns it names.
        let party = catalog.by_field["partyHits"];
        assert_eq!(party.count_ones(), 3);
        assert_eq!(
            party & catalog.by_field["exporterName"],
            catalog.by_field["exporterName"]
        );
    }
}
