//! The OFAC legacy SDN CSV set: `sdn.csv`, `add.csv`, `alt.csv`, `sdn_comments.csv`.
//!
//! Headerless, `-0- ` for null, CRLF, a trailing 0x1A byte (handled by `input`), and remarks cut
//! at 1,000 characters with the rest in `sdn_comments.csv`, starting mid-word. Facts that
//! screening needs as evidence — dates of birth, passports, other ids, nationality — are parsed
//! out of the remarks into their own columns; the full remarks are kept verbatim beside them.

use std::collections::{HashMap, HashSet};

use super::sink::Cell;

pub const ENTRY_COLUMNS: &[&str] = &[
    "batch_id",
    "ent_num",
    "name",
    "sdn_type",
    "programs",
    "title",
    "call_sign",
    "vessel_type",
    "tonnage",
    "grt",
    "vessel_flag",
    "vessel_owner",
    "remarks",
    "date_of_birth",
    "place_of_birth",
    "nationality",
    "citizenship",
    "passports",
    "id_numbers",
    "gender",
];
pub const ALIAS_COLUMNS: &[&str] = &[
    "batch_id", "ent_num", "alt_num", "alt_type", "name", "remarks",
];
pub const ADDRESS_COLUMNS: &[&str] = &[
    "batch_id", "ent_num", "add_num", "address", "city", "country", "remarks",
];

/// OFAC's null marker is `-0-` followed by a space; we accept it with or without.
fn field(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty() && trimmed != "-0-").then(|| trimmed.to_owned())
}

fn expect_width(fields: &[String], width: usize, file: &str) -> Result<(), String> {
    if fields.len() == width {
        Ok(())
    } else {
        Err(format!(
            "{file} rows have {width} columns, found {}",
            fields.len()
        ))
    }
}

fn ent_num(raw: &str) -> Result<i64, String> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("ent_num {:?} is not a positive integer", raw.trim()))
}

/// `sdn_comments.csv` → remarks continuation per entry.
pub fn comment(fields: &[String]) -> Result<(i64, String), String> {
    expect_width(fields, 2, "sdn_comments.csv")?;
    // The continuation is glued on as-is: it starts mid-word, so trimming would join words.
    let text = fields[1].trim_end();
    let text = if text == "-0-" { "" } else { text };
    Ok((ent_num(&fields[0])?, text.to_owned()))
}

pub fn entry(
    fields: &[String],
    batch_id: i64,
    continuations: &HashMap<i64, String>,
) -> Result<(i64, Vec<Cell>), String> {
    expect_width(fields, 12, "sdn.csv")?;
    let ent = ent_num(&fields[0])?;
    let name = field(&fields[1]).ok_or("SDN_Name is empty")?;
    let sdn_type = match field(&fields[2])
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => "ENTITY",
        Some("individual") => "INDIVIDUAL",
        Some("vessel") => "VESSEL",
        Some("aircraft") => "AIRCRAFT",
        Some(other) => {
            return Err(format!(
                "SDN_Type {other:?} is not individual, vessel or aircraft"
            ));
        }
    };
    let programs = field(&fields[3])
        .map(|p| split_programs(&p).join(";"))
        .unwrap_or_default();
    let remarks = match (field(&fields[11]), continuations.get(&ent)) {
        (Some(_), Some(more)) => Some(format!("{}{}", fields[11].trim_start(), more)),
        (None, Some(more)) => Some(more.clone()),
        (r, None) => r,
    };
    let facts = remarks.as_deref().map(parse_remarks).unwrap_or_default();
    let joined = |v: Vec<String>| -> Cell {
        if v.is_empty() {
            Cell::Null
        } else {
            Cell::Text(v.join("; "))
        }
    };
    let cells = vec![
        Cell::Int(batch_id),
        Cell::Int(ent),
        Cell::Text(name),
        Cell::Text(sdn_type.to_owned()),
        Cell::Text(programs),
        field(&fields[4]).into(),
        field(&fields[5]).into(),
        field(&fields[6]).into(),
        field(&fields[7]).into(),
        field(&fields[8]).into(),
        field(&fields[9]).into(),
        field(&fields[10]).into(),
        remarks.map(|r| r.trim().to_owned()).into(),
        joined(facts.dates_of_birth),
        joined(facts.places_of_birth),
        joined(facts.nationalities),
        joined(facts.citizenships),
        joined(facts.passports),
        joined(facts.id_numbers),
        facts.gender.into(),
    ];
    Ok((ent, cells))
}

pub fn alias(fields: &[String], batch_id: i64, known: &HashSet<i64>) -> Result<Vec<Cell>, String> {
    expect_width(fields, 5, "alt.csv")?;
    let ent = known_ent(&fields[0], known)?;
    let alt_num = ent_num(&fields[1])
        .map_err(|_| format!("alt_num {:?} is not a number", fields[1].trim()))?;
    let alt_type = field(&fields[2])
        .ok_or("alt_type is empty")?
        .to_ascii_lowercase();
    if !matches!(alt_type.as_str(), "aka" | "fka" | "nka") {
        return Err(format!("alt_type {alt_type:?} is not aka, fka or nka"));
    }
    let name = field(&fields[3]).ok_or("alt_name is empty")?;
    Ok(vec![
        Cell::Int(batch_id),
        Cell::Int(ent),
        Cell::Int(alt_num),
        Cell::Text(alt_type),
        Cell::Text(name),
        field(&fields[4]).into(),
    ])
}

pub fn address(
    fields: &[String],
    batch_id: i64,
    known: &HashSet<i64>,
) -> Result<Vec<Cell>, String> {
    expect_width(fields, 6, "add.csv")?;
    let ent = known_ent(&fields[0], known)?;
    let add_num = ent_num(&fields[1])
        .map_err(|_| format!("Add_num {:?} is not a number", fields[1].trim()))?;
    Ok(vec![
        Cell::Int(batch_id),
        Cell::Int(ent),
        Cell::Int(add_num),
        field(&fields[2]).into(),
        field(&fields[3]).into(),
        field(&fields[4]).into(),
        field(&fields[5]).into(),
    ])
}

fn known_ent(raw: &str, known: &HashSet<i64>) -> Result<i64, String> {
    let ent = ent_num(raw)?;
    if known.contains(&ent) {
        Ok(ent)
    } else {
        Err(format!("ent_num {ent} is not in sdn.csv"))
    }
}

/// `SDGT] [IRAN-EO13224` → `["SDGT", "IRAN-EO13224"]`.
pub fn split_programs(raw: &str) -> Vec<String> {
    raw.split("] [")
        .map(|p| {
            p.trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace())
                .to_owned()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Evidence parsed out of an SDN entry's remarks.
#[derive(Debug, Default, PartialEq)]
pub struct RemarkFacts {
    pub dates_of_birth: Vec<String>,
    pub places_of_birth: Vec<String>,
    pub nationalities: Vec<String>,
    pub citizenships: Vec<String>,
    pub passports: Vec<String>,
    pub id_numbers: Vec<String>,
    pub gender: Option<String>,
}

/// Identification documents OFAC writes as `<kind> <number> (<country>)`; matched on prefix.
const ID_PREFIXES: &[&str] = &[
    "National ID No.",
    "Cedula No.",
    "Tax ID No.",
    "Identification Number",
    "C.U.R.P.",
    "R.F.C.",
    "D.N.I.",
    "NIT #",
    "RUC #",
    "SSN",
    "Registration ID",
    "Registration Number",
    "Business Registration Number",
    "Business Registration Document #",
    "Company Number",
    "Commercial Registry Number",
    "Driver's License No.",
    "Electoral Registry No.",
    "Trade License No.",
    "Folio Mercantil No.",
    "Matricula Mercantil No",
    "C.R. No.",
    "V.A.T. Number",
    "Personal ID Card",
    "Residency Number",
    "Birth Certificate Number",
    "Citizen's Card Number",
    "Public Security and Immigration No.",
    "Kenyan ID No.",
    "Travel Document Number",
    "Diplomatic Passport",
    "Vessel Registration Identification",
    "MMSI",
    "Aircraft Manufacturer's Serial Number",
    "Aircraft Tail Number",
];

pub fn parse_remarks(remarks: &str) -> RemarkFacts {
    let mut facts = RemarkFacts::default();
    for raw in remarks.split(';') {
        let fact = raw.trim().trim_end_matches('.').trim();
        if fact.is_empty() {
            continue;
        }
        let rest = |prefix: &str| -> Option<String> {
            fact.strip_prefix(prefix)
                .filter(|r| r.starts_with(' '))
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty())
        };
        if let Some(v) = rest("DOB") {
            facts.dates_of_birth.push(v);
        } else if let Some(v) = rest("POB") {
            facts.places_of_birth.push(v);
        } else if let Some(v) = rest("nationality").or_else(|| rest("Nationality")) {
            facts.nationalities.push(v);
        } else if let Some(v) = rest("citizen").or_else(|| rest("Citizen")) {
            facts.citizenships.push(v);
        } else if let Some(v) = rest("Passport") {
            facts.passports.push(v);
        } else if let Some(v) = rest("Gender") {
            facts.gender.get_or_insert(v);
        } else if ID_PREFIXES.iter().any(|p| fact.starts_with(p)) {
            facts.id_numbers.push(fact.to_owned());
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn remarks_yield_evidence_fields() {
        let facts = parse_remarks(
            "DOB 22 Oct 1973; alt. DOB 1974; POB Baghdad, Iraq; nationality Iraq; citizen Jordan; \
             Passport A1234567 (Iraq) issued 2010; National ID No. 998877 (Iraq); \
             Gender Male; a.k.a. 'ABU X'; Linked To: SOME CO.",
        );
        assert_eq!(facts.dates_of_birth, vec!["22 Oct 1973"]);
        assert_eq!(facts.places_of_birth, vec!["Baghdad, Iraq"]);
        assert_eq!(facts.nationalities, vec!["Iraq"]);
        assert_eq!(facts.citizenships, vec!["Jordan"]);
        assert_eq!(facts.passports, vec!["A1234567 (Iraq) issued 2010"]);
        assert_eq!(facts.id_numbers, vec!["National ID No. 998877 (Iraq)"]);
        assert_eq!(facts.gender.as_deref(), Some("Male"));
    }

    #[test]
    fn entry_handles_nulls_types_programs_and_continuations() {
        let row = s(&[
            "306",
            "BANCO NACIONAL DE CUBA",
            "-0- ",
            "CUBA] [SDGT",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "-0- ",
            "DOB 1950; Passport X1 (Cu",
        ]);
        let mut more = HashMap::new();
        more.insert(306, "ba).".to_owned());
        let (ent, cells) = entry(&row, 1, &more).unwrap();
        assert_eq!(ent, 306);
        assert_eq!(cells[3], Cell::Text("ENTITY".into()));
        assert_eq!(cells[4], Cell::Text("CUBA;SDGT".into()));
        assert_eq!(cells[5], Cell::Null);
        assert_eq!(
            cells[12],
            Cell::Text("DOB 1950; Passport X1 (Cuba).".into())
        );
        assert_eq!(cells[17], Cell::Text("X1 (Cuba)".into()));
    }

    #[test]
    fn unknown_entries_and_bad_widths_are_rejected() {
        let known: HashSet<i64> = [36].into_iter().collect();
        assert!(
            alias(&s(&["37", "1", "aka", "X", "-0-"]), 1, &known)
                .unwrap_err()
                .contains("not in sdn.csv")
        );
        assert!(alias(&s(&["36", "1", "aka"]), 1, &known).is_err());
        assert!(alias(&s(&["36", "1", "aka", "X", "-0- "]), 1, &known).is_ok());
        assert!(
            address(
                &s(&["36", "25", "-0- ", "Havana", "Cuba", "-0- "]),
                1,
                &known
            )
            .is_ok()
        );
    }

    proptest! {
        #[test]
        fn remarks_parser_never_panics(s in "\\PC*") {
            let _ = parse_remarks(&s);
            let _ = split_programs(&s);
        }
    }
}
