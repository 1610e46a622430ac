//! The per-record facts written with each trade row at load time (`peer_year`,
//! `log_unit_price`, `log_value_per_kg`): computed in Rust from the mapped row, so both
//! database engines store the same numbers and neither needs `ln` in SQL.

use std::sync::LazyLock;

use chrono::Datelike;

use super::peers::log_ratio;
use crate::ingest::profile::TRADE_COLUMNS;
use crate::ingest::sink::Cell;

/// The extra `trade_records` columns, in the order `append` writes them.
pub const FACT_COLUMNS: &[&str] = &["peer_year", "log_unit_price", "log_value_per_kg"];

/// `TRADE_COLUMNS` followed by `FACT_COLUMNS`: the columns a trade load writes.
pub static TRADE_COLUMNS_WITH_FACTS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| TRADE_COLUMNS.iter().chain(FACT_COLUMNS).copied().collect());

fn position(name: &str) -> usize {
    TRADE_COLUMNS
        .iter()
        .position(|c| *c == name)
        .unwrap_or(usize::MAX)
}

static AT: LazyLock<[usize; 4]> = LazyLock::new(|| {
    [
        position("declaration_date"),
        position("quantity"),
        position("net_weight_kg"),
        position("declared_value_usd"),
    ]
});

fn float(cell: Option<&Cell>) -> Option<f64> {
    match cell {
        Some(Cell::Float(v)) => Some(*v),
        Some(Cell::Int(v)) => Some(*v as f64),
        _ => None,
    }
}

/// Appends the facts to a mapped `TRADE_COLUMNS` row.
pub fn append(row: &mut Vec<Cell>) {
    let [date, quantity, weight, value] = *AT;
    let year = match row.get(date) {
        Some(Cell::Date(d)) => Cell::Int(i64::from(d.year())),
        _ => Cell::Null,
    };
    let value = float(row.get(value));
    let per_unit = value.and_then(|v| log_ratio(v, float(row.get(quantity))));
    let per_kg = value.and_then(|v| log_ratio(v, float(row.get(weight))));
    row.extend([year, Cell::from(per_unit), Cell::from(per_kg)]);
}

/// The HS code of a mapped row (the peer groups a load touches are keyed by it).
pub fn hs_code(row: &[Cell]) -> Option<&str> {
    match row.get(position("hs_code")) {
        Some(Cell::Text(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_follow_the_mapped_row() {
        let mut row: Vec<Cell> = TRADE_COLUMNS.iter().map(|_| Cell::Null).collect();
        let [date, quantity, _, value] = *AT;
        assert!(AT.iter().all(|i| *i < TRADE_COLUMNS.len()));
        row[date] = Cell::Date(chrono::NaiveDate::from_ymd_opt(2023, 5, 1).unwrap());
        row[quantity] = Cell::Float(4.0);
        row[value] = Cell::Float(100.0);
        row[position("hs_code")] = Cell::Text("847130".into());
        append(&mut row);
        assert_eq!(row.len(), TRADE_COLUMNS_WITH_FACTS.len());
        let n = TRADE_COLUMNS.len();
        assert_eq!(row[n], Cell::Int(2023));
        assert_eq!(row[n + 1], Cell::Float(25f64.ln()));
        assert_eq!(row[n + 2], Cell::Null);
        assert_eq!(hs_code(&row), Some("847130"));
    }
}
