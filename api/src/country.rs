//! The one check for a country code, wherever one comes in: a trade file's country columns and
//! `--provider`, a subject's passport country, an account's nation, `export-foreign --partner`,
//! an agreement, and every GraphQL filter that names countries.
//!
//! The shape alone (two letters) let through codes no country has. A filter for `UK` then
//! answered an empty page instead of saying the United Kingdom's code is `GB`, and a file
//! written with `UK` or Eurostat's `EL` (Greece) kept rows that no filter for that country
//! finds. So a code must be one ISO 3166-1 assigns (`celes`'s table, which adds `XK`, Kosovo,
//! as the EU and most customs systems use it), or one of the ranges ISO leaves to users (`AA`,
//! `QM`–`QZ`, `XA`–`XZ`, `ZZ`): customs data writes `ZZ` for an unknown origin, and a partner
//! may use such a code for a territory of its own, so refusing those would lose rows. `EU`,
//! which ISO reserves for the European Union, is taken too: goods are declared of EU origin.

use std::fmt;
use std::sync::LazyLock;

/// A code that names no country, with the code and name of the country it stands for when that
/// is certain: a common stand-in (`UK`) or another ISO 3166-1 code (`USA`, `410`). A name is
/// not resolved for the hint: `Congo` and `Korea` are each two countries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACountry {
    pub given: String,
    pub instead: Option<(&'static str, &'static str)>,
}

impl fmt::Display for NotACountry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an ISO 3166-1 alpha-2 country code",
            self.given
        )?;
        if let Some((code, country)) = self.instead {
            // `celes` writes "The Republic Of Korea".
            let (the, country) = country
                .strip_prefix("The ")
                .map_or(("", country), |rest| ("the ", rest));
            write!(f, " ({the}{country}'s code is {code})")?;
        }
        Ok(())
    }
}

impl std::error::Error for NotACountry {}

/// Codes reserved by ISO (exceptionally) or written by the EU for part or all of an assigned
/// country, with that country's code: what a person or a file most likely meant.
const STAND_INS: [(&str, &str, &str); 9] = [
    ("UK", "GB", "the United Kingdom"),
    ("EL", "GR", "Greece"),
    ("AC", "SH", "Ascension Island"),
    ("TA", "SH", "Tristan da Cunha"),
    ("DG", "IO", "Diego Garcia"),
    ("EA", "ES", "Ceuta and Melilla"),
    ("IC", "ES", "the Canary Islands"),
    ("FX", "FR", "Metropolitan France"),
    ("CP", "FR", "Clipperton Island"),
];

/// `raw` trimmed and upper-cased, if it is an assigned or user-assigned ISO 3166-1 alpha-2
/// code (see the module's comment).
pub fn alpha2(raw: &str) -> Result<String, NotACountry> {
    let code = raw.trim().to_ascii_uppercase();
    if slot(&code).is_some_and(|i| KNOWN[i]) {
        return Ok(code);
    }
    let other_code = || {
        let text = raw.trim();
        let country = match text.len() {
            3 if text.bytes().all(|b| b.is_ascii_digit()) => celes::Country::from_code(text),
            3 => celes::Country::from_alpha3(text),
            _ => return None,
        };
        country.ok().map(|c| (c.alpha2, c.long_name))
    };
    Err(NotACountry {
        given: shown(raw.trim()),
        instead: STAND_INS
            .iter()
            .find(|(stand_in, ..)| *stand_in == code)
            .map(|(_, code, country)| (*code, *country))
            .or_else(other_code),
    })
}

/// What the refusal quotes of the input: enough to find it, never a whole request body that a
/// list of "codes" could carry back out.
fn shown(text: &str) -> String {
    const AT_MOST: usize = 24;
    match text.char_indices().nth(AT_MOST) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Every two-letter pair, true for the codes `alpha2` takes. A table, because a trade file's
/// five country columns make this a check per cell of a million-row load, and `celes` looks a
/// code up by a lower-cased copy.
static KNOWN: LazyLock<[bool; 26 * 26]> = LazyLock::new(|| {
    let mut known = [false; 26 * 26];
    for country in celes::Country::get_countries() {
        if let Some(i) = slot(country.alpha2) {
            known[i] = true;
        }
    }
    for (i, first) in (b'A'..=b'Z').enumerate() {
        for (j, second) in (b'A'..=b'Z').enumerate() {
            if user_assigned(first, second) {
                known[i * 26 + j] = true;
            }
        }
    }
    if let Some(i) = slot("EU") {
        known[i] = true;
    }
    known
});

/// Where an upper-case two-letter code sits in `KNOWN`; `None` for anything else.
fn slot(code: &str) -> Option<usize> {
    match code.as_bytes() {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => {
            Some(usize::from(a - b'A') * 26 + usize::from(b - b'A'))
        }
        _ => None,
    }
}

/// ISO 3166-1's user-assigned alpha-2 codes: `AA`, `QM`–`QZ`, `XA`–`XZ`, `ZZ`.
fn user_assigned(first: u8, second: u8) -> bool {
    match (first, second) {
        (b'A', b'A') | (b'Z', b'Z') | (b'X', _) => true,
        (b'Q', second) => second >= b'M',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn assigned_codes_pass_in_any_case_and_spacing() {
        for (raw, code) in [("us", "US"), (" gb ", "GB"), ("Kr", "KR"), ("xk", "XK")] {
            assert_eq!(alpha2(raw).as_deref(), Ok(code));
        }
    }

    #[test]
    fn user_assigned_codes_pass() {
        for code in ["AA", "QM", "QZ", "XA", "XX", "XZ", "ZZ"] {
            assert_eq!(alpha2(code).as_deref(), Ok(code), "{code}");
        }
        for code in ["QA", "QL", "AB", "ZY"] {
            // QA is Qatar, assigned; the others are neither assigned nor left to users.
            assert_eq!(alpha2(code).is_ok(), code == "QA", "{code}");
        }
    }

    #[test]
    fn a_stand_in_names_the_assigned_code() {
        let err = alpha2("uk").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"uk\" is not an ISO 3166-1 alpha-2 country code (the United Kingdom's code is GB)"
        );
        assert_eq!(alpha2("EL").unwrap_err().instead, Some(("GR", "Greece")));
    }

    #[test]
    fn another_iso_code_names_the_alpha_2_one() {
        for (raw, says) in [
            ("USA", "(the United States Of America's code is US)"),
            (" kor", "(the Republic Of Korea's code is KR)"),
            ("410", "(the Republic Of Korea's code is KR)"),
            ("CHN", "(China's code is CN)"),
        ] {
            let err = alpha2(raw).unwrap_err().to_string();
            assert!(err.ends_with(says), "{raw:?}: {err}");
        }
    }

    #[test]
    fn what_no_country_has_is_refused_without_a_hint() {
        for raw in [
            "", "U", "U1", "ÜS", "OO", "YU", "UN", "Korea", "Congo", "999", "ABC",
        ] {
            let err = alpha2(raw).unwrap_err();
            assert_eq!(err.instead, None, "{raw:?}");
        }
    }

    #[test]
    fn a_long_input_is_quoted_in_part() {
        let long = "ü".repeat(10_000);
        let err = alpha2(&long).unwrap_err();
        assert_eq!(err.given, format!("{}…", "ü".repeat(24)));
    }

    #[test]
    fn every_stand_in_is_refused_and_points_at_an_assigned_code() {
        for (stand_in, code, _) in STAND_INS {
            assert!(alpha2(stand_in).is_err(), "{stand_in}");
            assert_eq!(alpha2(code).as_deref(), Ok(code));
        }
    }

    #[test]
    fn the_table_holds_celes_countries_and_the_user_ranges() {
        let known = KNOWN.iter().filter(|k| **k).count();
        // 250 in `celes` (249 assigned and XK), 42 left to users (XK among them) and EU.
        assert_eq!(known, 250 + 42 - 1 + 1);
        assert_eq!(alpha2("eu").as_deref(), Ok("EU"));
    }

    proptest! {
        #[test]
        fn a_code_that_passes_is_two_upper_case_letters_and_passes_again(raw in "\\PC{0,4}") {
            if let Ok(code) = alpha2(&raw) {
                prop_assert!(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()));
                prop_assert_eq!(alpha2(&code), Ok(code.clone()));
            }
        }
    }
}
