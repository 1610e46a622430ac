//! The GraphQL surface over HTTP: connections, paging, multi-column sort, filters, node ids,
//! errors and the transport rules.

use dartts_tests::{BACKENDS, Backend, Server, TestEnv, error_codes};
use serde_json::{Value, json};

async fn loaded(backend: Backend) -> (TestEnv, Server) {
    let env = TestEnv::new(backend).await;
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    (env, server)
}

const PAGE: &str = r"query($first: Int, $after: String, $orderBy: [TradeRecordOrder!], $filter: TradeRecordFilter) {
  tradeRecords(first: $first, after: $after, orderBy: $orderBy, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id declarationId lineNumber hsCode importerName countryOfOrigin declaredValueUsd transportMode } }
  }
}";

fn ids(page: &Value) -> Vec<String> {
    page["tradeRecords"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["node"]["declarationId"].as_str().expect("id"),
                e["node"]["lineNumber"]
            )
        })
        .collect()
}

#[tokio::test]
async fn paging_visits_every_row_once_in_sort_order() {
    for backend in BACKENDS {
        let (_env, server) = loaded(backend).await;
        let order = json!([{ "field": "TRANSPORT_MODE", "direction": "DESC" }, { "field": "DECLARED_VALUE_USD" }]);
        let all = server
            .data(PAGE, json!({ "first": 100, "orderBy": order }))
            .await;
        let expected = ids(&all);
        assert_eq!(expected.len(), 10);

        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = server
                .data(
                    PAGE,
                    json!({ "first": 3, "after": after, "orderBy": order }),
                )
                .await;
            let conn = &page["tradeRecords"];
            assert_eq!(conn["totalCount"], 10);
            assert_eq!(conn["pageInfo"]["hasPreviousPage"], json!(after.is_some()));
            seen.extend(ids(&page));
            if conn["pageInfo"]["hasNextPage"] == json!(false) {
                break;
            }
            after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
        assert_eq!(seen, expected, "{backend:?}");

        // The order itself: SEA before AIR (descending), then value ascending within each.
        let edges = all["tradeRecords"]["edges"].as_array().expect("edges");
        let keys: Vec<(String, f64)> = edges
            .iter()
            .map(|e| {
                (
                    e["node"]["transportMode"]
                        .as_str()
                        .expect("mode")
                        .to_owned(),
                    e["node"]["declaredValueUsd"].as_f64().expect("value"),
                )
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.total_cmp(&b.1)));
        assert_eq!(keys, sorted, "{backend:?}");
        assert_eq!(keys[0], ("SEA".to_owned(), 4000.0));
    }
}

#[tokio::test]
async fn filters_compose_in_the_database() {
    for backend in BACKENDS {
        let (_env, server) = loaded(backend).await;
        let count = |filter: Value| {
            let server = &server;
            async move {
                let data = server.data(PAGE, json!({ "filter": filter })).await;
                data["tradeRecords"]["totalCount"].as_i64().expect("count")
            }
        };
        assert_eq!(count(json!({ "hsCodePrefix": "8471" })).await, 3);
        assert_eq!(
            count(json!({ "hsCodePrefix": "71", "countryOfOrigin": ["PE"] })).await,
            2
        );
        assert_eq!(count(json!({ "countryOfOrigin": ["cn", "KR"] })).await, 3);
        // Case-insensitive contains; LIKE wildcards in the input are literal.
        assert_eq!(count(json!({ "importerNameContains": "ACME" })).await, 4);
        assert_eq!(count(json!({ "importerNameContains": "100%" })).await, 1);
        assert_eq!(count(json!({ "importerNameContains": "s_c" })).await, 0);
        assert_eq!(count(json!({ "importerNameContains": "Pure_Co" })).await, 1);
        assert_eq!(
            count(
                json!({ "declarationDateFrom": "2024-03-01", "declarationDateTo": "2024-03-31" })
            )
            .await,
            3
        );
        assert_eq!(
            count(json!({ "declaredValueUsdMin": 50000, "declaredValueUsdMax": 90000 })).await,
            4
        );
        assert_eq!(count(json!({ "direction": "EXPORT" })).await, 1);
        assert_eq!(count(json!({ "partnerCountry": ["AE"] })).await, 1);
        assert_eq!(count(json!({ "providerCountry": ["KR"] })).await, 0);
        assert_eq!(count(json!({ "declarationId": "US-1001" })).await, 2);
    }
}

/// `linkedFinancialActivity` links a trade record to FinCEN reports by the importer's id when
/// it has one, else by its exact name — the same rule as `linkedFinancialTransactions` — and
/// `false` is exactly the rest. The fixtures' importers all have ids, so this adds lines
/// without one, and a line whose id no report carries under a name one report does. The
/// answers are checked with no report loaded, with reports whose importers the filter lists
/// (`narrow`), and with more reported subjects than it lists on either backend (the subqueries
/// then decide alone); and with an importer name beside it (both lists, intersected).
#[tokio::test]
async fn linked_financial_activity_matches_by_id_else_by_name() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_trade_fixture().await;
        env.load_trade_without_importer_ids().await;
        let server = env.serve_as_analyst().await;
        let declarations = |filter: Value| {
            let server = &server;
            async move {
                let data = server
                    .data(PAGE, json!({ "first": 100, "filter": filter }))
                    .await;
                let conn = &data["tradeRecords"];
                let mut ids: Vec<String> = conn["edges"]
                    .as_array()
                    .expect("edges")
                    .iter()
                    .map(|e| e["node"]["declarationId"].as_str().expect("id").to_owned())
                    .collect();
                assert_eq!(conn["totalCount"], json!(ids.len()), "{backend:?}");
                ids.sort();
                ids.dedup();
                ids
            }
        };
        let linked = |linked: bool| declarations(json!({ "linkedFinancialActivity": linked }));
        // Of the three lines under John Q Courier's name, in any case, only the one reported.
        let john_linked = || {
            declarations(json!({ "linkedFinancialActivity": true, "importerNameContains": "JOHN" }))
        };
        let every = [
            "NI-1", "NI-2", "NI-3", "NI-4", "NI-5", "NI-6", "US-1001", "US-1002", "US-1003",
            "US-1004", "US-1005", "US-1006", "US-1007", "US-1008", "US-1009",
        ];
        // No report yet: nothing is linked.
        assert!(linked(true).await.is_empty(), "{backend:?}");
        assert_eq!(linked(false).await, every, "{backend:?}");
        assert!(john_linked().await.is_empty(), "{backend:?}");

        let fixture = dartts_tests::fixture("financial.csv");
        env.load_ok(&["financial", fixture.to_str().expect("path")])
            .await;
        // Reported subjects nobody trades under, more than the filter lists on either backend
        // (1,000 on PostgreSQL): loaded on the second round only.
        let filler = env.dir.path().join("filler.csv");
        let mut rows = String::from(
            "report_id,report_type,transaction_date,amount_usd,cash_direction,filer_institution,\
             subject_name,subject_tin\n",
        );
        for i in 0..1_001 {
            rows.push_str(&format!(
                "CTR-F-{i},CTR,2024-06-01,12000,IN,Filler Bank,Filler Subject {i},F-{i}\n"
            ));
        }
        std::fs::write(&filler, rows).expect("write");
        for round in ["listed", "too many to list"] {
            if round == "too many to list" {
                env.load_ok(&["financial", filler.to_str().expect("path")])
                    .await;
            }
            // By id: Acme (12-3456789, whatever the name's case) and Blue Harbor (98-7654321);
            // by exact name, only lines without an id: NI-1 (John Q Courier's CMIR has no TIN)
            // and NI-4 (Acme's name; its reports carry a TIN, but the name matches too).
            assert_eq!(
                linked(true).await,
                [
                    "NI-1", "NI-4", "US-1001", "US-1002", "US-1005", "US-1007", "US-1008"
                ],
                "{backend:?}, {round}"
            );
            // Not: a name in another case (NI-2), an id no report carries under a reported
            // name (NI-3), a name nobody reported (NI-5), no importer at all (NI-6), and the
            // fixtures' other importers.
            assert_eq!(
                linked(false).await,
                [
                    "NI-2", "NI-3", "NI-5", "NI-6", "US-1003", "US-1004", "US-1006", "US-1009"
                ],
                "{backend:?}, {round}"
            );
            assert_eq!(john_linked().await, ["NI-1"], "{backend:?}, {round}");
        }
    }
}

#[tokio::test]
async fn node_refetches_by_global_id_and_batch_resolves() {
    let (_env, server) = loaded(Backend::Postgres).await;
    let page = server.data(PAGE, json!({ "first": 1 })).await;
    let id = page["tradeRecords"]["edges"][0]["node"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let data = server
        .data(
            "query($id: ID!) { node(id: $id) { id ... on TradeRecord { declarationId batch { id dataset fileName acceptedRows rejectedRows sha256 } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["node"]["id"], json!(id));
    let batch = &data["node"]["batch"];
    assert_eq!(batch["dataset"], "TRADE");
    assert_eq!(batch["fileName"], "trade_canonical.csv");
    assert_eq!(batch["acceptedRows"], 10);
    let batch_id = batch["id"].as_str().expect("batch id").to_owned();
    let again = server
        .data(
            "query($id: ID!) { node(id: $id) { ... on Batch { fileName } } }",
            json!({ "id": batch_id }),
        )
        .await;
    assert_eq!(again["node"]["fileName"], "trade_canonical.csv");
    // A well-formed id of a row that does not exist is null, not an error.
    let missing = server
        .data(
            "{ node(id: \"VHJhZGVSZWNvcmQ6OTk5OTk\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(missing["node"], Value::Null);
}

/// The response as the GraphQL specification shapes it, read as text (key order is part of
/// it): keys in selection order whichever resolver finished first, a refused field `null` in
/// its place, and the quota charged with the records delivered.
#[tokio::test]
async fn responses_keep_selection_order_and_null_refused_fields_in_place() {
    for backend in BACKENDS {
        let (env, analyst) = loaded(backend).await;
        let officer = env.user("officer", "CBP_OFFICER", None).await;
        let officer = analyst.session(Some(&officer));
        // Two database reads and `me`: completion order would put `me` (no read) first.
        let body = analyst
            .http
            .post(analyst.url("/graphql"))
            .bearer_auth(analyst.token.as_deref().expect("analyst token"))
            .json(
                &json!({ "query": "{ b: tradeRecords(first: 1) { totalCount } me { role } \
                a: tradeRecords(first: 1) { edges { node { hsCode } } } }" }),
            )
            .send()
            .await
            .expect("POST")
            .text()
            .await
            .expect("body");
        let at = |key: &str| body.find(key).unwrap_or_else(|| panic!("{key} in {body}"));
        assert!(
            at("\"b\":") < at("\"me\":") && at("\"me\":") < at("\"a\":"),
            "{backend:?}: {body}"
        );
        let before = officer.quota_used().await;
        let query = "{ me { role } financialTransactions(first: 1) { totalCount } \
            tradeRecords(first: 2, orderBy: [{ field: HS_CODE }]) \
            { edges { node { hsCode linkedFinancialTransactions { id } } } } }";
        let response = officer.gql(query, json!({})).await;
        let data = &response["data"];
        assert_eq!(data["financialTransactions"], Value::Null, "{response:#}");
        let nodes = dartts_tests::nodes(&data["tradeRecords"]);
        assert_eq!(nodes.len(), 2, "{response:#}");
        for node in &nodes {
            let node = node.as_object().expect("node");
            assert!(node["hsCode"].is_string(), "{response:#}");
            assert_eq!(
                node.get("linkedFinancialTransactions"),
                Some(&Value::Null),
                "{backend:?}: a refused field is there, null"
            );
        }
        let codes = error_codes(&response);
        assert_eq!(codes, vec!["FORBIDDEN_FIELD"; 3], "{response:#}");
        assert_eq!(
            officer.quota_used().await - before,
            2,
            "{backend:?}: the two delivered trade records"
        );
    }
}

#[tokio::test]
async fn bad_input_gets_stable_codes_and_no_internals() {
    let (_env, server) = loaded(Backend::Postgres).await;
    for (query, code) in [
        (
            "{ tradeRecords(first: 100000) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ tradeRecords(after: \"garbage\") { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ tradeRecords(filter: { hsCodePrefix: \"84%\" }) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ tradeRecords(filter: { countryOfOrigin: [\"China\"] }) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ tradeRecords(filter: { declarationDateFrom: \"5 May\" }) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        // A date is written one way: chrono alone also read these.
        (
            "{ tradeRecords(filter: { declarationDateFrom: \"2024-1-1\" }) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ tradeRecords(filter: { declarationDateFrom: \"+002024-01-01\" }) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ tradeRecords(filter: { declarationDateFrom: \"0000-01-01\" }) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        ("{ node(id: \"bm9wZQ\") { id } }", "BAD_USER_INPUT"),
        (
            "{ tradeRecords { totalCont } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "{ sdnEntries(filter: { batchId: \"QmF0Y2g6OTk5\" }) { totalCount } }",
            "NOT_FOUND",
        ),
    ] {
        let response = server.gql(query, json!({})).await;
        assert_eq!(
            error_codes(&response),
            vec![code.to_owned()],
            "{query}: {response:#}"
        );
        let text = response.to_string();
        assert!(
            !text.contains("Did you mean"),
            "suggestions leak schema: {text}"
        );
        assert!(
            !text.to_lowercase().contains("sqlx") && !text.contains("SELECT"),
            "{text}"
        );
    }
    let variables = server
        .gql(
            PAGE,
            json!({ "filter": { "declarationDateFrom": "2024-99-01" } }),
        )
        .await;
    assert_eq!(
        error_codes(&variables),
        vec!["BAD_USER_INPUT".to_owned()],
        "{variables:#}"
    );
}

#[tokio::test]
async fn transport_rules() {
    let (_env, server) = loaded(Backend::Sqlite).await;
    let http = &server.http;
    // A form-encoded or text/plain POST (what a cross-site form can send) is refused.
    let token = server.token.clone().expect("token");
    let plain = http
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(r#"{"query":"{ batches { totalCount } }"}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(plain.status(), 415);
    // Batched arrays are not accepted.
    let batch = http
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!([{ "query": "{ batches { totalCount } }" }, { "query": "{ batches { totalCount } }" }]))
        .send()
        .await
        .expect("send");
    assert!(batch.status().is_client_error(), "{}", batch.status());
    // JSON that is no request object, or no JSON: what the body must be, in the client's
    // terms (serde's wording named Rust types: "expected struct Request").
    for body in [
        r#""x""#,
        r#"{"query": "{ me { role } }", "variables": [1]}"#,
        "{nope",
    ] {
        let refused = http
            .post(server.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(refused.status(), 400, "{body}");
        let text = refused.text().await.expect("body");
        assert!(
            text.contains("BAD_USER_INPUT") && text.contains("line 1"),
            "{body}: {text}"
        );
        assert!(
            !text.contains("struct") && !text.contains("a map"),
            "{body}: {text}"
        );
    }
    // Oversized bodies are refused before parsing, from the announced length alone (on a
    // connection of its own: the server closes it after the 413).
    let big = server
        .raw_status(&format!(
            "POST /graphql HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 400000"
        ))
        .await;
    assert_eq!(big, 413);
    // Deep and wide (aliased) queries hit the limits.
    let wide: String = (0..400)
        .map(|i| format!("a{i}: batches {{ totalCount }} "))
        .collect();
    let response = server.gql(&format!("{{ {wide} }}"), json!({})).await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("complex"),
        "{response:#}"
    );
    // GraphiQL is on in the embedded default; health endpoints answer.
    let page = http.get(server.url("/graphql")).send().await.expect("send");
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .expect("body")
            .to_lowercase()
            .contains("graphiql")
    );
    assert_eq!(
        http.get(server.url("/readyz"))
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
}

#[tokio::test]
async fn sdn_entries_carry_aliases_and_addresses() {
    let env = TestEnv::new(Backend::Postgres).await;
    let folder = dartts_tests::samples().join("ofac/2021-07_watchman_bench");
    env.load_ok(&["sdn", folder.to_str().expect("path")]).await;
    let server = env.serve_as_analyst().await;
    let data = server
        .data(
            r#"{ sdnEntries(filter: { entNum: 306 }) { totalCount edges { node { entNum name sdnType programs remarks aliases { name type } addresses { address city country } } } } }"#,
            json!({}),
        )
        .await;
    let conn = &data["sdnEntries"];
    assert_eq!(conn["totalCount"], 1);
    let node = &conn["edges"][0]["node"];
    assert_eq!(node["name"], "BANCO NACIONAL DE CUBA");
    assert_eq!(node["sdnType"], "ENTITY");
    assert_eq!(node["programs"], json!(["CUBA"]));
    assert!(
        node["aliases"]
            .as_array()
            .expect("aliases")
            .iter()
            .any(|a| a["name"] == "NATIONAL BANK OF CUBA" && a["type"] == "aka")
    );
    assert!(
        node["addresses"]
            .as_array()
            .expect("addresses")
            .iter()
            .any(|a| a["city"] == "Zurich CH-8022" && a["country"] == "Switzerland")
    );

    let individuals = server
        .data(r#"{ sdnEntries(first: 2, filter: { sdnType: INDIVIDUAL, program: "SDGT" }) { totalCount edges { node { name programs dateOfBirth } } } }"#, json!({}))
        .await;
    let total = individuals["sdnEntries"]["totalCount"]
        .as_i64()
        .expect("count");
    assert!(total > 100, "{total}");
    for edge in individuals["sdnEntries"]["edges"]
        .as_array()
        .expect("edges")
    {
        assert!(
            edge["node"]["programs"]
                .as_array()
                .expect("programs")
                .contains(&json!("SDGT"))
        );
    }
}
