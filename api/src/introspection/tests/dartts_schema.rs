//! The introspection filter against DARTTS's own schema, policy and filters (the tests above
//! use a small schema made for the purpose).

use super::*;

#[test]
fn dartts_roles_see_their_own_schema() {
    use crate::accounts::ROLES;
    use crate::config::Instance;
    let sdl = crate::graphql::sdl();
    let policy = Policy::load(None, &sdl, ROLES)
        .unwrap()
        .for_instance(Instance::Domestic);
    let full = View::parse(&sdl).unwrap();
    let view = |role: &str, nation: Option<&str>| {
        let perms = policy.permissions(role, nation);
        full.restrict(rule(&policy, &perms))
    };
    let cbp = view("CBP_OFFICER", None);
    assert!(!cbp.has_type("FinancialTransaction"));
    assert!(!cbp.has_type("FinancialTransactionConnection"));
    assert!(!cbp.has_field("Query", "financialTransactions"));
    assert!(!cbp.has_field("TradeRecord", "linkedFinancialTransactions"));
    assert!(!cbp.has_input_field("TradeRecordFilter", "linkedFinancialActivity"));
    assert!(cbp.has_input_field("TradeRecordFilter", "importerNameContains"));
    assert!(cbp.has_field("TradeRecord", "hsCode"));
    let hsi = view("HSI_ANALYST", None);
    assert!(hsi.has_field("Query", "financialTransactions"));
    assert!(hsi.has_field("TradeRecord", "linkedFinancialTransactions"));
    assert!(!hsi.has_type("Account"));
    assert!(!hsi.has_field("Batch", "loadedBy"));
    let partner = view("FOREIGN_PARTNER", Some("KR"));
    for gone in [
        "SubjectRecord",
        "SdnEntry",
        "SdnAlias",
        "FinancialTransaction",
    ] {
        assert!(!partner.has_type(gone), "{gone}");
    }
    let admin = view("ADMIN", None);
    assert!(admin.has_field("Query", "users"));
    assert!(admin.has_field("Query", "auditEvents"));
    assert!(!admin.has_field("Query", "tradeRecords"));
    assert!(!admin.has_type("TradeRecord"));
    // No principal holds PRE_AUTH: signing in is not part of anyone's schema.
    for role in ROLES {
        let seen = view(role, Some("KR"));
        assert!(!seen.has_field("Mutation", "login"), "{role}");
        assert!(!seen.has_type("LoginResult"), "{role}");
    }
}

/// DARTTS's schema as `role` sees it under a policy of the given `roles.toml` and
/// `fields.toml` texts (a changed copy of the shipped policy).
fn view_under(roles: &str, fields: &str, role: &str) -> View {
    use crate::config::Instance;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roles.toml"), roles).unwrap();
    std::fs::write(dir.path().join("fields.toml"), fields).unwrap();
    let sdl = crate::graphql::sdl();
    let policy = Policy::load(Some(dir.path()), &sdl, crate::accounts::ROLES)
        .unwrap()
        .for_instance(Instance::Domestic);
    let perms = policy.permissions(role, None);
    View::parse(&sdl).unwrap().restrict(rule(&policy, &perms))
}

#[test]
fn a_partial_view_of_records_hides_the_filters_that_read_its_hidden_fields() {
    // No shipped role reads some but not all of a financial or subject record, so this
    // policy makes one: HSI_AGENT loses TRADE_PII, and these fields become TRADE_PII.
    let roles = include_str!("../../../../policies/roles.toml").replace(
        "description = \"HSI special agent\"\nallow = [\"TRADE\", \"TRADE_PII\", ",
        "description = \"HSI special agent\"\nallow = [\"TRADE\", ",
    );
    let fields = include_str!("../../../../policies/fields.toml")
        .replace(
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n",
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\nsubjectTin = \"TRADE_PII\"\n",
        )
        .replace(
            "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\n",
            "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\nbusinessName = \"TRADE_PII\"\n",
        );
    let view = view_under(&roles, &fields, "HSI_AGENT");
    assert!(!view.has_field("FinancialTransaction", "subjectTin"));
    assert!(!view.has_input_field("FinancialTransactionFilter", "subjectTin"));
    assert!(view.has_input_field("FinancialTransactionFilter", "subjectNameContains"));
    assert!(view.has_input_field("FinancialTransactionFilter", "reportType"));
    // `nameContains` reads both names; one of them hidden is enough to hide it.
    assert!(view.has_field("SubjectRecord", "name"));
    assert!(!view.has_input_field("SubjectRecordFilter", "nameContains"));
    assert!(view.has_input_field("SubjectRecordFilter", "recordId"));
    // The trade–financial link compares the (now hidden) importer id and subject TIN.
    assert!(!view.has_field("TradeRecord", "linkedFinancialTransactions"));
    assert!(!view.has_input_field("TradeRecordFilter", "linkedFinancialActivity"));
    assert!(view.has_field("Query", "financialTransactions"));
}

/// A connection whose fixed order compares a field the role cannot read is not offered.
#[test]
fn a_connection_ordered_by_a_hidden_field_is_not_offered() {
    let fields = include_str!("../../../../policies/fields.toml").replace(
        "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n",
        "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\ntransactionDate = \"ADMIN\"\n",
    );
    let view = view_under(
        include_str!("../../../../policies/roles.toml"),
        &fields,
        "HSI_ANALYST",
    );
    assert!(!view.has_field("Query", "financialTransactions"));
    assert!(view.has_field("Query", "subjectRecords"));
}

/// READS' entry for the filter type `F` agrees with `F::fields_read`, member by member:
/// what introspection hides is exactly what the resolvers and exports refuse.
fn reads_match_fields_read<F: crate::graphql::filters::RecordFilter>(view: &View) {
    let ty = F::type_name();
    let entries: Vec<&Reads> = READS.iter().filter(|reads| reads.ty == ty).collect();
    assert_eq!(entries.len(), 1, "READS must list {ty} once");
    assert_eq!(entries[0].record, F::RECORD, "{ty}");
    let table: BTreeMap<&str, BTreeSet<&str>> = entries[0]
        .members
        .iter()
        .map(|(m, fields)| (*m, fields.iter().copied().collect()))
        .collect();
    let sample = |ty: &str| match ty {
        "Date" => Value::from("2024-01-01"),
        "Float" => Value::from(1.0),
        "Int" => Value::from(1),
        "Boolean" => Value::from(true),
        "String" | "ID" => Value::from("1"),
        other => {
            let first = view.types[other].values.first().cloned().unwrap();
            Value::Enum(Name::new(first))
        }
    };
    let inputs = &view.types[ty.as_ref()].input_fields;
    assert_eq!(
        inputs.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        table.keys().copied().collect::<BTreeSet<_>>(),
        "READS must list every {ty} field"
    );
    for (name, input) in inputs {
        let mut object = async_graphql::indexmap::IndexMap::new();
        object.insert(Name::new(name), sample(&input.ty));
        let filter = F::parse(Some(Value::Object(object)))
            .map_err(|e| e.into_server_error(Default::default()).message)
            .unwrap();
        let read: BTreeSet<&str> = filter.fields_read().into_iter().collect();
        assert_eq!(read, table[name.as_str()], "{ty}.{name}");
    }
    assert!(F::default().fields_read().is_empty(), "{ty}: empty filter");
}

#[test]
fn reads_match_what_each_filter_checks() {
    use crate::graphql::financial::FinancialTransactionFilter;
    use crate::graphql::subjects::SubjectRecordFilter;
    use crate::graphql::trade::TradeRecordFilter;
    let view = View::parse(&crate::graphql::sdl()).unwrap();
    reads_match_fields_read::<TradeRecordFilter>(&view);
    reads_match_fields_read::<FinancialTransactionFilter>(&view);
    reads_match_fields_read::<SubjectRecordFilter>(&view);
    reads_match_fields_read::<crate::graphql::mirror::MirrorFilter>(&view);
    reads_match_fields_read::<crate::graphql::trade_finance::TradeFinanceFilter>(&view);
    // Every filter input READS lists is one of those checked above (sort keys are checked
    // by `reads_name_real_members_and_fields`).
    let filters: BTreeSet<&str> = READS
        .iter()
        .filter(|reads| view.types[reads.ty].kind == Kind::InputObject)
        .map(|reads| reads.ty)
        .collect();
    assert_eq!(
        filters,
        BTreeSet::from([
            "TradeRecordFilter",
            "FinancialTransactionFilter",
            "SubjectRecordFilter",
            "MirrorFilter",
            "TradeFinanceFilter"
        ])
    );
}

#[test]
fn reads_name_real_members_and_fields() {
    let view = View::parse(&crate::graphql::sdl()).unwrap();
    for Reads {
        ty,
        record,
        members,
    } in READS
    {
        let def = &view.types[*ty];
        for (member, fields) in *members {
            assert!(
                def.input_fields.contains_key(*member) || def.values.contains(*member),
                "{ty}.{member}"
            );
            for field in *fields {
                assert!(view.has_field(record, field), "{record}.{field}");
            }
        }
    }
    // Sort keys are named after the field they sort on; every one is listed.
    let sort = &view.types["TradeRecordSortField"].values;
    let listed: BTreeMap<&str, &[&str]> = READS
        .iter()
        .filter(|reads| reads.ty == "TradeRecordSortField")
        .flat_map(|reads| reads.members.iter().copied())
        .collect();
    for value in sort {
        let camel: String = value
            .split('_')
            .enumerate()
            .map(|(i, word)| {
                let lower = word.to_lowercase();
                if i == 0 {
                    return lower;
                }
                let mut chars = lower.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            listed.get(value.as_str()).copied(),
            Some(&[camel.as_str()][..]),
            "{value}"
        );
    }
}
