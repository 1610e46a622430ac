//! Cursors are sealed: a cursor shows nothing of its row (its sort-key values are record data
//! that no quota counts, so `edges { cursor }` alone read them for free), it cannot be altered
//! or made up, a cursor of another deployment is refused like any malformed cursor, and one
//! made before a restart (the same audit key, so the same cursor key) still pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dartts_tests::{Backend, Server, TestEnv, error_codes, fixture};
use serde_json::{Value, json};

const RECORDS: &str = "query($a: String) {
  tradeRecords(first: 3, after: $a, orderBy: [{ field: IMPORTER_NAME }, { field: DECLARED_VALUE_USD }]) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { declarationId importerName declaredValueUsd } } } }";

/// Connections the fixtures give edges to, with fields of the node whose values must not show.
const CONNECTIONS: [(&str, &str, &[&str]); 4] = [
    (
        "{ tradeTotals(groupBy: [IMPORTER_NAME, COUNTRY_OF_ORIGIN], orderBy: [{ measure: VALUE_USD }]) { edges { cursor node { importerName countryOfOrigin valueUsd } } } }",
        "tradeTotals",
        &["importerName", "valueUsd"],
    ),
    (
        "{ financialTransactions { edges { cursor node { reportId transactionDate } } } }",
        "financialTransactions",
        &["reportId", "transactionDate"],
    ),
    (
        "{ redFlags { edges { cursor node { kind importer record { declarationId } } } } }",
        "redFlags",
        &["kind", "importer"],
    ),
    (
        "{ batches { edges { cursor node { fileName sha256 } } } }",
        "batches",
        &["fileName"],
    ),
];

/// Whether `text` shows in the cursor, as it is or base64url-decoded. Only texts of five bytes
/// or more are asked about: a shorter one could turn up in the random bytes by chance.
fn shows(cursor: &str, text: &str) -> bool {
    assert!(text.len() >= 5, "{text:?} is too short to look for");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).expect("base64url");
    cursor.contains(text) || bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// A value as a cursor's JSON would have written it (a float with its `.0`).
fn written(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().expect("f64")),
        other => other.to_string(),
    }
}

fn edges<'a>(data: &'a Value, field: &str) -> &'a Vec<Value> {
    data[field]["edges"].as_array().expect("edges")
}

fn declaration_ids(data: &Value) -> Vec<String> {
    edges(data, "tradeRecords")
        .iter()
        .map(|e| e["node"]["declarationId"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_cursor_shows_nothing_of_its_row_and_pages_after_a_restart() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let financial = fixture("financial.csv");
    env.load_ok(&["financial", financial.to_str().expect("path")])
        .await;
    let token = env.user("analyst", "HSI_ANALYST", None).await;
    let mut server = env.serve().await;
    server.token = Some(token.clone());

    let first = server.data(RECORDS, json!({})).await;
    let again = server.data(RECORDS, json!({})).await;
    assert_eq!(declaration_ids(&first), declaration_ids(&again));
    for (edge, same_row) in edges(&first, "tradeRecords")
        .iter()
        .zip(edges(&again, "tradeRecords"))
    {
        let cursor = edge["cursor"].as_str().expect("cursor");
        let node = &edge["node"];
        for text in [
            written(&node["importerName"]),
            written(&node["declaredValueUsd"]),
            written(&node["declarationId"]),
            "tradeRecords".to_owned(),
            "importerName".to_owned(),
            "\"k\":[".to_owned(),
        ]
        .into_iter()
        .filter(|t| t.len() >= 5)
        {
            assert!(!shows(cursor, &text), "{text} in {cursor} ({node})");
        }
        // Not even two cursors of one row can be matched up.
        assert_ne!(edge["cursor"], same_row["cursor"], "{node}");
    }
    for (query, field, keyed) in CONNECTIONS {
        let data = server.data(query, json!({})).await;
        assert!(!edges(&data, field).is_empty(), "{field}: {data}");
        for edge in edges(&data, field) {
            let cursor = edge["cursor"].as_str().expect("cursor");
            let mut texts = vec![field.to_owned(), "\"k\":[".to_owned()];
            texts.extend(keyed.iter().map(|k| written(&edge["node"][*k])));
            for text in texts.into_iter().filter(|t| t.len() >= 5) {
                assert!(!shows(cursor, &text), "{field}: {text} in {cursor}");
            }
        }
    }

    // The next page, then the same cursor once the server has restarted.
    let end = first["tradeRecords"]["pageInfo"]["endCursor"].clone();
    let second = declaration_ids(&server.data(RECORDS, json!({ "a": end })).await);
    assert_eq!(second.len(), 3, "{second:?}");
    drop(server);
    let mut restarted = env.serve().await;
    restarted.token = Some(token);
    let after_restart = restarted.data(RECORDS, json!({ "a": end })).await;
    assert_eq!(declaration_ids(&after_restart), second);
}

/// The refusal of `after`: BAD_USER_INPUT, and its message.
async fn refusal(server: &Server, after: &str) -> (Vec<String>, String) {
    let body = server.gql(RECORDS, json!({ "a": after })).await;
    assert!(body["data"]["tradeRecords"].is_null(), "{after}: {body}");
    let message = body["errors"][0]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    (error_codes(&body), message)
}

#[tokio::test]
async fn altered_plain_and_other_deployments_cursors_are_malformed() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    // Another deployment of the same data, whose audit key is another.
    let other = TestEnv::new(Backend::Sqlite)
        .await
        .with_env("DARTTS_AUDIT_KEY", "another deployment's audit chain key");
    other.load_trade_fixture().await;
    let other_server = other.serve_as_analyst().await;

    let malformed = refusal(&server, "not a cursor").await;
    assert_eq!(malformed.0, ["BAD_USER_INPUT"]);
    let own = server.data(RECORDS, json!({})).await["tradeRecords"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let theirs =
        other_server.data(RECORDS, json!({})).await["tradeRecords"]["pageInfo"]["endCursor"]
            .as_str()
            .expect("cursor")
            .to_owned();
    // Each is a cursor where it was made.
    server.data(RECORDS, json!({ "a": own })).await;
    other_server.data(RECORDS, json!({ "a": theirs })).await;

    let bytes = URL_SAFE_NO_PAD.decode(&own).expect("base64url");
    let flipped = |i: usize| {
        let mut b = bytes.clone();
        b[i] ^= 0x20;
        URL_SAFE_NO_PAD.encode(b)
    };
    // What a cursor of this page was before cursors were sealed (the third row, Acme's 50,000).
    let plain = URL_SAFE_NO_PAD.encode(
        r#"{"v":1,"s":"tradeRecords|importerName:a|declaredValueUsd:a|id:a","k":["Acme Imports LLC",50000.0,1]}"#,
    );
    for (what, cursor) in [
        ("another deployment's", theirs),
        ("a nonce byte flipped", flipped(0)),
        ("a sealed byte flipped", flipped(bytes.len() / 2)),
        ("a tag byte flipped", flipped(bytes.len() - 1)),
        (
            "cut short",
            URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]),
        ),
        ("plain", plain),
    ] {
        assert_eq!(
            refusal(&server, &cursor).await,
            malformed,
            "{what}: {cursor}"
        );
    }
}
