//! `dartts demo-data`: a coherent synthetic world with ground truth, for demos and for
//! measuring the detectors (`dartts eval anomalies`).
//!
//! Deterministic per seed (ChaCha8), streaming: rows are written as they are drawn, and only
//! the small catalogs (HS codes, importers, countries) are held in memory, so 10M rows take no
//! more memory than 1,000. Unit prices are log-normal per HS code (median and spread drawn per
//! code); quantities and weights log-normal per code. Injected anomalies, each row at most one:
//!
//! | kind | how | truth |
//! |---|---|---|
//! | `PRICE_OVER` / `PRICE_UNDER` | value × / ÷ a factor log-uniform in [3, 10] | the row |
//! | `VALUE_PER_KG` | net weight × or ÷ a factor in [5, 20], price untouched | the row |
//! | `ROUND_VALUE` | value rounded to a multiple of 1,000 (values ≥ 20,000 only) | the row |
//! | `TRANSSHIPMENT` | exported from a hub (AE, HK, SG, PA) that is not the origin | the row |
//! | `NEW_CHAPTER` | a few importers trade, in the last year only, in a chapter they never traded | every such row |
//! | `BENFORD` | a few importers' values, quantities and weights scaled so values start with 5–9 | every row of the importer |
//! | `MIRROR` | the partner's export record of the row differs from it by 2–5× | the US row |
//! | `STRUCTURING` | runs of cash deposits of 9,000–9,990 USD within days | each report |

mod side;

pub use side::MIRROR_PARTNER;

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;

use chrono::{Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::ingest::profile::CANONICAL_HEADER;

pub const HUBS: &[&str] = &["AE", "HK", "SG", "PA"];
const ORIGINS: &[&str] = &[
    "CN", "KR", "JP", "VN", "IN", "DE", "MX", "BR", "TH", "ID", "TR", "IT", "BD", "MY", "PE", "CO",
];
const UNITS: &[&str] = &["NO", "KG", "DOZ", "M2", "L", "PRS"];
const FIRST_YEAR: i32 = 2022;
const YEARS: u64 = 3;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    pub seed: u64,
    pub rows: u64,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub trade_rows: u64,
    pub partner_rows: u64,
    pub financial_rows: u64,
    pub truth_rows: u64,
}

struct Commodity {
    hs_code: String,
    unit: &'static str,
    /// ln of the median unit price (USD).
    mu: f64,
    /// Spread of ln unit price.
    sigma: f64,
    /// ln of the median quantity per line.
    qty_mu: f64,
    /// kg per unit.
    kg_per_unit: f64,
    description: String,
}

struct Importer {
    name: String,
    id: String,
    address: String,
    /// Indexes into the commodity list it trades.
    goods: Vec<usize>,
    /// A commodity in a chapter none of `goods` is in, traded only in the last year.
    new_chapter: Option<usize>,
    benford: bool,
    structuring: bool,
}

struct World {
    goods: Vec<Commodity>,
    importers: Vec<Importer>,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

impl World {
    fn new(rng: &mut ChaCha8Rng, rows: u64) -> World {
        let chapters: Vec<u32> = (0..40).map(|i| 10 + i * 2).collect();
        let mut goods = Vec::new();
        for (c, chapter) in chapters.iter().enumerate() {
            for k in 0..5 {
                let unit = UNITS[(c + k) % UNITS.len()];
                let heading = 10 + rng.random_range(0..89u32);
                let sub = rng.random_range(0..999_999u32);
                goods.push(Commodity {
                    hs_code: format!("{chapter:02}{heading:02}{sub:06}"),
                    unit,
                    mu: rng.random_range(0.0..7.5),
                    sigma: rng.random_range(0.1..0.3),
                    qty_mu: rng.random_range(2.0..7.0),
                    kg_per_unit: log_uniform(rng, 0.05, 50.0),
                    description: format!("Goods of chapter {chapter:02}, kind {k}"),
                });
            }
        }
        let count = (rows / 1_000).clamp(20, 20_000) as usize;
        let importers = (0..count)
            .map(|i| {
                let own: Vec<usize> = (0..rng.random_range(1..=3))
                    .map(|_| rng.random_range(0..chapters.len()))
                    .collect();
                let goods_of: Vec<usize> = own
                    .iter()
                    .flat_map(|c| (0..5).map(move |k| c * 5 + k))
                    .collect();
                let new_chapter = (rng.random::<f64>() < 0.02).then(|| {
                    loop {
                        let c = rng.random_range(0..chapters.len());
                        if !own.contains(&c) {
                            break c * 5 + rng.random_range(0..5);
                        }
                    }
                });
                Importer {
                    name: format!("Demo Importer {i:05} LLC"),
                    id: format!("{:02}-{:07}", 10 + i % 89, i),
                    address: format!("{} Harbor Rd, Port City", 1 + i % 997),
                    goods: goods_of,
                    new_chapter,
                    benford: rng.random::<f64>() < 0.02,
                    structuring: rng.random::<f64>() < 0.03,
                }
            })
            .collect();
        World { goods, importers }
    }
}

/// One generated trade line and what was injected into it.
pub struct Line {
    pub fields: Vec<String>,
    pub truth: Option<&'static str>,
    pub importer: usize,
    pub origin: &'static str,
    pub value_usd: f64,
}

fn money(v: f64) -> String {
    format!("{:.2}", v)
}

fn amount(v: f64) -> String {
    format!("{:.3}", v)
}

impl World {
    fn line(&self, rng: &mut ChaCha8Rng, n: u64) -> Line {
        let importer_index = rng.random_range(0..self.importers.len());
        let importer = &self.importers[importer_index];
        let day = rng.random_range(0..YEARS * 365);
        let date = NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1)
            .and_then(|d| d.checked_add_days(Days::new(day)))
            .unwrap_or_default();
        let last_year = day >= (YEARS - 1) * 365;
        let mut truth = None;
        let good_index = match importer.new_chapter {
            Some(g) if last_year && rng.random::<f64>() < 0.3 => {
                truth = Some("NEW_CHAPTER");
                g
            }
            _ => importer.goods[rng.random_range(0..importer.goods.len())],
        };
        let good = &self.goods[good_index];
        let origin = ORIGINS[rng.random_range(0..ORIGINS.len())];
        let mut export = origin;
        let mut quantity = (good.qty_mu + 1.2 * normal(rng)).exp().max(1.0).round();
        let mut price = (good.mu + good.sigma * normal(rng)).exp();
        let mut weight = quantity * good.kg_per_unit * (0.1 * normal(rng)).exp();
        let roll: f64 = rng.random();
        if truth.is_none() {
            if roll < 0.005 {
                price *= log_uniform(rng, 3.0, 10.0);
                truth = Some("PRICE_OVER");
            } else if roll < 0.010 {
                price /= log_uniform(rng, 3.0, 10.0);
                truth = Some("PRICE_UNDER");
            } else if roll < 0.013 {
                let f = log_uniform(rng, 5.0, 20.0);
                weight = if rng.random::<bool>() {
                    weight * f
                } else {
                    weight / f
                };
                truth = Some("VALUE_PER_KG");
            } else if roll < 0.016 {
                export = HUBS[rng.random_range(0..HUBS.len())];
                truth = Some("TRANSSHIPMENT");
            }
        }
        let mut value = (price * quantity * 100.0).round() / 100.0;
        if truth.is_none() && (0.016..0.019).contains(&roll) && value >= 20_000.0 {
            value = (value / 1_000.0).round() * 1_000.0;
            truth = Some("ROUND_VALUE");
        }
        if importer.benford && truth.is_none() {
            // Scale value, quantity and weight together: prices stay what they were, the
            // value's first digit becomes 5–9.
            let exponent = value.log10().floor();
            let target = (5.0 + rng.random::<f64>() * 4.99) * 10f64.powf(exponent);
            let f = target / value;
            value = (target * 100.0).round() / 100.0;
            quantity *= f;
            weight *= f;
            truth = Some("BENFORD");
        }
        let fields = vec![
            format!("DEMO-{n:09}"),
            "1".into(),
            date.format("%Y-%m-%d").to_string(),
            "IMPORT".into(),
            good.hs_code.clone(),
            good.description.clone(),
            importer.name.clone(),
            importer.id.clone(),
            importer.address.clone(),
            format!("{origin} Exporter {}", good_index % 7),
            format!("{origin} Works {}", good_index % 5),
            format!("{origin}MFR{:04}", good_index),
            origin.into(),
            export.into(),
            "US".into(),
            "US".into(),
            export.into(),
            format!("{}", 1000 + (good_index % 40) * 101),
            if good.kg_per_unit > 5.0 { "SEA" } else { "AIR" }.into(),
            amount(quantity),
            good.unit.into(),
            amount(weight),
            money(value),
            "USD".into(),
            money(value),
        ];
        Line {
            fields,
            truth,
            importer: importer_index,
            origin,
            value_usd: value,
        }
    }
}

/// The canonical trade header, as the generator writes it.
pub const TRADE_HEADER: &[&str] = &[
    "declaration_id",
    "line_number",
    "declaration_date",
    "direction",
    "hs_code",
    "commodity_description",
    "importer_name",
    "importer_id",
    "importer_address",
    "exporter_name",
    "manufacturer_name",
    "manufacturer_id",
    "country_of_origin",
    "country_of_export",
    "country_of_destination",
    "reporting_country",
    "partner_country",
    "port",
    "transport_mode",
    "quantity",
    "quantity_unit",
    "net_weight_kg",
    "declared_value",
    "declared_currency",
    "declared_value_usd",
];

fn writer(path: &Path) -> io::Result<csv::Writer<BufWriter<File>>> {
    Ok(csv::Writer::from_writer(BufWriter::with_capacity(
        1 << 20,
        File::create(path)?,
    )))
}

/// Writes the world into `out` (created if missing).
pub fn generate(spec: &Spec, out: &Path) -> io::Result<Written> {
    debug_assert!(TRADE_HEADER.iter().all(|h| CANONICAL_HEADER.contains(h)));
    fs::create_dir_all(out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let world = World::new(&mut rng, spec.rows);
    let mut trade = writer(&out.join("trade.csv"))?;
    let mut truth = writer(&out.join("truth.csv"))?;
    let mut partner = side::Partner::create(&out.join("partner_trade.csv"))?;
    trade.write_record(TRADE_HEADER)?;
    truth.write_record(["declaration_id", "line_number", "anomaly_type"])?;
    let mut written = Written::default();
    // The partner's side is drawn from its own stream, so changing it leaves trade.csv alone.
    let mut partner_rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x9E37_79B9_7F4A_7C15);
    for n in 0..spec.rows {
        let line = world.line(&mut rng, n);
        trade.write_record(&line.fields)?;
        written.trade_rows += 1;
        let mut kind = line.truth;
        if partner.mirror(&line, &mut partner_rng)? {
            kind = Some("MIRROR");
        }
        if let Some(kind) = kind {
            truth.write_record([line.fields[0].as_str(), "1", kind])?;
            written.truth_rows += 1;
        }
    }
    written.partner_rows = partner.finish()?;
    trade.flush()?;
    let (financial_rows, structuring) =
        side::financial(&world, &mut rng, &out.join("financial.csv"))?;
    written.financial_rows = financial_rows;
    for report in structuring {
        truth.write_record([report.as_str(), "1", "STRUCTURING"])?;
        written.truth_rows += 1;
    }
    truth.flush()?;
    side::subjects(&world, &out.join("subjects.csv"))?;
    side::sdn(&world, &out.join("sdn"))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_writes_the_same_world() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let spec = Spec {
            seed: 7,
            rows: 3_000,
        };
        let wa = generate(&spec, a.path()).unwrap();
        let wb = generate(&spec, b.path()).unwrap();
        assert_eq!(wa, wb);
        for file in [
            "trade.csv",
            "truth.csv",
            "financial.csv",
            "partner_trade.csv",
            "sdn/sdn.csv",
        ] {
            assert_eq!(
                fs::read(a.path().join(file)).unwrap(),
                fs::read(b.path().join(file)).unwrap(),
                "{file}"
            );
        }
        assert_eq!(wa.trade_rows, 3_000);
        let truth = fs::read_to_string(a.path().join("truth.csv")).unwrap();
        for kind in ["PRICE_OVER", "PRICE_UNDER", "VALUE_PER_KG", "TRANSSHIPMENT"] {
            assert!(truth.contains(kind), "{kind} missing");
        }
        let other = tempfile::tempdir().unwrap();
        generate(
            &Spec {
                seed: 8,
                rows: 3_000,
            },
            other.path(),
        )
        .unwrap();
        assert_ne!(
            fs::read(a.path().join("trade.csv")).unwrap(),
            fs::read(other.path().join("trade.csv")).unwrap()
        );
    }
}
