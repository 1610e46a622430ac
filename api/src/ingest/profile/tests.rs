//! Profile parsing, binding and mapping.
use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn built_in_profiles_are_valid() {
    for (name, _) in BUILT_IN {
        ProfileFile::resolve(name).unwrap();
    }
}

#[test]
fn kcs_row_maps_with_dated_krw_rate() {
    let kcs = ProfileFile::resolve("kcs").unwrap();
    let headers = strings(&[
        "Declaration ID",
        "Date",
        "Office ID",
        "Process Type",
        "Import Type",
        "Import Use",
        "Payment Type",
        "Mode of Transport",
        "Declarant ID",
        "Importer ID",
        "Seller ID",
        "Courier ID",
        "HS6 Code",
        "Country of Departure",
        "Country of Origin",
        "Tax Rate",
        "Tax Type",
        "Country of Origin Indicator",
        "Net Mass",
        "Item Price",
        "Fraud",
        "Critical Fraud",
    ]);
    let bound = kcs.bind(&headers).unwrap();
    let row = strings(&[
        "97061800",
        "2020-01-01",
        "30",
        "B",
        "11",
        "21",
        "11",
        "10",
        "ZZR1LT6",
        "QLRUBN9",
        "0VKY2BR",
        "",
        "440890",
        "BE",
        "DE",
        "0.0",
        "FEU1",
        "G",
        "108.0",
        "372254.4",
        "0",
        "0",
    ]);
    let cells = bound.map(&row, 7, 2, "KR").unwrap();
    let col = |name: &str| &cells[TRADE_COLUMNS.iter().position(|c| *c == name).unwrap()];
    assert_eq!(col("direction"), &Cell::Text("IMPORT".into()));
    assert_eq!(col("transport_mode"), &Cell::Text("SEA".into()));
    assert_eq!(col("partner_country"), &Cell::Text("BE".into()));
    assert_eq!(col("reporting_country"), &Cell::Text("KR".into()));
    assert_eq!(col("declared_currency"), &Cell::Text("KRW".into()));
    let Cell::Float(usd) = col("declared_value_usd") else {
        panic!()
    };
    assert!((usd - 372254.4 / 1164.3).abs() < 1e-6, "{usd}");

    let mut unknown_mode = row.clone();
    unknown_mode[7] = "77".into();
    assert!(
        bound
            .map(&unknown_mode, 7, 2, "KR")
            .unwrap_err()
            .contains("transport_mode")
    );
    let mut late = row;
    late[1] = "2025-01-01".into();
    assert!(bound.map(&late, 7, 2, "KR").unwrap_err().contains("rate"));
}

#[test]
fn invalid_profiles_are_refused_with_reason() {
    let base = "name = \"x\"\n[currency]\ncode = \"USD\"\n";
    let err = ProfileFile::parse("x", base).unwrap_err().to_string();
    assert!(err.contains("DeclarationId"), "{err}");
    let unknown_field =
        "name = \"x\"\n[columns]\nfavourite_colour = \"c\"\n[currency]\ncode = \"USD\"\n";
    assert!(ProfileFile::parse("x", unknown_field).is_err());
}

#[test]
fn canonical_profile_reads_exactly_the_canonical_header() {
    let canonical = ProfileFile::resolve("canonical").unwrap();
    let headers: Vec<String> = CANONICAL_HEADER.iter().map(|h| (*h).to_owned()).collect();
    let bound = canonical.bind(&headers).unwrap();
    let mut mapped: Vec<&str> = canonical.columns.values().map(String::as_str).collect();
    mapped.extend(canonical.currency.column.as_deref());
    mapped.extend(canonical.currency.usd_column.as_deref());
    mapped.sort_unstable();
    let mut expected = CANONICAL_HEADER.to_vec();
    expected.sort_unstable();
    assert_eq!(mapped, expected);
    assert_eq!(bound.width, CANONICAL_HEADER.len());
    assert_eq!(bound.unread(&headers), Vec::<String>::new());
}

#[test]
fn header_names_bind_in_any_ascii_case_and_unread_columns_are_named() {
    let canonical = ProfileFile::resolve("canonical").unwrap();
    let headers = strings(&[
        "DECLARATION_ID",
        "Declaration_Date",
        "direction",
        "hs_code",
        "exporter_nam",
        "declared_value",
        "declared_currency",
        "",
        "Declared_Value_USD",
    ]);
    let bound = canonical.bind(&headers).unwrap();
    // The misspelt optional column is not read, and said so; the unnamed one is no column.
    assert_eq!(bound.unread(&headers), strings(&["exporter_nam"]));
    let row = strings(&[
        "D-1",
        "2024-05-01",
        "IMPORT",
        "847130",
        "Acme",
        "100",
        "EUR",
        "",
        "110",
    ]);
    let cells = bound.map(&row, 1, 2, "US").unwrap();
    let col = |name: &str| &cells[TRADE_COLUMNS.iter().position(|c| *c == name).unwrap()];
    assert_eq!(col("declaration_id"), &Cell::Text("D-1".into()));
    assert_eq!(col("exporter_name"), &Cell::Null);
    assert_eq!(col("declared_value_usd"), &Cell::Float(110.0));
}

#[test]
fn a_header_of_one_cell_with_another_separator_says_so() {
    let canonical = ProfileFile::resolve("canonical").unwrap();
    let err = canonical
        .bind(&strings(&["declaration_id;declaration_date;hs_code"]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.ends_with(
            "(the header is a single column: the file seems separated by ';', not by commas)"
        ),
        "{err}"
    );
    let err = canonical
        .bind(&strings(&["declaration_id"]))
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains("separated"), "{err}");
}

#[test]
fn missing_columns_are_named() {
    let canonical = ProfileFile::resolve("canonical").unwrap();
    let err = canonical
        .bind(&strings(&["declaration_id"]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("hs_code"), "{err}");
    assert!(!err.contains("exporter_name"), "{err}");
}

#[test]
fn optional_columns_may_be_absent_from_the_header() {
    let canonical = ProfileFile::resolve("canonical").unwrap();
    let required = [
        "declaration_id",
        "declaration_date",
        "direction",
        "hs_code",
        "declared_value",
        "declared_currency",
    ];
    let bound = canonical.bind(&strings(&required)).unwrap();
    let row = bound
        .map(
            &strings(&["D-1", "2024-01-02", "IMPORT", "847130", "10.5", "USD"]),
            7,
            2,
            "US",
        )
        .unwrap();
    assert_eq!(row.len(), TRADE_COLUMNS.len());
    let cell = |column: &str| &row[TRADE_COLUMNS.iter().position(|c| *c == column).unwrap()];
    assert_eq!(*cell("source_line"), Cell::Int(2));
    assert_eq!(*cell("exporter_name"), Cell::Null);
    assert_eq!(*cell("country_of_destination"), Cell::Null);
    assert_eq!(*cell("declared_value_usd"), Cell::Float(10.5));
    assert_eq!(*cell("line_number"), Cell::Int(1));
    // The currency column stays required: without it no row has a currency.
    assert!(canonical.bind(&strings(&required[..5])).is_err());
}
