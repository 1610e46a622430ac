//! Keyset cursors and `totalCount` on the connections: pages seek past a position in the sort
//! order, so a load between two pages cannot repeat or skip rows; NULLs sort the same on both
//! backends; a cursor from elsewhere is BAD_USER_INPUT (and audited); the quota counts exactly
//! the rows delivered.

use dartts_tests::{BACKENDS, Backend, Server, TestEnv, error_codes, fixture};
use serde_json::{Value, json};

const PAGE: &str = r"query($first: Int, $after: String, $orderBy: [TradeRecordOrder!], $filter: TradeRecordFilter) {
  tradeRecords(first: $first, after: $after, orderBy: $orderBy, filter: $filter) {
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { declarationId lineNumber importerId declaredValueUsd } }
  }
}";

fn keys(page: &Value) -> Vec<String> {
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

/// Every row, page by page of `size`, from `after` on.
async fn walk(server: &Server, order: &Value, size: i64, mut after: Option<String>) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let page = server
            .data(
                PAGE,
                json!({ "first": size, "after": after, "orderBy": order }),
            )
            .await;
        let conn = &page["tradeRecords"];
        seen.extend(keys(&page));
        if conn["pageInfo"]["hasNextPage"] == json!(false) {
            return seen;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

async fn load_cn(env: &TestEnv) {
    let path = fixture("trade_cn.csv");
    env.load_ok(&["trade", path.to_str().expect("path"), "--provider", "CN"])
        .await;
}

#[tokio::test]
async fn a_load_between_two_pages_neither_repeats_nor_skips_rows() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_trade_fixture().await;
        let server = env.serve_as_analyst().await;
        let order = json!([{ "field": "DECLARED_VALUE_USD", "direction": "DESC" }]);
        let first = server
            .data(PAGE, json!({ "first": 4, "orderBy": order }))
            .await;
        let first_keys = keys(&first);
        let cursor = first["tradeRecords"]["pageInfo"]["endCursor"]
            .as_str()
            .expect("cursor")
            .to_owned();

        // New rows land both before the cursor (300,000 USD) and after it (48,000 USD).
        load_cn(&env).await;
        let rest = walk(&server, &order, 3, Some(cursor)).await;
        let everything = walk(&server, &order, 100, None).await;
        assert_eq!(everything.len(), 12, "{backend:?}");
        let last = everything
            .iter()
            .position(|k| Some(k) == first_keys.last())
            .expect("the first page's last row");
        assert_eq!(rest, everything[last + 1..], "{backend:?}");
        assert!(rest.contains(&"CN-3001/1".to_owned()), "{backend:?}");
        assert!(
            !rest.iter().any(|k| first_keys.contains(k)),
            "{backend:?}: a row of the first page came again"
        );
    }
}

#[tokio::test]
async fn nulls_sort_last_ascending_and_first_descending_on_both_backends() {
    let mut orders = Vec::new();
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_trade_fixture().await;
        load_cn(&env).await;
        let server = env.serve_as_analyst().await;
        let mut per_backend = Vec::new();
        for direction in ["ASC", "DESC"] {
            let order = json!([{ "field": "IMPORTER_ID", "direction": direction }, { "field": "DECLARED_VALUE_USD" }]);
            let one_page = keys(
                &server
                    .data(PAGE, json!({ "first": 100, "orderBy": order }))
                    .await,
            );
            // Page sizes that end pages on NULLs, on ties and on ordinary values.
            for size in [1, 2, 5] {
                assert_eq!(
                    walk(&server, &order, size, None).await,
                    one_page,
                    "{backend:?} {direction} by {size}"
                );
            }
            let nulls: Vec<usize> = ["CN-3001/1", "CN-3002/1"]
                .iter()
                .map(|k| one_page.iter().position(|p| p == k).expect("CN row"))
                .collect();
            let expected = if direction == "ASC" {
                vec![10, 11]
            } else {
                vec![0, 1]
            };
            let mut sorted = nulls.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, expected, "{backend:?} {direction}: {one_page:?}");
            per_backend.push(one_page);
        }
        orders.push(per_backend);
    }
    assert_eq!(orders[0], orders[1], "SQLite and PostgreSQL page alike");
}

#[tokio::test]
async fn cursors_from_elsewhere_are_bad_user_input_and_audited() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let path = fixture("financial.csv");
    env.load_ok(&["financial", path.to_str().expect("path")])
        .await;
    let server = env.serve_as_analyst().await;
    let by_value = json!([{ "field": "DECLARED_VALUE_USD", "direction": "DESC" }]);
    let cursor_of = |data: &Value, connection: &str| {
        data[connection]["pageInfo"]["endCursor"]
            .as_str()
            .expect("cursor")
            .to_owned()
    };
    let trade = server
        .data(PAGE, json!({ "first": 2, "orderBy": by_value }))
        .await;
    let by_value_cursor = cursor_of(&trade, "tradeRecords");
    let fin = server
        .data(
            "{ financialTransactions(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let financial_cursor = cursor_of(&fin, "financialTransactions");

    let ascending = json!([{ "field": "DECLARED_VALUE_USD" }]);
    let cases = [
        ("garbage", json!("not a cursor"), by_value.clone()),
        // What the offset cursors of earlier releases looked like.
        ("offset", json!("b2Zmc2V0OjI"), by_value.clone()),
        (
            "another connection",
            json!(financial_cursor),
            by_value.clone(),
        ),
        ("another order", json!(by_value_cursor), ascending),
        // A cursor is sealed, so one altered (say, its id made larger than 64 bits) does not
        // open; the checks on the values inside are `keyset`'s unit tests.
        (
            "altered",
            json!(altered(&by_value_cursor)),
            by_value.clone(),
        ),
    ];
    for (what, after, order) in cases {
        let before = env.count("audit_events").await;
        let (status, body) = server
            .session(server.token.as_deref())
            .post(PAGE, json!({ "after": after, "orderBy": order }))
            .await;
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(
            error_codes(&body),
            vec!["BAD_USER_INPUT".to_owned()],
            "{what}: {body}"
        );
        assert!(body["data"]["tradeRecords"].is_null(), "{what}: {body}");
        assert_eq!(
            env.count("audit_events").await,
            before + 1,
            "{what}: the refused request is audited"
        );
    }
}

/// The cursor with its last byte changed, as a client tampering with it would.
fn altered(cursor: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = URL_SAFE_NO_PAD.decode(cursor).expect("base64");
    let last = bytes.last_mut().expect("a byte");
    *last ^= 1;
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn total_count_is_counted_when_asked_for_under_any_spelling_and_the_quota_counts_rows() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    let used = || async {
        server.data("{ quotaStatus { used } }", json!({})).await["quotaStatus"]["used"]
            .as_i64()
            .expect("used")
    };
    let start = used().await;
    let data = server
        .data(
            r#"{ a: tradeRecords(first: 3, filter: { hsCodePrefix: "8" }) { ...Count edges { node { hsCode } } }
                 b: tradeRecords(first: 1, filter: { hsCodePrefix: "71" }) { n: totalCount }
                 c: tradeRecords(first: 2, filter: { hsCodePrefix: "99" }) { edges { cursor } } }
               fragment Count on TradeRecordConnection { totalCount }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["a"]["totalCount"], 5, "{data}");
    assert_eq!(data["b"]["n"], 2, "{data}");
    assert_eq!(data["c"]["edges"], json!([]), "{data}");
    let codes: Vec<&str> = data["a"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["hsCode"].as_str().expect("hs"))
        .collect();
    assert!(codes.iter().all(|c| c.starts_with('8')), "{codes:?}");
    assert_eq!(used().await, start + 3, "three edges delivered");
}

#[tokio::test]
async fn the_embedded_default_queues_a_burst_of_64_clients_instead_of_failing() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    let order = json!([{ "field": "DECLARED_VALUE_USD", "direction": "DESC" }]);
    let requests = (0..64).map(|i| {
        let server = &server;
        let order = order.clone();
        async move {
            server
                .session(server.token.as_deref())
                .post(
                    "query($o: [TradeRecordOrder!], $f: TradeRecordFilter) { tradeRecords(first: 5, orderBy: $o, filter: $f) { totalCount edges { node { hsCode } } } }",
                    json!({ "o": order, "f": if i % 2 == 0 { json!({}) } else { json!({ "hsCodePrefix": "84" }) } }),
                )
                .await
        }
    });
    // Every request reads, is counted against the quota and is audited (a write) at once.
    let before = env.count("audit_events").await;
    for round in 0..2 {
        let answers = futures_util::future::join_all(requests.clone()).await;
        for (status, body) in answers {
            assert_eq!(status, 200, "round {round}: {body}");
            assert!(body.get("errors").is_none(), "round {round}: {body}");
        }
    }
    assert_eq!(
        env.count("audit_events").await,
        before + 128,
        "every delivered answer was audited"
    );
}

/// The default order on PostgreSQL: a page whose filter matches few rows that an index finds
/// sorts them; one that matches many, or whose matches cost as much to find as the whole table
/// (no filter; a filter only a read of the table answers), walks the id (`keyset::id_walk`).
/// Both must give the rows in id order, first page and after a cursor. 60,000 generated rows
/// in date order, as loads come in: a table far under the sort limits, where each of these pages
/// used to sort (the unfiltered one all 60,000 rows).
#[tokio::test]
async fn default_order_pages_are_the_first_ids_whichever_way_they_are_found() {
    let env = TestEnv::new(Backend::Postgres).await.with_metrics();
    let file = env.dir.path().join("generated.csv");
    let generator =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen_trade.py");
    let generated = std::process::Command::new("python3")
        .arg(&generator)
        .args(["--rows", "60000", "--seed", "12"])
        .arg("--canonical")
        .arg(&file)
        .status()
        .expect("python3 scripts/gen_trade.py");
    assert!(generated.success());
    env.load_ok(&[
        "trade",
        file.to_str().expect("utf-8 path"),
        "--provider",
        "US",
    ])
    .await;
    let server = env.serve_as_analyst().await;
    let walks = || async {
        let text = server.metrics().await;
        ["key", "sort_matches"].map(|walk| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("dartts_keyset_id_walks_total{{walk=\"{walk}\"}} "))
                })
                .map_or(0, |n| n.trim().parse::<u64>().expect("count"))
        })
    };
    let expected = |filter: &str| {
        let env = &env;
        let sql = format!(
            "SELECT string_agg(declaration_id || '/' || line_number, ' ' ORDER BY id) \
             FROM (SELECT * FROM trade_records {filter} ORDER BY id LIMIT 45) r"
        );
        async move { env.text(&sql).await }
    };
    let last_year = "WHERE declaration_date BETWEEN '2024-01-01' AND '2024-12-31'";
    let year_rows = env
        .scalar(&format!("SELECT count(*) FROM trade_records {last_year}"))
        .await;
    // The last of the generated rows, and few enough to be sorted.
    assert!((45..30_000).contains(&year_rows), "{year_rows}");
    let year = json!({ "declarationDateFrom": "2024-01-01", "declarationDateTo": "2024-12-31" });
    // The busiest port: few enough matches to sort, but no index finds them.
    let port = env
        .text("SELECT port FROM trade_records GROUP BY port ORDER BY count(*) DESC, port LIMIT 1")
        .await;
    let by_port = format!("WHERE port = '{port}'");
    let port_rows = env
        .scalar(&format!("SELECT count(*) FROM trade_records {by_port}"))
        .await;
    assert!((45..30_000).contains(&port_rows), "{port_rows}");
    let port = json!({ "port": port });
    let cases = [
        // (filter, totalCount asked for, walk expected): with the count, the count decides
        // whether there are few; without it, the planner's estimate; the plan's cost against
        // the whole table's, whether an index finds them for less.
        (json!({}), true, "key", ""),
        (json!({}), false, "key", ""),
        (year.clone(), true, "sort_matches", last_year),
        (year, false, "sort_matches", last_year),
        (port.clone(), true, "key", by_port.as_str()),
        (port, false, "key", by_port.as_str()),
    ];
    const COUNTED: &str = r"query($after: String, $filter: TradeRecordFilter) {
      tradeRecords(first: 20, after: $after, filter: $filter) {
        totalCount pageInfo { endCursor } edges { node { declarationId lineNumber } }
      }
    }";
    for (filter, counted, walk, sql_filter) in cases {
        let query = if counted {
            COUNTED.to_owned()
        } else {
            COUNTED.replace("totalCount ", "")
        };
        let before = walks().await;
        let mut got = Vec::new();
        let mut after = Value::Null;
        for _ in 0..3 {
            let page = server
                .data(&query, json!({ "filter": filter, "after": after }))
                .await;
            got.extend(keys(&page));
            after = page["tradeRecords"]["pageInfo"]["endCursor"].clone();
        }
        got.truncate(45);
        let context = format!("{filter} counted={counted}");
        assert_eq!(got.join(" "), expected(sql_filter).await, "{context}");
        let taken = walks().await;
        let index = usize::from(walk == "sort_matches");
        assert_eq!(taken[index], before[index] + 3, "{context}: {taken:?}");
        assert_eq!(taken[1 - index], before[1 - index], "{context}: {taken:?}");
    }
}
