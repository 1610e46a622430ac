//! Row scopes as SQL predicates. Every query that returns analytical rows adds one of these to
//! its `WHERE`, so rows outside the caller's scope are never fetched, counted or sorted.

use entities::{batch, trade_record};
use sea_orm::{ColumnTrait, Condition};

use crate::agreements::Grant;
use crate::policy::{Category, PermissionSet, RowScope};

/// The nation whose trade with each partner the foreign instance receives, anonymized.
pub const US: &str = "US";

/// A condition no row satisfies (ids are never NULL), portable across SQLite and PostgreSQL.
fn nothing<C: ColumnTrait>(id: C) -> Condition {
    Condition::all().add(id.is_null())
}

/// Trade rows the caller may see: all, or those their nation provided plus what sharing
/// agreements grant their nation plus, on the foreign instance (`us_partner_rows`), the US rows
/// whose partner is their nation — there they arrive anonymized; the domestic instance holds
/// them with the real US importers, which no partner may read.
pub fn trade(perms: &PermissionSet) -> Condition {
    use trade_record::Column;
    match (perms.rows, perms.nation.as_deref()) {
        (RowScope::All, _) => Condition::all(),
        (RowScope::OwnNation, Some(nation)) => {
            let mut any = Condition::any().add(Column::ProviderCountry.eq(nation));
            if perms.us_partner_rows {
                any = any.add(
                    Condition::all()
                        .add(Column::ProviderCountry.eq(US))
                        .add(Column::PartnerCountry.eq(nation)),
                );
            }
            for grant in &perms.grants {
                any = any.add(granted(grant));
            }
            any
        }
        _ => nothing(Column::Id),
    }
}

/// The `TradeRecord` fields `trade(perms)` reads, when they are only these: none for a caller
/// who reads every row, the provider and partner country for a nation scope without sharing
/// agreements. An answer summed in advance by those fields (a rollup) then gives the caller's
/// answer under the same condition. `None` when the scope reads more: an agreement bounds
/// dates and HS codes at any grain, and a caller with no scope reads nothing anyway.
pub fn trade_reads(perms: &PermissionSet) -> Option<&'static [&'static str]> {
    match (perms.rows, perms.nation.as_deref()) {
        (RowScope::All, _) => Some(&[]),
        (RowScope::OwnNation, Some(_)) if perms.grants.is_empty() => {
            Some(&["providerCountry", "partnerCountry"])
        }
        _ => None,
    }
}

/// The trade rows one sharing agreement covers.
fn granted(grant: &Grant) -> Condition {
    use trade_record::Column;
    let mut c = Condition::all()
        .add(Column::ProviderCountry.eq(grant.provider_country.as_str()))
        .add(Column::DeclarationDate.gte(grant.valid_from));
    if let Some(to) = grant.valid_to {
        c = c.add(Column::DeclarationDate.lte(to));
    }
    if let Some(partner) = &grant.partner_country {
        c = c.add(Column::PartnerCountry.eq(partner.as_str()));
    }
    if let Some(prefix) = &grant.hs_prefix {
        c = c.add(super::filters::digit_prefix(Column::HsCode, prefix));
    }
    c
}

/// Rows of non-trade data sets: all or nothing (no nation-scoped role may read them).
pub fn all_or_nothing<C: ColumnTrait>(perms: &PermissionSet, id: C) -> Condition {
    match perms.rows {
        RowScope::All => Condition::all(),
        _ => nothing(id),
    }
}

/// The data sets (`batches.dataset`) whose records the caller may read.
pub fn readable_datasets(perms: &PermissionSet) -> Vec<&'static str> {
    [
        (Category::Trade, "trade"),
        (Category::Financial, "financial"),
        (Category::LawEnforcement, "subjects"),
        (Category::Sdn, "sdn"),
    ]
    .into_iter()
    .filter(|(category, _)| perms.allows(*category))
    .map(|(_, dataset)| dataset)
    .collect()
}

/// Batches of the data sets the caller may read; nation-scoped callers see their own loads.
pub fn batches(perms: &PermissionSet) -> Condition {
    use batch::Column;
    let readable = readable_datasets(perms);
    match (perms.rows, perms.nation.as_deref()) {
        (RowScope::All, _) => Condition::all().add(Column::Dataset.is_in(readable)),
        (RowScope::OwnNation, Some(nation)) => Condition::all()
            .add(Column::Dataset.is_in(readable))
            .add(Column::ProviderCountry.eq(nation)),
        _ => nothing(Column::Id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

    fn perms(rows: RowScope, nation: Option<&str>, grants: Vec<Grant>) -> PermissionSet {
        PermissionSet {
            role: "TEST".into(),
            categories: Default::default(),
            rows,
            nation: nation.map(str::to_owned),
            quota: None,
            grants,
            us_partner_rows: true,
        }
    }

    /// The columns the trade scope's SQL names, as `TradeRecord` field names.
    fn fields_named(perms: &PermissionSet) -> Vec<String> {
        let sql = trade_record::Entity::find()
            .filter(trade(perms))
            .build(DbBackend::Postgres)
            .to_string();
        let condition = sql.split_once(" WHERE ").map_or("", |(_, w)| w);
        let mut fields: Vec<String> = condition
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|name| *name != "trade_records")
            .map(|column| {
                let mut parts = column.split('_');
                let first = parts.next().unwrap_or_default().to_owned();
                parts.fold(first, |mut camel, part| {
                    let mut chars = part.chars();
                    if let Some(c) = chars.next() {
                        camel.push(c.to_ascii_uppercase());
                        camel.push_str(chars.as_str());
                    }
                    camel
                })
            })
            .collect();
        fields.sort();
        fields.dedup();
        fields
    }

    /// `trade_reads` is what lets a rollup answer a scoped caller, so it must name every column
    /// the scope's condition reads; a scope that came to read another column without it saying
    /// so would be applied to a rollup that sums that column away.
    #[test]
    fn trade_reads_names_what_the_scope_condition_reads() {
        let grant = Grant {
            provider_country: "KR".into(),
            partner_country: None,
            hs_prefix: Some("84".into()),
            valid_from: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).expect("date"),
            valid_to: None,
        };
        let all = perms(RowScope::All, None, Vec::new());
        assert_eq!(trade_reads(&all), Some(&[][..]));
        assert!(fields_named(&all).is_empty());
        let nation = perms(RowScope::OwnNation, Some("CN"), Vec::new());
        let mut said: Vec<String> = trade_reads(&nation)
            .expect("a nation scope reads fields")
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
        said.sort();
        assert_eq!(fields_named(&nation), said);
        // Without the US rows (the domestic instance) it reads less, never more.
        let domestic = PermissionSet {
            us_partner_rows: false,
            ..nation.clone()
        };
        assert_eq!(fields_named(&domestic), ["providerCountry"]);
        // Agreements read dates and HS codes: no rollup may answer.
        let agreed = perms(RowScope::OwnNation, Some("CN"), vec![grant]);
        assert!(fields_named(&agreed).contains(&"declarationDate".to_owned()));
        assert_eq!(trade_reads(&agreed), None);
    }
}
