//! `dartts export-foreign`: the file a foreign partner's instance receives (DESIGN §1, §2).
//!
//! US trade rows whose partner country is the partner, in the canonical trade layout (so the
//! foreign instance loads it with `dartts load trade FILE --provider US`), with every name,
//! identifier and address of the importer, exporter and manufacturer — and the declaration
//! number, whose filer prefix identifies the broker — replaced by keyed pseudonyms:
//! HMAC-SHA-256 under a server secret, so the same entity always gets the same pseudonym for a
//! partner (analysis across files still works) but nobody without the secret can reverse it or
//! test a guess. The partner code is part of the MAC input, so two partners comparing their
//! files cannot link entities to each other. Addresses are dropped outright.

use std::path::Path;

use entities::trade_record::{self, Column};
use hmac::{Hmac, Mac};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::Sha256;

use crate::config::Instance;
use crate::graphql::scope::US;
use crate::ingest::profile::CANONICAL_HEADER;

/// The secret under which pseudonyms are derived. Never printed.
pub struct PseudonymKey(Vec<u8>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(***)")
    }
}

pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("export-foreign runs on the domestic instance, which holds the US data")]
    NotDomestic,
    #[error("--partner {0}")]
    BadPartner(crate::country::NotACountry),
    #[error("--partner must be a nation other than US, this system's own")]
    DomesticPartner,
    #[error("the pseudonym key must be at least {MIN_KEY_BYTES} bytes (DARTTS_PSEUDONYM_KEY)")]
    ShortKey,
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl PseudonymKey {
    pub fn new(secret: &str) -> Result<Self, ExportError> {
        // Blank characters count as bytes but add no secret.
        if secret.trim().len() < MIN_KEY_BYTES {
            return Err(ExportError::ShortKey);
        }
        Ok(PseudonymKey(secret.as_bytes().to_vec()))
    }

    /// `<prefix>-<24 hex>`: 96 bits of HMAC, ample against collisions at any realistic count
    /// (`is_pseudonym` recognizes the shape).
    pub fn pseudonym(&self, partner: &str, kind: &str, value: &str) -> String {
        let normalized = value.trim().to_uppercase();
        // A key of any length is valid for HMAC, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        for part in [
            partner.as_bytes(),
            b"\0",
            kind.as_bytes(),
            b"\0",
            normalized.as_bytes(),
        ] {
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        let prefix = kind.chars().next().map_or('X', |c| c.to_ascii_uppercase());
        format!("{prefix}-{}", hex::encode(&digest[..12]))
    }

    /// One pseudonym per entity: keyed by its identifier when it has one, else by its name.
    fn entity(
        &self,
        partner: &str,
        kind: &str,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Option<String> {
        id.or(name).map(|key| self.pseudonym(partner, kind, key))
    }
}

/// Whether `text` has the shape `PseudonymKey::pseudonym` writes: an upper-case letter, `-`,
/// 24 lower-case hex digits. The foreign instance takes US identities only in this shape.
pub fn is_pseudonym(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 26
        && bytes[0].is_ascii_uppercase()
        && bytes[1] == b'-'
        && bytes[2..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

#[derive(Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
}

/// Rows read per query; the export streams, it never holds the whole table.
const PAGE: u64 = 5_000;

pub async fn export(
    db: &DatabaseConnection,
    instance: Instance,
    partner: &str,
    key: &PseudonymKey,
    out: &Path,
) -> Result<ExportSummary, ExportError> {
    if instance != Instance::Domestic {
        return Err(ExportError::NotDomestic);
    }
    let partner = crate::country::alpha2(partner).map_err(ExportError::BadPartner)?;
    if partner == US {
        return Err(ExportError::DomesticPartner);
    }
    let write_err = |source| ExportError::Write {
        path: out.display().to_string(),
        source,
    };
    // Write beside the target and rename at the end: a failed export leaves no partial file
    // that someone could ship.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(temp));
    writer
        .write_record(CANONICAL_HEADER)
        .map_err(|e| write_err(e.into()))?;

    let mut rows = 0u64;
    let mut last_id = 0i64;
    loop {
        let page = trade_record::Entity::find()
            .filter(Column::ProviderCountry.eq(US))
            .filter(Column::PartnerCountry.eq(partner.as_str()))
            .filter(Column::Id.gt(last_id))
            .order_by_asc(Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = page.last() else { break };
        last_id = last.id;
        for r in &page {
            let record = anonymized(r, &partner, key);
            writer
                .write_record(&record)
                .map_err(|e| write_err(e.into()))?;
            rows += 1;
        }
    }
    let buffered = writer
        .into_inner()
        .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
    let temp = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    temp.as_file().sync_all().map_err(write_err)?;
    temp.persist(out).map_err(|e| write_err(e.error))?;
    Ok(ExportSummary { rows })
}

/// The canonical CSV fields of one row, identities replaced (order: `CANONICAL_HEADER`).
fn anonymized(r: &trade_record::Model, partner: &str, key: &PseudonymKey) -> Vec<String> {
    let importer = key.entity(
        partner,
        "importer",
        r.importer_id.as_deref(),
        r.importer_name.as_deref(),
    );
    let exporter = key.entity(partner, "exporter", None, r.exporter_name.as_deref());
    let manufacturer = key.entity(
        partner,
        "manufacturer",
        r.manufacturer_id.as_deref(),
        r.manufacturer_name.as_deref(),
    );
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<f64>| v.map(|n| n.to_string()).unwrap_or_default();
    vec![
        key.pseudonym(partner, "declaration", &r.declaration_id),
        r.line_number.to_string(),
        r.declaration_date.format("%Y-%m-%d").to_string(),
        r.direction.clone(),
        r.hs_code.clone(),
        text(&r.commodity_description),
        importer.clone().unwrap_or_default(),
        importer.unwrap_or_default(),
        String::new(),
        exporter.unwrap_or_default(),
        manufacturer.clone().unwrap_or_default(),
        manufacturer.unwrap_or_default(),
        text(&r.country_of_origin),
        text(&r.country_of_export),
        text(&r.country_of_destination),
        r.reporting_country.clone(),
        text(&r.partner_country),
        text(&r.port),
        text(&r.transport_mode),
        number(r.quantity),
        text(&r.quantity_unit),
        number(r.net_weight_kg),
        r.declared_value.to_string(),
        r.declared_currency.clone(),
        r.declared_value_usd.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_partner_specific() {
        let key = PseudonymKey::new("0123456789abcdef0123456789abcdef").unwrap();
        let a = key.pseudonym("KR", "importer", "Acme Imports LLC");
        assert_eq!(a, key.pseudonym("KR", "importer", "  acme imports llc "));
        assert_ne!(a, key.pseudonym("CN", "importer", "Acme Imports LLC"));
        assert_ne!(a, key.pseudonym("KR", "exporter", "Acme Imports LLC"));
        let other = PseudonymKey::new("another secret of at least 32 bytes!!").unwrap();
        assert_ne!(a, other.pseudonym("KR", "importer", "Acme Imports LLC"));
        assert!(a.starts_with("I-") && a.len() == 26, "{a}");
        assert!(is_pseudonym(&a));
        for text in [
            "Acme Imports LLC",
            "I-0123",
            "i-0123456789abcdef01234567",
            "I-0123456789ABCDEF01234567",
        ] {
            assert!(!is_pseudonym(text), "{text}");
        }
        assert!(!a.to_lowercase().contains("acme"));
        assert!(matches!(
            PseudonymKey::new("short"),
            Err(ExportError::ShortKey)
        ));
    }

    #[test]
    fn anonymized_rows_fit_the_canonical_header_and_hide_identities() {
        let key = PseudonymKey::new("0123456789abcdef0123456789abcdef").unwrap();
        let row = trade_record::Model {
            id: 1,
            batch_id: 1,
            source_line: Some(2),
            provider_country: US.into(),
            declaration_id: "ABC-1234567-8".into(),
            line_number: 2,
            declaration_date: chrono::NaiveDate::from_ymd_opt(2024, 1, 5).unwrap(),
            direction: "IMPORT".into(),
            hs_code: "847130".into(),
            commodity_description: Some("Laptops".into()),
            importer_name: Some("Acme Imports LLC".into()),
            importer_id: Some("12-3456789".into()),
            importer_address: Some("1 Main St".into()),
            exporter_name: Some("Seoul Digital".into()),
            manufacturer_name: Some("Seoul Digital".into()),
            manufacturer_id: None,
            country_of_origin: Some("KR".into()),
            country_of_export: Some("KR".into()),
            country_of_destination: Some(US.into()),
            reporting_country: US.into(),
            partner_country: Some("KR".into()),
            port: Some("4601".into()),
            transport_mode: Some("AIR".into()),
            quantity: Some(3.0),
            quantity_unit: Some("NO".into()),
            net_weight_kg: None,
            declared_value: 900.0,
            declared_currency: "USD".into(),
            declared_value_usd: 900.0,
            peer_year: Some(2024),
            log_unit_price: Some(300f64.ln()),
            log_value_per_kg: None,
        };
        let fields = anonymized(&row, "KR", &key);
        assert_eq!(fields.len(), CANONICAL_HEADER.len());
        let at = |name: &str| &fields[CANONICAL_HEADER.iter().position(|h| *h == name).unwrap()];
        let joined = fields.join(",");
        for secret in [
            "Acme",
            "12-3456789",
            "1 Main St",
            "Seoul Digital",
            "ABC-1234567",
        ] {
            assert!(!joined.contains(secret), "{secret} leaked: {joined}");
        }
        assert_eq!(at("importer_name"), at("importer_id"));
        assert_eq!(
            at("importer_name"),
            &key.pseudonym("KR", "importer", "12-3456789")
        );
        assert_eq!(at("importer_address"), "");
        assert_eq!(at("hs_code"), "847130");
        assert_eq!(at("declared_value_usd"), "900");
    }
}
