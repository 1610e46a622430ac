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

/// A finite, non-negative amount. Thousands separators are not accepted: in a partner file
/// `1,234` and `1.234` are ambiguous, so a profile must say what its numbers look like.
pub fn amount(raw: &str, column: &str) -> Result<f64, String> {
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
    Ok(value)
}

pub fn optional_amount(raw: &str, column: &str) -> Result<Option<f64>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        amount(raw, column).map(Some)
    }
}

/// ISO 3166-1 alpha-2, upper-cased.
pub fn country(raw: &str, column: &str) -> Result<String, String> {
    let text = raw.trim().to_ascii_uppercase();
    if text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text)
    } else {
        Err(format!(
            "{column} {:?} is not an ISO 3166 alpha-2 country code",
            raw.trim()
        ))
    }
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
    fn amounts_reject_nan_negative_and_text() {
        assert_eq!(amount(" 12.5 ", "v").unwrap(), 12.5);
        for bad in ["NaN", "inf", "-1", "1,000", "abc", ""] {
            assert!(amount(bad, "v").is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_are_two_letters() {
        assert_eq!(country("kr", "c").unwrap(), "KR");
        assert!(country("KOR", "c").is_err());
        assert!(country("K1", "c").is_err());
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
            let _ = amount(&s, "v");
            let _ = country(&s, "c");
            let _ = date(&s, "d", "%Y-%m-%d", Years::default());
            let _ = one_of(&s, "x", &["A", "B"]);
        }
    }
}
