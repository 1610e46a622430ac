//! `tradeTotals`: sums of trade records grouped by dimensions (`analysis::totals`).

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use entities::trade_record::Column;
use sea_orm::{ColumnTrait, Condition, sea_query::Order};

use super::filters::RecordFilter;
use super::guard::{principal, require_readable};
use super::pagination::{CONNECTION_COST, OffsetCursor, Page, TotalCount};
use super::scalars::SortDirection;
use super::scope;
use super::screening::{self, PartyHit, TradeParty};
use super::trade::{Direction, TradeRecordFilter};
use crate::analysis::rollup::{self, Source};
use crate::analysis::totals::{self, Dimension, Grouping, Measure, SortKey, TotalsRow};
use crate::error::ApiError;
use crate::policy::PermissionSet;
use crate::state::AppState;

/// One group of trade records and its sums. A dimension field is set when the request grouped
/// by it (null there means the records lack the value); the others are null.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TradeTotal {
    pub country_of_origin: Option<String>,
    pub country_of_export: Option<String>,
    pub country_of_destination: Option<String>,
    pub partner_country: Option<String>,
    pub reporting_country: Option<String>,
    pub provider_country: Option<String>,
    pub importer_id: Option<String>,
    pub importer_name: Option<String>,
    pub manufacturer_id: Option<String>,
    pub manufacturer_name: Option<String>,
    /// The HS code at the grouped level (2, 4, 6 or 10 digits).
    pub hs_code: Option<String>,
    pub port: Option<String>,
    pub transport_mode: Option<String>,
    pub direction: Option<Direction>,
    /// `YYYY-MM`.
    pub month: Option<String>,
    pub year: Option<i32>,
    /// Sum of `declaredValueUsd`.
    pub value_usd: f64,
    /// Sum of the quantities, only when every record of the group that has a unit has the same
    /// one (`quantityUnit`); null when units differ: group by `QUANTITY_UNIT` to get one
    /// figure per unit.
    pub quantity: Option<f64>,
    pub quantity_unit: Option<String>,
    pub net_weight_kg: Option<f64>,
    pub record_count: i64,
    /// The rows this total was computed over (the request's filter and row scope): the names
    /// behind a party id are read from them, so `partyHits` never reaches another row.
    #[graphql(skip)]
    rows: Option<Arc<Condition>>,
}

/// Distinct names screened per party id: an id usually has one spelling, a few at most.
const NAMES_PER_ID: u64 = 5;

#[ComplexObject]
impl TradeTotal {
    /// Screening hits for the grouped importer and manufacturer (from the sources your role
    /// may read), best first; empty unless the totals are grouped by an importer or
    /// manufacturer (name or id: an id's names are read from the totalled rows).
    async fn party_hits(
        &self,
        ctx: &Context<'_>,
        min_score: Option<f64>,
    ) -> async_graphql::Result<Vec<PartyHit>> {
        let parties = [
            (
                TradeParty::Importer,
                &self.importer_name,
                &self.importer_id,
                Column::ImporterId,
                Dimension::ImporterName,
            ),
            (
                TradeParty::Manufacturer,
                &self.manufacturer_name,
                &self.manufacturer_id,
                Column::ManufacturerId,
                Dimension::ManufacturerName,
            ),
        ];
        let mut named = Vec::new();
        for (party, name, id, id_column, name_dimension) in parties {
            match (name, id, &self.rows) {
                (Some(name), _, _) => named.push((party, Some(name.clone()))),
                (None, Some(id), Some(rows)) => {
                    // `all`: added to the rows' condition itself, the id would widen it if
                    // that condition were ever an `any` (as a row scope can be).
                    let condition = Condition::all()
                        .add(rows.as_ref().clone())
                        .add(id_column.eq(id.as_str()));
                    for name in names_of(ctx, name_dimension, condition).await? {
                        named.push((party, Some(name)));
                    }
                }
                _ => {}
            }
        }
        screening::party_hits(ctx, named, min_score).await
    }
}

/// The most frequent names of `dimension` among the rows matching `condition`.
async fn names_of(
    ctx: &Context<'_>,
    dimension: Dimension,
    condition: Condition,
) -> async_graphql::Result<Vec<String>> {
    let state = ctx.data::<AppState>()?;
    let grouping = Grouping::new(
        vec![dimension],
        vec![(SortKey::Measure(Measure::RecordCount), Order::Desc)],
    )
    .map_err(|e| ApiError::Internal(e.into()))?;
    let statement = grouping.statement(
        state.db.get_database_backend(),
        Source::Records,
        condition,
        0,
        Some(NAMES_PER_ID),
    );
    let mut names = Vec::new();
    for row in totals::run(&state.db, &statement)
        .await
        .map_err(ApiError::from)?
    {
        let (decoded, _) = grouping.decode(&row).map_err(ApiError::from)?;
        names.extend(decoded.key(dimension).map(str::to_owned));
    }
    Ok(names)
}

impl From<TotalsRow> for TradeTotal {
    fn from(row: TotalsRow) -> Self {
        let key = |d| row.key(d).map(str::to_owned);
        TradeTotal {
            country_of_origin: key(Dimension::CountryOfOrigin),
            country_of_export: key(Dimension::CountryOfExport),
            country_of_destination: key(Dimension::CountryOfDestination),
            partner_country: key(Dimension::PartnerCountry),
            reporting_country: key(Dimension::ReportingCountry),
            provider_country: key(Dimension::ProviderCountry),
            importer_id: key(Dimension::ImporterId),
            importer_name: key(Dimension::ImporterName),
            manufacturer_id: key(Dimension::ManufacturerId),
            manufacturer_name: key(Dimension::ManufacturerName),
            hs_code: [
                Dimension::Hs2,
                Dimension::Hs4,
                Dimension::Hs6,
                Dimension::Hs10,
            ]
            .into_iter()
            .find_map(key),
            port: key(Dimension::Port),
            transport_mode: key(Dimension::TransportMode),
            direction: row.key(Dimension::Direction).map(|d| {
                if d == "EXPORT" {
                    Direction::Export
                } else {
                    Direction::Import
                }
            }),
            month: key(Dimension::Month),
            year: row.key(Dimension::Year).and_then(|y| y.parse().ok()),
            quantity_unit: row
                .key(Dimension::QuantityUnit)
                .map(str::to_owned)
                .or_else(|| row.quantity_unit.clone()),
            value_usd: row.value_usd,
            quantity: row.quantity,
            net_weight_kg: row.net_weight_kg,
            record_count: row.record_count,
            rows: None,
        }
    }
}

/// One sort key of `tradeTotals`: a measure or one of the grouped dimensions (exactly one).
#[derive(InputObject, Clone, Copy)]
pub struct TotalsOrder {
    pub measure: Option<Measure>,
    pub dimension: Option<Dimension>,
    #[graphql(default_with = "SortDirection::Desc")]
    pub direction: SortDirection,
}

const MAX_SORT_KEYS: usize = 4;

/// The validated grouping, or BAD_USER_INPUT. Default order: value descending.
pub fn grouping(
    group_by: Vec<Dimension>,
    order_by: Option<Vec<TotalsOrder>>,
) -> Result<Grouping, ApiError> {
    let order_by = order_by.unwrap_or_else(|| {
        vec![TotalsOrder {
            measure: Some(Measure::ValueUsd),
            dimension: None,
            direction: SortDirection::Desc,
        }]
    });
    if order_by.len() > MAX_SORT_KEYS {
        return Err(ApiError::bad_input(format!(
            "orderBy takes at most {MAX_SORT_KEYS} keys"
        )));
    }
    let mut order = Vec::with_capacity(order_by.len());
    for o in order_by {
        let key = match (o.measure, o.dimension) {
            (Some(m), None) => SortKey::Measure(m),
            (None, Some(d)) => SortKey::Dimension(d),
            _ => {
                return Err(ApiError::bad_input(
                    "each orderBy key names exactly one of measure or dimension",
                ));
            }
        };
        let direction = match o.direction {
            SortDirection::Asc => Order::Asc,
            SortDirection::Desc => Order::Desc,
        };
        order.push((key, direction));
    }
    Grouping::new(group_by, order).map_err(ApiError::bad_input)
}

/// What a trade filter tells `rollup::source`: its dates and HS prefix (the fields it reads
/// come from `RecordFilter::fields_read`).
pub(crate) trait RollupFilter: RecordFilter {
    fn dates(&self) -> (Option<NaiveDate>, Option<NaiveDate>);
    fn hs_prefix(&self) -> Option<&str>;
}

impl RollupFilter for TradeRecordFilter {
    fn dates(&self) -> (Option<NaiveDate>, Option<NaiveDate>) {
        (
            self.declaration_date_from.map(|d| d.0),
            self.declaration_date_to.map(|d| d.0),
        )
    }

    fn hs_prefix(&self) -> Option<&str> {
        self.hs_code_prefix.as_deref()
    }
}

/// Where the sums of `grouping` over the rows `filter` selects, for a caller with `perms`, are
/// read: a rollup when one answers, else the records.
pub(crate) fn source(
    filter: &impl RollupFilter,
    grouping: &Grouping,
    perms: &PermissionSet,
) -> Source {
    let (date_from, date_to) = filter.dates();
    rollup::source(&rollup::Request {
        grouping,
        filter_fields: &filter.fields_read(),
        date_from,
        date_to,
        hs_prefix: filter.hs_prefix(),
        scope_fields: scope::trade_reads(perms),
    })
}

#[derive(Default)]
pub struct TotalsQuery;

#[Object]
impl TotalsQuery {
    /// Value (USD), quantity, net weight and record count of the trade records matching
    /// `filter`, grouped by `groupBy` (an empty list: one grand total), computed in the
    /// database over the caller's rows only. Each group is one delivered record.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    pub(crate) async fn trade_totals(
        &self,
        ctx: &Context<'_>,
        group_by: Vec<Dimension>,
        filter: Option<TradeRecordFilter>,
        order_by: Option<Vec<TotalsOrder>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<Connection<OffsetCursor, TradeTotal, TotalCount>>> {
        let state = ctx.data::<AppState>()?;
        let page = Page::new(first, after)?;
        let filter = filter.unwrap_or_default();
        let grouping = grouping(group_by, order_by)?;
        // Grouping by a field, or ranking groups by a sum, discloses it as a filter would.
        let mut read = filter.fields_read();
        read.extend(grouping.fields_read());
        require_readable(ctx, TradeRecordFilter::RECORD, &read)?;
        let perms = &principal(ctx)?.permissions;
        let condition = filter.condition()?.add(scope::trade(perms));
        let source = source(&filter, &grouping, perms);
        let backend = state.db.get_database_backend();
        let rows_condition = Arc::new(condition.clone());
        let rows = totals::run(
            &state.db,
            &grouping.statement(
                backend,
                source,
                condition.clone(),
                page.offset,
                Some(page.limit + 1),
            ),
        )
        .await
        .map_err(ApiError::from)?;
        let mut total = 0;
        let mut totals = Vec::with_capacity(rows.len());
        for row in &rows {
            let (decoded, groups) = grouping.decode(row).map_err(ApiError::from)?;
            total = groups;
            totals.push(TradeTotal {
                rows: Some(rows_condition.clone()),
                ..TradeTotal::from(decoded)
            });
        }
        if rows.is_empty() && page.offset > 0 {
            // Past the last page the window count is not there to read.
            total = totals::run(
                &state.db,
                &grouping.statement(backend, source, condition, 0, Some(1)),
            )
            .await
            .map_err(ApiError::from)?
            .first()
            .map(|row| grouping.decode(row).map(|(_, groups)| groups))
            .transpose()
            .map_err(ApiError::from)?
            .unwrap_or(0);
        }
        Ok(Some(page.connection(totals, total)))
    }
}
