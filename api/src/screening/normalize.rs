//! Names as comparable tokens: Unicode NFKC, transliteration to Latin, case, punctuation and
//! accents folded; honorifics dropped; company forms recognized and kept aside as evidence.
//!
//! Transliteration uses `any_ascii` rather than `deunicode`: on the labelled pairs
//! (nomenklatura's name bench and its 81 spellings of one name) it separated matching from
//! non-matching non-Latin pairs better (mean Jaro-Winkler gap 0.042 against 0.034) and renders
//! modern Greek the way names are spelled in passports (`Mitsotakis`, not `Metsotakes`).

use unicode_normalization::UnicodeNormalization;

use super::abjad;

/// Legal-form families. Forms within one family are the same kind of company in different
/// jurisdictions, so `OOO` and `LLC` agree while `LLC` and `JSC` disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Form {
    /// Limited liability: LLC, OOO, GmbH, Ltd, SARL, Sp. z o.o., B.V. …
    Limited,
    /// Joint-stock: JSC, AO, PJSC, AG, S.A., N.V., PLC, S.p.A. …
    JointStock,
    /// Corporation: Inc., Corp.
    Corporation,
    /// Partnership: L.P., KG, LLP.
    Partnership,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Limited => "limited liability",
            Form::JointStock => "joint-stock",
            Form::Corporation => "corporation",
            Form::Partnership => "partnership",
        }
    }
}

/// Token sequences naming a legal form. `edge_only` forms are also ordinary words or name
/// parts (`AS`, `AO`, `SA`), so they count as forms only at the start or end of a name.
const FORMS: &[(&[&str], Form, bool)] = &[
    (
        &["obshchestvo", "s", "ogranichennoy", "otvetstvennostyu"],
        Form::Limited,
        false,
    ),
    (
        &["tovaristvo", "z", "obmezhenoyu", "vidpovidalnistyu"],
        Form::Limited,
        false,
    ),
    (
        &["gesellschaft", "mit", "beschrankter", "haftung"],
        Form::Limited,
        false,
    ),
    (
        &["societatea", "cu", "raspundere", "limitata"],
        Form::Limited,
        false,
    ),
    (
        &["sociedad", "de", "responsabilidad", "limitada"],
        Form::Limited,
        false,
    ),
    (
        &["publichnoe", "aktsionernoe", "obshchestvo"],
        Form::JointStock,
        false,
    ),
    (
        &["otkrytoe", "aktsionernoe", "obshchestvo"],
        Form::JointStock,
        false,
    ),
    (
        &["zakrytoe", "aktsionernoe", "obshchestvo"],
        Form::JointStock,
        false,
    ),
    (&["aktsionernoe", "obshchestvo"], Form::JointStock, false),
    (&["aktiengesellschaft"], Form::JointStock, false),
    (&["sociedad", "anonima"], Form::JointStock, false),
    (&["societe", "anonyme"], Form::JointStock, false),
    (&["limited", "liability", "company"], Form::Limited, false),
    (&["l", "l", "c"], Form::Limited, false),
    (&["llc"], Form::Limited, false),
    (&["ooo"], Form::Limited, false),
    (&["tov"], Form::Limited, false),
    (&["gmbh"], Form::Limited, false),
    (&["ltd"], Form::Limited, false),
    (&["limited"], Form::Limited, true),
    (&["sarl"], Form::Limited, false),
    (&["s", "a", "r", "l"], Form::Limited, false),
    (&["srl"], Form::Limited, false),
    (&["s", "r", "l"], Form::Limited, false),
    (&["sp", "z", "o", "o"], Form::Limited, false),
    (&["sp", "z", "oo"], Form::Limited, false),
    (&["spzoo"], Form::Limited, false),
    (&["sro"], Form::Limited, false),
    (&["s", "r", "o"], Form::Limited, false),
    (&["kft"], Form::Limited, false),
    (&["pte"], Form::Limited, false),
    (&["pty"], Form::Limited, false),
    (&["bv"], Form::Limited, true),
    (&["b", "v"], Form::Limited, false),
    (&["fzco"], Form::Limited, false),
    (&["fze"], Form::Limited, false),
    (
        &["public", "joint", "stock", "company"],
        Form::JointStock,
        false,
    ),
    (
        &["open", "joint", "stock", "company"],
        Form::JointStock,
        false,
    ),
    (
        &["closed", "joint", "stock", "company"],
        Form::JointStock,
        false,
    ),
    (&["joint", "stock", "company"], Form::JointStock, false),
    (&["public", "limited", "company"], Form::JointStock, false),
    (&["jsc"], Form::JointStock, false),
    (&["ojsc"], Form::JointStock, false),
    (&["pjsc"], Form::JointStock, false),
    (&["cjsc"], Form::JointStock, false),
    (&["oao"], Form::JointStock, false),
    (&["zao"], Form::JointStock, false),
    (&["pao"], Form::JointStock, false),
    (&["ao"], Form::JointStock, true),
    (&["ag"], Form::JointStock, true),
    (&["sa"], Form::JointStock, true),
    (&["s", "a"], Form::JointStock, true),
    (&["spa"], Form::JointStock, true),
    (&["s", "p", "a"], Form::JointStock, false),
    (&["nv"], Form::JointStock, true),
    (&["n", "v"], Form::JointStock, false),
    (&["plc"], Form::JointStock, false),
    (&["p", "l", "c"], Form::JointStock, false),
    (&["as"], Form::JointStock, true),
    (&["asa"], Form::JointStock, true),
    (&["ab"], Form::JointStock, true),
    (&["oyj"], Form::JointStock, false),
    (&["se"], Form::JointStock, true),
    (&["incorporated"], Form::Corporation, false),
    (&["inc"], Form::Corporation, false),
    (&["corp"], Form::Corporation, false),
    (&["corporation"], Form::Corporation, true),
    (&["limited", "partnership"], Form::Partnership, false),
    (&["lp"], Form::Partnership, false),
    (&["l", "p"], Form::Partnership, false),
    (&["llp"], Form::Partnership, false),
    (&["kg"], Form::Partnership, true),
];

/// Titles and honorifics: they say nothing about who someone is.
const HONORIFICS: &[&str] = &[
    "mr", "mrs", "ms", "miss", "dr", "prof", "sir", "dame", "lord", "lady", "sheikh", "shaikh",
    "herr", "frau", "mme", "mlle", "hon", "gospodin",
];

/// Words so common in names on the lists (particles, generic company words) that sharing them
/// is weak evidence. They still count, with a small weight.
const COMMON: &[&str] = &[
    "al",
    "el",
    "bin",
    "ben",
    "ibn",
    "bint",
    "abu",
    "abd",
    "de",
    "da",
    "del",
    "della",
    "di",
    "du",
    "la",
    "le",
    "van",
    "von",
    "der",
    "den",
    "y",
    "e",
    "the",
    "of",
    "and",
    "co",
    "company",
    "group",
    "holding",
    "holdings",
    "international",
    "trading",
    "trade",
    "industries",
    "industrial",
    "enterprise",
    "enterprises",
    "services",
    "corporation",
    "import",
    "export",
    "general",
    "global",
];

pub fn is_common(token: &str) -> bool {
    COMMON.contains(&token)
}

/// `is_common` among consonant skeletons (`al` is `l`, `bin` is `bn`).
pub fn is_common_consonants(token: &str) -> bool {
    static SKELETONS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        COMMON
            .iter()
            .map(|w| abjad::skeleton(w))
            .filter(|s| !s.is_empty())
            .collect()
    });
    SKELETONS.iter().any(|s| s == token)
}

/// Particles that start a patronymic chain (`son of`, `daughter of`): the words after them
/// name the father, not the person.
pub fn is_patronymic(token: &str) -> bool {
    // `bn` and `abn` are `بن` and `ابن` as `abjad::romanize` writes them, and `bn` the skeleton
    // of `bin`, `ben` and `ibn`.
    matches!(
        token,
        "bin" | "ibn" | "ben" | "bint" | "binti" | "ould" | "bn" | "abn"
    )
}

/// A name ready for comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    /// Name tokens in their original order, without forms and honorifics.
    pub tokens: Vec<String>,
    /// Each token's phonetic key (Double Metaphone), for spellings that sound alike.
    pub keys: Vec<String>,
    /// Legal forms the name carries.
    pub forms: Vec<Form>,
    /// Written in an abjad (Arabic, Hebrew), without its short vowels: its tokens with the long
    /// vowels read (`abjad::romanize`), what `consonants` compares with a Latin spelling.
    pub abjad: Option<Vec<String>>,
}

impl Name {
    pub fn parse(raw: &str) -> Name {
        let mut name = Name::of_folded(&fold(raw));
        if abjad::written_in(raw) {
            // Two names in an abjad compare by `fold`'s letters, as both are written;
            // the long vowels are for meeting a Latin spelling (`consonants`). Measured on the
            // labelled pairs: reading both sides' long vowels lost one Arabic pair of each kind.
            let romanized = abjad::romanize(&raw.nfkc().collect::<String>());
            name.abjad = Some(Name::of_folded(&fold(&romanized)).tokens);
        }
        name
    }

    fn of_folded(folded: &str) -> Name {
        let folded = given_name_first(&initials_and_numerals(folded));
        let all: Vec<&str> = words(&folded).collect();
        // Titles go, unless the name is nothing else (`Mr` is then what was written).
        let titled = |w: &&str| HONORIFICS.contains(w);
        let words: Vec<String> = if all.iter().all(titled) {
            all.iter().map(|w| (*w).to_owned()).collect()
        } else {
            all.iter()
                .filter(|w| !titled(w))
                .map(|w| (*w).to_owned())
                .collect()
        };
        let words = numbers(words);
        let (tokens, forms) = split_forms(&words);
        // A name that is nothing but a form (and perhaps a number) keeps its form words as
        // name tokens: stripped, it would be empty or a bare number and match too much.
        let tokens = if tokens
            .iter()
            .any(|t| t.bytes().any(|b| b.is_ascii_alphabetic()))
        {
            tokens
        } else {
            words
        };
        let keys = tokens.iter().map(|t| phonetic_key(t)).collect();
        Name {
            tokens,
            keys,
            forms,
            abjad: None,
        }
    }

    /// The name as consonant skeletons (`abjad::skeleton`), what a name written in an abjad
    /// and a Latin one can be compared on. Tokens of vowels only go.
    pub fn consonants(&self) -> Name {
        let tokens: Vec<String> = self
            .abjad
            .as_ref()
            .unwrap_or(&self.tokens)
            .iter()
            .map(|t| abjad::skeleton(t))
            .filter(|t| !t.is_empty())
            .collect();
        Name {
            keys: tokens.iter().map(|t| phonetic_key(t)).collect(),
            tokens,
            forms: self.forms.clone(),
            abjad: None,
        }
    }

    /// The tokens joined without spaces, for names written joined or split differently.
    pub fn compact(&self) -> String {
        self.tokens.concat()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// `Surname, Given` (how lists and registers write persons) as `Given Surname`, so that
/// word order means the same on both sides (the patronymic rule reads it). A comma before a
/// legal form (`Santander, S.A.`) is not an inversion.
fn given_name_first(folded: &str) -> String {
    let mut parts = folded.split(',');
    let (Some(surname), Some(given), None) = (parts.next(), parts.next(), parts.next()) else {
        return folded.to_owned();
    };
    let owned = |s: &str| -> Vec<String> { words(s).map(str::to_owned).collect() };
    // No form inside, and not a form on its own (`split_forms` never takes a whole name).
    let plain = |w: &[String]| {
        !w.is_empty()
            && split_forms(w).1.is_empty()
            && !FORMS
                .iter()
                .any(|(seq, ..)| seq.len() == w.len() && seq.iter().zip(w).all(|(a, b)| a == b))
    };
    if plain(&owned(given)) && plain(&owned(surname)) {
        format!("{given} {surname}")
    } else {
        folded.to_owned()
    }
}

/// The words of folded text (letters and digits), abbreviations written out.
fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(expand_abbreviation)
}

/// Abbreviations written in company names, as the word they stand for (`Co.` and `Company`,
/// `Int'l` and `International` agree).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("co", "company"),
    ("intl", "international"),
    ("natl", "national"),
    ("mfg", "manufacturing"),
    ("bros", "brothers"),
    ("mgmt", "management"),
    ("assn", "association"),
    ("univ", "university"),
    ("dept", "department"),
    ("svcs", "services"),
];

fn expand_abbreviation(word: &str) -> &str {
    ABBREVIATIONS
        .iter()
        .find(|(short, _)| *short == word)
        .map_or(word, |(_, long)| long)
}

/// Initials written with dots and no spaces (`A.B.C.`, `U.S.A.`) as one word: their order is
/// part of the name (`C.B.A.` is not `A.B.C.`), which separate one-letter tokens would lose.
/// And Roman numerals after the first word (`Fund II`, `Fund IX`) as numbers, here where the
/// dots are still seen: a letter with a dot of its own is an initial (`Putin V.`, `В. В.
/// Путин`), not five or ten.
fn initials_and_numerals(folded: &str) -> String {
    const ROMAN: [&str; 12] = [
        "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii",
    ];
    let mut out = String::with_capacity(folded.len());
    let mut first = true;
    let chunks = folded.split_inclusive(|c: char| !c.is_ascii_alphanumeric() && c != '.');
    for chunk in chunks {
        let (body, sep) = match chunk.char_indices().last() {
            Some((i, c)) if !c.is_ascii_alphanumeric() && c != '.' => chunk.split_at(i),
            _ => (chunk, ""),
        };
        let letters: Vec<&str> = body.split('.').filter(|p| !p.is_empty()).collect();
        let dotted_letters = body.contains('.')
            && !letters.is_empty()
            && letters
                .iter()
                .all(|p| p.len() == 1 && p.bytes().all(|b| b.is_ascii_alphabetic()));
        let numeral = ROMAN
            .iter()
            .position(|r| *r == body.trim_end_matches('.'))
            .filter(|_| !first && !dotted_letters);
        if dotted_letters && letters.len() >= 2 {
            out.extend(letters.iter().copied());
            out.push(' ');
        } else if let Some(n) = numeral {
            out.push_str(&(n + 2).to_string());
        } else {
            out.push_str(body);
        }
        first &= letters.is_empty();
        out.push_str(sep);
    }
    out
}

/// The Double Metaphone key of a token (`rphonetic`, a maintained port of Apache Commons
/// Codec): `Qaddafi` and `Gaddafi`, `Bachar` and `Bashar` share one. Numbers have none.
pub fn phonetic_key(token: &str) -> String {
    use rphonetic::Encoder as _;
    thread_local! {
        static ENCODER: rphonetic::DoubleMetaphone = rphonetic::DoubleMetaphone::default();
    }
    if token.len() < 3 || token.bytes().any(|b| b.is_ascii_digit()) {
        return String::new();
    }
    ENCODER.with(|e| e.encode(token))
}

/// NFKC, then Latin transliteration, lower case. Apostrophes and the transliterated `ayn` are
/// dropped inside words (`O'Brien` is `obrien`); each CJK or Hangul character is one syllable,
/// kept as its own token so that `习近平` meets `Xi Jin Ping` and, joined, `Xi Jinping`.
pub fn fold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    if raw.is_ascii() {
        for c in raw.chars() {
            if !matches!(c, '\'' | '`') {
                out.push(c.to_ascii_lowercase());
            }
        }
        return out;
    }
    for c in raw.nfkc() {
        if c.is_ascii() {
            match c {
                '\'' | '`' => {}
                _ => out.push(c.to_ascii_lowercase()),
            }
            continue;
        }
        if matches!(c, '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{02BB}') {
            continue;
        }
        let syllable = is_syllabic(c);
        if syllable {
            out.push(' ');
        }
        let mut buf = [0u8; 4];
        for t in any_ascii::any_ascii(c.encode_utf8(&mut buf)).chars() {
            if t != '\'' && t != '`' {
                out.push(t.to_ascii_lowercase());
            }
        }
        if syllable {
            out.push(' ');
        }
    }
    out
}

/// Number words and ordinals as digits (`Forty-Four`, `44th` and `44` agree), tens followed by
/// a unit joined into one number.
fn numbers(words: Vec<String>) -> Vec<String> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const ORDINALS: [&str; 13] = [
        "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
        "ninth", "tenth", "eleventh", "twelfth",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let value = |w: &str| -> Option<usize> {
        if let Some(n) = UNITS.iter().position(|u| *u == w) {
            return Some(n);
        }
        if let Some(n) = ORDINALS.iter().position(|u| *u == w) {
            return Some(n);
        }
        if let Some(n) = TENS.iter().position(|u| *u == w) {
            return Some(20 + 10 * n);
        }
        let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let suffix = &w[digits.len()..];
        if !digits.is_empty() && matches!(suffix, "st" | "nd" | "rd" | "th") {
            return digits.parse().ok();
        }
        None
    };
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut last_tens = false;
    for w in words {
        let v = value(&w).or_else(|| w.parse::<usize>().ok().filter(|n| *n < 10));
        match v {
            Some(unit) if last_tens && unit < 10 => {
                if let Some(prev) = out.pop() {
                    let tens: usize = prev.parse().unwrap_or(0);
                    out.push((tens + unit).to_string());
                }
                last_tens = false;
            }
            Some(n) if value(&w).is_some() => {
                last_tens = n >= 20 && n % 10 == 0;
                out.push(n.to_string());
            }
            _ => {
                last_tens = w
                    .parse::<usize>()
                    .is_ok_and(|n| (20..100).contains(&n) && n % 10 == 0);
                out.push(w);
            }
        }
    }
    out
}

fn is_syllabic(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // kana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF)
}

/// Removes legal forms (longest sequence first) and returns what is left and the forms found.
fn split_forms(words: &[String]) -> (Vec<String>, Vec<Form>) {
    let mut tokens = Vec::with_capacity(words.len());
    let mut forms = Vec::new();
    let mut i = 0;
    'outer: while i < words.len() {
        for (seq, form, edge_only) in FORMS {
            let end = i + seq.len();
            if end > words.len() || !seq.iter().zip(&words[i..end]).all(|(a, b)| a == b) {
                continue;
            }
            if *edge_only && i != 0 && end != words.len() {
                continue;
            }
            // Never the whole name: `Limited` alone or `AS` alone stays a word.
            if seq.len() == words.len() {
                continue;
            }
            if !forms.contains(form) {
                forms.push(*form);
            }
            i = end;
            continue 'outer;
        }
        tokens.push(words[i].clone());
        i += 1;
    }
    forms.sort();
    (tokens, forms)
}

#[cfg(test)]
mod tests;
