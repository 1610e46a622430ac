//! Red flags and the demo world through the binary: `dartts demo-data` writes a loadable world,
//! `redFlags` finds its injected transshipments and Benford importers (and the quota counts
//! each flag), and `dartts eval anomalies` scores the loaded database against truth.csv. Seed 2
//! is a world with a Benford importer among its 30 (each is one with probability 2 %).

use std::collections::{BTreeSet, HashMap};

use dartts_tests::{Backend, TestEnv};
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
    let flagged: BTreeSet<String> = flags["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            e["node"]["record"]["declarationId"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
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

    let bad = session
        .gql("{ redFlags(hubs: [\"Dubai\"]) { totalCount } }", json!({}))
        .await;
    assert_eq!(dartts_tests::error_codes(&bad), ["BAD_USER_INPUT"]);

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
