//! Totals of trade records grouped by dimensions, computed in the database with `GROUP BY`.
//!
//! This module builds the one SQL statement behind `tradeTotals` (and the per-side sums
//! `mirrorDiscrepancies` matches) and decodes its rows; it knows nothing of GraphQL requests.
//! The same statement runs on SQLite and PostgreSQL: only the date and HS-prefix expressions
//! differ per backend, and both produce the same text (`2024-03`, `2024`, `847130`).
//!
//! Quantities in different units cannot be added (dozens plus kilograms is no number), so a
//! group's `quantity` is the sum over its records that carry a unit *only when they all carry
//! the same one*, named in `quantity_unit`; otherwise both are absent. Grouping by
//! `QUANTITY_UNIT` (or filtering to one HS code, whose unit is normally fixed) gives a figure
//! per unit.

use async_graphql::Enum;
use async_graphql::resolver_utils::EnumType;
use entities::trade_record::{self, Column};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, NullOrdering, Order, Query, SelectStatement, SimpleExpr,
};
use sea_orm::{
    Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, TransactionTrait,
};

use super::rollup::Source;

/// What `tradeTotals` can group by. Each reads one `TradeRecord` field (`DIMENSION_READS`).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[graphql(name = "TotalsDimension")]
pub enum Dimension {
    CountryOfOrigin,
    CountryOfExport,
    CountryOfDestination,
    PartnerCountry,
    ReportingCountry,
    /// The nation that provided the data.
    ProviderCountry,
    ImporterId,
    ImporterName,
    ManufacturerId,
    ManufacturerName,
    /// HS chapter (first 2 digits).
    #[graphql(name = "HS2")]
    Hs2,
    /// HS heading (first 4 digits).
    #[graphql(name = "HS4")]
    Hs4,
    /// HS subheading (first 6 digits), the level nations share.
    #[graphql(name = "HS6")]
    Hs6,
    /// The national 10-digit line.
    #[graphql(name = "HS10")]
    Hs10,
    Port,
    TransportMode,
    Direction,
    QuantityUnit,
    /// Declaration month, `YYYY-MM`.
    Month,
    /// Declaration year.
    Year,
}

/// The `TradeRecord` field each dimension value reads, by GraphQL enum value: the resolver
/// refuses a dimension whose field the caller cannot read, and introspection hides it, from
/// this one table.
pub const DIMENSION_READS: &[(&str, &[&str])] = &[
    ("COUNTRY_OF_ORIGIN", &["countryOfOrigin"]),
    ("COUNTRY_OF_EXPORT", &["countryOfExport"]),
    ("COUNTRY_OF_DESTINATION", &["countryOfDestination"]),
    ("PARTNER_COUNTRY", &["partnerCountry"]),
    ("REPORTING_COUNTRY", &["reportingCountry"]),
    ("PROVIDER_COUNTRY", &["providerCountry"]),
    ("IMPORTER_ID", &["importerId"]),
    ("IMPORTER_NAME", &["importerName"]),
    ("MANUFACTURER_ID", &["manufacturerId"]),
    ("MANUFACTURER_NAME", &["manufacturerName"]),
    ("HS2", &["hsCode"]),
    ("HS4", &["hsCode"]),
    ("HS6", &["hsCode"]),
    ("HS10", &["hsCode"]),
    ("PORT", &["port"]),
    ("TRANSPORT_MODE", &["transportMode"]),
    ("DIRECTION", &["direction"]),
    ("QUANTITY_UNIT", &["quantityUnit"]),
    ("MONTH", &["declarationDate"]),
    ("YEAR", &["declarationDate"]),
];

/// The summed columns a totals row carries, as sort keys.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "TotalsMeasure")]
pub enum Measure {
    ValueUsd,
    Quantity,
    NetWeightKg,
    RecordCount,
}

/// The `TradeRecord` fields each measure sums (sorting on it ranks groups by them).
pub const MEASURE_READS: &[(&str, &[&str])] = &[
    ("VALUE_USD", &["declaredValueUsd"]),
    ("QUANTITY", &["quantity", "quantityUnit"]),
    ("NET_WEIGHT_KG", &["netWeightKg"]),
    ("RECORD_COUNT", &[]),
];

/// Most dimensions in one request: more is a cross-tabulation nobody reads, and a wide
/// `GROUP BY` is the costliest shape this query has.
pub const MAX_DIMENSIONS: usize = 6;

/// The entry of `value` in a reads table. Every enum value has one: the unit test
/// `every_dimension_and_measure_has_one_reads_entry` fails for a value added without one, which
/// would otherwise be grouped on unchecked.
fn reads_of<T: EnumType + PartialEq + 'static>(
    value: T,
    table: &[(&str, &'static [&'static str])],
) -> &'static [&'static str] {
    let name = graphql_name(value);
    table
        .iter()
        .find(|(member, _)| *member == name)
        .map(|(_, fields)| *fields)
        .unwrap_or(&[])
}

/// The GraphQL enum value's name (`HS4`, `VALUE_USD`).
fn graphql_name<T: EnumType + PartialEq + 'static>(value: T) -> &'static str {
    T::items()
        .iter()
        .find(|item| item.value == value)
        .map_or("", |item| item.name)
}

impl Dimension {
    /// The `TradeRecord` fields grouping by this dimension reads.
    pub fn fields_read(self) -> &'static [&'static str] {
        reads_of(self, DIMENSION_READS)
    }

    /// The grouped expression, as text the same on both backends.
    fn expr(self, backend: DbBackend) -> SimpleExpr {
        // Literals, not bound parameters: PostgreSQL matches a selected expression to its
        // GROUP BY twin only when the text is the same, and `$1` is never the same as `$3`.
        let prefix = |n: u8| Expr::cust(format!("substr(\"hs_code\", 1, {n})"));
        let column = |c: Column| Expr::col(c);
        match self {
            Self::CountryOfOrigin => column(Column::CountryOfOrigin),
            Self::CountryOfExport => column(Column::CountryOfExport),
            Self::CountryOfDestination => column(Column::CountryOfDestination),
            Self::PartnerCountry => column(Column::PartnerCountry),
            Self::ReportingCountry => column(Column::ReportingCountry),
            Self::ProviderCountry => column(Column::ProviderCountry),
            Self::ImporterId => column(Column::ImporterId),
            Self::ImporterName => column(Column::ImporterName),
            Self::ManufacturerId => column(Column::ManufacturerId),
            Self::ManufacturerName => column(Column::ManufacturerName),
            Self::Hs2 => prefix(2),
            Self::Hs4 => prefix(4),
            Self::Hs6 => prefix(6),
            Self::Hs10 => prefix(10),
            Self::Port => column(Column::Port),
            Self::TransportMode => column(Column::TransportMode),
            Self::Direction => column(Column::Direction),
            Self::QuantityUnit => column(Column::QuantityUnit),
            Self::Month => date_prefix(backend, 7),
            Self::Year => date_prefix(backend, 4),
        }
    }

    fn is_hs(self) -> bool {
        matches!(self, Self::Hs2 | Self::Hs4 | Self::Hs6 | Self::Hs10)
    }
}

/// `YYYY-MM` (7) or `YYYY` (4) of the declaration date. SQLite keeps dates as ISO text;
/// PostgreSQL as `date`, formatted with `to_char`.
fn date_prefix(backend: DbBackend, len: usize) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => {
            let format = if len == 7 { "YYYY-MM" } else { "YYYY" };
            Expr::cust(format!("to_char(\"declaration_date\", '{format}')"))
        }
        _ => Expr::cust(format!("substr(\"declaration_date\", 1, {len})")),
    }
}

/// `SUM(expression)` of a floating-point column, the same whatever order the rows are added in.
///
/// A sum is a page's position (`tradeTotals` sorted by value, an entity's excess in
/// `tradeFinanceMismatches`), recomputed by the next page's request. PostgreSQL adds a float sum in the
/// order its parallel workers happen to read the rows: two runs of one query on 1M rows gave
/// 2,072 of 5,001 groups different last bits, so a group whose sum ties with the page's last
/// could come out just above it next time and be passed over. Each value as `NUMERIC` (its
/// shortest decimal, 15 significant digits) is added exactly, so the sum is one number, and a
/// sum of cents is exact in cents. Measured on 1M rows (`psql`, 201 to 898,272 groups): within
/// the noise of the float sum, read in parallel or not. SQLite reads the rows in one order, so
/// its `SUM` (binary, with compensated rounding) repeats; it has no exact decimal sum built in.
pub fn exact_sum(backend: DbBackend, expression: &str) -> String {
    match backend {
        DbBackend::Postgres => {
            format!("CAST(SUM(CAST({expression} AS NUMERIC)) AS DOUBLE PRECISION)")
        }
        _ => format!("SUM({expression})"),
    }
}

impl Measure {
    pub fn fields_read(self) -> &'static [&'static str] {
        reads_of(self, MEASURE_READS)
    }

    fn alias(self) -> &'static str {
        match self {
            Self::ValueUsd => "value_usd",
            Self::Quantity => "quantity",
            Self::NetWeightKg => "net_weight_kg",
            Self::RecordCount => "record_count",
        }
    }
}

/// One sort key: a measure or a grouped dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Measure(Measure),
    Dimension(Dimension),
}

/// One key of the order `Grouping::statement` sorts by, NULLs last: what a page's position is
/// made of.
#[derive(Clone, Debug)]
pub struct OrderKey {
    /// The key's GraphQL name (`VALUE_USD`, `HS4`): a cursor's signature names its keys, so
    /// a cursor of another grouping or order is told apart.
    pub name: &'static str,
    /// The column of the statement's result.
    pub alias: String,
    pub desc: bool,
    /// A measure, or a dimension (whose values are text).
    pub key: SortKey,
}

/// What PostgreSQL may use per sort or hash of one totals statement. Its default of 4 MB made
/// a year of importer totals (29,000 groups) sort on disk instead of hashing in memory, at
/// 1.5-2x the time. Raised for these statements only, not for the pool.
const WORK_MEM: &str = "64MB";

/// Runs a `Grouping::statement`: on PostgreSQL in a transaction of its own that raises
/// `work_mem` for it alone.
pub async fn run(
    db: &DatabaseConnection,
    statement: &SelectStatement,
) -> Result<Vec<QueryResult>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return db.query_all(statement).await;
    }
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("SET LOCAL work_mem = '{WORK_MEM}'"))
        .await?;
    let rows = txn.query_all(statement).await?;
    txn.commit().await?;
    Ok(rows)
}

/// A validated totals request: dimensions (distinct, at most one HS level), sort keys on
/// measures or grouped dimensions.
#[derive(Clone, Debug)]
pub struct Grouping {
    dimensions: Vec<Dimension>,
    order: Vec<(SortKey, Order)>,
}

impl Grouping {
    pub fn new(dimensions: Vec<Dimension>, order: Vec<(SortKey, Order)>) -> Result<Self, String> {
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(format!("groupBy takes at most {MAX_DIMENSIONS} dimensions"));
        }
        for (i, d) in dimensions.iter().enumerate() {
            if dimensions[..i].contains(d) {
                return Err(format!("groupBy names {} twice", graphql_name(*d)));
            }
        }
        if dimensions.iter().filter(|d| d.is_hs()).count() > 1 {
            return Err("groupBy takes one HS level (HS2, HS4, HS6 or HS10)".into());
        }
        for (key, _) in &order {
            if let SortKey::Dimension(d) = key
                && !dimensions.contains(d)
            {
                return Err(format!(
                    "orderBy dimension {} is not in groupBy",
                    graphql_name(*d)
                ));
            }
        }
        Ok(Grouping { dimensions, order })
    }

    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// Every `TradeRecord` field this grouping and its order read.
    pub fn fields_read(&self) -> Vec<&'static str> {
        let mut read: Vec<&'static str> = self
            .dimensions
            .iter()
            .flat_map(|d| d.fields_read().iter().copied())
            .collect();
        for (key, _) in &self.order {
            if let SortKey::Measure(m) = key {
                read.extend(m.fields_read());
            }
        }
        read
    }

    /// The order of `statement`: the requested keys, then every dimension ascending (together
    /// unique per group; no dimension is the one grand-total row), NULLs last throughout.
    pub fn order_keys(&self) -> Vec<OrderKey> {
        let ties = self
            .dimensions
            .iter()
            .map(|d| (SortKey::Dimension(*d), Order::Asc));
        self.order
            .iter()
            .cloned()
            .chain(ties)
            .map(|(key, direction)| {
                let (name, alias) = match key {
                    SortKey::Measure(m) => (graphql_name(m), m.alias().to_owned()),
                    SortKey::Dimension(d) => (graphql_name(d), self.alias_of(d)),
                };
                OrderKey {
                    name,
                    alias,
                    desc: direction == Order::Desc,
                    key,
                }
            })
            .collect()
    }

    /// The statement: the groups of the rows matching `condition` (filter *and* row scope,
    /// which the caller must include) in the order of `order_keys`, those after `seek` only (a
    /// condition on the result's columns, e.g. a page's position), at most `limit`. Each row
    /// also carries the number of all groups (`total_groups`). `source` must be one
    /// `rollup::source` chose for this grouping and condition.
    pub fn statement(
        &self,
        backend: DbBackend,
        source: Source,
        condition: Condition,
        seek: Option<Condition>,
        limit: Option<u64>,
    ) -> SelectStatement {
        let mut q = self.sums(backend, source, condition);
        q.expr_as(Expr::cust("COUNT(*) OVER ()"), Alias::new("total_groups"));
        if let Some(seek) = seek {
            // The sums and keys have their names only outside the grouped statement, and the
            // group count inside it still counts every group.
            let mut outer = Query::select();
            outer
                .column(Asterisk)
                .from_subquery(q, Alias::new("grouped"))
                .cond_where(seek);
            q = outer;
        }
        for key in self.order_keys() {
            let direction = if key.desc { Order::Desc } else { Order::Asc };
            q.order_by_expr_with_nulls(
                Expr::col(Alias::new(key.alias)),
                direction,
                NullOrdering::Last,
            );
        }
        if let Some(limit) = limit {
            q.limit(limit);
        }
        q
    }

    /// Every group of the rows matching `condition`, in no order, at most `limit` of them,
    /// without the group count: for a caller that reads them all (mirror trade matches the
    /// sides itself). Sorting tens of thousands of groups by their text keys under the
    /// database's collation cost PostgreSQL more than summing them. Rows decode with
    /// `decode_sums`.
    pub fn all_sums(
        &self,
        backend: DbBackend,
        source: Source,
        condition: Condition,
        limit: u64,
    ) -> SelectStatement {
        let mut q = self.sums(backend, source, condition);
        q.limit(limit);
        q
    }

    /// The grouped keys and sums, unordered and unlimited.
    fn sums(&self, backend: DbBackend, source: Source, condition: Condition) -> SelectStatement {
        let mut q = Query::select();
        // Units are compared only for equality, so PostgreSQL may compare bytes ("C") instead
        // of going through the database's collation for every row (a third of the time).
        let unit = |column: &str| match backend {
            DbBackend::Postgres => format!("\"{column}\" COLLATE \"C\""),
            _ => format!("\"{column}\""),
        };
        let (min_unit, max_unit, quantity, count) = match source {
            Source::Records => {
                q.from(trade_record::Entity);
                (
                    format!("MIN({})", unit("quantity_unit")),
                    format!("MAX({})", unit("quantity_unit")),
                    exact_sum(
                        backend,
                        "CASE WHEN \"quantity_unit\" IS NOT NULL THEN \"quantity\" END",
                    ),
                    "COUNT(*)",
                )
            }
            Source::Rollup(rollup) => {
                // Under the records' name: the condition names its columns as
                // `"trade_records"."…"`, and the rollup keeps them under the same names.
                q.from_as(Alias::new(rollup.table), trade_record::Entity);
                (
                    format!("MIN({})", unit("min_unit")),
                    format!("MAX({})", unit("max_unit")),
                    exact_sum(backend, "\"quantity\""),
                    // PostgreSQL's SUM of a BIGINT is NUMERIC; the grand total of no rows is
                    // one group with a count of 0, as COUNT(*) gives it.
                    "CAST(COALESCE(SUM(\"record_count\"), 0) AS BIGINT)",
                )
            }
        };
        for (i, d) in self.dimensions.iter().enumerate() {
            q.expr_as(d.expr(backend), Alias::new(format!("d{i}")));
            q.add_group_by([d.expr(backend)]);
        }
        let single_unit = format!("{min_unit} = {max_unit}");
        // Never NULL, not even for the grand total of no rows: the value served (0) is then
        // the value sorted on and sought after, so a cursor finds its own group.
        q.expr_as(
            Expr::cust(format!(
                "COALESCE({}, 0.0)",
                exact_sum(backend, "\"declared_value_usd\"")
            )),
            Alias::new("value_usd"),
        )
        .expr_as(
            Expr::cust(format!("CASE WHEN {single_unit} THEN {quantity} END")),
            Alias::new("quantity"),
        )
        .expr_as(
            Expr::cust(format!("CASE WHEN {single_unit} THEN {min_unit} END")),
            Alias::new("quantity_unit"),
        )
        .expr_as(
            Expr::cust(exact_sum(backend, "\"net_weight_kg\"")),
            Alias::new("net_weight_kg"),
        )
        .expr_as(Expr::cust(count), Alias::new("record_count"))
        .cond_where(condition);
        q
    }

    fn alias_of(&self, d: Dimension) -> String {
        let i = self.dimensions.iter().position(|x| *x == d).unwrap_or(0);
        format!("d{i}")
    }

    /// Decodes one row of `statement`'s result: the group and the number of groups.
    pub fn decode(&self, row: &QueryResult) -> Result<(TotalsRow, u64), sea_orm::DbErr> {
        let total: i64 = row.try_get_by("total_groups")?;
        Ok((self.decode_sums(row)?, u64::try_from(total).unwrap_or(0)))
    }

    /// Decodes one group of `statement`'s or `all_sums`' result.
    pub fn decode_sums(&self, row: &QueryResult) -> Result<TotalsRow, sea_orm::DbErr> {
        let mut keys = Vec::with_capacity(self.dimensions.len());
        for i in 0..self.dimensions.len() {
            keys.push(row.try_get_by::<Option<String>, _>(format!("d{i}").as_str())?);
        }
        Ok(TotalsRow {
            keys: self.dimensions.iter().copied().zip(keys).collect(),
            value_usd: row.try_get_by("value_usd")?,
            quantity: row.try_get_by("quantity")?,
            quantity_unit: row.try_get_by("quantity_unit")?,
            net_weight_kg: row.try_get_by("net_weight_kg")?,
            record_count: row.try_get_by("record_count")?,
        })
    }
}

/// One group's sums.
#[derive(Clone, Debug, PartialEq)]
pub struct TotalsRow {
    /// The group's value of each grouped dimension, in `groupBy` order.
    pub keys: Vec<(Dimension, Option<String>)>,
    pub value_usd: f64,
    /// Present only when every record of the group with a unit has the same one.
    pub quantity: Option<f64>,
    pub quantity_unit: Option<String>,
    pub net_weight_kg: Option<f64>,
    pub record_count: i64,
}

impl TotalsRow {
    pub fn key(&self, d: Dimension) -> Option<&str> {
        self.keys
            .iter()
            .find(|(dim, _)| *dim == d)
            .and_then(|(_, v)| v.as_deref())
    }
}

#[cfg(test)]
mod tests;
