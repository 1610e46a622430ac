//! How alike two names are, from 0 to 1, and how evidence beyond the name moves that score.
//!
//! Names are compared as bags of tokens (word order varies across cultures and lists): each
//! token of one name is aligned with at most one of the other, best pairs first, using
//! Jaro-Winkler (`strsim`, which favours agreeing prefixes — where transliterations of a name
//! agree most). A token matters by its length and rarity, so `al` or `company` in common is weak.
//! Tokens left over on *both* sides are a conflict (`Abdul Latif Noori` is not `Abdul Latif
//! Mansur`); tokens only one side has are a smaller penalty (lists add middle names and
//! patronymics). Initials, names joined or split differently, and legal forms count too.

use std::fmt::Write as _;

use super::normalize::{Form, Name, is_common, is_patronymic, phonetic_key};

/// The threshold DARTTS ships: at or above it a pair is reported as a possible match.
pub const THRESHOLD: f64 = TUNING.threshold;

/// The scorer's constants, together so the evaluation can show what they were.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub threshold: f64,
    /// Below this, two tokens are not the same word misspelled.
    pub token_min: f64,
    /// Share of an unmatched token's weight charged when the other side has no token left.
    pub extra_cost: f64,
    /// Share charged when both sides have tokens left over: they contradict each other.
    pub conflict_cost: f64,
    /// Similarity credited to an initial against a word starting with it.
    pub initial: f64,
    /// Weight of a common word (particles, generic company words), relative to its length.
    pub common_weight: f64,
    /// Similarity credited to different spellings with the same phonetic key.
    pub phonetic: f64,
    /// Token similarities are raised to this power: near misses count for less than typos.
    pub power: f64,
    /// Share of the score left to names that align generic words only while one of them has a
    /// word of its own.
    pub generic_only: f64,
    /// Share of a consonant-skeleton score credited (one name in an abjad): vowels
    /// unwritten, `Hasan` and `Husayn` are one skeleton.
    pub skeleton: f64,
}

pub const TUNING: Tuning = Tuning {
    threshold: 0.72,
    token_min: 0.7,
    extra_cost: 0.3,
    conflict_cost: 2.0,
    initial: 0.85,
    common_weight: 0.3,
    power: 3.0,
    phonetic: 0.9,
    skeleton: 0.95,
    generic_only: 0.8,
};

/// How alike two tokens are (0 when they are not plausibly the same word): the mean of
/// Jaro-Winkler, which forgives transliteration drift after a shared prefix, and the
/// Levenshtein ratio, which does not forgive a different ending (`Castillo`, `Castro`).
pub fn token_similarity(a: &str, b: &str, key_a: &str, key_b: &str, t: &Tuning) -> f64 {
    if a == b {
        return 1.0;
    }
    let digits = |t: &str| t.bytes().any(|c| c.is_ascii_digit());
    // Numbers identify (`Trust 2007-1` is not `Trust 2007-2`): only equal ones agree.
    if digits(a) || digits(b) {
        return 0.0;
    }
    if a.len() == 1 || b.len() == 1 {
        let (short, long) = if a.len() == 1 { (a, b) } else { (b, a) };
        return if long.starts_with(short) {
            t.initial
        } else {
            0.0
        };
    }
    // Short words differ by one letter and mean something else (`Li`/`Le`, `Ali`/`Ari`).
    let min = if a.len().min(b.len()) <= 3 {
        t.token_min.max(0.85)
    } else {
        t.token_min
    };
    let phonetic = if !key_a.is_empty() && key_a == key_b {
        t.phonetic
    } else {
        0.0
    };
    let jw = strsim::jaro_winkler(a, b);
    // The Levenshtein ratio is at most the ratio of the lengths: skip it when even that
    // cannot lift the mean to the minimum.
    let (short, long) = (a.len().min(b.len()), a.len().max(b.len()));
    let length_ratio = short as f64 / long as f64;
    let s = if (jw + length_ratio) / 2.0 < min {
        0.0
    } else {
        (jw + strsim::normalized_levenshtein(a, b)) / 2.0
    };
    let s = s.max(phonetic);
    if s >= min { s } else { 0.0 }
}

/// The weight of a token: longer words carry more information, common ones less.
pub fn token_weight(token: &str, t: &Tuning) -> f64 {
    let len = (token.len().min(10) as f64).sqrt();
    if is_common(token) {
        len * t.common_weight
    } else {
        len
    }
}

/// The name score of two parsed names, with what matched.
pub fn compare(q: &Name, c: &Name) -> NameScore {
    compare_with(q, c, &TUNING)
}

pub fn compare_with(q: &Name, c: &Name, t: &Tuning) -> NameScore {
    let letters = compare_letters(q, c, t);
    if q.abjad.is_some() == c.abjad.is_some() {
        return letters;
    }
    // One name in an abjad (Arabic, Hebrew), which does not write short vowels: what both can be
    // compared on is their consonants (`abjad`).
    let skeletons = compare_letters(&q.consonants(), &c.consonants(), t);
    let score = skeletons.score * t.skeleton;
    if score > letters.score {
        NameScore {
            score,
            by_consonants: true,
            ..skeletons
        }
    } else {
        letters
    }
}

fn compare_letters(q: &Name, c: &Name, t: &Tuning) -> NameScore {
    if q.is_empty() || c.is_empty() {
        return NameScore::default();
    }
    // Rejoining words and breaking ties between equal pairs read one side first, so the two
    // orders of a pair could score differently (`a R d` / `A rd d`: 0.89 one way, 1.0 the
    // other). Always comparing in one order makes the score a property of the pair.
    let (q, c) = if (&q.tokens, &q.keys) <= (&c.tokens, &c.keys) {
        (q, c)
    } else {
        (c, q)
    };
    let (qt, ct, qk, ck) = rejoin(q, c);
    let (qp, cp) = (patronymic_at(&qt), patronymic_at(&ct));
    let mut pairs: Vec<(usize, usize, f64)> = Vec::new();
    for (i, (a, ka)) in qt.iter().zip(&qk).enumerate() {
        for (j, (b, kb)) in ct.iter().zip(&ck).enumerate() {
            // `Ahmad bin Hasan` (Ahmad, son of Hasan) is not `Hasan bin Ahmad`: a word before
            // the particle on one side is not the same person's word after it on the other.
            if let (Some(p), Some(r)) = (qp, cp)
                && i != p
                && j != r
                && (i < p) != (j < r)
            {
                continue;
            }
            let s = token_similarity(a, b, ka, kb, t);
            if s > 0.0 {
                pairs.push((i, j, s));
            }
        }
    }
    // Best pairs first; ties by position, so equal inputs align the same way every time.
    pairs.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    let mut q_used = vec![false; qt.len()];
    let mut c_used = vec![false; ct.len()];
    let (mut matched, mut matched_weight) = (0.0, 0.0);
    let mut aligned = 0;
    let mut distinctive = false;
    for (i, j, s) in pairs {
        if q_used[i] || c_used[j] {
            continue;
        }
        q_used[i] = true;
        c_used[j] = true;
        aligned += 1;
        // Whether two words that are not generic were aligned (`international` taken for
        // `Intra` is still a generic word).
        distinctive |= !is_common(&qt[i]) && !is_common(&ct[j]);
        let w = (token_weight(&qt[i], t) + token_weight(&ct[j], t)) / 2.0;
        matched += w * s.powf(t.power);
        matched_weight += w;
    }
    // A number only one side has still contradicts (`Fund` and `Fund 2` are two funds).
    let left = |tokens: &[String], used: &[bool]| -> (f64, f64) {
        tokens.iter().zip(used).filter(|(_, u)| !**u).fold(
            (0.0, 0.0),
            |(words, numbers), (tok, _)| {
                if tok.bytes().any(|b| b.is_ascii_digit()) {
                    (words, numbers + token_weight(tok, t))
                } else {
                    (words + token_weight(tok, t), numbers)
                }
            },
        )
    };
    let ((lq, nq), (lc, nc)) = (left(&qt, &q_used), left(&ct, &c_used));
    let conflict = lq.min(lc) + nq + nc;
    let extra = lq.max(lc) - lq.min(lc);
    let denominator = matched_weight + t.conflict_cost * conflict + t.extra_cost * extra;
    let mut score = if denominator > 0.0 {
        matched / denominator
    } else {
        0.0
    };
    // Joined or split differently beyond what `rejoin` caught (`SergeiLavrov`).
    let (cq, cc) = (q.compact(), c.compact());
    if cq.len() >= 6 && cc.len() >= 6 && qt.len() != ct.len() {
        score = score.max(strsim::normalized_levenshtein(&cq, &cc) - 0.05);
    }
    // Names that share only generic words (`International Trading Company` and `Eastnine
    // International Trading Co.`) are not the same party when one of them has a word of its
    // own: the shared words say what kind of firm, not which.
    let unmatched_word = |tokens: &[String], used: &[bool]| {
        tokens
            .iter()
            .zip(used)
            .any(|(tok, u)| !*u && !is_common(tok))
    };
    if !distinctive && (unmatched_word(&qt, &q_used) || unmatched_word(&ct, &c_used)) {
        score *= t.generic_only;
    }
    let forms = form_effect(&q.forms, &c.forms);
    NameScore {
        score: (score + forms).clamp(0.0, 1.0),
        aligned,
        forms,
        by_consonants: false,
    }
}

/// Where a name's patronymic part starts (`bin`, `ibn`, `ben` … after the first word).
fn patronymic_at(tokens: &[String]) -> Option<usize> {
    tokens
        .iter()
        .skip(1)
        .position(|t| is_patronymic(t))
        .map(|p| p + 1)
}

/// Legal forms as evidence: the same family adds a little, different families take away.
fn form_effect(q: &[Form], c: &[Form]) -> f64 {
    if q.is_empty() || c.is_empty() {
        return 0.0;
    }
    if q.iter().any(|f| c.contains(f)) {
        0.02
    } else {
        -0.12
    }
}

/// Where one side writes a word the other splits in two or three (`Abd al Rahman` and
/// `Abdalrahman`, `Xi Jin Ping` and `Xi Jinping`), joins the split side's words; the same for
/// initials written as one word (`JC` for `Jean-Claude`). Returns both sides' tokens and keys.
fn rejoin(q: &Name, c: &Name) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let cj = join_into(&q.tokens, c);
    let qj = join_into(&cj.0, q);
    (qj.0, cj.0, qj.1, cj.1)
}

fn join_into(a: &[String], b: &Name) -> (Vec<String>, Vec<String>) {
    let (tokens, keys) = (&b.tokens, &b.keys);
    let mut out = (
        Vec::with_capacity(tokens.len()),
        Vec::with_capacity(tokens.len()),
    );
    let mut j = 0;
    'next: while j < tokens.len() {
        for n in [3, 2] {
            if j + n > tokens.len() {
                continue;
            }
            let parts = &tokens[j..j + n];
            let joined = parts.concat();
            let letters = parts.iter().all(|p| p.len() == 1);
            if (joined.len() >= 4 || letters) && a.contains(&joined) && !a.contains(&tokens[j]) {
                out.1.push(phonetic_key(&joined));
                out.0.push(joined);
                j += n;
                continue 'next;
            }
            // `JC` for `Jean-Claude`: the first letters of the words, written as one.
            let initials: String = parts.iter().filter_map(|p| p.get(..1)).collect();
            if !letters && a.contains(&initials) {
                out.1.push(String::new());
                out.0.push(initials);
                j += n;
                continue 'next;
            }
        }
        out.0.push(tokens[j].clone());
        out.1.push(keys.get(j).cloned().unwrap_or_default());
        j += 1;
    }
    out
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NameScore {
    pub score: f64,
    /// Tokens aligned between the names.
    pub aligned: usize,
    /// What legal forms added or took away.
    pub forms: f64,
    /// Compared by consonants, one name being in an abjad (`abjad`).
    pub by_consonants: bool,
}

/// Facts about a screened party besides its name.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// `YYYY-MM-DD`, `YYYY-MM` or `YYYY`.
    pub dates_of_birth: Vec<String>,
    /// Passport, TIN, IMO, tail numbers …, in any spelling.
    pub identifiers: Vec<String>,
    /// Countries (names or ISO codes), folded.
    pub countries: Vec<String>,
}

/// One piece of evidence and how it moved the score.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub effect: f64,
    pub detail: String,
}

/// How facts about both parties move the name score.
pub fn evidence(q: &Facts, c: &Facts) -> Vec<Evidence> {
    let mut out = Vec::new();
    if let Some(e) = birth_evidence(&q.dates_of_birth, &c.dates_of_birth) {
        out.push(e);
    }
    let ids = |f: &Facts| -> Vec<String> { f.identifiers.iter().map(|i| id_key(i)).collect() };
    let (qi, ci) = (ids(q), ids(c));
    if let Some(shared) = qi.iter().find(|i| i.len() >= 4 && ci.contains(i)) {
        out.push(Evidence {
            effect: 0.15,
            detail: format!("identifier {shared} matches"),
        });
    }
    // Evidence only where both sides name a country this can tell apart: a code and a name
    // compared as text said "differs" for `LB` against `Lebanon` and "matches" for `NO` against
    // it (a substring), turning true hits away and false ones up.
    let verdicts = q
        .countries
        .iter()
        .flat_map(|x| c.countries.iter().map(move |y| same_country(x, y)));
    let (mut any_same, mut all_differ, mut any) = (false, true, false);
    for verdict in verdicts {
        any = true;
        any_same |= verdict == Some(true);
        all_differ &= verdict == Some(false);
    }
    if any_same {
        out.push(Evidence {
            effect: 0.02,
            detail: "country matches".into(),
        });
    } else if any && all_differ {
        out.push(Evidence {
            effect: -0.05,
            detail: "country differs".into(),
        });
    }
    out
}

/// Identifiers compared as their letters and digits, upper case (`AB 123-45` is `AB12345`).
fn id_key(raw: &str) -> String {
    raw.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `a` and `b` name the same country: compared by ISO 3166-1 code when both are codes
/// (alpha-2, alpha-3, numeric), English names or common aliases (`celes`); else by their
/// letters alone, equal or not said (`None`): two names of one country this cannot resolve are
/// no evidence either way.
fn same_country(a: &str, b: &str) -> Option<bool> {
    match (country_code(a), country_code(b)) {
        (Some(x), Some(y)) => Some(x == y),
        _ => {
            let (a, b) = (letters(a), letters(b));
            (!a.is_empty() && a == b).then_some(true)
        }
    }
}

/// Lower-case ASCII letters and digits: how `celes` keys its tables (`unitedkingdom`).
fn letters(raw: &str) -> String {
    raw.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The alpha-2 code of the country `raw` names, if any. OFAC writes some names inverted
/// (`Korea, North`), so the part after a comma is also tried first.
fn country_code(raw: &str) -> Option<&'static str> {
    let lookup = |text: &str| {
        let key = letters(text);
        if key.is_empty() {
            return None;
        }
        key.parse::<celes::Country>()
            .or_else(|_| celes::Country::from_alias(&key))
            .ok()
            .map(|c| c.alpha2)
    };
    lookup(raw).or_else(|| {
        raw.split_once(',')
            .and_then(|(head, tail)| lookup(&format!("{tail}{head}")))
    })
}

/// Parses `YYYY-MM-DD`, `YYYY-MM`, `YYYY` and OFAC's `DD Mon YYYY` / `Mon YYYY` / `circa YYYY`.
pub fn parse_date(raw: &str) -> Option<(u32, Option<u32>, Option<u32>)> {
    let s = raw.trim().trim_start_matches("circa").trim();
    let parts: Vec<&str> = s
        .split(['-', ' ', '/', '.'])
        .filter(|p| !p.is_empty())
        .collect();
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = |p: &str| -> Option<u32> {
        let lower = p.to_ascii_lowercase();
        MONTHS
            .iter()
            .position(|m| lower.starts_with(m))
            .and_then(|i| u32::try_from(i + 1).ok())
            .or_else(|| p.parse().ok().filter(|m| (1..=12).contains(m)))
    };
    let year = |p: &str| -> Option<u32> { p.parse().ok().filter(|y| (1000..=2999).contains(y)) };
    match parts.as_slice() {
        [y] => Some((year(y)?, None, None)),
        [a, b] if year(a).is_some() => Some((year(a)?, Some(month(b)?), None)),
        [a, b] => Some((year(b)?, Some(month(a)?), None)),
        [a, b, c] if year(a).is_some() => Some((year(a)?, Some(month(b)?), c.parse().ok())),
        [a, b, c] => Some((year(c)?, Some(month(b)?), a.parse().ok())),
        _ => None,
    }
}

fn birth_evidence(q: &[String], c: &[String]) -> Option<Evidence> {
    let qd: Vec<_> = q.iter().filter_map(|d| parse_date(d)).collect();
    let cd: Vec<_> = c
        .iter()
        .flat_map(|d| d.split(';'))
        .flat_map(|d| d.split(" to "))
        .filter_map(parse_date)
        .collect();
    if qd.is_empty() || cd.is_empty() {
        return None;
    }
    let mut best: Option<Evidence> = None;
    for (qy, qm, qday) in &qd {
        for (cy, cm, cday) in &cd {
            let (effect, what) = match (qm, qday, cm, cday) {
                _ if qy != cy => continue,
                (Some(a), Some(b), Some(x), Some(y)) if a == x && b == y => (0.1, "exactly"),
                (Some(a), Some(b), Some(x), Some(y)) if a == y && b == x => {
                    (0.06, "with day and month swapped")
                }
                (Some(a), _, Some(x), _) if a != x => continue,
                _ => (0.04, "in the year"),
            };
            if best.as_ref().is_none_or(|b| b.effect < effect) {
                best = Some(Evidence {
                    effect,
                    detail: format!("date of birth matches {what}"),
                });
            }
        }
    }
    best.or_else(|| {
        // Every listed date is more than a year away.
        let near = qd
            .iter()
            .any(|(qy, ..)| cd.iter().any(|(cy, ..)| qy.abs_diff(*cy) <= 1));
        (!near).then(|| Evidence {
            effect: -0.15,
            detail: "date of birth differs".into(),
        })
    })
}

/// The final score of a name score and its evidence, and the explanation shown to analysts.
pub fn combine(name: &NameScore, matched_name: &str, evidence: &[Evidence]) -> (f64, String) {
    let mut score = name.score;
    let mut text = format!("name {:.2} against \"{matched_name}\"", name.score);
    if name.by_consonants {
        text.push_str(" (by consonants: one name in a script without short vowels)");
    }
    if name.forms != 0.0 {
        let _ = write!(text, " (legal forms {:+.2})", name.forms);
    }
    for e in evidence {
        score += e.effect;
        let _ = write!(text, "; {} ({:+.2})", e.detail, e.effect);
    }
    (score.clamp(0.0, 1.0), text)
}

#[cfg(test)]
mod tests;
