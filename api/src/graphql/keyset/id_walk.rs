//! How a page in the default order (the id alone) finds its ids on PostgreSQL.
//!
//! Why: for `WHERE filter ORDER BY id LIMIT n` PostgreSQL's planner walks the primary key in
//! order and keeps the matching rows whenever it expects to meet `n` matches soon, assuming they
//! are spread evenly over the ids. They are not: ids follow load order, loads follow the
//! calendar, so a date range's rows sit together, and the walk reads every row before them.
//! The HS prefix 84 + year 2024 page (3,822 matches of 1M rows, all in the last
//! quarter of the ids) walked 751,164 rows: 160–500 ms, against 2 ms for sorting the 3,822 ids
//! the `(hs_code, declaration_date)` index holds. PostgreSQL has no statistic for where
//! matches fall along another column's order, so the choice is made here, from the planner's
//! own estimate of how many rows match (exact when the page also counts them): up to a limit
//! the matches are found through the filter's index and sorted (`ORDER BY id + 0`, an order
//! no index serves); past it they are walked as before, where sorting them would cost more
//! than most walks. Measured on 1M rows in `psql` (BENCHMARKS.md), sorting against walking:
//! one month's 21,167 matches 7 ms (3 with the id in the date index) against 108; 33,572
//! spread evenly 5.6 ms against 1; 185,773 spread evenly 24 ms against 0.4; one year's 249,994
//! 84 ms (25–27 with the id in the index) against 151.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Iterable,
    PrimaryKeyToColumn, QuerySelect, QueryTrait, Select, Statement,
};

/// At most this many matches are sorted instead of walked, unless the connection says more
/// (`Keyset::sort_up_to`). Both limits spend about the same time, some 20–30 ms on 1M rows,
/// on the sort: the most a page of matches spread evenly (which a walk meets at once) then
/// loses, and about what a walk over a fifth of the table costs. Here the matches' rows are
/// visited to read their ids, about 0.4 µs a match.
pub const SORT_UP_TO: u64 = 50_000;

/// `tradeRecords`: its filter indexes hold the id (migrations 000015 and 000020), so sorting
/// reads the index alone, about 0.1 µs a match (the 249,994 of one year: 25–27 ms).
pub const COVERED_SORT_UP_TO: u64 = 300_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdWalk {
    /// The primary key in order, keeping the rows that match (also every explicit order and
    /// every SQLite page: the choice above is about PostgreSQL's planner).
    Key,
    /// Every match through the filter's index, then the first ids of them.
    SortMatches,
}

impl IdWalk {
    fn label(self) -> &'static str {
        match self {
            IdWalk::Key => "key",
            IdWalk::SortMatches => "sort_matches",
        }
    }
}

/// The walk for a page of `select` (filtered and scoped, before the cursor's seek);
/// `sort_up_to` is `None` unless the page is in the default order, `matching` the page's
/// exact count when it was asked for.
pub(super) async fn choose<E: EntityTrait>(
    db: &DatabaseConnection,
    sort_up_to: Option<u64>,
    select: &Select<E>,
    matching: Option<u64>,
) -> Result<IdWalk, DbErr> {
    let Some(sort_up_to) = sort_up_to else {
        return Ok(IdWalk::Key);
    };
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(IdWalk::Key);
    }
    let matching = match matching {
        Some(n) => Some(n),
        None => estimate(db, select).await?,
    };
    let walk = for_matches(matching, sort_up_to);
    crate::metrics::id_walk(walk.label());
    Ok(walk)
}

/// Sorting wins when there are few matches; an unknown estimate keeps the walk.
fn for_matches(matching: Option<u64>, sort_up_to: u64) -> IdWalk {
    match matching {
        Some(n) if n <= sort_up_to => IdWalk::SortMatches,
        _ => IdWalk::Key,
    }
}

/// The planner's estimate of the rows `select` matches: planning only, nothing is read.
async fn estimate<E: EntityTrait>(
    db: &DatabaseConnection,
    select: &Select<E>,
) -> Result<Option<u64>, DbErr> {
    let Some(id) = E::PrimaryKey::iter().next() else {
        return Ok(None);
    };
    let statement = select
        .clone()
        .select_only()
        .column(id.into_column())
        .build(DbBackend::Postgres);
    let explain = Statement {
        sql: format!("EXPLAIN {}", statement.sql),
        ..statement
    };
    let Some(row) = db.query_one_raw(explain).await? else {
        return Ok(None);
    };
    let top: String = row.try_get_by_index(0)?;
    Ok(plan_rows(&top))
}

/// The `rows=` of a text-format plan line: `Index Scan … (cost=0.42..572.03 rows=3824 width=8)`.
fn plan_rows(line: &str) -> Option<u64> {
    let (_, after) = line.split_once(" rows=")?;
    let digits = after.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_read_from_the_top_plan_line() {
        let line = "Index Only Scan using ix_trade_hs_date on trade_records  \
                    (cost=0.42..572.03 rows=3824 width=8)";
        assert_eq!(plan_rows(line), Some(3824));
        assert_eq!(
            plan_rows("Seq Scan on trade_records  (cost=0.00..1.20 rows=20 width=8)"),
            Some(20)
        );
        for unreadable in ["", "Result", "Seq Scan (cost=0.00..1.20 rows= width=8)"] {
            assert_eq!(plan_rows(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn few_matches_are_sorted_many_or_unknown_are_walked() {
        for up_to in [SORT_UP_TO, COVERED_SORT_UP_TO] {
            assert_eq!(for_matches(Some(0), up_to), IdWalk::SortMatches);
            assert_eq!(for_matches(Some(up_to), up_to), IdWalk::SortMatches);
            assert_eq!(for_matches(Some(up_to + 1), up_to), IdWalk::Key);
            assert_eq!(for_matches(None, up_to), IdWalk::Key);
        }
    }
}
