//! `mirrorDiscrepancies` and `tradeFinanceMismatches` page by position through HTTP: their
//! documented order (ties included) is what small pages deliver, a cursor that is not theirs
//! is BAD_USER_INPUT, and a batch loaded between two pages repeats nothing already read.
//!
//! The data is written here so that the ties are known: one-sided mirror cells of equal
//! amounts (either sign), and reported money of equal amounts with and without a TIN.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dartts_tests::{Backend, Server, TestEnv, error_codes};
use serde_json::{Value, json};

const TRADE_HEADER: &str = "declaration_id,line_number,declaration_date,direction,hs_code,commodity_description,importer_name,importer_id,importer_address,exporter_name,manufacturer_name,manufacturer_id,country_of_origin,country_of_export,country_of_destination,reporting_country,partner_country,port,transport_mode,quantity,quantity_unit,net_weight_kg,declared_value,declared_currency,declared_value_usd";

const FINANCE_HEADER: &str = "report_id,report_type,transaction_date,amount_usd,cash_direction,filer_institution,subject_name,subject_tin,subject_dob,subject_address,subject_id_number,account_number,counterparty_name,counterparty_account";

/// A US record with no counterpart on the partner's side: a one-sided cell whose unexplained
/// amount is `value` (an import) or `-value` (an export).
fn trade(id: &str, direction: &str, hs6: &str, partner: &str, value: u32) -> String {
    let (origin, destination) = if direction == "IMPORT" {
        (partner, "US")
    } else {
        ("US", partner)
    };
    format!(
        "{id},1,2024-03-05,{direction},{hs6}0000,Goods,Mirror Test Importer,MT-1,,Mirror Test Exporter,,,{origin},{origin},{destination},US,{partner},,SEA,10,NO,20,{value},USD,"
    )
}

/// A report of `amount` for a subject with no declared trade: listed on the ratio, its excess
/// the whole amount.
fn report(id: &str, name: &str, tin: &str, amount: u32) -> String {
    format!("{id},SAR,2024-02-01,{amount},,Test Bank,{name},{tin},,,,,,")
}

fn write(env: &TestEnv, name: &str, header: &str, lines: &[String]) -> String {
    let path = env.dir.path().join(name);
    std::fs::write(&path, format!("{header}\n{}\n", lines.join("\n"))).expect("write csv");
    path.to_str().expect("utf-8").to_owned()
}

/// One trade and one financial batch, their files named after `tag`.
async fn load(env: &TestEnv, tag: &str, trades: &[String], reports: &[String]) {
    let trade_file = write(env, &format!("trade_{tag}.csv"), TRADE_HEADER, trades);
    env.load_ok(&["trade", &trade_file, "--provider", "US"])
        .await;
    let finance_file = write(env, &format!("finance_{tag}.csv"), FINANCE_HEADER, reports);
    env.load_ok(&["financial", &finance_file]).await;
}

/// The first batch: mirror cells at 5,000 and four at 1,000 (one an export, so −1,000), money
/// at 50,000 and four subjects at 20,000 (two with a TIN, two without).
async fn load_first(env: &TestEnv) {
    let trades = [
        trade("MT-A1", "IMPORT", "847130", "DE", 5_000),
        trade("MT-A2", "IMPORT", "610910", "DE", 1_000),
        trade("MT-A3", "IMPORT", "847130", "BR", 1_000),
        trade("MT-A4", "EXPORT", "847130", "DE", 1_000),
        trade("MT-A5", "IMPORT", "090111", "JP", 1_000),
    ];
    let reports = [
        report("PF-A1", "Zed Co", "", 20_000),
        report("PF-A2", "Abe Co", "", 20_000),
        report("PF-A3", "Tin Two Co", "22-0000002", 20_000),
        report("PF-A4", "Tin One Co", "11-0000001", 20_000),
        report("PF-A5", "Big Co", "99-0000009", 50_000),
    ];
    load(env, "a", &trades, &reports).await;
}

/// The second batch: one item ranked before the first batch's ties and others among and after
/// them.
async fn load_second(env: &TestEnv) {
    let trades = [
        trade("MT-B1", "IMPORT", "847130", "AU", 3_000),
        trade("MT-B2", "IMPORT", "847130", "ZA", 1_000),
        trade("MT-B3", "IMPORT", "010121", "DE", 1_000),
    ];
    let reports = [
        report("PF-B1", "Mid Co", "44-0000004", 30_000),
        report("PF-B2", "Aaa Co", "", 20_000),
        report("PF-B3", "Zzz Co", "", 20_000),
    ];
    load(env, "b", &trades, &reports).await;
}

const MIRROR: &str = "query($n: Int, $a: String) {
  mirrorDiscrepancies(first: $n, after: $a) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { exporterCountry importerCountry hsCode period unexplainedUsd } } } }";

const FINANCE: &str = "query($n: Int, $a: String) {
  tradeFinanceMismatches(first: $n, after: $a) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { subjectTin subjectNames reportedUsd declaredImportValueUsd } } } }";

const CONNECTIONS: [(&str, &str); 2] = [
    (MIRROR, "mirrorDiscrepancies"),
    (FINANCE, "tradeFinanceMismatches"),
];

const MIRROR_FIELD: &str = CONNECTIONS[0].1;
const FINANCE_FIELD: &str = CONNECTIONS[1].1;

fn nodes(data: &Value, field: &str) -> Vec<Value> {
    dartts_tests::nodes(&data[field])
}

/// A mirror pair as (exporter, importer, HS6, unexplained).
fn cell(node: &Value) -> (String, String, String, f64) {
    let text = |f: &str| node[f].as_str().expect(f).to_owned();
    (
        text("exporterCountry"),
        text("importerCountry"),
        text("hsCode"),
        node["unexplainedUsd"].as_f64().expect("unexplainedUsd"),
    )
}

/// A mismatch as (TIN, first name, reported).
fn entity(node: &Value) -> (Option<String>, String, f64) {
    (
        node["subjectTin"].as_str().map(str::to_owned),
        node["subjectNames"][0].as_str().expect("a name").to_owned(),
        node["reportedUsd"].as_f64().expect("reportedUsd"),
    )
}

/// Every page after `after`, `first` at a time, following each page's end cursor; each page
/// also reports the whole result's count.
async fn pages_after(
    server: &Server,
    token: &str,
    (query, field): (&str, &str),
    first: u64,
    mut after: Value,
    total: usize,
) -> Vec<Value> {
    let s = server.session(Some(token));
    let mut out = Vec::new();
    loop {
        let page = s.data(query, json!({ "n": first, "a": after })).await;
        assert_eq!(page[field]["totalCount"], total, "{field}: {page:#}");
        let got = nodes(&page, field);
        assert!(got.len() as u64 <= first);
        out.extend(got);
        // A page that does not move past its cursor would page forever.
        assert!(out.len() <= total, "{field}: more rows paged than exist");
        if page[field]["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = page[field]["pageInfo"]["endCursor"].clone();
    }
}

async fn analyst(env: &TestEnv) -> (Server, String) {
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    (env.serve().await, hsi)
}

/// The served order is the documented one, ties included — mirror pairs by |unexplained|
/// then exporter, importer, HS6; mismatches by excess then TIN (none last) then name — and
/// pages of 1, 2 or 3 deliver exactly the one big page.
#[tokio::test]
async fn small_pages_are_the_one_big_page_in_the_documented_order() {
    let env = TestEnv::new(Backend::Postgres).await;
    load_first(&env).await;
    load_second(&env).await;
    let (server, hsi) = analyst(&env).await;
    let s = server.session(Some(&hsi));

    let mirror = nodes(&s.data(MIRROR, json!({ "n": 1000 })).await, MIRROR_FIELD);
    let cells: Vec<_> = mirror.iter().map(cell).collect();
    let c = |e: &str, i: &str, hs: &str, u: f64| (e.to_owned(), i.to_owned(), hs.to_owned(), u);
    assert_eq!(
        cells,
        [
            c("DE", "US", "847130", 5_000.0),
            c("AU", "US", "847130", 3_000.0),
            c("BR", "US", "847130", 1_000.0),
            c("DE", "US", "010121", 1_000.0),
            c("DE", "US", "610910", 1_000.0),
            c("JP", "US", "090111", 1_000.0),
            c("US", "DE", "847130", -1_000.0),
            c("ZA", "US", "847130", 1_000.0),
        ]
    );
    assert!(mirror.iter().all(|p| p["period"] == "2024"));

    let finance = nodes(&s.data(FINANCE, json!({ "n": 1000 })).await, FINANCE_FIELD);
    let entities: Vec<_> = finance.iter().map(entity).collect();
    let e =
        |tin: Option<&str>, name: &str, usd: f64| (tin.map(str::to_owned), name.to_owned(), usd);
    assert_eq!(
        entities,
        [
            e(Some("99-0000009"), "Big Co", 50_000.0),
            e(Some("44-0000004"), "Mid Co", 30_000.0),
            e(Some("11-0000001"), "Tin One Co", 20_000.0),
            e(Some("22-0000002"), "Tin Two Co", 20_000.0),
            e(None, "Aaa Co", 20_000.0),
            e(None, "Abe Co", 20_000.0),
            e(None, "Zed Co", 20_000.0),
            e(None, "Zzz Co", 20_000.0),
        ]
    );

    for (connection, whole) in CONNECTIONS.into_iter().zip([mirror, finance]) {
        for first in [1, 2, 3] {
            let paged =
                pages_after(&server, &hsi, connection, first, Value::Null, whole.len()).await;
            assert_eq!(paged, whole, "{}, {first} at a time", connection.1);
        }
    }
}

/// A cursor of the other computed connection, of `tradeRecords`, an old offset cursor, text
/// that is no cursor, and one of this connection's altered or cut short are refused, never
/// read as a first page. A cursor is sealed: it does not show the position it holds.
#[tokio::test]
async fn a_cursor_not_from_the_connection_is_bad_user_input() {
    let env = TestEnv::new(Backend::Postgres).await;
    load_first(&env).await;
    let (server, hsi) = analyst(&env).await;
    let s = server.session(Some(&hsi));
    let trade_cursor = s
        .data("{ tradeRecords(first: 1) { edges { cursor } } }", json!({}))
        .await["tradeRecords"]["edges"][0]["cursor"]
        .clone();
    let end_cursor = |page: &Value, field: &str| {
        page[field]["pageInfo"]["endCursor"]
            .as_str()
            .expect("a cursor")
            .to_owned()
    };
    let mut own = Vec::new();
    for (query, field) in CONNECTIONS {
        own.push(end_cursor(&s.data(query, json!({ "n": 1 })).await, field));
    }
    for (i, (query, field)) in CONNECTIONS.into_iter().enumerate() {
        // This connection's own cursor works: the harness would fail the request otherwise.
        s.data(query, json!({ "n": 1, "a": own[i] })).await;
        let bytes = URL_SAFE_NO_PAD.decode(&own[i]).expect("base64");
        for plain in [field.as_bytes(), b"\"k\":["] {
            assert!(!bytes.windows(plain.len()).any(|w| w == plain), "{field}");
        }
        let mut altered = bytes.clone();
        altered[bytes.len() / 2] ^= 1;
        let recode = |b: &[u8]| json!(URL_SAFE_NO_PAD.encode(b));
        for bad in [
            json!(own[1 - i]),
            trade_cursor.clone(),
            json!("b2Zmc2V0OjE"),
            json!("nope"),
            recode(&altered),
            recode(&bytes[..bytes.len() - 1]),
        ] {
            let refused = s.gql(query, json!({ "n": 2, "a": bad })).await;
            assert_eq!(
                error_codes(&refused),
                ["BAD_USER_INPUT"],
                "{field} after {bad}: {refused:#}"
            );
        }
    }
}

/// Two pages read, then a batch arrives that ranks items before, among and after them: the
/// pages after the last one read continue from its position, so nothing read repeats and the
/// new items after it all come.
#[tokio::test]
async fn a_batch_loaded_between_pages_repeats_nothing() {
    let env = TestEnv::new(Backend::Postgres).await;
    load_first(&env).await;
    let (server, hsi) = analyst(&env).await;
    let s = server.session(Some(&hsi));
    let mut read = Vec::new();
    for (query, field) in CONNECTIONS {
        let first = s.data(query, json!({ "n": 2 })).await;
        let second = s
            .data(
                query,
                json!({ "n": 1, "a": first[field]["pageInfo"]["endCursor"] }),
            )
            .await;
        assert_eq!(second[field]["pageInfo"]["hasNextPage"], true, "{second:#}");
        let mut seen = nodes(&first, field);
        seen.extend(nodes(&second, field));
        read.push((seen, second[field]["pageInfo"]["endCursor"].clone()));
    }
    load_second(&env).await;
    for (connection, (seen, cursor)) in CONNECTIONS.into_iter().zip(read) {
        let field = connection.1;
        let now = nodes(&s.data(connection.0, json!({ "n": 1000 })).await, field);
        let rest = pages_after(&server, &hsi, connection, 2, cursor, now.len()).await;
        let last = now
            .iter()
            .position(|n| n == seen.last().expect("read"))
            .expect("the last item read is still there");
        assert_eq!(rest, now[last + 1..], "{field}");
        assert!(rest.iter().all(|n| !seen.contains(n)), "{field}: {rest:#?}");
        // Some of the new batch ranks before what was read: an offset would have repeated it.
        assert!(now[..=last].len() > seen.len(), "{field}: {now:#?}");
    }
}
