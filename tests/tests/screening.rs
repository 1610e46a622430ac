//! Screening over HTTP against the real 2021 SDN list and the TECS fixture: hits, evidence,
//! freshness, who may see which source, record counting, audit, and the index noticing a load
//! made by another process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dartts_tests::{Backend, Server, TestEnv, error_codes, fixture, fixture_lines, path, samples};
use serde_json::{Value, json};

/// The one place the SDN list the tests screen against is named (the samples may move).
fn sdn_2021() -> PathBuf {
    samples().join("ofac/2021-07_watchman_bench")
}

const SCREEN: &str = r#"query($i: ScreeningInput!) { screen(input: $i) {
    input { name }
    sdnData { asOf stale } tecsData { asOf stale }
    hits { source score matchedName explanation
           sdnEntry { entNum name } subjectRecord { recordId caseStatus } } } }"#;

async fn screen(server: &Server, token: &str, input: Value) -> Value {
    server
        .session(Some(token))
        .data(SCREEN, json!({ "i": input }))
        .await["screen"]
        .clone()
}

async fn used(server: &Server, token: &str) -> u64 {
    server
        .session(Some(token))
        .data("{ quotaStatus { used } }", json!({}))
        .await["quotaStatus"]["used"]
        .as_u64()
        .expect("used")
}

/// PostgreSQL with the 2021 SDN list and the fixture's TECS subjects loaded.
async fn sdn_2021_and_subjects() -> TestEnv {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_ok(&["sdn", path(&sdn_2021()), "--as-of", "2021-07-01"])
        .await;
    env.load_ok(&["subjects", path(&fixture("subjects.csv"))])
        .await;
    env
}

#[tokio::test]
async fn screening_finds_listed_parties_counts_hits_and_respects_roles() {
    let env = sdn_2021_and_subjects().await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let server = env.serve().await;

    // Misspelled, reordered, with the date of birth: the right entry first, evidence shown.
    let r = screen(
        &server,
        &hsi,
        json!({ "name": "Aiman al Zawahri", "dateOfBirth": "1951-06-19", "kind": "PERSON" }),
    )
    .await;
    let top = &r["hits"][0];
    assert_eq!(top["source"], "SDN", "{r:#}");
    assert_eq!(top["sdnEntry"]["entNum"], 2676, "{r:#}");
    assert!(top["score"].as_f64().expect("score") >= 0.72, "{r:#}");
    assert!(
        top["explanation"]
            .as_str()
            .expect("explanation")
            .contains("date of birth matches exactly"),
        "{r:#}"
    );
    assert_eq!(top["subjectRecord"], Value::Null);
    // The 2021 list is years old: stale against the monthly cadence, and says so.
    assert_eq!(r["sdnData"], json!({ "asOf": "2021-07-01", "stale": true }));
    assert!(r["tecsData"]["asOf"].is_string(), "{r:#}");

    // An innocent name meets nobody.
    let none = screen(&server, &hsi, json!({ "name": "Margaret Thornbury" })).await;
    assert_eq!(none["hits"], json!([]), "{none:#}");
    // Nor does a name of generic words only (it met three listed trading companies, each with
    // a word of its own, at 0.72–0.75).
    let generic = screen(
        &server,
        &hsi,
        json!({ "name": "International Trading Company" }),
    )
    .await;
    assert_eq!(generic["hits"], json!([]), "{generic:#}");

    // Written in an abjad, which leaves short vowels out: found by its consonants, and the
    // explanation says how. Transliterated letter by letter, the Arabic name (`ymn lzwhry`)
    // found nobody, and the Hebrew one (Viktor Vekselberg) did not find him first.
    for (input, ent_num) in [
        (
            json!({ "name": "أيمن الظواهري", "dateOfBirth": "1951-06-19" }),
            2676,
        ),
        (json!({ "name": "ויקטור וקסלברג" }), 24306),
    ] {
        let r = screen(&server, &hsi, input.clone()).await;
        assert_eq!(r["input"]["name"], input["name"], "{r:#}");
        let top = &r["hits"][0];
        assert_eq!(top["sdnEntry"]["entNum"], ent_num, "{r:#}");
        assert!(
            top["explanation"]
                .as_str()
                .expect("explanation")
                .contains("by consonants"),
            "{r:#}"
        );
    }

    // Each entry names the load it came from (one statement for the page's entries).
    let page = server
        .session(Some(&hsi))
        .data(
            "{ sdnEntries(first: 3) { nodes { batch { dataset acceptedRows } } } }",
            json!({}),
        )
        .await;
    let batches = page["sdnEntries"]["nodes"].as_array().expect("nodes");
    assert_eq!(batches.len(), 3, "{page:#}");
    for b in batches {
        assert_eq!(b["batch"]["dataset"], "SDN", "{page:#}");
        assert!(b["batch"]["acceptedRows"].as_i64() > Some(0), "{page:#}");
    }

    // TECS subjects are screened too, with their case status.
    let tecs = screen(&server, &cbp, json!({ "name": "Golden Gate Metals Inc" })).await;
    let hit = tecs["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .find(|h| h["source"] == "TECS")
        .unwrap_or_else(|| panic!("no TECS hit: {tecs:#}"));
    assert_eq!(
        hit["subjectRecord"],
        json!({ "recordId": "B-0002", "caseStatus": "CLOSED" })
    );

    // Each hit is one delivered record.
    let before = used(&server, &cbp).await;
    let many = server
        .session(Some(&cbp))
        .data(
            "query($i: [ScreeningInput!]!) { screenMany(inputs: $i) { input { name } hits { score } } }",
            json!({ "i": [
                { "name": "Ayman al-Zawahiri" },
                { "name": "Margaret Thornbury" },
                { "name": "Banco Nacional de Cuba" },
            ] }),
        )
        .await;
    let results = many["screenMany"].as_array().expect("results");
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["input"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "Ayman al-Zawahiri",
            "Margaret Thornbury",
            "Banco Nacional de Cuba"
        ]
    );
    let delivered: u64 = results
        .iter()
        .map(|r| r["hits"].as_array().expect("hits").len() as u64)
        .sum();
    assert!(delivered >= 2, "{many:#}");
    assert_eq!(used(&server, &cbp).await, before + delivered);

    // Too many inputs, an empty name, unbounded evidence, a bad threshold: BAD_USER_INPUT.
    let inputs: Vec<Value> = (0..1001)
        .map(|i| json!({ "name": format!("n{i}") }))
        .collect();
    for (query, vars) in [
        (
            "query($i: [ScreeningInput!]!) { screenMany(inputs: $i) { hits { score } } }",
            json!({ "i": inputs }),
        ),
        (SCREEN, json!({ "i": { "name": "  " } })),
        // Evidence beside the name is bounded like the name.
        (
            SCREEN,
            json!({ "i": { "name": "x", "country": "L".repeat(101) } }),
        ),
        (
            SCREEN,
            json!({ "i": { "name": "x", "identifiers": vec!["P1"; 51] } }),
        ),
        (
            SCREEN,
            json!({ "i": { "name": "x", "identifiers": ["9".repeat(101)] } }),
        ),
        (
            "query($i: ScreeningInput!) { screen(input: $i, minScore: 0.1) { hits { score } } }",
            json!({ "i": { "name": "x" } }),
        ),
    ] {
        let body = server.session(Some(&hsi)).gql(query, vars).await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body:#}");
    }

    // A foreign partner may not screen at all.
    let body = server
        .session(Some(&kr))
        .gql(SCREEN, json!({ "i": { "name": "Ayman al-Zawahiri" } }))
        .await;
    assert_eq!(error_codes(&body), ["FORBIDDEN_FIELD"], "{body:#}");

    // The audit log holds no screened name in clear, inline or in variables.
    server
        .session(Some(&hsi))
        .data(
            r#"{ screen(input: { name: "Quentin Zzyzxwort" }) { hits { score } } }"#,
            json!({}),
        )
        .await;
    let db = env.db().await;
    use sea_orm::{ConnectionTrait, Statement};
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT detail AS d FROM audit_events",
        ))
        .await
        .expect("audit rows");
    assert!(!rows.is_empty());
    for row in rows {
        let detail: Option<String> = row.try_get("", "d").expect("detail");
        let detail = detail.unwrap_or_default();
        assert!(
            !detail.contains("Zzyzxwort") && !detail.contains("Zawahiri"),
            "{detail}"
        );
    }
}

#[tokio::test]
async fn the_as_of_date_is_that_of_the_list_screened_against() {
    let env = TestEnv::new(Backend::Postgres).await;
    // The newest load is the list screened against, even when its as-of date is older.
    env.load_ok(&["sdn", path(&fixture("sdn")), "--as-of", "2024-05-01"])
        .await;
    env.load_ok(&["sdn", path(&sdn_2021()), "--as-of", "2021-07-01"])
        .await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let r = screen(&server, &hsi, json!({ "name": "Ayman al-Zawahiri" })).await;
    assert_eq!(r["sdnData"]["asOf"], "2021-07-01", "{r:#}");
    assert!(!r["hits"].as_array().expect("hits").is_empty(), "{r:#}");
}

#[tokio::test]
async fn the_index_follows_a_load_made_by_another_process() {
    let env = TestEnv::new(Backend::Postgres).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let before = screen(&server, &hsi, json!({ "name": "John Q Courier" })).await;
    assert_eq!(before["hits"], json!([]));
    assert_eq!(before["tecsData"]["stale"], true);

    env.load_ok(&["subjects", path(&fixture("subjects.csv"))])
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = screen(&server, &hsi, json!({ "name": "John Q Courier" })).await;
        if after["hits"][0]["subjectRecord"]["recordId"] == "P-0001" {
            // The answer's freshness is the index's: it moved with it.
            assert!(after["tecsData"]["asOf"].is_string(), "{after:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the index did not pick up the load: {after:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The trade fixture and the TECS subjects, served to a CBP officer (who may read TECS hits).
async fn trade_and_subjects_for_cbp() -> (TestEnv, Server, String) {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    env.load_ok(&["subjects", path(&fixture("subjects.csv"))])
        .await;
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    (env, server, cbp)
}

/// A row's `partyHits`, checked to hold the fixture's Golden Gate importer hit (TECS B-0002).
fn importer_hits_closed_case<'a>(node: &'a Value, data: &Value) -> &'a Vec<Value> {
    let party_hits = node["partyHits"].as_array().expect("partyHits");
    assert!(
        party_hits
            .iter()
            .any(|h| h["party"] == "IMPORTER" && h["hit"]["subjectRecord"]["recordId"] == "B-0002"),
        "{data:#}"
    );
    party_hits
}

#[tokio::test]
async fn trade_parties_are_screened_and_their_hits_counted() {
    let (_env, server, cbp) = trade_and_subjects_for_cbp().await;
    let before = used(&server, &cbp).await;
    let data = server
        .session(Some(&cbp))
        .data(
            r#"{ tradeRecords(first: 50, filter: { importerNameContains: "golden" }) { edges { node {
                partyHits { party hit { source subjectRecord { recordId } } } } } } }"#,
            json!({}),
        )
        .await;
    let edges = data["tradeRecords"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 2, "{data:#}");
    let mut hits = 0;
    for edge in edges {
        hits += importer_hits_closed_case(&edge["node"], &data).len() as u64;
    }
    // Two records and every hit.
    assert_eq!(used(&server, &cbp).await, before + 2 + hits);
}

#[tokio::test]
async fn totals_rows_grouped_by_a_party_are_screened_and_their_hits_counted() {
    let (env, server, cbp) = trade_and_subjects_for_cbp().await;
    // Two more spellings of the fixture's Golden Gate importer id: one the same TECS entry
    // (B-0002), one another subject's name (P-0001); and two other importer ids named as
    // subjects (P-0004, P-0001).
    let lines = fixture_lines("trade_canonical.csv");
    let (header, fixture_line) = (
        &lines[0],
        lines
            .iter()
            .find(|l| l.starts_with("US-1003,"))
            .expect("US-1003"),
    );
    let extra = env.dir.path().join("spellings.csv");
    std::fs::write(
        &extra,
        format!(
            "{header}\n{}\n{}\n{}\n",
            fixture_line
                .replace("US-1003,", "US-9001,")
                .replace(",Golden Gate Metals,", ",GOLDEN GATE METALS LLC,"),
            fixture_line
                .replace("US-1003,", "US-9002,")
                .replace(",Golden Gate Metals,", ",John Q Courier,"),
            [
                ("US-9003,", ",Jane Victim,", "77-7000001"),
                ("US-9004,", ",John Q Courier,", "88-8000001"),
            ]
            .map(|(declaration, name, id)| fixture_line
                .replace("US-1003,", declaration)
                .replace(",Golden Gate Metals,", name)
                .replace("55-1234567", id))
            .join("\n"),
        ),
    )
    .expect("write csv");
    env.load_ok(&["trade", path(&extra), "--provider", "US"])
        .await;
    let session = server.session(Some(&cbp));
    let query = |filter: &str| {
        format!(
            r#"{{ tradeTotals(groupBy: [IMPORTER_ID], filter: {filter}) {{
                edges {{ node {{ importerId importerName recordCount
                    partyHits {{ party hit {{ source matchedName subjectRecord {{ recordId }} }} }} }} }} }} }}"#
        )
    };
    let records_hit = |node: &Value| -> Vec<String> {
        let mut ids: Vec<String> = node["partyHits"]
            .as_array()
            .expect("partyHits")
            .iter()
            .map(|h| {
                h["hit"]["subjectRecord"]["recordId"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        ids.sort();
        ids
    };

    // Grouped by id only: the names behind the id are read from the totalled rows — the
    // filter keeps the Courier row out, and the two spellings of one entry give one hit.
    let before = used(&server, &cbp).await;
    let data = session
        .data(&query(r#"{ importerNameContains: "golden" }"#), json!({}))
        .await;
    let edges = data["tradeTotals"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{data:#}");
    let node = &edges[0]["node"];
    assert!(
        node["importerName"].is_null(),
        "not grouped by name: {data:#}"
    );
    assert_eq!(node["recordCount"], 3, "{data:#}");
    importer_hits_closed_case(node, &data);
    assert_eq!(records_hit(node), ["B-0002"], "{data:#}");
    assert_eq!(
        used(&server, &cbp).await,
        before + 2,
        "the group and its hit are delivered records"
    );

    // Without the name filter the id's third spelling is screened too.
    let data = session
        .data(&query(r#"{ importerId: "55-1234567" }"#), json!({}))
        .await;
    let node = &data["tradeTotals"]["edges"][0]["node"];
    assert_eq!(node["recordCount"], 4, "{data:#}");
    assert_eq!(records_hit(node), ["B-0002", "P-0001"], "{data:#}");

    // A page of many ids, whose names are read together: each row's hits are those of its own
    // id asked alone.
    let data = session.data(&query("{}"), json!({})).await;
    let edges = data["tradeTotals"]["edges"].as_array().expect("edges");
    let mut hit_sets = std::collections::BTreeSet::new();
    for edge in edges {
        let node = &edge["node"];
        let id = node["importerId"].as_str().expect("importerId");
        let alone = session
            .data(&query(&format!(r#"{{ importerId: "{id}" }}"#)), json!({}))
            .await;
        let alone = &alone["tradeTotals"]["edges"][0]["node"];
        assert_eq!(records_hit(node), records_hit(alone), "{id}: {data:#}");
        hit_sets.insert(records_hit(node));
    }
    assert!(
        hit_sets.len() >= 3,
        "too few distinct hits to tell rows apart: {hit_sets:?}"
    );

    // Grouped by something other than a party: nothing to screen.
    let data = session
        .data(
            r#"{ tradeTotals(groupBy: [COUNTRY_OF_ORIGIN]) { edges { node { partyHits { party } } } } }"#,
            json!({}),
        )
        .await;
    let edges = data["tradeTotals"]["edges"].as_array().expect("edges");
    assert!(!edges.is_empty(), "{data:#}");
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["partyHits"].as_array().is_some_and(Vec::is_empty)),
        "{data:#}"
    );
}

/// The entries behind the hits of a whole `screenMany` are read together (one loader per
/// request): each hit must still get its own entry — the one whose primary name or alias it
/// matched — and a TECS hit its own subject record.
#[tokio::test]
async fn every_hit_of_a_batch_gets_its_own_entry() {
    let env = sdn_2021_and_subjects().await;
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    let names = [
        "Ayman al-Zawahiri",
        "Banco Nacional de Cuba",
        "Mahan Air",
        "Islamic Revolutionary Guard Corps",
        "Golden Gate Metals Inc",
        "Hezbollah",
        "Kim Jong Un",
        "Viktor Bout",
    ];
    let inputs: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    let many = server
        .session(Some(&cbp))
        .data(
            r#"query($i: [ScreeningInput!]!) { screenMany(inputs: $i, limit: 10) { hits {
                source matchedName
                sdnEntry { entNum name aliases { name } }
                subjectRecord { recordId name businessName } } } }"#,
            json!({ "i": inputs }),
        )
        .await;
    let mut entries = std::collections::BTreeSet::new();
    let mut subjects = 0;
    for hit in many["screenMany"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|r| r["hits"].as_array().expect("hits"))
    {
        let matched = hit["matchedName"].as_str().expect("matchedName");
        if hit["source"] == "SDN" {
            let entry = &hit["sdnEntry"];
            let mut listed = vec![entry["name"].as_str().expect("name")];
            listed.extend(
                entry["aliases"]
                    .as_array()
                    .expect("aliases")
                    .iter()
                    .map(|a| a["name"].as_str().expect("alias")),
            );
            assert!(listed.contains(&matched), "{matched} not in {entry:#}");
            assert_eq!(hit["subjectRecord"], Value::Null);
            entries.insert(entry["entNum"].as_i64().expect("entNum"));
        } else {
            let record = &hit["subjectRecord"];
            assert!(
                record["name"] == matched || record["businessName"] == matched,
                "{hit:#}"
            );
            assert_eq!(hit["sdnEntry"], Value::Null);
            subjects += 1;
        }
    }
    assert!(entries.len() >= 15, "{} entries: {many:#}", entries.len());
    assert!(subjects >= 1, "{many:#}");
}
