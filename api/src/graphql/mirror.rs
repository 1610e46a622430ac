//! `mirrorDiscrepancies`: each nation's reported exports against its partner's reported
//! imports (`analysis::mirror`). Both sides are summed in the database over the caller's rows
//! only, so a partner's pairs are built from nothing it could not list itself.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use entities::trade_record::Column;
use sea_orm::{ColumnTrait, Condition};

use super::filters::{RecordFilter, countries, read_if_set};
use super::guard::{principal, require_readable};
use super::keyset::{KeyKind, KeyValue, Keyset, KeysetConnection, SortKey};
use super::pagination::CONNECTION_COST;
use super::scalars::Date;
use super::scope;
use super::trade::TradeRecordFilter;
use crate::analysis::mirror::{self, MirrorPair, PairKey, Side, SideTotals};
use crate::analysis::totals::{self, Dimension, Grouping};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Most per-side sums one request may match: past this the filter is too wide to be a
/// question anybody reads the answer to.
const MAX_SUMS: u64 = 200_000;

/// Which trade the pairs compare.
#[derive(InputObject, Default)]
pub struct MirrorFilter {
    /// Pairs in which one of these nations (ISO alpha-2) is the exporter or the importer.
    pub nation: Option<Vec<String>>,
    /// HS code starts with these digits.
    pub hs_code_prefix: Option<String>,
    pub declaration_date_from: Option<Date>,
    pub declaration_date_to: Option<Date>,
}

impl RecordFilter for MirrorFilter {
    const RECORD: &'static str = "TradeRecord";

    fn fields_read(&self) -> Vec<&'static str> {
        let mut read = read_if_set(&[
            (self.nation.is_some(), "reportingCountry"),
            (self.nation.is_some(), "partnerCountry"),
            (self.hs_code_prefix.is_some(), "hsCode"),
        ]);
        if self.declaration_date_from.is_some() || self.declaration_date_to.is_some() {
            read.push("declarationDate");
        }
        read
    }

    fn condition(&self) -> ApiResult<Condition> {
        let common = TradeRecordFilter {
            hs_code_prefix: self.hs_code_prefix.clone(),
            declaration_date_from: self.declaration_date_from,
            declaration_date_to: self.declaration_date_to,
            ..TradeRecordFilter::default()
        };
        let mut c = common.condition()?;
        if self.nation.is_some() {
            let either = countries(
                Condition::any(),
                Column::ReportingCountry,
                self.nation.as_ref(),
                "nation",
            )?;
            c = c.add(countries(
                either,
                Column::PartnerCountry,
                self.nation.as_ref(),
                "nation",
            )?);
        }
        Ok(c)
    }
}

impl super::totals::RollupFilter for MirrorFilter {
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

/// The period sums are compared over.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MirrorPeriod {
    Month,
    #[default]
    Year,
}

/// One side's sums for a pair.
#[derive(SimpleObject)]
pub struct MirrorSide {
    pub value_usd: f64,
    /// Present when the side's records with a unit all share one.
    pub quantity: Option<f64>,
    pub quantity_unit: Option<String>,
    pub net_weight_kg: Option<f64>,
    pub record_count: i64,
}

impl From<SideTotals> for MirrorSide {
    fn from(s: SideTotals) -> Self {
        MirrorSide {
            value_usd: s.value_usd,
            quantity: s.quantity,
            quantity_unit: s.quantity_unit,
            net_weight_kg: s.net_weight_kg,
            record_count: s.record_count,
        }
    }
}

/// What `exporterCountry` reports exporting to `importerCountry` against what the importer
/// reports receiving, for one HS subheading and period.
#[derive(SimpleObject)]
pub struct MirrorDiscrepancy {
    pub exporter_country: String,
    pub importer_country: String,
    /// HS subheading (6 digits).
    pub hs_code: String,
    /// `YYYY` or `YYYY-MM`.
    pub period: String,
    /// The exporter's export records (FOB); null when it reported none.
    pub exports: Option<MirrorSide>,
    /// The importer's import records (CIF); null when it reported none.
    pub imports: Option<MirrorSide>,
    /// The CIF/FOB allowance applied (0.1 = imports may exceed exports by 10 %).
    pub allowance: f64,
    /// Import value minus export value (a missing side counts as zero).
    pub value_gap_usd: f64,
    /// Export value × (1 + allowance): the most the imports may show before it counts.
    pub expected_import_max_usd: f64,
    /// The gap the allowance does not explain: above zero when imports exceed the allowance,
    /// below zero when imports fall short of exports.
    pub unexplained_usd: f64,
    /// Import minus export quantity, when both sides have one in the same unit.
    pub quantity_gap: Option<f64>,
    pub net_weight_gap_kg: Option<f64>,
}

impl From<MirrorPair> for MirrorDiscrepancy {
    fn from(p: MirrorPair) -> Self {
        MirrorDiscrepancy {
            exporter_country: p.key.exporter,
            importer_country: p.key.importer,
            hs_code: p.key.hs6,
            period: p.key.period,
            exports: p.export.map(MirrorSide::from),
            imports: p.import.map(MirrorSide::from),
            allowance: p.allowance,
            value_gap_usd: p.value_gap_usd,
            expected_import_max_usd: p.expected_import_max_usd,
            unexplained_usd: p.unexplained_usd,
            quantity_gap: p.quantity_gap,
            net_weight_gap_kg: p.net_weight_gap_kg,
        }
    }
}

#[derive(Default)]
pub struct MirrorQuery;

#[Object]
impl MirrorQuery {
    /// Pairs where the importer's reported value is outside [exports, exports × (1 +
    /// allowance)], or only one side reports the flow; the largest unexplained amount (either
    /// sign) first, ties by exporter, importer, HS6 and period.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn mirror_discrepancies(
        &self,
        ctx: &Context<'_>,
        filter: Option<MirrorFilter>,
        #[graphql(desc = "CIF/FOB allowance, 0 to 1; default 0.1 (10 %).")] allowance: Option<f64>,
        #[graphql(desc = "Default YEAR.")] period: Option<MirrorPeriod>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<MirrorDiscrepancy>>> {
        let state = ctx.data::<AppState>()?;
        let page = Keyset::new("mirrorDiscrepancies", pair_keys()).page(
            &state.cursors,
            first,
            after.as_deref(),
        )?;
        let allowance = allowance.unwrap_or(mirror::DEFAULT_ALLOWANCE);
        if !(0.0..=1.0).contains(&allowance) {
            return Err(ApiError::bad_input("allowance must be between 0 and 1").into());
        }
        let filter = filter.unwrap_or_default();
        require_readable(ctx, MirrorFilter::RECORD, &filter.fields_read())?;
        require_readable(ctx, "MirrorDiscrepancy", PAIR_KEY_FIELDS)?;
        let perms = &principal(ctx)?.permissions;
        let period_dimension = match period.unwrap_or_default() {
            MirrorPeriod::Month => Dimension::Month,
            MirrorPeriod::Year => Dimension::Year,
        };
        let grouping = Grouping::new(
            vec![
                Dimension::Direction,
                Dimension::ReportingCountry,
                Dimension::PartnerCountry,
                Dimension::Hs6,
                period_dimension,
            ],
            Vec::new(),
        )
        .map_err(|e| ApiError::Internal(e.into()))?;
        let condition = filter
            .condition()?
            .add(Column::PartnerCountry.is_not_null())
            .add(scope::trade(perms));
        let source = super::totals::source(&filter, &grouping, perms);
        let rows = totals::run(
            &state.db,
            &grouping.all_sums(
                state.db.get_database_backend(),
                source,
                condition,
                MAX_SUMS + 1,
            ),
        )
        .await
        .map_err(ApiError::from)?;
        if rows.len() as u64 > MAX_SUMS {
            return Err(ApiError::bad_input(
                "the filter covers too many pairs: narrow it by nation, HS code or dates",
            )
            .into());
        }
        let mut sums = Vec::with_capacity(rows.len());
        for row in &rows {
            let t = grouping.decode_sums(row).map_err(ApiError::from)?;
            let key = |d| t.key(d).unwrap_or_default().to_owned();
            let (reporter, partner) = (
                key(Dimension::ReportingCountry),
                key(Dimension::PartnerCountry),
            );
            let (side, exporter, importer) = if key(Dimension::Direction) == "EXPORT" {
                (Side::Export, reporter, partner)
            } else {
                (Side::Import, partner, reporter)
            };
            let pair_key = PairKey {
                exporter,
                importer,
                hs6: key(Dimension::Hs6),
                period: key(period_dimension),
            };
            let totals = SideTotals {
                value_usd: t.value_usd,
                quantity: t.quantity,
                quantity_unit: t.quantity_unit,
                net_weight_kg: t.net_weight_kg,
                record_count: t.record_count,
            };
            sums.push((side, pair_key, totals));
        }
        let pairs = mirror::match_sides(sums, allowance);
        let total = pairs.len() as u64;
        let edges = page
            .window(pairs, pair_position)
            .into_iter()
            .map(|(cursor, pair)| (cursor, MirrorDiscrepancy::from(pair)))
            .collect();
        Ok(Some(page.connection(edges, Some(total))))
    }
}

/// The served order (`match_sides` leaves it to these keys): the largest unexplained amount
/// (either sign) first, then the cell, which is unique, its text in byte order.
/// The `MirrorDiscrepancy` fields `pair_keys` order by. A cursor carries their values and the
/// order ranks them, so, like a table's sort keys, they must be readable.
const PAIR_KEY_FIELDS: &[&str] = &[
    "unexplainedUsd",
    "exporterCountry",
    "importerCountry",
    "hsCode",
    "period",
];

fn pair_keys() -> Vec<SortKey> {
    vec![
        SortKey::computed("unexplainedAbs", KeyKind::Float).desc(true),
        SortKey::computed("exporter", KeyKind::Text),
        SortKey::computed("importer", KeyKind::Text),
        SortKey::computed("hs6", KeyKind::Text),
        SortKey::computed("period", KeyKind::Text),
    ]
}

fn pair_position(pair: &MirrorPair) -> Vec<KeyValue> {
    let key = &pair.key;
    vec![
        pair.unexplained_usd.abs().into(),
        key.exporter.clone().into(),
        key.importer.clone().into(),
        key.hs6.clone().into(),
        key.period.clone().into(),
    ]
}
