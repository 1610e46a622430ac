//! `tradeTotals`: sums of trade records grouped by dimensions (`analysis::totals`).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use entities::trade_record::Column;
use sea_orm::sea_query::{Alias, Expr, Order};
use sea_orm::{ColumnTrait, Condition};

use super::filters::RecordFilter;
use super::guard::{principal, require_readable};
use super::keyset::{KeyKind, KeyValue, Keyset, KeysetConnection, SortKey as KeysetKey};
use super::pagination::CONNECTION_COST;
use super::scalars::SortDirection;
use super::scope;
use super::screening::{self, PartyHit, TradeParty};
use super::trade::{Direction, TradeRecordFilter};
use crate::analysis::rollup::{self, Source};
use crate::analysis::totals::{self, Dimension, Grouping, Measure, OrderKey, SortKey, TotalsRow};
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
    /// The page this total is on, which knows the rows it was computed over: the names behind
    /// a party id are read from them, so `partyHits` never reaches another row.
    #[graphql(skip)]
    page: Option<Arc<PageParties>>,
}

/// Distinct names screened per party id: an id usually has one spelling, a few at most.
const NAMES_PER_ID: usize = 5;

/// The parties a page of totals is grouped by, by id, and the names behind those ids: read
/// for the whole page, one statement per kind of party, when the first row's `partyHits`
/// asks — a page of 50 importers was 50 statements.
pub struct PageParties {
    /// The rows the totals were computed over (the request's filter and row scope).
    rows: Condition,
    /// The party ids on the page whose name the grouping does not give.
    ids: Vec<(TradeParty, String)>,
    names: tokio::sync::OnceCell<HashMap<(TradeParty, String), Vec<String>>>,
}

/// The parties `partyHits` on a totals row screens: kind, the id column, and the id and name
/// dimensions.
const PARTIES: [(TradeParty, Column, Dimension, Dimension); 2] = [
    (
        TradeParty::Importer,
        Column::ImporterId,
        Dimension::ImporterId,
        Dimension::ImporterName,
    ),
    (
        TradeParty::Manufacturer,
        Column::ManufacturerId,
        Dimension::ManufacturerId,
        Dimension::ManufacturerName,
    ),
];

impl PageParties {
    fn new(rows: Condition, totals: &[TradeTotal]) -> Self {
        let mut ids = Vec::new();
        for t in totals {
            for (party, ..) in PARTIES {
                if let (None, Some(id)) = t.party(party) {
                    ids.push((party, id.clone()));
                }
            }
        }
        PageParties {
            rows,
            ids,
            names: tokio::sync::OnceCell::new(),
        }
    }

    /// The most frequent names (at most `NAMES_PER_ID`) of `party` id `id` among the rows.
    async fn names_of(
        &self,
        ctx: &Context<'_>,
        party: TradeParty,
        id: &str,
    ) -> async_graphql::Result<Vec<String>> {
        let names = self.names.get_or_try_init(|| self.read(ctx)).await?;
        Ok(names
            .get(&(party, id.to_owned()))
            .cloned()
            .unwrap_or_default())
    }

    /// Every id's names, per kind of party: grouped by (id, name) over the rows with those ids,
    /// most records first, ties by name — the order one id's own grouping by name would give.
    async fn read(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<HashMap<(TradeParty, String), Vec<String>>> {
        let state = ctx.data::<AppState>()?;
        let mut out: HashMap<(TradeParty, String), Vec<String>> = HashMap::new();
        for (party, id_column, id_dimension, name_dimension) in PARTIES {
            let ids: Vec<&str> = self
                .ids
                .iter()
                .filter(|(p, _)| *p == party)
                .map(|(_, id)| id.as_str())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let grouping = Grouping::new(
                vec![id_dimension, name_dimension],
                vec![(SortKey::Measure(Measure::RecordCount), Order::Desc)],
            )
            .map_err(|e| ApiError::Internal(e.into()))?;
            // `all`: added to the rows' condition itself, the ids would widen it if that
            // condition were ever an `any` (as a row scope can be).
            let condition = Condition::all()
                .add(self.rows.clone())
                .add(id_column.is_in(ids));
            let statement = grouping.statement(
                state.db.get_database_backend(),
                Source::Records,
                condition,
                None,
                None,
            );
            let mut groups_of: HashMap<String, usize> = HashMap::new();
            for row in totals::run(&state.db, &statement)
                .await
                .map_err(ApiError::from)?
            {
                let (decoded, _) = grouping.decode(&row).map_err(ApiError::from)?;
                let Some(id) = decoded.key(id_dimension) else {
                    continue;
                };
                // A group without a name still takes one of the id's places, as it did when
                // each id was read alone with a limit.
                let seen = groups_of.entry(id.to_owned()).or_default();
                *seen += 1;
                if *seen > NAMES_PER_ID {
                    continue;
                }
                if let Some(name) = decoded.key(name_dimension) {
                    out.entry((party, id.to_owned()))
                        .or_default()
                        .push(name.to_owned());
                }
            }
        }
        Ok(out)
    }
}

#[ComplexObject]
impl TradeTotal {
    /// Screening hits for the grouped importer and manufacturer (from the sources your role
    /// may read), best first; empty unless the totals are grouped by an importer or
    /// manufacturer (name or id: an id's names are read from the totalled rows). Null, with a
    /// `FORBIDDEN_FIELD` error, for a role that may not read SDN data or the party names.
    async fn party_hits(
        &self,
        ctx: &Context<'_>,
        min_score: Option<f64>,
    ) -> async_graphql::Result<Option<Vec<PartyHit>>> {
        let mut named = Vec::new();
        for (party, ..) in PARTIES {
            let (name, id) = self.party(party);
            match (name, id, &self.page) {
                (Some(name), _, _) => named.push((party, Some(name.clone()))),
                (None, Some(id), Some(page)) => {
                    for name in page.names_of(ctx, party, id).await? {
                        named.push((party, Some(name)));
                    }
                }
                _ => {}
            }
        }
        screening::party_hits(ctx, named, min_score).await.map(Some)
    }
}

impl TradeTotal {
    /// This row's name and id of `party`; either may be absent: the grouping gives what it
    /// grouped by.
    fn party(&self, party: TradeParty) -> (&Option<String>, &Option<String>) {
        match party {
            TradeParty::Importer => (&self.importer_name, &self.importer_id),
            TradeParty::Manufacturer => (&self.manufacturer_name, &self.manufacturer_id),
            // Totals have no exporter dimension.
            TradeParty::Exporter => (&None, &None),
        }
    }
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
            page: None,
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
    ) -> async_graphql::Result<Option<KeysetConnection<TradeTotal>>> {
        let state = ctx.data::<AppState>()?;
        let mut filter = filter.unwrap_or_default();
        let grouping = grouping(group_by, order_by)?;
        let order = grouping.order_keys();
        let page = Keyset::new("tradeTotals", order.iter().map(sort_key).collect()).page(
            &state.cursors,
            first,
            after.as_deref(),
        )?;
        // Grouping by a field, or ranking groups by a sum, discloses it as a filter would.
        let mut read = filter.fields_read();
        read.extend(grouping.fields_read());
        require_readable(ctx, TradeRecordFilter::RECORD, &read)?;
        let perms = &principal(ctx)?.permissions;
        let source = source(&filter, &grouping, perms);
        // A rollup is read whole anyway; the records are what the filter's importers narrow.
        if source == Source::Records {
            filter.narrow(&state.db).await?;
        }
        let condition = filter.condition()?.add(scope::trade(perms));
        let backend = state.db.get_database_backend();
        let rows = totals::run(
            &state.db,
            &grouping.statement(
                backend,
                source,
                condition.clone(),
                page.seek(),
                Some(page.limit() + 1),
            ),
        )
        .await
        .map_err(ApiError::from)?;
        let mut total = 0;
        let mut positions = Vec::with_capacity(rows.len());
        let mut totals = Vec::with_capacity(rows.len());
        for row in &rows {
            let (decoded, groups) = grouping.decode(row).map_err(ApiError::from)?;
            total = groups;
            positions.push(position(&order, &decoded));
            totals.push(TradeTotal::from(decoded));
        }
        let page_parties = Arc::new(PageParties::new(condition.clone(), &totals));
        for t in &mut totals {
            t.page = Some(page_parties.clone());
        }
        if rows.is_empty() && page.after().is_some() {
            // Past the last page the window count is not there to read.
            total = totals::run(
                &state.db,
                &grouping.statement(backend, source, condition, None, Some(1)),
            )
            .await
            .map_err(ApiError::from)?
            .first()
            .map(|row| grouping.decode(row).map(|(_, groups)| groups))
            .transpose()
            .map_err(ApiError::from)?
            .unwrap_or(0);
        }
        let edges = positions
            .into_iter()
            .map(|p| page.cursor(p))
            .zip(totals)
            .collect();
        Ok(Some(page.connection(edges, Some(total))))
    }
}

/// A key of `Grouping::order_keys` for the cursors: the statement sorts by the same list.
fn sort_key(key: &OrderKey) -> KeysetKey {
    let kind = match key.key {
        SortKey::Measure(Measure::RecordCount) => KeyKind::Int,
        SortKey::Measure(_) => KeyKind::Float,
        SortKey::Dimension(_) => KeyKind::Text,
    };
    KeysetKey::new(key.name, Expr::col(Alias::new(key.alias.as_str())), kind)
        .desc(key.desc)
        .nulls_last()
}

/// A group's values of the order's keys.
fn position(order: &[OrderKey], row: &TotalsRow) -> Vec<KeyValue> {
    order
        .iter()
        .map(|key| match key.key {
            SortKey::Measure(Measure::ValueUsd) => row.value_usd.into(),
            SortKey::Measure(Measure::Quantity) => row.quantity.into(),
            SortKey::Measure(Measure::NetWeightKg) => row.net_weight_kg.into(),
            SortKey::Measure(Measure::RecordCount) => row.record_count.into(),
            SortKey::Dimension(d) => row.key(d).map(str::to_owned).into(),
        })
        .collect()
}
