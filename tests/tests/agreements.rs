//! Sharing agreements: an administrator widens a partner's row scope, narrowly, for a period,
//! and can take it back; the grant is applied in SQL like every other scope.

use dartts_tests::{Backend, TestEnv, error_codes, fixture, fixture_lines};
use serde_json::{Value, json};

const ROWS: &str = "{ tradeRecords(orderBy: [{ field: DECLARATION_ID }]) { totalCount edges { node { id declarationId providerCountry } } } }";

fn ids(data: &Value) -> Vec<String> {
    data["tradeRecords"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| match e["node"]["providerCountry"].as_str() {
            // Its declaration id is a pseudonym (`D-…`, sorted between `CN-` and `KR-`).
            Some("US") => "US row".to_owned(),
            _ => e["node"]["declarationId"].as_str().expect("id").to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn agreements_grant_exactly_what_they_say_until_revoked() {
    // The partners' instance: there a partner's scope includes the pseudonymized US rows
    // with its nation, here US-1005's.
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_INSTANCE", "foreign");
    let f = |n: &str| fixture(n).to_str().expect("path").to_owned();
    env.load_us_exported_for("KR").await;
    env.load_ok(&["trade", &f("trade_kr.csv"), "--provider", "KR"])
        .await;
    env.load_ok(&["trade", &f("trade_cn.csv"), "--provider", "CN"])
        .await;
    let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let partner = server.session(Some(&kr));
    let admin_session = server.session(Some(&admin));

    let before = partner.data(ROWS, json!({})).await;
    assert_eq!(
        ids(&before),
        vec!["US row", "KR-2001", "KR-2002", "KR-2003"]
    );

    // Gold only (HS 71…), from China, declared in 2024.
    let create = "mutation($i: SharingAgreementInput!) { createSharingAgreement(input: $i) { id hsPrefix validTo } }";
    let input = json!({ "granteeNation": "kr", "providerCountry": "CN", "hsPrefix": "71", "validFrom": "2024-01-01", "validTo": "2024-12-31", "reason": "joint gold case 2024-17" });
    let created = admin_session.data(create, json!({ "i": input })).await;
    let agreement_id = created["createSharingAgreement"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let after = partner.data(ROWS, json!({})).await;
    assert_eq!(
        ids(&after),
        vec!["CN-3002", "US row", "KR-2001", "KR-2002", "KR-2003"]
    );
    let gold = after["tradeRecords"]["edges"][0]["node"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let node = partner
        .data(
            "query($id: ID!) { node(id: $id) { ... on TradeRecord { hsCode } } }",
            json!({ "id": gold }),
        )
        .await;
    assert_eq!(node["node"]["hsCode"], "7108120000");

    // An agreement for another period shows nothing more.
    let later = json!({ "granteeNation": "KR", "providerCountry": "CN", "validFrom": "2030-01-01", "reason": "future" });
    admin_session.data(create, json!({ "i": later })).await;
    assert_eq!(ids(&partner.data(ROWS, json!({})).await).len(), 5);

    // Invalid agreements are refused with the reason.
    for (bad, message) in [
        (
            json!({ "granteeNation": "KR", "providerCountry": "KR", "validFrom": "2024-01-01", "reason": "x" }),
            "own rows",
        ),
        (
            json!({ "granteeNation": "Korea", "providerCountry": "CN", "validFrom": "2024-01-01", "reason": "x" }),
            "ISO 3166",
        ),
        (
            json!({ "granteeNation": "KR", "providerCountry": "CN", "partnerCountry": "UK", "validFrom": "2024-01-01", "reason": "x" }),
            "partnerCountry: \\\"UK\\\" is not an ISO 3166-1 alpha-2 country code (the United Kingdom's code is GB)",
        ),
        (
            json!({ "granteeNation": "KR", "providerCountry": "CN", "hsPrefix": "7%", "validFrom": "2024-01-01", "reason": "x" }),
            "hsPrefix",
        ),
        (
            json!({ "granteeNation": "KR", "providerCountry": "CN", "validFrom": "2024-01-01", "validTo": "2023-01-01", "reason": "x" }),
            "before",
        ),
        (
            json!({ "granteeNation": "KR", "providerCountry": "CN", "validFrom": "2024-01-01", "reason": " " }),
            "reason",
        ),
    ] {
        let body = admin_session.gql(create, json!({ "i": bad })).await;
        assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{body}");
        assert!(body.to_string().contains(message), "{message}: {body}");
    }
    // Partners cannot grant themselves anything.
    let body = partner.gql(create, json!({ "i": input })).await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"]);
    let body = partner.gql("{ sharingAgreements { id } }", json!({})).await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"]);

    let revoke = "mutation($id: ID!, $r: String!) { revokeSharingAgreement(id: $id, reason: $r) { revokedBy } }";
    let revoked = admin_session
        .data(revoke, json!({ "id": agreement_id, "r": "case closed" }))
        .await;
    assert_eq!(revoked["revokeSharingAgreement"]["revokedBy"], "root");
    assert_eq!(
        ids(&partner.data(ROWS, json!({})).await),
        vec!["US row", "KR-2001", "KR-2002", "KR-2003"]
    );
    let node = partner
        .data(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": gold }),
        )
        .await;
    assert_eq!(node["node"], Value::Null);
    let again = admin_session
        .gql(revoke, json!({ "id": agreement_id, "r": "again" }))
        .await;
    assert_eq!(error_codes(&again), vec!["BAD_USER_INPUT"]);

    let listed = admin_session
        .data(
            "{ sharingAgreements { granteeNation revokedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["sharingAgreements"].as_array().expect("list").len(),
        2
    );
    assert!(env.scalar("SELECT COUNT(*) FROM audit_events WHERE event_type = 'admin_change' AND detail LIKE '%sharing_agreement%'").await >= 3);
}

/// A row a partner may read does not open the load it came from: `TradeRecord.batch` is the
/// batch `batches` and `node` show the caller, or null. A US file holding a row from Korea, and
/// China's file behind an agreement's row, keep their names, digests, counts and rejections
/// (which quote other nations' rows) from the partner; its own file and every file for HSI
/// still show.
#[tokio::test]
async fn a_partner_reads_the_batch_behind_a_row_only_when_it_may_read_the_batch() {
    // The partners' instance, where US rows with the partner's nation are in its scope.
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_INSTANCE", "foreign");
    let lines = fixture_lines("trade_cn.csv");
    let line = |id: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(id))
            .expect("fixture line")
            .clone()
    };
    // China's gold line (CN-3002) reaches KR through the agreement below; CN-3001's HS code is
    // refused, and its rejection's reason echoes the row.
    let mixed = env.dir.path().join("cn_mixed.csv");
    let refused = line("CN-3001").replace("8471300000", "ABCD");
    std::fs::write(
        &mixed,
        format!("{}\n{}\n{refused}\n", lines[0], line("CN-3002")),
    )
    .expect("write csv");
    let f = |n: &str| fixture(n).to_str().expect("path").to_owned();
    env.load_ok(&["trade", mixed.to_str().expect("path"), "--provider", "CN"])
        .await;
    env.load_ok(&["trade", &f("trade_kr.csv"), "--provider", "KR"])
        .await;
    env.load_us_exported_for("KR").await;
    let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let partner = server.session(Some(&kr));
    let grant = json!({ "granteeNation": "KR", "providerCountry": "CN", "hsPrefix": "71", "validFrom": "2024-01-01", "reason": "joint gold case" });
    server
        .session(Some(&admin))
        .data(
            "mutation($i: SharingAgreementInput!) { createSharingAgreement(input: $i) { id } }",
            json!({ "i": grant }),
        )
        .await;

    let rows = "{ tradeRecords(orderBy: [{ field: DECLARATION_ID }]) { nodes { declarationId providerCountry batch { fileName sha256 acceptedRows rejectedRows rejections { lineNumber reason } } } } }";
    let batches = |data: &Value| -> Vec<(String, Value)> {
        data["tradeRecords"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                let id = match n["providerCountry"].as_str() {
                    Some("US") => "US row".to_owned(),
                    _ => n["declarationId"].as_str().expect("id").to_owned(),
                };
                (id, n["batch"]["fileName"].clone())
            })
            .collect()
    };
    let seen = partner.data(rows, json!({})).await;
    assert_eq!(
        batches(&seen),
        [
            ("CN-3002".to_owned(), Value::Null),
            ("US row".to_owned(), Value::Null),
            ("KR-2001".to_owned(), json!("trade_kr.csv")),
            ("KR-2002".to_owned(), json!("trade_kr.csv")),
            ("KR-2003".to_owned(), json!("trade_kr.csv")),
        ],
        "{seen:#}"
    );
    for node in seen["tradeRecords"]["nodes"].as_array().expect("nodes") {
        if node["batch"].is_null() {
            continue;
        }
        assert_eq!(node["batch"]["rejectedRows"], 0, "{node}");
    }
    // What `batches` shows the partner is the same one file.
    let listed = partner
        .data("{ batches { nodes { fileName } } }", json!({}))
        .await;
    assert_eq!(
        listed["batches"]["nodes"],
        json!([{ "fileName": "trade_kr.csv" }])
    );

    // Every file, to an analyst of a domestic instance on this database (the foreign instance
    // has no such users).
    let env = env.without_env("DARTTS_INSTANCE");
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let all = env
        .serve()
        .await
        .session(Some(&hsi))
        .data(rows, json!({}))
        .await;
    let cn = all["tradeRecords"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["declarationId"] == "CN-3002")
        .expect("CN-3002")["batch"]
        .clone();
    assert_eq!(cn["fileName"], "cn_mixed.csv", "{cn:#}");
    assert_eq!(
        (&cn["acceptedRows"], &cn["rejectedRows"]),
        (&json!(1), &json!(1))
    );
    assert!(
        cn["rejections"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("ABCD"),
        "{cn:#}"
    );
    let files: Vec<Value> = batches(&all).into_iter().map(|(_, f)| f).collect();
    assert!(!files.contains(&Value::Null), "{all:#}");
}
