//! The implied value moved by price anomalies, summed by group (Pak & Zdanowicz): what
//! `valueMovedTotals` answers. `anomalies::value_moved` feeds each flagged record in here as it
//! is read, so a total over every anomaly of a large filter holds one entry per group, never the
//! records themselves.

use std::collections::BTreeMap;

use super::peers::{Finding, Side};

/// What the totals are summed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Importer id, else importer name.
    Importer,
    CountryOfOrigin,
    /// The first two digits of the HS code.
    HsChapter,
}

/// The columns of a flagged record a group key is made from.
pub struct KeyColumns<'a> {
    pub importer_id: Option<&'a str>,
    pub importer_name: Option<&'a str>,
    pub country_of_origin: Option<&'a str>,
    pub hs_code: &'a str,
}

impl Group {
    /// The group a record belongs to; empty when the record does not say.
    pub fn key(self, columns: &KeyColumns<'_>) -> String {
        match self {
            Group::Importer => columns
                .importer_id
                .or(columns.importer_name)
                .unwrap_or_default()
                .to_owned(),
            Group::CountryOfOrigin => columns.country_of_origin.unwrap_or_default().to_owned(),
            Group::HsChapter => columns.hs_code.chars().take(2).collect(),
        }
    }
}

/// The implied value moved by the anomalies of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupTotal {
    pub key: String,
    pub anomalies: i64,
    /// Over-invoicing minus under-invoicing.
    pub value_moved: f64,
    pub over_invoiced: f64,
    /// Under-invoicing, as a positive amount.
    pub under_invoiced: f64,
}

/// Sums findings by group key.
#[derive(Default)]
pub struct Totals {
    by: BTreeMap<String, GroupTotal>,
}

impl Totals {
    /// Adds one flagged record: its group key, its finding, and the price and amount (quantity
    /// or kg) the finding was made on.
    pub fn add(&mut self, key: String, finding: &Finding, price: f64, amount: f64) {
        let moved = finding.value_moved(price, amount);
        let t = self.by.entry(key).or_insert_with_key(|key| GroupTotal {
            key: key.clone(),
            anomalies: 0,
            value_moved: 0.0,
            over_invoiced: 0.0,
            under_invoiced: 0.0,
        });
        t.anomalies += 1;
        t.value_moved += moved;
        match finding.side {
            Side::Over => t.over_invoiced += moved,
            Side::Under => t.under_invoiced -= moved,
        }
    }

    /// The groups, largest gross amount (over + under) first, then by key.
    pub fn finish(self) -> Vec<GroupTotal> {
        let mut out: Vec<GroupTotal> = self.by.into_values().collect();
        out.sort_by(|a, b| {
            (b.over_invoiced + b.under_invoiced)
                .total_cmp(&(a.over_invoiced + a.under_invoiced))
                .then_with(|| a.key.cmp(&b.key))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(side: Side, bound: f64) -> Finding {
        Finding {
            side,
            lower: bound,
            upper: bound,
            median: 1.0,
            ratio: 1.0,
            score: 1.0,
        }
    }

    fn importer(name: &str) -> String {
        Group::Importer.key(&KeyColumns {
            importer_id: None,
            importer_name: Some(name),
            country_of_origin: Some("CN"),
            hs_code: "847130",
        })
    }

    #[test]
    fn totals_sum_value_moved_by_group() {
        let mut totals = Totals::default();
        totals.add(importer("A"), &finding(Side::Over, 200.0), 300.0, 2.0);
        totals.add(importer("A"), &finding(Side::Under, 50.0), 10.0, 1.0);
        totals.add(importer("B"), &finding(Side::Over, 200.0), 1_000.0, 1.0);
        let t = totals.finish();
        assert_eq!(t[0].key, "B");
        assert_eq!(t[0].over_invoiced, 800.0);
        assert_eq!(t[1].key, "A");
        assert_eq!(t[1].anomalies, 2);
        assert_eq!(t[1].over_invoiced, 200.0);
        assert_eq!(t[1].under_invoiced, 40.0);
        assert_eq!(t[1].value_moved, 160.0);
    }

    #[test]
    fn keys_fall_back_and_chapters_are_two_digits() {
        let columns = KeyColumns {
            importer_id: Some("ID-7"),
            importer_name: Some("Seven"),
            country_of_origin: None,
            hs_code: "847130",
        };
        assert_eq!(Group::Importer.key(&columns), "ID-7");
        assert_eq!(Group::CountryOfOrigin.key(&columns), "");
        assert_eq!(Group::HsChapter.key(&columns), "84");
        let unnamed = KeyColumns {
            importer_id: None,
            importer_name: None,
            ..columns
        };
        assert_eq!(Group::Importer.key(&unnamed), "");
    }
}
