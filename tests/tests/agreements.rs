//! Sharing agreements: an administrator widens a partner's row scope, narrowly, for a period,
//! and can take it back; the grant is applied in SQL like every other scope.

use dartts_tests::{Backend, TestEnv, error_codes, fixture};
use serde_json::{Value, json};

const ROWS: &str = "{ tradeRecords(orderBy: [{ field: DECLARATION_ID }]) { totalCount edges { node { id declarationId providerCountry } } } }";

fn ids(data: &Value) -> Vec<String> {
    data["tradeRecords"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["declarationId"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn agreements_grant_exactly_what_they_say_until_revoked() {
    // The partners' instance: there a partner's scope includes the (anonymized) US rows with
    // its nation, here US-1005.
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_INSTANCE", "foreign");
    let f = |n: &str| fixture(n).to_str().expect("path").to_owned();
    env.load_ok(&["trade", &f("trade_canonical.csv"), "--provider", "US"])
        .await;
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
        vec!["KR-2001", "KR-2002", "KR-2003", "US-1005"]
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
        vec!["CN-3002", "KR-2001", "KR-2002", "KR-2003", "US-1005"]
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
        vec!["KR-2001", "KR-2002", "KR-2003", "US-1005"]
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
