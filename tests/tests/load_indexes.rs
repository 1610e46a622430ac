//! How a trade load treats the trade tables' indexes on PostgreSQL: a load into empty tables
//! drops them and builds them after its rows, so does `dartts load --exclusive` into tables
//! that hold rows, and any other load updates them row by row.

use dartts_tests::{Backend, TestEnv, fixture, path};
use sea_orm::ConnectionTrait;

/// The secondary indexes of the three trade tables, as `name=definition` lines in name order.
const DEFINITIONS: &str = "SELECT string_agg(indexname || '=' || indexdef, E'\\n' ORDER BY indexname) \
     FROM pg_indexes WHERE tablename IN ('trade_records', 'trade_importer_years', \
     'trade_hs6_years') AND indexname NOT LIKE '%_pkey'";

/// The same indexes' object ids: a rebuilt index is a new object.
const OIDS: &str = "SELECT string_agg(c.oid::text, ',' ORDER BY c.relname) FROM pg_class c \
     JOIN pg_indexes i ON i.indexname = c.relname WHERE i.tablename IN ('trade_records', \
     'trade_importer_years', 'trade_hs6_years') AND i.indexname NOT LIKE '%_pkey'";

/// A canonical trade file of `rows` lines whose declaration ids start with `prefix`.
fn trade_file(dir: &std::path::Path, prefix: &str, rows: usize) -> std::path::PathBuf {
    let mut text = String::from(
        "declaration_id,declaration_date,direction,hs_code,importer_name,declared_value,\
         declared_currency\n",
    );
    for n in 0..rows {
        text.push_str(&format!(
            "{prefix}-{n},2024-0{}-1{},IMPORT,84713{},Importer {},{}.5,USD\n",
            1 + n % 9,
            n % 10,
            n % 10,
            n % 7,
            100 + n
        ));
    }
    let file = dir.join(format!("{prefix}.csv"));
    std::fs::write(&file, text).expect("write");
    file
}

/// A first load takes the empty-table path (indexes dropped, table truncated, rows copied
/// frozen) only if the table is still empty once it holds the table's lock: rows another
/// transaction commits while the load waits for that lock survive it. The other transaction
/// holds a lock that makes the load wait, writes its row, and commits only once PostgreSQL
/// shows the load waiting.
#[tokio::test]
async fn a_first_load_keeps_rows_committed_while_it_waited() {
    let env = TestEnv::new(Backend::Postgres).await;
    assert!(env.run(&["migrate"]).await.ok);
    let other = env.holding("LOCK TABLE trade_records IN SHARE MODE").await;
    let file = fixture("trade_canonical.csv");
    let args = ["trade", path(&file), "--provider", "US"];
    let load = env.load_ok(&args);
    let meanwhile = async {
        env.until_waiting_for("trade_records").await;
        other
            .execute_unprepared(
                "INSERT INTO batches (id, dataset, file_name, sha256, accepted_rows, \
                 rejected_rows, as_of, provider_country, profile, loaded_by, loaded_at, \
                 raw_path) VALUES (900, 'trade', 'other.csv', 'other', 1, 0, '2024-01-01', \
                 'US', 'canonical', 'other', now(), ''); \
                 INSERT INTO trade_records (batch_id, provider_country, declaration_id, \
                 line_number, declaration_date, direction, hs_code, reporting_country, \
                 declared_value, declared_currency, declared_value_usd) VALUES (900, 'US', \
                 'OTHER-1', 1, '2024-01-02', 'IMPORT', '847130', 'US', 5, 'USD', 5)",
            )
            .await
            .expect("the other transaction's row");
        other.commit().await.expect("commit");
    };
    tokio::join!(load, meanwhile);
    assert_eq!(
        env.scalar("SELECT count(*) FROM trade_records WHERE declaration_id = 'OTHER-1'")
            .await,
        1
    );
    assert_eq!(env.count("trade_records").await, 11);
}

/// `--exclusive` takes tables that hold rows: it waits for their readers, rebuilds every
/// secondary index of the records and the rollups after its rows (new objects, the same
/// definitions), and the rows and rollups are whole. Without it a later load keeps the
/// indexes it found, and the flag is refused for data sets other than trade.
#[tokio::test]
async fn an_exclusive_load_rebuilds_the_indexes_of_tables_with_rows() {
    let env = TestEnv::new(Backend::Postgres).await;
    assert!(env.run(&["migrate"]).await.ok);
    let dir = tempfile::tempdir().expect("tempdir");
    let first = trade_file(dir.path(), "FIRST", 40);
    env.load_ok(&["trade", path(&first), "--provider", "US"])
        .await;
    let definitions = env.text(DEFINITIONS).await;
    assert!(definitions.lines().count() > 10, "{definitions}");

    // A later load without the flag updates the indexes it finds.
    let before = env.text(OIDS).await;
    let second = trade_file(dir.path(), "SECOND", 30);
    env.load_ok(&["trade", path(&second), "--provider", "US"])
        .await;
    assert_eq!(env.text(OIDS).await, before);

    // With it, the load waits for a reader that holds the table, then rebuilds them all.
    let reader = env.holding("SELECT count(*) FROM trade_records").await;
    let third = trade_file(dir.path(), "THIRD", 25);
    let args = ["trade", path(&third), "--provider", "US", "--exclusive"];
    let load = env.load_ok(&args);
    let meanwhile = async {
        env.until_waiting_for("trade_records").await;
        reader.commit().await.expect("commit");
    };
    let (run, ()) = tokio::join!(load, meanwhile);
    assert!(
        run.stdout.contains("25 rows accepted, 0 rejected"),
        "{}",
        run.stdout
    );
    assert_eq!(env.text(DEFINITIONS).await, definitions);
    let after = env.text(OIDS).await;
    assert_eq!(after.split(',').count(), before.split(',').count());
    for (old, new) in before.split(',').zip(after.split(',')) {
        assert_ne!(
            old, new,
            "an index was kept, not rebuilt: {before} / {after}"
        );
    }
    assert_eq!(env.count("trade_records").await, 95);
    // The audit trail says which load held the tables.
    assert_eq!(
        env.scalar(
            "SELECT count(*) FROM audit_events WHERE event_type = 'ingest' \
             AND outcome = 'attempted' AND detail LIKE '%\"exclusive\":true%'"
        )
        .await,
        1
    );
    for rollup in ["trade_importer_years", "trade_hs6_years"] {
        assert_eq!(
            env.scalar(&format!("SELECT sum(record_count)::bigint FROM {rollup}"))
                .await,
            95,
            "{rollup}"
        );
    }
    // The rebuilt indexes serve reads: the third file's rows found through one of them.
    assert_eq!(
        env.scalar(
            "SELECT count(*) FROM trade_records WHERE batch_id = (SELECT max(id) FROM batches)"
        )
        .await,
        25
    );

    let run = env
        .run(&[
            "load",
            "financial",
            path(&fixture("financial.csv")),
            "--exclusive",
        ])
        .await;
    assert!(
        !run.ok
            && run
                .stderr
                .contains("--exclusive only applies to trade loads"),
        "{}",
        run.stderr
    );
}

/// SQLite has no indexes to take: `--exclusive` loads as any load does there.
#[tokio::test]
async fn exclusive_is_an_ordinary_load_on_sqlite() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (prefix, rows) in [("FIRST", 12), ("SECOND", 8)] {
        let file = trade_file(dir.path(), prefix, rows);
        env.load_ok(&["trade", path(&file), "--provider", "US", "--exclusive"])
            .await;
    }
    assert_eq!(env.count("trade_records").await, 20);
}

/// A large load into tables with rows gathers the planner's statistics before its rollup
/// fills (without them the planner takes the new batch for one row and sorts it whole), and
/// after its commit marks the pages it wrote all-visible, so index-only scans need not visit
/// them; a small one leaves both to autovacuum, which the test turns off so that only the load
/// can.
#[tokio::test]
async fn a_large_later_load_gathers_statistics_and_is_vacuumed_a_small_one_is_not() {
    let env = TestEnv::new(Backend::Postgres).await;
    assert!(env.run(&["migrate"]).await.ok);
    let db = env.db().await;
    db.execute_unprepared("ALTER TABLE trade_records SET (autovacuum_enabled = false)")
        .await
        .expect("autovacuum off");
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = "SELECT reltuples::bigint FROM pg_class WHERE relname = 'trade_records'";
    let first = trade_file(dir.path(), "FIRST", 50);
    env.load_ok(&["trade", path(&first), "--provider", "US"])
        .await;
    assert_eq!(env.scalar(rows).await, 50);
    let small = trade_file(dir.path(), "SMALL", 99_999);
    env.load_ok(&["trade", path(&small), "--provider", "US"])
        .await;
    assert_eq!(env.scalar(rows).await, 50);
    let large = trade_file(dir.path(), "LARGE", 100_000);
    env.load_ok(&["trade", path(&large), "--provider", "US"])
        .await;
    assert_eq!(env.scalar(rows).await, 200_049);
    let visible = "SELECT (relpages > 1 AND relallvisible = relpages)::int::bigint FROM pg_class \
                   WHERE relname = 'trade_records'";
    assert_eq!(env.scalar(visible).await, 1, "every page all-visible");
}
