//! Format profiles: declarative maps from a partner's CSV layout onto the canonical trade row.
//!
//! A new partner layout is a TOML file, not code. Shipped profiles (`profiles/*.toml` at the
//! repository root) are compiled into the binary; `--profile` also takes a path to a file, and
//! `DARTTS_PROFILES_DIR` adds a directory searched first, so operators can add one without a
//! release. A profile is validated completely before the first row is read.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use super::input::{self, unread_columns};
use super::sink::Cell;
use super::values;

/// Profiles that ship with the binary. `canonical` is the documented layout (docs/formats.md).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "canonical",
        include_str!("../../../profiles/canonical.toml"),
    ),
    ("kcs", include_str!("../../../profiles/kcs.toml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown profile {0:?} (built in: canonical, kcs; or give a path to a .toml file)")]
    Unknown(String),
    #[error("cannot read profile {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("profile {profile}: {reason}")]
    Invalid { profile: String, reason: String },
}

/// Canonical trade fields a profile can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    DeclarationId,
    LineNumber,
    DeclarationDate,
    Direction,
    HsCode,
    CommodityDescription,
    ImporterName,
    ImporterId,
    ImporterAddress,
    ExporterName,
    ManufacturerName,
    ManufacturerId,
    CountryOfOrigin,
    CountryOfExport,
    CountryOfDestination,
    ReportingCountry,
    PartnerCountry,
    Port,
    TransportMode,
    Quantity,
    QuantityUnit,
    NetWeightKg,
    DeclaredValue,
}

impl Field {
    /// Whether every row must carry the field (docs/formats.md, "required").
    fn required(self) -> bool {
        matches!(
            self,
            Field::DeclarationId
                | Field::DeclarationDate
                | Field::Direction
                | Field::HsCode
                | Field::DeclaredValue
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// `[first, last]` years a date may fall in, when 1900 to next year does not fit the data.
    pub date_years: Option<[i32; 2]>,
    #[serde(default)]
    pub columns: BTreeMap<Field, String>,
    #[serde(default)]
    pub constants: BTreeMap<Field, String>,
    /// Per field, source code → canonical value. A value with no entry is rejected.
    #[serde(default)]
    pub codes: BTreeMap<Field, BTreeMap<String, String>>,
    pub currency: CurrencySpec,
}

fn default_date_format() -> String {
    "%Y-%m-%d".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencySpec {
    /// The currency of every row (e.g. `KRW`) …
    pub code: Option<String>,
    /// … or the column that names it per row.
    pub column: Option<String>,
    /// A column with the value already in USD; used when present and not empty.
    pub usd_column: Option<String>,
    /// A single conversion rate: units of the currency per US dollar.
    pub units_per_usd: Option<f64>,
    /// Dated rates; each applies from its date until the next one (or `valid_until`).
    #[serde(default)]
    pub rates: Vec<Rate>,
    pub valid_until: Option<NaiveDate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub from: NaiveDate,
    pub units_per_usd: f64,
}

/// Fields without which a trade row means nothing.
const REQUIRED: &[Field] = &[
    Field::DeclarationId,
    Field::DeclarationDate,
    Field::Direction,
    Field::HsCode,
    Field::DeclaredValue,
];

impl ProfileFile {
    pub fn resolve(name_or_path: &str) -> Result<Self, ProfileError> {
        let looks_like_path = name_or_path.ends_with(".toml") || name_or_path.contains('/');
        if looks_like_path {
            return Self::from_path(Path::new(name_or_path));
        }
        if let Ok(dir) = std::env::var("DARTTS_PROFILES_DIR") {
            let candidate = Path::new(&dir).join(format!("{name_or_path}.toml"));
            if candidate.exists() {
                return Self::from_path(&candidate);
            }
        }
        let (_, text) = BUILT_IN
            .iter()
            .find(|(name, _)| *name == name_or_path)
            .ok_or_else(|| ProfileError::Unknown(name_or_path.to_owned()))?;
        Self::parse(name_or_path, text)
    }

    fn from_path(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    pub fn parse(label: &str, text: &str) -> Result<Self, ProfileError> {
        let profile: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Invalid {
            profile: label.to_owned(),
            reason: e.to_string(),
        })?;
        profile.validate()?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), ProfileError> {
        let invalid = |reason: String| ProfileError::Invalid {
            profile: self.name.clone(),
            reason,
        };
        for field in REQUIRED {
            if !self.columns.contains_key(field) && !self.constants.contains_key(field) {
                return Err(invalid(format!(
                    "{field:?} has neither a column nor a constant"
                )));
            }
        }
        for field in self.columns.keys() {
            if self.constants.contains_key(field) {
                return Err(invalid(format!(
                    "{field:?} has both a column and a constant"
                )));
            }
        }
        let c = &self.currency;
        if c.code.is_some() == c.column.is_some() {
            return Err(invalid(
                "currency needs exactly one of `code` or `column`".into(),
            ));
        }
        if c.units_per_usd.is_some() && !c.rates.is_empty() {
            return Err(invalid(
                "currency has both `units_per_usd` and `rates`".into(),
            ));
        }
        let all_rates = c
            .units_per_usd
            .into_iter()
            .chain(c.rates.iter().map(|r| r.units_per_usd));
        for rate in all_rates {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(invalid(format!(
                    "conversion rate {rate} is not a positive number"
                )));
            }
        }
        if c.rates.windows(2).any(|w| w[0].from >= w[1].from) {
            return Err(invalid(
                "currency.rates must be in increasing date order".into(),
            ));
        }
        if let Some([first, last]) = self.date_years
            && first > last
        {
            return Err(invalid(format!("date_years [{first}, {last}] is empty")));
        }
        if NaiveDate::parse_from_str("2020-01-31", &self.date_format).is_err()
            && chrono::format::StrftimeItems::new(&self.date_format)
                .any(|item| matches!(item, chrono::format::Item::Error))
        {
            return Err(invalid(format!(
                "date_format {:?} is not valid",
                self.date_format
            )));
        }
        Ok(())
    }

    /// Binds the profile to a file's header row.
    pub fn bind(&self, headers: &[String]) -> Result<BoundProfile<'_>, ProfileError> {
        let find = |column: &str| headers.iter().position(|h| input::names_column(h, column));
        let mut missing = Vec::new();
        let mut sources = BTreeMap::new();
        for (field, column) in &self.columns {
            match find(column) {
                Some(index) => {
                    sources.insert(*field, Source::Column(index));
                }
                // An optional field's column may be left out of a file, as docs/formats.md
                // says: every row then has it empty, exactly as if the column were blank.
                None if !field.required() => {}
                None => missing.push(column.clone()),
            }
        }
        for (field, value) in &self.constants {
            sources.insert(*field, Source::Constant(value.clone()));
        }
        let mut column = |name: &Option<String>| match name {
            Some(n) => find(n)
                .map(Some)
                .ok_or_else(|| missing.push(n.clone()))
                .ok()
                .flatten(),
            None => None,
        };
        let currency_column = column(&self.currency.column);
        // Needed only by rows in another currency, which are rejected without it.
        let usd_column = self.currency.usd_column.as_ref().and_then(|n| find(n));
        if !missing.is_empty() {
            return Err(ProfileError::Invalid {
                profile: self.name.clone(),
                reason: format!(
                    "the file has no column(s) {}{}",
                    missing.join(", "),
                    input::separator_hint(headers)
                ),
            });
        }
        Ok(BoundProfile {
            profile: self,
            width: headers.len(),
            sources,
            currency_column,
            usd_column,
        })
    }
}

#[derive(Debug)]
enum Source {
    Column(usize),
    Constant(String),
}

/// A profile resolved against one header row: ready to map records.
pub struct BoundProfile<'a> {
    profile: &'a ProfileFile,
    width: usize,
    sources: BTreeMap<Field, Source>,
    currency_column: Option<usize>,
    usd_column: Option<usize>,
}

/// The canonical trade fields in order, written once for the two lists below.
macro_rules! canonical_trade_fields {
    ($($first:literal),*) => {
        &[
            $($first,)*
            "declaration_id", "line_number", "declaration_date", "direction", "hs_code",
            "commodity_description", "importer_name", "importer_id", "importer_address",
            "exporter_name", "manufacturer_name", "manufacturer_id", "country_of_origin",
            "country_of_export", "country_of_destination", "reporting_country", "partner_country",
            "port", "transport_mode", "quantity", "quantity_unit", "net_weight_kg",
            "declared_value", "declared_currency", "declared_value_usd",
        ]
    };
}

/// The header of the canonical trade layout (`profiles/canonical.toml`, docs/formats.md), in
/// the order `dartts export-foreign` writes it.
pub const CANONICAL_HEADER: &[&str] = canonical_trade_fields!();

/// Columns of `trade_records` in the order `BoundProfile::map` produces them.
pub const TRADE_COLUMNS: &[&str] =
    canonical_trade_fields!("batch_id", "source_line", "provider_country");

impl BoundProfile<'_> {
    /// The header's columns this profile does not read (`input::unread_columns`).
    pub fn unread(&self, headers: &[String]) -> Vec<String> {
        unread_columns(headers, |i| {
            self.currency_column == Some(i)
                || self.usd_column == Some(i)
                || self
                    .sources
                    .values()
                    .any(|s| matches!(s, Source::Column(c) if *c == i))
        })
    }

    /// The field's value after code mapping; `None` when unmapped or empty.
    fn get(&self, fields: &[String], field: Field) -> Result<Option<String>, String> {
        let raw = match self.sources.get(&field) {
            None => return Ok(None),
            Some(Source::Constant(v)) => v.as_str(),
            Some(Source::Column(i)) => fields.get(*i).map_or("", String::as_str),
        };
        let Some(text) = values::optional(raw) else {
            return Ok(None);
        };
        match self.profile.codes.get(&field) {
            None => Ok(Some(text)),
            Some(map) => map.get(&text).cloned().map(Some).ok_or_else(|| {
                format!(
                    "{} code {text:?} is not in the profile's code list",
                    name(field)
                )
            }),
        }
    }

    fn req(&self, fields: &[String], field: Field) -> Result<String, String> {
        self.get(fields, field)?
            .ok_or_else(|| format!("{} is empty", name(field)))
    }

    /// Refuses a record that names a party or declaration in clear: what the foreign instance
    /// requires of US rows, which reach it only as `dartts export-foreign` writes them. An
    /// address has no pseudonym, so it must be absent.
    pub fn check_pseudonymized(&self, fields: &[String]) -> Result<(), String> {
        const PSEUDONYMS: [Field; 6] = [
            Field::DeclarationId,
            Field::ImporterName,
            Field::ImporterId,
            Field::ExporterName,
            Field::ManufacturerName,
            Field::ManufacturerId,
        ];
        let clear = PSEUDONYMS
            .into_iter()
            .find_map(|field| match self.get(fields, field) {
                Ok(Some(text)) if !crate::export_foreign::is_pseudonym(&text) => {
                    Some(format!("{} is not a pseudonym", name(field)))
                }
                _ => None,
            })
            .or_else(|| {
                matches!(self.get(fields, Field::ImporterAddress), Ok(Some(_)))
                    .then(|| format!("{} is not empty", name(Field::ImporterAddress)))
            });
        match clear {
            Some(what) => Err(format!(
                "{what}: the foreign instance takes US rows only as `dartts export-foreign` \
                 writes them"
            )),
            None => Ok(()),
        }
    }

    /// Maps the record read from `line` to a `trade_records` row (see `TRADE_COLUMNS`).
    pub fn map(
        &self,
        fields: &[String],
        batch_id: i64,
        line: u64,
        provider: &str,
    ) -> Result<Vec<Cell>, String> {
        if fields.len() != self.width {
            return Err(format!(
                "expected {} columns, found {}",
                self.width,
                fields.len()
            ));
        }
        let fmt = &self.profile.date_format;
        let text = |f: Field| self.get(fields, f);
        let country = |f: Field| -> Result<Option<String>, String> {
            match self.get(fields, f)? {
                Some(v) => values::country(&v, name(f)).map(Some),
                None => Ok(None),
            }
        };
        let number = |f: Field| -> Result<Option<f64>, String> {
            match self.get(fields, f)? {
                Some(v) => values::amount(&v, name(f), values::MAX_QUANTITY).map(Some),
                None => Ok(None),
            }
        };

        let declaration_id = self.req(fields, Field::DeclarationId)?;
        let line_number: i32 = match self.get(fields, Field::LineNumber)? {
            None => 1,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("line_number {v:?} is not a positive integer"))?,
        };
        let date = values::date(
            &self.req(fields, Field::DeclarationDate)?,
            "declaration_date",
            fmt,
            self.profile
                .date_years
                .map_or_else(values::Years::default, |[first, last]| values::Years {
                    first,
                    last,
                }),
        )?;
        let direction = values::one_of(
            &self.req(fields, Field::Direction)?,
            "direction",
            &["IMPORT", "EXPORT"],
        )?;
        let hs_code = values::hs_code(&self.req(fields, Field::HsCode)?)?;
        let origin = country(Field::CountryOfOrigin)?;
        let export = country(Field::CountryOfExport)?;
        let destination = country(Field::CountryOfDestination)?;
        let reporting = country(Field::ReportingCountry)?.unwrap_or_else(|| provider.to_owned());
        // The partner is the other side of the declaration as the reporting country sees it.
        let partner = match country(Field::PartnerCountry)? {
            Some(p) => Some(p),
            None if direction == "IMPORT" => export.clone().or_else(|| origin.clone()),
            None => destination.clone(),
        };
        let value = values::amount(
            &self.req(fields, Field::DeclaredValue)?,
            "declared_value",
            values::MAX_LOCAL_AMOUNT,
        )?;
        let (currency, value_usd) = self.to_usd(fields, value, date)?;

        Ok(vec![
            Cell::Int(batch_id),
            Cell::from(line),
            Cell::Text(provider.to_owned()),
            Cell::Text(declaration_id),
            Cell::Int(i64::from(line_number)),
            Cell::Date(date),
            Cell::Text(direction.to_owned()),
            Cell::Text(hs_code),
            text(Field::CommodityDescription)?.into(),
            text(Field::ImporterName)?.into(),
            text(Field::ImporterId)?.into(),
            text(Field::ImporterAddress)?.into(),
            text(Field::ExporterName)?.into(),
            text(Field::ManufacturerName)?.into(),
            text(Field::ManufacturerId)?.into(),
            origin.into(),
            export.into(),
            destination.into(),
            Cell::Text(reporting),
            partner.into(),
            text(Field::Port)?.into(),
            text(Field::TransportMode)?.into(),
            number(Field::Quantity)?.into(),
            text(Field::QuantityUnit)?.into(),
            number(Field::NetWeightKg)?.into(),
            Cell::Float(value),
            Cell::Text(currency),
            Cell::Float(value_usd),
        ])
    }

    fn to_usd(
        &self,
        fields: &[String],
        value: f64,
        date: NaiveDate,
    ) -> Result<(String, f64), String> {
        let spec = &self.profile.currency;
        let currency = match (&spec.code, self.currency_column) {
            (Some(code), _) => code.to_ascii_uppercase(),
            (None, Some(i)) => {
                let raw = fields
                    .get(i)
                    .map_or("", String::as_str)
                    .trim()
                    .to_ascii_uppercase();
                if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(format!("currency {raw:?} is not an ISO 4217 code"));
                }
                raw
            }
            (None, None) => return Err("no currency".into()),
        };
        if currency == "USD" {
            let usd = values::converted_usd(value, value, &currency)?;
            return Ok((currency, usd));
        }
        let given_usd = match self.usd_column {
            Some(i) => values::optional_amount(
                fields.get(i).map_or("", String::as_str),
                "declared_value_usd",
                values::MAX_USD,
            )?,
            None => None,
        };
        if let Some(usd) = given_usd {
            return Ok((currency, usd));
        }
        if let Some(until) = spec.valid_until.filter(|until| date > *until) {
            return Err(format!("no {currency}→USD rate after {until}"));
        }
        let rate = spec.units_per_usd.or_else(|| {
            spec.rates
                .iter()
                .rev()
                .find(|r| r.from <= date)
                .map(|r| r.units_per_usd)
        });
        match rate {
            Some(rate) => {
                let usd = values::converted_usd(value / rate, value, &currency)?;
                Ok((currency, usd))
            }
            None => Err(format!("no {currency}→USD rate for {date}")),
        }
    }
}

fn name(field: Field) -> &'static str {
    match field {
        Field::DeclarationId => "declaration_id",
        Field::LineNumber => "line_number",
        Field::DeclarationDate => "declaration_date",
        Field::Direction => "direction",
        Field::HsCode => "hs_code",
        Field::CommodityDescription => "commodity_description",
        Field::ImporterName => "importer_name",
        Field::ImporterId => "importer_id",
        Field::ImporterAddress => "importer_address",
        Field::ExporterName => "exporter_name",
        Field::ManufacturerName => "manufacturer_name",
        Field::ManufacturerId => "manufacturer_id",
        Field::CountryOfOrigin => "country_of_origin",
        Field::CountryOfExport => "country_of_export",
        Field::CountryOfDestination => "country_of_destination",
        Field::ReportingCountry => "reporting_country",
        Field::PartnerCountry => "partner_country",
        Field::Port => "port",
        Field::TransportMode => "transport_mode",
        Field::Quantity => "quantity",
        Field::QuantityUnit => "quantity_unit",
        Field::NetWeightKg => "net_weight_kg",
        Field::DeclaredValue => "declared_value",
    }
}

#[cfg(test)]
mod tests;
