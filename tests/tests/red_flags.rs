//! Red flags and the demo world through the binary: `dartts demo-data` writes a loadable world,
//! `redFlags` finds its injected transshipments and Benford importers (and the quota counts
//! each flag), and `dartts eval anomalies` scores the loaded database against truth.csv. Seed 2
//! is a world with a Benford importer among its 30 (each is one with probability 2 %).

use std::collections::{BTreeSet, HashMap};

use dartts_tests::{Backend, Session, TestEnv, record_ids};
use serde_json::json;

fn truth_of(dir: &std::path::Path) -> (HashMap<String, String>, HashMap<String, String>) {
    let truth: HashMap<String, String> = std::fs::read_to_string(dir.join("truth.csv"))
        .expect("truth")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[2].to_owned())
        })
        .collect();
    let mut reader = csv_lines(&dir.join("trade.csv"));
    let header = reader.remove(0);
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (id, importer) = (at("declaration_id"), at("importer_id"));
    let importers = reader
        .into_iter()
        .map(|r| (r[id].clone(), r[importer].clone()))
        .collect();
    (truth, importers)
}

/// The generator quotes only descriptions and addresses, which never hold the ids read here.
fn csv_lines(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("csv")
        .lines()
        .map(|l| {
            let mut out = Vec::new();
            let mut field = String::new();
            let mut quoted = false;
            for c in l.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => out.push(std::mem::take(&mut field)),
                    other => field.push(other),
                }
            }
            out.push(field);
            out
        })
        .collect()
}

/// Every edge of `field`, `first` at a time after each page's end cursor; `total` edges exist
/// (each page must say so too).
async fn every_page(
    session: &Session<'_>,
    query: &str,
    field: &str,
    first: u64,
    total: usize,
) -> Vec<serde_json::Value> {
    let mut paged = Vec::new();
    let mut cursor = serde_json::Value::Null;
    loop {
        let page = session
            .data(query, json!({"first": first, "after": cursor}))
            .await[field]
            .clone();
        assert_eq!(page["totalCount"], total, "{field}");
        paged.extend(page["edges"].as_array().expect("edges").iter().cloned());
        // A page that does not move past its cursor would page forever.
        assert!(paged.len() <= total, "{field}: more edges paged than exist");
        if page["pageInfo"]["hasNextPage"] != true {
            return paged;
        }
        cursor = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn the_demo_world_loads_and_its_red_flags_and_price_anomalies_are_found() {
    let env = TestEnv::new(Backend::Postgres).await;
    let world = env.dir.path().join("world");
    let w = world.to_str().expect("utf-8");
    let made = env
        .run(&["demo-data", "--seed", "2", "--rows", "30000", "--out", w])
        .await;
    assert!(made.ok, "{}", made.stderr);
    env.load_ok(&["trade", &format!("{w}/trade.csv"), "--provider", "US"])
        .await;
    env.load_ok(&[
        "trade",
        &format!("{w}/partner_trade.csv"),
        "--provider",
        "KR",
    ])
    .await;
    env.load_ok(&["financial", &format!("{w}/financial.csv")])
        .await;
    env.load_ok(&["subjects", &format!("{w}/subjects.csv")])
        .await;
    env.load_ok(&["sdn", &format!("{w}/sdn")]).await;
    let (truth, importer_of) = truth_of(&world);

    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&hsi));
    let used = |v: serde_json::Value| v["quotaStatus"]["used"].as_i64().expect("used");
    let before = used(session.data("{ quotaStatus { used } }", json!({})).await);

    let flags = session
        .data(
            "{ redFlags(kinds: [TRANSSHIPMENT], first: 1000) { totalCount edges { node { kind record { declarationId countryOfOrigin countryOfExport } } } } }",
            json!({}),
        )
        .await["redFlags"]
        .clone();
    let flagged: BTreeSet<String> = record_ids(&flags["edges"]).into_iter().collect();
    let injected: BTreeSet<String> = truth
        .iter()
        .filter(|(id, kind)| *kind == "TRANSSHIPMENT" && id.starts_with("DEMO-"))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!injected.is_empty());
    assert_eq!(flagged, injected);
    let transshipments = flagged.len() as i64;

    let benford = session
        .data(
            "{ redFlags(kinds: [BENFORD]) { totalCount edges { node { kind importer record { declarationId } facts { name value text } } } } }",
            json!({}),
        )
        .await["redFlags"]
        .clone();
    let found: BTreeSet<String> = benford["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["importer"].as_str().expect("importer").to_owned())
        .collect();
    let fabricators: BTreeSet<String> = truth
        .iter()
        .filter(|(_, kind)| *kind == "BENFORD")
        .map(|(id, _)| importer_of[id].clone())
        .collect();
    assert!(!fabricators.is_empty());
    assert_eq!(found, fabricators);
    let first = &benford["edges"][0]["node"];
    assert!(first["record"].is_null());
    let facts = first["facts"].as_array().expect("facts");
    assert!(
        facts
            .iter()
            .any(|f| f["name"] == "firstDigitMad" && f["value"].as_f64().expect("mad") > 0.015)
    );
    assert!(
        facts
            .iter()
            .any(|f| f["name"] == "conformity" && f["text"] == "NONCONFORMITY")
    );

    let after = used(session.data("{ quotaStatus { used } }", json!({})).await);
    assert_eq!(after - before, transshipments + found.len() as i64);

    // Paged by keyset: small pages, each after the previous page's end cursor, give what one
    // page gives, in the same order (kinds in turn; value per kg by score, the others by
    // record, Benford by importer).
    let query = "query($after: String, $first: Int) { redFlags(kinds: [VALUE_PER_KG, \
                 TRANSSHIPMENT, BENFORD], first: $first, after: $after) { totalCount \
                 pageInfo { hasNextPage endCursor } edges { node { kind importer \
                 record { id } } } } }";
    let whole = session.data(query, json!({"first": 1000})).await["redFlags"].clone();
    let all = whole["edges"].as_array().expect("edges").clone();
    assert_eq!(whole["totalCount"].as_u64(), Some(all.len() as u64));
    assert_eq!(whole["pageInfo"]["hasNextPage"], false);
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e["node"]["kind"].as_str().expect("kind"))
        .collect();
    assert!(
        ["VALUE_PER_KG", "TRANSSHIPMENT", "BENFORD"]
            .iter()
            .all(|k| kinds.contains(k)),
        "every kind present, for the test to mean something: {kinds:?}"
    );
    let paged = every_page(&session, query, "redFlags", 7, all.len()).await;
    if let Some(i) = (0..paged.len().max(all.len())).find(|i| paged.get(*i) != all.get(*i)) {
        panic!(
            "paged {} against {} flags; first difference at {i}: {} against {}",
            paged.len(),
            all.len(),
            paged.get(i).map_or("none".into(), |v| v.to_string()),
            all.get(i).map_or("none".into(), |v| v.to_string()),
        );
    }

    // A cursor of another connection, an old offset cursor and garbage are the caller's
    // mistake.
    let trade_cursor = session
        .data("{ tradeRecords(first: 1) { edges { cursor } } }", json!({}))
        .await["tradeRecords"]["edges"][0]["cursor"]
        .clone();
    for foreign in [trade_cursor, json!("b2Zmc2V0OjE"), json!("nope")] {
        let refused = session
            .gql(query, json!({"first": 5, "after": foreign}))
            .await;
        assert_eq!(
            dartts_tests::error_codes(&refused),
            ["BAD_USER_INPUT"],
            "{foreign}: {refused:#}"
        );
    }

    let bad = session
        .gql("{ redFlags(hubs: [\"Dubai\"]) { totalCount } }", json!({}))
        .await;
    assert_eq!(dartts_tests::error_codes(&bad), ["BAD_USER_INPUT"]);

    // Price anomalies page by (score, record) on both of their paths: the analyst's against
    // the stored profiles (a seek in SQL), a partner's against peers from its own rows (ranked
    // in Rust).
    let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
    let anomalies_by = |fences: &str| {
        format!(
            "query($after: String, $first: Int) {{ priceAnomalies(first: $first, after: \
             $after{fences}) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node \
             {{ score record {{ id }} }} }} }} }}"
        )
    };
    // For the partner, fences wider than the default's (k 4, ratio 2, 10 peers): on the domestic
    // instance its peers are its own rows only, few enough that the defaults flag too few to
    // page.
    // Another query's cursor (the analyst's: the partner has no flags of these kinds).
    let flag_cursor =
        session.data(query, json!({"first": 1})).await["redFlags"]["pageInfo"]["endCursor"].clone();
    assert!(flag_cursor.is_string(), "{flag_cursor}");
    for (token, anomalies) in [
        (&hsi, anomalies_by("")),
        (&kr, anomalies_by(", k: 1.5, minRatio: 1.2, minPeers: 3")),
    ] {
        let anomalies = anomalies.as_str();
        let s = server.session(Some(token));
        let whole = s.data(anomalies, json!({"first": 1000})).await["priceAnomalies"].clone();
        let all = whole["edges"].as_array().expect("edges").clone();
        assert!(all.len() >= 5, "{whole:#}");
        assert_eq!(whole["pageInfo"]["hasNextPage"], false);
        let paged = every_page(&s, anomalies, "priceAnomalies", 2, all.len()).await;
        assert_eq!(paged, all);
        for foreign in [flag_cursor.clone(), json!("b2Zmc2V0OjE")] {
            let refused = s
                .gql(anomalies, json!({"first": 3, "after": foreign}))
                .await;
            assert_eq!(
                dartts_tests::error_codes(&refused),
                ["BAD_USER_INPUT"],
                "{refused:#}"
            );
        }
    }

    let eval = env
        .run(&["eval", "anomalies", "--truth", &format!("{w}/truth.csv")])
        .await;
    assert!(eval.ok, "{}", eval.stderr);
    let price = eval
        .stdout
        .lines()
        .find(|l| l.starts_with("PRICE ") && l.contains("DARTTS"))
        .expect("a PRICE line");
    let f1: f64 = price
        .split_whitespace()
        .last()
        .expect("F1")
        .parse()
        .expect("number");
    assert!(f1 > 0.9, "{}", eval.stdout);
}

/// The NEW_CHAPTER flags (edges) `session` sees under `filter`, on one page.
async fn new_chapter_flags(
    session: &Session<'_>,
    query: &str,
    filter: &serde_json::Value,
) -> Vec<serde_json::Value> {
    session
        .data(
            query,
            json!({"first": 100, "kinds": ["NEW_CHAPTER"], "filter": filter}),
        )
        .await["redFlags"]["edges"]
        .as_array()
        .expect("edges")
        .clone()
}

/// The record-level flags on rows small enough to know by heart, on both backends: which
/// records each kind flags, the facts of a new chapter (an importer's history is every row the
/// caller may see, whatever the filter), and pages of every size giving what one page gives.
/// An importer is its id, else its name: "Bee Co" without an id and "Bee Co" with one are two.
#[tokio::test]
async fn record_flags_page_in_the_database_and_new_chapters_count_days() {
    let rows = "declaration_id,declaration_date,direction,hs_code,importer_name,importer_id,\
                country_of_origin,country_of_export,declared_value,declared_currency\n\
                A-1,2023-01-01,IMPORT,8471300100,Aye Corp,11-1111111,CN,CN,1234.5,USD\n\
                A-2,2023-06-01,IMPORT,6109100010,Aye Corp,11-1111111,VN,VN,2222.5,USD\n\
                A-3,2024-02-01,IMPORT,8542310000,Aye Corp,11-1111111,TW,HK,3333.5,USD\n\
                A-4,2024-03-01,IMPORT,8542310000,Aye Corp,11-1111111,TW,TW,20000,USD\n\
                B-1,2022-01-01,IMPORT,1001990000,Bee Co,,US,US,1500.5,USD\n\
                B-2,2022-12-31,IMPORT,2009110000,Bee Co,,US,US,1600.5,USD\n\
                B-3,2023-01-01,IMPORT,8471300100,Bee Co,,CN,SG,30000,USD\n\
                C-1,2023-05-05,IMPORT,8471300100,Sea Ltd,33-3333333,CN,CN,11000,USD\n\
                D-1,2024-05-01,IMPORT,9403600000,Bee Co,44-4444444,CN,CN,1700.5,USD\n";
    for backend in dartts_tests::BACKENDS {
        let env = TestEnv::new(backend).await;
        let file = env.dir.path().join("flags.csv");
        std::fs::write(&file, rows).expect("write");
        env.load_ok(&["trade", file.to_str().expect("path"), "--provider", "US"])
            .await;
        let server = env.serve_as_analyst().await;
        let session = server.session(server.token.as_deref());
        let query = "query($after: String, $first: Int, $filter: TradeRecordFilter, \
                     $kinds: [RedFlagKind!]) { redFlags(filter: $filter, kinds: $kinds, \
                     first: $first, after: $after) { totalCount pageInfo { hasNextPage \
                     endCursor } edges { node { kind importer record { declarationId } \
                     facts { name value text } } } } }";
        let whole = session.data(query, json!({"first": 100})).await["redFlags"].clone();
        let listed: Vec<String> = whole["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["node"]["kind"].as_str().expect("kind"),
                    e["node"]["record"]["declarationId"].as_str().expect("id")
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                "ROUND_VALUE A-4",
                "ROUND_VALUE B-3",
                "ROUND_VALUE C-1",
                "TRANSSHIPMENT A-3",
                "TRANSSHIPMENT B-3",
                "NEW_CHAPTER A-3",
                "NEW_CHAPTER A-4",
                "NEW_CHAPTER B-3",
            ],
            "{backend:?}"
        );
        assert_eq!(whole["totalCount"], 8, "{backend:?}");
        for first in [1, 2, 3] {
            let paged = every_page(&session, query, "redFlags", first, 8).await;
            assert_eq!(paged, whole["edges"].as_array().expect("edges").clone());
        }

        // B-3: chapter 84 365 days after Bee Co's first record (new: the rule is "at least");
        // B-2's chapter 20 came after 364 (not new). Filtered to origin TW, Aye Corp's
        // chapter 85 is still new against its whole history.
        let facts = |edge: &serde_json::Value| -> Vec<String> {
            edge["node"]["facts"]
                .as_array()
                .expect("facts")
                .iter()
                .map(|f| {
                    format!(
                        "{}={}",
                        f["name"].as_str().expect("name"),
                        match &f["text"] {
                            serde_json::Value::String(t) => t.clone(),
                            _ => f["value"].to_string(),
                        }
                    )
                })
                .collect()
        };
        let new_chapters = whole["edges"].as_array().expect("edges")[5..].to_vec();
        assert_eq!(new_chapters[2]["node"]["importer"], "Bee Co");
        assert_eq!(
            facts(&new_chapters[2]),
            [
                "chapter=84",
                "importerSince=2022-01-01",
                "chapterSince=2023-01-01",
                "daysAfterFirstRecord=365.0"
            ],
            "{backend:?}"
        );
        let tw = session
            .data(
                query,
                json!({"first": 100, "kinds": ["NEW_CHAPTER"], "filter": {"countryOfOrigin": ["TW"]}}),
            )
            .await["redFlags"]
            .clone();
        assert_eq!(tw["totalCount"], 2, "{backend:?}");
        assert_eq!(tw["edges"][1]["node"]["importer"], "11-1111111");
        assert_eq!(
            facts(&tw["edges"][1]),
            [
                "chapter=85",
                "importerSince=2023-01-01",
                "chapterSince=2024-02-01",
                "daysAfterFirstRecord=396.0"
            ],
            "{backend:?}"
        );
        // FinCEN reports on Aye Corp (by TIN) and on Bee Co (by name: its records without an
        // id, not D-1 under an id of its own).
        let reports = env.dir.path().join("reports.csv");
        std::fs::write(
            &reports,
            "report_id,report_type,transaction_date,amount_usd,cash_direction,filer_institution,\
             subject_name,subject_tin\n\
             CTR-1,CTR,2024-01-10,15000,IN,First Bank,Aye Corp,11-1111111\n\
             CTR-2,CTR,2024-01-11,12000,IN,First Bank,Bee Co,\n",
        )
        .expect("write");
        env.load_ok(&["financial", reports.to_str().expect("path")])
            .await;
        // One importer's flags, as its entity view asks: its whole history, not the table's.
        for (filter, expected) in [
            (json!({"importerId": "11-1111111"}), vec!["A-3", "A-4"]),
            (json!({"importerNameContains": "bee"}), vec!["B-3"]),
            (
                json!({"linkedFinancialActivity": true}),
                vec!["A-3", "A-4", "B-3"],
            ),
            (
                json!({"linkedFinancialActivity": true, "importerNameContains": "bee"}),
                vec!["B-3"],
            ),
        ] {
            let one = new_chapter_flags(&session, query, &filter).await;
            let ids: Vec<&str> = one
                .iter()
                .map(|e| e["node"]["record"]["declarationId"].as_str().expect("id"))
                .collect();
            assert_eq!(ids, expected, "{backend:?}: {filter}");
        }
        // A longer wait flags nothing new; a shorter one adds B-2 (364 days).
        for (days, expected) in [(397, 0), (364, 4)] {
            let q = format!(
                "{{ redFlags(kinds: [NEW_CHAPTER], newChapterAfterDays: {days}) {{ totalCount }} }}"
            );
            let n = session.data(&q, json!({})).await["redFlags"]["totalCount"].clone();
            assert_eq!(n, expected, "{backend:?}: {days} days");
        }
        // A partner judges an importer on the rows it may see: Korea's own two lines of Aye
        // Corp make chapter 84 new 395 days after Korea's first, where the US rows (out of
        // its scope) would make it Aye Corp's oldest chapter. The filter must not widen the
        // scope the histories are read in, for the flag or for its facts.
        let korean = env.dir.path().join("kr.csv");
        std::fs::write(
            &korean,
            "declaration_id,declaration_date,direction,hs_code,importer_name,importer_id,\
             country_of_origin,country_of_export,declared_value,declared_currency\n\
             K-1,2024-06-01,IMPORT,8542310000,Aye Corp,11-1111111,TW,TW,100.5,USD\n\
             K-2,2025-07-01,IMPORT,8471300100,Aye Corp,11-1111111,CN,CN,100.5,USD\n",
        )
        .expect("write");
        env.load_ok(&["trade", korean.to_str().expect("path"), "--provider", "KR"])
            .await;
        let kr = env.user("kr", "FOREIGN_PARTNER", Some("KR")).await;
        let partner = server.session(Some(&kr));
        for filter in [
            json!({}),
            json!({"hsCodePrefix": "84"}),
            json!({"importerId": "11-1111111"}),
            // By name the pairs are found from the named importers' histories, in the scope.
            json!({"importerNameContains": "AYE"}),
        ] {
            let seen = new_chapter_flags(&partner, query, &filter).await;
            assert_eq!(seen.len(), 1, "{backend:?}: {filter}: {seen:?}");
            assert_eq!(seen[0]["node"]["record"]["declarationId"], "K-2");
            assert_eq!(
                facts(&seen[0]),
                [
                    "chapter=84",
                    "importerSince=2024-06-01",
                    "chapterSince=2025-07-01",
                    "daysAfterFirstRecord=395.0"
                ],
                "{backend:?}: {filter}"
            );
        }
    }
}
