//! Peer groups and price flags: which records are priced abnormally against their peers, and
//! the numbers that say so.
//!
//! A record's peers share its HS code, quantity unit and year (optionally its country of
//! origin). Prices are compared on the log scale, where the multiplicative spread of prices is
//! symmetric: a record 3× above its peers' median is as far out as one at a third of it. A
//! fence is either Tukey's (`[Q1 − k·IQR, Q3 + k·IQR]`) or a robust z-fence
//! (`median ± k · 1.4826 · MAD`); a record is flagged when it lies outside the fence, its price
//! is at least `min_ratio` times (or at most `1/min_ratio` of) the median — so that a tight
//! group cannot make a 10 % difference an "anomaly" — and the group has `min_peers` members.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use super::stats::{IQR_IN_SIGMAS, MAD_TO_SIGMA, Summary};

/// The smallest robust spread (log scale, i.e. about 1 %) a score is divided by: a group of
/// identical prices would otherwise make every deviation infinitely anomalous.
pub const MIN_SIGMA: f64 = 0.01;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// USD per unit of the declared quantity unit.
    UnitPrice,
    /// USD per kg of net weight.
    ValuePerKg,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::UnitPrice => "UNIT_PRICE",
            Measure::ValuePerKg => "VALUE_PER_KG",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Tukey's fences on the log price: `[Q1 − k·IQR, Q3 + k·IQR]`.
    Iqr,
    /// `median ± k·σ`, σ = 1.4826 · MAD of the log price.
    Mad,
}

/// How records are judged against their peers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    pub method: Method,
    pub k: f64,
    pub min_peers: u64,
    /// Price over median (or median over price) must reach this.
    pub min_ratio: f64,
}

impl Default for Rule {
    /// Documented in the schema (`PriceAnomalyOptions`).
    fn default() -> Self {
        Rule {
            method: Method::Mad,
            k: DEFAULT_K,
            min_peers: DEFAULT_MIN_PEERS,
            min_ratio: DEFAULT_MIN_RATIO,
        }
    }
}

pub const DEFAULT_K: f64 = 4.0;
pub const DEFAULT_MIN_PEERS: u64 = 10;
/// The smallest `minPeers` a caller may ask for: a group of one has no peers to be judged
/// against, so its profile is never computed nor stored (most groups by origin are that small:
/// three quarters of the profiles of 200,000 generated rows were, and writing them was most of
/// a load's profile refresh).
pub const LEAST_MIN_PEERS: u64 = 2;
pub const DEFAULT_MIN_RATIO: f64 = 2.0;
/// The smallest k above 0 a caller may ask for (`Rule::validate`).
pub const LEAST_K: f64 = 1e-6;

impl Rule {
    /// Checks values a caller may set; the message names the option.
    pub fn validate(&self) -> Result<(), String> {
        // A k that is not 0 but tinier than any meaningful fence width multiplies the spread
        // into a subnormal float, which PostgreSQL refuses as an underflow (SQLite and Rust
        // round it to 0): the same question would answer on one backend and fail on the other.
        if !(self.k == 0.0 || (self.k.is_finite() && (LEAST_K..=50.0).contains(&self.k))) {
            return Err(format!("k must be 0 or between {LEAST_K} and 50"));
        }
        if !(self.min_ratio.is_finite() && (1.0..=1e6).contains(&self.min_ratio)) {
            return Err("minRatio must be between 1 and 1000000".into());
        }
        if self.min_peers < LEAST_MIN_PEERS {
            return Err(format!("minPeers must be at least {LEAST_MIN_PEERS}"));
        }
        Ok(())
    }
}

/// A group's statistics on the log scale, as stored in `peer_profiles`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub peer_count: u64,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub mad: f64,
}

impl From<Summary> for Profile {
    fn from(s: Summary) -> Self {
        Profile {
            peer_count: s.count as u64,
            median: s.median,
            q1: s.q1,
            q3: s.q3,
            mad: s.mad,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Over,
    Under,
}

/// Why one record was flagged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finding {
    pub side: Side,
    /// Lower and upper fence, in USD per unit (not logarithms).
    pub lower: f64,
    pub upper: f64,
    /// Peer median in USD per unit.
    pub median: f64,
    /// Price over the peer median.
    pub ratio: f64,
    /// Distance from the median in robust standard deviations.
    pub score: f64,
}

impl Finding {
    /// The implied value moved across the border (Pak & Zdanowicz): the part of the price
    /// beyond the fence times the quantity; positive over the upper fence, negative under
    /// the lower one.
    pub fn value_moved(&self, price: f64, quantity: f64) -> f64 {
        match self.side {
            Side::Over => (price - self.upper) * quantity,
            Side::Under => (price - self.lower) * quantity,
        }
    }
}

impl Profile {
    /// The robust spread on the log scale, per method, floored at `MIN_SIGMA`.
    pub fn sigma(&self, method: Method) -> f64 {
        let s = match method {
            Method::Iqr => (self.q3 - self.q1) / IQR_IN_SIGMAS,
            Method::Mad => self.mad * MAD_TO_SIGMA,
        };
        s.max(MIN_SIGMA)
    }

    /// Lower and upper fence on the log scale.
    pub fn fences(&self, rule: &Rule) -> (f64, f64) {
        match rule.method {
            Method::Iqr => {
                let iqr = (self.q3 - self.q1).max(MIN_SIGMA * IQR_IN_SIGMAS);
                (self.q1 - rule.k * iqr, self.q3 + rule.k * iqr)
            }
            Method::Mad => {
                let s = self.sigma(Method::Mad);
                (self.median - rule.k * s, self.median + rule.k * s)
            }
        }
    }

    /// The finding for one record's log price, if the rule flags it.
    pub fn assess(&self, log_value: f64, rule: &Rule) -> Option<Finding> {
        if self.peer_count < rule.min_peers || !log_value.is_finite() {
            return None;
        }
        let (lower, upper) = self.fences(rule);
        let deviation = log_value - self.median;
        let side = if log_value > upper {
            Side::Over
        } else if log_value < lower {
            Side::Under
        } else {
            return None;
        };
        if deviation.abs() < rule.min_ratio.ln() {
            return None;
        }
        Some(Finding {
            side,
            lower: lower.exp(),
            upper: upper.exp(),
            median: self.median.exp(),
            ratio: deviation.exp(),
            score: deviation.abs() / self.sigma(rule.method),
        })
    }
}

/// The key of one peer group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub measure: Measure,
    pub hs_code: String,
    /// The quantity unit for unit prices; empty for value per kg.
    pub unit: String,
    pub year: i32,
    /// Empty: every origin.
    pub origin: String,
}

/// A `GroupKey` borrowed from a record (`PeerFacts::groups`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupRef<'a> {
    pub measure: Measure,
    pub hs_code: &'a str,
    pub unit: &'a str,
    pub year: i32,
    pub origin: &'a str,
}

impl GroupRef<'_> {
    pub fn to_key(self) -> GroupKey {
        GroupKey {
            measure: self.measure,
            hs_code: self.hs_code.to_owned(),
            unit: self.unit.to_owned(),
            year: self.year,
            origin: self.origin.to_owned(),
        }
    }
}

/// One record's facts, as far as peer groups are concerned.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerFacts {
    pub hs_code: String,
    pub unit: Option<String>,
    pub year: Option<i32>,
    pub origin: Option<String>,
    pub log_unit_price: Option<f64>,
    pub log_value_per_kg: Option<f64>,
}

impl PeerFacts {
    /// The groups this record is a peer in: per measure, all origins and its own origin. The
    /// keys borrow the record's strings: a record is in up to four groups, and grouping a
    /// load's million records by owned keys (three new strings per key) took most of the
    /// profile refresh's CPU.
    pub fn groups(&self) -> Vec<(GroupRef<'_>, f64)> {
        let Some(year) = self.year else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(4);
        let measures = [
            self.unit
                .as_deref()
                .map(|unit| (Measure::UnitPrice, unit, self.log_unit_price)),
            Some((Measure::ValuePerKg, "", self.log_value_per_kg)),
        ];
        for (measure, unit, value) in measures.into_iter().flatten() {
            let Some(v) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            let key = GroupRef {
                measure,
                hs_code: &self.hs_code,
                unit,
                year,
                origin: "",
            };
            if let Some(origin) = &self.origin {
                out.push((GroupRef { origin, ..key }, v));
            }
            out.push((key, v));
        }
        out
    }

    /// The key of this record's group for `measure`, per-origin or not.
    pub fn key(&self, measure: Measure, same_origin: bool) -> Option<GroupKey> {
        let unit = match measure {
            Measure::UnitPrice => self.unit.clone()?,
            Measure::ValuePerKg => String::new(),
        };
        Some(GroupKey {
            measure,
            hs_code: self.hs_code.clone(),
            unit,
            year: self.year?,
            origin: if same_origin {
                self.origin.clone()?
            } else {
                String::new()
            },
        })
    }

    pub fn log_value(&self, measure: Measure) -> Option<f64> {
        match measure {
            Measure::UnitPrice => self.log_unit_price,
            Measure::ValuePerKg => self.log_value_per_kg,
        }
    }
}

/// Profiles of every group the given records are peers in.
pub fn profiles<'a>(
    records: impl IntoIterator<Item = &'a PeerFacts>,
) -> HashMap<GroupKey, Profile> {
    // The keys are the data's HS codes and units, not a caller's: no need for SipHash's
    // resistance to chosen keys, and FxHash is several times cheaper on short strings.
    let mut groups: FxHashMap<GroupRef<'a>, Vec<f64>> = FxHashMap::default();
    for record in records {
        for (key, value) in record.groups() {
            groups.entry(key).or_default().push(value);
        }
    }
    groups
        .into_iter()
        .filter_map(|(key, mut values)| {
            Summary::of(&mut values).map(|s| (key.to_key(), Profile::from(s)))
        })
        .filter(|(_, p)| p.peer_count >= LEAST_MIN_PEERS)
        .collect()
}

/// The logarithms a record is judged on: `ln(value / quantity)`, `ln(value / kg)` when both
/// are positive and finite.
pub fn log_ratio(value_usd: f64, per: Option<f64>) -> Option<f64> {
    let per = per?;
    (value_usd > 0.0 && per > 0.0 && value_usd.is_finite() && per.is_finite())
        .then(|| (value_usd / per).ln())
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn profile(values: &[f64]) -> Profile {
        let mut logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
        Profile::from(Summary::of(&mut logs).unwrap())
    }

    fn iqr(k: f64) -> Rule {
        Rule {
            method: Method::Iqr,
            k,
            min_peers: 3,
            min_ratio: 1.0,
        }
    }

    #[test]
    fn a_price_far_above_its_peers_is_flagged_with_its_numbers() {
        // Ten peers around 100 USD, one at 1,000.
        let prices = [
            90.0, 95.0, 98.0, 100.0, 100.0, 100.0, 102.0, 105.0, 110.0, 1_000.0,
        ];
        let p = profile(&prices);
        let f = p.assess(1_000f64.ln(), &Rule::default()).unwrap();
        assert_eq!(f.side, Side::Over);
        assert!((f.median - 100.0).abs() < 1e-9);
        assert!((f.ratio - 10.0).abs() < 1e-9);
        assert!(f.upper < 1_000.0 && f.upper > 100.0);
        assert!(f.score > DEFAULT_K);
        let moved = f.value_moved(1_000.0, 5.0);
        assert!((moved - (1_000.0 - f.upper) * 5.0).abs() < 1e-9 && moved > 0.0);
        for normal in &prices[..9] {
            assert_eq!(p.assess(normal.ln(), &Rule::default()), None, "{normal}");
        }
    }

    #[test]
    fn tukey_fences_on_known_quartiles() {
        // ln-quartiles of e^1..e^4 are 1.75 and 3.25 (type 7): IQR 1.5, k = 1 → [0.25, 4.75].
        let p = profile(&[1f64.exp(), 2f64.exp(), 3f64.exp(), 4f64.exp()]);
        let (lo, hi) = p.fences(&iqr(1.0));
        assert!((lo - 0.25).abs() < 1e-12 && (hi - 4.75).abs() < 1e-12);
        assert_eq!(p.assess(4.7, &iqr(1.0)), None);
        assert_eq!(p.assess(4.8, &iqr(1.0)).unwrap().side, Side::Over);
        assert_eq!(p.assess(0.2, &iqr(1.0)).unwrap().side, Side::Under);
    }

    #[test]
    fn min_peers_and_min_ratio_hold_back_weak_evidence() {
        let p = profile(&[100.0, 100.0, 100.0, 100.0]);
        let strict = Rule {
            min_peers: 5,
            ..Rule::default()
        };
        assert_eq!(p.assess(1_000f64.ln(), &strict), None);
        // A tight group: 1.5× is many sigmas out but under the ratio.
        let tight = Rule {
            min_peers: 2,
            ..Rule::default()
        };
        assert_eq!(p.assess(150f64.ln(), &tight), None);
        let found = p.assess(30f64.ln(), &tight).unwrap();
        assert_eq!(found.side, Side::Under);
        assert!(found.value_moved(30.0, 2.0) < 0.0);
    }

    #[test]
    fn invalid_options_are_named() {
        assert!(
            Rule {
                k: -1.0,
                ..Rule::default()
            }
            .validate()
            .unwrap_err()
            .contains("k")
        );
        assert!(
            Rule {
                min_ratio: 0.5,
                ..Rule::default()
            }
            .validate()
            .unwrap_err()
            .contains("minRatio")
        );
        assert!(
            Rule {
                min_peers: 1,
                ..Rule::default()
            }
            .validate()
            .unwrap_err()
            .contains("minPeers")
        );
        assert_eq!(Rule::default().validate(), Ok(()));
        // A subnormal k underflowed on PostgreSQL: refused on every backend alike.
        for (k, valid) in [(5e-324, false), (1e-7, false), (0.0, true), (LEAST_K, true)] {
            let rule = Rule {
                k,
                ..Rule::default()
            };
            assert_eq!(rule.validate().is_ok(), valid, "k = {k}");
        }
    }

    #[test]
    fn records_are_peers_in_their_groups() {
        let r = PeerFacts {
            hs_code: "847130".into(),
            unit: Some("NO".into()),
            year: Some(2024),
            origin: Some("CN".into()),
            log_unit_price: Some(1.0),
            log_value_per_kg: None,
        };
        let groups = r.groups();
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().any(|(k, _)| k.origin == "CN"));
        assert_eq!(r.key(Measure::UnitPrice, false).unwrap().origin, "");
        assert_eq!(r.key(Measure::ValuePerKg, false).unwrap().unit, "");
        let all = profiles([&r, &r]);
        assert_eq!(all.len(), 2);
        assert!(all.values().all(|p| p.peer_count == 2));
        // Alone in its groups: no peers, no profile.
        assert!(profiles([&r]).is_empty());
        assert_eq!(log_ratio(100.0, Some(4.0)), Some(25f64.ln()));
        assert_eq!(log_ratio(100.0, Some(0.0)), None);
        assert_eq!(log_ratio(0.0, Some(1.0)), None);
    }

    proptest! {
        #[test]
        fn flags_are_symmetric_on_the_log_scale(
            base in prop::collection::vec(50.0f64..200.0, 20..60),
            factor in 1.0f64..50.0,
        ) {
            let p = profile(&base);
            let rule = Rule { min_peers: 2, ..Rule::default() };
            let m = p.median;
            let over = p.assess(m + factor.ln(), &rule);
            let under = p.assess(m - factor.ln(), &rule);
            prop_assert_eq!(over.is_some(), under.is_some());
            if let (Some(o), Some(u)) = (over, under) {
                prop_assert_eq!(o.side, Side::Over);
                prop_assert_eq!(u.side, Side::Under);
                prop_assert!((o.score - u.score).abs() < 1e-9);
                prop_assert!(o.ratio >= rule.min_ratio - 1e-9);
            }
        }

        #[test]
        fn nothing_inside_the_fences_is_flagged(
            base in prop::collection::vec(1.0f64..1e4, 10..80),
            k in 0.5f64..6.0,
        ) {
            let p = profile(&base);
            let rule = Rule { method: Method::Iqr, k, min_peers: 2, min_ratio: 1.0 };
            let (lo, hi) = p.fences(&rule);
            prop_assert!(p.assess((lo + hi) / 2.0, &rule).is_none());
            prop_assert!(lo <= p.q1 && p.q3 <= hi);
        }
    }
}
