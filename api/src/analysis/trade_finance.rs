//! Trade against money: per entity over a window, what FinCEN reports say moved (payments,
//! cash) against the value of the goods the same entity declared, and structuring — cash
//! amounts kept just under the $10,000 Currency Transaction Report threshold, repeated within
//! days (31 U.S.C. 5324).
//!
//! An entity is a report subject: its TIN when the report has one, else its exact name. It is
//! matched to trade records the way `TradeRecord.linkedFinancialTransactions` matches
//! (`graphql::financial::subject_matches_importer`): the importer id equals the TIN, or the
//! record has no importer id and its importer name equals one of the subject's names.
//!
//! Defaults (each settable per query, `Thresholds`): reported money counts as a mismatch when
//! it is at least $10,000 and more than 1.5 × the declared import value (an importer's
//! payments for goods should be of the order of the goods' value; money with no declared
//! trade at all is the strongest case). Structuring: at least 3 cash transactions of
//! $9,000–$9,999.99 each within 7 days of the previous one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

/// The thresholds one query applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Reported money / declared value above which an entity is listed.
    pub min_ratio: f64,
    /// Reported money below this is never listed on the ratio alone.
    pub min_reported_usd: f64,
    /// The CTR threshold cash stays under.
    pub ctr_threshold_usd: f64,
    /// How far under the threshold counts as "just under".
    pub margin_usd: f64,
    /// Near-threshold cash transactions that make an episode.
    pub min_count: usize,
    /// Most days between one near-threshold transaction and the next in an episode.
    pub window_days: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_ratio: 1.5,
            min_reported_usd: 10_000.0,
            ctr_threshold_usd: 10_000.0,
            margin_usd: 1_000.0,
            min_count: 3,
            window_days: 7,
        }
    }
}

impl Thresholds {
    pub fn check(&self) -> Result<(), String> {
        let finite = [
            self.min_ratio,
            self.min_reported_usd,
            self.ctr_threshold_usd,
            self.margin_usd,
        ];
        if finite.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err("thresholds must be finite, non-negative numbers".into());
        }
        if self.margin_usd > self.ctr_threshold_usd {
            return Err("marginUsd cannot exceed ctrThresholdUsd".into());
        }
        if !(2..=100).contains(&self.min_count) {
            return Err("structuringMinCount must be between 2 and 100".into());
        }
        if !(1..=366).contains(&self.window_days) {
            return Err("structuringWindowDays must be between 1 and 366".into());
        }
        Ok(())
    }

    /// The lowest amount that is "just under" the threshold.
    pub fn band_floor(&self) -> f64 {
        self.ctr_threshold_usd - self.margin_usd
    }
}

/// Reported money of one (TIN, name) as the database groups it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedSums {
    pub tin: Option<String>,
    pub name: String,
    pub total_usd: f64,
    pub cash_in_usd: f64,
    pub cash_out_usd: f64,
    pub report_count: i64,
}

/// One cash transaction in the near-threshold band.
#[derive(Clone, Debug, PartialEq)]
pub struct CashTransaction {
    pub tin: Option<String>,
    pub name: String,
    pub date: NaiveDate,
    pub amount_usd: f64,
    pub report_id: String,
}

/// Declared import value and lines of matching trade records, by importer id (records with an
/// id) and by importer name (records without one).
#[derive(Clone, Debug, Default)]
pub struct Declared {
    pub by_id: HashMap<String, (f64, i64)>,
    pub by_name: HashMap<String, (f64, i64)>,
}

/// A run of near-threshold cash transactions, each within the window of the previous one.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    pub count: usize,
    pub total_usd: f64,
    pub report_ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Reported money exceeds the declared value by more than the ratio (or nothing declared).
    ReportedExceedsDeclared,
    /// At least one structuring episode.
    Structuring,
}

/// One entity whose money does not fit its trade, with the figures that show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub tin: Option<String>,
    /// Every subject name the entity's reports carry, sorted.
    pub names: Vec<String>,
    pub reported_usd: f64,
    pub cash_in_usd: f64,
    pub cash_out_usd: f64,
    pub report_count: i64,
    pub declared_usd: f64,
    pub declared_records: i64,
    /// Reported / declared; absent when nothing was declared.
    pub ratio: Option<f64>,
    pub episodes: Vec<Episode>,
    pub reasons: Vec<Reason>,
}

/// The entity a report subject belongs to: its TIN, else its exact name.
fn entity_key(tin: Option<&str>, name: &str) -> (bool, String) {
    match tin {
        Some(t) if !t.is_empty() => (true, t.to_owned()),
        _ => (false, name.to_owned()),
    }
}

/// Groups near-threshold cash transactions (sorted here by date) into episodes: a transaction
/// within `window_days` of the previous one continues the episode. Episodes shorter than
/// `min_count` are dropped.
pub fn episodes(mut cash: Vec<CashTransaction>, thresholds: &Thresholds) -> Vec<Episode> {
    cash.retain(|c| {
        c.amount_usd >= thresholds.band_floor() && c.amount_usd < thresholds.ctr_threshold_usd
    });
    cash.sort_by(|a, b| a.date.cmp(&b.date).then(a.report_id.cmp(&b.report_id)));
    let mut out = Vec::new();
    let mut run: Vec<CashTransaction> = Vec::new();
    let close = |run: &mut Vec<CashTransaction>, out: &mut Vec<Episode>| {
        if run.len() >= thresholds.min_count
            && let (Some(first), Some(last)) = (run.first(), run.last())
        {
            out.push(Episode {
                first_date: first.date,
                last_date: last.date,
                count: run.len(),
                total_usd: run.iter().map(|c| c.amount_usd).sum(),
                report_ids: run.iter().map(|c| c.report_id.clone()).collect(),
            });
        }
        run.clear();
    };
    for c in cash {
        if let Some(prev) = run.last()
            && (c.date - prev.date).num_days() > thresholds.window_days
        {
            close(&mut run, &mut out);
        }
        run.push(c);
    }
    close(&mut run, &mut out);
    out
}

/// Entities listed for at least one reason, in no particular order: `graphql::trade_finance`
/// orders them by its cursor keys (the largest excess of reported over declared money first,
/// then by TIN with entities known only by name last, then by name), so the served order and
/// the cursors are one definition.
pub fn mismatches(
    mut reported: Vec<ReportedSums>,
    cash: Vec<CashTransaction>,
    declared: &Declared,
    thresholds: &Thresholds,
) -> Vec<Mismatch> {
    // One entity's sums are added in one order, whatever order the database gave them in, so
    // its excess (a page's position) is the same number on the next page's request.
    reported.sort_by(|a, b| (&a.tin, &a.name).cmp(&(&b.tin, &b.name)));
    let mut entities: BTreeMap<(bool, String), Mismatch> = BTreeMap::new();
    for r in reported {
        let key = entity_key(r.tin.as_deref(), &r.name);
        let m = entities.entry(key).or_insert_with(|| Mismatch {
            tin: r.tin.clone().filter(|t| !t.is_empty()),
            names: Vec::new(),
            reported_usd: 0.0,
            cash_in_usd: 0.0,
            cash_out_usd: 0.0,
            report_count: 0,
            declared_usd: 0.0,
            declared_records: 0,
            ratio: None,
            episodes: Vec::new(),
            reasons: Vec::new(),
        });
        if !m.names.contains(&r.name) {
            m.names.push(r.name);
        }
        m.reported_usd += r.total_usd;
        m.cash_in_usd += r.cash_in_usd;
        m.cash_out_usd += r.cash_out_usd;
        m.report_count += r.report_count;
    }
    let mut cash_by_entity: BTreeMap<(bool, String), Vec<CashTransaction>> = BTreeMap::new();
    for c in cash {
        cash_by_entity
            .entry(entity_key(c.tin.as_deref(), &c.name))
            .or_default()
            .push(c);
    }
    let mut out = Vec::new();
    for (key, mut m) in entities {
        m.names.sort();
        let names: BTreeSet<&String> = m.names.iter().collect();
        let mut add = |hit: Option<&(f64, i64)>| {
            if let Some((value, records)) = hit {
                m.declared_usd += value;
                m.declared_records += records;
            }
        };
        if let Some(tin) = &m.tin {
            add(declared.by_id.get(tin));
        }
        for name in names {
            add(declared.by_name.get(name));
        }
        m.ratio = (m.declared_usd > 0.0).then(|| m.reported_usd / m.declared_usd);
        if m.reported_usd >= thresholds.min_reported_usd
            && m.reported_usd > m.declared_usd * thresholds.min_ratio
        {
            m.reasons.push(Reason::ReportedExceedsDeclared);
        }
        m.episodes = episodes(cash_by_entity.remove(&key).unwrap_or_default(), thresholds);
        if !m.episodes.is_empty() {
            m.reasons.push(Reason::Structuring);
        }
        if !m.reasons.is_empty() {
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn cash(tin: Option<&str>, name: &str, d: u32, amount: f64) -> CashTransaction {
        CashTransaction {
            tin: tin.map(str::to_owned),
            name: name.into(),
            date: day(d),
            amount_usd: amount,
            report_id: format!("R{d:02}"),
        }
    }

    fn sums(tin: Option<&str>, name: &str, total: f64) -> ReportedSums {
        ReportedSums {
            tin: tin.map(str::to_owned),
            name: name.into(),
            total_usd: total,
            cash_in_usd: total,
            cash_out_usd: 0.0,
            report_count: 1,
        }
    }

    #[test]
    fn structuring_is_repeated_cash_just_under_the_threshold_within_days() {
        let t = Thresholds::default();
        let found = episodes(
            vec![
                cash(None, "A", 1, 9_500.0),
                cash(None, "A", 3, 9_800.0),
                cash(None, "A", 9, 9_999.99),
                // 10,000 is reported anyway (a CTR), and 8,999 is not "just under".
                cash(None, "A", 10, 10_000.0),
                cash(None, "A", 11, 8_999.0),
                // Three more, but 20 days after the last: a separate run of one.
                cash(None, "A", 30, 9_100.0),
            ],
            &t,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].count, 3);
        assert_eq!((found[0].first_date, found[0].last_date), (day(1), day(9)));
        assert!((found[0].total_usd - 29_299.99).abs() < 1e-6);
        // A tighter window splits the run; a lower count finds both halves.
        let tight = Thresholds {
            window_days: 2,
            min_count: 2,
            ..t
        };
        assert_eq!(
            episodes(
                vec![
                    cash(None, "A", 1, 9_500.0),
                    cash(None, "A", 3, 9_800.0),
                    cash(None, "A", 9, 9_900.0)
                ],
                &tight
            )
            .len(),
            1
        );
    }

    #[test]
    fn entities_are_matched_to_declarations_like_the_trade_link() {
        let mut declared = Declared::default();
        declared.by_id.insert("98-7654321".into(), (82_000.0, 2));
        declared
            .by_name
            .insert("Blue Harbor Trading".into(), (1_000.0, 1));
        declared.by_name.insert("Acme".into(), (100_000.0, 3));
        let found = mismatches(
            vec![
                sums(Some("98-7654321"), "Blue Harbor Trading", 250_000.0),
                sums(None, "John Q Courier", 48_000.0),
                // Declared value covers the money: not listed.
                sums(None, "Acme", 20_000.0),
            ],
            vec![],
            &declared,
            &Thresholds::default(),
        );
        assert_eq!(found.len(), 2);
        let entity = |name: &str| found.iter().find(|m| m.names == [name]).unwrap();
        let harbor = entity("Blue Harbor Trading");
        assert_eq!(harbor.tin.as_deref(), Some("98-7654321"));
        assert_eq!(harbor.declared_usd, 83_000.0);
        assert_eq!(harbor.declared_records, 3);
        assert!((harbor.ratio.unwrap() - 250_000.0 / 83_000.0).abs() < 1e-9);
        assert_eq!(harbor.reasons, vec![Reason::ReportedExceedsDeclared]);
        assert_eq!(entity("John Q Courier").ratio, None);
    }

    /// One TIN reported under three names: its sums come from the database in any order
    /// (no `ORDER BY`), and float addition is not associative, yet its excess is a page's
    /// position and must be the same number on every request.
    #[test]
    fn an_entitys_sums_do_not_depend_on_the_order_they_arrive_in() {
        let parts = [("A", 0.1), ("B", 1e16), ("C", 1.0)];
        let reported = |order: [usize; 3]| {
            let rows = order
                .iter()
                .map(|&i| sums(Some("55"), parts[i].0, parts[i].1))
                .collect();
            mismatches(rows, vec![], &Declared::default(), &Thresholds::default())[0].reported_usd
        };
        // The orders differ in their last bits when added as given.
        assert_ne!((0.1 + 1.0) + 1e16, (0.1 + 1e16) + 1.0);
        let first = reported([0, 1, 2]);
        for order in [[2, 1, 0], [1, 0, 2], [1, 2, 0], [0, 2, 1], [2, 0, 1]] {
            assert_eq!(reported(order).to_bits(), first.to_bits(), "{order:?}");
        }
    }

    #[test]
    fn structuring_alone_lists_an_entity_whose_totals_fit() {
        let mut declared = Declared::default();
        declared.by_id.insert("55".into(), (1_000_000.0, 2));
        let found = mismatches(
            vec![sums(Some("55"), "Gold", 29_000.0)],
            vec![
                cash(Some("55"), "Gold", 1, 9_600.0),
                cash(Some("55"), "GOLD INC", 2, 9_700.0),
                cash(Some("55"), "Gold", 4, 9_700.0),
            ],
            &declared,
            &Thresholds::default(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].reasons, vec![Reason::Structuring]);
        assert_eq!(found[0].episodes[0].count, 3);
    }

    #[test]
    fn bad_thresholds_are_refused() {
        let t = Thresholds::default();
        assert!(t.check().is_ok());
        assert!(
            Thresholds {
                margin_usd: 20_000.0,
                ..t
            }
            .check()
            .is_err()
        );
        assert!(Thresholds { min_count: 1, ..t }.check().is_err());
        assert!(
            Thresholds {
                min_ratio: f64::NAN,
                ..t
            }
            .check()
            .is_err()
        );
        assert!(
            Thresholds {
                window_days: 0,
                ..t
            }
            .check()
            .is_err()
        );
    }

    proptest! {
        /// Episodes hold only in-band amounts, at least `min_count` each, never more
        /// transactions than went in, and consecutive episodes are more than the window apart.
        #[test]
        fn episodes_are_well_formed(
            txs in proptest::collection::vec((1u32..29, 8_000.0f64..11_000.0), 0..40),
            window in 1i64..10,
            min_count in 2usize..5,
        ) {
            let t = Thresholds { window_days: window, min_count, ..Thresholds::default() };
            let input: Vec<_> = txs.iter().map(|(d, a)| cash(None, "A", *d, *a)).collect();
            let in_band = input.iter().filter(|c| c.amount_usd >= 9_000.0 && c.amount_usd < 10_000.0).count();
            let found = episodes(input, &t);
            prop_assert!(found.iter().map(|e| e.count).sum::<usize>() <= in_band);
            for e in &found {
                prop_assert!(e.count >= min_count);
                prop_assert!(e.total_usd >= 9_000.0 * e.count as f64);
                prop_assert!(e.total_usd < 10_000.0 * e.count as f64);
            }
            for w in found.windows(2) {
                prop_assert!((w[1].first_date - w[0].last_date).num_days() > window);
            }
        }
    }
}
