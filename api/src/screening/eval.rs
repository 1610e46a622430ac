//! `dartts eval screening`: precision, recall and F1 of the name scorer on labelled pairs in
//! nomenklatura's `cases.csv` layout, beside a reference run in the `logicv2-frozen.csv` layout
//! (its `predicted_match` for the same pairs).

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;

use super::normalize::Name;
use super::score::{THRESHOLD, compare};

/// One labelled pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name1: String,
    pub name2: String,
    pub is_match: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub pairs: usize,
}

impl Figures {
    /// From (predicted, actual) outcomes.
    pub fn of(outcomes: impl IntoIterator<Item = (bool, bool)>) -> Figures {
        let (mut tp, mut fp, mut fneg, mut pairs) = (0u32, 0u32, 0u32, 0usize);
        for (predicted, actual) in outcomes {
            pairs += 1;
            match (predicted, actual) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                (false, false) => {}
            }
        }
        let ratio = |a: u32, b: u32| {
            if b == 0 {
                0.0
            } else {
                f64::from(a) / f64::from(b)
            }
        };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fneg);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Figures {
            precision,
            recall,
            f1,
            pairs,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub threshold: f64,
    pub pairs: usize,
    /// The reference's figures and ours on the pairs both files hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Figures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ours_on_reference_pairs: Option<Figures>,
}

fn column(headers: &csv::StringRecord, name: &str) -> Result<usize, String> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| format!("no `{name}` column"))
}

fn truth(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("`{other}` is not true or false")),
    }
}

/// Reads `cases.csv`: `name1`, `name2`, `is_match` (other columns ignored).
pub fn read_cases(input: impl Read) -> Result<Vec<Case>, String> {
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let (a, b, m) = (
        column(&headers, "name1")?,
        column(&headers, "name2")?,
        column(&headers, "is_match")?,
    );
    let mut out = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("record {}: {e}", line + 1))?;
        out.push(Case {
            name1: record.get(a).unwrap_or_default().to_owned(),
            name2: record.get(b).unwrap_or_default().to_owned(),
            is_match: truth(record.get(m).unwrap_or_default())
                .map_err(|e| format!("record {}: {e}", line + 1))?,
        });
    }
    Ok(out)
}

/// Reads a reference run: the pairs with the reference's `predicted_match`.
pub fn read_reference(input: impl Read) -> Result<HashMap<(String, String), bool>, String> {
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let (a, b, p) = (
        column(&headers, "name1")?,
        column(&headers, "name2")?,
        column(&headers, "predicted_match")?,
    );
    let mut out = HashMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("record {}: {e}", line + 1))?;
        out.insert(
            (
                record.get(a).unwrap_or_default().to_owned(),
                record.get(b).unwrap_or_default().to_owned(),
            ),
            truth(record.get(p).unwrap_or_default())
                .map_err(|e| format!("record {}: {e}", line + 1))?,
        );
    }
    Ok(out)
}

/// Scores every case at the shipped threshold, and the reference on the pairs it holds.
pub fn evaluate(cases: &[Case], reference: Option<&HashMap<(String, String), bool>>) -> Report {
    let predicted: Vec<bool> = cases
        .iter()
        .map(|c| compare(&Name::parse(&c.name1), &Name::parse(&c.name2)).score >= THRESHOLD)
        .collect();
    let ours = Figures::of(predicted.iter().zip(cases).map(|(p, c)| (*p, c.is_match)));
    let (reference, ours_on_reference_pairs) = match reference {
        None => (None, None),
        Some(r) => {
            let both: Vec<(bool, bool, bool)> = cases
                .iter()
                .zip(&predicted)
                .filter_map(|(c, p)| {
                    r.get(&(c.name1.clone(), c.name2.clone()))
                        .map(|theirs| (*p, *theirs, c.is_match))
                })
                .collect();
            (
                Some(Figures::of(both.iter().map(|(_, t, m)| (*t, *m)))),
                Some(Figures::of(both.iter().map(|(p, _, m)| (*p, *m)))),
            )
        }
    };
    Report {
        precision: ours.precision,
        recall: ours.recall,
        f1: ours.f1,
        threshold: THRESHOLD,
        pairs: ours.pairs,
        reference,
        ours_on_reference_pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_from_outcomes() {
        let f = Figures::of([(true, true), (true, false), (false, true), (false, false)]);
        assert_eq!((f.precision, f.recall, f.f1, f.pairs), (0.5, 0.5, 0.5, 4));
        assert_eq!(Figures::of([]).f1, 0.0);
    }

    #[test]
    fn reads_both_layouts_and_compares_on_shared_pairs() {
        let cases = read_cases(
            "case_group,schema,name1,name2,is_match\n\
             g,Person,Olaf Scholze,Olaf Scholz,true\n\
             g,Person,Octavian Scholz,Olaf Scholz,false\n"
                .as_bytes(),
        )
        .unwrap();
        let reference = read_reference(
            "name1,name2,is_match,score,predicted_match\n\
             Olaf Scholze,Olaf Scholz,true,0.9,true\n"
                .as_bytes(),
        )
        .unwrap();
        let report = evaluate(&cases, Some(&reference));
        assert_eq!(report.f1, 1.0);
        assert_eq!(report.reference.unwrap().pairs, 1);
        assert!(read_cases("name1,name2\na,b\n".as_bytes()).is_err());
    }
}
