//! Parsers for the values every data set shares. Each returns a reason a person can act on;
//! the reason ends up beside the line number in the batch's rejection list.

use chrono::{Datelike, NaiveDate, Utc};

/// Empty (after trimming) means absent.
pub fn optional(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

pub fn required(raw: &str, column: &str) -> Result<String, String> {
    optional(raw).ok_or_else(|| format!("{column} is empty"))
}

/// The years a date may fall in. Outside them a date is far more likely a misread (`24-01-05`
/// read as year 24) than a record: 1900 to next year unless a profile says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Years {
    pub first: i32,
    pub last: i32,
}

impl Default for Years {
    fn default() -> Self {
        Years {
            first: 1900,
            last: Utc::now().year() + 1,
        }
    }
}

/// A date in `format`; a `%Y` year must be written with four digits and fall within `years`.
pub fn date(raw: &str, column: &str, format: &str, years: Years) -> Result<NaiveDate, String> {
    let text = raw.trim();
    let date = NaiveDate::parse_from_str(text, format)
        .map_err(|_| format!("{column} {text:?} is not a date in format {format}"))?;
    // chrono's %Y takes any number of digits: `24` would be the year 24.
    if format.contains("%Y") && !text.contains(&format!("{:04}", date.year())) {
        return Err(format!("{column} {text:?} does not have a four-digit year"));
    }
    if !(years.first..=years.last).contains(&date.year()) {
        return Err(format!(
            "{column} {text:?} is outside the years {} to {}",
            years.first, years.last
        ));
    }
    Ok(date)
}

pub fn optional_date(
    raw: &str,
    column: &str,
    format: &str,
    years: Years,
) -> Result<Option<NaiveDate>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        date(raw, column, format, years).map(Some)
    }
}

/// A date of birth, if given: a date within `Years::default()` that has already come. A later
/// one is a typo (a year's digits swapped), not a person; a day of slack past today (UTC) is for
/// the zones ahead of it.
pub fn optional_birth_date(
    raw: &str,
    column: &str,
    format: &str,
) -> Result<Option<NaiveDate>, String> {
    let Some(date) = optional_date(raw, column, format, Years::default())? else {
        return Ok(None);
    };
    if date > Utc::now().date_naive() + chrono::Days::new(1) {
        return Err(format!("{column} {:?} is in the future", raw.trim()));
    }
    Ok(Some(date))
}

/// The largest value in US dollars one row may carry (a declaration line's value, a financial
/// report's amount): a quadrillion dollars, about ten times the world's yearly product, so far
/// above any real row that only a corrupt or hostile file reaches it. Bounded so that any sum
/// the analyses make stays finite on both backends (a billion such rows sum to 1e24): an
/// unbounded `1.7e308` passes as finite, then overflows PostgreSQL's sums (an error naming no
/// row) and turns SQLite's into `null`.
pub const MAX_USD: f64 = 1e15;

/// The largest declared value in the file's own currency: the dollar bound at a thousand
/// currency units to the dollar (the weakest currencies trade at up to about a million, where
/// this still allows a trillion-dollar line). The converted value is held to `MAX_USD`.
pub const MAX_LOCAL_AMOUNT: f64 = 1e18;

/// The largest quantity or net weight in kilograms one row may carry: a quadrillion items, or a
/// trillion tonnes (about a hundred times the world's yearly seaborne trade).
pub const MAX_QUANTITY: f64 = 1e15;

/// A finite, non-negative amount no larger than `max` (one of the bounds above). Thousands
/// separators are not accepted: in a partner file `1,234` and `1.234` are ambiguous, so a
/// profile must say what its numbers look like.
pub fn amount(raw: &str, column: &str, max: f64) -> Result<f64, String> {
    let text = raw.trim();
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{column} {text:?} is not a number"))?;
    if !value.is_finite() {
        return Err(format!("{column} {text:?} is not a finite number"));
    }
    if value < 0.0 {
        return Err(format!("{column} {text:?} is negative"));
    }
    if value > max {
        return Err(format!(
            "{column} {text:?} is more than {max:e}, the most a row may hold"
        ));
    }
    Ok(value)
}

pub fn optional_amount(raw: &str, column: &str, max: f64) -> Result<Option<f64>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        amount(raw, column, max).map(Some)
    }
}

/// A declared value converted to dollars, held to `MAX_USD`: a tiny rate turns a bounded value
/// into a huge or infinite one.
pub fn converted_usd(usd: f64, value: f64, currency: &str) -> Result<f64, String> {
    if usd.is_finite() && usd <= MAX_USD {
        Ok(usd)
    } else if currency == "USD" {
        Err(format!(
            "declared_value {value:e} USD is more than {MAX_USD:e}, the most a row may hold"
        ))
    } else {
        Err(format!(
            "declared_value {value:e} {currency} is {usd:e} USD, more than {MAX_USD:e}, the most \
             a row may hold"
        ))
    }
}

/// An ISO 3166-1 alpha-2 code (`crate::country`), upper-cased.
pub fn country(raw: &str, column: &str) -> Result<String, String> {
    crate::country::alpha2(raw).map_err(|e| format!("{column} {e}"))
}

pub fn optional_country(raw: &str, column: &str) -> Result<Option<String>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        country(raw, column).map(Some)
    }
}

/// The most digits an HS / HTS code has (a national 10-digit line).
pub const HS_MAX_DIGITS: usize = 10;

/// An HS / HTS code of 2 to 10 digits; dots and spaces used for readability are removed.
pub fn hs_code(raw: &str) -> Result<String, String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
    if (2..=HS_MAX_DIGITS).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(format!("hs_code {:?} is not 2 to 10 digits", raw.trim()))
    }
}

/// One of a closed set of codes, compared case-insensitively, returned in canonical case.
pub fn one_of(raw: &str, column: &str, allowed: &[&'static str]) -> Result<&'static str, String> {
    let text = raw.trim();
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(text))
        .copied()
        .ok_or_else(|| format!("{column} {text:?} is not one of {}", allowed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hs_codes_accept_dotted_forms() {
        assert_eq!(hs_code("8471.30").unwrap(), "847130");
        assert!(hs_code("8").is_err());
        assert!(hs_code("84713A").is_err());
        assert!(hs_code("12345678901").is_err());
    }

    #[test]
    fn amounts_reject_nan_negative_text_and_beyond_the_bound() {
        assert_eq!(amount(" 12.5 ", "v", MAX_USD).unwrap(), 12.5);
        assert_eq!(amount("1e15", "v", MAX_USD).unwrap(), MAX_USD);
        for bad in [
            "NaN",
            "inf",
            "-1",
            "1,000",
            "abc",
            "",
            "1.7e308",
            "1000000000000001",
        ] {
            assert!(amount(bad, "v", MAX_USD).is_err(), "{bad}");
        }
        assert!(
            amount("1e16", "declared_value_usd", MAX_USD)
                .unwrap_err()
                .starts_with("declared_value_usd \"1e16\" is more than 1e15")
        );
        assert!(amount("1e18", "v", MAX_LOCAL_AMOUNT).is_ok());
    }

    #[test]
    fn converted_values_stay_finite_and_bounded() {
        assert_eq!(converted_usd(5.0, 6_500.0, "KRW").unwrap(), 5.0);
        assert!(converted_usd(f64::INFINITY, 1.0, "KRW").is_err());
        assert!(
            converted_usd(1e16, 1e16, "USD")
                .unwrap_err()
                .contains("1e16 USD is more than 1e15")
        );
        assert!(converted_usd(1e18 / 1e-320, 1e18, "KRW").is_err());
    }

    #[test]
    fn countries_are_two_letters() {
        assert_eq!(country("kr", "c").unwrap(), "KR");
        assert!(country("KOR", "c").is_err());
        assert!(country("K1", "c").is_err());
    }

    #[test]
    fn a_birth_date_has_already_come() {
        let today = Utc::now().date_naive();
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        assert_eq!(optional_birth_date("", "dob", "%Y-%m-%d"), Ok(None));
        assert_eq!(
            optional_birth_date(&day(today), "dob", "%Y-%m-%d"),
            Ok(Some(today))
        );
        let later = today + chrono::Days::new(3);
        assert_eq!(
            optional_birth_date(&day(later), "dob", "%Y-%m-%d"),
            Err(format!("dob {:?} is in the future", day(later)))
        );
        assert!(optional_birth_date("1899-12-31", "dob", "%Y-%m-%d").is_err());
    }

    #[test]
    fn dates_need_four_digit_years_within_range() {
        let years = Years::default();
        assert!(date("2024-01-05", "d", "%Y-%m-%d", years).is_ok());
        assert!(
            date("24-01-05", "d", "%Y-%m-%d", years)
                .unwrap_err()
                .contains("four-digit")
        );
        assert!(
            date("1899-12-31", "d", "%Y-%m-%d", years)
                .unwrap_err()
                .contains("outside")
        );
        let far = format!("{}-01-01", years.last + 1);
        assert!(date(&far, "d", "%Y-%m-%d", years).is_err());
        let wide = Years {
            first: 1800,
            last: 2100,
        };
        assert!(date("1850-06-01", "d", "%Y-%m-%d", wide).is_ok());
        assert!(date("05.01.2024", "d", "%d.%m.%Y", years).is_ok());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = hs_code(&s);
            let _ = amount(&s, "v", MAX_USD);
            let _ = country(&s, "c");
            let _ = date(&s, "d", "%Y-%m-%d", Years::default());
            let _ = one_of(&s, "x", &["A", "B"]);
        }
    }
}
