//! The in-memory candidate index over listed names (SDN entries, their aliases, TECS subjects).
//!
//! A query never scans the list: each query token finds the list's tokens that could be the same
//! word — equal, the same phonetic key, or sharing trigrams and then close enough by
//! `score::token_similarity` — and their postings give candidate names with an upper bound of
//! the name weight they could match. Only candidates whose bound could reach the asked score
//! are scored in full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::normalize::{Name, is_common, is_common_consonants};
use super::score::{self, Evidence, Facts, TUNING, token_similarity, token_weight};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Sdn,
    Tecs,
}

/// What a listed party is, as far as names are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Person,
    Organization,
    Vessel,
    Aircraft,
}

/// One listed party: an SDN entry or a TECS subject record.
#[derive(Clone, Debug)]
pub struct Listed {
    pub source: Source,
    /// The database row (`sdn_entries.id` / `subject_records.id`), resolved through the guarded
    /// types when a hit is delivered.
    pub row_id: i64,
    pub kind: Option<Kind>,
    /// The primary name first, then aliases and former names: each scores as a name.
    pub names: Vec<String>,
    pub facts: Facts,
}

/// A screening question.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub name: String,
    pub kind: Option<Kind>,
    pub facts: Facts,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub source: Source,
    pub row_id: i64,
    pub score: f64,
    pub name_score: f64,
    pub matched_name: String,
    pub evidence: Vec<Evidence>,
    pub explanation: String,
}

/// Candidates scored in full per query, best bound first.
const MAX_CANDIDATES: usize = 20;
/// Shared trigrams a dictionary token needs before its similarity is computed (at least).
const MIN_TRIGRAMS: usize = 2;
/// A list token held by more names than this (`mohammad`, `bank`) does not make candidates
/// when the query has other words: every `Mohammad …` would be one.
const FREQUENT: usize = 1500;
/// Letters a misspelling may add or drop and still be looked at.
const LENGTH_SLACK: usize = 3;

#[derive(Default)]
pub struct Index {
    listed: Vec<Listed>,
    /// Every indexed name: (listed party, parsed name, the name as listed).
    names: Vec<(u32, Name, u16)>,
    /// The names' tokens as written (folded), what a query finds its candidates by.
    letters: Vocabulary,
    /// The same names' consonant skeletons (`Name::consonants`), what a query written in an
    /// abjad finds its candidates by, and any query when a listed name is in it.
    consonants: Vocabulary,
    /// Whether any listed name is written in an abjad (Arabic, Hebrew).
    abjad: bool,
}

/// The tokens of the indexed names, and the ways a query token reaches them.
#[derive(Default)]
struct Vocabulary {
    token_ids: HashMap<String, u32>,
    tokens: Vec<String>,
    /// Per token: its phonetic key.
    keys: Vec<String>,
    /// Per token: the names holding it (slots of `Index::names`).
    postings: Vec<Vec<u32>>,
    /// Phonetic key → tokens with that key.
    phonetic: HashMap<String, Vec<u32>>,
    /// Trigram → (length, token) holding it, by length: a query token only looks at list
    /// tokens of about its length.
    trigrams: HashMap<[u8; 3], Vec<(usize, u32)>>,
    /// Query token → its similar list tokens. Names repeat their words (`trading`, `hassan`),
    /// and finding the similar tokens is most of a search's work.
    similar_cache: Mutex<HashMap<String, Similar>>,
}

/// List tokens similar to one query token, with their similarity.
type Similar = Arc<Vec<(u32, f64)>>;

/// Query tokens remembered per index (then the cache starts over).
const CACHE_TOKENS: usize = 100_000;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("listed", &self.listed.len())
            .field("names", &self.names.len())
            .field("tokens", &self.letters.tokens.len())
            .finish()
    }
}

fn trigrams(token: &str) -> Vec<[u8; 3]> {
    let padded: Vec<u8> = std::iter::once(b' ')
        .chain(token.bytes())
        .chain(std::iter::once(b' '))
        .collect();
    padded.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

impl Vocabulary {
    /// The names whose tokens could match enough of `name`'s weight to reach `min_score`, each
    /// with that share of the weight (an upper bound). `common` says which query tokens are
    /// too common to make candidates when the query has other words.
    fn candidates(
        &self,
        name: &Name,
        common: fn(&str) -> bool,
        min_score: f64,
        names: usize,
    ) -> HashMap<u32, f64> {
        if name.is_empty() {
            return HashMap::new();
        }
        let only_common = name.tokens.iter().all(|t| common(t));
        let total: f64 = name.tokens.iter().map(|t| token_weight(t, &TUNING)).sum();
        if total <= 0.0 {
            return HashMap::new();
        }
        // Evidence adds at most ~0.25, so a name must reach about half the query's weight.
        let mut needed = total * (min_score - 0.3).clamp(0.2, 0.6);
        let mut counts = Vec::new();
        let similar: Vec<(f64, Similar)> = name
            .tokens
            .iter()
            .zip(&name.keys)
            // Particles and generic words would make every `al-…` a candidate.
            .filter(|(token, _)| only_common || !common(token))
            .map(|(token, key)| {
                (
                    token_weight(token, &TUNING),
                    self.similar_tokens(token, key, &mut counts),
                )
            })
            .collect();
        let several = similar.len() > 1;
        let mut bound = vec![0f64; names];
        let mut touched: Vec<u32> = Vec::new();
        for (w, tokens) in &similar {
            for (id, s) in tokens.iter() {
                let postings = &self.postings[*id as usize];
                if several && postings.len() > FREQUENT {
                    // Not looked at, so any candidate may hold it: lower the bar instead.
                    needed -= w * s;
                    continue;
                }
                for slot in postings {
                    let b = &mut bound[*slot as usize];
                    if *b == 0.0 {
                        touched.push(*slot);
                    }
                    *b += w * s;
                }
            }
        }
        touched
            .into_iter()
            .filter(|slot| bound[*slot as usize] >= needed)
            .map(|slot| (slot, bound[slot as usize] / total))
            .collect()
    }

    fn add(&mut self, name: &Name, slot: u32) {
        for (token, key) in name.tokens.iter().zip(&name.keys) {
            let id = self.token_id(token, key);
            let postings = &mut self.postings[id as usize];
            if postings.last() != Some(&slot) {
                postings.push(slot);
            }
        }
    }

    fn token_id(&mut self, token: &str, key: &str) -> u32 {
        if let Some(id) = self.token_ids.get(token) {
            return *id;
        }
        let id = u32::try_from(self.tokens.len()).unwrap_or(u32::MAX);
        self.token_ids.insert(token.to_owned(), id);
        self.tokens.push(token.to_owned());
        self.keys.push(key.to_owned());
        self.postings.push(Vec::new());
        if !key.is_empty() {
            self.phonetic.entry(key.to_owned()).or_default().push(id);
        }
        let mut seen = Vec::new();
        for g in trigrams(token) {
            if !seen.contains(&g) {
                seen.push(g);
                self.trigrams.entry(g).or_default().push((token.len(), id));
            }
        }
        id
    }

    /// `find_similar`, remembered.
    fn similar_tokens(
        &self,
        token: &str,
        key: &str,
        counts: &mut Vec<u16>,
    ) -> Arc<Vec<(u32, f64)>> {
        if let Some(found) = self
            .similar_cache
            .lock()
            .ok()
            .and_then(|c| c.get(token).cloned())
        {
            return found;
        }
        if counts.is_empty() {
            counts.resize(self.tokens.len(), 0);
        }
        let found = Arc::new(self.find_similar(token, key, counts));
        if let Ok(mut cache) = self.similar_cache.lock() {
            if cache.len() >= CACHE_TOKENS {
                cache.clear();
            }
            cache.insert(token.to_owned(), Arc::clone(&found));
        }
        found
    }

    /// List tokens that could be `token` misspelled, with their similarity. `counts` is
    /// scratch space, one slot per list token, left zeroed.
    fn find_similar(&self, token: &str, key: &str, counts: &mut [u16]) -> Vec<(u32, f64)> {
        let mut out: Vec<(u32, f64)> = Vec::new();
        if let Some(id) = self.token_ids.get(token) {
            out.push((*id, 1.0));
        }
        let mut touched: Vec<u32> = Vec::new();
        let grams = trigrams(token);
        if token.len() >= 3 && !token.bytes().any(|b| b.is_ascii_digit()) {
            let (low, high) = (
                token.len().saturating_sub(LENGTH_SLACK),
                token.len() + LENGTH_SLACK,
            );
            for g in &grams {
                let Some(holders) = self.trigrams.get(g) else {
                    continue;
                };
                let start = holders.partition_point(|(len, _)| *len < low);
                for (len, id) in &holders[start..] {
                    if *len > high {
                        break;
                    }
                    let c = &mut counts[*id as usize];
                    if *c == 0 {
                        touched.push(*id);
                    }
                    *c = c.saturating_add(1);
                }
            }
        }
        // One typo changes at most three trigrams; fewer shared than half is another word.
        let min_shared = u16::try_from((grams.len() / 2).max(MIN_TRIGRAMS)).unwrap_or(u16::MAX);
        let mut candidates: Vec<u32> = Vec::with_capacity(touched.len());
        for id in touched {
            if counts[id as usize] >= min_shared {
                candidates.push(id);
            }
            counts[id as usize] = 0;
        }
        if !key.is_empty()
            && let Some(same) = self.phonetic.get(key)
        {
            candidates.extend(same);
        }
        candidates.sort_unstable();
        candidates.dedup();
        for id in candidates {
            if out.first().is_some_and(|(exact, _)| *exact == id) {
                continue;
            }
            let (other, other_key) = (&self.tokens[id as usize], &self.keys[id as usize]);
            let s = token_similarity(token, other, key, other_key, &TUNING);
            if s > 0.0 {
                out.push((id, s));
            }
        }
        out
    }
}

impl Index {
    pub fn build(listed: Vec<Listed>) -> Index {
        let mut index = Index::default();
        for (li, party) in listed.iter().enumerate() {
            for (ni, raw) in party.names.iter().enumerate() {
                let name = Name::parse(raw);
                if name.is_empty() {
                    continue;
                }
                let slot = u32::try_from(index.names.len()).unwrap_or(u32::MAX);
                index.letters.add(&name, slot);
                index.consonants.add(&name.consonants(), slot);
                index.abjad |= name.abjad.is_some();
                index.names.push((
                    u32::try_from(li).unwrap_or(u32::MAX),
                    name,
                    u16::try_from(ni).unwrap_or(u16::MAX),
                ));
            }
        }
        index.listed = listed;
        for vocabulary in [&mut index.letters, &mut index.consonants] {
            for tokens in vocabulary.trigrams.values_mut() {
                tokens.sort_unstable();
            }
        }
        index
    }

    pub fn len(&self) -> usize {
        self.listed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    pub fn names(&self) -> usize {
        self.names.len()
    }

    pub fn listed(&self, i: usize) -> Option<&Listed> {
        self.listed.get(i)
    }

    /// The listed parties whose names (or facts) score at least `min_score` against `q`, best
    /// first, one hit per party (its best-scoring name), at most `limit`.
    /// Only parties from `sources` are considered: the caller's role decides which.
    pub fn search(&self, q: &Query, sources: &[Source], min_score: f64, limit: usize) -> Vec<Hit> {
        let name = Name::parse(&q.name);
        if name.is_empty() || self.names.is_empty() {
            return Vec::new();
        }
        // Candidates by letters, and by consonants where one side may be in an
        // abjad (`abjad`): a slot's share is the most of the query's weight it could match.
        let mut shares = self
            .letters
            .candidates(&name, is_common, min_score, self.names.len());
        if name.abjad.is_some() || self.abjad {
            let by_consonants = self.consonants.candidates(
                &name.consonants(),
                is_common_consonants,
                min_score,
                self.names.len(),
            );
            for (slot, share) in by_consonants {
                let e = shares.entry(slot).or_insert(0.0);
                *e = e.max(share);
            }
        }
        let readable = |slot: u32| {
            self.names
                .get(slot as usize)
                .and_then(|(li, ..)| self.listed.get(*li as usize))
                .is_some_and(|p| sources.contains(&p.source))
        };
        let mut candidates: Vec<(u32, f64)> = shares
            .into_iter()
            .filter(|(slot, _)| readable(*slot))
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        candidates.truncate(MAX_CANDIDATES);

        let mut best: HashMap<u32, Hit> = HashMap::new();
        for (slot, _) in candidates {
            let Some((li, listed_name, ni)) = self.names.get(slot as usize) else {
                continue;
            };
            let Some(party) = self.listed.get(*li as usize) else {
                continue;
            };
            let ns = score::compare(&name, listed_name);
            let mut evidence = score::evidence(&q.facts, &party.facts);
            if let (Some(a), Some(b)) = (q.kind, party.kind)
                && a != b
            {
                evidence.push(Evidence {
                    effect: -0.1,
                    detail: "kind differs".into(),
                });
            }
            let matched = party
                .names
                .get(usize::from(*ni))
                .cloned()
                .unwrap_or_default();
            let (total_score, explanation) = score::combine(&ns, &matched, &evidence);
            if total_score < min_score {
                continue;
            }
            let hit = Hit {
                source: party.source,
                row_id: party.row_id,
                score: total_score,
                name_score: ns.score,
                matched_name: matched,
                evidence,
                explanation,
            };
            match best.get(li) {
                Some(h) if h.score >= hit.score => {}
                _ => {
                    best.insert(*li, hit);
                }
            }
        }
        let mut hits: Vec<Hit> = best.into_values().collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.row_id.cmp(&b.row_id))
                .then((a.source == Source::Tecs).cmp(&(b.source == Source::Tecs)))
        });
        hits.truncate(limit);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(row_id: i64, names: &[&str], dob: Option<&str>) -> Listed {
        Listed {
            source: Source::Sdn,
            row_id,
            kind: Some(Kind::Person),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            facts: Facts {
                dates_of_birth: dob.into_iter().map(str::to_owned).collect(),
                ..Facts::default()
            },
        }
    }

    fn index() -> Index {
        Index::build(vec![
            party(1, &["PUTIN, Vladimir Vladimirovich"], Some("07 Oct 1952")),
            party(2, &["LAVROV, Sergey Viktorovich", "LAVROV, Sergei"], None),
            party(3, &["AL-ZAWAHIRI, Ayman"], Some("19 Jun 1951")),
            party(4, &["MOHAMMAD, Ali Hassan"], None),
        ])
    }

    fn first(q: &str) -> Option<i64> {
        index()
            .search(
                &Query {
                    name: q.into(),
                    ..Query::default()
                },
                &[Source::Sdn, Source::Tecs],
                0.5,
                5,
            )
            .first()
            .map(|h| h.row_id)
    }

    #[test]
    fn misspelled_reordered_and_other_script_names_find_their_entry() {
        assert_eq!(first("Vladimir Putin"), Some(1));
        assert_eq!(first("Wladimir Putn"), Some(1));
        assert_eq!(first("Путин Владимир"), Some(1));
        assert_eq!(first("Sergei Lavrov"), Some(2));
        assert_eq!(first("Aiman Zawahri"), Some(3));
        // Written in an abjad, without short vowels: found by consonants.
        assert_eq!(first("أيمن الظواهري"), Some(3));
        assert_eq!(first("محمد علي حسن"), Some(4));
        assert_eq!(first("سيرجي لافروف"), Some(2));
        assert_eq!(first("جون سميث"), None);
        assert_eq!(first("John Smith"), None);
        // A particle alone is not a reason to look at every `al-…`.
        assert_eq!(first("al"), None);
    }

    #[test]
    fn one_hit_per_party_and_evidence_is_shown() {
        let idx = index();
        let hits = idx.search(
            &Query {
                name: "Sergei Lavrov".into(),
                ..Query::default()
            },
            &[Source::Sdn],
            0.5,
            5,
        );
        assert_eq!(hits.iter().filter(|h| h.row_id == 2).count(), 1);
        assert_eq!(hits[0].matched_name, "LAVROV, Sergei");
        let with_dob = idx.search(
            &Query {
                name: "Vladimir Putin".into(),
                facts: Facts {
                    dates_of_birth: vec!["1952-10-07".into()],
                    ..Facts::default()
                },
                ..Query::default()
            },
            &[Source::Sdn],
            0.5,
            5,
        );
        assert!(
            with_dob[0]
                .explanation
                .contains("date of birth matches exactly")
        );
        let only_tecs = idx.search(
            &Query {
                name: "Vladimir Putin".into(),
                ..Query::default()
            },
            &[Source::Tecs],
            0.5,
            5,
        );
        assert!(only_tecs.is_empty());
    }
}
