//! Filters shared by the domain modules: the `RecordFilter` contract (which fields a filter
//! reads) and SQL predicate helpers. Everything here becomes part of the SQL query; nothing
//! filters rows after they are fetched.

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection};

use crate::error::{ApiError, ApiResult};

/// A filter input over one record type, as `tradeRecords`, `financialTransactions`,
/// `subjectRecords` and their CSV exports take it.
///
/// A predicate on a field leaks that field's values one comparison at a time, so whoever
/// applies a filter must first check that the caller may read every field in `fields_read`
/// (`guard::require_readable`, `guard::readable`). The export does so for any `RecordFilter`,
/// so a new data set cannot forget it; `introspection::READS` lists the same mapping, and a
/// test there keeps the two in step.
pub trait RecordFilter: async_graphql::InputType + Default {
    /// The GraphQL type the predicates read (its name in `policies/fields.toml`).
    const RECORD: &'static str;

    /// The `RECORD` fields the members that are set read.
    fn fields_read(&self) -> Vec<&'static str>;

    /// The filter as SQL, without any row scope.
    fn condition(&self) -> ApiResult<Condition>;

    /// Lets `condition` read the same records by index where it otherwise could not, from
    /// what only the database knows (`TradeRecordFilter`'s importer name). Run after the
    /// fields are checked; the records `condition` selects stay the same.
    fn narrow(&mut self, _db: &DatabaseConnection) -> impl Future<Output = ApiResult<()>> + Send {
        async { Ok(()) }
    }
}

/// The fields of the `(set, field)` pairs whose member is set: how `fields_read` is written.
pub fn read_if_set(members: &[(bool, &'static str)]) -> Vec<&'static str> {
    members
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, field)| *field)
        .collect()
}

/// `text` with `%`, `_` and `\\` escaped, so it matches itself literally in a LIKE pattern
/// with `ESCAPE '\\'`. Every LIKE built from user input goes through here (`contains`, `like`).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `column LIKE before || text || after`, with `text` literal: `before` and `after` are the
/// only wildcards (`"%"` or `""`).
pub fn like<C: ColumnTrait>(column: C, before: &str, text: &str, after: &str) -> SimpleExpr {
    Expr::col(column.as_column_ref())
        .like(LikeExpr::new(format!("{before}{}{after}", escape_like(text))).escape('\\'))
}

/// Substring match, case-insensitive, that treats `%` and `_` in the input literally.
///
/// SQL's `LOWER` folds only A–Z, on SQLite and on PostgreSQL over the name columns (`COLLATE
/// "C"`, migration 000019), so `LOWER` alone left `MÜLLER` unfound by `müller` (and folding
/// only the needle made a name with a capital `É` unmatchable even by its exact text). The
/// needle is folded with Unicode's rules (NFC, then each letter's lower case); in the column,
/// `LOWER` folds A–Z and one `REPLACE` per other letter of the needle turns that letter's upper
/// case into it. Letters the needle does not have cannot match any of its positions, so this is
/// a case-insensitive match for every letter with a one-letter lower and upper case, on both
/// backends, without a folded copy of each name column. An ASCII needle is the plain `LOWER`.
pub fn contains<C: ColumnTrait>(column: C, needle: &str) -> SimpleExpr {
    let needle = fold_case(needle);
    let mut haystack: SimpleExpr = Func::lower(Expr::col(column.as_column_ref())).into();
    let mut folded: Vec<char> = Vec::new();
    for lower in needle.chars().filter(|c| !c.is_ascii()) {
        if folded.contains(&lower) {
            continue;
        }
        folded.push(lower);
        if let Some(upper) = single(lower.to_uppercase()).filter(|u| *u != lower && !u.is_ascii()) {
            haystack = Func::cust("REPLACE")
                .arg(haystack)
                .arg(upper.to_string())
                .arg(lower.to_string())
                .into();
        }
    }
    Expr::expr(haystack).like(LikeExpr::new(format!("%{}%", escape_like(&needle))).escape('\\'))
}

/// `text` in NFC, each letter in its lower case where that is one letter (`İ`, whose lower case
/// is two, stays as written).
fn fold_case(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfc()
        .map(|c| single(c.to_lowercase()).unwrap_or(c))
        .collect()
}

/// The one character of a case mapping, if it is one.
fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// Refuses U+0000 anywhere in a request's input (PostgreSQL cannot store or compare it): the
/// one check for GraphQL variables and literals and the CSV exports' filters.
pub fn refuse_nul(input: &serde_json::Value) -> Result<(), ApiError> {
    let has_nul = match input {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => return items.iter().try_for_each(refuse_nul),
        serde_json::Value::Object(map) => {
            return map.iter().try_for_each(|(key, value)| {
                if key.contains('\0') {
                    return Err(nul());
                }
                refuse_nul(value)
            });
        }
        _ => false,
    };
    if has_nul { Err(nul()) } else { Ok(()) }
}

fn nul() -> ApiError {
    ApiError::bad_input("text arguments may not contain the character U+0000")
}

/// `column`, which holds digit strings (HS codes are 2 to 10 digits, `ingest::values::hs_code`),
/// starts with the digit string `prefix`, as a range predicate: `LIKE 'p%'` can use a B-tree
/// only under the C collation, while `column >= 'p' AND column < 'p+1'` can under any collation
/// that orders digit strings as bytes (all of them), and over digit strings the range holds
/// exactly the prefix's strings (the property test below). No `LIKE` beside it: PostgreSQL
/// multiplies the two predicates' selectivities as if independent. A prefix of a whole code
/// (10 digits) is an equality: PostgreSQL estimates a range that narrow at one row (an HS code
/// with 54,000 rows at 10M), and then chose a nested loop over the peer profiles that took 170
/// ms where a hash join takes a tenth of that; an equality it estimates from its statistics. A
/// prefix that is not all digits gets the `LIKE` alone.
pub fn digit_prefix<C: ColumnTrait>(column: C, prefix: &str) -> Condition {
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Condition::all().add(column.starts_with(prefix));
    }
    if prefix.len() >= crate::ingest::HS_MAX_DIGITS {
        return Condition::all().add(column.eq(prefix));
    }
    let mut c = Condition::all().add(column.gte(prefix));
    if let Some(upper) = next_digit_prefix(prefix) {
        c = c.add(column.lt(upper));
    }
    c
}

/// The smallest digit string after every string starting with `prefix`: "84" → "85",
/// "8499" → "85", "99" → none (no upper bound).
fn next_digit_prefix(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim_end_matches('9');
    let last = trimmed.bytes().last()?;
    let mut upper = trimmed[..trimmed.len() - 1].to_owned();
    upper.push(char::from(last + 1));
    Some(upper)
}

/// Adds `column IN (codes)` for a list of ISO country codes, each checked by
/// `crate::country::alpha2`: a code no country has would match nothing, silently.
pub fn countries<C: ColumnTrait>(
    cond: Condition,
    column: C,
    codes: Option<&Vec<String>>,
    argument: &str,
) -> Result<Condition, ApiError> {
    let Some(codes) = codes else { return Ok(cond) };
    let upper = codes
        .iter()
        .map(|code| crate::country::alpha2(code))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_input(format!("{argument}: {e}")))?;
    Ok(cond.add(column.is_in(upper)))
}

/// Rejects filters that would make a query scan without bound on hostile input.
pub fn check_text(argument: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().count() > 200 {
        return Err(ApiError::bad_input(format!(
            "{argument} is longer than 200 characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn next_digit_prefixes() {
        assert_eq!(next_digit_prefix("84").as_deref(), Some("85"));
        assert_eq!(next_digit_prefix("8499").as_deref(), Some("85"));
        assert_eq!(next_digit_prefix("0").as_deref(), Some("1"));
        assert_eq!(next_digit_prefix("99"), None);
    }

    #[test]
    fn needles_fold_to_one_lower_case_letter_each() {
        assert_eq!(fold_case("MÜLLER Straße"), "müller straße");
        assert_eq!(fold_case("E\u{301}COLE"), "école");
        assert_eq!(fold_case("ΑΘΗΝΑ"), "αθηνα");
        // Two letters in lower case: kept as written rather than changed in length.
        assert_eq!(fold_case("İ"), "İ");
    }

    #[test]
    fn wildcards_and_the_escape_character_are_literal() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        assert!(refuse_nul(&json!({ "f": ["ok", "a\u{0}b"] })).is_err());
        assert!(refuse_nul(&json!({ "f": ["ok", 1, null] })).is_ok());
    }

    proptest! {
        /// The range holds exactly the digit strings that start with the prefix.
        #[test]
        fn range_is_the_prefix(prefix in "[0-9]{1,4}", code in "[0-9]{1,6}") {
            let in_range = code.as_str() >= prefix.as_str()
                && next_digit_prefix(&prefix).is_none_or(|u| code.as_str() < u.as_str());
            prop_assert_eq!(in_range, code.starts_with(&prefix));
        }

        /// Unescaping the result gives the input back, and no wildcard stays unescaped.
        #[test]
        fn escaping_round_trips(text in "[%_\\\\a-z]{0,30}") {
            let escaped = escape_like(&text);
            let mut chars = escaped.chars();
            let mut back = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => back.push(chars.next().expect("escaped character")),
                    '%' | '_' => prop_assert!(false, "unescaped wildcard in {escaped}"),
                    other => back.push(other),
                }
            }
            prop_assert_eq!(back, text);
        }
    }
}
