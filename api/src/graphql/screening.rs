//! `screen` and `screenMany`: names against the SDN list and TECS subjects (`crate::screening`).
//!
//! A hit's source decides who may have it: the index is searched only over the sources the
//! caller's role may read (SDN hits need SDN, TECS hits LAW_ENFORCEMENT), so a hit the caller
//! could not read is never produced; `sdnEntry` and `subjectRecord` resolve through the same
//! guarded lookups as `node`. Hits are delivered records (`delivery::RECORD_LISTS`).

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};

use super::guard::principal;
use super::records_by_id::{RecordsById, SdnRow, SubjectRow};
use super::scalars::Date;
use super::sdn::SdnEntry;
use super::subjects::SubjectRecord;
use crate::error::{ApiError, ApiResult};
use crate::freshness::Freshness;
use crate::policy::{Category, PermissionSet};
use crate::screening::index::{self, Hit, Index, Kind, Source};
use crate::screening::score::{Facts, THRESHOLD};
use crate::state::AppState;

/// Inputs per `screenMany` call.
pub const MAX_INPUTS: usize = 1000;
/// Hits per screened name.
const MAX_HITS: usize = 50;
const DEFAULT_HITS: usize = 10;
const MAX_NAME: usize = 300;
const MAX_COUNTRY: usize = 100;
const MAX_IDENTIFIERS: usize = 50;
const MAX_IDENTIFIER: usize = 100;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartyKind {
    Person,
    Organization,
    Vessel,
    Aircraft,
}

impl From<PartyKind> for Kind {
    fn from(k: PartyKind) -> Kind {
        match k {
            PartyKind::Person => Kind::Person,
            PartyKind::Organization => Kind::Organization,
            PartyKind::Vessel => Kind::Vessel,
            PartyKind::Aircraft => Kind::Aircraft,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScreeningSource {
    /// OFAC's SDN list.
    Sdn,
    /// TECS subject records.
    Tecs,
}

/// A party to screen. Facts besides the name raise or lower a hit's score and are shown.
#[derive(InputObject, Clone, Debug)]
pub struct ScreeningInput {
    pub name: String,
    pub kind: Option<PartyKind>,
    /// `YYYY-MM-DD`, `YYYY-MM` or `YYYY`.
    pub date_of_birth: Option<String>,
    /// Nationality or country of registration (name or ISO code), at most 100 characters.
    pub country: Option<String>,
    /// Passport, TIN, IMO, aircraft tail numbers … (at most 50, of at most 100 characters).
    pub identifiers: Option<Vec<String>>,
}

/// The input as screened, echoed so that `screenMany` results can be matched to inputs.
#[derive(SimpleObject, Clone, Debug)]
pub struct ScreenedParty {
    pub name: String,
    pub kind: Option<PartyKind>,
    pub date_of_birth: Option<String>,
    pub country: Option<String>,
    pub identifiers: Vec<String>,
}

/// How old a data set used for screening is.
#[derive(SimpleObject, Clone, Debug)]
pub struct DataFreshness {
    /// As-of date of the newest load held; null when nothing is loaded.
    pub as_of: Option<Date>,
    /// Older than the refresh cadence (SDN monthly, TECS quarterly), or nothing loaded.
    pub stale: bool,
}

impl From<Freshness> for DataFreshness {
    fn from(f: Freshness) -> Self {
        DataFreshness {
            as_of: f.as_of.map(Date),
            stale: f.stale,
        }
    }
}

/// One possible match of a screened name.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ScreeningHit {
    #[graphql(skip)]
    pub(crate) row_id: i64,
    pub source: ScreeningSource,
    /// 0 to 1: the name score moved by the evidence.
    pub score: f64,
    /// The listed name (primary, alias or former name) that matched best.
    pub matched_name: String,
    /// Why: the name score and each piece of evidence with its effect.
    pub explanation: String,
}

#[ComplexObject]
impl ScreeningHit {
    /// The SDN entry, for an SDN hit.
    async fn sdn_entry(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SdnEntry>> {
        if self.source != ScreeningSource::Sdn {
            return Ok(None);
        }
        let loader = ctx.data::<DataLoader<RecordsById>>()?;
        loader.load_one(SdnRow(self.row_id)).await
    }

    /// The TECS subject record (with its case status), for a TECS hit.
    async fn subject_record(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<SubjectRecord>> {
        if self.source != ScreeningSource::Tecs {
            return Ok(None);
        }
        let loader = ctx.data::<DataLoader<RecordsById>>()?;
        loader.load_one(SubjectRow(self.row_id)).await
    }
}

impl From<Hit> for ScreeningHit {
    fn from(h: Hit) -> Self {
        ScreeningHit {
            row_id: h.row_id,
            source: match h.source {
                Source::Sdn => ScreeningSource::Sdn,
                Source::Tecs => ScreeningSource::Tecs,
            },
            score: (h.score * 1000.0).round() / 1000.0,
            matched_name: h.matched_name,
            explanation: h.explanation,
        }
    }
}

/// The answer for one input.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ScreeningResult {
    pub input: ScreenedParty,
    /// Best first, at most `limit`.
    pub hits: Vec<ScreeningHit>,
    #[graphql(skip)]
    sdn_freshness: DataFreshness,
    #[graphql(skip)]
    tecs_freshness: DataFreshness,
}

#[ComplexObject]
impl ScreeningResult {
    /// How old the SDN list screened against is.
    async fn sdn_data(&self) -> DataFreshness {
        self.sdn_freshness.clone()
    }

    /// How old the TECS subjects screened against are. Law-enforcement data: null, with a
    /// `FORBIDDEN_FIELD` error, for a role that may not read it.
    async fn tecs_data(&self) -> Option<DataFreshness> {
        Some(self.tecs_freshness.clone())
    }
}

/// The sources this caller may receive hits from.
pub fn readable_sources(perms: &PermissionSet) -> Vec<Source> {
    let mut out = Vec::new();
    if perms.allows(Category::Sdn) {
        out.push(Source::Sdn);
    }
    if perms.allows(Category::LawEnforcement) {
        out.push(Source::Tecs);
    }
    out
}

/// Checks a minimum score and a hit limit given by a caller.
pub fn options(min_score: Option<f64>, limit: Option<i32>) -> ApiResult<(f64, usize)> {
    let min = min_score.unwrap_or(THRESHOLD);
    if !(0.5..=1.0).contains(&min) {
        return Err(ApiError::bad_input("minScore must be between 0.5 and 1"));
    }
    let limit = match limit {
        None => DEFAULT_HITS,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_HITS).contains(n))
            .ok_or_else(|| ApiError::bad_input(format!("limit must be 1 to {MAX_HITS}")))?,
    };
    Ok((min, limit))
}

fn query_of(input: &ScreeningInput) -> ApiResult<index::Query> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad_input(format!(
            "name must be 1 to {MAX_NAME} characters"
        )));
    }
    // Evidence beside the name, bounded like it: unbounded, one request could make every
    // candidate compare thousands of identifiers.
    if input
        .country
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COUNTRY)
    {
        return Err(ApiError::bad_input(format!(
            "country must be at most {MAX_COUNTRY} characters"
        )));
    }
    if let Some(ids) = &input.identifiers
        && (ids.len() > MAX_IDENTIFIERS || ids.iter().any(|i| i.chars().count() > MAX_IDENTIFIER))
    {
        return Err(ApiError::bad_input(format!(
            "identifiers takes at most {MAX_IDENTIFIERS} values of at most {MAX_IDENTIFIER} \
             characters"
        )));
    }
    if let Some(d) = &input.date_of_birth
        && crate::screening::score::parse_date(d).is_none()
    {
        return Err(ApiError::bad_input(
            "dateOfBirth must be YYYY-MM-DD, YYYY-MM or YYYY",
        ));
    }
    Ok(index::Query {
        name: name.to_owned(),
        kind: input.kind.map(Kind::from),
        facts: Facts {
            dates_of_birth: input.date_of_birth.iter().cloned().collect(),
            identifiers: input.identifiers.clone().unwrap_or_default(),
            countries: input.country.iter().cloned().collect(),
        },
    })
}

/// Searches `index` for each query, on blocking threads (one per core, in order): a thousand
/// names take CPU time that must not stall the async workers.
pub async fn search_all(
    index: Arc<Index>,
    queries: Vec<index::Query>,
    sources: Vec<Source>,
    min_score: f64,
    limit: usize,
) -> ApiResult<Vec<Vec<Hit>>> {
    tokio::task::spawn_blocking(move || {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = queries.len().div_ceil(cores).max(16);
        if queries.len() <= chunk {
            // One chunk: a thread of its own would cost more than it saves.
            return queries
                .iter()
                .map(|q| index.search(q, &sources, min_score, limit))
                .collect();
        }
        std::thread::scope(|scope| {
            let workers: Vec<_> = queries
                .chunks(chunk)
                .map(|part| {
                    let (index, sources) = (&index, &sources);
                    scope.spawn(move || {
                        part.iter()
                            .map(|q| index.search(q, sources, min_score, limit))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect::<Vec<_>>()
                .concat()
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("screening: {e}").into()))
}

async fn screen_inputs(
    ctx: &Context<'_>,
    inputs: Vec<ScreeningInput>,
    min_score: Option<f64>,
    limit: Option<i32>,
) -> async_graphql::Result<Vec<ScreeningResult>> {
    let state = ctx.data::<AppState>()?;
    let (min_score, limit) = options(min_score, limit)?;
    let queries = inputs.iter().map(query_of).collect::<ApiResult<Vec<_>>>()?;
    let sources = readable_sources(&principal(ctx)?.permissions);
    let (sdn, tecs) = state.screening.freshness();
    let (sdn_freshness, tecs_freshness) = (DataFreshness::from(sdn), DataFreshness::from(tecs));
    let found = search_all(state.screening.index(), queries, sources, min_score, limit).await?;
    Ok(inputs
        .into_iter()
        .zip(found)
        .map(|(input, hits)| ScreeningResult {
            input: ScreenedParty {
                name: input.name,
                kind: input.kind,
                date_of_birth: input.date_of_birth,
                country: input.country,
                identifiers: input.identifiers.unwrap_or_default(),
            },
            hits: hits.into_iter().map(ScreeningHit::from).collect(),
            sdn_freshness: sdn_freshness.clone(),
            tecs_freshness: tecs_freshness.clone(),
        })
        .collect())
}

/// Which party of a trade record a hit is for.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TradeParty {
    Importer,
    Exporter,
    Manufacturer,
}

/// A screening hit for one party of a trade record.
#[derive(SimpleObject, Clone, Debug)]
pub struct PartyHit {
    pub party: TradeParty,
    pub hit: ScreeningHit,
}

/// Screens the named parties of one record or totals row (`partyHits`), best first.
pub async fn party_hits(
    ctx: &Context<'_>,
    parties: Vec<(TradeParty, Option<String>)>,
    min_score: Option<f64>,
) -> async_graphql::Result<Vec<PartyHit>> {
    let state = ctx.data::<AppState>()?;
    let (min_score, limit) = options(min_score, None)?;
    let named: Vec<(TradeParty, String)> = parties
        .into_iter()
        .filter_map(|(p, n)| n.filter(|n| !n.trim().is_empty()).map(|n| (p, n)))
        .collect();
    let queries = named
        .iter()
        .map(|(_, name)| index::Query {
            name: name.clone(),
            kind: None,
            facts: Facts::default(),
        })
        .collect();
    let sources = readable_sources(&principal(ctx)?.permissions);
    let found = search_all(state.screening.index(), queries, sources, min_score, limit).await?;
    let mut out: Vec<PartyHit> = named
        .into_iter()
        .zip(found)
        .flat_map(|((party, _), hits)| {
            hits.into_iter().map(move |h| PartyHit {
                party,
                hit: h.into(),
            })
        })
        .collect();
    out.sort_by(|a, b| b.hit.score.total_cmp(&a.hit.score));
    // Several names of one party (an id's spellings) may hit the same entry: keep the best.
    let mut seen = HashSet::new();
    out.retain(|h| seen.insert((h.party, h.hit.source, h.hit.row_id)));
    Ok(out)
}

#[derive(Default)]
pub struct ScreeningQuery;

#[Object]
impl ScreeningQuery {
    /// Screens one party against the SDN list and TECS subjects (the sources your role may
    /// read). `minScore` defaults to the shipped threshold.
    async fn screen(
        &self,
        ctx: &Context<'_>,
        input: ScreeningInput,
        min_score: Option<f64>,
        limit: Option<i32>,
    ) -> async_graphql::Result<ScreeningResult> {
        let mut results = screen_inputs(ctx, vec![input], min_score, limit).await?;
        results
            .pop()
            .ok_or_else(|| ApiError::Internal("screening returned nothing".into()).into())
    }

    /// Screens up to 1,000 parties; one result per input, in order.
    async fn screen_many(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<ScreeningInput>,
        min_score: Option<f64>,
        limit: Option<i32>,
    ) -> async_graphql::Result<Vec<ScreeningResult>> {
        if inputs.len() > MAX_INPUTS {
            return Err(ApiError::bad_input(format!(
                "screenMany takes at most {MAX_INPUTS} inputs, got {}",
                inputs.len()
            ))
            .into());
        }
        screen_inputs(ctx, inputs, min_score, limit).await
    }
}
