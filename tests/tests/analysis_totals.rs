//! Totals, mirror trade and trade-versus-money through HTTP against the real server: the same
//! answers on SQLite and PostgreSQL, the quota charged per delivered row, a partner's pairs
//! built only from its rows, structuring found with settable thresholds, bad input refused.

use dartts_tests::{BACKENDS, Backend, Server, TestEnv, error_codes, fixture, without_cursors};
use serde_json::{Value, json};

async fn world(backend: Backend) -> TestEnv {
    let env = TestEnv::new(backend).await;
    let f = |n: &str| fixture(n).to_str().expect("path").to_owned();
    env.load_trade_fixture().await;
    env.load_ok(&["trade", &f("trade_kr.csv"), "--provider", "KR"])
        .await;
    env.load_ok(&["trade", &f("trade_kr_mirror.csv"), "--provider", "KR"])
        .await;
    env.load_ok(&["financial", &f("financial.csv")]).await;
    env.load_ok(&["financial", &f("financial_structuring.csv")])
        .await;
    env
}

async fn load_cn(env: &TestEnv) {
    let path = fixture("trade_cn.csv");
    env.load_ok(&["trade", path.to_str().expect("path"), "--provider", "CN"])
        .await;
}

const TOTALS: &str = "query($g: [TotalsDimension!]!, $f: TradeRecordFilter, $o: [TotalsOrder!], $n: Int, $a: String) {
  tradeTotals(groupBy: $g, filter: $f, orderBy: $o, first: $n, after: $a) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { hsCode month year direction importerId providerCountry quantityUnit
                   valueUsd quantity netWeightKg recordCount } } } }";

const MIRROR: &str = "query($f: MirrorFilter, $p: MirrorPeriod, $a: Float, $n: Int) {
  mirrorDiscrepancies(filter: $f, period: $p, allowance: $a, first: $n) {
    totalCount
    edges { node { exporterCountry importerCountry hsCode period allowance valueGapUsd
                   expectedImportMaxUsd unexplainedUsd quantityGap netWeightGapKg
                   exports { valueUsd quantity quantityUnit netWeightKg recordCount }
                   imports { valueUsd quantity quantityUnit netWeightKg recordCount } } } } }";

const FINANCE: &str = "query($f: TradeFinanceFilter, $t: TradeFinanceThresholds, $n: Int) {
  tradeFinanceMismatches(filter: $f, thresholds: $t, first: $n) {
    totalCount
    edges { node { subjectTin subjectNames reportedUsd cashInUsd reportCount
                   declaredImportValueUsd declaredRecordCount ratio reasons minRatio
                   structuring { firstDate lastDate count totalUsd reportIds } } } } }";

fn nodes(data: &Value, field: &str) -> Vec<Value> {
    dartts_tests::nodes(&data[field])
}

async fn used(server: &Server, token: &str) -> u64 {
    server
        .session(Some(token))
        .data("{ quotaStatus { used } }", json!({}))
        .await["quotaStatus"]["used"]
        .as_u64()
        .expect("used")
}

/// The requests every backend must answer identically.
async fn answers(server: &Server, hsi: &str) -> Vec<Value> {
    let s = server.session(Some(hsi));
    let mut out = Vec::new();
    for vars in [
        json!({ "g": ["HS4", "MONTH", "DIRECTION"], "o": [{ "measure": "RECORD_COUNT" }, { "dimension": "HS4", "direction": "ASC" }] }),
        json!({ "g": ["YEAR", "QUANTITY_UNIT"], "o": [{ "measure": "QUANTITY", "direction": "ASC" }] }),
        json!({ "g": ["IMPORTER_ID", "PROVIDER_COUNTRY"], "f": { "declarationDateFrom": "2024-02-01" } }),
        json!({ "g": [] }),
        json!({ "g": ["HS10"], "n": 2 }),
    ] {
        out.push(s.data(TOTALS, vars).await);
    }
    out.push(s.data(MIRROR, json!({ "p": "MONTH" })).await);
    out.push(s.data(MIRROR, json!({ "a": 0.0 })).await);
    out.push(s.data(FINANCE, json!({})).await);
    out
}

#[tokio::test]
async fn sqlite_and_postgres_give_the_same_answers() {
    let mut seen = Vec::new();
    for backend in BACKENDS {
        let env = world(backend).await;
        load_cn(&env).await;
        let hsi = env.user("hsi", "HSI_ANALYST", None).await;
        let server = env.serve().await;
        seen.push(answers(&server, &hsi).await);
    }
    assert_eq!(
        without_cursors(&Value::from(seen[0].clone())),
        without_cursors(&Value::from(seen[1].clone())),
        "SQLite and PostgreSQL differ"
    );
    // And the answers are the right ones, not merely the same.
    let by_hs4 = nodes(&seen[1][0], "tradeTotals");
    let laptops_jan: Vec<&Value> = by_hs4
        .iter()
        .filter(|n| n["hsCode"] == "8471" && n["month"] == "2024-01")
        .collect();
    assert_eq!(laptops_jan.len(), 2, "{by_hs4:#?}");
    let import = laptops_jan
        .iter()
        .find(|n| n["direction"] == "IMPORT")
        .expect("imports");
    // US-1001 lines 1 and 2, KR-2001.
    assert_eq!(import["valueUsd"], 105_000.0);
    assert_eq!(import["recordCount"], 3);
    assert_eq!(import["quantity"], 170.0);
    assert_eq!(import["quantityUnit"], "NO");
    let grand = &nodes(&seen[1][3], "tradeTotals")[0];
    assert_eq!(grand["recordCount"], 17);
    // Three units among the records: no quantity sum without a unit to state.
    assert_eq!(grand["quantity"], Value::Null);
    assert_eq!(grand["quantityUnit"], Value::Null);
    let paged = &seen[1][4]["tradeTotals"];
    assert_eq!(paged["edges"].as_array().expect("edges").len(), 2);
    assert_eq!(paged["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn each_delivered_row_counts_against_the_quota() {
    let env = world(Backend::Postgres).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let s = server.session(Some(&hsi));
    let mut before = used(&server, &hsi).await;
    for (query, vars, field, expected) in [
        (TOTALS, json!({ "g": ["HS6"], "n": 3 }), "tradeTotals", 3),
        (TOTALS, json!({ "g": ["YEAR"] }), "tradeTotals", 1),
        (MIRROR, json!({ "n": 4 }), "mirrorDiscrepancies", 4),
        (FINANCE, json!({}), "tradeFinanceMismatches", 4),
    ] {
        let data = s.data(query, vars).await;
        let delivered = nodes(&data, field).len() as u64;
        assert_eq!(delivered, expected, "{field}: {data:#}");
        let after = used(&server, &hsi).await;
        assert_eq!(after - before, delivered, "{field}");
        before = after;
    }
}

#[tokio::test]
async fn a_partner_sees_pairs_built_only_from_rows_it_may_see() {
    // The partners' instance, where the US side of a partner's pairs is in its scope: the US
    // rows with KR, pseudonymized as `export-foreign` writes them, and KR's own.
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_INSTANCE", "foreign");
    env.load_us_exported_for("KR").await;
    for file in ["trade_kr.csv", "trade_kr_mirror.csv"] {
        let path = fixture(file);
        env.load_ok(&["trade", path.to_str().expect("path"), "--provider", "KR"])
            .await;
    }
    let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let cn = env.user("cn", "FOREIGN_PARTNER", Some("CN")).await;
    let server = env.serve().await;
    // The same rows read whole, by an analyst of a domestic instance on this database (the
    // foreign instance has no such users).
    let env = env.without_env("DARTTS_INSTANCE");
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let whole = env.serve().await;
    let mirror = |token: &str, vars: Value| {
        let s = server.session(Some(token));
        async move { s.data(MIRROR, vars).await }
    };
    let kr_before = mirror(&kr, json!({})).await;
    let pairs = nodes(&kr_before, "mirrorDiscrepancies");
    for p in &pairs {
        assert!(
            p["exporterCountry"] == "KR" || p["importerCountry"] == "KR",
            "{p:#}"
        );
    }
    // KR's tablets: KR says 70,000 left, the US says 90,000 arrived (its row on KR).
    let tablets = pairs
        .iter()
        .find(|p| p["exporterCountry"] == "KR" && p["hsCode"] == "847130")
        .expect("KR→US 847130");
    assert_eq!(tablets["exports"]["valueUsd"], 70_000.0);
    assert_eq!(tablets["imports"]["valueUsd"], 90_000.0);
    assert_eq!(tablets["expectedImportMaxUsd"], 77_000.0);
    assert_eq!(tablets["quantityGap"], 20.0);
    // The analyst, who sees everything, gets the same pairs for KR.
    assert_eq!(
        whole
            .session(Some(&hsi))
            .data(MIRROR, json!({ "f": { "nation": ["KR"] } }))
            .await,
        kr_before
    );
    // Another nation's rows change nothing for KR, and CN's pairs show none of KR's.
    load_cn(&env).await;
    assert_eq!(mirror(&kr, json!({})).await, kr_before);
    let cn_pairs = nodes(&mirror(&cn, json!({})).await, "mirrorDiscrepancies");
    assert!(!cn_pairs.is_empty());
    for p in &cn_pairs {
        assert!(
            p["exporterCountry"] == "CN" || p["importerCountry"] == "CN",
            "{p:#}"
        );
    }
    // A partner's totals are its rows only, too.
    let kr_totals = server
        .session(Some(&kr))
        .data(TOTALS, json!({ "g": ["PROVIDER_COUNTRY"] }))
        .await;
    let providers: Vec<Value> = nodes(&kr_totals, "tradeTotals")
        .iter()
        .map(|n| n["providerCountry"].clone())
        .collect();
    assert_eq!(providers, vec![json!("KR"), json!("US")]);
}

#[tokio::test]
async fn money_over_goods_and_structuring_explain_themselves() {
    let env = world(Backend::Postgres).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    let s = server.session(Some(&hsi));
    let found = nodes(&s.data(FINANCE, json!({})).await, "tradeFinanceMismatches");
    let tins: Vec<&Value> = found.iter().map(|m| &m["subjectTin"]).collect();
    assert_eq!(
        tins,
        [
            &json!("98-7654321"),
            &json!("33-2222222"),
            &Value::Null,
            &json!("55-1234567")
        ]
    );
    let blue = &found[0];
    assert_eq!(blue["reportedUsd"], 250_000.0);
    assert_eq!(blue["declaredImportValueUsd"], 82_000.0);
    assert_eq!(blue["declaredRecordCount"], 2);
    assert_eq!(blue["reasons"], json!(["REPORTED_EXCEEDS_DECLARED"]));
    let gold = &found[3];
    assert_eq!(gold["reasons"], json!(["STRUCTURING"]));
    assert_eq!(
        gold["subjectNames"],
        json!(["GOLDEN GATE METALS INC", "Golden Gate Metals"])
    );
    assert_eq!(
        gold["structuring"],
        json!([{ "firstDate": "2024-03-01", "lastDate": "2024-03-08", "count": 3,
                 "totalUsd": 29_000.0,
                 "reportIds": ["SAR-2024-0101", "SAR-2024-0102", "SAR-2024-0103"] }])
    );
    // Thresholds are the caller's: four deposits needed, or a 3-day window, and it is gone.
    for t in [
        json!({ "structuringMinCount": 4 }),
        json!({ "structuringWindowDays": 3 }),
    ] {
        let found = nodes(
            &s.data(FINANCE, json!({ "t": t })).await,
            "tradeFinanceMismatches",
        );
        assert!(found.iter().all(|m| m["subjectTin"] != "55-1234567"));
    }
    // A window before the reports: nothing.
    let none = s
        .data(FINANCE, json!({ "f": { "dateTo": "2023-12-31" } }))
        .await;
    assert_eq!(none["tradeFinanceMismatches"]["totalCount"], 0);
    // CBP never resolves it, whatever the arguments.
    let refused = server.session(Some(&cbp)).gql(FINANCE, json!({})).await;
    assert_eq!(error_codes(&refused), ["FORBIDDEN_FIELD"]);
    assert_eq!(refused["data"], Value::Null);
}

#[tokio::test]
async fn bad_requests_are_bad_user_input() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.load_trade_fixture().await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let s = server.session(Some(&hsi));
    for (query, vars) in [
        (TOTALS, json!({ "g": ["HS2", "HS6"] })),
        (TOTALS, json!({ "g": ["YEAR", "YEAR"] })),
        (
            TOTALS,
            json!({ "g": ["YEAR"], "o": [{ "dimension": "MONTH" }] }),
        ),
        (
            TOTALS,
            json!({ "g": ["YEAR"], "o": [{ "dimension": "YEAR", "measure": "VALUE_USD" }] }),
        ),
        (
            TOTALS,
            json!({ "g": ["YEAR"], "f": { "hsCodePrefix": "84x" } }),
        ),
        (MIRROR, json!({ "a": 1.5 })),
        (MIRROR, json!({ "f": { "nation": ["KOR"] } })),
        (FINANCE, json!({ "t": { "marginUsd": 20000 } })),
        (FINANCE, json!({ "t": { "structuringMinCount": 1 } })),
    ] {
        let response = s.gql(query, vars.clone()).await;
        assert_eq!(
            error_codes(&response),
            ["BAD_USER_INPUT"],
            "{vars}: {response}"
        );
    }
}

/// Totals by importer, direction, nation or year over whole years are answered from the
/// importer-year rollup (migration 000014), which `dartts load` fills for each batch. They must
/// be the records' totals: the same request with a `declaredValueUsdMin` no row is below (a
/// field the rollup does not keep) reads the records instead. Emptying the rollup behind the
/// server's back changes the answers (so the rollup is what answered), and `dartts analysis
/// refresh` rebuilds it.
/// Totals and mirror pairs over whole years, answered from the rollups (`tradeTotals` by
/// importer from `trade_importer_years`, by HS level or partner and `mirrorDiscrepancies` from
/// `trade_hs6_years`), against the same questions made to read the records.
#[tokio::test]
async fn totals_and_mirror_pairs_from_the_rollups_are_the_records_answers() {
    for backend in BACKENDS {
        let env = world(backend).await;
        load_cn(&env).await;
        let hsi = env.user("hsi", "HSI_ANALYST", None).await;
        let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
        let server = env.serve().await;
        let s = server.session(Some(&hsi));
        let requests = [
            (TOTALS, json!({ "g": ["IMPORTER_ID", "YEAR"] })),
            (
                TOTALS,
                json!({ "g": ["IMPORTER_ID", "DIRECTION", "PROVIDER_COUNTRY"],
                    "f": { "declarationDateFrom": "2024-01-01", "declarationDateTo": "2024-12-31" },
                    "o": [{ "measure": "QUANTITY" }, { "dimension": "IMPORTER_ID", "direction": "ASC" }] }),
            ),
            (
                TOTALS,
                json!({ "g": ["YEAR"], "f": { "importerNameContains": "acme", "direction": "IMPORT" } }),
            ),
            (
                TOTALS,
                json!({ "g": [], "f": { "providerCountry": ["US", "KR"] } }),
            ),
            (
                TOTALS,
                json!({ "g": ["HS4", "YEAR", "DIRECTION"], "f": { "hsCodePrefix": "84" },
                    "o": [{ "measure": "RECORD_COUNT" }, { "dimension": "HS4", "direction": "ASC" }] }),
            ),
            (
                TOTALS,
                json!({ "g": ["HS6", "PROVIDER_COUNTRY"], "f": { "partnerCountry": ["KR", "CN"] } }),
            ),
            (MIRROR, json!({})),
            (
                MIRROR,
                json!({ "f": { "nation": ["KR"], "hsCodePrefix": "8471" }, "a": 0.0 }),
            ),
        ];
        // The same questions over dates that are not whole years (no record falls on the day
        // left out), or with a filter only the records keep: the records answer them.
        let from_records = |(query, request): &(&str, Value)| {
            let mut request = request.clone();
            if *query == TOTALS {
                request["f"]["declaredValueUsdMin"] = json!(-1.0);
            } else {
                request["f"]["declarationDateTo"] = json!("2099-12-30");
            }
            request
        };
        let mut rolled = Vec::new();
        for request in &requests {
            let answer = s.data(request.0, request.1.clone()).await;
            assert_eq!(
                without_cursors(&answer),
                without_cursors(&s.data(request.0, from_records(request)).await),
                "{backend:?} {}",
                request.1
            );
            let field = if request.0 == TOTALS {
                "tradeTotals"
            } else {
                "mirrorDiscrepancies"
            };
            assert!(!nodes(&answer, field).is_empty(), "{}", request.1);
            rolled.push(without_cursors(&answer));
        }
        // Acme's 2024 imports: US-1001 (2 lines), US-1005, US-1008 in the US fixture.
        let acme = &nodes(&rolled[2], "tradeTotals")[0];
        assert_eq!(acme["year"], 2024);
        assert!(acme["recordCount"].as_i64().expect("count") >= 4, "{acme}");

        // A partner's nation scope reads the provider and partner countries, which the HS6
        // rollup keeps: its pairs and subheading totals come from there too, under its scope,
        // and equal what its scope selects from the records (dates not whole years).
        let p = server.session(Some(&kr));
        let partner_requests = [
            (MIRROR, json!({})),
            (TOTALS, json!({ "g": ["HS6", "PROVIDER_COUNTRY"] })),
        ];
        let mut partner_rolled = Vec::new();
        for (query, request) in &partner_requests {
            let answer = p.data(query, request.clone()).await;
            let mut dated = request.clone();
            dated["f"]["declarationDateTo"] = json!("2099-12-30");
            assert_eq!(
                without_cursors(&answer),
                without_cursors(&p.data(query, dated).await),
                "{backend:?} KR {request}"
            );
            partner_rolled.push(without_cursors(&answer));
        }
        let kr_pairs = nodes(&partner_rolled[0], "mirrorDiscrepancies");
        assert!(!kr_pairs.is_empty());
        for pair in &kr_pairs {
            assert!(
                pair["exporterCountry"] == "KR" || pair["importerCountry"] == "KR",
                "{pair:#}"
            );
        }
        // KR's own rows and the US rows on KR; never CN's, loaded above.
        for n in nodes(&partner_rolled[1], "tradeTotals") {
            assert!(
                n["providerCountry"] == "KR" || n["providerCountry"] == "US",
                "{n}"
            );
        }

        // Emptied, each rollup answers nothing: it is what answered. Refresh restores both.
        use sea_orm::ConnectionTrait;
        let db = env.db().await;
        for table in ["trade_importer_years", "trade_hs6_years"] {
            db.execute_unprepared(&format!("DELETE FROM {table}"))
                .await
                .expect("empty the rollup");
        }
        // Every request above changes, so none of them read the records.
        for (request, before) in requests.iter().zip(&rolled) {
            let emptied = without_cursors(&s.data(request.0, request.1.clone()).await);
            assert_ne!(&emptied, before, "{} still answered", request.1);
        }
        for (request, before) in partner_requests.iter().zip(&partner_rolled) {
            let emptied = without_cursors(&p.data(request.0, request.1.clone()).await);
            assert_ne!(&emptied, before, "KR {} still answered", request.1);
        }
        let emptied = s.data(TOTALS, requests[3].1.clone()).await;
        assert_eq!(nodes(&emptied, "tradeTotals")[0]["recordCount"], 0);
        let emptied = p.data(MIRROR, partner_requests[0].1.clone()).await;
        assert_eq!(emptied["mirrorDiscrepancies"]["totalCount"], 0);
        let refresh = env.run(&["analysis", "refresh"]).await;
        assert!(refresh.ok, "{}", refresh.stderr);
        assert!(
            refresh.stdout.contains("HS6-year totals"),
            "{}",
            refresh.stdout
        );
        for (request, before) in requests.iter().zip(&rolled) {
            assert_eq!(
                &without_cursors(&s.data(request.0, request.1.clone()).await),
                before,
                "{}",
                request.1
            );
        }
        for (request, before) in partner_requests.iter().zip(&partner_rolled) {
            assert_eq!(
                &without_cursors(&p.data(request.0, request.1.clone()).await),
                before
            );
        }
    }
}
