//! Canonical TECS subject-record extract → `subject_records` rows.
//!
//! Two rules from DESIGN §3 are enforced here, at the door: only records created by ICE or CBP
//! are accepted, and victim records are rejected (counted and reported, never stored) — a
//! victim's details must not become searchable intelligence.

use super::input::{HeaderIndex, Record};
use super::sink::Cell;
use super::values;

/// The stored columns, written once for the two lists below.
macro_rules! subject_columns {
    ($($first:literal),* ; $($last:literal),*) => {
        &[
            $($first,)*
            "record_id", "kind", "creating_agency", "case_status", "created_date", "name",
            "business_name", "address", "date_of_birth", "ssn_tin", "passport_number",
            "passport_country", "bank_accounts", "phones", "drivers_license",
            "drivers_license_state", "a_number", "plate", "vessel_name", "aircraft_tail_number",
            "description",
            $($last,)*
        ]
    };
}

/// The file's columns: the stored ones, then `involvement`, which is checked, not stored.
pub const COLUMNS: &[&str] = subject_columns!(; "involvement");

pub const REQUIRED: &[&str] = &[
    "record_id",
    "kind",
    "creating_agency",
    "involvement",
    "case_status",
];

/// Table columns: `batch_id`, the line the row was read from, then the stored columns of the
/// file.
pub const TABLE_COLUMNS: &[&str] = subject_columns!("batch_id", "source_line";);

pub const KINDS: &[&str] = &[
    "PERSON",
    "VEHICLE",
    "VESSEL",
    "AIRCRAFT",
    "THING",
    "BUSINESS",
    "ORGANIZATION",
];

/// Why a subject row was refused; victim refusals are reported under their own reason so an
/// operator can see how many there were without any of their content being kept.
pub const VICTIM_REASON: &str = "victim record: not accepted (DESIGN §3)";

const DATE: &str = "%Y-%m-%d";

pub fn map(index: &HeaderIndex, record: &Record, batch_id: i64) -> Result<Vec<Cell>, String> {
    index.check_width(record)?;
    let get = |name: &str| index.get(record, name);
    let text = |name: &str| Cell::from(values::optional(get(name)));
    let involvement = values::one_of(
        get("involvement"),
        "involvement",
        &["SUBJECT", "ASSOCIATE", "WITNESS", "VICTIM"],
    )?;
    if involvement == "VICTIM" {
        return Err(VICTIM_REASON.to_owned());
    }
    let agency = values::one_of(get("creating_agency"), "creating_agency", &["ICE", "CBP"])
        .map_err(|_| {
            format!(
                "creating_agency {:?}: only ICE and CBP records are accepted",
                get("creating_agency").trim()
            )
        })?;
    let kind = values::one_of(get("kind"), "kind", KINDS)?;
    let status = values::one_of(get("case_status"), "case_status", &["OPEN", "CLOSED"])?;
    let passport_country = values::optional_country(get("passport_country"), "passport_country")?;
    Ok(vec![
        Cell::Int(batch_id),
        Cell::from(record.line),
        Cell::Text(values::required(get("record_id"), "record_id")?),
        Cell::Text(kind.to_owned()),
        Cell::Text(agency.to_owned()),
        Cell::Text(status.to_owned()),
        values::optional_date(
            get("created_date"),
            "created_date",
            DATE,
            values::Years::default(),
        )?
        .into(),
        text("name"),
        text("business_name"),
        text("address"),
        values::optional_birth_date(get("date_of_birth"), "date_of_birth", DATE)?.into(),
        text("ssn_tin"),
        text("passport_number"),
        passport_country.into(),
        text("bank_accounts"),
        text("phones"),
        text("drivers_license"),
        text("drivers_license_state"),
        text("a_number"),
        text("plate"),
        text("vessel_name"),
        text("aircraft_tail_number"),
        text("description"),
    ])
}
