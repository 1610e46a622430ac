//! Price anomalies for a caller: records whose unit price (or value per kg) lies outside the
//! fences of their peer group.
//!
//! Two paths, one rule (`peers::Profile::assess`):
//! - roles that see every row compare each record with its group's *materialized* profile
//!   (`peer_profiles`) in SQL — a join on the group key and arithmetic on stored logarithms,
//!   so one HS code's anomalies read that code's rows and profiles only;
//! - nation-scoped roles (foreign partners) must not learn anything from rows they may not
//!   see, so their peer groups are computed on the fly from the rows of their scope
//!   (`scope::trade`, in SQL) with the same Rust functions that build the stored profiles.

use std::collections::{BTreeSet, HashMap};

use entities::{peer_profile, trade_record};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, JoinType, Order, Query, SelectStatement, SimpleExpr,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QuerySelect, QueryTrait,
};

use super::peers::{Finding, Measure, Method, PeerFacts, Profile, Rule};
use super::profile_store::{FactRow, fact_columns, to_facts};
use super::stats::MAD_TO_SIGMA;
use crate::policy::{PermissionSet, RowScope};

mod moved;
pub use moved::value_moved;

/// What to look for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    pub measure: Measure,
    pub rule: Rule,
    /// Peers of the same country of origin only.
    pub same_origin: bool,
}

/// One flagged record with the numbers that flagged it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub record: trade_record::Model,
    pub profile: Profile,
    pub finding: Finding,
    /// The record's price in the measure's unit (USD per unit or per kg).
    pub price: f64,
    /// Quantity or net weight the price is per.
    pub amount: f64,
    /// The score the hits were ordered by, which a `Window` seeks past: the database's on
    /// the materialized path (its arithmetic, not `finding.score` recomputed here, which may
    /// differ in the last bits and would then miss the boundary row), `finding.score` on the
    /// scoped path, which ranks in Rust.
    pub rank: f64,
}

/// A page of `find`: the hits after `after` (a hit's `rank` and record id) in its order —
/// `rank` descending, then id — at most `limit` of them. A position, not an offset: rows loaded
/// or flagged before it since the previous page do not shift the next one.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub after: Option<(f64, i64)>,
    pub limit: u64,
}

impl Window {
    /// Whether a hit ranked `(score, id)` comes after the window's position.
    fn admits(&self, score: f64, id: i64) -> bool {
        self.after
            .is_none_or(|(s, i)| score < s || (score == s && id > i))
    }
}

impl Hit {
    pub fn value_moved(&self) -> f64 {
        self.finding.value_moved(self.price, self.amount)
    }

    fn new(record: trade_record::Model, profile: Profile, options: &Options) -> Option<Hit> {
        let (log, amount) = match options.measure {
            Measure::UnitPrice => (record.log_unit_price, record.quantity),
            Measure::ValuePerKg => (record.log_value_per_kg, record.net_weight_kg),
        };
        let (finding, price, amount) = assess(&profile, log, amount, options)?;
        Some(Hit {
            record,
            profile,
            rank: finding.score,
            finding,
            price,
            amount,
        })
    }
}

/// The finding on a record with log price `log` and `amount` (quantity or kg) against its
/// peers, with the price: the one rule a page of hits and the value-moved totals both apply.
fn assess(
    profile: &Profile,
    log: Option<f64>,
    amount: Option<f64>,
    options: &Options,
) -> Option<(Finding, f64, f64)> {
    let (log, amount) = (log?, amount?);
    let finding = profile.assess(log, &options.rule)?;
    Some((finding, log.exp(), amount))
}

/// Rows per `id IN (…)` fetch on the scoped path.
const IDS_PER_FETCH: usize = 500;

/// The anomalies among the records matching `filter` that the caller may see, by score
/// descending (then id); `window` picks a page (a limit of 0: none), `None` all of them.
/// Returns the page and, when `count` asks for it, the total (of all pages): on the whole
/// table each is a statement of its own over every flagged record (on 1M rows 0.3–0.5 s
/// each), so a request pays only for what it reads.
pub async fn find(
    db: &DatabaseConnection,
    perms: &PermissionSet,
    filter: Condition,
    options: &Options,
    window: Option<Window>,
    count: bool,
) -> Result<(Vec<Hit>, Option<u64>), DbErr> {
    let scope = crate::graphql::scope::trade(perms);
    match perms.rows {
        RowScope::All => materialized(db, within(filter, scope), options, window, count).await,
        // The ranking it pages is the count.
        _ => scoped(db, filter, scope, options, window)
            .await
            .map(|(hits, total)| (hits, Some(total))),
    }
}

type Tr = trade_record::Entity;
type Pp = peer_profile::Entity;

fn log_column(measure: Measure) -> trade_record::Column {
    match measure {
        Measure::UnitPrice => trade_record::Column::LogUnitPrice,
        Measure::ValuePerKg => trade_record::Column::LogValuePerKg,
    }
}

/// What a price in `measure` is per: the quantity or the net weight.
fn amount_column(measure: Measure) -> trade_record::Column {
    match measure {
        Measure::UnitPrice => trade_record::Column::Quantity,
        Measure::ValuePerKg => trade_record::Column::NetWeightKg,
    }
}

fn pp(column: peer_profile::Column) -> Expr {
    Expr::col((Pp::default(), column))
}

/// `Profile::sigma` in SQL: the same operations in the same order, so both sides agree.
fn sigma_sql(method: Method) -> SimpleExpr {
    use peer_profile::Column as P;
    let raw = match method {
        Method::Iqr => pp(P::Q3).sub(pp(P::Q1)).div(super::stats::IQR_IN_SIGMAS),
        Method::Mad => pp(P::Mad).mul(MAD_TO_SIGMA),
    };
    Func::greatest([raw, Expr::val(super::peers::MIN_SIGMA)]).into()
}

/// The records of `filter` within `scope` as one condition, empty when both are: `flagged_sql`
/// reads an empty condition as every row (sea-query keeps an empty condition added to another,
/// which is then no longer empty).
fn within(filter: Condition, scope: Condition) -> Condition {
    [filter, scope]
        .into_iter()
        .filter(|c| !c.is_empty())
        .fold(Condition::all(), Condition::add)
}

/// The flagged records among `condition` (filter and scope) against the stored profiles.
fn flagged_sql(condition: Condition, options: &Options) -> SelectStatement {
    use peer_profile::Column as P;
    use trade_record::Column as T;
    let log = Expr::col((Tr::default(), log_column(options.measure)));
    let mut on = Condition::all()
        .add(pp(P::Measure).eq(options.measure.as_str()))
        .add(pp(P::HsCode).equals((Tr::default(), T::HsCode)))
        .add(pp(P::Year).equals((Tr::default(), T::PeerYear)));
    on = match options.measure {
        Measure::UnitPrice => on.add(pp(P::QuantityUnit).equals((Tr::default(), T::QuantityUnit))),
        Measure::ValuePerKg => on.add(pp(P::QuantityUnit).eq("")),
    };
    on = if options.same_origin {
        on.add(pp(P::Origin).equals((Tr::default(), T::CountryOfOrigin)))
    } else {
        on.add(pp(P::Origin).eq(""))
    };
    let rule = &options.rule;
    let (lower, upper): (SimpleExpr, SimpleExpr) = match rule.method {
        Method::Iqr => {
            let floor = super::peers::MIN_SIGMA * super::stats::IQR_IN_SIGMAS;
            let iqr: SimpleExpr =
                Func::greatest([pp(P::Q3).sub(pp(P::Q1)), Expr::val(floor)]).into();
            (
                pp(P::Q1).sub(Expr::val(rule.k).mul(iqr.clone())),
                pp(P::Q3).add(Expr::val(rule.k).mul(iqr)),
            )
        }
        Method::Mad => (
            pp(P::Median).sub(Expr::val(rule.k).mul(sigma_sql(Method::Mad))),
            pp(P::Median).add(Expr::val(rule.k).mul(sigma_sql(Method::Mad))),
        ),
    };
    let min_log = rule.min_ratio.ln();
    let outside = Condition::any()
        .add(
            Condition::all()
                .add(log.clone().gt(upper))
                .add(log.clone().sub(pp(P::Median)).gte(min_log)),
        )
        .add(
            Condition::all()
                .add(log.clone().lt(lower))
                .add(pp(P::Median).sub(log.clone()).gte(min_log)),
        );
    let narrowed = !condition.is_empty();
    let mut query = Tr::find().filter(condition).into_query();
    if options.same_origin || narrowed {
        // `CROSS JOIN` with the join's terms in `WHERE` is the same inner join, spelled so
        // that SQLite keeps the records outside and looks up each one's profile by the
        // profiles' unique key. SQLite has no statistics here (the load does not gather them,
        // ARCHITECTURE.md) and otherwise put the profiles outside, reading every record of
        // their (HS code, year) through an index: with origins, once per origin (the
        // unfiltered count on 1M rows took 27 s instead of 2.7, the request past 200 s); with
        // a filter no index serves, every record to keep a few (an importer's name: 6 s
        // against 0.6). Filtered through an index, SQLite chose this order itself. Unfiltered
        // and without origins each record is read once either way, and the profiles outside
        // are then the cheaper order (3.3 s a request against 7.5), so that join is left to
        // the planner. PostgreSQL plans both spellings alike.
        query.cross_join(Pp::default()).cond_where(on);
    } else {
        query.join(JoinType::InnerJoin, Pp::default(), on);
    }
    query
        .and_where(log.is_not_null())
        .and_where(pp(P::PeerCount).gte(i64::try_from(rule.min_peers).unwrap_or(i64::MAX)))
        .cond_where(outside);
    query
}

#[derive(FromQueryResult)]
struct ProfileColumns {
    pp_peer_count: i64,
    pp_median: f64,
    pp_q1: f64,
    pp_q3: f64,
    pp_mad: f64,
}

async fn materialized(
    db: &DatabaseConnection,
    condition: Condition,
    options: &Options,
    window: Option<Window>,
    count: bool,
) -> Result<(Vec<Hit>, Option<u64>), DbErr> {
    let flagged = flagged_sql(condition, options);
    let id = (Tr::default(), trade_record::Column::Id);
    let mut ids = flagged.clone();
    ids.clear_selects();
    ids.column(id);

    let total = if count {
        let mut count = Query::select();
        count
            .expr_as(Func::count(Expr::col(Alias::new("id"))), Alias::new("n"))
            .from_subquery(ids.clone(), Alias::new("flagged"));
        let n = db
            .query_one(&count)
            .await?
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        Some(u64::try_from(n).unwrap_or(0))
    } else {
        None
    };
    if window.is_some_and(|w| w.limit == 0) {
        return Ok((Vec::new(), total));
    }

    let score = score_sql(options);
    let mut page = match window {
        // A deferred join: the page's ids are chosen reading only the peer-group columns, the
        // logarithm and the id, which the peer-group index holds (migration 000016), so the
        // rows of the HS code that are not on the page — nearly all of them — are never read
        // whole. At 10M rows the busiest code's page read every one of its rows (525 ms).
        Some(window) => {
            if let Some((s, i)) = window.after {
                // The plain bound lets the scan start at the position.
                ids.and_where(score.clone().lte(s)).and_where(
                    score
                        .clone()
                        .lt(s)
                        .or(score.clone().eq(s).and(Expr::col(id).gt(i))),
                );
            }
            ids.order_by_expr(score.clone(), Order::Desc)
                .order_by(id, Order::Asc)
                .limit(window.limit);
            flagged_sql(
                Condition::all().add(trade_record::Column::Id.in_subquery(ids)),
                options,
            )
        }
        // Every flagged row is read whole anyway.
        None => flagged,
    };
    select_profile(&mut page);
    page.expr_as(score.clone(), Alias::new("rank"))
        .order_by_expr(score, Order::Desc)
        .order_by(id, Order::Asc);
    let rows = db.query_all(&page).await?;
    let mut hits = Vec::with_capacity(rows.len());
    for row in rows {
        let record = trade_record::Model::from_query_result(&row, "")?;
        let profile = ProfileColumns::from_query_result(&row, "")?.into();
        let rank: f64 = row.try_get("", "rank")?;
        if let Some(hit) = Hit::new(record, profile, options) {
            hits.push(Hit { rank, ..hit });
        }
    }
    Ok((hits, total))
}

/// The score `Profile::assess` gives, in SQL: the order of hits.
fn score_sql(options: &Options) -> SimpleExpr {
    let log = Expr::col((Tr::default(), log_column(options.measure)));
    Func::abs(log.sub(pp(peer_profile::Column::Median))).div(sigma_sql(options.rule.method))
}

/// Adds the joined profile's columns, as `ProfileColumns` reads them.
fn select_profile(query: &mut SelectStatement) {
    use peer_profile::Column as P;
    for (column, alias) in [
        (P::PeerCount, "pp_peer_count"),
        (P::Median, "pp_median"),
        (P::Q1, "pp_q1"),
        (P::Q3, "pp_q3"),
        (P::Mad, "pp_mad"),
    ] {
        query.expr_as(pp(column), Alias::new(alias));
    }
}

impl From<ProfileColumns> for Profile {
    fn from(p: ProfileColumns) -> Self {
        Profile {
            peer_count: u64::try_from(p.pp_peer_count).unwrap_or(0),
            median: p.pp_median,
            q1: p.pp_q1,
            q3: p.pp_q3,
            mad: p.pp_mad,
        }
    }
}

async fn scoped(
    db: &DatabaseConnection,
    filter: Condition,
    scope: Condition,
    options: &Options,
    window: Option<Window>,
) -> Result<(Vec<Hit>, u64), DbErr> {
    let ranked = ranked(db, filter, scope.clone(), options).await?;
    let total = ranked.len() as u64;
    let window = window.unwrap_or(Window {
        after: None,
        limit: u64::MAX,
    });
    let page: Vec<(i64, Profile)> = ranked
        .into_iter()
        .filter(|(score, id, _)| window.admits(*score, *id))
        .take(usize::try_from(window.limit).unwrap_or(usize::MAX))
        .map(|(_, id, p)| (id, p))
        .collect();
    let mut records: HashMap<i64, trade_record::Model> = HashMap::with_capacity(page.len());
    for chunk in page.chunks(IDS_PER_FETCH) {
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        for m in Tr::find()
            .filter(trade_record::Column::Id.is_in(ids))
            .filter(scope.clone())
            .all(db)
            .await?
        {
            records.insert(m.id, m);
        }
    }
    let hits = page
        .into_iter()
        .filter_map(|(id, p)| Hit::new(records.remove(&id)?, p, options))
        .collect();
    Ok((hits, total))
}

/// The flagged records among `filter` within `scope`, judged against peers from `scope` only:
/// (score, id, profile), by score descending, then id.
async fn ranked(
    db: &DatabaseConnection,
    filter: Condition,
    scope: Condition,
    options: &Options,
) -> Result<Vec<(f64, i64, Profile)>, DbErr> {
    let candidates: Vec<(i64, FactRow)> = Tr::find()
        .select_only()
        .column(trade_record::Column::Id)
        .columns(fact_columns())
        .filter(Condition::all().add(filter).add(scope.clone()))
        .filter(log_column(options.measure).is_not_null())
        .into_tuple::<(
            i64,
            String,
            Option<String>,
            Option<i32>,
            Option<String>,
            Option<f64>,
            Option<f64>,
        )>()
        .all(db)
        .await?
        .into_iter()
        .map(|(id, a, b, c, d, e, f)| (id, (a, b, c, d, e, f)))
        .collect();
    let codes: BTreeSet<String> = candidates.iter().map(|(_, r)| r.0.clone()).collect();
    // The peers: every row of the caller's scope in those HS codes, not only the filtered ones.
    let peers = super::profile_store::facts(
        db,
        // `all`: the scope itself may be an `any` (own rows, partner rows, grants), and
        // adding to it would widen it instead of narrowing it.
        Condition::all()
            .add(scope.clone())
            .add(trade_record::Column::HsCode.is_in(codes)),
    )
    .await?;
    let profiles = super::peers::profiles(&peers);
    drop(peers);
    let mut ranked: Vec<(f64, i64, Profile)> = candidates
        .into_iter()
        .filter_map(|(id, row)| {
            let facts: PeerFacts = to_facts(row);
            let profile = *profiles.get(&facts.key(options.measure, options.same_origin)?)?;
            let finding = profile.assess(facts.log_value(options.measure)?, &options.rule)?;
            Some((finding.score, id, profile))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(ranked)
}

/// The record keys (declaration id, line) and sides of every record flagged against the
/// stored profiles, over all rows: for `dartts eval`, an operator's tool with no principal.
pub async fn flagged_keys(
    db: &DatabaseConnection,
    condition: Condition,
    options: &Options,
) -> Result<Vec<(String, i32, super::peers::Side)>, DbErr> {
    use trade_record::Column as T;
    let mut query = flagged_sql(condition, options);
    query.clear_selects();
    query
        .column((Tr::default(), T::DeclarationId))
        .column((Tr::default(), T::LineNumber))
        .expr_as(
            Expr::col((Tr::default(), log_column(options.measure)))
                .sub(pp(peer_profile::Column::Median)),
            Alias::new("deviation"),
        );
    let rows = db.query_all(&query).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("", "declaration_id")?;
        let line: i32 = row.try_get("", "line_number")?;
        let deviation: f64 = row.try_get("", "deviation")?;
        let side = if deviation > 0.0 {
            super::peers::Side::Over
        } else {
            super::peers::Side::Under
        };
        out.push((id, line, side));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
