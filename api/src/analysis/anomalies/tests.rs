use sea_orm::{DbBackend, Statement};

use super::*;
use crate::config::Settings;

/// SQLite's plan for the flagged records, one line per step.
async fn sqlite_plan(db: &DatabaseConnection, query: &SelectStatement) -> Vec<String> {
    let built = DbBackend::Sqlite.build(query);
    let explain = Statement {
        sql: format!("EXPLAIN QUERY PLAN {}", built.sql),
        ..built
    };
    db.query_all_raw(explain)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "detail").unwrap())
        .collect()
}

/// The embedded default has no planner statistics (the load does not gather them), so the
/// spelling of the join decides its order; the plan does not depend on the rows, which is why
/// an empty database shows it. With peers of the same origin, each record's profile must be
/// looked up by the profiles' unique key: with the profiles outside, SQLite read the records
/// of each profile's HS code of every origin once per origin, and the unfiltered count on 1M
/// rows took 27 s instead of 2.7 (the request, past 200 s). Without origins the profiles may
/// stay outside: each record is then read once (3.1 s a request, against 5.7 the other way).
#[tokio::test]
async fn sqlite_joins_records_and_profiles_in_the_cheap_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::db::connect(&Settings::embedded_in(dir.path()))
        .await
        .unwrap();
    let filters = [
        Condition::all(),
        Condition::all().add(trade_record::Column::HsCode.eq("8471300000")),
        Condition::all().add(trade_record::Column::CountryOfOrigin.is_in(["CN"])),
        // A substring no index serves: the profiles outside read every record to keep these.
        Condition::all().add(trade_record::Column::ImporterName.like("%Metals%")),
    ];
    let step = |plan: &[String], table: &str| {
        plan.iter()
            .position(|s| s.split_whitespace().nth(1) == Some(table))
            .unwrap_or_else(|| panic!("{table} not in {plan:?}"))
    };
    for measure in [Measure::UnitPrice, Measure::ValuePerKg] {
        for same_origin in [false, true] {
            for (n, filter) in filters.iter().enumerate() {
                let options = Options {
                    measure,
                    rule: Rule::default(),
                    same_origin,
                };
                let plan = sqlite_plan(&db, &flagged_sql(filter.clone(), &options)).await;
                let case = format!("{measure:?}, same origin {same_origin}, {filter:?}: {plan:?}");
                let (records, profiles) =
                    (step(&plan, "trade_records"), step(&plan, "peer_profiles"));
                // Whichever is outside, the inner table is searched by an index, never read whole.
                let inner = &plan[records.max(profiles)];
                assert!(inner.starts_with("SEARCH "), "{case}");
                if same_origin || n > 0 {
                    assert!(records < profiles, "{case}");
                    assert!(
                        inner.starts_with("SEARCH peer_profiles USING INDEX ux_peer_profiles_key"),
                        "{case}"
                    );
                } else if n == 0 {
                    assert!(profiles < records, "{case}");
                    assert!(
                        inner.starts_with("SEARCH trade_records USING INDEX ix_trade_peer_group"),
                        "{case}"
                    );
                }
            }
        }
    }
}

/// The statements `materialized` runs for one request, as SQL text.
async fn statements_run(count: bool, limit: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut db = crate::db::connect(&Settings::embedded_in(dir.path()))
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    db.set_metric_callback(move |info| log.lock().unwrap().push(info.statement.sql.clone()));
    let options = Options {
        measure: Measure::UnitPrice,
        rule: Rule::default(),
        same_origin: false,
    };
    let window = Window { after: None, limit };
    let (hits, total) = materialized(&db, Condition::all(), &options, Some(window), count)
        .await
        .unwrap();
    assert!(hits.is_empty());
    assert_eq!(total, count.then_some(0));
    seen.lock().unwrap().clone()
}

/// The count and the page are each a statement over every flagged record: a request that
/// reads only one of them runs only that one.
#[tokio::test]
async fn a_page_or_a_count_alone_runs_one_statement() {
    let is_count = |sql: &String| sql.starts_with("SELECT COUNT(");
    let both = statements_run(true, 11).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both.iter().filter(|s| is_count(s)).count(), 1, "{both:?}");
    let page = statements_run(false, 11).await;
    assert_eq!(page.len(), 1, "{page:?}");
    assert!(!is_count(&page[0]), "{page:?}");
    let count = statements_run(true, 0).await;
    assert_eq!(count.len(), 1, "{count:?}");
    assert!(is_count(&count[0]), "{count:?}");
}
