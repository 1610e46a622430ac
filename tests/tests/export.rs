//! CSV exports: same guards, scopes and quota as the GraphQL queries; streamed; idempotent.

use dartts_tests::redis::RedisServer;
use dartts_tests::{AGENT_WITHOUT_PII, Backend, Server, TestEnv, error_codes, fixture};
use serde_json::{Value, json};

async fn get(server: &Server, token: Option<&str>, path: &str, key: Option<&str>) -> (u16, String) {
    let mut request = server.http.get(server.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(k) = key {
        request = request.header("Idempotency-Key", k);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    error_codes(&v).join(",")
}

fn path_with_filter(file: &str, filter: Value) -> String {
    let encoded: String = url_encode(&filter.to_string());
    format!("/export/{file}?filter={encoded}")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const CBP_QUOTA: &str = r#"quota = { records = 20000, window = "day" }"#;

#[tokio::test]
async fn exports_follow_the_same_rules_as_queries() {
    let env = TestEnv::new(Backend::Postgres)
        .await
        // CBP without TRADE_PII here: columns and predicates on importer names must vanish.
        .with_roles_edited(&[
            (CBP_QUOTA, r#"quota = { records = 12, window = "day" }"#),
            (
                "allow = [\"TRADE\", \"TRADE_PII\", \"LAW_ENFORCEMENT\", \"SDN\"]\ndeny = [\"FINANCIAL\", \"ADMIN\", \"AUDIT\"]\nrows = \"all\"\nquota = { records = 12",
                "allow = [\"TRADE\", \"LAW_ENFORCEMENT\", \"SDN\"]\ndeny = [\"FINANCIAL\", \"ADMIN\", \"AUDIT\", \"TRADE_PII\"]\nrows = \"all\"\nquota = { records = 12",
            ),
        ]);
    let f = |n: &str| fixture(n).to_str().expect("path").to_owned();
    env.load_ok(&["trade", &f("trade_canonical.csv"), "--provider", "US"])
        .await;
    env.load_ok(&["trade", &f("trade_kr.csv"), "--provider", "KR"])
        .await;
    env.load_ok(&["financial", &f("financial.csv")]).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let server = env.serve().await;

    // HSI: filtered, every column.
    let (status, csv) = get(
        &server,
        Some(&hsi),
        &path_with_filter("trade.csv", json!({ "hsCodePrefix": "8471" })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4, "{csv}");
    assert!(
        lines[0].starts_with("declarationId,lineNumber,declarationDate"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("importerName") && csv.contains("Acme Imports LLC"));
    let (status, csv) = get(&server, Some(&hsi), "/export/financial.csv", None).await;
    assert_eq!((status, csv.lines().count()), (200, 5), "{csv}");

    // CBP: no financial export; no PII columns; no PII predicates or sort keys anywhere.
    let (status, body) = get(&server, Some(&cbp), "/export/financial.csv", None).await;
    assert_eq!(
        (status, code(&body)),
        (403, "FORBIDDEN_FIELD".to_owned()),
        "{body}"
    );
    let (status, body) = get(
        &server,
        Some(&cbp),
        &path_with_filter("trade.csv", json!({ "linkedFinancialActivity": true })),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (403, "FORBIDDEN_FIELD".to_owned()),
        "{body}"
    );
    let (status, body) = get(
        &server,
        Some(&cbp),
        &path_with_filter("trade.csv", json!({ "importerNameContains": "acme" })),
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (403, "FORBIDDEN_FIELD".to_owned()),
        "{body}"
    );
    let sorted = server
        .session(Some(&cbp))
        .gql(
            "{ tradeRecords(orderBy: [{ field: IMPORTER_NAME }]) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&sorted), vec!["FORBIDDEN_FIELD"], "{sorted}");
    let (status, csv) = get(
        &server,
        Some(&cbp),
        "/export/trade.csv?limit=5",
        Some("cbp-1"),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert!(
        !csv.lines().next().expect("header").contains("importer"),
        "{csv}"
    );
    assert!(!csv.contains("Acme"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 5);

    // Idempotent retry: same key, same request, same rows, counted once.
    let (status, again) = get(
        &server,
        Some(&cbp),
        "/export/trade.csv?limit=5",
        Some("cbp-1"),
    )
    .await;
    assert_eq!((status, &again), (200, &csv));
    let used = server
        .session(Some(&cbp))
        .data("{ quotaStatus { used } }", json!({}))
        .await;
    assert_eq!(used["quotaStatus"]["used"], 5);
    // The same key for a different request is a different request.
    let (status, _) = get(
        &server,
        Some(&cbp),
        "/export/trade.csv?limit=4",
        Some("cbp-1"),
    )
    .await;
    assert_eq!(status, 200);
    // 9 used of 12: a 10-row export would cross it — nothing delivered, account locked.
    let (status, body) = get(&server, Some(&cbp), "/export/trade.csv", Some("cbp-2")).await;
    assert_eq!(
        (status, code(&body)),
        (403, "ACCOUNT_LOCKED".to_owned()),
        "{body}"
    );
    assert!(!body.contains("declarationId"));

    // Foreign partner: its own rows, nothing else — on this (domestic) instance not even the
    // US rows with KR, which carry the real US importers.
    let (status, csv) = get(&server, Some(&kr), "/export/trade.csv", None).await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
    assert!(!csv.contains("US-1"), "{csv}");

    // Bad requests say what is wrong.
    for (path, status, expected) in [
        ("/export/trade.csv?limit=0", 400, "BAD_USER_INPUT"),
        ("/export/trade.csv?sort=x", 400, "BAD_USER_INPUT"),
        ("/export/trade.csv?filter=%7Bnope", 400, "BAD_USER_INPUT"),
        (
            "/export/trade.csv?filter=%7B%22hsCodePrefix%22%3A5%7D",
            400,
            "BAD_USER_INPUT",
        ),
        ("/export/secrets.csv", 404, "NOT_FOUND"),
    ] {
        let (got, body) = get(&server, Some(&hsi), path, None).await;
        assert_eq!(
            (got, code(&body)),
            (status, expected.to_owned()),
            "{path}: {body}"
        );
    }
    let (status, body) = get(&server, None, "/export/trade.csv", None).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED".to_owned()));
    assert!(
        env.scalar(
            "SELECT COUNT(*) FROM audit_events WHERE event_type = 'export' AND actor = 'cbp'"
        )
        .await
            >= 3
    );
}

#[tokio::test]
async fn financial_and_subject_exports_refuse_filters_on_hidden_fields() {
    // HSI_AGENT here reads financial and subject records, but not the FinCEN subject's name,
    // TIN and account number, nor a TECS person's name.
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_policy_edited(&AGENT_WITHOUT_PII);
    let f = |n: &str| fixture(n).to_str().expect("path").to_owned();
    env.load_ok(&["financial", &f("financial.csv")]).await;
    env.load_ok(&["subjects", &f("subjects.csv")]).await;
    let agent = env.user("agent", "HSI_AGENT", None).await;
    let server = env.serve().await;

    for (file, filter) in [
        ("financial.csv", json!({ "subjectTin": "12-3456789" })),
        ("financial.csv", json!({ "accountNumber": "000123456" })),
        (
            "financial.csv",
            json!({ "reportType": "CTR", "subjectNameContains": "acme" }),
        ),
        ("subjects.csv", json!({ "nameContains": "courier" })),
        // Only businesses match, whose names are readable; the predicate still reads the
        // person's name column.
        (
            "subjects.csv",
            json!({ "kind": "BUSINESS", "nameContains": "golden" }),
        ),
    ] {
        let (status, body) = get(
            &server,
            Some(&agent),
            &path_with_filter(file, filter.clone()),
            None,
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (403, "FORBIDDEN_FIELD".to_owned()),
            "{file} {filter}: {body}"
        );
        assert!(
            !body.contains("reportId") && !body.contains("recordId"),
            "{body}"
        );
    }
    // Refused before anything was counted or recorded as delivered.
    let used = server
        .session(Some(&agent))
        .data("{ quotaStatus { used } }", json!({}))
        .await;
    assert_eq!(used["quotaStatus"]["used"], 0);
    let exports =
        "SELECT COUNT(*) FROM audit_events WHERE event_type = 'export' AND actor = 'agent'";
    assert_eq!(env.scalar(exports).await, 0);

    // Members over readable fields export, without the hidden columns.
    let (status, csv) = get(
        &server,
        Some(&agent),
        &path_with_filter("financial.csv", json!({ "reportType": "CTR" })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let header = csv.lines().next().expect("header");
    assert!(header.starts_with("reportId,reportType,"), "{header}");
    for hidden in ["subjectName", "subjectTin", "accountNumber"] {
        assert!(!header.contains(hidden), "{header}");
    }
    assert!(!csv.contains("Acme"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2, "{csv}");
    let (status, csv) = get(
        &server,
        Some(&agent),
        &path_with_filter("subjects.csv", json!({ "kind": "PERSON" })),
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert!(
        !csv.lines().next().expect("header").contains(",name,"),
        "{csv}"
    );
    assert!(!csv.contains("Courier"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 1, "{csv}");
    assert_eq!(env.scalar(exports).await, 2);
}

#[tokio::test]
async fn a_filter_key_that_is_not_a_filter_field_is_refused_by_name() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    // Misspelt or miscased keys: each would have dropped its predicate and exported, and
    // charged, the unfiltered table.
    for (filter, key) in [
        (
            json!({ "importerNameContain": "NO SUCH IMPORTER" }),
            "importerNameContain",
        ),
        (
            json!({ "hsCodePrefix": "8471", "hsCodePrefx": "0501" }),
            "hsCodePrefx",
        ),
        (
            json!({ "linkedfinancialactivity": true }),
            "linkedfinancialactivity",
        ),
    ] {
        let (status, body) = get(
            &server,
            Some(&hsi),
            &path_with_filter("trade.csv", filter.clone()),
            None,
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (400, "BAD_USER_INPUT".to_owned()),
            "{filter}: {body}"
        );
        let message: Value = serde_json::from_str(&body).expect("JSON");
        let message = message["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains(&format!("{key:?}")), "{filter}: {message}");
    }
    assert_eq!(server.session(Some(&hsi)).quota_used().await, 0);
    // The same fields, spelt right, filter.
    let (status, csv) = get(
        &server,
        Some(&hsi),
        &path_with_filter("trade.csv", json!({ "hsCodePrefix": "8471" })),
        None,
    )
    .await;
    assert_eq!((status, csv.lines().count()), (200, 1 + 3), "{csv}");
}

/// An export replayed with its `Idempotency-Key` costs nothing while it delivers no more rows
/// than were charged for the key; rows loaded since are charged on the replay that delivers
/// them.
async fn replays_are_charged_only_for_rows_not_yet_charged(redis: Option<&RedisServer>) {
    let mut env = TestEnv::new(Backend::Postgres).await;
    if let Some(r) = redis {
        env = env.with_env("DARTTS_REDIS_URL", &r.url());
    }
    env.load_trade_fixture().await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&hsi));
    let export = || get(&server, Some(&hsi), "/export/trade.csv", Some("replay-1"));

    let (status, first) = export().await;
    assert_eq!(status, 200, "{first}");
    let first_rows = first.lines().count() as u64 - 1;
    assert_eq!(session.quota_used().await, first_rows);
    // Same rows: charged 0.
    let (status, again) = export().await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(session.quota_used().await, first_rows);

    // More rows match now: the replay delivers them, and they are charged.
    let f = fixture("trade_kr.csv");
    env.load_ok(&["trade", f.to_str().expect("path"), "--provider", "KR"])
        .await;
    let (status, more) = export().await;
    assert_eq!(status, 200, "{more}");
    let more_rows = more.lines().count() as u64 - 1;
    assert!(more_rows > first_rows, "{more}");
    assert_eq!(session.quota_used().await, more_rows);
    let last_export =
        "SELECT records FROM audit_events WHERE event_type = 'export' ORDER BY id DESC LIMIT 1";
    assert_eq!(env.scalar(last_export).await as u64, more_rows - first_rows);
    // And that larger grant is what the key now covers.
    let (status, last) = export().await;
    assert_eq!((status, &last), (200, &more));
    assert_eq!(session.quota_used().await, more_rows);
    assert_eq!(env.scalar(last_export).await, 0);
}

#[tokio::test]
async fn replays_are_charged_only_for_new_rows_in_the_embedded_store() {
    replays_are_charged_only_for_rows_not_yet_charged(None).await;
}

#[tokio::test]
async fn replays_are_charged_only_for_new_rows_in_redis() {
    let redis = RedisServer::start();
    replays_are_charged_only_for_rows_not_yet_charged(Some(&redis)).await;
}

/// Rows removed while an export streams (a purge) cut the transfer off with an error: the file
/// was counted, charged and audited whole, and a short one ending cleanly looks complete.
#[tokio::test]
async fn an_export_whose_rows_vanish_midway_is_cut_off_not_short() {
    use sea_orm::ConnectionTrait;
    use std::fmt::Write as _;
    let env = TestEnv::new(Backend::Postgres).await.with_roles_edited(&[(
        r#"quota = { records = 100000, window = "day" }"#,
        r#"quota = { records = 1000000, window = "day" }"#,
    )]);
    // More pages (5,000 rows each) than the stream's channel and the sockets hold, so the
    // stream is still reading when the rows go.
    let mut csv = String::from(
        "declaration_id,declaration_date,direction,hs_code,importer_name,declared_value,declared_currency\n",
    );
    for i in 0..250_000 {
        writeln!(
            csv,
            "V-{i},2024-01-05,IMPORT,8471300100,Importer {i},{},USD",
            100 + i
        )
        .expect("write");
    }
    let file = env.dir.path().join("many.csv");
    std::fs::write(&file, csv).expect("write csv");
    env.load_ok(&["trade", file.to_str().expect("path"), "--provider", "US"])
        .await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let response = server
        .http
        .get(server.url("/export/trade.csv"))
        .bearer_auth(&hsi)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    env.db()
        .await
        .execute_unprepared(
            "DELETE FROM trade_records WHERE id > (SELECT MIN(id) + 30000 FROM trade_records)",
        )
        .await
        .expect("delete");
    let body = response.bytes().await;
    assert!(
        body.is_err(),
        "a short file ended as if whole: {} bytes",
        body.map(|b| b.len()).unwrap_or_default()
    );
}
