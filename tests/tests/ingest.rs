//! `dartts load` on both backends: the real data sets, their counts, reloads, atomicity and
//! malformed input.

use dartts_tests::{
    BACKENDS, Backend, TestEnv, error_codes, fixture, fixture_lines, path, samples,
};
use serde_json::json;

#[tokio::test]
async fn ofac_2021_set_gives_the_published_counts() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let folder = samples().join("ofac/2021-07_watchman_bench");
        let run = env.load_ok(&["sdn", path(&folder)]).await;
        assert!(
            run.stdout.contains("34723 rows accepted, 0 rejected"),
            "{backend:?}: {}",
            run.stdout
        );
        assert_eq!(env.count("sdn_entries").await, 8_976, "{backend:?}");
        assert_eq!(env.count("sdn_addresses").await, 13_837, "{backend:?}");
        assert_eq!(env.count("sdn_aliases").await, 11_910, "{backend:?}");
        // Remarks facts were parsed out, and sdn_comments continuations were appended.
        let with_dob = env
            .scalar("SELECT COUNT(*) FROM sdn_entries WHERE date_of_birth IS NOT NULL")
            .await;
        assert!(
            with_dob > 3_000,
            "{backend:?}: only {with_dob} entries with a DOB"
        );
        let passports = env
            .scalar("SELECT COUNT(*) FROM sdn_entries WHERE passports IS NOT NULL")
            .await;
        assert!(
            passports > 500,
            "{backend:?}: only {passports} entries with a passport"
        );
        let continued = env
            .scalar("SELECT COUNT(*) FROM sdn_entries WHERE ent_num = 12300 AND remarks LIKE '%FUNDACION OKCOFFEE COLOMBIA%'")
            .await;
        assert_eq!(
            continued, 1,
            "{backend:?}: sdn_comments continuation missing"
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM batches WHERE dataset = 'sdn'")
                .await,
            1
        );
    }
}

#[tokio::test]
async fn korea_customs_files_load_through_the_kcs_profile() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        for split in ["train", "valid", "test"] {
            let run = env.load_kcs(split).await;
            assert!(
                run.stdout.contains(" 0 rejected"),
                "{backend:?} {split}: {}",
                run.stdout
            );
            // Not a terminal: no progress bar, only the counts at the end.
            assert!(!run.stderr.contains("rows/s"), "{}", run.stderr);
        }
        assert_eq!(env.count("trade_records").await, 54_000, "{backend:?}");
        // Every row is tagged with the providing nation, keeps its won amount and has USD.
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM trade_records WHERE provider_country = 'KR' AND declared_currency = 'KRW' AND declared_value_usd > 0 AND declared_value_usd < declared_value").await,
            54_000 - env.scalar("SELECT COUNT(*) FROM trade_records WHERE declared_value = 0").await,
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM trade_records WHERE transport_mode IS NULL")
                .await,
            0
        );
        assert_eq!(
            env.scalar("SELECT COUNT(DISTINCT importer_id) FROM trade_records")
                .await,
            14_482
        );
    }
}

#[tokio::test]
async fn the_same_file_twice_is_a_no_op() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let file = fixture("trade_canonical.csv");
        env.load_ok(&["trade", path(&file), "--provider", "US"])
            .await;
        let again = env
            .load_ok(&["trade", path(&file), "--provider", "US"])
            .await;
        assert!(
            again.stdout.contains("already loaded as batch"),
            "{}",
            again.stdout
        );
        assert_eq!(env.count("batches").await, 1);
        assert_eq!(env.count("trade_records").await, 10);
    }
}

/// Trade rows and their importer sums name a batch that exists, and a batch that rows still
/// name cannot be deleted or renumbered. On PostgreSQL this is checked once per statement by
/// triggers (migration 000018), not by a foreign key; on SQLite by the foreign key. Every
/// way in is tried on both: a single row, a statement whose rows are all good but one, an
/// update, and each side of the link.
#[tokio::test]
async fn rows_name_a_batch_that_exists_and_keep_it() {
    use sea_orm::{ConnectionTrait, SqlErr};
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_trade_fixture().await;
        let batch = env.scalar("SELECT MAX(id) FROM batches").await;
        let missing = batch + 1_000;
        let db = env.db().await;
        let copy_rows = |batch_ids: &str| {
            format!(
                "INSERT INTO trade_records (batch_id, provider_country, declaration_id, \
                 line_number, declaration_date, direction, hs_code, reporting_country, \
                 declared_value, declared_currency, declared_value_usd) \
                 SELECT b.id, provider_country, declaration_id, line_number, declaration_date, \
                 direction, hs_code, reporting_country, declared_value, declared_currency, \
                 declared_value_usd FROM trade_records, ({batch_ids}) AS b"
            )
        };
        let refused = [
            copy_rows(&format!("SELECT {missing} AS id")),
            copy_rows(&format!("SELECT {batch} AS id UNION ALL SELECT {missing}")),
            format!("UPDATE trade_records SET batch_id = {missing} WHERE line_number = 1"),
            format!(
                "INSERT INTO trade_importer_years (batch_id, provider_country, \
                 reporting_country, direction, declaration_date, declared_value_usd, \
                 record_count) VALUES ({missing}, 'US', 'US', 'IMPORT', '2024-01-01', 1.0, 1)"
            ),
            format!("DELETE FROM batches WHERE id = {batch}"),
            format!("UPDATE batches SET id = {missing} WHERE id = {batch}"),
        ];
        for sql in &refused {
            let err = db
                .execute_unprepared(sql)
                .await
                .expect_err(&format!("{backend:?}: accepted {sql}"));
            // SQLite reports its RESTRICT action under another extended code, which sqlx does
            // not classify, with the same message.
            assert!(
                matches!(
                    err.sql_err(),
                    Some(SqlErr::ForeignKeyConstraintViolation(_))
                ) || err.to_string().contains("FOREIGN KEY constraint failed"),
                "{backend:?}: {sql} failed otherwise: {err}"
            );
        }
        assert_eq!(env.count("trade_records").await, 10, "{backend:?}");
        // The same statement naming the existing batch is taken: the check is not a refusal
        // of everything.
        db.execute_unprepared(&copy_rows(&format!("SELECT {batch} AS id")))
            .await
            .expect("rows of an existing batch");
        assert_eq!(env.count("trade_records").await, 20, "{backend:?}");
        // Without rows naming it, the batch goes.
        for table in dartts::purge::BATCH_TABLES {
            db.execute_unprepared(&format!("DELETE FROM {table} WHERE batch_id = {batch}"))
                .await
                .expect("delete the batch's rows");
        }
        db.execute_unprepared(&format!("DELETE FROM batches WHERE id = {batch}"))
            .await
            .expect("a batch no row names");
    }
}

/// A trade file whose lines 3, 4 and 6 are bad in different ways.
fn bad_trade_file(dir: &std::path::Path) -> std::path::PathBuf {
    let good = std::fs::read_to_string(fixture("trade_canonical.csv")).expect("fixture");
    let mut lines: Vec<String> = good.lines().take(6).map(str::to_owned).collect();
    lines[2] = lines[2].replace("2024-01-05", "2024-13-45"); // bad date
    lines[3] = lines[3].replacen(",30000,", ",thirty,", 1); // bad number
    lines[5] = "US-9,1,2024-01-01,IMPORT".to_owned(); // too few columns
    let file = dir.join("bad.csv");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    file
}

#[tokio::test]
async fn bad_rows_are_reported_by_line_and_good_rows_load() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let file = bad_trade_file(env.dir.path());
        let run = env
            .load_ok(&["trade", path(&file), "--provider", "US"])
            .await;
        assert!(
            run.stdout.contains("2 rows accepted, 3 rejected"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("line 3: declaration_date \"2024-13-45\""),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("line 4: declared_value \"thirty\" is not a number"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("line 6: expected 25 columns, found 4"),
            "{}",
            run.stdout
        );
        assert_eq!(env.count("trade_records").await, 2);
        assert_eq!(env.count("batch_rejections").await, 3);
        assert_eq!(env.scalar("SELECT rejected_rows FROM batches").await, 3);
        // Every rejection is readable, past any one page, in file order.
        let server = env.serve_as_analyst().await;
        let data = server
            .data(
                "{ batches { nodes { all: rejections { lineNumber } page: rejections(first: 2, offset: 1) { lineNumber } past: rejections(offset: 3) { lineNumber } } } }",
                json!({}),
            )
            .await;
        let batch = &data["batches"]["nodes"][0];
        assert_eq!(
            batch["all"],
            json!([{ "lineNumber": 3 }, { "lineNumber": 4 }, { "lineNumber": 6 }])
        );
        assert_eq!(
            batch["page"],
            json!([{ "lineNumber": 4 }, { "lineNumber": 6 }])
        );
        assert_eq!(batch["past"], json!([]));
        let body = server
            .gql(
                "{ batches { nodes { rejections(offset: -1) { lineNumber } } } }",
                json!({}),
            )
            .await;
        assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{body}");
    }
}

#[tokio::test]
async fn strict_loads_are_all_or_nothing() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let file = bad_trade_file(env.dir.path());
        let run = env
            .run(&["load", "trade", path(&file), "--provider", "US", "--strict"])
            .await;
        assert!(!run.ok);
        assert!(
            run.stderr
                .contains("3 row(s) rejected and --strict is set; nothing was written"),
            "{}",
            run.stderr
        );
        assert!(
            run.stdout.contains("line 3"),
            "rejections are still listed: {}",
            run.stdout
        );
        assert_eq!(env.count("batches").await, 0, "{backend:?}");
        assert_eq!(env.count("trade_records").await, 0, "{backend:?}");
        assert_eq!(env.count("batch_rejections").await, 0, "{backend:?}");
        // Fixing the file and loading again works: the failed attempt left nothing behind.
        env.load_ok(&[
            "trade",
            path(&fixture("trade_canonical.csv")),
            "--provider",
            "US",
            "--strict",
        ])
        .await;
        assert_eq!(env.count("trade_records").await, 10);
    }
}

#[tokio::test]
async fn malformed_files_never_panic_and_never_half_commit() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let dir = env.dir.path();
        let header = fixture_lines("trade_canonical.csv").swap_remove(0);
        let row = "X-1,1,2024-01-01,IMPORT,8471,Thing,Imp,1,Addr,Exp,Man,M1,CN,CN,US,US,CN,1,SEA,1,NO,1,10,USD,";

        // Bad UTF-8 in one row: that row is rejected, the others load.
        let mut bytes = format!("{header}\n{row}\n").into_bytes();
        bytes.extend_from_slice(b"X-2,1,2024-01-01,IMPORT,8471,\xff\xfe,Imp,1,Addr,Exp,Man,M1,CN,CN,US,US,CN,1,SEA,1,NO,1,10,USD,\n");
        std::fs::write(dir.join("utf8.csv"), bytes).expect("write");
        let run = env
            .load_ok(&["trade", path(&dir.join("utf8.csv")), "--provider", "US"])
            .await;
        assert!(
            run.stdout.contains("line 3: column 6 is not valid UTF-8"),
            "{}",
            run.stdout
        );

        // A 2 MiB line: the file is refused as a whole, nothing written.
        let huge = format!("{header}\n{row}\nX-3,{}\n", "A".repeat(2 << 20));
        std::fs::write(dir.join("huge.csv"), huge).expect("write");
        let run = env
            .run(&[
                "load",
                "trade",
                path(&dir.join("huge.csv")),
                "--provider",
                "US",
            ])
            .await;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("longer than"), "{}", run.stderr);

        // Missing required columns: refused before any row.
        std::fs::write(dir.join("cols.csv"), "declaration_id,hs_code\nA,8471\n").expect("write");
        let run = env
            .run(&[
                "load",
                "trade",
                path(&dir.join("cols.csv")),
                "--provider",
                "US",
            ])
            .await;
        assert_eq!(run.code, Some(1));
        assert!(
            run.stderr.contains("the file has no column(s)"),
            "{}",
            run.stderr
        );

        // Empty file and binary garbage.
        std::fs::write(dir.join("empty.csv"), "").expect("write");
        let run = env
            .run(&[
                "load",
                "trade",
                path(&dir.join("empty.csv")),
                "--provider",
                "US",
            ])
            .await;
        assert_eq!(run.code, Some(1), "{run:?}");
        std::fs::write(
            dir.join("garbage.csv"),
            [0u8, 159, 146, 150, 10, 0, 0, 34, 10],
        )
        .expect("write");
        let run = env
            .run(&["load", "financial", path(&dir.join("garbage.csv"))])
            .await;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

        assert_eq!(
            env.count("batches").await,
            1,
            "{backend:?}: only the UTF-8 file committed"
        );
        assert_eq!(env.count("trade_records").await, 1);
    }
}

#[tokio::test]
async fn bad_arguments_are_explained() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let file = fixture("trade_canonical.csv");
    let run = env.run(&["load", "trade", path(&file)]).await;
    assert!(
        run.stderr.contains("trade loads need --provider"),
        "{}",
        run.stderr
    );
    let run = env
        .run(&["load", "trade", path(&file), "--provider", "USA"])
        .await;
    assert!(
        run.stderr.contains("not an ISO 3166-1 alpha-2"),
        "{}",
        run.stderr
    );
    let run = env
        .run(&[
            "load",
            "trade",
            path(&file),
            "--provider",
            "US",
            "--profile",
            "nope",
        ])
        .await;
    assert!(
        run.stderr.contains("unknown profile \"nope\""),
        "{}",
        run.stderr
    );
    let run = env
        .run(&["load", "trade", "/does/not/exist.csv", "--provider", "US"])
        .await;
    assert!(run.stderr.contains("is not a file"), "{}", run.stderr);
    let run = env
        .run(&[
            "load",
            "trade",
            path(&file),
            "--provider",
            "US",
            "--as-of",
            "yesterday",
        ])
        .await;
    assert!(
        !run.ok && run.stderr.contains("YYYY-MM-DD"),
        "{}",
        run.stderr
    );
    assert_eq!(env.count("batches").await, 0);
}

#[tokio::test]
async fn subjects_accept_only_ice_and_cbp_and_never_store_victims() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let run = env
            .load_ok(&["subjects", path(&fixture("subjects.csv"))])
            .await;
        assert!(
            run.stdout.contains("3 rows accepted, 2 rejected"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("line 5: victim record"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("line 6: creating_agency \"FBI\": only ICE and CBP"),
            "{}",
            run.stdout
        );
        assert_eq!(env.count("subject_records").await, 3);
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM subject_records WHERE name = 'Jane Victim' OR ssn_tin = '123-45-6789'").await,
            0
        );
        // The rejection reason must not carry the victim's details either.
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM batch_rejections WHERE reason LIKE '%Jane%' OR reason LIKE '%123-45%'").await,
            0
        );
        assert_eq!(
            env.scalar("SELECT COUNT(DISTINCT kind) FROM subject_records")
                .await,
            3
        );
    }
}

#[tokio::test]
async fn financial_reports_load() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let run = env
            .load_ok(&["financial", path(&fixture("financial.csv"))])
            .await;
        assert!(
            run.stdout.contains("4 rows accepted, 0 rejected"),
            "{}",
            run.stdout
        );
        assert_eq!(
            env.scalar("SELECT COUNT(*) FROM financial_transactions WHERE report_type = 'CTR'")
                .await,
            2
        );
    }
}

#[tokio::test]
async fn foreign_instance_refuses_domestic_only_data_sets() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend)
            .await
            .with_env("DARTTS_INSTANCE", "foreign");
        for (dataset, file) in [
            ("financial", fixture("financial.csv")),
            ("subjects", fixture("subjects.csv")),
            ("sdn", samples().join("ofac/2021-07_watchman_bench")),
        ] {
            let run = env.run(&["load", dataset, path(&file)]).await;
            assert_eq!(run.code, Some(1), "{dataset}: {run:?}");
            assert!(
                run.stderr.contains("foreign instance does not accept"),
                "{}",
                run.stderr
            );
        }
        assert_eq!(env.count("batches").await, 0);
        // Nothing was kept on disk either: the raw store is only written for accepted loads.
        assert!(!env.dir.path().join("data/raw").exists());
        // US rows only pseudonymized: a raw US file's rows are each rejected, naming why.
        let raw = env.load_trade_fixture().await;
        assert!(
            raw.stdout.contains("0 rows accepted, 10 rejected")
                && raw.stdout.contains("is not a pseudonym"),
            "{}",
            raw.stdout
        );
        env.load_us_exported_for("KR").await;
        env.load_ok(&["trade", path(&fixture("trade_kr.csv")), "--provider", "KR"])
            .await;
        assert_eq!(env.count("trade_records").await, 1 + 3);
    }
}

#[tokio::test]
async fn raw_inputs_are_kept_content_addressed() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let file = fixture("financial.csv");
    env.load_ok(&["financial", path(&file)]).await;
    let sha = {
        use sha_check::digest;
        digest(&std::fs::read(&file).expect("read"))
    };
    let kept = env.dir.path().join("data/raw").join(&sha[..2]).join(&sha);
    assert_eq!(
        std::fs::read(kept).expect("kept copy"),
        std::fs::read(&file).expect("read")
    );
}

/// SHA-256 computed independently of the code under test (via `sha256sum`).
mod sha_check {
    pub fn digest(bytes: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write");
        let out = child.wait_with_output().expect("sha256sum output");
        String::from_utf8(out.stdout).expect("utf-8")[..64].to_owned()
    }
}

#[tokio::test]
async fn optional_canonical_columns_may_be_absent_from_the_header() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        assert!(env.run(&["migrate"]).await.ok);
        // The records' and the rollups' indexes: a first load drops and rebuilds them all.
        let indexes = "SELECT count(*) FROM pg_indexes WHERE tablename IN \
                       ('trade_records', 'trade_importer_years', 'trade_hs6_years')";
        let migrated = match backend {
            Backend::Postgres => env.scalar(indexes).await,
            Backend::Sqlite => 0,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // No exporter_name, country_of_destination, or any other optional column.
        let file = dir.path().join("minimal.csv");
        std::fs::write(
            &file,
            "declaration_id,declaration_date,direction,hs_code,declared_value,declared_currency\n\
             M-1,2024-05-01,IMPORT,847130,1200,USD\n\
             M-2,2024-05-02,EXPORT,0901,80.5,USD\n",
        )
        .expect("write");
        let run = env
            .load_ok(&["trade", path(&file), "--provider", "US"])
            .await;
        assert!(
            run.stdout.contains("2 rows accepted, 0 rejected"),
            "{backend:?}: {}",
            run.stdout
        );
        assert_eq!(
            env.scalar(
                "SELECT count(*) FROM trade_records WHERE exporter_name IS NULL \
                 AND country_of_destination IS NULL AND line_number = 1 \
                 AND declared_value_usd = declared_value"
            )
            .await,
            2,
            "{backend:?}"
        );
        if backend == Backend::Postgres {
            // The first load into the empty table builds the indexes after its rows, and
            // every one of them is back.
            assert!(migrated > 10, "{migrated}");
            assert_eq!(env.scalar(indexes).await, migrated);
            // Its rows were copied frozen (`COPY … FREEZE`): every page is all-visible at
            // once, which the statistics the load gathered record.
            assert_eq!(
                env.scalar(
                    "SELECT count(*) FROM pg_class WHERE relname = 'trade_records' \
                     AND relpages > 0 AND relallvisible = relpages"
                )
                .await,
                1
            );
            let second = dir.path().join("second.csv");
            std::fs::write(
                &second,
                "declaration_id,declaration_date,direction,hs_code,declared_value,declared_currency\n\
                 M-3,2024-05-03,IMPORT,847130,5,USD\n",
            )
            .expect("write");
            env.load_ok(&["trade", path(&second), "--provider", "US"])
                .await;
            assert_eq!(env.scalar(indexes).await, migrated);
        }
    }
}
