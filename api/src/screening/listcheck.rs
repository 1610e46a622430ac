//! `dartts eval screening-list`: quality and speed against the list actually loaded.
//!
//! Noisy spellings of listed names (a dropped letter, swapped letters, reversed word order),
//! drawn with a fixed seed, must find their entry first; ordinary innocent names (common given
//! and family names, combined with the same seed) must score 0.85 against nobody; and the time
//! per name is measured on the same index the server builds.

use std::time::Instant;

use serde::Serialize;

use super::index::{Index, Listed, Query, Source};
use super::score::THRESHOLD;

/// Common given and family names (frequency lists of the US census and German registries:
/// facts, not creative works). None is on the SDN list as a whole name.
const GIVEN: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Donald",
    "Ashley",
    "Steven",
    "Emily",
    "Paul",
    "Donna",
    "Andrew",
    "Michelle",
    "Joshua",
    "Carol",
    "Kenneth",
    "Amanda",
    "Kevin",
    "Melissa",
    "Brian",
    "Deborah",
    "George",
    "Stephanie",
    "Timothy",
    "Rebecca",
    "Ronald",
    "Laura",
    "Jason",
    "Helen",
    "Edward",
    "Sharon",
    "Jeffrey",
    "Cynthia",
    "Ryan",
    "Kathleen",
    "Jacob",
    "Amy",
];
const FAMILY: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Schmidt",
    "Mueller",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
];

/// xorshift64: reproducible draws without a dependency.
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % u64::try_from(below.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// A noisy spelling of `name`: reversed word order, a dropped letter, or both with swapped
/// letters.
fn noisy(name: &str, draw: &mut Draw) -> String {
    let mut words: Vec<Vec<char>> = name
        .replace(',', " ")
        .split_whitespace()
        .map(|w| w.chars().collect())
        .collect();
    if words.is_empty() {
        return name.to_owned();
    }
    let kind = draw.next(3);
    if kind != 1 {
        words.reverse();
    }
    let w = draw.next(words.len());
    let word = &mut words[w];
    if word.len() > 4 {
        let p = 1 + draw.next(word.len() - 2);
        if kind == 1 {
            word.remove(p);
        } else if kind == 2 {
            word.swap(p, p - 1);
        }
    }
    words
        .iter()
        .map(|w| w.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Serialize)]
pub struct ListReport {
    pub entries: usize,
    pub names: usize,
    pub build_ms: f64,
    pub noisy: usize,
    /// Share of noisy spellings whose entry is the first hit (ties at the top count).
    pub found_first: f64,
    pub innocent: usize,
    /// Share of innocent names scoring at least 0.85 against someone.
    pub innocent_flagged: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
}

/// Runs the checks over `listed` with `seed`.
pub fn check(listed: Vec<Listed>, seed: u64, noisy_count: usize) -> ListReport {
    let primaries: Vec<(i64, String)> = listed
        .iter()
        .filter(|l| l.source == Source::Sdn)
        .filter_map(|l| l.names.first().map(|n| (l.row_id, n.clone())))
        .collect();
    let started = Instant::now();
    let index = Index::build(listed);
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut draw = Draw(seed.max(1));
    let all = [Source::Sdn, Source::Tecs];
    let (mut found, mut asked) = (0usize, 0usize);
    let mut times = Vec::with_capacity(noisy_count);
    for _ in 0..noisy_count.min(primaries.len() * 10) {
        let (row, name) = &primaries[draw.next(primaries.len())];
        let query = Query {
            name: noisy(name, &mut draw),
            ..Query::default()
        };
        let t = Instant::now();
        let hits = index.search(&query, &all, THRESHOLD, 10);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        asked += 1;
        let best = hits.first().map_or(0.0, |h| h.score);
        // The same name listed twice (an alias of another entry) ties: either counts.
        if hits
            .iter()
            .take_while(|h| (h.score - best).abs() < 1e-9)
            .any(|h| h.row_id == *row)
        {
            found += 1;
        }
    }
    let innocent = 3000;
    let mut flagged = 0usize;
    for _ in 0..innocent {
        let name = format!(
            "{} {}",
            GIVEN[draw.next(GIVEN.len())],
            FAMILY[draw.next(FAMILY.len())]
        );
        let query = Query {
            name,
            ..Query::default()
        };
        if !index.search(&query, &all, 0.85, 1).is_empty() {
            flagged += 1;
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    ListReport {
        entries: index.len(),
        names: index.names(),
        build_ms,
        noisy: asked,
        found_first: found as f64 / asked.max(1) as f64,
        innocent,
        innocent_flagged: flagged as f64 / innocent as f64,
        median_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screening::score::Facts;

    #[test]
    fn noisy_spellings_are_reproducible_and_differ_from_the_name() {
        let (mut a, mut b) = (Draw(7), Draw(7));
        let name = "AL ZAWAHIRI, Ayman";
        assert_eq!(noisy(name, &mut a), noisy(name, &mut b));
        let mut d = Draw(3);
        assert!((0..20).any(|_| noisy(name, &mut d) != "AL ZAWAHIRI Ayman"));
    }

    #[test]
    fn a_small_list_is_checked() {
        let listed = [
            "AL ZAWAHIRI, Ayman",
            "BANCO NACIONAL DE CUBA",
            "PETROV, Aleksandr",
        ]
        .iter()
        .enumerate()
        .map(|(i, n)| Listed {
            source: Source::Sdn,
            row_id: i64::try_from(i).unwrap(),
            kind: None,
            names: vec![(*n).to_owned()],
            facts: Facts::default(),
        })
        .collect();
        let r = check(listed, 42, 30);
        assert_eq!(r.entries, 3);
        assert!(r.found_first > 0.9, "{r:?}");
        assert!(r.innocent_flagged < 0.01, "{r:?}");
    }
}
