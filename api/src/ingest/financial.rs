//! Canonical FinCEN BSA CSV (CTR, CMIR, SAR) → `financial_transactions` rows.

use super::input::{HeaderIndex, Record};
use super::sink::Cell;
use super::values;

/// The canonical file's columns, written once for the two lists below.
macro_rules! financial_columns {
    ($($first:literal),*) => {
        &[
            $($first,)*
            "report_id", "report_type", "transaction_date", "amount_usd", "cash_direction",
            "filer_institution", "subject_name", "subject_tin", "subject_dob", "subject_address",
            "subject_id_number", "account_number", "counterparty_name", "counterparty_account",
        ]
    };
}

pub const COLUMNS: &[&str] = financial_columns!();

pub const REQUIRED: &[&str] = &[
    "report_id",
    "report_type",
    "transaction_date",
    "amount_usd",
    "subject_name",
];

/// Table columns: `batch_id`, the line the row was read from, then `COLUMNS`.
pub const TABLE_COLUMNS: &[&str] = financial_columns!("batch_id", "source_line");

const DATE: &str = "%Y-%m-%d";

pub fn map(index: &HeaderIndex, record: &Record, batch_id: i64) -> Result<Vec<Cell>, String> {
    index.check_width(record)?;
    let get = |name: &str| index.get(record, name);
    let text = |name: &str| Cell::from(values::optional(get(name)));
    let report_type = values::one_of(get("report_type"), "report_type", &["CTR", "CMIR", "SAR"])?;
    let cash_direction = match values::optional(get("cash_direction")) {
        None => Cell::Null,
        Some(v) => Cell::Text(values::one_of(&v, "cash_direction", &["IN", "OUT"])?.to_owned()),
    };
    Ok(vec![
        Cell::Int(batch_id),
        Cell::from(record.line),
        Cell::Text(values::required(get("report_id"), "report_id")?),
        Cell::Text(report_type.to_owned()),
        Cell::Date(values::date(
            get("transaction_date"),
            "transaction_date",
            DATE,
            values::Years::default(),
        )?),
        Cell::Float(values::amount(
            get("amount_usd"),
            "amount_usd",
            values::MAX_USD,
        )?),
        cash_direction,
        text("filer_institution"),
        Cell::Text(values::required(get("subject_name"), "subject_name")?),
        text("subject_tin"),
        values::optional_birth_date(get("subject_dob"), "subject_dob", DATE)?.into(),
        text("subject_address"),
        text("subject_id_number"),
        text("account_number"),
        text("counterparty_name"),
        text("counterparty_account"),
    ])
}
