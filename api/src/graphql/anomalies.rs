//! `priceAnomalies` and `valueMovedTotals`: records priced abnormally against their peers,
//! each with the numbers that flagged it. The statistics live in `analysis`; this module
//! checks arguments, applies the field guard's filter rule and the row scope, and shapes the
//! answer.

use async_graphql::{Context, Enum, Object, SimpleObject};

use super::filters::RecordFilter;
use super::guard::{principal, require_readable};
use super::keyset::{
    KeyKind, KeyValue, Keyset, KeysetConnection, SortKey, wants_page, wants_total,
};
use super::pagination::CONNECTION_COST;
use super::trade::{TradeRecord, TradeRecordFilter};
use crate::analysis::anomalies::{self, Hit, Options, Window};
use crate::analysis::peers::{self, Measure, Method, Rule, Side};
use crate::analysis::value_moved::{Group, GroupTotal};
use crate::error::ApiError;
use crate::state::AppState;

/// What a price is measured in.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceMeasure {
    /// Declared value (USD) per unit of the declared quantity unit; peers share the unit.
    UnitPrice,
    /// Declared value (USD) per kg of net weight.
    ValuePerKg,
}

impl From<PriceMeasure> for Measure {
    fn from(m: PriceMeasure) -> Self {
        match m {
            PriceMeasure::UnitPrice => Measure::UnitPrice,
            PriceMeasure::ValuePerKg => Measure::ValuePerKg,
        }
    }
}

/// How the fences around the peers' log prices are drawn.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceMethod {
    /// Tukey: [Q1 − k·IQR, Q3 + k·IQR] of the log price.
    Iqr,
    /// median ± k·1.4826·MAD of the log price (a robust z-score of k).
    Mad,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnomalyDirection {
    /// Above the upper fence (over-invoiced, for an import).
    Over,
    /// Below the lower fence (under-invoiced, for an import).
    Under,
}

/// One record outside its peers' fences.
pub struct PriceAnomaly {
    hit: Hit,
    measure: PriceMeasure,
}

#[Object]
impl PriceAnomaly {
    async fn record(&self) -> TradeRecord {
        TradeRecord::from(self.hit.record.clone())
    }
    async fn measure(&self) -> PriceMeasure {
        self.measure
    }
    /// The record's price: USD per quantity unit, or per kg.
    async fn price(&self) -> f64 {
        self.hit.price
    }
    /// Records in the peer group (same HS code, unit, year; and origin if asked).
    async fn peer_count(&self) -> i64 {
        i64::try_from(self.hit.profile.peer_count).unwrap_or(i64::MAX)
    }
    /// The peers' median price.
    async fn peer_median(&self) -> f64 {
        self.hit.finding.median
    }
    /// The lower fence, as a price.
    async fn lower_bound(&self) -> f64 {
        self.hit.finding.lower
    }
    /// The upper fence, as a price.
    async fn upper_bound(&self) -> f64 {
        self.hit.finding.upper
    }
    /// Price over the peer median.
    async fn ratio(&self) -> f64 {
        self.hit.finding.ratio
    }
    /// Distance from the peer median in robust standard deviations of the log price.
    async fn score(&self) -> f64 {
        self.hit.finding.score
    }
    async fn direction(&self) -> AnomalyDirection {
        match self.hit.finding.side {
            Side::Over => AnomalyDirection::Over,
            Side::Under => AnomalyDirection::Under,
        }
    }
    /// Implied value moved (Pak & Zdanowicz): (price − crossed fence) × quantity (or kg), in
    /// USD; positive over the upper fence, negative under the lower one.
    async fn value_moved(&self) -> f64 {
        self.hit.value_moved()
    }
}

/// What `valueMovedTotals` sums by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueMovedGroup {
    /// Importer id, else importer name (TRADE_PII).
    Importer,
    CountryOfOrigin,
    /// The first two digits of the HS code.
    HsChapter,
}

impl ValueMovedGroup {
    fn fields_read(self) -> &'static [&'static str] {
        match self {
            Self::Importer => &["importerId", "importerName"],
            Self::CountryOfOrigin => &["countryOfOrigin"],
            Self::HsChapter => &["hsCode"],
        }
    }
}

impl From<ValueMovedGroup> for Group {
    fn from(g: ValueMovedGroup) -> Self {
        match g {
            ValueMovedGroup::Importer => Group::Importer,
            ValueMovedGroup::CountryOfOrigin => Group::CountryOfOrigin,
            ValueMovedGroup::HsChapter => Group::HsChapter,
        }
    }
}

/// The implied value moved by the anomalies of one group.
#[derive(SimpleObject)]
pub struct ValueMovedTotal {
    /// The group's value (importer id or name, country code, HS chapter); empty if unknown.
    pub key: String,
    pub anomalies: i64,
    /// Sum of `valueMoved` (over-invoicing minus under-invoicing).
    pub value_moved: f64,
    /// Sum of `valueMoved` over the upper fences.
    pub over_invoiced: f64,
    /// Sum of |`valueMoved`| under the lower fences.
    pub under_invoiced: f64,
}

impl From<GroupTotal> for ValueMovedTotal {
    fn from(t: GroupTotal) -> Self {
        ValueMovedTotal {
            key: t.key,
            anomalies: t.anomalies,
            value_moved: t.value_moved,
            over_invoiced: t.over_invoiced,
            under_invoiced: t.under_invoiced,
        }
    }
}

/// Checks the shared arguments and the filter's fields; returns the options and SQL filter.
#[expect(
    clippy::too_many_arguments,
    reason = "the GraphQL arguments, one by one"
)]
async fn prepare(
    ctx: &Context<'_>,
    filter: Option<TradeRecordFilter>,
    extra_reads: &[&'static str],
    measure: PriceMeasure,
    method: FenceMethod,
    k: f64,
    min_peers: i32,
    min_ratio: f64,
    same_origin: bool,
) -> async_graphql::Result<(Options, sea_orm::Condition)> {
    let mut filter = filter.unwrap_or_default();
    let mut read = filter.fields_read();
    read.extend(extra_reads);
    // The ranking compares these: a role must be able to read them to be shown it.
    read.extend(["declaredValueUsd", "hsCode", "declarationDate"]);
    read.push(match measure {
        PriceMeasure::UnitPrice => "quantity",
        PriceMeasure::ValuePerKg => "netWeightKg",
    });
    if same_origin {
        read.push("countryOfOrigin");
    }
    require_readable(ctx, TradeRecordFilter::RECORD, &read)?;
    filter.narrow(&ctx.data::<AppState>()?.db).await?;
    let rule = Rule {
        method: match method {
            FenceMethod::Iqr => Method::Iqr,
            FenceMethod::Mad => Method::Mad,
        },
        k,
        min_peers: u64::try_from(min_peers).unwrap_or(0),
        min_ratio,
    };
    rule.validate().map_err(ApiError::bad_input)?;
    Ok((
        Options {
            measure: measure.into(),
            rule,
            same_origin,
        },
        filter.condition()?,
    ))
}

/// `peers::DEFAULT_MIN_PEERS` as the argument's type (it is a small constant).
pub(crate) const DEFAULT_MIN_PEERS: i32 = peers::DEFAULT_MIN_PEERS as i32;

#[derive(Default)]
pub struct AnomalyQuery;

#[Object]
impl AnomalyQuery {
    /// Trade records whose price lies outside the fences of their peers (same HS code,
    /// quantity unit and year; with `sameOrigin`, also the same country of origin), highest
    /// score first. A record is flagged when it is outside the fences, its price is at least
    /// `minRatio` times (or at most 1/`minRatio` of) the peer median, and the group has at
    /// least `minPeers` records. Defaults: MAD fences with k = 4 (a robust z-score of 4), minPeers 10, minRatio 2.
    /// A nation-scoped caller's peers are only the rows it may see.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    #[expect(
        clippy::too_many_arguments,
        reason = "the GraphQL arguments, one by one"
    )]
    pub(crate) async fn price_anomalies(
        &self,
        ctx: &Context<'_>,
        filter: Option<TradeRecordFilter>,
        #[graphql(default_with = "PriceMeasure::UnitPrice")] measure: PriceMeasure,
        #[graphql(default_with = "FenceMethod::Mad")] method: FenceMethod,
        #[graphql(default_with = "peers::DEFAULT_K")] k: f64,
        #[graphql(default_with = "DEFAULT_MIN_PEERS")] min_peers: i32,
        #[graphql(default_with = "peers::DEFAULT_MIN_RATIO")] min_ratio: f64,
        #[graphql(default = false)] same_origin: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<PriceAnomaly>>> {
        let state = ctx.data::<AppState>()?;
        // `anomalies::find`'s order (score descending, then record id), which it evaluates
        // itself, in SQL or in Rust: these keys only name it for the cursors.
        let keys = vec![
            SortKey::computed("score", KeyKind::Float).desc(true),
            SortKey::computed("id", KeyKind::Int),
        ];
        let page =
            Keyset::new("priceAnomalies", keys).page(&state.cursors, first, after.as_deref())?;
        let after = match page.after() {
            None => None,
            Some([KeyValue::Float(score), KeyValue::Int(id)]) => Some((*score, *id)),
            Some(_) => {
                return Err(
                    ApiError::bad_input("after is not a cursor from this connection").into(),
                );
            }
        };
        let (options, condition) = prepare(
            ctx,
            filter,
            &[],
            measure,
            method,
            k,
            min_peers,
            min_ratio,
            same_origin,
        )
        .await?;
        let principal = principal(ctx)?;
        let (hits, total) = anomalies::find(
            &state.db,
            &principal.permissions,
            condition,
            &options,
            Some(Window {
                after,
                limit: if wants_page(ctx) { page.limit() + 1 } else { 0 },
            }),
            wants_total(ctx),
        )
        .await
        .map_err(ApiError::from)?;
        let edges = hits
            .into_iter()
            .map(|hit| {
                let cursor = page.cursor(vec![hit.rank.into(), hit.record.id.into()]);
                (cursor, PriceAnomaly { hit, measure })
            })
            .collect();
        Ok(Some(page.connection(edges, total)))
    }

    /// The implied value moved by `priceAnomalies` (same arguments and defaults), summed by
    /// importer, country of origin or HS chapter. Each total is one delivered record.
    #[expect(
        clippy::too_many_arguments,
        reason = "the GraphQL arguments, one by one"
    )]
    async fn value_moved_totals(
        &self,
        ctx: &Context<'_>,
        group_by: ValueMovedGroup,
        filter: Option<TradeRecordFilter>,
        #[graphql(default_with = "PriceMeasure::UnitPrice")] measure: PriceMeasure,
        #[graphql(default_with = "FenceMethod::Mad")] method: FenceMethod,
        #[graphql(default_with = "peers::DEFAULT_K")] k: f64,
        #[graphql(default_with = "DEFAULT_MIN_PEERS")] min_peers: i32,
        #[graphql(default_with = "peers::DEFAULT_MIN_RATIO")] min_ratio: f64,
        #[graphql(default = false)] same_origin: bool,
    ) -> async_graphql::Result<Vec<ValueMovedTotal>> {
        let state = ctx.data::<AppState>()?;
        let (options, condition) = prepare(
            ctx,
            filter,
            group_by.fields_read(),
            measure,
            method,
            k,
            min_peers,
            min_ratio,
            same_origin,
        )
        .await?;
        let principal = principal(ctx)?;
        let totals = anomalies::value_moved(
            &state.db,
            &principal.permissions,
            condition,
            &options,
            group_by.into(),
        )
        .await
        .map_err(ApiError::from)?;
        Ok(totals.into_iter().map(ValueMovedTotal::from).collect())
    }
}
