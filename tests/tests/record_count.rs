//! Every delivered record is counted, however the response is shaped: the quota used and the
//! audit record's `records` grow by exactly the records the response holds, for the `nodes`
//! shortcut, an aliased `edges`, aliased `node(id:)` lookups and an aliased nested list.

use dartts_tests::{Backend, Server, TestEnv, fixture};
use serde_json::{Value, json};

struct Setup {
    env: TestEnv,
    server: Server,
    token: String,
}

async fn setup() -> Setup {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let financial = fixture("financial.csv");
    env.load_ok(&["financial", financial.to_str().expect("path")])
        .await;
    let token = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    Setup { env, server, token }
}

impl Setup {
    async fn used(&self) -> u64 {
        self.server
            .session(Some(&self.token))
            .data("{ quotaStatus { used } }", json!({}))
            .await["quotaStatus"]["used"]
            .as_u64()
            .expect("used")
    }

    /// Runs `query` and returns its data, the quota it used and the records its audit event
    /// says were delivered.
    async fn delivered(&self, query: &str) -> (Value, u64, i64) {
        let before = self.used().await;
        let last_event = self.env.scalar("SELECT MAX(id) FROM audit_events").await;
        let (status, body) = self
            .server
            .session(Some(&self.token))
            .post(query, json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        let used = self.used().await - before;
        // The query's own event is the first after those already written.
        let audited = self
            .env
            .scalar(&format!(
                "SELECT records FROM audit_events WHERE event_type = 'query' \
                 AND id > {last_event} ORDER BY id LIMIT 1"
            ))
            .await;
        (body["data"].clone(), used, audited)
    }

    /// Sends `query`, which the specification's validation refuses: no data, the validation
    /// code, nothing charged.
    async fn refused_invalid(&self, query: &str, what: &str) {
        let before = self.used().await;
        let (status, body) = self
            .server
            .session(Some(&self.token))
            .post(query, json!({}))
            .await;
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(body.get("data"), Some(&Value::Null), "{what}: {body}");
        assert_eq!(
            dartts_tests::error_codes(&body),
            vec!["GRAPHQL_VALIDATION_FAILED"],
            "{what}: {body}"
        );
        assert_eq!(self.used().await, before, "{what}");
    }
}

fn len(v: &Value) -> u64 {
    v.as_array().expect("a list").len() as u64
}

#[tokio::test]
async fn every_shape_of_response_counts_what_it_delivers() {
    let s = setup().await;

    // The `nodes` shortcut.
    let (data, used, audited) = s
        .delivered("{ tradeRecords(first: 301) { nodes { declarationId } } }")
        .await;
    let rows = len(&data["tradeRecords"]["nodes"]);
    assert_eq!(rows, 10, "the fixture's ten rows");
    assert_eq!((used, audited), (rows, rows as i64), "nodes");

    // An aliased `edges`.
    let (data, used, audited) = s
        .delivered("{ tradeRecords(first: 301) { rows: edges { node { declarationId } } } }")
        .await;
    let rows = len(&data["tradeRecords"]["rows"]);
    assert_eq!(rows, 10);
    assert_eq!((used, audited), (rows, rows as i64), "aliased edges");

    // Edges and nodes of the same page: each delivered copy counts.
    let (_, used, audited) = s
        .delivered("{ tradeRecords(first: 3) { edges { node { id } } nodes { id } } }")
        .await;
    assert_eq!((used, audited), (6, 6), "edges and nodes");

    // 150 aliased `node(id:)` lookups.
    let ids: Vec<String> = s
        .server
        .session(Some(&s.token))
        .data("{ tradeRecords(first: 10) { nodes { id } } }", json!({}))
        .await["tradeRecords"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect();
    let lookups: String = (0..150)
        .map(|i| format!("n{i}: node(id: \"{}\") {{ id }} ", ids[i % ids.len()]))
        .collect();
    let (data, used, audited) = s.delivered(&format!("{{ {lookups} }}")).await;
    let found = data
        .as_object()
        .expect("data")
        .values()
        .filter(|v| !v.is_null())
        .count() as u64;
    assert_eq!(found, 150);
    assert_eq!((used, audited), (150, 150), "aliased node lookups");

    // An aliased nested record list under trade records.
    let (data, used, audited) = s
        .delivered(
            "{ tradeRecords(first: 301) { edges { node { fin: linkedFinancialTransactions { amountUsd } } } } }",
        )
        .await;
    let edges = data["tradeRecords"]["edges"].as_array().expect("edges");
    let linked: u64 = edges.iter().map(|e| len(&e["node"]["fin"])).sum();
    assert!(linked > 0, "the fixtures link some reports: {data}");
    let total = edges.len() as u64 + linked;
    assert_eq!(
        (used, audited),
        (total, total as i64),
        "aliased nested list"
    );

    // One response key naming two fields through a fragment passes async-graphql's validation,
    // which would merge `me` and the page into one object under `a`: refused as the
    // specification's validation refuses it, nothing delivered, nothing counted.
    s.refused_invalid(
        "{ a: me { role } ... on Query { a: tradeRecords(first: 4) { nodes { id } } } }",
        "one key, two fields",
    )
    .await;
    // One key on two object types that never meet may name two fields, but only of one shape
    // (`SameResponseShape`): a code and a count under `x` are refused the same way.
    s.refused_invalid(
        &format!(
            r#"{{ node(id: "{}") {{ ... on TradeRecord {{ x: hsCode }} ... on Batch {{ x: acceptedRows }} }} }}"#,
            ids[0]
        ),
        "one key, two shapes",
    )
    .await;

    // Nothing delivered, nothing counted.
    let (_, used, _) = s
        .delivered("{ tradeRecords(first: 5) { totalCount } }")
        .await;
    assert_eq!(used, 0, "a count is not a record");
}
