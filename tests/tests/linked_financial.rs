//! `TradeRecord.linkedFinancialTransactions` and the entity view's `financialTransactions`:
//! the reports whose subject is the record's importer, by TIN when the record has an importer
//! id, else by exact name; newest first (equal dates in load order); at most 200 per importer.
//! A page's records are linked together (one statement per kind of subject), so the test asks
//! for a page holding every kind at once, on both backends, and compares each record's list
//! with the one computed here from the file.

use dartts_tests::{BACKENDS, TestEnv};
use serde_json::{Value, json};

const HEADER: &str = "report_id,report_type,transaction_date,amount_usd,cash_direction,\
    filer_institution,subject_name,subject_tin,subject_dob,subject_address,subject_id_number,\
    account_number,counterparty_name,counterparty_account\n";

/// One report as the file has it: (report id, date, subject name, subject TIN).
type Report = (String, String, &'static str, &'static str);

fn reports() -> Vec<Report> {
    let mut reports = Vec::new();
    // 230 for Acme by TIN, over the limit, three to a date, so that ties follow load order;
    // dates not in file order.
    for i in 0..230u32 {
        let day = (i * 7) % 77;
        let date = format!("2023-{:02}-{:02}", 1 + day / 28, 1 + day % 28);
        reports.push((
            format!("ACME-{i:03}"),
            date,
            "Acme Imports LLC",
            "12-3456789",
        ));
    }
    // John Q Courier without a TIN: found by name for the record without an importer id.
    for (i, date) in ["2024-03-01", "2024-01-15", "2024-03-01"]
        .iter()
        .enumerate()
    {
        reports.push((format!("JQC-{i}"), (*date).to_owned(), "John Q Courier", ""));
    }
    // The same name under a TIN: the record with that importer id finds it alone, a record
    // without an id finds it with the other three by name.
    reports.push((
        "JQC-TIN".to_owned(),
        "2024-02-02".to_owned(),
        "John Q Courier",
        "99-0000000",
    ));
    reports
}

/// The reports a record links to, computed from the file: by TIN, else by exact name.
fn expected(reports: &[Report], tin: Option<&str>, name: Option<&str>) -> Vec<String> {
    let mut linked: Vec<(usize, &Report)> = reports
        .iter()
        .enumerate()
        .filter(|(_, (_, _, subject, subject_tin))| match (tin, name) {
            (Some(tin), _) => *subject_tin == tin,
            (None, Some(name)) => *subject == name,
            (None, None) => false,
        })
        .collect();
    linked.sort_by(|(a, ra), (b, rb)| rb.1.cmp(&ra.1).then(a.cmp(b)));
    linked
        .into_iter()
        .take(200)
        .map(|(_, r)| r.0.clone())
        .collect()
}

#[tokio::test]
async fn a_pages_records_link_their_importers_reports_newest_first() {
    let reports = reports();
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        env.load_trade_fixture().await;
        env.load_trade_without_importer_ids().await;
        let financial = env.dir.path().join("reports.csv");
        let mut csv = HEADER.to_owned();
        for (id, date, name, tin) in &reports {
            csv.push_str(&format!(
                "{id},CTR,{date},10000,IN,First Newark Bank,{name},{tin},,,,,,\n"
            ));
        }
        std::fs::write(&financial, csv).expect("write");
        env.load_ok(&["financial", financial.to_str().expect("path")])
            .await;
        let server = env.serve_as_analyst().await;

        let data = server
            .data(
                "{ tradeRecords(first: 50) { edges { node { id declarationId importerId \
                 importerName linkedFinancialTransactions { reportId } } } } }",
                json!({}),
            )
            .await;
        let nodes = dartts_tests::nodes(&data["tradeRecords"]);
        assert!(nodes.len() > 10, "{backend:?}: {data:#}");
        let ids = |v: &Value| -> Vec<String> {
            v.as_array()
                .expect("a list")
                .iter()
                .map(|t| t["reportId"].as_str().expect("reportId").to_owned())
                .collect()
        };
        let mut kinds = [0; 4];
        for node in &nodes {
            let (tin, name) = (node["importerId"].as_str(), node["importerName"].as_str());
            let want = expected(&reports, tin, name);
            kinds[match (tin, want.len()) {
                (_, 0) => 3,
                (Some("12-3456789"), 200) => 0,
                (Some(_), _) => 1,
                (None, _) => 2,
            }] += 1;
            assert_eq!(
                ids(&node["linkedFinancialTransactions"]),
                want,
                "{backend:?}: {}",
                node["declarationId"]
            );
        }
        // The page held every kind: over the limit by TIN, one by TIN under a name others
        // share, by name without an id, and none (no reports, or no importer at all).
        assert!(kinds.iter().all(|&n| n > 0), "{backend:?}: {kinds:?}");

        // The same lists for a record looked up alone and for the importer's entity view.
        let acme = nodes
            .iter()
            .find(|n| n["importerId"] == "12-3456789")
            .expect("an Acme record");
        let alone = server
            .data(
                "query($id: ID!) { node(id: $id) { ... on TradeRecord { \
                 linkedFinancialTransactions { reportId } } } }",
                json!({ "id": acme["id"] }),
            )
            .await;
        assert_eq!(
            alone["node"]["linkedFinancialTransactions"], acme["linkedFinancialTransactions"],
            "{backend:?}"
        );
        for (key, tin, name) in [
            (
                json!({ "importerId": "12-3456789" }),
                Some("12-3456789"),
                None,
            ),
            (
                json!({ "name": "John Q Courier" }),
                None,
                Some("John Q Courier"),
            ),
        ] {
            let view = server
                .data(
                    "query($importerId: String, $name: String) { \
                     entity(importerId: $importerId, name: $name) { \
                     financialTransactions { reportId } } }",
                    key.clone(),
                )
                .await;
            assert_eq!(
                ids(&view["entity"]["financialTransactions"]),
                expected(&reports, tin, name),
                "{backend:?}: {key}"
            );
        }
    }
}
