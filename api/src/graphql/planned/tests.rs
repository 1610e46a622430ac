use serde_json::json;

use async_graphql::Variables;

use super::*;

fn setup() -> (Types, Policy) {
    let sdl = crate::graphql::sdl();
    let policy = Policy::load(None, &sdl, crate::accounts::ROLES).expect("shipped policy");
    (Types::from_sdl(&sdl).expect("served SDL"), policy)
}

fn plan_with(role: &str, query: &str, variables: serde_json::Value) -> bool {
    let (types, policy) = setup();
    let doc = async_graphql::parser::parse_query(query).expect("query parses");
    let variables = Variables::from_json(variables);
    types.plan(
        &doc,
        None,
        &variables,
        &policy,
        &policy.permissions(role, None),
    )
}

fn plan_as(role: &str, query: &str, operation: Option<&str>) -> bool {
    let (types, policy) = setup();
    let doc = async_graphql::parser::parse_query(query).expect("query parses");
    let perms = policy.permissions(role, None);
    types.plan(&doc, operation, &Variables::default(), &policy, &perms)
}

fn plan(query: &str) -> bool {
    plan_as("HSI_ANALYST", query, None)
}

const PAGE: &str = "{ tradeRecords(first: 3, filter: { countryOfOrigin: [\"CN\"] }) \
    { totalCount edges { cursor node { id hsCode declaredValueUsd } } } }";

#[test]
fn a_page_of_object_fields_is_planned() {
    assert!(plan(PAGE));
}

#[test]
fn a_field_the_role_may_not_read_runs_per_field() {
    // ADMIN reads no trade data at all; CBP officers no financial data.
    assert!(!plan_as("ADMIN", PAGE, None));
    let linked = "{ tradeRecords { nodes { id linkedFinancialTransactions { amountUsd } } } }";
    assert!(!plan_as("CBP_OFFICER", linked, None));
    assert!(plan_as("HSI_ANALYST", linked, None));
    // However the refused field is reached.
    for hidden in [
        "{ tradeRecords { nodes { ...F } } } fragment F on TradeRecord { linkedFinancialTransactions { id } }",
        "{ tradeRecords { nodes { ... on TradeRecord { linkedFinancialTransactions { id } } } } }",
        "{ tradeRecords { nodes { ... { x: linkedFinancialTransactions { id } } } } }",
    ] {
        assert!(!plan_as("CBP_OFFICER", hidden, None), "{hidden}");
    }
}

#[test]
fn what_is_decided_at_run_time_runs_per_field() {
    for query in [
        // An interface: the concrete type is known when it resolves.
        "{ node(id: \"x\") { id } }",
        "{ tradeRecords { nodes { ... on Node { id } } } }",
        // Directives other than `@skip`/`@include` on a selection.
        "{ tradeRecords { nodes { id @deprecated } } }",
        "{ ...F } fragment F on Query @deprecated { tradeRecords { totalCount } }",
        "query Q @include(if: true) { tradeRecords { totalCount } }",
        // Introspection.
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"TradeRecord\") { name } }",
        // A mutation.
        "mutation { unlockUser(userId: \"x\") { status } }",
        // Documents that will not validate.
        "{ tradeRecords { noSuchField } }",
        "{ tradeRecords }",
        "{ tradeRecords { totalCount { x } } }",
        "{ tradeRecords { nodes { ...F } } } fragment F on FinancialTransaction { id }",
        "{ tradeRecords { nodes { ...Missing } } }",
    ] {
        assert!(!plan(query), "{query}");
    }
}

#[test]
fn the_operation_that_runs_is_the_one_planned() {
    let two = "query A { tradeRecords { totalCount } } mutation B { unlockUser(userId: \"x\") { status } }";
    assert!(plan_as("HSI_ANALYST", two, Some("A")));
    assert!(!plan_as("HSI_ANALYST", two, Some("B")));
    assert!(!plan_as("HSI_ANALYST", two, None), "ambiguous");
    assert!(!plan_as("HSI_ANALYST", two, Some("C")), "unknown");
    let one = "query A { tradeRecords { totalCount } }";
    assert!(plan_as("HSI_ANALYST", one, None));
    let anonymous = "{ tradeRecords { totalCount } }";
    assert!(!plan_as("HSI_ANALYST", anonymous, Some("A")));
}

#[test]
fn fragments_that_spread_each_other_end_the_walk() {
    let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
    assert!(!plan(cycle));
    // Doubling fragments: 2^30 selections expanded; the budget stops the walk early.
    let mut query = String::from("{ ...F0 } fragment F30 on Query { __typename }");
    for i in 0..30 {
        query.push_str(&format!(
            " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    assert!(!plan(&query));
}

#[test]
fn typename_is_not_guarded() {
    assert!(plan(
        "{ __typename tradeRecords { __typename nodes { __typename } } }"
    ));
    assert!(plan_as("ADMIN", "{ __typename }", None));
}

#[test]
fn skip_and_include_are_decided_as_async_graphql_decides_them() {
    let refused = |directive: &str| {
        format!(
            "query($no: Boolean!, $yes: Boolean!, $v: Boolean, $d: Boolean = true) \
             {{ tradeRecords {{ nodes {{ id fin: linkedFinancialTransactions {directive} {{ id }} }} }} }}"
        )
    };
    let vars = json!({ "no": false, "yes": true });
    // Left out: the refused field is never resolved, so nothing refuses it.
    for left_out in [
        "@include(if: false)",
        "@skip(if: true)",
        "@include(if: $no)",
        "@skip(if: $yes)",
        // A missing variable is null, and null is false.
        "@include(if: $v)",
        // The variables as sent: async-graphql 7 leaves the default out of this decision.
        "@include(if: $d)",
        // Not a Boolean: false.
        "@include(if: \"yes\")",
        "@skip(if: true) @include(if: true)",
        "@include(if: true) @include(if: false)",
    ] {
        assert!(
            plan_with("CBP_OFFICER", &refused(left_out), vars.clone()),
            "{left_out}"
        );
    }
    // Kept: refused, so run per field.
    for kept in [
        "@include(if: true)",
        "@skip(if: false)",
        "@include(if: $yes)",
        "@skip(if: $no)",
        "@skip(if: $v)",
        "@skip(if: $d)",
        "@skip(if: false) @include(if: true)",
        "@include",
    ] {
        assert!(
            !plan_with("CBP_OFFICER", &refused(kept), vars.clone()),
            "{kept}"
        );
    }
    // On fragments, too.
    let spread = "query($no: Boolean!) { tradeRecords { nodes { id ...F @include(if: $no) } } } \
        fragment F on TradeRecord { linkedFinancialTransactions { id } }";
    assert!(plan_with("CBP_OFFICER", spread, json!({ "no": false })));
    assert!(!plan_with("CBP_OFFICER", spread, json!({ "no": true })));
    let inline = "{ tradeRecords { nodes { id ... @skip(if: true) { linkedFinancialTransactions { id } } } } }";
    assert!(plan_as("CBP_OFFICER", inline, None));
}
