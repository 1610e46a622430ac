//! A row that repeats a key (`ingest::repeats`, docs/formats.md "Rows that repeat a key"): a
//! declaration line, TECS record or FinCEN report delivered again is rejected with its line and
//! reason, on both backends, so totals count each row once; purging the earlier batch lets a
//! corrected delivery load in its place.

use dartts_tests::{BACKENDS, Backend, Run, Server, TestEnv, fixture_lines, path};
use serde_json::{Value, json};

const TRADE_HEADER: &str = "declaration_id,line_number,declaration_date,direction,hs_code,\
country_of_origin,declared_value,declared_currency";

/// A trade row of 100 USD for `declaration_id` and `line_number` ("" for none).
fn trade(declaration_id: &str, line_number: &str) -> String {
    format!("{declaration_id},{line_number},2024-03-01,IMPORT,8471300100,CN,100,USD")
}

/// Writes `lines` (a header and rows) as `name`, each ended by `eol`.
fn write(env: &TestEnv, name: &str, lines: &[String], eol: &str) -> std::path::PathBuf {
    let file = env.dir.path().join(name);
    std::fs::write(
        &file,
        lines
            .iter()
            .map(|l| format!("{l}{eol}"))
            .collect::<String>(),
    )
    .expect("write");
    file
}

fn says(run: &Run, counts: &str, rejected: &[(&str, u64, String)]) {
    assert!(run.stdout.contains(counts), "{}", run.stdout);
    for (file, line, reason) in rejected {
        assert!(
            run.stdout
                .contains(&format!("rejected {file} line {line}: {reason}")),
            "{file} {line}: {}",
            run.stdout
        );
    }
}

const FILE_REPEAT: &str = "repeats the declaration line (declaration_id and line_number) of line";

fn loaded_by(what: &str, batch: i64) -> String {
    format!(
        "the same {what} was loaded by batch {batch}; purge that batch first to load this row \
         in its place"
    )
}

const TOTALS: &str = "query { tradeTotals(groupBy: [PROVIDER_COUNTRY]) { edges { node {
  providerCountry recordCount valueUsd } } } }";

/// `(providerCountry, recordCount, valueUsd)` of the totals, by providing nation.
async fn totals(server: &Server) -> Vec<(String, i64, f64)> {
    let data: Value = server.data(TOTALS, json!({})).await;
    let mut totals: Vec<_> = data["tradeTotals"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["providerCountry"].as_str().expect("provider").to_owned(),
                n["recordCount"].as_i64().expect("count"),
                n["valueUsd"].as_f64().expect("value"),
            )
        })
        .collect();
    totals.sort_by(|a, b| a.0.cmp(&b.0));
    totals
}

#[tokio::test]
async fn a_declaration_line_delivered_again_is_rejected_and_totals_count_it_once() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let first = write(
            &env,
            "first.csv",
            &[
                TRADE_HEADER.into(),
                trade("D-1", "1"),
                trade("D-1", "2"),
                trade("D-2", ""),
                // No line number is line 1: the same line as the one above.
                trade("D-2", "1"),
                trade("D-1", "2"),
            ],
            "\n",
        );
        let run = env
            .load_ok(&["trade", path(&first), "--provider", "US"])
            .await;
        says(
            &run,
            "3 rows accepted, 2 rejected",
            &[
                ("first.csv", 5, format!("{FILE_REPEAT} 4")),
                ("first.csv", 6, format!("{FILE_REPEAT} 3")),
            ],
        );
        let first_batch = run.batch_id();

        // The same data exported again (other line endings, so another digest), with one new
        // declaration: only the new one loads. A line repeated within this file is named for
        // the file's line even when that line was loaded before.
        let again = write(
            &env,
            "again.csv",
            &[
                TRADE_HEADER.into(),
                trade("D-1", "1"),
                trade("D-3", "1"),
                trade("D-2", "1"),
                // Refused while reading, between rows the key check refuses.
                trade("D-4", "x"),
                trade("D-3", "1"),
                trade("D-1", ""),
            ],
            "\r\n",
        );
        let run = env
            .load_ok(&["trade", path(&again), "--provider", "US"])
            .await;
        let line = loaded_by(
            "declaration line (declaration_id and line_number)",
            first_batch,
        );
        says(
            &run,
            "1 rows accepted, 5 rejected",
            &[
                ("again.csv", 2, line.clone()),
                ("again.csv", 4, line),
                ("again.csv", 6, format!("{FILE_REPEAT} 3")),
                ("again.csv", 7, format!("{FILE_REPEAT} 2")),
            ],
        );
        assert!(
            run.stdout
                .contains("rejected again.csv line 5: line_number"),
            "{}",
            run.stdout
        );
        let again_batch = run.batch_id();
        assert_eq!(
            env.scalar(&format!(
                "SELECT accepted_rows * 10 + rejected_rows FROM batches WHERE id = {again_batch}"
            ))
            .await,
            15,
            "{backend:?}"
        );
        // Stored in file order, the order `Batch.rejections` reads them in: the rejections read
        // from the file and those of the key check (kept in the database) merged by line.
        assert_eq!(
            env.scalar(&format!(
                "SELECT COUNT(*) FROM batch_rejections a JOIN batch_rejections b \
                 ON b.batch_id = a.batch_id AND a.id < b.id AND a.line_number > b.line_number \
                 WHERE a.batch_id = {again_batch}"
            ))
            .await,
            0,
            "{backend:?}"
        );
        assert_eq!(
            env.scalar(&format!(
                "SELECT CAST(SUM(line_number) AS BIGINT) FROM batch_rejections \
                 WHERE batch_id = {again_batch}"
            ))
            .await,
            2 + 4 + 5 + 6 + 7,
            "{backend:?}"
        );
        // The row kept is the one read from line 3, and says so.
        assert_eq!(
            env.scalar(&format!(
                "SELECT source_line FROM trade_records WHERE batch_id = {again_batch}"
            ))
            .await,
            3,
            "{backend:?}"
        );

        // Another nation may number its declarations alike.
        let korea = write(
            &env,
            "korea.csv",
            &[TRADE_HEADER.into(), trade("D-1", "1"), trade("D-2", "1")],
            "\n",
        );
        let run = env
            .load_ok(&["trade", path(&korea), "--provider", "KR"])
            .await;
        says(&run, "2 rows accepted, 0 rejected", &[]);

        // All or nothing when asked: a repeat refuses the whole file.
        let strict = write(
            &env,
            "strict.csv",
            &[TRADE_HEADER.into(), trade("D-9", "1"), trade("D-3", "1")],
            "\n",
        );
        let run = env
            .run(&[
                "load",
                "trade",
                path(&strict),
                "--provider",
                "US",
                "--strict",
            ])
            .await;
        assert!(!run.ok, "{backend:?}: {}", run.stdout);
        assert_eq!(env.count("trade_records").await, 6, "{backend:?}");

        let server = env.serve_as_analyst().await;
        assert_eq!(
            totals(&server).await,
            [("KR".to_owned(), 2, 200.0), ("US".to_owned(), 4, 400.0)],
            "{backend:?}"
        );

        // A corrected delivery: the operator withdraws the batch it corrects, then loads it.
        let purge = env
            .run(&["purge", "--batch", &first_batch.to_string()])
            .await;
        assert!(purge.ok, "{backend:?}: {}", purge.stderr);
        let corrected = write(
            &env,
            "corrected.csv",
            &[
                TRADE_HEADER.into(),
                trade("D-1", "1").replace(",100,", ",150,"),
                trade("D-1", "2"),
                trade("D-2", "1"),
            ],
            "\n",
        );
        let run = env
            .load_ok(&["trade", path(&corrected), "--provider", "US"])
            .await;
        says(&run, "3 rows accepted, 0 rejected", &[]);
        assert_eq!(
            totals(&server).await,
            [("KR".to_owned(), 2, 200.0), ("US".to_owned(), 4, 450.0)],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_report_or_subject_record_delivered_again_is_rejected() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;

        // FinCEN: a report may fill several lines of its file, but not come again later.
        let financial = fixture_lines("financial.csv");
        let first = write(&env, "reports.csv", &financial, "\n");
        let run = env.load_ok(&["financial", path(&first)]).await;
        assert!(
            run.stdout.contains("4 rows accepted, 0 rejected"),
            "{}",
            run.stdout
        );
        let reports = run.batch_id();
        let new_report =
            |line: &str, id: &str| format!("{id}{}", &line[line.find(',').expect("a CSV line")..]);
        let second = write(
            &env,
            "more_reports.csv",
            &[
                financial[0].clone(),
                financial[1].clone(),
                new_report(&financial[1], "CTR-2025-0100"),
                new_report(&financial[2], "CTR-2025-0100"),
                financial[1].replace(",15000,", ",12000,"),
            ],
            "\n",
        );
        let run = env.load_ok(&["financial", path(&second)]).await;
        let line = loaded_by("report (report_id)", reports);
        says(
            &run,
            "2 rows accepted, 2 rejected",
            &[
                ("more_reports.csv", 2, line.clone()),
                ("more_reports.csv", 5, line),
            ],
        );
        assert_eq!(
            env.scalar(
                "SELECT COUNT(*) FROM financial_transactions WHERE report_id = 'CTR-2025-0100'"
            )
            .await,
            2,
            "{backend:?}"
        );
        assert_eq!(env.count("financial_transactions").await, 6, "{backend:?}");

        // TECS: a record once per file and once in all. The victim's record was never stored
        // (DESIGN §3), so its id is not taken when the same record comes again as a subject.
        let subjects = fixture_lines("subjects.csv");
        let first = write(&env, "extract.csv", &subjects, "\n");
        let run = env.load_ok(&["subjects", path(&first)]).await;
        let extract = run.batch_id();
        let stored = env.count("subject_records").await;
        let victim = subjects
            .iter()
            .find(|l| l.starts_with("P-0004,"))
            .expect("the fixture's victim");
        let next = write(
            &env,
            "next_extract.csv",
            &[
                subjects[0].clone(),
                subjects[1].clone(),
                subjects[1].replacen("P-0001", "P-0100", 1),
                subjects[1].replacen("P-0001", "P-0100", 1),
                victim.replacen(",VICTIM,", ",SUBJECT,", 1),
            ],
            "\n",
        );
        let run = env.load_ok(&["subjects", path(&next)]).await;
        says(
            &run,
            "2 rows accepted, 2 rejected",
            &[
                (
                    "next_extract.csv",
                    2,
                    loaded_by("record (record_id)", extract),
                ),
                (
                    "next_extract.csv",
                    4,
                    "repeats the record (record_id) of line 3; a file holds each once".into(),
                ),
            ],
        );
        assert_eq!(
            env.count("subject_records").await,
            stored + 2,
            "{backend:?}"
        );
    }
}

/// Two loads of the same declarations at once (PostgreSQL, where loads run side by side): each
/// checks after the other's commit, so one copy of each line stays, whichever load wins it.
/// The rollups are held locked meanwhile, so that both loads are past their writes before
/// either can commit: without the turn each checks before the other's rows are visible.
#[tokio::test]
async fn two_loads_of_the_same_lines_at_once_keep_one_copy() {
    const LINES: usize = 1_000;
    let env = TestEnv::new(Backend::Postgres).await;
    // A first load ten times larger, its statistics gathered: neither of the two then takes
    // the table for itself (as a first load does, making the other wait for its commit before
    // writing a row) or gathers statistics again (which makes the other wait likewise).
    let lines = |prefix: &str, n: usize| -> Vec<String> {
        std::iter::once(TRADE_HEADER.to_owned())
            .chain((0..n).map(|i| trade(&format!("{prefix}-{i:06}"), "1")))
            .collect()
    };
    let first = write(&env, "first.csv", &lines("F", 10 * LINES), "\n");
    env.load_ok(&["trade", path(&first), "--provider", "US"])
        .await;
    env.holding("ANALYZE trade_records")
        .await
        .commit()
        .await
        .expect("ANALYZE");
    let rows = lines("R", LINES);
    let (a, b) = (
        write(&env, "a.csv", &rows, "\n"),
        write(&env, "b.csv", &rows, "\r\n"),
    );
    let args = |file| ["trade", path(file), "--provider", "US"];
    let (a, b) = (args(&a), args(&b));
    let held = env
        .holding("LOCK TABLE trade_importer_years, trade_hs6_years IN SHARE MODE")
        .await;
    let release = async {
        // One load waits for a rollup; the other for a rollup too, or for its turn to check.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while env
            .scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .await
            < 2
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the loads never waited"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        held.rollback().await.expect("release the rollups");
    };
    let (a, b, ()) = tokio::join!(env.load_ok(&a), env.load_ok(&b), release);
    assert_eq!(env.count("trade_records").await, 11 * LINES as i64);
    assert_eq!(
        env.scalar("SELECT CAST(SUM(accepted_rows) AS BIGINT) FROM batches")
            .await,
        11 * LINES as i64,
        "{}\n{}",
        a.stdout,
        b.stdout
    );
    assert_eq!(
        env.scalar("SELECT CAST(SUM(rejected_rows) AS BIGINT) FROM batches")
            .await,
        LINES as i64
    );
}
