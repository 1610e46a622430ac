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
//! plan for finding every match (planning only, ~0.5 ms): its row estimate (or the exact count
//! when the page also counts them) and its cost. The matches are found and sorted
//! (`ORDER BY id + 0`, an order no index serves) when both are small: few matches, and a plan
//! that finds them for less than reading every id of the table costs (the whole table's plan,
//! `TablePlans`). Otherwise they are walked as before: many matches are usually met at once,
//! and when no index serves the filter (a port, a name substring), or there is no filter,
//! sorting means reading the whole table, which a walk only does when the matches sit at its
//! far end. Measured on 1M rows in `psql` (BENCHMARKS.md), sorting against
//! walking: one month's 21,167 matches 7 ms (3 with the id in the date index) against 108;
//! 33,572 spread evenly 5.6 ms against 1; 185,773 spread evenly 24 ms against 0.4; one year's
//! 249,994 84 ms (25–27 with the id in the index) against 151; the 13,200 of one port, found
//! by reading the table, 134 ms against 2.4.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// The most the plan for finding every match may cost, in the planner's units, for them to be
/// sorted. On the 1M-row table the plans through an index cost 570–19,200 (3,800 to 250,000
/// matches, 3–100 ms), a plan that reads the table 45,000–51,000 (120–200 ms): about 3 µs a
/// unit here, so the bound is what a sort may spend, some 75 ms. A smaller table read whole
/// costs less and is sorted, still within that time.
pub const SORT_COST_UP_TO: f64 = 25_000.0;

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
/// `sort_up_to` is `None` unless the page is in the default order, `counted` the page's
/// exact count when it was asked for.
pub(super) async fn choose<E: EntityTrait>(
    db: &DatabaseConnection,
    tables: &TablePlans,
    sort_up_to: Option<u64>,
    select: &Select<E>,
    counted: Option<u64>,
) -> Result<IdWalk, DbErr> {
    let Some(sort_up_to) = sort_up_to else {
        return Ok(IdWalk::Key);
    };
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(IdWalk::Key);
    }
    let walk = match counted {
        // Too many to sort whatever the plan: no need to ask for it.
        Some(n) if n > sort_up_to => IdWalk::Key,
        _ => {
            let matches = plan(db, select).await?;
            if sortable(matches, counted, sort_up_to)
                && cheaper_than_table(matches, tables.plan::<E>(db).await?)
            {
                IdWalk::SortMatches
            } else {
                IdWalk::Key
            }
        }
    };
    crate::metrics::id_walk(walk.label());
    Ok(walk)
}

/// The planner's view of finding every match of a page: the top line of its plan.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MatchPlan {
    rows: u64,
    cost: f64,
}

/// Sorting can win when there are few matches and an index finds them cheaply; a plan that
/// cannot be read keeps the walk.
fn sortable(plan: Option<MatchPlan>, counted: Option<u64>, sort_up_to: u64) -> bool {
    plan.is_some_and(|plan| {
        counted.unwrap_or(plan.rows) <= sort_up_to && plan.cost <= SORT_COST_UP_TO
    })
}

/// Whether finding the matches is planned to cost less than reading every id of the table
/// (`table`, the whole table's plan): a walk reads at most that, and stops at the page's last
/// match, so a sort that costs as much has nothing to win. On the 1M-row trade table the
/// whole table costs about as much as `SORT_COST_UP_TO` and this decides nothing; on a smaller
/// one it keeps the walk for matches found only at the cost of the table (every unfiltered
/// page of 200,000 trade records had sorted them all, 44 ms a statement; so had 55 importers'
/// 54,889 records by their reports, 52 ms). Without the table's plan the sort stands.
fn cheaper_than_table(matches: Option<MatchPlan>, table: Option<MatchPlan>) -> bool {
    match (matches, table) {
        (Some(matches), Some(table)) => matches.cost < table.cost,
        _ => true,
    }
}

/// The whole tables' plans (`cheaper_than_table`), asked of PostgreSQL at most once per
/// `TABLE_PLAN_FOR` and table, and only by pages that would sort. A table's size changes with
/// loads and purges, not from one page to the next; asking each time was a planning round
/// trip more for every such page (query 2: about 0.1 ms of PostgreSQL's CPU on 3 ms). A plan
/// a load has made stale may choose a walk for `TABLE_PLAN_FOR` (the rows are the same either
/// way); at hundreds of pages a second, asking every 10 s costs nothing measurable.
#[derive(Default)]
pub struct TablePlans(Mutex<HashMap<&'static str, (Instant, Option<MatchPlan>)>>);

const TABLE_PLAN_FOR: Duration = Duration::from_secs(10);

impl TablePlans {
    async fn plan<E: EntityTrait>(
        &self,
        db: &DatabaseConnection,
    ) -> Result<Option<MatchPlan>, DbErr> {
        let table = E::default().table_name();
        let known = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(table)
            .copied();
        if let Some((_, plan)) = known.filter(|(at, _)| at.elapsed() < TABLE_PLAN_FOR) {
            return Ok(plan);
        }
        let plan = plan(db, &E::find()).await?;
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(table, (Instant::now(), plan));
        Ok(plan)
    }
}

/// The planner's plan for the ids `select` matches: planning only, nothing is read.
async fn plan<E: EntityTrait>(
    db: &DatabaseConnection,
    select: &Select<E>,
) -> Result<Option<MatchPlan>, DbErr> {
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
    Ok(read_plan(&top))
}

/// The total cost and `rows=` of a text-format plan line:
/// `Index Scan … (cost=0.42..572.03 rows=3824 width=8)`.
fn read_plan(line: &str) -> Option<MatchPlan> {
    let (_, costs) = line.split_once("(cost=")?;
    let (_, total) = costs.split_once("..")?;
    let (cost, after) = total.split_once(" rows=")?;
    let rows = after.split(|c: char| !c.is_ascii_digit()).next()?;
    Some(MatchPlan {
        rows: rows.parse().ok()?,
        cost: cost.parse().ok().filter(|c: &f64| c.is_finite())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(rows: u64, cost: f64) -> Option<MatchPlan> {
        Some(MatchPlan { rows, cost })
    }

    #[test]
    fn the_plan_is_read_from_its_top_line() {
        let line = "Index Only Scan using ix_trade_hs_date on trade_records  \
                    (cost=0.42..572.03 rows=3824 width=8)";
        assert_eq!(read_plan(line), planned(3824, 572.03));
        assert_eq!(
            read_plan("Gather  (cost=1000.00..46363.33 rows=13200 width=8)"),
            planned(13200, 46363.33)
        );
        for unreadable in [
            "",
            "Result",
            "Seq Scan (cost=0.00..1.20 rows= width=8)",
            "Seq Scan (cost=0.00 rows=20 width=8)",
            "Seq Scan (cost=0.00..x rows=20 width=8)",
            "Seq Scan (cost=0.00..inf rows=20 width=8)",
        ] {
            assert_eq!(read_plan(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn few_matches_an_index_finds_are_sortable_the_rest_walked() {
        for up_to in [SORT_UP_TO, COVERED_SORT_UP_TO] {
            // Plans measured on the 1M-row table: query 2 through its index, one year
            // through the date index.
            for (rows, cost) in [(0, 0.42), (3824, 572.07), (up_to, 8857.72)] {
                assert!(sortable(planned(rows, cost), None, up_to));
            }
            assert!(!sortable(planned(up_to + 1, 500.0), None, up_to));
            // Found only by reading the table (one port): walked, however few.
            assert!(!sortable(planned(13_200, 46_363.33), None, up_to));
            assert!(sortable(planned(10, SORT_COST_UP_TO), None, up_to));
            assert!(!sortable(planned(10, SORT_COST_UP_TO + 0.01), None, up_to));
            assert!(!sortable(None, None, up_to));
            assert!(!sortable(None, Some(10), up_to));
            // The exact count overrides the estimate, both ways.
            assert!(sortable(planned(up_to + 1, 500.0), Some(up_to), up_to));
            assert!(!sortable(planned(10, 500.0), Some(up_to + 1), up_to));
        }
    }

    #[test]
    fn matches_that_cost_what_the_table_costs_are_walked() {
        // Plans measured on 200,000 trade records: the whole table (also an unfiltered page),
        // one year through the date index, ten importers' records through a bitmap.
        let table = planned(200_000, 5_204.42);
        assert!(!cheaper_than_table(table, table));
        assert!(cheaper_than_table(planned(66_662, 2_199.01), table));
        assert!(!cheaper_than_table(planned(9_929, 8_405.94), table));
        // On 1M rows the query-shape plans stay sorted.
        let million = planned(1_000_000, 25_980.42);
        assert!(cheaper_than_table(planned(246_188, 8_720.18), million));
        assert!(cheaper_than_table(planned(3_824, 572.07), million));
        // Without the table's plan, the sort stands.
        assert!(cheaper_than_table(planned(10, 500.0), None));
    }
}
