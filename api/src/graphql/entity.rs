//! `entity`: one importer seen from every side — its trade totals, price anomalies, red flags,
//! FinCEN activity and screening hits. Each part is its own field with its own category
//! (`policies/fields.toml`) and delegates to the query that already answers it, so the field
//! guard, row scopes and record counting are theirs: a role refused one part still gets the
//! others.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Object};

use super::anomalies::{AnomalyQuery, DEFAULT_MIN_PEERS, FenceMethod, PriceAnomaly, PriceMeasure};
use super::financial::{FinancialTransaction, Subject};
use super::keyset::KeysetConnection;
use super::pagination::CONNECTION_COST;
use super::records_by_id::RecordsById;
use super::red_flags::{RedFlag, RedFlagKind, RedFlagQuery};
use super::screening::{self, ScreeningHit, TradeParty};
use super::totals::{TotalsQuery, TradeTotal};
use super::trade::TradeRecordFilter;
use crate::analysis::peers;
use crate::analysis::red_flags::Thresholds;
use crate::analysis::totals::Dimension;
use crate::error::ApiError;

/// How the view was asked for: exactly one of an importer id or a name.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Id(String),
    Name(String),
}

impl Key {
    fn new(importer_id: Option<String>, name: Option<String>) -> Result<Self, ApiError> {
        let trimmed = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        match (importer_id.and_then(trimmed), name.and_then(trimmed)) {
            (Some(id), None) => Ok(Key::Id(id)),
            (None, Some(name)) => Ok(Key::Name(name)),
            _ => Err(ApiError::bad_input(
                "entity takes exactly one non-empty argument: importerId or name",
            )),
        }
    }

    /// The importer's trade records: by id, or by a case-insensitive substring of the name.
    fn filter(&self) -> TradeRecordFilter {
        match self {
            Key::Id(id) => TradeRecordFilter {
                importer_id: Some(id.clone()),
                ..Default::default()
            },
            Key::Name(name) => TradeRecordFilter {
                importer_name_contains: Some(name.clone()),
                ..Default::default()
            },
        }
    }
}

/// Most importer names screened for an entity asked for by id.
const NAMES_SCREENED: i32 = 5;

/// One importer (asked for by id or by name) and what the caller's role may see of it.
pub struct EntityView {
    key: Key,
}

#[Object]
impl EntityView {
    async fn importer_id(&self) -> Option<&str> {
        match &self.key {
            Key::Id(id) => Some(id),
            Key::Name(_) => None,
        }
    }

    async fn name(&self) -> Option<&str> {
        match &self.key {
            Key::Id(_) => None,
            Key::Name(name) => Some(name),
        }
    }

    /// The importer's trade totals by HS chapter, country of origin and year (as
    /// `tradeTotals`), largest value first, over the caller's rows only.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn trade_totals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<TradeTotal>>> {
        TotalsQuery
            .trade_totals(
                ctx,
                vec![Dimension::Hs2, Dimension::CountryOfOrigin, Dimension::Year],
                Some(self.key.filter()),
                None,
                first,
                after,
            )
            .await
    }

    /// The importer's records priced abnormally against their peers (as `priceAnomalies`
    /// with its defaults; the peers are all the caller's rows, not only this importer's).
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn price_anomalies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "PriceMeasure::UnitPrice")] measure: PriceMeasure,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<PriceAnomaly>>> {
        AnomalyQuery
            .price_anomalies(
                ctx,
                Some(self.key.filter()),
                measure,
                FenceMethod::Mad,
                peers::DEFAULT_K,
                DEFAULT_MIN_PEERS,
                peers::DEFAULT_MIN_RATIO,
                false,
                first,
                after,
            )
            .await
    }

    /// Red flags among the importer's records (as `redFlags` with its default thresholds).
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    async fn red_flags(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<RedFlagKind>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<RedFlag>>> {
        let t = Thresholds::default();
        RedFlagQuery
            .red_flags(
                ctx,
                Some(self.key.filter()),
                kinds,
                None,
                t.round_unit,
                t.round_min_value,
                i32::try_from(t.new_chapter_after_days).unwrap_or(i32::MAX),
                i32::try_from(t.benford_min_sample).unwrap_or(i32::MAX),
                t.benford_max_mad,
                first,
                after,
            )
            .await
    }

    /// FinCEN reports whose subject is this importer: by TIN for an importer id, by exact
    /// name for a name (as `TradeRecord.linkedFinancialTransactions`).
    async fn financial_transactions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<FinancialTransaction>>> {
        let subject = match &self.key {
            Key::Id(id) => Subject::Tin(id.clone()),
            Key::Name(name) => Subject::Name(name.clone()),
        };
        let loader = ctx.data::<DataLoader<RecordsById>>()?;
        Ok(Some(loader.load_one(subject).await?.unwrap_or_default()))
    }

    /// Screening hits (from the sources your role may read), best first, for the name asked
    /// for, or for an importer id, for the names its records in your scope carry.
    async fn screening_hits(
        &self,
        ctx: &Context<'_>,
        min_score: Option<f64>,
    ) -> async_graphql::Result<Option<Vec<ScreeningHit>>> {
        let names = match &self.key {
            Key::Name(name) => vec![name.clone()],
            Key::Id(_) => TotalsQuery
                .trade_totals(
                    ctx,
                    vec![Dimension::ImporterName],
                    Some(self.key.filter()),
                    None,
                    Some(NAMES_SCREENED),
                    None,
                )
                .await?
                .map(|c| {
                    c.edges
                        .into_iter()
                        .filter_map(|e| e.node.importer_name)
                        .collect()
                })
                .unwrap_or_default(),
        };
        let parties = names
            .into_iter()
            .map(|n| (TradeParty::Importer, Some(n)))
            .collect();
        let hits = screening::party_hits(ctx, parties, min_score).await?;
        Ok(Some(hits.into_iter().map(|h| h.hit).collect()))
    }
}

#[derive(Default)]
pub struct EntityQuery;

#[Object]
impl EntityQuery {
    /// One importer by `importerId` or by `name` (exactly one): each part of the view is
    /// resolved under its own data category, so a role sees the parts it may read.
    async fn entity(
        &self,
        importer_id: Option<String>,
        name: Option<String>,
    ) -> async_graphql::Result<EntityView> {
        Ok(EntityView {
            key: Key::new(importer_id, name)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_key() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(Key::new(s("X1"), None).ok(), Some(Key::Id("X1".into())));
        assert_eq!(
            Key::new(None, s(" Acme ")).ok(),
            Some(Key::Name("Acme".into()))
        );
        assert!(Key::new(None, None).is_err());
        assert!(Key::new(s("X1"), s("Acme")).is_err());
        assert!(Key::new(s("  "), None).is_err());
    }
}
