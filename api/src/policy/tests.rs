use super::*;
use crate::accounts::ROLES;

fn policy() -> Policy {
    Policy::load(None, &crate::graphql::sdl(), ROLES).unwrap()
}

#[test]
fn shipped_policy_is_valid_and_cbp_never_reads_financial() {
    let p = policy();
    for role in ["CBP_OFFICER", "CBP_IMPORT_SPECIALIST"] {
        let set = p.permissions(role, None);
        assert!(!set.allows(Category::Financial));
        assert!(set.allows(Category::LawEnforcement));
    }
    assert!(p.permissions("HSI_AGENT", None).allows(Category::Financial));
    assert_eq!(
        p.field_category("TradeRecord", "linkedFinancialTransactions"),
        Category::Financial
    );
    assert_eq!(p.field_category("TradeRecord", "hsCode"), Category::Trade);
    assert_eq!(p.field_category("NoSuchType", "x"), Category::Admin);
    // Signing in is the only thing that runs before authentication, and no role has it.
    assert_eq!(p.field_category("Mutation", "login"), Category::PreAuth);
    for role in ROLES {
        assert!(!p.permissions(role, Some("KR")).allows(Category::PreAuth));
    }
}

#[test]
fn deny_wins_over_allow() {
    let mut p = policy();
    if let Some(rule) = p.roles.get_mut("CBP_OFFICER") {
        rule.allow.push(Category::Financial);
    }
    assert!(
        !p.permissions("CBP_OFFICER", None)
            .allows(Category::Financial)
    );
}

#[test]
fn foreign_instance_serves_no_domestic_only_data_to_anyone() {
    let p = policy().for_instance(Instance::Foreign);
    for role in ROLES {
        let set = p.permissions(role, Some("KR"));
        for c in [Category::Financial, Category::LawEnforcement, Category::Sdn] {
            assert!(!set.allows(c), "{role} gets {c:?} on the foreign instance");
        }
    }
    // Not even where a policy file lets a partner read them.
    let dir = tempfile::tempdir().unwrap();
    let roles = BUILT_IN_ROLES.replace(
        "allow = [\"TRADE\", \"TRADE_PII\"]\ndeny = [\"FINANCIAL\", \"LAW_ENFORCEMENT\", \"SDN\", ",
        "allow = [\"TRADE\", \"TRADE_PII\", \"FINANCIAL\", \"LAW_ENFORCEMENT\", \"SDN\"]\ndeny = [",
    );
    assert_ne!(roles, BUILT_IN_ROLES);
    std::fs::write(dir.path().join("roles.toml"), roles).unwrap();
    std::fs::write(dir.path().join("fields.toml"), BUILT_IN_FIELDS).unwrap();
    let generous = Policy::load(Some(dir.path()), &crate::graphql::sdl(), ROLES).unwrap();
    assert!(
        generous
            .permissions("FOREIGN_PARTNER", Some("KR"))
            .allows(Category::Financial)
    );
    let generous = generous.for_instance(Instance::Foreign);
    let partner = generous.permissions("FOREIGN_PARTNER", Some("KR"));
    assert!(partner.allows(Category::Trade) && !partner.allows(Category::Financial));
}

#[test]
fn the_foreign_instance_has_no_users_of_the_domestic_agencies() {
    let (domestic, foreign) = (policy(), policy().for_instance(Instance::Foreign));
    for role in [
        "HSI_AGENT",
        "HSI_ANALYST",
        "CBP_OFFICER",
        "CBP_IMPORT_SPECIALIST",
    ] {
        assert!(domestic.serves(role) && domestic.permissions(role, None).allows(Category::Trade));
        // They read every row: there, every partner's declarations.
        assert!(!foreign.serves(role), "{role}");
        let set = foreign.permissions(role, None);
        assert!(
            set.categories.is_empty() && set.rows == RowScope::None,
            "{role}"
        );
    }
    for role in ["FOREIGN_PARTNER", "ADMIN"] {
        assert!(foreign.serves(role));
        assert_eq!(
            foreign.permissions(role, Some("KR")).categories,
            domestic.permissions(role, Some("KR")).categories
        );
    }
    assert!(!foreign.serves("JANITOR"));
}

#[test]
fn unknown_role_and_nationless_partner_get_nothing() {
    let p = policy();
    let nobody = p.permissions("JANITOR", None);
    assert!(nobody.categories.is_empty());
    assert_eq!(nobody.rows, RowScope::None);
    assert_eq!(p.permissions("FOREIGN_PARTNER", None).rows, RowScope::None);
    assert_eq!(
        p.permissions("FOREIGN_PARTNER", Some("KR")).rows,
        RowScope::OwnNation
    );
}

/// Reading the trade–financial link takes FINANCIAL and whatever the compared fields carry.
#[test]
fn a_derived_field_needs_the_categories_of_what_it_compares() {
    let shipped = policy();
    let analyst = shipped.permissions("HSI_ANALYST", None);
    let link = ("TradeRecord", "linkedFinancialTransactions");
    assert_eq!(shipped.missing_category(&analyst, link.0, link.1), None);
    let cbp = shipped.permissions("CBP_OFFICER", None);
    assert_eq!(
        shipped.missing_category(&cbp, link.0, link.1),
        Some(Category::Financial)
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roles.toml"), BUILT_IN_ROLES).unwrap();
    std::fs::write(
        dir.path().join("fields.toml"),
        BUILT_IN_FIELDS.replace(
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n",
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\nsubjectTin = \"ADMIN\"\n",
        ),
    )
    .unwrap();
    let edited = Policy::load(Some(dir.path()), &crate::graphql::sdl(), ROLES).unwrap();
    let analyst = edited.permissions("HSI_ANALYST", None);
    assert_eq!(
        edited.missing_category(&analyst, link.0, link.1),
        Some(Category::Admin)
    );
    assert_eq!(
        edited.missing_category(&analyst, "TradeRecord", "hsCode"),
        None
    );
}

#[test]
fn non_null_fields_refused_to_readers_of_their_type_are_named() {
    let sdl = crate::graphql::sdl();
    let shipped = Policy::load(None, &sdl, ROLES).unwrap();
    assert_eq!(
        shipped.nulls_parents(),
        &[] as &[String],
        "a shipped refusal of a non-null field would null the pages around it: make it nullable"
    );
    // `hsCode: String!` made TRADE_PII: its refusal would null a page for a role without it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roles.toml"), BUILT_IN_ROLES).unwrap();
    std::fs::write(
        dir.path().join("fields.toml"),
        BUILT_IN_FIELDS.replace(
            "[TradeRecord]\n\"*\" = \"TRADE\"\n",
            "[TradeRecord]\n\"*\" = \"TRADE\"\nhsCode = \"TRADE_PII\"\n",
        ),
    )
    .unwrap();
    let edited = Policy::load(Some(dir.path()), &sdl, ROLES).unwrap();
    assert_eq!(
        edited.nulls_parents(),
        ["TradeRecord.hsCode needs TRADE_PII (its type: TRADE)".to_owned()]
    );
}

#[test]
fn bad_policies_stop_start_up_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let write = |roles: &str, fields: &str| {
        std::fs::write(dir.path().join("roles.toml"), roles).unwrap();
        std::fs::write(dir.path().join("fields.toml"), fields).unwrap();
        Policy::load(Some(dir.path()), &crate::graphql::sdl(), ROLES)
            .unwrap_err()
            .to_string()
    };
    let err = write(
        BUILT_IN_ROLES,
        &BUILT_IN_FIELDS.replace(
            "linkedFinancialTransactions = \"FINANCIAL\"\n",
            "linkedFinancialTransaction = \"FINANCIAL\"\n",
        ),
    );
    assert!(
        err.contains("linkedFinancialTransaction is not in the schema"),
        "{err}"
    );
    let err = write(
        BUILT_IN_ROLES,
        &BUILT_IN_FIELDS.replace("[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n", ""),
    );
    assert!(
        err.contains("FinancialTransaction.") && err.contains("has no category"),
        "{err}"
    );
    let err = write(
        &BUILT_IN_ROLES.replace("\"SDN\"]", "\"SECRET\"]"),
        BUILT_IN_FIELDS,
    );
    assert!(err.contains("roles.toml"), "{err}");
    let err = write(
        &BUILT_IN_ROLES.replace("\"SDN\"]", "\"SDN\", \"PRE_AUTH\"]"),
        BUILT_IN_FIELDS,
    );
    assert!(err.contains("PRE_AUTH is implicit"), "{err}");
    let err = write(
        &BUILT_IN_ROLES.replace("[roles.ADMIN]", "[roles.JANITOR]"),
        BUILT_IN_FIELDS,
    );
    assert!(err.contains("JANITOR"), "{err}");
}
