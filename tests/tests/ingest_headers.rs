//! How a file's header row meets a layout (`ingest::input::names_column`): names in any ASCII
//! case, a column the layout does not read named at the end of the load instead of dropped in
//! silence, and an empty file or one separated by something other than commas told so.

use dartts_tests::{Backend, TestEnv, fixture, path};

#[tokio::test]
async fn header_names_in_any_case_load_and_unread_columns_are_named() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let good = std::fs::read_to_string(fixture("trade_canonical.csv")).expect("fixture");
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    // An upper-case header, with a misspelt optional column (the exporter's name) and a column
    // of the partner's own.
    lines[0] = lines[0]
        .to_uppercase()
        .replace("EXPORTER_NAME", "EXPORTER_NAM")
        + ",REMARKS";
    for line in &mut lines[1..] {
        line.push_str(",checked");
    }
    let file = env.dir.path().join("upper.csv");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let run = env
        .load_ok(&["trade", path(&file), "--provider", "US"])
        .await;
    assert!(
        run.stdout.contains("10 rows accepted, 0 rejected"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "columns not loaded (the layout has no field for them; the kept raw file has them): \
             EXPORTER_NAM, REMARKS"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM trade_records WHERE exporter_name IS NULL AND importer_name IS NOT NULL")
            .await,
        10
    );
    // The load's audit record says so too.
    assert_eq!(
        env.text(
            "SELECT json_extract(detail, '$.unreadColumns') FROM audit_events \
             WHERE event_type = 'ingest' AND outcome = 'ok'"
        )
        .await,
        r#"["EXPORTER_NAM","REMARKS"]"#
    );

    // A file whose every column is read says nothing of the kind.
    let run = env
        .load_ok(&["financial", path(&fixture("financial.csv"))])
        .await;
    assert!(!run.stdout.contains("columns not loaded"), "{}", run.stdout);

    // An empty file is said to be empty, not to lack each column.
    let empty = env.dir.path().join("empty.csv");
    std::fs::write(&empty, "").expect("write");
    let run = env.run(&["load", "financial", path(&empty)]).await;
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("the first line names no column: the file is empty or has no header row"),
        "{}",
        run.stderr
    );

    // Semicolons: every column is missing, and the refusal says why.
    for (dataset, source) in [
        ("trade", "trade_canonical.csv"),
        ("subjects", "subjects.csv"),
    ] {
        let text = std::fs::read_to_string(fixture(source)).expect("fixture");
        let file = env.dir.path().join(format!("semicolons-{dataset}.csv"));
        std::fs::write(&file, text.replace(',', ";")).expect("write");
        let mut args = vec!["load", dataset, path(&file)];
        if dataset == "trade" {
            args.extend(["--provider", "US"]);
        }
        let run = env.run(&args).await;
        assert!(!run.ok, "{dataset}: {}", run.stdout);
        assert!(
            run.stderr.contains(
                "(the header is a single column: the file seems separated by ';', not by commas)"
            ),
            "{dataset}: {}",
            run.stderr
        );
    }
}
