//! `dartts eval anomalies --truth FILE`: precision, recall and F1 of the detectors on the
//! loaded database (the same flags the API serves) against a ground-truth file
//! (`declaration_id,line_number,anomaly_type`), beside simple baselines.
//!
//! Price kinds (`PRICE…`) are scored strictly. For the other kinds a flagged record whose
//! truth is a *different* injected anomaly is neither a true nor a false positive: a value
//! rounded or a price inflated also moves the value per kg, and a Benford importer's other
//! anomalies are that importer's rows too.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sea_orm::{Condition, DatabaseConnection};

use super::anomalies::{self, Options};
use super::peers::{Measure, Method, Rule, Side};
use super::red_flags::{self, Thresholds};

type Key = (String, i32);

/// Counts for one detector and kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Score {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

impl Score {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Scores `flagged` against the truth rows of `kind` (`matches` decides which truth labels
/// belong to it); with `lenient`, records labelled with another kind are not counted.
pub fn score(
    truth: &HashMap<Key, String>,
    flagged: &HashSet<Key>,
    matches: impl Fn(&str) -> bool,
    lenient: bool,
) -> Score {
    let mut s = Score::default();
    for key in flagged {
        match truth.get(key) {
            Some(label) if matches(label) => s.tp += 1,
            Some(_) if lenient => {}
            _ => s.fp += 1,
        }
    }
    s.fn_ = truth
        .iter()
        .filter(|(key, label)| matches(label) && !flagged.contains(*key))
        .count() as u64;
    s
}

pub fn read_truth(path: &Path) -> Result<HashMap<Key, String>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut truth = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        let line = record
            .get(1)
            .and_then(|l| l.trim().parse::<i32>().ok())
            .ok_or_else(|| format!("{} row {}: bad line_number", path.display(), i + 2))?;
        let (Some(id), Some(kind)) = (record.get(0), record.get(2)) else {
            return Err(format!(
                "{} row {}: expected 3 columns",
                path.display(),
                i + 2
            ));
        };
        truth.insert(
            (id.trim().to_owned(), line),
            kind.trim().to_ascii_uppercase(),
        );
    }
    Ok(truth)
}

/// One printed line: kind, detector, its counts.
#[derive(Clone, Debug)]
pub struct Line {
    pub kind: &'static str,
    pub detector: String,
    pub truth: u64,
    pub score: Score,
}

async fn price_keys(
    db: &DatabaseConnection,
    options: &Options,
) -> Result<Vec<(Key, Side)>, String> {
    Ok(anomalies::flagged_keys(db, Condition::all(), options)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(id, line, side)| ((id, line), side))
        .collect())
}

/// Every detector on the loaded database against `truth`.
pub async fn run(
    db: &DatabaseConnection,
    truth: &HashMap<Key, String>,
    options: &Options,
) -> Result<Vec<Line>, String> {
    let count = |m: &dyn Fn(&str) -> bool| truth.values().filter(|l| m(l)).count() as u64;
    let is_price = |l: &str| l.starts_with("PRICE");
    let mut lines = Vec::new();
    let baselines = [
        (
            "quartile filter (outside [Q1, Q3])".to_owned(),
            Rule {
                method: Method::Iqr,
                k: 0.0,
                min_peers: 2,
                min_ratio: 1.0,
            },
        ),
        (
            "Tukey IQR k=3 on log price".to_owned(),
            Rule {
                method: Method::Iqr,
                k: 3.0,
                min_peers: 2,
                min_ratio: 1.0,
            },
        ),
    ];
    let ours = format!(
        "DARTTS ({:?} k={} minPeers={} minRatio={}{})",
        options.rule.method,
        options.rule.k,
        options.rule.min_peers,
        options.rule.min_ratio,
        if options.same_origin {
            ", same origin"
        } else {
            ""
        }
    );
    let mut detectors = vec![(ours, options.rule)];
    detectors.extend(baselines);
    for (name, rule) in detectors {
        let o = Options {
            measure: Measure::UnitPrice,
            rule,
            same_origin: options.same_origin && name.starts_with("DARTTS"),
        };
        let keys = price_keys(db, &o).await?;
        let all: HashSet<Key> = keys.iter().map(|(k, _)| k.clone()).collect();
        lines.push(Line {
            kind: "PRICE",
            detector: name.clone(),
            truth: count(&is_price),
            score: score(truth, &all, is_price, false),
        });
        for (kind, side) in [("PRICE_OVER", Side::Over), ("PRICE_UNDER", Side::Under)] {
            let set: HashSet<Key> = keys
                .iter()
                .filter(|(_, s)| *s == side)
                .map(|(k, _)| k.clone())
                .collect();
            lines.push(Line {
                kind,
                detector: name.clone(),
                truth: count(&|l: &str| l == kind),
                score: score(truth, &set, |l| l == kind, false),
            });
        }
    }

    let per_kg = Options {
        measure: Measure::ValuePerKg,
        ..*options
    };
    let set: HashSet<Key> = price_keys(db, &per_kg)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    lines.push(Line {
        kind: "VALUE_PER_KG",
        detector: "DARTTS value per kg".into(),
        truth: count(&|l: &str| l == "VALUE_PER_KG"),
        score: score(truth, &set, |l| l == "VALUE_PER_KG", true),
    });

    let t = Thresholds::default();
    let e = |e: sea_orm::DbErr| e.to_string();
    let benford = red_flags::benford(db, Condition::all(), &t)
        .await
        .map_err(e)?;
    let benford_importers: Vec<String> = benford.into_iter().map(|b| b.importer).collect();
    let benford_rows = red_flags::importers(benford_importers);
    for (kind, condition) in [
        ("ROUND_VALUE", red_flags::round_value(&t)),
        ("TRANSSHIPMENT", red_flags::transshipment(&t)),
        (
            "NEW_CHAPTER",
            red_flags::new_chapter_records(Condition::all(), None, &t, db.get_database_backend()),
        ),
        ("BENFORD", benford_rows),
    ] {
        let set: HashSet<Key> = red_flags::record_keys(db, condition)
            .await
            .map_err(e)?
            .into_iter()
            .collect();
        lines.push(Line {
            kind,
            detector: "DARTTS red flag".into(),
            truth: count(&|l: &str| l == kind),
            score: score(truth, &set, |l| l == kind, true),
        });
    }
    Ok(lines)
}

/// The report as a fixed-width table.
pub fn render(lines: &[Line]) -> String {
    let mut out = format!(
        "{:<14} {:<48} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>7}\n",
        "kind", "detector", "truth", "TP", "FP", "FN", "precision", "recall", "F1"
    );
    for l in lines {
        out.push_str(&format!(
            "{:<14} {:<48} {:>8} {:>8} {:>8} {:>8} {:>9.4} {:>7.4} {:>7.4}\n",
            l.kind,
            l.detector,
            l.truth,
            l.score.tp,
            l.score.fp,
            l.score.fn_,
            l.score.precision(),
            l.score.recall(),
            l.score.f1()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_count_strictly_or_leniently() {
        let truth: HashMap<Key, String> = [
            (("A".into(), 1), "PRICE_OVER".into()),
            (("B".into(), 1), "PRICE_UNDER".into()),
            (("C".into(), 1), "ROUND_VALUE".into()),
        ]
        .into_iter()
        .collect();
        let flagged: HashSet<Key> = [("A".into(), 1), ("C".into(), 1), ("D".into(), 1)]
            .into_iter()
            .collect();
        let strict = score(&truth, &flagged, |l| l.starts_with("PRICE"), false);
        assert_eq!(
            strict,
            Score {
                tp: 1,
                fp: 2,
                fn_: 1
            }
        );
        let lenient = score(&truth, &flagged, |l| l.starts_with("PRICE"), true);
        assert_eq!(
            lenient,
            Score {
                tp: 1,
                fp: 1,
                fn_: 1
            }
        );
        assert!((strict.precision() - 1.0 / 3.0).abs() < 1e-12);
        assert!((strict.recall() - 0.5).abs() < 1e-12);
        assert!((strict.f1() - 0.4).abs() < 1e-12);
        assert_eq!(Score::default().f1(), 0.0);
    }
}
