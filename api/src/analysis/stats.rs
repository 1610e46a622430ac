//! Robust statistics over plain numbers: quantiles, median absolute deviation, Benford's
//! first-digit test. No I/O; the load-time profiles and the on-the-fly (scoped) profiles call
//! the same functions, so both give the same numbers.
//!
//! Quantiles use linear interpolation between order statistics (Hyndman & Fan type 7: the
//! default of R, NumPy and PostgreSQL's `percentile_cont`): for a sorted sample `x[0..n]` and
//! probability `p`, `h = (n - 1) p`, `Q(p) = x[⌊h⌋] + (h - ⌊h⌋)(x[⌊h⌋+1] - x[⌊h⌋])`. It is
//! exact (no sketch), so a test can check it against PostgreSQL directly.

/// `1 / Φ⁻¹(3/4)`: scales a normal sample's MAD to its standard deviation.
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;
/// `2 Φ⁻¹(3/4)`: a normal sample's interquartile range in standard deviations.
pub const IQR_IN_SIGMAS: f64 = 1.348_979_500_392_163;

/// The type-7 quantile of an ascending, NaN-free sample; `None` when it is empty or `p` is
/// outside [0, 1].
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor();
    // `h` lies in [0, n-1], so both indices are in bounds.
    let i = lo as usize;
    let below = sorted[i];
    let above = sorted.get(i + 1).copied().unwrap_or(below);
    Some(below + (h - lo) * (above - below))
}

/// Count, quartiles and MAD of one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    /// Median of `|x - median|`, unscaled.
    pub mad: f64,
}

impl Summary {
    /// Sorts `values` in place (non-finite values are dropped first). `None` when empty.
    pub fn of(values: &mut Vec<f64>) -> Option<Summary> {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        let median = quantile_sorted(values, 0.5)?;
        let q1 = quantile_sorted(values, 0.25)?;
        let q3 = quantile_sorted(values, 0.75)?;
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let mad = quantile_sorted(&deviations, 0.5)?;
        Some(Summary {
            count: values.len(),
            median,
            q1,
            q3,
            mad,
        })
    }
}

/// The leading significant digit of a positive finite amount.
pub fn first_digit(amount: f64) -> Option<u8> {
    if !amount.is_finite() || amount <= 0.0 {
        return None;
    }
    // Scientific notation puts the first significant digit first, whatever the magnitude.
    let text = format!("{amount:e}");
    text.bytes()
        .next()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .filter(|d| *d > 0)
}

/// Benford's expected share of first digit `d` (1–9): `log10(1 + 1/d)`.
pub fn benford_expected(d: u8) -> f64 {
    (1.0 + 1.0 / f64::from(d)).log10()
}

/// Nigrini's conformity classes for the first-digit test, by mean absolute deviation
/// (Nigrini, *Benford's Law*, 2012, table 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conformity {
    /// MAD ≤ 0.006
    Close,
    /// MAD ≤ 0.012
    Acceptable,
    /// MAD ≤ 0.015
    Marginal,
    /// MAD > 0.015
    Nonconformity,
}

impl Conformity {
    pub fn of_mad(mad: f64) -> Conformity {
        if mad <= 0.006 {
            Conformity::Close
        } else if mad <= 0.012 {
            Conformity::Acceptable
        } else if mad <= 0.015 {
            Conformity::Marginal
        } else {
            Conformity::Nonconformity
        }
    }
}

/// First-digit counts of a set of amounts and their deviation from Benford's law.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Benford {
    /// `counts[d - 1]`: amounts whose first digit is `d`.
    pub counts: [u64; 9],
}

impl Benford {
    pub fn add(&mut self, amount: f64) {
        if let Some(d) = first_digit(amount) {
            self.counts[usize::from(d - 1)] += 1;
        }
    }

    pub fn sample(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Mean over the nine digits of |observed share − expected share|; `None` when empty.
    pub fn mad(&self) -> Option<f64> {
        let n = self.sample();
        if n == 0 {
            return None;
        }
        let total: f64 = (1..=9u8)
            .map(|d| {
                let observed = self.counts[usize::from(d - 1)] as f64 / n as f64;
                (observed - benford_expected(d)).abs()
            })
            .sum();
        Some(total / 9.0)
    }
}

/// True when `amount` is a whole multiple of `unit` (e.g. 1,000 USD): declared values that
/// were typed, not computed from a price list.
pub fn is_round(amount: f64, unit: f64) -> bool {
    if !(amount.is_finite() && unit.is_finite() && unit > 0.0 && amount > 0.0) {
        return false;
    }
    let ratio = amount / unit;
    (ratio - ratio.round()).abs() < 1e-9 * ratio.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantiles_match_known_answers() {
        let s = [1.0, 2.0, 3.0, 4.0];
        // R: quantile(1:4, c(.25, .5, .75)) = 1.75 2.50 3.25
        assert_eq!(quantile_sorted(&s, 0.25), Some(1.75));
        assert_eq!(quantile_sorted(&s, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&s, 0.75), Some(3.25));
        assert_eq!(quantile_sorted(&s, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&s, 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&[7.0], 0.3), Some(7.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&s, 1.5), None);
    }

    #[test]
    fn summary_matches_known_answers() {
        // R: x <- c(1, 2, 3, 4, 100); median 3, quartiles 2 and 4, mad(x, constant = 1) = 1
        let mut x = vec![100.0, 1.0, 3.0, 2.0, 4.0, f64::NAN];
        let s = Summary::of(&mut x).unwrap();
        assert_eq!(
            s,
            Summary {
                count: 5,
                median: 3.0,
                q1: 2.0,
                q3: 4.0,
                mad: 1.0
            }
        );
        assert_eq!(Summary::of(&mut vec![]), None);
    }

    #[test]
    fn benford_digits_expectations_and_thresholds() {
        assert_eq!(first_digit(0.00731), Some(7));
        assert_eq!(first_digit(9_999.0), Some(9));
        assert_eq!(first_digit(1e21), Some(1));
        assert_eq!(first_digit(0.0), None);
        assert_eq!(first_digit(-5.0), None);
        assert!((benford_expected(1) - std::f64::consts::LOG10_2).abs() < 1e-12);
        assert!((benford_expected(9) - 0.045_76).abs() < 1e-5);
        let total: f64 = (1..=9).map(benford_expected).sum();
        assert!((total - 1.0).abs() < 1e-12);
        // Every amount starting with 9: shares off by (1 - 0.0458) on 9 and by the expected
        // share elsewhere, i.e. 2 (1 - 0.04576) / 9.
        let mut b = Benford::default();
        for _ in 0..10 {
            b.add(950.0);
        }
        assert!((b.mad().unwrap() - 2.0 * (1.0 - benford_expected(9)) / 9.0).abs() < 1e-12);
        assert_eq!(
            Conformity::of_mad(b.mad().unwrap()),
            Conformity::Nonconformity
        );
        assert_eq!(Conformity::of_mad(0.006), Conformity::Close);
        assert_eq!(Conformity::of_mad(0.010), Conformity::Acceptable);
        assert_eq!(Conformity::of_mad(0.014), Conformity::Marginal);
        assert_eq!(Benford::default().mad(), None);
    }

    #[test]
    fn a_benford_sample_conforms() {
        // 10^u for u uniform on a fine grid follows Benford's law exactly in the limit.
        let mut b = Benford::default();
        for i in 0..10_000 {
            b.add(10f64.powf(3.0 * f64::from(i) / 10_000.0));
        }
        assert_eq!(Conformity::of_mad(b.mad().unwrap()), Conformity::Close);
    }

    #[test]
    fn round_values() {
        assert!(is_round(25_000.0, 1_000.0));
        assert!(!is_round(25_001.0, 1_000.0));
        assert!(!is_round(0.0, 1_000.0));
        assert!(!is_round(5_000.0, 0.0));
        assert!(is_round(1e12, 1_000.0));
    }

    proptest! {
        #[test]
        fn quantiles_are_monotone_and_bounded(
            mut xs in prop::collection::vec(-1e6f64..1e6, 1..200),
            p in 0.0f64..=1.0,
            q in 0.0f64..=1.0,
        ) {
            xs.sort_by(f64::total_cmp);
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            let a = quantile_sorted(&xs, lo).unwrap();
            let b = quantile_sorted(&xs, hi).unwrap();
            prop_assert!(a <= b);
            prop_assert!(xs[0] <= a && b <= xs[xs.len() - 1]);
        }

        #[test]
        fn summary_is_shift_equivariant_and_order_free(
            xs in prop::collection::vec(-1e3f64..1e3, 1..100),
            shift in -1e3f64..1e3,
        ) {
            let mut a = xs.clone();
            let mut reversed: Vec<f64> = xs.iter().rev().copied().collect();
            let mut shifted: Vec<f64> = xs.iter().map(|x| x + shift).collect();
            let s = Summary::of(&mut a).unwrap();
            prop_assert_eq!(Summary::of(&mut reversed).unwrap(), s);
            let t = Summary::of(&mut shifted).unwrap();
            prop_assert!((t.median - s.median - shift).abs() < 1e-6);
            prop_assert!((t.q1 - s.q1 - shift).abs() < 1e-6);
            prop_assert!((t.q3 - s.q3 - shift).abs() < 1e-6);
            prop_assert!((t.mad - s.mad).abs() < 1e-6);
            prop_assert!(s.q1 <= s.median && s.median <= s.q3 && s.mad >= 0.0);
        }

        #[test]
        fn benford_mad_is_a_mean_of_shares(amounts in prop::collection::vec(0.01f64..1e9, 1..300)) {
            let mut b = Benford::default();
            for a in &amounts {
                b.add(*a);
            }
            prop_assert_eq!(b.sample(), amounts.len() as u64);
            let mad = b.mad().unwrap();
            // Each |observed - expected| is at most 1, and the shares both sum to 1.
            prop_assert!((0.0..=2.0 / 9.0).contains(&mad));
        }
    }
}
