//! Mirror trade: what nation A reports exporting to B against what B reports importing from A,
//! per HS subheading (6 digits, the level nations share) and period.
//!
//! Exports are valued FOB and imports CIF (freight and insurance added), so imports normally
//! exceed exports a little: an import figure up to `allowance` above the export figure
//! (default 10 %) is expected and not a discrepancy. Anything else is — imports beyond the
//! allowance, imports below the exports, or a flow only one side reports — and the pair shows
//! both sides' sums, the gap, and the allowance applied, so a reader can redo the arithmetic.

use rustc_hash::FxHashMap;

/// The default CIF/FOB allowance.
pub const DEFAULT_ALLOWANCE: f64 = 0.10;

/// One side's sums for a (exporting nation, importing nation, HS6, period) cell.
#[derive(Clone, Debug, PartialEq)]
pub struct SideTotals {
    pub value_usd: f64,
    /// Present when the side's records with a unit all share one (`quantity_unit`).
    pub quantity: Option<f64>,
    pub quantity_unit: Option<String>,
    pub net_weight_kg: Option<f64>,
    pub record_count: i64,
}

/// Which side a sum comes from: the exporting nation's export records or the importing
/// nation's import records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Export,
    Import,
}

/// The cell a side's sum belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PairKey {
    pub exporter: String,
    pub importer: String,
    pub hs6: String,
    pub period: String,
}

/// One matched cell and its gaps.
#[derive(Clone, Debug, PartialEq)]
pub struct MirrorPair {
    pub key: PairKey,
    pub export: Option<SideTotals>,
    pub import: Option<SideTotals>,
    pub allowance: f64,
    /// Import value minus export value (a missing side counts as zero).
    pub value_gap_usd: f64,
    /// The most the import side may show before it counts: export value × (1 + allowance).
    pub expected_import_max_usd: f64,
    /// The part of the gap the allowance does not explain: positive when imports exceed the
    /// allowance, negative when imports fall short of exports, zero when within it.
    pub unexplained_usd: f64,
    /// Import minus export quantity, when both sides have one in the same unit.
    pub quantity_gap: Option<f64>,
    pub net_weight_gap_kg: Option<f64>,
}

impl MirrorPair {
    pub fn is_discrepancy(&self) -> bool {
        self.unexplained_usd != 0.0 || self.export.is_none() || self.import.is_none()
    }
}

/// The gap beyond the allowance: `import − export × (1 + allowance)` when positive,
/// `import − export` when imports fall short, otherwise zero.
pub fn unexplained(export_usd: f64, import_usd: f64, allowance: f64) -> f64 {
    let ceiling = export_usd * (1.0 + allowance);
    if import_usd > ceiling {
        import_usd - ceiling
    } else if import_usd < export_usd {
        import_usd - export_usd
    } else {
        0.0
    }
}

/// Pairs each export sum with the import sum of the same cell. Cells are keyed by
/// (exporter, importer, HS6, period): an export sum's reporter is the exporter and its partner
/// the importer; an import sum's the other way round. Only discrepancies are returned, in no
/// particular order: `graphql::mirror` orders them by its cursor keys (the largest unexplained
/// amount, either sign, first; then exporter, importer, HS6 and period), so the served order
/// and the cursors are one definition.
pub fn match_sides(
    sums: impl IntoIterator<Item = (Side, PairKey, SideTotals)>,
    allowance: f64,
) -> Vec<MirrorPair> {
    // Hashed, not ordered: the pairs are ordered once, by the caller's page, and an ordered map
    // compared four strings per step for each of a partner's tens of thousands of sums.
    let mut cells: FxHashMap<PairKey, (Option<SideTotals>, Option<SideTotals>)> =
        FxHashMap::default();
    for (side, key, totals) in sums {
        let cell = cells.entry(key).or_default();
        let slot = match side {
            Side::Export => &mut cell.0,
            Side::Import => &mut cell.1,
        };
        *slot = Some(match slot.take() {
            Some(seen) => add(seen, totals),
            None => totals,
        });
    }
    cells
        .into_iter()
        .map(|(key, (export, import))| pair(key, export, import, allowance))
        .filter(MirrorPair::is_discrepancy)
        .collect()
}

/// Two sums of the same side and cell (several HS10 lines under one HS6, say), added.
fn add(a: SideTotals, b: SideTotals) -> SideTotals {
    let same_unit = a.quantity_unit == b.quantity_unit;
    SideTotals {
        value_usd: a.value_usd + b.value_usd,
        quantity: match (a.quantity, b.quantity) {
            (Some(x), Some(y)) if same_unit => Some(x + y),
            _ => None,
        },
        quantity_unit: if same_unit { a.quantity_unit } else { None },
        net_weight_kg: match (a.net_weight_kg, b.net_weight_kg) {
            (None, None) => None,
            (x, y) => Some(x.unwrap_or(0.0) + y.unwrap_or(0.0)),
        },
        record_count: a.record_count + b.record_count,
    }
}

fn pair(
    key: PairKey,
    export: Option<SideTotals>,
    import: Option<SideTotals>,
    allowance: f64,
) -> MirrorPair {
    let value = |s: &Option<SideTotals>| s.as_ref().map_or(0.0, |s| s.value_usd);
    let (ex, im) = (value(&export), value(&import));
    let quantity_gap = match (&export, &import) {
        (Some(e), Some(i)) if e.quantity_unit.is_some() && e.quantity_unit == i.quantity_unit => {
            i.quantity.zip(e.quantity).map(|(i, e)| i - e)
        }
        _ => None,
    };
    let net_weight_gap_kg = match (&export, &import) {
        (Some(e), Some(i)) => i.net_weight_kg.zip(e.net_weight_kg).map(|(i, e)| i - e),
        _ => None,
    };
    MirrorPair {
        value_gap_usd: im - ex,
        expected_import_max_usd: ex * (1.0 + allowance),
        unexplained_usd: unexplained(ex, im, allowance),
        quantity_gap,
        net_weight_gap_kg,
        key,
        export,
        import,
        allowance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(hs6: &str) -> PairKey {
        PairKey {
            exporter: "CN".into(),
            importer: "US".into(),
            hs6: hs6.into(),
            period: "2024".into(),
        }
    }

    fn side(value: f64, quantity: f64, unit: &str) -> SideTotals {
        SideTotals {
            value_usd: value,
            quantity: Some(quantity),
            quantity_unit: Some(unit.into()),
            net_weight_kg: Some(quantity * 2.0),
            record_count: 1,
        }
    }

    #[test]
    fn the_allowance_covers_cif_over_fob_and_nothing_else() {
        assert_eq!(unexplained(100.0, 110.0, 0.10), 0.0);
        assert_eq!(unexplained(100.0, 100.0, 0.10), 0.0);
        assert!((unexplained(100.0, 130.0, 0.10) - 20.0).abs() < 1e-9);
        assert_eq!(unexplained(100.0, 90.0, 0.10), -10.0);
        assert_eq!(unexplained(0.0, 50.0, 0.10), 50.0);
        assert_eq!(unexplained(100.0, 105.0, 0.0), 5.0);
    }

    #[test]
    fn sides_are_matched_per_cell_and_only_discrepancies_kept() {
        let pairs = match_sides(
            [
                // CN says it shipped 48,000 of 847130; the US says it received 54,000.
                (Side::Export, key("847130"), side(48_000.0, 100.0, "NO")),
                (Side::Import, key("847130"), side(50_000.0, 100.0, "NO")),
                (Side::Import, key("847130"), side(4_000.0, 20.0, "NO")),
                // Within the allowance: not returned.
                (Side::Export, key("610910"), side(1_000.0, 10.0, "DOZ")),
                (Side::Import, key("610910"), side(1_050.0, 10.0, "DOZ")),
                // Only the exporter reports it.
                (Side::Export, key("710812"), side(300.0, 5.0, "KG")),
            ],
            0.10,
        );
        assert_eq!(pairs.len(), 2);
        let cell = |hs6: &str| pairs.iter().find(|p| p.key.hs6 == hs6).unwrap();
        let laptops = cell("847130");
        assert_eq!(laptops.import.as_ref().unwrap().record_count, 2);
        assert_eq!(laptops.value_gap_usd, 6_000.0);
        assert!((laptops.expected_import_max_usd - 52_800.0).abs() < 1e-6);
        assert!((laptops.unexplained_usd - 1_200.0).abs() < 1e-6);
        assert_eq!(laptops.quantity_gap, Some(20.0));
        assert_eq!(laptops.net_weight_gap_kg, Some(40.0));
        let gold = cell("710812");
        assert!(gold.import.is_none());
        assert_eq!(gold.unexplained_usd, -300.0);
        assert_eq!(gold.quantity_gap, None);
    }

    #[test]
    fn quantities_in_different_units_are_not_compared() {
        let pairs = match_sides(
            [
                (Side::Export, key("847130"), side(100.0, 10.0, "NO")),
                (Side::Import, key("847130"), side(500.0, 4.0, "KG")),
            ],
            0.10,
        );
        assert_eq!(pairs[0].quantity_gap, None);
        let merged = add(side(1.0, 1.0, "NO"), side(1.0, 1.0, "KG"));
        assert_eq!((merged.quantity, merged.quantity_unit), (None, None));
    }

    proptest! {
        /// The unexplained amount is zero exactly inside [export, export × (1 + allowance)],
        /// has the sign of the side that is off, and never exceeds the raw gap.
        #[test]
        fn unexplained_is_the_gap_outside_the_band(
            export in 0.0f64..1e9,
            import in 0.0f64..1e9,
            allowance in 0.0f64..1.0,
        ) {
            let u = unexplained(export, import, allowance);
            let inside = import >= export && import <= export * (1.0 + allowance);
            prop_assert_eq!(u == 0.0, inside);
            prop_assert!(u.abs() <= (import - export).abs() + 1e-6);
            if u != 0.0 {
                prop_assert_eq!(u > 0.0, import > export);
            }
        }

        /// Every returned pair is a discrepancy, once per cell.
        #[test]
        fn results_are_discrepancies_one_per_cell(
            cells in proptest::collection::vec((0u8..4, 0.0f64..1e6, 0.0f64..1e6, any::<bool>()), 0..20),
        ) {
            let sums = cells.iter().flat_map(|(hs, ex, im, one_sided)| {
                let k = key(&format!("8471{hs:02}"));
                let mut v = vec![(Side::Export, k.clone(), side(*ex, 1.0, "NO"))];
                if !one_sided {
                    v.push((Side::Import, k, side(*im, 1.0, "NO")));
                }
                v
            });
            let pairs = match_sides(sums, 0.1);
            for p in &pairs {
                prop_assert!(p.is_discrepancy());
            }
            let cells: std::collections::HashSet<&PairKey> = pairs.iter().map(|p| &p.key).collect();
            prop_assert_eq!(cells.len(), pairs.len());
        }
    }
}
