//! Scalars and enums shared by every domain module.

use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{Datelike, NaiveDate};

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // Exactly as written back: chrono also reads `2024-1-1`, `+002024-01-01` and year
            // 0, so two spellings named one date and the message's format was not the rule.
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .filter(|d| d.year() >= 1 && d.to_string() == *s)
                .map(Date)
                .ok_or_else(|| {
                    let shown: String = s.chars().take(40).collect();
                    InputValueError::custom(format!("{shown:?} is not a YYYY-MM-DD date"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        // `Display` is `%Y-%m-%d` without parsing a format string for each value.
        Value::String(self.0.to_string())
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortDirection {
    Asc,
    Desc,
}

impl From<SortDirection> for sea_orm::Order {
    fn from(d: SortDirection) -> Self {
        match d {
            SortDirection::Asc => sea_orm::Order::Asc,
            SortDirection::Desc => sea_orm::Order::Desc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_shows_as_year_month_day_at_any_year() {
        for (y, m, d) in [(2024, 3, 5), (999, 1, 2), (1, 12, 31), (9999, 12, 31)] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                Date(date).to_value(),
                Value::String(date.format("%Y-%m-%d").to_string())
            );
        }
    }
}
