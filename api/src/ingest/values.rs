//! Parsers for the values every data set shares. Each returns a reason a person can act on;
//! the reason ends up beside the line number in the batch's rejection list.

use chrono::NaiveDate;

/// Empty (after trimming) means absent.
pub fn optional(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

pub fn required(raw: &str, column: &str) -> Result<String, String> {
    optional(raw).ok_or_else(|| format!("{column} is empty"))
}

pub fn date(raw: &str, column: &str, format: &str) -> Result<NaiveDate, String> {
    let text = raw.trim();
    NaiveDate::parse_from_str(text, format)
        .map_err(|_| format!("{column} {text:?} is not a date in format {format}"))
}

pub fn optional_date(raw: &str, column: &str, format: &str) -> Result<Option<NaiveDate>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        date(raw, column, format).map(Some)
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

/// An HS / HTS code of 2 to 10 digits; dots and spaces used for readability are removed.
pub fn hs_code(raw: &str) -> Result<String, String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
    if (2..=10).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
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

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = hs_code(&s);
            let _ = amount(&s, "v");
            let _ = country(&s, "c");
            let _ = date(&s, "d", "%Y-%m-%d");
            let _ = one_of(&s, "x", &["A", "B"]);
        }
    }
}
