//! Which GraphQL types are delivered records, and the per-request count of those resolved.
//!
//! The quota and the audit record count what the executor *resolved*, not what the response's
//! keys are called: aliases, `nodes` instead of `edges`, `node(id:)` and nested lists all pass
//! through the same resolution. Every resolved, non-null value whose type is a record type
//! counts one; a list counts through its items (async-graphql resolves each item through the
//! extensions with the item's type). A record reached twice in one response counts twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::Value;
use async_graphql::extensions::{ExtensionContext, ResolveInfo};

/// Types whose instances are analytical records: each one delivered counts against the quota.
/// A new record type (an analysis row, a screening hit …) is one line here; the test below
/// fails until it is added.
pub const RECORD_TYPES: &[&str] = &[
    "TradeRecord",
    "FinancialTransaction",
    "SubjectRecord",
    "SdnEntry",
    "TradeTotal",
    "MirrorDiscrepancy",
    "TradeFinanceMismatch",
    "PriceAnomaly",
    "ValueMovedTotal",
    "RedFlag",
    "ScreeningHit",
];

/// Abstract types that may resolve to a record: a non-null value counts one, whatever the
/// concrete type (a `Batch` through `node(id:)` counts too: over-counting is the safe side).
pub const RECORD_INTERFACES: &[&str] = &["Node"];

/// Types carrying analytical data that are only ever delivered inside a record (an SDN entry's
/// aliases): counted with their record, not on their own. The test below checks that every
/// field returning one sits on a record type or another part.
pub const PARTS_OF_RECORDS: &[&str] = &[
    "SdnAlias",
    "SdnAddress",
    "MirrorSide",
    "StructuringEpisode",
    "RedFlagFact",
];

/// Types whose fields are in an analytical category but that deliver no record of their own:
/// a screening result echoes the caller's input and holds the hits (each counted as a
/// `ScreeningHit`); an entity view holds parts that count by their own types. Listed, not inferred, so a new type is never exempt by accident.
pub const CONTAINERS: &[&str] = &["ScreeningResult", "ScreenedParty", "PartyHit", "EntityView"];

/// Fields that return the record a counted row is about: a price anomaly's trade record, a red
/// flag's, a screening hit's SDN entry or TECS record. The row and the record it explains are
/// delivered together and count once, as the row (which counts even without them).
pub const ABOUT: &[(&str, &str)] = &[
    ("PriceAnomaly", "record"),
    ("RedFlag", "record"),
    ("ScreeningHit", "sdnEntry"),
    ("ScreeningHit", "subjectRecord"),
];

/// The named type of a qualified type (`[TradeRecord!]!` → `TradeRecord`) and whether it is a list.
fn named(qualified: &str) -> (&str, bool) {
    let list = qualified.starts_with('[');
    (
        qualified.trim_matches(|c| c == '[' || c == ']' || c == '!'),
        list,
    )
}

/// Whether one resolved value of this (qualified) type is one record. Lists are not: their
/// items are resolved, and counted, one by one.
pub fn is_record(return_type: &str) -> bool {
    let (name, list) = named(return_type);
    !list && (RECORD_TYPES.contains(&name) || RECORD_INTERFACES.contains(&name))
}

/// The request's count of resolved records; `delivery` puts one into each request and reads
/// it after execution.
#[derive(Clone, Default)]
pub struct Delivered(Arc<AtomicU64>);

impl Delivered {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether the field being resolved delivers a record when it resolves to a value.
pub fn counts(info: &ResolveInfo<'_>) -> bool {
    !info.is_for_introspection && counts_field(info.parent_type, info.name, info.return_type)
}

/// Whether a value of `parent.name`, of the (qualified) `return_type`, delivers a record: the
/// rule of `counts`, also applied ahead of execution by `planned`.
pub fn counts_field(parent: &str, name: &str, return_type: &str) -> bool {
    is_record(return_type) && !ABOUT.contains(&(parent, name))
}

/// Counts `value`, the resolution of a field for which `counts` held, if it is not null.
pub fn count(ctx: &ExtensionContext<'_>, value: &Option<Value>) {
    if value.as_ref().is_some_and(|v| *v != Value::Null)
        && let Some(delivered) = ctx.data_opt::<Delivered>()
    {
        delivered.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    use super::*;
    use crate::policy::{Category, Policy};

    const ANALYTICAL: &[Category] = &[
        Category::Trade,
        Category::TradePii,
        Category::Financial,
        Category::LawEnforcement,
        Category::Sdn,
    ];

    #[test]
    fn return_types_name_their_records() {
        assert!(is_record("TradeRecord!"));
        assert!(is_record("Node"));
        assert!(!is_record("[TradeRecord!]!"));
        assert!(!is_record("TradeRecordConnection!"));
        assert!(!is_record("SdnAlias!"));
    }

    /// Walks the served schema: every field whose type carries analytical data (a field of it
    /// in TRADE, TRADE_PII, FINANCIAL, LAW_ENFORCEMENT or SDN) or may be such a type (an
    /// interface or union one implements) must be counted, or be a part that only a counted
    /// record carries.
    #[test]
    fn every_field_returning_analytical_data_is_counted() {
        let sdl = crate::graphql::sdl();
        let policy = Policy::load(None, &sdl, crate::accounts::ROLES).expect("shipped policy");
        let doc = async_graphql::parser::parse_schema(&sdl).expect("sdl");
        // type → (its fields with their named types, the abstract types it belongs to)
        let mut fields: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut abstracts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for def in &doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            let name = t.node.name.node.to_string();
            let (own, implements) = match &t.node.kind {
                TypeKind::Object(o) => (&o.fields, &o.implements),
                TypeKind::Interface(i) => (&i.fields, &i.implements),
                TypeKind::Union(u) => {
                    for member in &u.members {
                        abstracts
                            .entry(member.node.to_string())
                            .or_default()
                            .insert(name.clone());
                    }
                    continue;
                }
                _ => continue,
            };
            for i in implements {
                abstracts
                    .entry(name.clone())
                    .or_default()
                    .insert(i.node.to_string());
            }
            fields.insert(
                name,
                own.iter()
                    .map(|f| {
                        (
                            f.node.name.node.to_string(),
                            crate::introspection::named(&f.node.ty.node).to_owned(),
                        )
                    })
                    .collect(),
            );
        }
        let analytical: BTreeSet<&str> = fields
            .iter()
            .filter(|(ty, own)| {
                own.iter().any(|(field, _)| {
                    ANALYTICAL.contains(&policy.field_category(ty.as_str(), field))
                })
            })
            .map(|(ty, _)| ty.as_str())
            .collect();
        let mut uncounted = Vec::new();
        for (parent, own) in &fields {
            for (field, ty) in own {
                let counted =
                    RECORD_TYPES.contains(&ty.as_str()) || RECORD_INTERFACES.contains(&ty.as_str());
                let part_in_record = PARTS_OF_RECORDS.contains(&ty.as_str())
                    && (RECORD_TYPES.contains(&parent.as_str())
                        || PARTS_OF_RECORDS.contains(&parent.as_str()));
                let may_be_record = analytical.contains(ty.as_str())
                    || analytical.iter().any(|record| {
                        abstracts
                            .get(*record)
                            .is_some_and(|of| of.contains(ty.as_str()))
                    });
                if may_be_record
                    && !counted
                    && !part_in_record
                    && !CONTAINERS.contains(&ty.as_str())
                {
                    uncounted.push(format!("{parent}.{field}: {ty}"));
                }
            }
        }
        assert!(
            uncounted.is_empty(),
            "fields deliver analytical data without counting it (add the type to \
             RECORD_TYPES in api/src/graphql/records.rs): {uncounted:?}"
        );
        // An exemption is only for the record a counted row explains, never for a row itself.
        for (parent, field) in ABOUT {
            assert!(
                RECORD_TYPES.contains(parent),
                "{parent} is not a record type"
            );
            assert!(
                fields
                    .get(*parent)
                    .is_some_and(|own| own.iter().any(|(f, _)| f == field)),
                "{parent}.{field} is not in the schema"
            );
        }
        for listed in RECORD_TYPES
            .iter()
            .chain(RECORD_INTERFACES)
            .chain(PARTS_OF_RECORDS)
            .chain(CONTAINERS)
        {
            assert!(
                fields.contains_key(*listed),
                "{listed} is not in the schema"
            );
        }
    }
}
