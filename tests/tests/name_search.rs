//! A search by a substring of the importer's name (`importerNameContains`, the entity view by
//! name) reads the records of the importers the rollup names (`TradeRecordFilter::narrow`): it
//! must find exactly the records the substring alone finds, on both backends — whatever the
//! case of the name, for importers with and without an id, for an id that also carries a name
//! that does not match, for rows a later load adds, and for names with letters beyond A–Z in
//! either case.

use dartts_tests::{Backend, TestEnv};
use serde_json::{Value, json};

const HEADER: &str = "declaration_id,declaration_date,direction,hs_code,importer_name,importer_id,\
                      declared_value,declared_currency\n";

const SEARCH: &str = "query($name: String!) {
    tradeRecords(first: 50, filter: { importerNameContains: $name }) {
        totalCount edges { node { declarationId } } } }";

fn write(dir: &std::path::Path, name: &str, rows: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, format!("{HEADER}{rows}")).expect("write");
    file.to_str().expect("utf-8 path").to_owned()
}

fn ids(body: &Value) -> Vec<String> {
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["tradeRecords"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["declarationId"].as_str().expect("id").to_owned())
        .collect()
}

async fn finds_what_the_substring_finds(backend: Backend) {
    let env = TestEnv::new(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // N1–N2: an id under a matching name; N3: the same id under a name that does not match;
    // N4–N5: no id, the name in upper case; N6: another id, the match inside the name;
    // N7–N8: neither.
    let first = write(
        dir.path(),
        "first.csv",
        "N1,2024-01-05,IMPORT,8471300100,Nordwind Handel GmbH,11-1111111,100,USD\n\
         N2,2024-02-05,IMPORT,8471300100,Nordwind Handel GmbH,11-1111111,200,USD\n\
         N3,2024-03-05,IMPORT,8471300100,NW Trading,11-1111111,300,USD\n\
         N4,2024-04-05,IMPORT,6109100000,NORDWIND FREIGHT,,400,USD\n\
         N5,2024-05-05,IMPORT,6109100000,NORDWIND FREIGHT,,500,USD\n\
         N6,2024-06-05,IMPORT,6109100000,Suedwind-Nordwind Partners,22-2222222,600,USD\n\
         N7,2024-07-05,IMPORT,6109100000,Other Freight,,700,USD\n\
         N8,2024-08-05,IMPORT,6109100000,Unrelated Co,33-3333333,800,USD\n",
    );
    env.load_ok(&["trade", &first, "--provider", "US"]).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&hsi));

    let (status, body) = session.post(SEARCH, json!({ "name": "nordWIND" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), ["N1", "N2", "N4", "N5", "N6"], "{body}");
    assert_eq!(body["data"]["tradeRecords"]["totalCount"], 5, "{body}");

    // The id's other name is found by its own substring, not by the id.
    let (_, body) = session.post(SEARCH, json!({ "name": "nw trad" })).await;
    assert_eq!(ids(&body), ["N3"], "{body}");
    let (_, body) = session
        .post(SEARCH, json!({ "name": "no such firm" }))
        .await;
    assert_eq!(ids(&body), Vec::<String>::new(), "{body}");
    assert_eq!(body["data"]["tradeRecords"]["totalCount"], 0, "{body}");

    // A later load's rows, under a new name and an old id, are found with the first ones.
    let later = write(
        dir.path(),
        "later.csv",
        "N9,2025-01-05,IMPORT,8471300100,Nordwind Logistics,,900,USD\n\
         N10,2025-02-05,IMPORT,8471300100,Nordwind Handel GmbH,33-3333333,1000,USD\n",
    );
    env.load_ok(&["trade", &later, "--provider", "US"]).await;
    let (_, body) = session.post(SEARCH, json!({ "name": "NORDWIND" })).await;
    assert_eq!(
        ids(&body),
        ["N1", "N2", "N4", "N5", "N6", "N9", "N10"],
        "{body}"
    );

    // The entity view by name reads the same records: its totals count them all.
    let (_, body) = session
        .post(
            "{ entity(name: \"nordwind\") { tradeTotals { edges { node { recordCount } } } } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let counted: i64 = body["data"]["entity"]["tradeTotals"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["recordCount"].as_i64().expect("count"))
        .sum();
    assert_eq!(counted, 7, "{body}");

    // Every letter in either case, beyond A–Z too. (SQL's `LOWER` folds A–Z only: `müller`
    // did not find `MÜLLER`, and before that "ÉCOLE" could not find "ÉCOLE".)
    let accents = write(
        dir.path(),
        "accents.csv",
        "U1,2025-03-05,IMPORT,8471300100,ÉCOLE ÖZTÜRK Ltd,,100,USD\n\
         U2,2025-03-06,IMPORT,8471300100,école öztürk ltd,,200,USD\n\
         U3,2025-03-07,IMPORT,8471300100,ООО РОМАШКА,,300,USD\n\
         U4,2025-03-08,IMPORT,8471300100,Ромашка Трейд,,400,USD\n\
         U5,2025-03-09,IMPORT,8471300100,ΑΘΗΝΑ ΕΜΠΟΡΙΚΗ,,500,USD\n",
    );
    env.load_ok(&["trade", &accents, "--provider", "US"]).await;
    for (name, found) in [
        ("ÉCOLE ÖZTÜRK Ltd", vec!["U1", "U2"]),
        ("ÉCOLE", vec!["U1", "U2"]),
        ("Écolé", vec![]),
        ("école öztürk", vec!["U1", "U2"]),
        ("ÉCOle ÖzTÜRK LTD", vec!["U1", "U2"]),
        ("öztürk", vec!["U1", "U2"]),
        // Decomposed (`e` and a combining accent) is the same text.
        ("E\u{301}cole", vec!["U1", "U2"]),
        ("ромашка", vec!["U3", "U4"]),
        ("РОМАШКА ТРЕЙД", vec!["U4"]),
        ("Αθηνα", vec!["U5"]),
        // Still a substring, `%` and `_` literal.
        ("ö%k", vec![]),
        ("ö_tü", vec![]),
    ] {
        let (_, body) = session.post(SEARCH, json!({ "name": name })).await;
        assert_eq!(ids(&body), found, "{name}: {body}");
    }
    // The longest needle accepted, 200 distinct letters each with another case: one `REPLACE`
    // apiece, nested 200 deep, is still a query both backends answer.
    let needle: String = ('\u{e0}'..='\u{24f}')
        .chain('\u{3b1}'..='\u{3c9}')
        .chain('\u{430}'..='\u{45f}')
        .filter(|c| c.is_lowercase() && c.to_uppercase().count() == 1)
        .filter(|c| c.to_uppercase().all(|u| u != *c))
        .take(200)
        .collect();
    assert_eq!(needle.chars().count(), 200);
    let (status, body) = session.post(SEARCH, json!({ "name": needle })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), Vec::<String>::new(), "{body}");
}

#[tokio::test]
async fn a_name_search_finds_what_the_substring_finds_on_postgresql() {
    finds_what_the_substring_finds(Backend::Postgres).await;
}

#[tokio::test]
async fn a_name_search_finds_what_the_substring_finds_on_sqlite() {
    finds_what_the_substring_finds(Backend::Sqlite).await;
}
