//! `redFlags`: facts that deserve a look, each with the numbers behind it. The detection is
//! in `analysis::red_flags` (and `analysis::anomalies` for value per kg); every query carries
//! the caller's row scope in SQL.

use async_graphql::{Context, Enum, Object, SimpleObject};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};

use super::filters::RecordFilter;
use super::guard::{principal, require_readable};
use super::keyset::{
    KeyKind, KeyValue, Keyset, KeysetConnection, KeysetPage, SortKey, wants_total,
};
use super::pagination::CONNECTION_COST;
use super::scope;
use super::trade::{TradeRecord, TradeRecordFilter};
use crate::analysis::anomalies::{self, Options};
use crate::analysis::peers::{Measure, Rule, Side};
use crate::analysis::red_flags::{self as flags, Thresholds};
use crate::error::ApiError;
use crate::state::AppState;
use entities::trade_record;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RedFlagKind {
    /// Value per kg outside the peers' fences (MAD, k = 4, minPeers 10, minRatio 2).
    ValuePerKg,
    /// A declared USD value that is a whole multiple of `roundUnit`, at least `roundMinValue`.
    RoundValue,
    /// Exported from a hub in `hubs` that is not the country of origin.
    Transshipment,
    /// An importer's records in an HS chapter it first traded `newChapterAfterDays` or more
    /// after its first record.
    NewChapter,
    /// An importer whose declared values' first digits deviate from Benford's law: MAD above
    /// `benfordMaxMad` (Nigrini: 0.006 close, 0.012 acceptable, 0.015 marginal) with at least
    /// `benfordMinSample` values.
    Benford,
}

impl RedFlagKind {
    const ALL: [RedFlagKind; 5] = [
        Self::ValuePerKg,
        Self::RoundValue,
        Self::Transshipment,
        Self::NewChapter,
        Self::Benford,
    ];

    /// The kind's place in `ALL`: flags are served kind by kind in this order.
    fn rank(self) -> i64 {
        let place = Self::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(Self::ALL.len());
        i64::try_from(place).unwrap_or(i64::MAX)
    }

    /// The `TradeRecord` fields the detection compares.
    fn fields_read(self) -> &'static [&'static str] {
        match self {
            Self::ValuePerKg => &[
                "declaredValueUsd",
                "netWeightKg",
                "hsCode",
                "declarationDate",
            ],
            Self::RoundValue => &["declaredValueUsd"],
            Self::Transshipment => &["countryOfExport", "countryOfOrigin"],
            Self::NewChapter => &["importerId", "importerName", "hsCode", "declarationDate"],
            Self::Benford => &["importerId", "importerName", "declaredValueUsd"],
        }
    }
}

/// One number behind a flag.
#[derive(SimpleObject, Clone)]
pub struct RedFlagFact {
    pub name: String,
    pub value: Option<f64>,
    pub text: Option<String>,
}

fn number(name: &str, value: f64) -> RedFlagFact {
    RedFlagFact {
        name: name.into(),
        value: Some(value),
        text: None,
    }
}

fn text(name: &str, value: impl Into<String>) -> RedFlagFact {
    RedFlagFact {
        name: name.into(),
        value: None,
        text: Some(value.into()),
    }
}

/// A flag: a record (or, for BENFORD, an importer) and the facts that raised it.
pub struct RedFlag {
    kind: RedFlagKind,
    record: Option<trade_record::Model>,
    importer: Option<String>,
    facts: Vec<RedFlagFact>,
    /// VALUE_PER_KG: the anomaly score, which orders those flags (largest first).
    score: Option<f64>,
}

impl RedFlag {
    /// The order flags are served in, and their cursors: by kind, VALUE_PER_KG by score, then
    /// by record, BENFORD (no record) by importer. The position is unique: a record is flagged
    /// once per kind, an importer once by BENFORD.
    fn keys() -> Vec<SortKey> {
        vec![
            SortKey::computed("kind", KeyKind::Int),
            SortKey::computed("score", KeyKind::Float)
                .desc(true)
                .nulls_last(),
            SortKey::computed("record", KeyKind::Int).nullable(true),
            SortKey::computed("importer", KeyKind::Text).nullable(true),
        ]
    }

    fn position(&self) -> Vec<KeyValue> {
        vec![
            self.kind.rank().into(),
            self.score.into(),
            self.record.as_ref().map(|r| r.id).into(),
            self.importer.clone().into(),
        ]
    }
}

#[Object]
impl RedFlag {
    async fn kind(&self) -> RedFlagKind {
        self.kind
    }
    /// The flagged record; null for importer-level flags (BENFORD).
    async fn record(&self) -> Option<TradeRecord> {
        self.record.clone().map(TradeRecord::from)
    }
    /// The importer (id, else name) of NEW_CHAPTER and BENFORD flags.
    async fn importer(&self) -> Option<String> {
        self.importer.clone()
    }
    /// The numbers that produced the flag.
    async fn facts(&self) -> Vec<RedFlagFact> {
        self.facts.clone()
    }
}

#[derive(Default)]
pub struct RedFlagQuery;

/// Most new (importer, chapter) pairs a `NEW_CHAPTER` statement spells out (two bound values
/// each, well within both backends' limits); past it the database finds them itself.
const PAIRS_SPELLED_AT_MOST: usize = 5_000;

/// One record-level kind's share of a page: its records after the cursor when the cursor
/// stands in this kind (none when it stands past it), at most `limit + 1`, by id; and, when
/// `totalCount` is asked, how many records it flags in all. A kind's flags are its records in
/// id order, so its first `limit + 1` after the cursor hold every one the page can take, and
/// however many records a kind flags, a page reads only those (`KeysetPage::window` merges
/// the kinds).
///
/// `sorted` orders by `id + 0`, an order no index yields, so the database finds every flagged
/// record and keeps the first ones, instead of walking the primary key and testing each row.
/// For NEW_CHAPTER the walk was a disaster: its flags are later records by definition (none in
/// an importer's first year), and the planner, expecting few new pairs, tested each row it
/// walked against the whole list of pairs (1M rows: cancelled after 16 minutes; sorted, 3.0 s).
async fn flagged_records(
    state: &AppState,
    page: &KeysetPage,
    kind: RedFlagKind,
    condition: Condition,
    counted: bool,
    sorted: bool,
) -> Result<(Vec<trade_record::Model>, u64), ApiError> {
    let rank = kind.rank();
    let mut seek = condition.clone();
    match page.after() {
        Some([KeyValue::Int(at), ..]) if *at > rank => {
            return Ok((Vec::new(), count(state, condition, counted).await?));
        }
        Some([KeyValue::Int(at), _, KeyValue::Int(record), ..]) if *at == rank => {
            seek = seek.add(trade_record::Column::Id.gt(*record));
        }
        _ if sorted && counted => return counted_page(state, page, condition).await,
        _ => {}
    }
    let total = count(state, condition, counted).await?;
    let id = Expr::col((trade_record::Entity, trade_record::Column::Id));
    let rows = trade_record::Entity::find()
        .filter(seek)
        .order_by(if sorted { id.add(0) } else { id }, Order::Asc)
        .limit(page.limit() + 1)
        .all(&state.db)
        .await?;
    Ok((rows, total))
}

/// How many records `condition` flags, when `counted` asks (else 0).
async fn count(state: &AppState, condition: Condition, counted: bool) -> Result<u64, ApiError> {
    Ok(if counted {
        trade_record::Entity::find()
            .filter(condition)
            .count(&state.db)
            .await?
    } else {
        0
    })
}

/// A sorted kind's first page and its count from one statement: the sort reads every flagged
/// record anyway, so the count is a window over the same ids, and the kind's condition (for
/// NEW_CHAPTER, every importer's history grouped: ~1.8 s on 1M rows) is evaluated once, not
/// once for the count and once for the page. Only the page's ids are then read whole. The
/// window sits in a subquery the sort reads whole: over the sort itself, PostgreSQL costed it
/// as if the limit stopped it early and joined the history by a nested loop (past 60 s).
async fn counted_page(
    state: &AppState,
    page: &KeysetPage,
    condition: Condition,
) -> Result<(Vec<trade_record::Model>, u64), ApiError> {
    use trade_record::Column;
    let flagged = trade_record::Entity::find()
        .select_only()
        .column(Column::Id)
        .column_as(Expr::cust("COUNT(*) OVER ()"), "flagged")
        .filter(condition)
        .into_query();
    let first = Query::select()
        .columns([Alias::new("id"), Alias::new("flagged")])
        .from_subquery(flagged, Alias::new("counted"))
        .order_by_expr(Expr::col(Alias::new("id")).add(0), Order::Asc)
        .limit(page.limit() + 1)
        .to_owned();
    let mut ids = Vec::new();
    let mut total = 0;
    for row in state.db.query_all(&first).await? {
        ids.push(row.try_get::<i64>("", "id")?);
        total = u64::try_from(row.try_get::<i64>("", "flagged")?).unwrap_or(0);
    }
    if ids.is_empty() {
        return Ok((Vec::new(), total));
    }
    let rows = trade_record::Entity::find()
        .filter(Column::Id.is_in(ids))
        .order_by_asc(Column::Id)
        .all(&state.db)
        .await?;
    Ok((rows, total))
}

#[Object]
impl RedFlagQuery {
    /// Red flags among the trade records matching `filter` that the caller may see, by kind
    /// (in the order of `RedFlagKind`; VALUE_PER_KG most anomalous first), then by record
    /// (BENFORD: by importer). Thresholds have the documented defaults and
    /// can be set here. A nation-scoped caller's flags (peers, importer histories, digit
    /// counts) are computed from the rows it may see only.
    #[graphql(complexity = "CONNECTION_COST + child_complexity")]
    #[expect(
        clippy::too_many_arguments,
        reason = "the GraphQL arguments, one by one"
    )]
    pub(crate) async fn red_flags(
        &self,
        ctx: &Context<'_>,
        filter: Option<TradeRecordFilter>,
        #[graphql(desc = "Kinds to look for; all when omitted.")] kinds: Option<Vec<RedFlagKind>>,
        #[graphql(desc = "Transshipment hubs (ISO alpha-2); default AE, HK, SG, PA.")] hubs: Option<
            Vec<String>,
        >,
        #[graphql(default = 1000.0)] round_unit: f64,
        #[graphql(default = 10000.0)] round_min_value: f64,
        #[graphql(default = 365)] new_chapter_after_days: i32,
        #[graphql(default = 300)] benford_min_sample: i32,
        #[graphql(default = 0.015)] benford_max_mad: f64,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<KeysetConnection<RedFlag>>> {
        let state = ctx.data::<AppState>()?;
        let page = Keyset::new("redFlags", RedFlag::keys()).page(
            &state.cursors,
            first,
            after.as_deref(),
        )?;
        let mut filter = filter.unwrap_or_default();
        let mut kinds = kinds.unwrap_or_else(|| RedFlagKind::ALL.to_vec());
        kinds.sort();
        kinds.dedup();
        let mut read = filter.fields_read();
        for kind in &kinds {
            read.extend(kind.fields_read());
        }
        require_readable(ctx, TradeRecordFilter::RECORD, &read)?;
        // A cursor carries its flag's position (`RedFlag::position`), which holds the importer
        // of the two kinds that have one.
        let mut keys_read = vec!["kind", "facts", "record"];
        if kinds.contains(&RedFlagKind::Benford) || kinds.contains(&RedFlagKind::NewChapter) {
            keys_read.push("importer");
        }
        require_readable(ctx, "RedFlag", &keys_read)?;
        let mut t = Thresholds {
            round_unit,
            round_min_value,
            new_chapter_after_days: i64::from(new_chapter_after_days),
            benford_min_sample: u64::try_from(benford_min_sample).unwrap_or(0),
            benford_max_mad,
            ..Thresholds::default()
        };
        if let Some(hubs) = hubs {
            t.hubs = hubs
                .iter()
                .map(|h| crate::country::alpha2(h))
                .collect::<Result<_, _>>()
                .map_err(|e| ApiError::bad_input(format!("hubs: {e}")))?;
        }
        t.validate().map_err(ApiError::bad_input)?;
        let principal = principal(ctx)?;
        let perms = &principal.permissions;
        let scope = scope::trade(perms);
        // Before `narrow`: `new_chapter_records` is planned well only on the plain filter.
        let plain = Condition::all().add(filter.condition()?).add(scope.clone());
        filter.narrow(&state.db).await?;
        let condition = Condition::all().add(filter.condition()?).add(scope.clone());
        let counted = wants_total(ctx);

        let mut found: Vec<RedFlag> = Vec::new();
        // Flags the page did not read: the records past each record-level kind's share.
        let mut unread: u64 = 0;
        for kind in kinds {
            match kind {
                RedFlagKind::ValuePerKg => {
                    let options = Options {
                        measure: Measure::ValuePerKg,
                        rule: Rule::default(),
                        same_origin: false,
                    };
                    let (hits, _) = anomalies::find(
                        &state.db,
                        perms,
                        filter.condition()?,
                        &options,
                        None,
                        false,
                    )
                    .await?;
                    found.extend(hits.into_iter().map(|hit| RedFlag {
                        kind,
                        facts: vec![
                            number("valuePerKg", hit.price),
                            number("peerCount", hit.profile.peer_count as f64),
                            number("peerMedian", hit.finding.median),
                            number("lowerBound", hit.finding.lower),
                            number("upperBound", hit.finding.upper),
                            number("ratio", hit.finding.ratio),
                            number("score", hit.finding.score),
                            text(
                                "direction",
                                match hit.finding.side {
                                    Side::Over => "OVER",
                                    Side::Under => "UNDER",
                                },
                            ),
                        ],
                        record: Some(hit.record),
                        importer: None,
                        score: Some(hit.finding.score),
                    }));
                }
                RedFlagKind::RoundValue => {
                    let cond = condition.clone().add(flags::round_value(&t));
                    let (rows, total) =
                        flagged_records(state, &page, kind, cond, counted, false).await?;
                    unread += total.saturating_sub(rows.len() as u64);
                    for r in rows {
                        found.push(RedFlag {
                            kind,
                            facts: vec![
                                number("declaredValueUsd", r.declared_value_usd),
                                number("roundUnit", t.round_unit),
                            ],
                            record: Some(r),
                            importer: None,
                            score: None,
                        });
                    }
                }
                RedFlagKind::Transshipment => {
                    let cond = condition.clone().add(flags::transshipment(&t));
                    let (rows, total) =
                        flagged_records(state, &page, kind, cond, counted, false).await?;
                    unread += total.saturating_sub(rows.len() as u64);
                    for r in rows {
                        found.push(RedFlag {
                            kind,
                            facts: vec![
                                text(
                                    "countryOfOrigin",
                                    r.country_of_origin.clone().unwrap_or_default(),
                                ),
                                text(
                                    "countryOfExport",
                                    r.country_of_export.clone().unwrap_or_default(),
                                ),
                                text("hubs", t.hubs.join(",")),
                            ],
                            record: Some(r),
                            importer: None,
                            score: None,
                        });
                    }
                }
                RedFlagKind::NewChapter => {
                    // The importers the filter is about, if `narrow` found them, with their
                    // pairs from their own histories (a lookup by index), when few enough to
                    // spell.
                    let named = match filter.importers() {
                        Some(importers) => {
                            let histories = Condition::all().add(scope.clone()).add(
                                flags::importers_by(importers.ids, importers.names_without_id),
                            );
                            let pairs = flags::new_chapter_pairs(&state.db, histories, &t).await?;
                            (pairs.len() <= PAIRS_SPELLED_AT_MOST).then_some(pairs)
                        }
                        None => None,
                    };
                    let cond = match &named {
                        Some(pairs) => condition.clone().add(flags::pair_records(pairs)),
                        None => {
                            let filtered = !filter.fields_read().is_empty();
                            plain.clone().add(flags::new_chapter_records(
                                scope.clone(),
                                filtered.then(|| plain.clone()),
                                &t,
                                state.db.get_database_backend(),
                            ))
                        }
                    };
                    let (rows, total) =
                        flagged_records(state, &page, kind, cond, counted, true).await?;
                    unread += total.saturating_sub(rows.len() as u64);
                    // The facts, from the histories of this page's importers only.
                    let keys: Vec<String> = rows
                        .iter()
                        .filter_map(|r| flags::importer_key(&r.importer_id, &r.importer_name))
                        .collect();
                    let pairs = if let Some(pairs) = named {
                        pairs
                    } else if keys.is_empty() {
                        Vec::new()
                    } else {
                        // `all`: the scope may be an `any` (own rows, partner rows, grants),
                        // which adding to would widen.
                        let histories = Condition::all()
                            .add(scope.clone())
                            .add(flags::importers(keys));
                        flags::new_chapter_pairs(&state.db, histories, &t).await?
                    };
                    for r in rows {
                        let key = flags::importer_key(&r.importer_id, &r.importer_name);
                        let pair = pairs.iter().find(|p| {
                            Some(&p.importer) == key.as_ref() && r.hs_code.starts_with(&p.chapter)
                        });
                        let mut facts = Vec::new();
                        if let Some(p) = pair {
                            facts.extend([
                                text("chapter", p.chapter.clone()),
                                text("importerSince", p.importer_since.to_string()),
                                text("chapterSince", p.chapter_since.to_string()),
                                number(
                                    "daysAfterFirstRecord",
                                    (p.chapter_since - p.importer_since).num_days() as f64,
                                ),
                            ]);
                        }
                        found.push(RedFlag {
                            kind,
                            facts,
                            record: Some(r),
                            importer: key,
                            score: None,
                        });
                    }
                }
                RedFlagKind::Benford => {
                    for b in flags::benford(&state.db, condition.clone(), &t).await? {
                        let mut facts = vec![
                            number("sampleSize", b.sample as f64),
                            number("firstDigitMad", b.mad),
                            text("conformity", format!("{:?}", b.conformity).to_uppercase()),
                        ];
                        for (d, count) in b.counts.iter().enumerate() {
                            facts.push(number(&format!("digit{}", d + 1), *count as f64));
                        }
                        found.push(RedFlag {
                            kind,
                            facts,
                            record: None,
                            importer: Some(b.importer),
                            score: None,
                        });
                    }
                }
            }
        }
        let total = counted.then(|| found.len() as u64 + unread);
        let edges = page.window(found, RedFlag::position);
        Ok(Some(page.connection(edges, total)))
    }
}
