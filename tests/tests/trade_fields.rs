//! A `tradeRecords` page reads only the columns its selection resolves (`trade_columns`). Every
//! field of `TradeRecord` (the list comes from introspection, so a field added later is tried
//! too), asked for alone under each spelling a client may use — `edges { node }`, `nodes`, an
//! alias, a fragment, an inline fragment — shows what the record read whole by `node(id:)` holds.

use std::collections::BTreeMap;

use dartts_tests::{BACKENDS, TestEnv, fixture, fixture_lines};
use serde_json::{Value, json};

/// Sub-selections of the fields that return objects; a new object field fails the test until
/// it has one here.
const OBJECT_FIELDS: &[(&str, &str)] = &[
    ("batch", "{ id fileName }"),
    ("linkedFinancialTransactions", "{ id }"),
    ("partyHits", "{ party hit { source score matchedName } }"),
];

/// The fields of `TradeRecord` (name and sub-selection, empty for scalars) as the analyst's
/// introspection lists them.
async fn fields(server: &dartts_tests::Server) -> Vec<(String, String)> {
    let data = server
        .data(
            r#"{ __type(name: "TradeRecord") { name fields { name type { name kind
                ofType { name kind ofType { name kind ofType { name kind } } } } } } }"#,
            json!({}),
        )
        .await;
    let mut out = Vec::new();
    for field in data["__type"]["fields"].as_array().expect("fields") {
        let name = field["name"].as_str().expect("name").to_owned();
        // The innermost kind, under NON_NULL and LIST wrappers.
        let mut ty = &field["type"];
        while matches!(ty["kind"].as_str(), Some("NON_NULL" | "LIST")) {
            ty = &ty["ofType"];
        }
        let sub = if ty["kind"] == "OBJECT" {
            OBJECT_FIELDS
                .iter()
                .find(|(f, _)| *f == name)
                .unwrap_or_else(|| panic!("TradeRecord.{name}: add its sub-selection above"))
                .1
        } else {
            ""
        };
        out.push((name, sub.to_owned()));
    }
    out
}

/// The query of one spelling of a page that asks for `field` alone (and `id`, to match rows).
fn spellings(field: &str, sub: &str) -> Vec<String> {
    let args = r#"first: 50, orderBy: [{ field: DECLARED_VALUE_USD, direction: DESC }]"#;
    vec![
        format!("{{ tradeRecords({args}) {{ edges {{ node {{ id {field} {sub} }} }} }} }}"),
        format!("{{ tradeRecords({args}) {{ nodes {{ id {field} {sub} }} }} }}"),
        format!("{{ tradeRecords({args}) {{ nodes {{ id x: {field} {sub} }} }} }}"),
        format!(
            "{{ tradeRecords({args}) {{ edges {{ node {{ ...R }} }} }} }} \
             fragment R on TradeRecord {{ id {field} {sub} }}"
        ),
        format!(
            "{{ tradeRecords({args}) {{ nodes {{ ... on Node {{ id ... on TradeRecord {{ {field} {sub} }} }} }} }} }}"
        ),
    ]
}

/// `{ id → the field's value }` of one page, whatever its spelling.
fn values(data: &Value, field: &str) -> BTreeMap<String, Value> {
    let connection = &data["tradeRecords"];
    let records: Vec<&Value> = match connection["nodes"].as_array() {
        Some(nodes) => nodes.iter().collect(),
        None => connection["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| &e["node"])
            .collect(),
    };
    records
        .into_iter()
        .map(|r| {
            let value = r.get(field).or_else(|| r.get("x")).cloned();
            (
                r["id"].as_str().expect("id").to_owned(),
                value.unwrap_or_else(|| panic!("{field} missing from {r}")),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_field_asked_for_alone_shows_what_the_whole_record_holds() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend)
            .await
            .with_env("DARTTS_INTROSPECTION", "true");
        env.load_trade_fixture().await;
        let f = |name: &str| fixture(name).to_str().expect("path").to_owned();
        env.load_ok(&["trade", &f("trade_cn.csv"), "--provider", "CN"])
            .await;
        env.load_ok(&["financial", &f("financial.csv")]).await;
        env.load_ok(&["subjects", &f("subjects.csv")]).await;
        // A record whose exporter and manufacturer are TECS subjects, so that every party's
        // hits are compared (the fixture's hits are all importers').
        let lines = fixture_lines("trade_canonical.csv");
        let parties = env.dir.path().join("parties.csv");
        std::fs::write(
            &parties,
            format!(
                "{}\n{}\n",
                lines[0],
                lines[1].replace("US-1001,", "US-9101,").replace(
                    ",Shenzhen Tech Co,Shenzhen Tech Co,",
                    ",Golden Gate Metals,John Q Courier,"
                )
            ),
        )
        .expect("parties.csv");
        env.load_ok(&["trade", parties.to_str().expect("path"), "--provider", "US"])
            .await;
        let server = env.serve_as_analyst().await;
        let fields = fields(&server).await;
        assert!(fields.len() >= 28, "{fields:?}");

        // Each record read whole, by id.
        let everything: String = fields
            .iter()
            .map(|(name, sub)| format!("{name} {sub}"))
            .collect::<Vec<_>>()
            .join(" ");
        let ids = server
            .data("{ tradeRecords(first: 50) { nodes { id } } }", json!({}))
            .await;
        let ids: Vec<&str> = ids["tradeRecords"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_str().expect("id"))
            .collect();
        assert!(ids.len() >= 10, "{backend:?}: {ids:?}");
        let mut whole = BTreeMap::new();
        for id in &ids {
            let data = server
                .data(
                    &format!("query($id: ID!) {{ node(id: $id) {{ ... on TradeRecord {{ {everything} }} }} }}"),
                    json!({ "id": id }),
                )
                .await;
            whole.insert((*id).to_owned(), data["node"].clone());
        }
        // Not a vacuous comparison: the fixture's records differ in what they hold, and the
        // screening and financial links are not all empty.
        let filled = |field: &str| {
            whole
                .values()
                .any(|r| r[field].as_array().is_some_and(|a| !a.is_empty()))
        };
        assert!(filled("linkedFinancialTransactions"), "{whole:#?}");
        for party in ["IMPORTER", "EXPORTER", "MANUFACTURER"] {
            assert!(
                whole.values().any(|r| r["partyHits"]
                    .as_array()
                    .is_some_and(|hits| hits.iter().any(|h| h["party"] == party))),
                "{backend:?}: no {party} hit to compare: {whole:#?}"
            );
        }

        for (field, sub) in &fields {
            for query in spellings(field, sub) {
                let data = server.data(&query, json!({})).await;
                let page = values(&data, field);
                assert_eq!(page.len(), ids.len(), "{backend:?} {query}");
                for (id, value) in page {
                    assert_eq!(
                        value,
                        whole[&id][field.as_str()],
                        "{backend:?}: {field} of {id} in {query}"
                    );
                }
            }
        }
    }
}

/// The sort keys are read for the cursors even when no field shows them: pages of two, ordered
/// by keys the page does not select, walk the same records in the same order as one page.
#[tokio::test]
async fn cursors_hold_sort_keys_the_page_does_not_select() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_trade_fixture().await;
        let server = env.serve_as_analyst().await;
        let query = r"query($first: Int, $after: String, $orderBy: [TradeRecordOrder!]) {
          tradeRecords(first: $first, after: $after, orderBy: $orderBy) {
            pageInfo { hasNextPage endCursor } nodes { id } } }";
        for order in [
            json!([{ "field": "DECLARED_VALUE_USD", "direction": "DESC" }]),
            json!([{ "field": "PORT" }, { "field": "DECLARATION_DATE", "direction": "DESC" }]),
        ] {
            let ids = |data: &Value| -> Vec<String> {
                data["tradeRecords"]["nodes"]
                    .as_array()
                    .expect("nodes")
                    .iter()
                    .map(|n| n["id"].as_str().expect("id").to_owned())
                    .collect()
            };
            let whole = ids(&server
                .data(query, json!({ "first": 100, "orderBy": order }))
                .await);
            assert!(whole.len() >= 10, "{backend:?}: {whole:?}");
            let (mut walked, mut after) = (Vec::new(), None::<String>);
            loop {
                let data = server
                    .data(
                        query,
                        json!({ "first": 2, "after": after, "orderBy": order }),
                    )
                    .await;
                walked.extend(ids(&data));
                let info = &data["tradeRecords"]["pageInfo"];
                if info["hasNextPage"] == json!(false) {
                    break;
                }
                after = info["endCursor"].as_str().map(str::to_owned);
                assert!(
                    walked.len() <= whole.len(),
                    "{backend:?} {order}: {walked:?}"
                );
            }
            assert_eq!(walked, whole, "{backend:?} {order}");
        }
    }
}
