//! The entity view through HTTP: HSI sees every part of an importer, a CBP officer everything
//! but its FinCEN activity (refused on that field alone), a bad key is BAD_USER_INPUT, and the
//! quota grows by exactly the records the view delivered.

use dartts_tests::{Backend, TestEnv, error_codes, fixture, path};
use serde_json::{Value, json};

const VIEW: &str = "query($id: String, $name: String) { entity(importerId: $id, name: $name) {
    importerId name
    tradeTotals { totalCount edges { node { hsCode countryOfOrigin year valueUsd recordCount } } }
    priceAnomalies { totalCount edges { node { record { declarationId } } } }
    redFlags { totalCount edges { node { kind } } }
    financialTransactions { reportId subjectTin amountUsd }
    screeningHits { source matchedName score } } }";

fn len(v: &Value) -> u64 {
    v.as_array().map_or(0, |a| a.len() as u64)
}

#[tokio::test]
async fn entity_view_parts_follow_roles_and_count_records() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    env.load_ok(&["financial", path(&fixture("financial.csv"))])
        .await;
    env.load_ok(&["subjects", path(&fixture("subjects.csv"))])
        .await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let server = env.serve().await;

    // HSI: Acme's totals by chapter, origin and year, and its two FinCEN reports by TIN.
    let before = server.session(Some(&hsi)).quota_used().await;
    let (status, body) = server
        .session(Some(&hsi))
        .post(VIEW, json!({ "id": "12-3456789" }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let acme = &body["data"]["entity"];
    assert_eq!(acme["importerId"], "12-3456789");
    let totals = &acme["tradeTotals"]["edges"];
    assert!(len(totals) >= 1, "{acme}");
    let summed: i64 = totals
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["recordCount"].as_i64().expect("count"))
        .sum();
    // The fixture has four Acme lines (one with a lower-case name): the id filter finds all.
    assert_eq!(summed, 4, "{totals}");
    assert!(
        totals.as_array().expect("edges").iter().all(|e| {
            e["node"]["hsCode"].as_str().is_some_and(|h| h.len() == 2) && e["node"]["year"] == 2024
        }),
        "{totals}"
    );
    let fin = &acme["financialTransactions"];
    assert_eq!(len(fin), 2, "{fin}");
    assert!(
        fin.as_array()
            .expect("list")
            .iter()
            .all(|t| t["subjectTin"] == "12-3456789")
    );
    let delivered = len(totals)
        + len(&acme["priceAnomalies"]["edges"])
        + len(&acme["redFlags"]["edges"])
        + len(fin)
        + len(&acme["screeningHits"]);
    assert_eq!(
        server.session(Some(&hsi)).quota_used().await - before,
        delivered,
        "quota"
    );

    // By name: Golden Gate Metals is a TECS subject; the hits count too.
    let before = server.session(Some(&hsi)).quota_used().await;
    let golden = server
        .session(Some(&hsi))
        .data(VIEW, json!({ "name": "Golden Gate Metals" }))
        .await;
    let g = &golden["entity"];
    assert_eq!(g["name"], "Golden Gate Metals");
    assert!(
        g["screeningHits"]
            .as_array()
            .expect("hits")
            .iter()
            .any(|h| h["source"] == "TECS"),
        "{g}"
    );
    assert_eq!(len(&g["tradeTotals"]["edges"]), 1, "{g}");
    let delivered = len(&g["tradeTotals"]["edges"])
        + len(&g["priceAnomalies"]["edges"])
        + len(&g["redFlags"]["edges"])
        + len(&g["financialTransactions"])
        + len(&g["screeningHits"]);
    assert_eq!(
        server.session(Some(&hsi)).quota_used().await - before,
        delivered,
        "quota by name"
    );

    // CBP: the same view, refused only the money.
    let body = server
        .session(Some(&cbp))
        .gql(VIEW, json!({ "id": "12-3456789" }))
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"], "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["entity", "financialTransactions"]),
        "{body}"
    );
    let view = &body["data"]["entity"];
    assert!(view["financialTransactions"].is_null(), "{view}");
    assert_eq!(view["tradeTotals"], acme["tradeTotals"], "{view}");

    // Exactly one key.
    for vars in [json!({}), json!({ "id": "12-3456789", "name": "Acme" })] {
        let body = server.session(Some(&hsi)).gql(VIEW, vars).await;
        assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{body}");
    }
}
