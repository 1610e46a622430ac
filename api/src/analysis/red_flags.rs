//! Red flags besides price: round values, transshipment through hubs, importers entering HS
//! chapters they never traded, and importers whose declared values do not follow Benford's
//! law. (Value-per-kg outliers are `anomalies` with `Measure::ValuePerKg`.) Every query takes
//! the caller's filter *and* row scope as one SQL condition: a partner's flags are computed
//! from the rows it may see.

use std::collections::HashMap;

use chrono::NaiveDate;
use entities::trade_record::{self, Column};
use futures_util::TryStreamExt;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query, SelectStatement, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::stats::{Benford, Conformity};

/// Thresholds, each settable per query; `Default` holds the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// A declared USD value that is a whole multiple of this is round.
    pub round_unit: f64,
    /// Round values below this are ordinary (small amounts are often whole).
    pub round_min_value: f64,
    /// Transshipment hubs: exported from one of these, originating elsewhere.
    pub hubs: Vec<String>,
    /// A chapter first traded this many days after the importer's first record is new.
    pub new_chapter_after_days: i64,
    /// Benford: importers with fewer values are not judged.
    pub benford_min_sample: u64,
    /// Benford: a first-digit MAD above this is flagged (Nigrini: 0.015, nonconformity).
    pub benford_max_mad: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            round_unit: 1_000.0,
            round_min_value: 10_000.0,
            hubs: super::demo::HUBS.iter().map(|h| (*h).to_owned()).collect(),
            new_chapter_after_days: 365,
            benford_min_sample: 300,
            benford_max_mad: 0.015,
        }
    }
}

impl Thresholds {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.round_unit.is_finite() && self.round_unit >= 1.0) {
            return Err("roundUnit must be at least 1".into());
        }
        if !self.round_min_value.is_finite() || self.round_min_value < 0.0 {
            return Err("roundMinValue must be a non-negative number".into());
        }
        if self.hubs.len() > 50 {
            return Err("hubs takes at most 50 countries".into());
        }
        if self.new_chapter_after_days < 1 {
            return Err("newChapterAfterDays must be at least 1".into());
        }
        if self.benford_min_sample < 50 {
            return Err("benfordMinSample must be at least 50".into());
        }
        if !(self.benford_max_mad.is_finite() && self.benford_max_mad > 0.0) {
            return Err("benfordMaxMad must be positive".into());
        }
        Ok(())
    }
}

/// Records whose declared USD value is a whole multiple of `round_unit` and at least
/// `round_min_value`.
pub fn round_value(t: &Thresholds) -> Condition {
    let value = Expr::col(Column::DeclaredValueUsd);
    let rounded: SimpleExpr = Func::round(value.clone().div(t.round_unit)).mul(t.round_unit);
    Condition::all()
        .add(Column::DeclaredValueUsd.gte(t.round_min_value))
        .add(value.eq(rounded))
}

/// Records exported from a hub that is not their origin.
pub fn transshipment(t: &Thresholds) -> Condition {
    Condition::all()
        .add(Column::CountryOfExport.is_in(t.hubs.clone()))
        .add(Column::CountryOfOrigin.is_not_null())
        .add(Expr::col(Column::CountryOfExport).ne(Expr::col(Column::CountryOfOrigin)))
}

/// How an importer is named: its id, else its name.
pub fn importer_key(id: &Option<String>, name: &Option<String>) -> Option<String> {
    id.clone().or_else(|| name.clone())
}

/// One importer's deviation from Benford's law.
#[derive(Clone, Debug, PartialEq)]
pub struct BenfordFinding {
    pub importer: String,
    pub sample: u64,
    pub mad: f64,
    pub conformity: Conformity,
    pub counts: [u64; 9],
}

/// Importers (among `condition`, which carries the scope) whose first digits deviate.
///
/// The rows are streamed and counted as they arrive: what stays in memory is nine counts per
/// importer, not the rows (1M rows read whole held ~250 MB per request).
pub async fn benford(
    db: &DatabaseConnection,
    condition: Condition,
    t: &Thresholds,
) -> Result<Vec<BenfordFinding>, DbErr> {
    let mut rows = trade_record::Entity::find()
        .select_only()
        .columns([
            Column::ImporterId,
            Column::ImporterName,
            Column::DeclaredValueUsd,
        ])
        .filter(condition)
        .into_tuple::<(Option<String>, Option<String>, f64)>()
        .stream(db)
        .await?;
    let mut by: HashMap<String, Benford> = HashMap::new();
    while let Some((id, name, value)) = rows.try_next().await? {
        if let Some(key) = importer_key(&id, &name) {
            by.entry(key).or_default().add(value);
        }
    }
    let mut out: Vec<BenfordFinding> = by
        .into_iter()
        .filter(|(_, b)| b.sample() >= t.benford_min_sample)
        .filter_map(|(importer, b)| {
            let mad = b.mad()?;
            (mad > t.benford_max_mad).then(|| BenfordFinding {
                importer,
                sample: b.sample(),
                mad,
                conformity: Conformity::of_mad(mad),
                counts: b.counts,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.mad
            .total_cmp(&a.mad)
            .then_with(|| a.importer.cmp(&b.importer))
    });
    Ok(out)
}

/// An importer's first record in a chapter, long after its first record at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChapter {
    pub importer: String,
    pub chapter: String,
    pub importer_since: NaiveDate,
    pub chapter_since: NaiveDate,
}

/// Which (importer, chapter) pairs are new: computed from each importer's first date per
/// chapter (pure, so it is tested without a database).
pub fn new_chapters(firsts: &[(String, String, NaiveDate)], after_days: i64) -> Vec<NewChapter> {
    let mut since: HashMap<&str, NaiveDate> = HashMap::new();
    for (importer, _, first) in firsts {
        since
            .entry(importer.as_str())
            .and_modify(|d| *d = Ord::min(*d, *first))
            .or_insert(*first);
    }
    let mut out: Vec<NewChapter> = firsts
        .iter()
        .filter_map(|(importer, chapter, first)| {
            let start = *since.get(importer.as_str())?;
            ((*first - start).num_days() >= after_days).then(|| NewChapter {
                importer: importer.clone(),
                chapter: chapter.clone(),
                importer_since: start,
                chapter_since: *first,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.importer, &a.chapter).cmp(&(&b.importer, &b.chapter)));
    out
}

/// An importer as the flags name it: its id, else its name (`COALESCE`, as
/// [`importer_key`]).
fn importer_column() -> SimpleExpr {
    Func::coalesce([
        Expr::col(Column::ImporterId),
        Expr::col(Column::ImporterName),
    ])
    .into()
}

/// A record's HS chapter. A literal: PostgreSQL matches a GROUP BY expression to the selected
/// one by text, and bound parameters would make them two different expressions.
fn chapter_column() -> SimpleExpr {
    Expr::cust("SUBSTR(hs_code, 1, 2)")
}

/// The importers (as [`importer_column`]) of the rows of `rows`.
fn importers_in(rows: Condition) -> SelectStatement {
    Query::select()
        .expr(importer_column())
        .from(trade_record::Entity)
        .cond_where(rows)
        .to_owned()
}

/// Each importer's first declaration date per HS chapter among the rows of `scope`.
fn chapter_firsts(scope: Condition) -> SelectStatement {
    Query::select()
        .expr_as(importer_column(), "importer")
        .expr_as(chapter_column(), "chapter")
        .expr_as(Func::min(Expr::col(Column::DeclarationDate)), "began")
        .from(trade_record::Entity)
        .cond_where(scope)
        .add_group_by([importer_column(), chapter_column()])
        .to_owned()
}

/// The new (importer, chapter) pairs among the rows of `scope` (the history an importer is
/// judged on is every row the caller may see, not only the filtered ones).
pub async fn new_chapter_pairs(
    db: &DatabaseConnection,
    scope: Condition,
    t: &Thresholds,
) -> Result<Vec<NewChapter>, DbErr> {
    let mut rows: Vec<(Option<String>, String, NaiveDate)> = Vec::new();
    for row in db.query_all(&chapter_firsts(scope)).await? {
        rows.push((
            row.try_get("", "importer")?,
            row.try_get("", "chapter")?,
            row.try_get("", "began")?,
        ));
    }
    let firsts: Vec<(String, String, NaiveDate)> = rows
        .into_iter()
        .filter_map(|(importer, chapter, first)| Some((importer?, chapter, first)))
        .collect();
    Ok(new_chapters(&firsts, t.new_chapter_after_days))
}

/// The records of the new (importer, chapter) pairs among the rows of `scope`, as a condition
/// on `trade_records`: the same rule as [`new_chapters`], decided in the database. Given
/// `rows`, only the histories of importers with a row matching it are grouped (whole, within
/// `scope`): the others cannot be flagged there, and one importer's view then groups its own
/// rows, not the table's (1M rows: 0.2 s against 2.0 s). Without a filter that choice only
/// costs (the unfiltered page 3.3 → 3.6 s), hence the `Option`.
///
/// The pairs stay in the database (a subquery the condition's `IN` reads): 1M generated rows
/// hold 367,515 new pairs, and a condition spelling each of them out overflowed the stack of
/// the thread that built it, where the database hashes them.
pub fn new_chapter_records(
    scope: Condition,
    rows: Option<Condition>,
    t: &Thresholds,
    backend: DbBackend,
) -> Condition {
    // Days from the importer's first record to the chapter's; dates are `date` on PostgreSQL
    // and ISO text on SQLite. The threshold is an integer, written into the text as one.
    let days = match backend {
        DbBackend::Sqlite => "julianday(began) - julianday(since)",
        _ => "began - since",
    };
    let firsts = Query::select()
        .columns(["importer", "chapter", "began"])
        .expr_as(
            Expr::cust("MIN(began) OVER (PARTITION BY importer)"),
            "since",
        )
        .from_subquery(
            chapter_firsts(match rows {
                // `all`: the scope may be an `any`, which adding to would widen.
                Some(rows) => Condition::all()
                    .add(scope)
                    .add(importer_column().in_subquery(importers_in(rows))),
                None => scope,
            }),
            "f",
        )
        .to_owned();
    let new_pairs = Query::select()
        .columns(["importer", "chapter"])
        .from_subquery(firsts, "s")
        .and_where(Expr::cust(format!(
            "{days} >= {}",
            t.new_chapter_after_days
        )))
        .to_owned();
    Condition::all().add(Expr::tuple([importer_column(), chapter_column()]).in_subquery(new_pairs))
}

/// The records of the new (importer, chapter) pairs `pairs`, spelled out: for the few
/// importers a filter names, whose pairs [`new_chapter_pairs`] found from their own histories.
/// PostgreSQL misjudges [`new_chapter_records`] there: it takes an importer's few records for
/// one and joins them to the grouped histories by a nested loop that groups the histories
/// again for each record (60 s on 1M rows, against 0.1 s for this).
pub fn pair_records(pairs: &[NewChapter]) -> Condition {
    let found: SimpleExpr = if pairs.is_empty() {
        nothing()
    } else {
        Expr::tuple([importer_column(), chapter_column()]).in_tuples(
            pairs
                .iter()
                .map(|p| (p.importer.clone(), p.chapter.clone())),
        )
    };
    Condition::all().add(found)
}

/// The records of the importers named by `keys` (as [`importer_key`] names them: a key may
/// be an id or the name of an importer without one).
pub fn importers(keys: Vec<String>) -> Condition {
    importers_by(keys.clone(), keys)
}

/// The records with one of `ids`, or without an id and with one of `names_without_id`: through
/// `(importer_id)` and the partial index on the name (migration 000023). Only the lists that
/// have members are written: the branch for importers without an id costs SQLite a read of
/// all of them (its planner takes `(importer_id)` for `IS NULL`), so it is left out when no
/// name asks for it.
pub fn importers_by(ids: Vec<String>, names_without_id: Vec<String>) -> Condition {
    let mut found = Condition::any();
    if !ids.is_empty() {
        found = found.add(Column::ImporterId.is_in(ids));
    }
    if !names_without_id.is_empty() {
        found = found.add(
            Condition::all()
                .add(Column::ImporterId.is_null())
                .add(Column::ImporterName.is_in(names_without_id)),
        );
    }
    if found.is_empty() {
        Condition::all().add(nothing())
    } else {
        found
    }
}

/// A condition no row meets. Not an empty `IN`, which sea-query writes `1 = 2` with bound
/// values: SQLite does not see that as false before reading every row.
fn nothing() -> SimpleExpr {
    Expr::cust("1 = 0")
}

/// The ids and keys of the records matching `condition`, for evaluation.
pub async fn record_keys(
    db: &DatabaseConnection,
    condition: Condition,
) -> Result<Vec<(String, i32)>, DbErr> {
    trade_record::Entity::find()
        .select_only()
        .columns([Column::DeclarationId, Column::LineNumber])
        .filter(condition)
        .order_by_asc(Column::Id)
        .into_tuple()
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_chapter_first_traded_a_year_later_is_new() {
        let firsts = vec![
            ("A".to_owned(), "84".to_owned(), d("2022-01-10")),
            ("A".to_owned(), "61".to_owned(), d("2022-03-01")),
            ("A".to_owned(), "71".to_owned(), d("2023-02-01")),
            ("B".to_owned(), "71".to_owned(), d("2022-01-01")),
        ];
        let found = new_chapters(&firsts, 365);
        assert_eq!(
            found,
            vec![NewChapter {
                importer: "A".into(),
                chapter: "71".into(),
                importer_since: d("2022-01-10"),
                chapter_since: d("2023-02-01"),
            }]
        );
        assert!(new_chapters(&firsts, 400).is_empty());
    }

    #[test]
    fn thresholds_are_checked() {
        assert_eq!(Thresholds::default().validate(), Ok(()));
        let bad = Thresholds {
            benford_min_sample: 10,
            ..Thresholds::default()
        };
        assert!(bad.validate().unwrap_err().contains("benfordMinSample"));
        assert_eq!(importer_key(&None, &Some("X".into())), Some("X".into()));
    }
}
