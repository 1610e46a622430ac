//! Stored rejections: every row a load refuses, in file order, however many; and
//! `Batch.rejections` across a page of many loads: each load's own refused rows, each window
//! where it was asked for, on both backends.

use dartts_tests::{BACKENDS, TestEnv, path};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

/// More loads than one statement of the rejections' loader reads (250 windows), so a page's
/// windows are read in several statements.
const LOADS: i64 = 260;

#[tokio::test]
async fn every_load_on_a_page_lists_its_own_rejections() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.run(&["migrate"]).await;
        let db = env.db().await;
        // Load i refuses i % 4 rows, on lines 2, 3, … of its own file; rows of two loads
        // alternate in the table, so a window that ignored its load would show another's.
        for statement in [
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {LOADS}) \
                 INSERT INTO batches (dataset, file_name, sha256, accepted_rows, rejected_rows, \
                 as_of, provider_country, loaded_by, loaded_at, raw_path) \
                 SELECT 'trade', 'f' || i || '.csv', 'sha' || i, 0, i % 4, '2024-01-01', 'US', \
                 'test', '2024-01-02T00:00:00+00:00', 'raw' FROM n ORDER BY i"
            ),
            "WITH RECURSIVE n(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM n WHERE j < 3) \
             INSERT INTO batch_rejections (batch_id, file_name, line_number, reason) \
             SELECT b.id, b.file_name, n.j + 1, 'reason ' || n.j FROM batches b \
             JOIN n ON n.j <= b.rejected_rows ORDER BY n.j, b.id"
                .to_owned(),
        ] {
            db.execute_unprepared(&statement)
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        }
        let server = env.serve_as_analyst().await;
        let data = server
            .data(
                "{ batches(first: 300) { nodes { fileName rejectedRows \
                   all: rejections { fileName lineNumber reason } \
                   window: rejections(first: 2, offset: 1) { lineNumber } \
                   none: rejections(first: 0) { lineNumber } } } }",
                json!({}),
            )
            .await;
        let loads = data["batches"]["nodes"].as_array().expect("nodes");
        assert_eq!(i64::try_from(loads.len()), Ok(LOADS), "{backend:?}");
        for load in loads {
            let file = load["fileName"].as_str().expect("file name");
            let refused = load["rejectedRows"].as_i64().expect("rejected rows");
            let all: Vec<Value> = (1..=refused)
                .map(|j| json!({ "fileName": file, "lineNumber": j + 1, "reason": format!("reason {j}") }))
                .collect();
            assert_eq!(load["all"], json!(all), "{backend:?} {file}");
            let window: Vec<Value> = (2..=refused.min(3))
                .map(|j| json!({ "lineNumber": j + 1 }))
                .collect();
            assert_eq!(load["window"], json!(window), "{backend:?} {file}");
            assert_eq!(load["none"], json!([]), "{backend:?} {file}");
        }
    }
}

/// More rows refused while reading than the loader keeps in memory (`ingest::rejection_log`
/// spills them to a temporary file past one chunk of 5,000): every one is stored whole, in file
/// order, and the load prints the first 50. Without a usable temporary folder the load is
/// refused and writes nothing.
#[tokio::test]
async fn more_rejections_than_a_chunk_are_all_stored_in_file_order() {
    const ROWS: u64 = 12_000;
    let mut lines = vec![
        "declaration_id,line_number,declaration_date,direction,hs_code,\
                          country_of_origin,declared_value,declared_currency"
            .to_owned(),
    ];
    for i in 0..ROWS {
        // Every fifth row loads; the others carry a date that names their row.
        let date = if i % 5 == 0 {
            "2024-03-01".to_owned()
        } else {
            format!("day-{i}")
        };
        lines.push(format!("D-{i},1,{date},IMPORT,8471300100,CN,100,USD"));
    }
    let refused = ROWS - ROWS / 5;
    // Row i is on line i + 2; the sum of the refused rows' lines.
    let line_sum: u64 = (0..ROWS).filter(|i| i % 5 != 0).map(|i| i + 2).sum();
    for backend in BACKENDS {
        let mut env = TestEnv::new(backend).await;
        let file = env.dir.path().join("mostly bad.csv");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
        // With nowhere to keep them, the load is refused whole, saying why.
        let nowhere = env.dir.path().join("no such folder");
        env.extra_env
            .push(("TMPDIR".into(), nowhere.to_str().expect("utf-8").into()));
        let refused_load = env
            .run(&["load", "trade", path(&file), "--provider", "US"])
            .await;
        env.extra_env.pop();
        assert!(!refused_load.ok, "{}", refused_load.stdout);
        assert!(
            refused_load.stderr.contains(
                "cannot keep the rejected rows aside in a temporary file: No such file or directory"
            ) && refused_load.stderr.contains("nothing was written"),
            "{}",
            refused_load.stderr
        );
        for table in ["batches", "trade_records", "batch_rejections"] {
            assert_eq!(env.count(table).await, 0, "{backend:?} {table}");
        }
        let run = env
            .load_ok(&["trade", path(&file), "--provider", "US"])
            .await;
        assert!(
            run.stdout
                .contains(&format!("{} rows accepted, {refused} rejected", ROWS / 5)),
            "{}",
            run.stdout
        );
        // The 50th refused row is row 62 (four of every five), on line 64.
        assert!(
            run.stdout.contains("line 64: declaration_date \"day-62\""),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("line 65:"), "{}", run.stdout);
        assert_eq!(
            env.count("batch_rejections").await,
            i64::try_from(refused).unwrap()
        );
        assert_eq!(
            env.scalar("SELECT CAST(SUM(line_number) AS BIGINT) FROM batch_rejections")
                .await,
            i64::try_from(line_sum).unwrap()
        );
        // Stored in file order: no later row before an earlier one.
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM (SELECT line_number, LAG(line_number) OVER (ORDER BY id) \
                 AS before FROM batch_rejections) r WHERE before >= line_number"
            )
            .await,
            0
        );
        // A row from the spilled part and one from the last chunk, whole.
        for i in [4_001_u64, 11_999] {
            let reason = env
                .text(&format!(
                    "SELECT reason FROM batch_rejections WHERE line_number = {}",
                    i + 2
                ))
                .await;
            assert!(reason.contains(&format!("\"day-{i}\"")), "{i}: {reason}");
        }
    }
}
