//! `Batch.rejections` across a page of many loads: each load's own refused rows, each window
//! where it was asked for, on both backends.

use dartts_tests::{BACKENDS, TestEnv};
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
