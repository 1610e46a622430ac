//! Every amount, quantity and weight is bounded at ingest (docs/formats.md, "Bounds"): a row
//! beyond the bound, or whose value converts to more dollars than the bound (a tiny profile
//! rate), is rejected with its line and reason, and the rest of the file loads, on both
//! backends, with totals that stay numbers.

use dartts_tests::{BACKENDS, Backend, TestEnv, fixture, path};
use serde_json::json;

const TRADE_HEADER: &str = "declaration_id,declaration_date,direction,hs_code,importer_id,\
country_of_origin,quantity,net_weight_kg,declared_value,declared_currency,declared_value_usd\n";

/// (line, rejection reason's start) of the bounded trade file's refused rows.
const TRADE_REJECTED: [(i64, &str); 6] = [
    (3, "declared_value 1e16 USD is more than 1e15"),
    (4, "declared_value \"1.7e308\" is more than 1e18"),
    (5, "declared_value \"1.7e308\" is more than 1e18"),
    (6, "declared_value_usd \"1e16\" is more than 1e15"),
    (7, "quantity \"1.7e308\" is more than 1e15"),
    (8, "net_weight_kg \"1e16\" is more than 1e15"),
];

async fn rejected_with(env: &TestEnv, line: i64, reason: &str) -> i64 {
    env.scalar(&format!(
        "SELECT COUNT(*) FROM batch_rejections WHERE line_number = {line} AND reason LIKE '{}%'",
        reason.replace('\'', "''")
    ))
    .await
}

#[tokio::test]
async fn values_beyond_the_bounds_are_rejected_per_row() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let trade = env.dir.path().join("bounds.csv");
        std::fs::write(
            &trade,
            format!(
                "{TRADE_HEADER}\
                 B-1,2024-03-01,IMPORT,8471300100,IMPA,CN,10,20,50000,USD,\n\
                 B-2,2024-03-01,IMPORT,8471300100,IMPA,CN,10,20,1e16,USD,\n\
                 B-3,2024-03-01,IMPORT,8471300100,IMPA,CN,10,20,1.7e308,USD,\n\
                 B-4,2024-03-02,IMPORT,8471300100,IMPA,CN,10,20,1.7e308,USD,\n\
                 B-5,2024-03-02,IMPORT,8471300100,IMPA,CN,10,20,1e17,KRW,1e16\n\
                 B-6,2024-03-02,IMPORT,8471300100,IMPA,CN,1.7e308,20,100,USD,\n\
                 B-7,2024-03-02,IMPORT,8471300100,IMPA,CN,10,1e16,100,USD,\n\
                 B-8,2024-03-03,IMPORT,8471300100,IMPA,CN,10,20,1e15,USD,\n"
            ),
        )
        .expect("write");
        let run = env
            .load_ok(&["trade", path(&trade), "--provider", "US"])
            .await;
        assert!(
            run.stdout.contains("2 rows accepted, 6 rejected"),
            "{backend:?}: {}",
            run.stdout
        );
        for (line, reason) in TRADE_REJECTED {
            assert!(
                run.stdout
                    .contains(&format!("rejected bounds.csv line {line}: {reason}")),
                "{backend:?}: {}",
                run.stdout
            );
            assert_eq!(
                rejected_with(&env, line, reason).await,
                1,
                "{backend:?} {line}"
            );
        }

        // A profile whose rate makes a bounded value infinite in dollars.
        let profile = env.dir.path().join("tiny_rate.toml");
        std::fs::write(
            &profile,
            r#"name = "tiny-rate"
[columns]
declaration_id = "id"
declaration_date = "date"
direction = "direction"
hs_code = "hs"
importer_id = "importer"
declared_value = "value"
[currency]
code = "KRW"
rates = [
    { from = "2024-01-01", units_per_usd = 1300.0 },
    { from = "2024-06-01", units_per_usd = 1e-320 },
]
"#,
        )
        .expect("write");
        let krw = env.dir.path().join("krw.csv");
        std::fs::write(
            &krw,
            "id,date,direction,hs,importer,value\n\
             K-1,2024-02-01,IMPORT,8471300100,IMPK,1300000\n\
             K-2,2024-07-01,IMPORT,8471300100,IMPK,5\n",
        )
        .expect("write");
        let run = env
            .load_ok(&[
                "trade",
                path(&krw),
                "--provider",
                "KR",
                "--profile",
                path(&profile),
            ])
            .await;
        assert!(
            run.stdout.contains("1 rows accepted, 1 rejected")
                && run.stdout.contains(
                    "rejected krw.csv line 3: declared_value 5e0 KRW is inf USD, more than 1e15"
                ),
            "{backend:?}: {}",
            run.stdout
        );

        let financial = env.dir.path().join("financial.csv");
        let mut text = std::fs::read_to_string(fixture("financial.csv")).expect("fixture");
        let rows = text.lines().count() - 1;
        text.push_str("CTR-BIG-1,CTR,2024-01-12,1.7e308,IN,Bank,Big Co,,,,,,,\n");
        text.push_str("CTR-BIG-2,CTR,2024-01-12,1e16,IN,Bank,Big Co,,,,,,,\n");
        std::fs::write(&financial, text).expect("write");
        let run = env.load_ok(&["financial", path(&financial)]).await;
        assert!(
            run.stdout
                .contains(&format!("{rows} rows accepted, 2 rejected"))
                && run.stdout.contains(&format!(
                    "line {}: amount_usd \"1.7e308\" is more than 1e15",
                    rows + 2
                ))
                && run.stdout.contains(&format!(
                    "line {}: amount_usd \"1e16\" is more than 1e15",
                    rows + 3
                )),
            "{backend:?}: {}",
            run.stdout
        );

        // What loaded sums to numbers: 50,000 + 1e15 US dollars, 1,000 from the KRW file.
        let token = env.user("hsi", "HSI_ANALYST", None).await;
        let server = env.serve().await;
        let data = server
            .session(Some(&token))
            .data(
                "{ tradeTotals(groupBy: [PROVIDER_COUNTRY]) { nodes { providerCountry valueUsd recordCount } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["tradeTotals"]["nodes"],
            json!([
                { "providerCountry": "US", "valueUsd": 1e15 + 50_000.0, "recordCount": 2 },
                { "providerCountry": "KR", "valueUsd": 1_000.0, "recordCount": 1 },
            ]),
            "{backend:?}: {data}"
        );
    }
}

/// A date of birth that has not come yet is a typo, not a person: the row is rejected, in the
/// subject records and in the FinCEN reports alike.
#[tokio::test]
async fn a_date_of_birth_in_the_future_is_rejected() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let later = (chrono::Utc::now().date_naive() + chrono::Days::new(3)).format("%Y-%m-%d");
    let subjects = env.dir.path().join("subjects.csv");
    std::fs::write(
        &subjects,
        format!(
            "record_id,kind,creating_agency,involvement,case_status,created_date,name,date_of_birth\n\
             S-1,PERSON,ICE,SUBJECT,OPEN,2023-05-01,A Person,1980-04-12\n\
             S-2,PERSON,ICE,SUBJECT,OPEN,2023-05-01,A Typo,{later}\n"
        ),
    )
    .expect("write");
    let run = env.load_ok(&["subjects", path(&subjects)]).await;
    assert!(
        run.stdout.contains("1 rows accepted, 1 rejected"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "line 3: date_of_birth \"{later}\" is in the future"
        )),
        "{}",
        run.stdout
    );
    let financial = env.dir.path().join("financial.csv");
    std::fs::write(
        &financial,
        format!(
            "report_id,report_type,transaction_date,amount_usd,subject_name,subject_dob\n\
             F-1,CTR,2024-01-10,15000,A Person,1980-04-12\n\
             F-2,CTR,2024-01-10,15000,A Typo,{later}\n"
        ),
    )
    .expect("write");
    let run = env.load_ok(&["financial", path(&financial)]).await;
    assert!(
        run.stdout.contains("1 rows accepted, 1 rejected"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("line 3: subject_dob \"{later}\" is in the future")),
        "{}",
        run.stdout
    );
}
