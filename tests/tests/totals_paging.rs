//! `tradeTotals` (and `entity.tradeTotals`) page by position through HTTP: small pages give
//! what one page gives on both backends, a cursor of another grouping, order or connection is
//! refused, and groups loaded between two pages shift nothing already read.

use dartts_tests::{BACKENDS, Backend, Server, TestEnv, error_codes, fixture, nodes};
use serde_json::{Value, json};

const TOTALS: &str = "query($g: [TotalsDimension!]!, $f: TradeRecordFilter, $o: [TotalsOrder!], $n: Int, $a: String) {
  tradeTotals(groupBy: $g, filter: $f, orderBy: $o, first: $n, after: $a) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { hsCode month year direction importerId providerCountry
                          countryOfOrigin quantityUnit valueUsd quantity netWeightKg
                          recordCount } } } }";

const ENTITY: &str = "query($n: Int, $a: String) { entity(importerId: \"12-3456789\") {
  tradeTotals(first: $n, after: $a) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { hsCode countryOfOrigin year valueUsd recordCount } } } } }";

async fn load(env: &TestEnv, name: &str, provider: &str) {
    let path = fixture(name);
    env.load_ok(&[
        "trade",
        path.to_str().expect("path"),
        "--provider",
        provider,
    ])
    .await;
}

fn edges(connection: &Value) -> &Vec<Value> {
    connection["edges"].as_array().expect("edges")
}

/// The `tradeTotals` connection of `vars`, first `first` after `after`.
async fn page(server: &Server, vars: &Value, first: u64, after: &Value) -> Value {
    let mut vars = vars.clone();
    vars["n"] = json!(first);
    vars["a"] = after.clone();
    server.data(TOTALS, vars).await["tradeTotals"].clone()
}

/// Every group after `after`, `first` at a time, following each page's end cursor; each
/// page's `totalCount` must be `total`.
async fn pages_after(
    server: &Server,
    vars: &Value,
    first: u64,
    mut after: Value,
    total: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let p = page(server, vars, first, &after).await;
        assert_eq!(p["totalCount"], total, "{vars} after {after}: {p:#}");
        out.extend(nodes(&p));
        assert!(
            out.len() <= total,
            "{vars}: more groups than there are: {out:#?}"
        );
        if p["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = p["pageInfo"]["endCursor"].clone();
    }
}

/// Groupings and orders with measure and dimension keys in both directions, NULL measures
/// (mixed units) and NULL dimensions (the mirror's and CN's rows have no importer id), ties on a count, the
/// grand total, and the grand total of no rows.
fn requests() -> Vec<Value> {
    vec![
        json!({ "g": ["HS4", "MONTH", "DIRECTION"] }),
        json!({ "g": ["COUNTRY_OF_ORIGIN"], "o": [{ "measure": "QUANTITY" }] }),
        json!({ "g": ["YEAR", "QUANTITY_UNIT"], "o": [{ "measure": "NET_WEIGHT_KG", "direction": "ASC" }] }),
        json!({ "g": ["IMPORTER_ID", "PROVIDER_COUNTRY"],
                "o": [{ "measure": "RECORD_COUNT" }, { "dimension": "IMPORTER_ID" }] }),
        json!({ "g": ["COUNTRY_OF_ORIGIN", "HS6"], "o": [] }),
        json!({ "g": [] }),
        json!({ "g": [], "o": [] }),
        json!({ "g": [], "f": { "hsCodePrefix": "99" } }),
    ]
}

#[tokio::test]
async fn small_pages_are_one_big_page_on_both_backends() {
    let mut seen = Vec::new();
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_trade_fixture().await;
        load(&env, "trade_kr.csv", "KR").await;
        load(&env, "trade_kr_mirror.csv", "KR").await;
        load(&env, "trade_cn.csv", "CN").await;
        let server = env.serve_as_analyst().await;
        let mut answers = Vec::new();
        for vars in requests() {
            let one = page(&server, &vars, 1000, &Value::Null).await;
            let whole = nodes(&one);
            assert!(!whole.is_empty(), "{vars}: {one:#}");
            assert_eq!(one["totalCount"], whole.len(), "{vars}");
            for first in [1, 2, 3] {
                let paged = pages_after(&server, &vars, first, Value::Null, whole.len()).await;
                assert_eq!(paged, whole, "{backend:?} {vars}, {first} at a time");
            }
            // After the last group: an empty page that still counts every group.
            let last = edges(&one).last().expect("a group")["cursor"].clone();
            let past = page(&server, &vars, 2, &last).await;
            assert!(edges(&past).is_empty(), "{vars}: {past:#}");
            assert_eq!(past["pageInfo"]["hasNextPage"], false, "{vars}");
            assert_eq!(past["totalCount"], whole.len(), "{vars}: {past:#}");
            answers.push(whole);
        }
        seen.push(answers);
    }
    assert_eq!(seen[0], seen[1], "SQLite and PostgreSQL order alike");
    // The orders are the requested ones, not merely stable: NULL quantities (mixed units)
    // last, and the grand total of no rows is one group of nothing.
    let by_quantity = &seen[1][1];
    let nulls = by_quantity
        .iter()
        .position(|n| n["quantity"].is_null())
        .expect("an origin of mixed units");
    assert!(by_quantity[nulls..].iter().all(|n| n["quantity"].is_null()));
    assert!(
        by_quantity[..nulls]
            .windows(2)
            .all(|w| w[0]["quantity"].as_f64() >= w[1]["quantity"].as_f64()),
        "{by_quantity:#?}"
    );
    assert_eq!(
        seen[1][7],
        [json!({ "hsCode": null, "month": null, "year": null,
        "direction": null, "importerId": null, "providerCountry": null,
        "countryOfOrigin": null, "quantityUnit": null, "valueUsd": 0.0, "quantity": null,
        "netWeightKg": null, "recordCount": 0 })]
    );
}

#[tokio::test]
async fn cursors_of_another_grouping_order_or_connection_are_bad_user_input() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    load(&env, "trade_kr.csv", "KR").await;
    let server = env.serve_as_analyst().await;
    let end = |p: &Value| p["pageInfo"]["endCursor"].clone();
    let by_year = json!({ "g": ["YEAR"] });
    let year_cursor = end(&page(&server, &by_year, 1, &Value::Null).await);
    // Taken back by the request it came from.
    page(&server, &by_year, 1, &year_cursor).await;
    let by_hs2_year = json!({ "g": ["HS2", "YEAR"] });
    let hs2_year_cursor = end(&page(&server, &by_hs2_year, 1, &Value::Null).await);
    let trade_cursor = server
        .data("{ tradeRecords(first: 1) { edges { cursor } } }", json!({}))
        .await["tradeRecords"]["edges"][0]["cursor"]
        .clone();
    let cases = [
        (
            "another dimension",
            json!({ "g": ["HS2"] }),
            year_cursor.clone(),
        ),
        (
            "the dimensions in another order",
            json!({ "g": ["YEAR", "HS2"] }),
            hs2_year_cursor.clone(),
        ),
        (
            "another direction",
            json!({ "g": ["YEAR"], "o": [{ "measure": "VALUE_USD", "direction": "ASC" }] }),
            year_cursor.clone(),
        ),
        (
            "another measure",
            json!({ "g": ["YEAR"], "o": [{ "measure": "RECORD_COUNT" }] }),
            year_cursor.clone(),
        ),
        ("another connection", by_year.clone(), trade_cursor),
        ("an offset cursor", by_year.clone(), json!("b2Zmc2V0OjE")),
        ("garbage", by_year.clone(), json!("nope")),
    ];
    for (what, vars, after) in cases {
        let mut vars = vars;
        vars["a"] = after;
        let refused = server.gql(TOTALS, vars).await;
        assert_eq!(
            error_codes(&refused),
            ["BAD_USER_INPUT"],
            "{what}: {refused:#}"
        );
    }
    // The entity's totals are grouped by chapter, origin and year: a YEAR cursor is foreign.
    let refused = server.gql(ENTITY, json!({ "a": year_cursor })).await;
    assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused:#}");
}

#[tokio::test]
async fn an_entitys_totals_page_by_position() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    let totals = |data: Value| data["entity"]["tradeTotals"].clone();
    let whole = nodes(&totals(server.data(ENTITY, json!({ "n": 1000 })).await));
    assert!(whole.len() >= 2, "{whole:#?}");
    let mut paged = Vec::new();
    let mut after = Value::Null;
    loop {
        let p = totals(server.data(ENTITY, json!({ "n": 1, "a": after })).await);
        assert_eq!(p["totalCount"], whole.len());
        paged.extend(nodes(&p));
        assert!(paged.len() <= whole.len(), "{paged:#?}");
        if p["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = p["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(paged, whole);
}

/// Pages by provider then HS6: CN's groups, loaded after the first page, sort before every
/// group read so far; the next page still continues where the first ended.
#[tokio::test]
async fn groups_loaded_between_pages_shift_nothing_already_read() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    load(&env, "trade_kr.csv", "KR").await;
    let server = env.serve_as_analyst().await;
    let vars = json!({ "g": ["PROVIDER_COUNTRY", "HS6"],
                       "o": [{ "dimension": "PROVIDER_COUNTRY", "direction": "ASC" }] });
    let first = page(&server, &vars, 2, &Value::Null).await;
    let seen = nodes(&first);
    assert_eq!(seen.len(), 2);
    load(&env, "trade_cn.csv", "CN").await;
    let after_load = nodes(&page(&server, &vars, 1000, &Value::Null).await);
    assert_eq!(after_load[0]["providerCountry"], "CN", "{after_load:#?}");
    let last_seen = after_load
        .iter()
        .position(|g| *g == seen[1])
        .expect("the second group is still there");
    assert!(last_seen > 1, "CN's groups come first: {after_load:#?}");
    let rest = pages_after(
        &server,
        &vars,
        2,
        first["pageInfo"]["endCursor"].clone(),
        after_load.len(),
    )
    .await;
    assert_eq!(rest, after_load[last_seen + 1..]);
    assert!(rest.iter().all(|g| !seen.contains(g)));
}

/// On PostgreSQL, groups whose sums are equal in decimal tie exactly, whatever order their rows
/// are added in (`totals::exact_sum`), so ties are ordered by their keys and paging passes over
/// none: a float sum made `0.1 + 0.2` a hair more than `0.3`, and PostgreSQL adds in the order
/// its parallel workers read, so a group tied with a page's last could be passed over on the
/// next page. On both backends, pages of one or two groups give the whole page.
#[tokio::test]
async fn sums_equal_in_decimal_tie_exactly_and_page_once_each() {
    const HEADER: &str = "declaration_id,line_number,declaration_date,direction,hs_code,\
                          country_of_origin,declared_value,declared_currency";
    // (HS code, values): each group's values add up to 0.30 but the largest.
    let groups: [(&str, &[&str]); 5] = [
        ("8471300100", &["0.1", "0.2"]),
        ("8472100000", &["0.3"]),
        ("8473300000", &["0.2", "0.1"]),
        ("8474100000", &["0.15", "0.05", "0.1"]),
        ("8475100000", &["12345678.91", "0.09"]),
    ];
    let mut lines = vec![HEADER.to_owned()];
    for (g, (hs, values)) in groups.iter().enumerate() {
        for (i, value) in values.iter().enumerate() {
            lines.push(format!("T-{g}-{i},1,2024-03-01,IMPORT,{hs},CN,{value},USD"));
        }
    }
    let expected: Vec<Value> = [
        ("8475", 12_345_679.0, 2),
        ("8471", 0.3, 2),
        ("8472", 0.3, 1),
        ("8473", 0.3, 2),
        ("8474", 0.3, 3),
    ]
    .iter()
    .map(|(hs, value, n)| json!({ "hsCode": hs, "valueUsd": value, "recordCount": n }))
    .collect();
    let vars = json!({ "g": ["HS4"], "o": [{ "measure": "VALUE_USD", "direction": "DESC" }] });
    let picked = |groups: Vec<Value>| -> Vec<Value> {
        groups
            .iter()
            .map(|g| {
                json!({ "hsCode": g["hsCode"], "valueUsd": g["valueUsd"],
                             "recordCount": g["recordCount"] })
            })
            .collect()
    };
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let file = env.dir.path().join("ties.csv");
        std::fs::write(&file, lines.join("\n") + "\n").expect("write");
        env.load_ok(&["trade", file.to_str().expect("path"), "--provider", "US"])
            .await;
        let server = env.serve_as_analyst().await;
        let whole = picked(nodes(&page(&server, &vars, 100, &Value::Null).await));
        if backend == Backend::Postgres {
            assert_eq!(whole, expected);
        } else {
            // SQLite rounds the binary sum (0.1 + 0.2 is 0.30000000000000004 there too), but
            // reads the rows in one order, so each request gives the same sums.
            let close = whole.iter().zip(&expected).all(|(got, want)| {
                (got["valueUsd"].as_f64().expect("value")
                    - want["valueUsd"].as_f64().expect("value"))
                .abs()
                    < 1e-9
            });
            assert!(close && whole.len() == expected.len(), "{whole:#?}");
        }
        for first in [1, 2] {
            let paged = pages_after(&server, &vars, first, Value::Null, expected.len()).await;
            assert_eq!(picked(paged), whole, "{backend:?}, {first} at a time");
        }
    }
}
