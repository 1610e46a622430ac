//! The demo world's other data sets: Korea's export records mirroring US imports, FinCEN
//! reports (with structuring), TECS subjects and an OFAC-layout list.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;

use chrono::{Days, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Line, TRADE_HEADER, World, log_uniform, money, writer};

/// The partner whose export records mirror US imports of its origin.
pub const MIRROR_PARTNER: &str = "KR";

pub struct Partner {
    out: csv::Writer<BufWriter<File>>,
    rows: u64,
}

impl Partner {
    pub fn create(path: &Path) -> io::Result<Partner> {
        let mut out = writer(path)?;
        out.write_record(TRADE_HEADER)?;
        Ok(Partner { out, rows: 0 })
    }

    /// Writes the partner's record of `line` for some of its imports from the partner;
    /// true when that record was made to disagree (a MIRROR anomaly).
    pub fn mirror(&mut self, line: &Line, rng: &mut ChaCha8Rng) -> io::Result<bool> {
        let f = &line.fields;
        if line.origin != MIRROR_PARTNER || f[13] != MIRROR_PARTNER || rng.random::<f64>() >= 0.3 {
            return Ok(false);
        }
        // FOB at export is a little under CIF at import.
        let mut value = line.value_usd * rng.random_range(0.92..0.99);
        let discrepant = line.truth.is_none() && rng.random::<f64>() < 0.05;
        if discrepant {
            let factor = log_uniform(rng, 2.0, 5.0);
            value = if rng.random::<bool>() {
                value * factor
            } else {
                value / factor
            };
        }
        let date = NaiveDate::parse_from_str(&f[2], "%Y-%m-%d")
            .ok()
            .and_then(|d| d.checked_sub_days(Days::new(rng.random_range(3..20))))
            .unwrap_or_default();
        let record = [
            format!("KR{}", &f[0][5..]),
            "1".into(),
            date.format("%Y-%m-%d").to_string(),
            "EXPORT".into(),
            format!("{}0000", &f[4][..6]),
            f[5].clone(),
            f[6].clone(),
            String::new(),
            f[8].clone(),
            f[9].clone(),
            f[10].clone(),
            f[11].clone(),
            MIRROR_PARTNER.into(),
            MIRROR_PARTNER.into(),
            "US".into(),
            MIRROR_PARTNER.into(),
            "US".into(),
            "KRPUS".into(),
            f[18].clone(),
            f[19].clone(),
            f[20].clone(),
            f[21].clone(),
            money(value),
            "USD".into(),
            money(value),
        ];
        self.out.write_record(&record)?;
        self.rows += 1;
        Ok(discrepant)
    }

    pub fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.rows)
    }
}

const FINANCIAL_HEADER: &[&str] = &[
    "report_id",
    "report_type",
    "transaction_date",
    "amount_usd",
    "cash_direction",
    "filer_institution",
    "subject_name",
    "subject_tin",
    "subject_dob",
    "subject_address",
    "subject_id_number",
    "account_number",
    "counterparty_name",
    "counterparty_account",
];

/// FinCEN reports for some importers; returns the rows written and the ids of the
/// structuring reports.
pub fn financial(
    world: &World,
    rng: &mut ChaCha8Rng,
    path: &Path,
) -> io::Result<(u64, Vec<String>)> {
    let mut out = writer(path)?;
    out.write_record(FINANCIAL_HEADER)?;
    let mut rows = 0;
    let mut structuring = Vec::new();
    let start = NaiveDate::from_ymd_opt(super::FIRST_YEAR, 1, 1).unwrap_or_default();
    for (i, importer) in world.importers.iter().enumerate() {
        let mut write = |id: String, kind: &str, day: u64, amount: f64| -> io::Result<()> {
            let date = start.checked_add_days(Days::new(day)).unwrap_or(start);
            out.write_record([
                id.as_str(),
                kind,
                &date.format("%Y-%m-%d").to_string(),
                &money(amount),
                "IN",
                "Demo National Bank",
                &importer.name,
                &importer.id,
                "",
                &importer.address,
                "",
                &format!("{:010}", 4_000_000_000u64 + i as u64),
                "",
                "",
            ])?;
            rows += 1;
            Ok(())
        };
        if i % 4 == 0 {
            for k in 0..3 {
                let day = rng.random_range(0..super::YEARS * 365);
                write(
                    format!("CTR-{i:05}-{k}"),
                    "CTR",
                    day,
                    rng.random_range(10_500.0..150_000.0),
                )?;
            }
        }
        if importer.structuring {
            for run in 0..3 {
                let first = rng.random_range(0..super::YEARS * 365 - 10);
                for k in 0..rng.random_range(4..7) {
                    let id = format!("SAR-{i:05}-{run}-{k}");
                    write(
                        id.clone(),
                        "SAR",
                        first + rng.random_range(0..5),
                        rng.random_range(9_000.0..9_990.0),
                    )?;
                    structuring.push(id);
                }
            }
        }
    }
    out.flush()?;
    Ok((rows, structuring))
}

/// TECS business records for a few importers (every 50th).
pub fn subjects(world: &World, path: &Path) -> io::Result<()> {
    let mut out = writer(path)?;
    out.write_record([
        "record_id",
        "kind",
        "creating_agency",
        "involvement",
        "case_status",
        "created_date",
        "name",
        "business_name",
        "address",
        "date_of_birth",
        "ssn_tin",
        "passport_number",
        "passport_country",
        "bank_accounts",
        "phones",
        "drivers_license",
        "drivers_license_state",
        "a_number",
        "plate",
        "vessel_name",
        "aircraft_tail_number",
        "description",
    ])?;
    for (i, importer) in world.importers.iter().enumerate().step_by(50) {
        let mut record = vec![String::new(); 22];
        record[0] = format!("B-{i:06}");
        record[1] = "BUSINESS".into();
        record[2] = "CBP".into();
        record[3] = "SUBJECT".into();
        record[4] = "OPEN".into();
        record[5] = "2023-06-01".into();
        record[7] = importer.name.clone();
        record[8] = importer.address.clone();
        record[10] = importer.id.clone();
        record[21] = "Demo: importer of interest".into();
        out.write_record(&record)?;
    }
    out.flush()
}

/// An OFAC-layout list (no headers): a few entities named like importers, with an alias and
/// an address each.
pub fn sdn(world: &World, dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut entries = writer(&dir.join("sdn.csv"))?;
    let mut aliases = writer(&dir.join("alt.csv"))?;
    let mut addresses = writer(&dir.join("add.csv"))?;
    let mut comments = writer(&dir.join("sdn_comments.csv"))?;
    for (n, (i, importer)) in world.importers.iter().enumerate().step_by(97).enumerate() {
        let ent = (1_000 + n).to_string();
        let name = importer.name.to_uppercase().replace(" LLC", "");
        entries.write_record([
            ent.as_str(),
            &name,
            "-0- ",
            "SDGT",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "Demo entry.",
        ])?;
        aliases.write_record([
            ent.as_str(),
            &(5_000 + n).to_string(),
            "aka",
            &format!("DEMO TRADING {i:05}"),
            "-0- ",
        ])?;
        addresses.write_record([
            ent.as_str(),
            &(9_000 + n).to_string(),
            &importer.address,
            "Port City",
            "United States",
            "-0- ",
        ])?;
        comments.write_record([ent.as_str(), " Listed for the demo."])?;
    }
    entries.flush()?;
    aliases.flush()?;
    addresses.flush()?;
    comments.flush()
}
