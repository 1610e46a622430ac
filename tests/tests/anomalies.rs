//! Price anomalies through HTTP: injected prices are found with the numbers that flag them,
//! each anomaly counts against the quota, SQLite and PostgreSQL agree, and a foreign partner's
//! peer statistics come only from rows it may see (and equal the stored profiles where it sees
//! every row), and pages are positions that a load between two of them does not shift.

use dartts_tests::{BACKENDS, Backend, Server, TestEnv, error_codes, record_ids};
use serde_json::{Value, json};

const HEADER: &str = "declaration_id,line_number,declaration_date,direction,hs_code,commodity_description,importer_name,importer_id,importer_address,exporter_name,manufacturer_name,manufacturer_id,country_of_origin,country_of_export,country_of_destination,reporting_country,partner_country,port,transport_mode,quantity,quantity_unit,net_weight_kg,declared_value,declared_currency,declared_value_usd";

/// One line: `price` USD per unit, 10 units (20 kg).
fn line(id: &str, day: u32, hs: &str, importer: &str, origin: &str, price: f64) -> String {
    format!(
        "{id},1,2024-03-{day:02},IMPORT,{hs},Goods,{importer},ID-{importer},,,,,{origin},{origin},,,{origin},,SEA,10,NO,20,{:.2},USD,",
        price * 10.0
    )
}

/// `n` ordinary prices spread evenly (×0.85 … ×1.15) around `median`.
fn ordinary(prefix: &str, n: usize, hs: &str, origin: &str, median: f64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let f = 0.85 + 0.3 * i as f64 / (n - 1) as f64;
            line(
                &format!("{prefix}-{i:03}"),
                1 + (i % 28) as u32,
                hs,
                "Steady Co",
                origin,
                median * f,
            )
        })
        .collect()
}

fn write(env: &TestEnv, name: &str, lines: &[String]) -> String {
    let path = env.dir.path().join(name);
    std::fs::write(&path, format!("{HEADER}\n{}\n", lines.join("\n"))).expect("write csv");
    path.to_str().expect("utf-8").to_owned()
}

const ANOMALIES: &str = "query($f: TradeRecordFilter) { priceAnomalies(filter: $f) { totalCount edges { node { direction price peerCount peerMedian lowerBound upperBound ratio score valueMoved record { declarationId hsCode } } } } }";

fn round(v: &Value) -> Value {
    // Floating point sums may differ in the last bits between engines; 9 significant digits
    // are far more than any decision here depends on.
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().expect("f64");
            json!(format!("{x:.9e}"))
        }
        Value::Array(items) => Value::Array(items.iter().map(round).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), round(v))).collect())
        }
        other => other.clone(),
    }
}

/// 30 ordinary prices around 100 USD, one at 1,000 and one at 10, in one peer group; a second
/// HS code with too few peers to judge.
async fn us_world(backend: Backend) -> (TestEnv, String) {
    let env = TestEnv::new(backend).await;
    let mut lines = ordinary("US", 30, "8471300100", "CN", 100.0);
    lines.push(line(
        "US-HIGH",
        10,
        "8471300100",
        "Inflated Imports",
        "CN",
        1_000.0,
    ));
    lines.push(line(
        "US-LOW",
        11,
        "8471300100",
        "Cheap Imports",
        "CN",
        10.0,
    ));
    lines.extend(ordinary("FEW", 5, "6109100010", "BD", 5.0));
    lines.push(line(
        "FEW-HIGH",
        12,
        "6109100010",
        "Cheap Imports",
        "BD",
        500.0,
    ));
    let file = write(&env, "us.csv", &lines);
    env.load_ok(&["trade", &file, "--provider", "US"]).await;
    let token = env.user("hsi", "HSI_ANALYST", None).await;
    (env, token)
}

async fn anomalies(server: &Server, token: &str, filter: Value) -> Value {
    server
        .session(Some(token))
        .data(ANOMALIES, json!({ "f": filter }))
        .await["priceAnomalies"]
        .clone()
}

#[tokio::test]
async fn injected_prices_are_flagged_with_their_numbers_and_count_against_the_quota() {
    let (env, hsi) = us_world(Backend::Postgres).await;
    let server = env.serve().await;
    let before = server
        .session(Some(&hsi))
        .data("{ quotaStatus { used } }", json!({}))
        .await["quotaStatus"]["used"]
        .as_i64()
        .expect("used");
    let found = anomalies(&server, &hsi, json!({})).await;
    assert_eq!(found["totalCount"], 2, "{found:#}");
    let nodes: Vec<&Value> = found["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .collect();
    // Both are a factor 10 from the median: same score, so ties go by id (load order).
    assert_eq!(nodes[0]["record"]["declarationId"], "US-HIGH");
    assert_eq!(nodes[0]["direction"], "OVER");
    assert_eq!(nodes[1]["record"]["declarationId"], "US-LOW");
    assert_eq!(nodes[1]["direction"], "UNDER");
    for node in &nodes {
        assert_eq!(node["peerCount"], 32);
        let median = node["peerMedian"].as_f64().expect("median");
        assert!((median - 100.0).abs() < 2.0, "median {median}");
        let (lo, hi) = (
            node["lowerBound"].as_f64().expect("lo"),
            node["upperBound"].as_f64().expect("hi"),
        );
        assert!(lo < median && median < hi && lo > 10.0 && hi < 1_000.0);
        let price = node["price"].as_f64().expect("price");
        let ratio = node["ratio"].as_f64().expect("ratio");
        assert!((ratio - price / median).abs() < 1e-6);
        assert!(node["score"].as_f64().expect("score") > 4.0);
        let bound = if node["direction"] == "OVER" { hi } else { lo };
        let moved = node["valueMoved"].as_f64().expect("valueMoved");
        assert!((moved - (price - bound) * 10.0).abs() < 1e-6, "{node:#}");
    }
    // Six records in the second code: fewer than the default 10 peers, so never judged…
    assert_eq!(
        anomalies(&server, &hsi, json!({ "hsCodePrefix": "6109" })).await["totalCount"],
        0
    );
    // …unless the caller lowers the minimum.
    let few = server
        .session(Some(&hsi))
        .data(
            "{ priceAnomalies(minPeers: 5, filter: { hsCodePrefix: \"6109\" }) { edges { node { record { declarationId } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        few["priceAnomalies"]["edges"][0]["node"]["record"]["declarationId"],
        "FEW-HIGH"
    );

    let totals = server
        .session(Some(&hsi))
        .data(
            "{ valueMovedTotals(groupBy: IMPORTER) { key anomalies valueMoved overInvoiced underInvoiced } }",
            json!({}),
        )
        .await["valueMovedTotals"]
        .clone();
    let totals = totals.as_array().expect("totals");
    assert_eq!(totals.len(), 2);
    assert_eq!(totals[0]["key"], "ID-Inflated Imports");
    assert!(totals[0]["overInvoiced"].as_f64().expect("over") > 0.0);
    assert_eq!(totals[1]["key"], "ID-Cheap Imports");
    assert!(totals[1]["underInvoiced"].as_f64().expect("under") > 0.0);

    // Anomalies are delivered records: 2 (first query) + 0 + 1 + 2 totals rows.
    let after = server
        .session(Some(&hsi))
        .data("{ quotaStatus { used } }", json!({}))
        .await["quotaStatus"]["used"]
        .as_i64()
        .expect("used");
    assert_eq!(after - before, 2 + 1 + 2);

    // Each part alone, as a badge or a list asks for it, gives what both together gave; a
    // count alone delivers no record.
    let session = server.session(Some(&hsi));
    let counted = session
        .data("{ priceAnomalies { totalCount } }", json!({}))
        .await;
    assert_eq!(counted["priceAnomalies"]["totalCount"], 2, "{counted:#}");
    let listed = |first: u32| {
        format!(
            "{{ priceAnomalies(first: {first}) {{ pageInfo {{ hasNextPage }} \
             edges {{ node {{ record {{ declarationId }} }} }} }} }}"
        )
    };
    let ids = |page: &Value| record_ids(&page["priceAnomalies"]["edges"]);
    let whole = session.data(&listed(10), json!({})).await;
    assert_eq!(ids(&whole), ["US-HIGH", "US-LOW"], "{whole:#}");
    assert_eq!(whole["priceAnomalies"]["pageInfo"]["hasNextPage"], false);
    let first = session.data(&listed(1), json!({})).await;
    assert_eq!(ids(&first), ["US-HIGH"], "{first:#}");
    assert_eq!(first["priceAnomalies"]["pageInfo"]["hasNextPage"], true);
    let used = session.data("{ quotaStatus { used } }", json!({})).await["quotaStatus"]["used"]
        .as_i64()
        .expect("used");
    assert_eq!(used - after, 2 + 1);
}

#[tokio::test]
async fn bad_options_are_bad_user_input_and_admins_are_refused() {
    let (env, hsi) = us_world(Backend::Postgres).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    for query in [
        "{ priceAnomalies(k: -1) { totalCount } }",
        // Inside 0..50, but a subnormal fence width: PostgreSQL answered INTERNAL (underflow).
        "{ priceAnomalies(k: 5e-324) { totalCount } }",
        "{ valueMovedTotals(groupBy: HS_CHAPTER, k: 5e-324) { key } }",
        "{ priceAnomalies(minRatio: 0.5) { totalCount } }",
        "{ priceAnomalies(minPeers: 1) { totalCount } }",
        "{ priceAnomalies(filter: { hsCodePrefix: \"84x\" }) { totalCount } }",
    ] {
        let response = server.session(Some(&hsi)).gql(query, json!({})).await;
        assert_eq!(
            error_codes(&response),
            ["BAD_USER_INPUT"],
            "{query}: {response:#}"
        );
    }
    let refused = server
        .session(Some(&admin))
        .gql("{ priceAnomalies { totalCount } }", json!({}))
        .await;
    assert_eq!(error_codes(&refused), ["FORBIDDEN_FIELD"]);
}

#[tokio::test]
async fn sqlite_and_postgresql_give_the_same_anomalies() {
    let mut answers = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (env, hsi) = us_world(backend).await;
        let server = env.serve().await;
        let mut answer = anomalies(&server, &hsi, json!({})).await;
        answer["ioq"] = server
            .session(Some(&hsi))
            .data(
                "{ priceAnomalies(method: IQR, k: 1.5, minPeers: 3, minRatio: 1.2, measure: VALUE_PER_KG) { totalCount edges { node { peerMedian lowerBound upperBound score record { declarationId } } } } }",
                json!({}),
            )
            .await["priceAnomalies"]
            .clone();
        answers.push(round(&answer));
    }
    assert_eq!(answers[0]["totalCount"], 2);
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn a_partners_peer_statistics_come_only_from_rows_it_may_see() {
    let env = TestEnv::new(Backend::Postgres).await;
    let mut kr = ordinary("KR", 20, "8471300000", "US", 100.0);
    kr.push(line("KR-HIGH", 15, "8471300000", "Hanbit", "US", 500.0));
    let kr_file = write(&env, "kr.csv", &kr);
    env.load_ok(&["trade", &kr_file, "--provider", "KR"]).await;
    let partner = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;

    let kr_before = anomalies(&server, &partner, json!({})).await;
    assert_eq!(kr_before["totalCount"], 1, "{kr_before:#}");
    assert_eq!(
        kr_before["edges"][0]["node"]["record"]["declarationId"],
        "KR-HIGH"
    );
    assert_eq!(kr_before["edges"][0]["node"]["peerCount"], 21);
    // With only rows the partner may see loaded, the stored profiles (HSI) and the partner's
    // on-the-fly ones are the same numbers.
    assert_eq!(
        round(&anomalies(&server, &hsi, json!({})).await),
        round(&kr_before)
    );

    // China's declarations of the same goods, priced around 500: they change the peer group
    // for those who see them, and must not change anything for Korea.
    let cn = ordinary("CN", 40, "8471300000", "US", 500.0);
    let cn_file = write(&env, "cn.csv", &cn);
    env.load_ok(&["trade", &cn_file, "--provider", "CN"]).await;

    let kr_after = anomalies(&server, &partner, json!({})).await;
    assert_eq!(kr_after, kr_before);
    let hsi_after = anomalies(&server, &hsi, json!({})).await;
    assert_ne!(round(&hsi_after), round(&kr_before), "{hsi_after:#}");
    let peer_counts: Vec<&Value> = hsi_after["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"]["peerCount"])
        .collect();
    assert!(peer_counts.iter().all(|c| **c == 61), "{hsi_after:#}");
}

/// The KCS training file (provider KR) loaded, with an analyst who reads the stored profiles
/// and a Korean partner whose peers are computed on the fly (it may see every row).
async fn kcs_world(backend: Backend) -> (TestEnv, Server, String, String) {
    let env = TestEnv::new(backend).await;
    env.load_kcs("train").await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let partner = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let server = env.serve().await;
    (env, server, hsi, partner)
}

/// The stored profiles are recomputed in rounds of a few hundred HS codes, each round's rows
/// read while the previous round's profiles are written. Over the 2,368 codes of the KCS
/// training file (six rounds) the analyst, who reads them, must get exactly what a Korean
/// partner gets from statistics computed on the fly over the same rows (it may see every one),
/// on both engines.
#[tokio::test]
async fn profiles_stored_in_rounds_equal_the_on_the_fly_ones() {
    for backend in BACKENDS {
        let (_env, server, hsi, partner) = kcs_world(backend).await;
        let query = "{ priceAnomalies(measure: VALUE_PER_KG, first: 100) { totalCount edges { node { peerCount peerMedian lowerBound upperBound score record { declarationId hsCode } } } } }";
        let stored = server.session(Some(&hsi)).data(query, json!({})).await;
        let on_the_fly = server.session(Some(&partner)).data(query, json!({})).await;
        let codes: std::collections::BTreeSet<&str> = stored["priceAnomalies"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["record"]["hsCode"].as_str().expect("hsCode"))
            .collect();
        assert!(codes.len() > 20, "{backend:?}: few codes: {stored:#}");
        assert_eq!(round(&stored), round(&on_the_fly), "{backend:?}");
    }
}

/// Every anomaly `priceAnomalies` lists, page by page, with `fields` of each node.
async fn every_anomaly(server: &Server, token: &str, fields: &str) -> Vec<Value> {
    let query = format!(
        "query($after: String) {{ priceAnomalies(measure: VALUE_PER_KG, first: 1000, after: $after) \
         {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {fields} }} }} }} }}"
    );
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = server
            .session(Some(token))
            .data(&query, json!({ "after": after }))
            .await["priceAnomalies"]
            .clone();
        for edge in page["edges"].as_array().expect("edges") {
            nodes.push(edge["node"].clone());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// `valueMovedTotals` is, group by group, the sum of the `valueMoved` of every anomaly that
/// `priceAnomalies` lists with the same arguments — against the stored profiles (HSI) and
/// against a partner's on-the-fly peers (KR), on both engines. The totals are summed as the
/// flagged rows are read, without the records, so this pins them to the listed anomalies.
#[tokio::test]
async fn value_moved_totals_add_up_the_listed_anomalies() {
    for backend in BACKENDS {
        let (_env, server, hsi, partner) = kcs_world(backend).await;
        let callers = [
            (
                &hsi,
                "valueMoved direction record { importerId importerName countryOfOrigin hsCode }",
                &["IMPORTER", "COUNTRY_OF_ORIGIN", "HS_CHAPTER"][..],
            ),
            (
                &partner,
                "valueMoved direction record { countryOfOrigin hsCode }",
                &["COUNTRY_OF_ORIGIN", "HS_CHAPTER"][..],
            ),
        ];
        for (token, fields, groups) in callers {
            let listed = every_anomaly(&server, token, fields).await;
            assert!(
                listed.len() > 100,
                "{backend:?}: {} anomalies",
                listed.len()
            );
            for group in groups {
                // key -> (anomalies, value moved, over, under), from the listed anomalies.
                let mut expected: std::collections::BTreeMap<String, (i64, f64, f64, f64)> =
                    Default::default();
                for node in &listed {
                    let r = &node["record"];
                    let key = match *group {
                        "IMPORTER" => r["importerId"]
                            .as_str()
                            .or(r["importerName"].as_str())
                            .unwrap_or(""),
                        "COUNTRY_OF_ORIGIN" => r["countryOfOrigin"].as_str().unwrap_or(""),
                        _ => &r["hsCode"].as_str().expect("hsCode")[..2],
                    };
                    let moved = node["valueMoved"].as_f64().expect("valueMoved");
                    let e = expected.entry(key.to_owned()).or_default();
                    e.0 += 1;
                    e.1 += moved;
                    if node["direction"] == "OVER" {
                        e.2 += moved;
                    } else {
                        e.3 -= moved;
                    }
                }
                let totals = server
                    .session(Some(token))
                    .data(
                        &format!(
                            "{{ valueMovedTotals(groupBy: {group}, measure: VALUE_PER_KG) \
                             {{ key anomalies valueMoved overInvoiced underInvoiced }} }}"
                        ),
                        json!({}),
                    )
                    .await["valueMovedTotals"]
                    .clone();
                let totals = totals.as_array().expect("totals");
                assert_eq!(totals.len(), expected.len(), "{backend:?} {group}");
                assert!(totals.len() > 1, "{backend:?} {group}: one group");
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
                let mut previous = f64::INFINITY;
                for t in totals {
                    let key = t["key"].as_str().expect("key");
                    let (n, moved, over, under) = expected[key];
                    let got = |f: &str| t[f].as_f64().expect("number");
                    assert_eq!(t["anomalies"], n, "{backend:?} {group} {key}");
                    assert!(close(got("valueMoved"), moved), "{backend:?} {group} {t}");
                    assert!(close(got("overInvoiced"), over), "{backend:?} {group} {t}");
                    assert!(
                        close(got("underInvoiced"), under),
                        "{backend:?} {group} {t}"
                    );
                    // Largest gross amount first.
                    let gross = got("overInvoiced") + got("underInvoiced");
                    assert!(gross <= previous, "{backend:?} {group}: order");
                    previous = gross;
                }
            }
        }
    }
}

const PAGED: &str = "query($after: String, $first: Int) { priceAnomalies(first: $first, \
                     after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { \
                     node { score record { declarationId } } } } }";

/// The edges of the `priceAnomalies` connection in `data` (top level or an entity's).
fn connection(data: &Value) -> &Value {
    let top = &data["priceAnomalies"];
    if top.is_null() {
        &data["entity"]["priceAnomalies"]
    } else {
        top
    }
}

/// Every node of `query` after `after`, two at a time; at most `most` (a page that never
/// moves past its cursor fails instead of paging forever).
async fn pages_after(
    server: &Server,
    token: &str,
    query: &str,
    mut after: Value,
    most: usize,
) -> Vec<Value> {
    let mut nodes = Vec::new();
    loop {
        let data = server
            .session(Some(token))
            .data(query, json!({ "first": 2, "after": after }))
            .await;
        let page = connection(&data);
        nodes.extend(dartts_tests::nodes(page));
        assert!(nodes.len() <= most, "more than {most} paged: {nodes:#?}");
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// A page after a cursor starts after the cursor's (score, record), not after a number of
/// rows: a batch loaded between two pages, with an anomaly that outranks the first page and one
/// that ranks after it, makes the next pages repeat nothing and skip nothing — on the
/// analyst's path (stored profiles, a seek in SQL) and a partner's (peers from its own rows,
/// ranked in Rust), on both engines. A malformed cursor is refused; an entity's anomalies page
/// the same way.
#[tokio::test]
async fn a_load_between_two_pages_of_anomalies_repeats_and_skips_nothing() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let mut first = ordinary("A", 30, "8471300100", "CN", 100.0);
        for (i, price) in [300.0, 400.0, 600.0, 800.0, 1_000.0]
            .into_iter()
            .enumerate()
        {
            first.push(line(
                &format!("A-HIGH-{i}"),
                10 + i as u32,
                "8471300100",
                "Inflated Imports",
                "CN",
                price,
            ));
        }
        let file = write(&env, "first.csv", &first);
        env.load_ok(&["trade", &file, "--provider", "KR"]).await;
        let hsi = env.user("hsi", "HSI_ANALYST", None).await;
        let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
        let server = env.serve().await;

        let mut first_pages = Vec::new();
        for token in [&hsi, &kr] {
            let page = server
                .session(Some(token))
                .data(PAGED, json!({ "first": 2 }))
                .await["priceAnomalies"]
                .clone();
            assert_eq!(page["totalCount"], 5, "{backend:?}: {page:#}");
            first_pages.push(page);
        }

        // Another peer group (its profile is its own, so nothing loaded before is rescored):
        // one anomaly far above every other, one below the first page's.
        let mut second = ordinary("B", 30, "8471300200", "CN", 100.0);
        second.push(line(
            "B-TOP",
            20,
            "8471300200",
            "Inflated Imports",
            "CN",
            100_000.0,
        ));
        second.push(line(
            "B-LOW",
            21,
            "8471300200",
            "Inflated Imports",
            "CN",
            250.0,
        ));
        let file = write(&env, "second.csv", &second);
        env.load_ok(&["trade", &file, "--provider", "KR"]).await;

        for (token, page) in [&hsi, &kr].into_iter().zip(&first_pages) {
            let seen = dartts_tests::nodes(page);
            let whole = server
                .session(Some(token))
                .data(PAGED, json!({ "first": 100 }))
                .await["priceAnomalies"]
                .clone();
            let all = dartts_tests::nodes(&whole);
            let ids: Vec<&Value> = all.iter().map(|n| &n["record"]["declarationId"]).collect();
            assert_eq!(ids[0], "B-TOP", "{backend:?}: {whole:#}");
            assert!(ids.contains(&&json!("B-LOW")), "{backend:?}: {whole:#}");
            let boundary = all
                .iter()
                .position(|n| *n == seen[1])
                .expect("the first page's last anomaly is still one");
            let rest = pages_after(
                &server,
                token,
                PAGED,
                page["pageInfo"]["endCursor"].clone(),
                all.len(),
            )
            .await;
            assert_eq!(rest, all[boundary + 1..], "{backend:?}");
            assert!(rest.iter().all(|n| !seen.contains(n)), "{backend:?}");

            let refused = server
                .session(Some(token))
                .gql(PAGED, json!({ "first": 2, "after": "nope" }))
                .await;
            assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused:#}");
        }

        // The entity's nested connection: its anomalies paged two at a time are its one page.
        let nested = "query($after: String, $first: Int) { entity(importerId: \"ID-Inflated \
                      Imports\") { priceAnomalies(first: $first, after: $after) { pageInfo { \
                      hasNextPage endCursor } edges { node { score record { declarationId } } } \
                      } } }";
        let whole = server
            .session(Some(&hsi))
            .data(nested, json!({ "first": 100 }))
            .await;
        let all = dartts_tests::nodes(connection(&whole));
        assert_eq!(all.len(), 7, "{backend:?}: {whole:#}");
        assert_eq!(
            pages_after(&server, &hsi, nested, Value::Null, all.len()).await,
            all
        );
    }
}
