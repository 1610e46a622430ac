//! The foreign instance end to end: the domestic instance exports pseudonymized US rows for a
//! partner, the partner's instance loads them beside its own data and serves trade only.

use dartts_tests::{Backend, TestEnv, error_codes, fixture, path};
use serde_json::json;

const KEY: &str = "test-pseudonym-key-0123456789abcdef";

#[tokio::test]
async fn exported_partner_file_is_pseudonymized_stable_and_loadable() {
    let domestic = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_PSEUDONYM_KEY", KEY);
    domestic.load_trade_fixture().await;
    domestic
        .load_ok(&["trade", path(&fixture("trade_kr.csv")), "--provider", "KR"])
        .await;

    let out = domestic.dir.path().join("us-cn.csv");
    let run = domestic
        .run(&["export-foreign", "--partner", "cn", "--out", path(&out)])
        .await;
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("wrote 2 rows"), "{}", run.stdout);
    let text = std::fs::read_to_string(&out).expect("export");
    for secret in [
        "Acme",
        "12-3456789",
        "Main St",
        "Shenzhen Tech",
        "CNSHETEC123SHE",
        "US-1001",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the export:\n{text}"
        );
    }
    // Only US-provided rows with partner CN; KR's own rows never leave in a CN file.
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(!text.contains("KR-200"));

    // Same key, same rows: byte-identical (pseudonyms are stable per entity).
    let again = domestic.dir.path().join("us-cn-2.csv");
    domestic
        .run(&["export-foreign", "--partner", "CN", "--out", path(&again)])
        .await;
    assert_eq!(std::fs::read(&again).expect("again"), text.as_bytes());
    // The two lines of declaration US-1001 share the importer's pseudonym.
    let importer_ids: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(7).expect("importer_id"))
        .collect();
    assert_eq!(importer_ids[0], importer_ids[1]);
    assert!(importer_ids[0].starts_with("I-"));

    // Another partner gets different pseudonyms for the same importer (Acme trades with KR too).
    let kr_file = domestic.dir.path().join("us-kr.csv");
    domestic
        .run(&["export-foreign", "--partner", "KR", "--out", path(&kr_file)])
        .await;
    let kr_text = std::fs::read_to_string(&kr_file).expect("kr export");
    assert!(
        !kr_text.contains(importer_ids[0]),
        "pseudonyms link partners:\n{kr_text}"
    );

    // Refusals: bad partner, short key; nothing is written on failure.
    for (args, message) in [
        (
            vec!["export-foreign", "--partner", "US", "--out", "x.csv"],
            "other than US",
        ),
        (
            vec!["export-foreign", "--partner", "Korea", "--out", "x.csv"],
            "ISO 3166",
        ),
        (
            vec![
                "export-foreign",
                "--partner",
                "KR",
                "--out",
                "x.csv",
                "--pseudonym-key",
                "short",
            ],
            "at least 32 bytes",
        ),
    ] {
        let run = domestic.run(&args).await;
        assert!(
            !run.ok && run.stderr.contains(message),
            "{args:?}: {}",
            run.stderr
        );
    }

    // The partner's own instance: foreign, its own database.
    let foreign = TestEnv::new(Backend::Sqlite)
        .await
        .with_env("DARTTS_INSTANCE", "foreign")
        .with_env("DARTTS_PSEUDONYM_KEY", KEY);
    let run = foreign
        .load_ok(&["trade", path(&out), "--provider", "US", "--strict"])
        .await;
    assert!(
        run.stdout.contains("2 rows accepted, 0 rejected"),
        "{}",
        run.stdout
    );
    foreign
        .load_ok(&["trade", path(&fixture("trade_cn.csv")), "--provider", "CN"])
        .await;
    let run = foreign
        .run(&["export-foreign", "--partner", "KR", "--out", "x.csv"])
        .await;
    assert!(
        !run.ok && run.stderr.contains("domestic instance"),
        "{}",
        run.stderr
    );

    let partner = foreign
        .user("cn-analyst", "FOREIGN_PARTNER", Some("CN"))
        .await;
    // The foreign instance has no users of the domestic agencies (DESIGN §1): their roles read
    // every row, there every partner's declarations. Such an account is refused; one made
    // anyway (while the database served as domestic) reads nothing.
    let run = foreign
        .run(&["user", "add", "hsi-on-foreign", "--role", "HSI_ANALYST"])
        .await;
    assert!(
        !run.ok && run.stderr.contains("foreign instance"),
        "{}",
        run.stderr
    );
    let foreign = foreign.without_env("DARTTS_INSTANCE");
    let hsi = foreign.user("hsi-on-foreign", "HSI_ANALYST", None).await;
    let foreign = foreign.with_env("DARTTS_INSTANCE", "foreign");
    let server = foreign.serve().await;
    let data = server
        .session(Some(&partner))
        .data(
            "{ tradeRecords(orderBy: [{ field: DECLARATION_DATE }]) { totalCount edges { node { providerCountry importerName importerAddress partnerCountry } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["tradeRecords"]["totalCount"], 4);
    let us_rows: Vec<_> = data["tradeRecords"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["node"]["providerCountry"] == "US")
        .collect();
    assert_eq!(us_rows.len(), 2);
    for row in us_rows {
        assert!(
            row["node"]["importerName"]
                .as_str()
                .expect("name")
                .starts_with("I-")
        );
        assert_eq!(row["node"]["importerAddress"], serde_json::Value::Null);
    }
    // Nor does it serve financial, TECS or SDN data to anyone (the policy's unit tests try a
    // policy file that grants them).
    for token in [&hsi, &partner] {
        let body = server
            .session(Some(token))
            .gql("{ financialTransactions { totalCount } subjectRecords { totalCount } sdnEntries { totalCount } }", json!({}))
            .await;
        assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"; 3], "{body}");
    }
    let body = server
        .session(Some(&hsi))
        .gql(
            "{ tradeRecords { totalCount } tradeTotals(groupBy: [YEAR]) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"; 2], "{body}");
    assert_eq!(body["data"], serde_json::Value::Null, "{body}");
}
