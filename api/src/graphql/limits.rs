//! Bounds on a query document, checked before async-graphql parses and validates it.
//!
//! Validation walks fragment spreads as if expanded, so a small document of nested spreads
//! (`fragment F1 on Query { ...F0 ...F0 }` … `F22`) costs seconds of CPU before any rule
//! refuses it, and before sign-in on the partners' listener. Here the same document is refused
//! in time linear in its size: a cheap lexical pass bounds bytes, tokens and nesting (which
//! also bounds the parser's recursion), then the expanded selection count is computed once per
//! fragment (memoized), never by expanding.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Far above any query a client writes (the standard introspection query is about 1.5 KiB,
/// 60 selections expanded, nesting 10); far below what costs noticeable CPU to validate.
pub const MAX_BYTES: usize = 64 * 1024;
pub const MAX_TOKENS: usize = 10_000;
/// Brackets and braces open at once (selections, list and object values).
pub const MAX_NESTING: usize = 40;
pub const MAX_FRAGMENTS: usize = 100;
/// Fields after every fragment spread is replaced by its fragment.
pub const MAX_SELECTIONS: u64 = 5_000;

/// Why a document is refused; the message is for the client.
#[derive(Debug, PartialEq, Eq)]
pub struct TooComplex(pub String);

/// Checks the document text and returns it parsed; a document that does not parse is left for
/// async-graphql to report (parsing is bounded by the lexical limits).
pub fn check(query: &str) -> Result<Option<ExecutableDocument>, TooComplex> {
    if query.len() > MAX_BYTES {
        return Err(TooComplex(format!(
            "the query document is {} bytes; at most {MAX_BYTES} are accepted",
            query.len()
        )));
    }
    lexical(query)?;
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return Ok(None);
    };
    if doc.fragments.len() > MAX_FRAGMENTS {
        return Err(TooComplex(format!(
            "the query document defines {} fragments; at most {MAX_FRAGMENTS} are accepted",
            doc.fragments.len()
        )));
    }
    let mut sizes = Sizes {
        doc: &doc,
        memo: HashMap::new(),
        cycle: None,
    };
    let selections = sizes.of_document();
    if let Some(fragment) = sizes.cycle {
        // Validation would refuse it too, but the expansion's count (unbounded) is no
        // message for a client.
        return Err(TooComplex(format!(
            "fragment {fragment} spreads itself, directly or through other fragments: \
             fragments may not form cycles"
        )));
    }
    if selections > MAX_SELECTIONS {
        return Err(TooComplex(format!(
            "the query selects {}{selections} fields once fragments are expanded; at most \
             {MAX_SELECTIONS} are accepted",
            if selections == u64::MAX { "over " } else { "" }
        )));
    }
    Ok(Some(doc))
}

/// Counts tokens and the deepest nesting without building anything. Strings and comments are
/// skipped so their content counts as one token and cannot fake nesting.
fn lexical(query: &str) -> Result<(), TooComplex> {
    let bytes = query.as_bytes();
    let (mut i, mut tokens, mut depth, mut deepest) = (0, 0usize, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        tokens += 1;
        if tokens > MAX_TOKENS {
            return Err(TooComplex(format!(
                "the query document has more than {MAX_TOKENS} tokens"
            )));
        }
        if deepest > MAX_NESTING {
            return Err(TooComplex(format!(
                "the query document nests deeper than {MAX_NESTING} levels"
            )));
        }
    }
    Ok(())
}

/// Fields selected with every spread expanded, over all operations; saturates at `u64::MAX`.
/// Each fragment's size is computed once; a fragment in a cycle (which validation refuses
/// anyway) or spreading an unknown fragment counts as unbounded / nothing respectively.
#[cfg(test)]
fn expanded_selections(doc: &ExecutableDocument) -> u64 {
    Sizes {
        doc,
        memo: HashMap::new(),
        cycle: None,
    }
    .of_document()
}

struct Sizes<'a> {
    doc: &'a ExecutableDocument,
    /// `None` while a fragment is being sized: meeting it again is a cycle.
    memo: HashMap<&'a str, Option<u64>>,
    /// The first fragment met again while it was being sized.
    cycle: Option<&'a str>,
}

impl<'a> Sizes<'a> {
    fn of_document(&mut self) -> u64 {
        let doc = self.doc;
        doc.operations
            .iter()
            .map(|(_, op)| self.of_set(&op.node.selection_set.node))
            .fold(0, u64::saturating_add)
    }

    fn of_set(&mut self, set: &'a SelectionSet) -> u64 {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    1u64.saturating_add(self.of_set(&field.node.selection_set.node))
                }
                Selection::InlineFragment(inline) => self.of_set(&inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    self.of_fragment(spread.node.fragment_name.node.as_str())
                }
            })
            .fold(0, u64::saturating_add)
    }

    fn of_fragment(&mut self, name: &'a str) -> u64 {
        let Some((key, fragment)) = self.doc.fragments.get_key_value(name) else {
            return 0;
        };
        match self.memo.get(name) {
            Some(Some(size)) => return *size,
            Some(None) => {
                self.cycle.get_or_insert(key.as_str());
                return u64::MAX;
            }
            None => {}
        }
        self.memo.insert(key.as_str(), None);
        let size = self.of_set(&fragment.node.selection_set.node);
        self.memo.insert(key.as_str(), Some(size));
        size
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    /// The document: each fragment spreads the one before twice.
    fn nested_fragments(levels: usize) -> String {
        let mut doc = String::from("query { ...F");
        doc.push_str(&levels.to_string());
        doc.push_str(" }\nfragment F0 on Query { me { id } }\n");
        for n in 1..=levels {
            doc.push_str(&format!(
                "fragment F{n} on Query {{ ...F{m} ...F{m} }}\n",
                m = n - 1
            ));
        }
        doc
    }

    #[test]
    fn the_nested_fragment_attack_is_refused_at_once() {
        // 2^60 selections once expanded, in under 5 kB: a check that expanded fragments would
        // never return (no wall-clock bound, which a loaded machine could break).
        let doc = nested_fragments(60);
        assert!(doc.len() < 5000, "{}", doc.len());
        let err = check(&doc).expect_err("refused");
        assert!(err.0.contains("fragments are expanded"), "{}", err.0);
        let doc = async_graphql::parser::parse_query(nested_fragments(10)).unwrap();
        assert_eq!(expanded_selections(&doc), 2 * (1 << 10));
    }

    #[test]
    fn ordinary_queries_pass() {
        let introspection = include_str!("../../../tests/introspection/query.graphql");
        check(introspection).expect("the standard introspection query");
        check("{ tradeRecords(first: 10, filter: { hsCodePrefix: \"85\" }) { edges { node { id } } } }")
            .expect("a data query");
    }

    #[test]
    fn cycles_size_and_nesting_are_refused() {
        let cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        let Err(TooComplex(reason)) = check(cycle) else {
            panic!("a cycle passed");
        };
        // Named as a cycle, not as the unbounded count of its expansion.
        assert!(reason.contains("fragment A spreads itself"), "{reason}");
        assert!(!reason.contains(&u64::MAX.to_string()), "{reason}");
        assert!(check(&"{a".repeat(100)).is_err(), "nesting");
        assert!(check(&format!("{{ {} }}", "a ".repeat(MAX_TOKENS))).is_err());
        assert!(check(&" ".repeat(MAX_BYTES + 1)).is_err());
        // Braces inside strings and comments are not nesting.
        check(&format!(
            "{{ a(s: \"{}\") # {}\n }}",
            "{".repeat(100),
            "[".repeat(100)
        ))
        .expect("strings and comments");
    }

    proptest! {
        /// Any text is answered quickly and without a panic; the bound holds whatever the
        /// document's shape.
        #[test]
        fn any_text_is_checked_quickly(text in "[{}\\[\\]().a-zF0-9 \"#\\\\\n:$@!]{0,2000}") {
            // A generous bound: an exponential path on 2,000 characters (a fragment bomb of
            // depth 29) would take minutes, and a busy CI machine must not fail a linear one.
            let start = Instant::now();
            let _ = check(&text);
            prop_assert!(start.elapsed() < Duration::from_secs(5));
        }

        /// The memoized count equals the count of the fully expanded document.
        #[test]
        fn memoized_count_matches_expansion(levels in 0usize..8, fields in 1usize..4) {
            let mut doc = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ {} }}\n", "a ".repeat(fields));
            for n in 1..=levels {
                doc.push_str(&format!("fragment F{n} on Query {{ b ...F{m} ...F{m} }}\n", m = n - 1));
            }
            let parsed = async_graphql::parser::parse_query(&doc).unwrap();
            // size(0) = fields, size(n) = 1 + 2·size(n-1)
            let expected = (0..levels).fold(fields as u64, |size, _| 1 + 2 * size);
            prop_assert_eq!(expanded_selections(&parsed), expected);
        }
    }
}
