use async_graphql::Value;
use serde_json::json;

use async_graphql::Variables;

use super::*;

fn setup() -> (Types, Policy) {
    let sdl = crate::graphql::sdl();
    let policy = Policy::load(None, &sdl, crate::accounts::ROLES).expect("shipped policy");
    (Types::from_sdl(&sdl).expect("served SDL"), policy)
}

fn plan_with(role: &str, query: &str, variables: serde_json::Value) -> Option<Plan> {
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

fn plan_as(role: &str, query: &str, operation: Option<&str>) -> Option<Plan> {
    let (types, policy) = setup();
    let doc = async_graphql::parser::parse_query(query).expect("query parses");
    let perms = policy.permissions(role, None);
    types.plan(&doc, operation, &Variables::default(), &policy, &perms)
}

fn plan(query: &str) -> Option<Plan> {
    plan_as("HSI_ANALYST", query, None)
}

fn count(plan: &Plan, data: serde_json::Value) -> u64 {
    plan.count(&Value::from_json(data).expect("json"))
}

const PAGE: &str = "{ tradeRecords(first: 3, filter: { countryOfOrigin: [\"CN\"] }) \
    { totalCount edges { cursor node { id hsCode declaredValueUsd } } } }";

#[test]
fn a_page_of_object_fields_is_planned_and_counts_its_non_null_records() {
    let plan = plan(PAGE).expect("planned");
    let data = json!({ "tradeRecords": { "totalCount": 3, "edges": [
        { "cursor": "a", "node": { "id": "1", "hsCode": "8471", "declaredValueUsd": 1.0 } },
        { "cursor": "b", "node": { "id": "2", "hsCode": "8471", "declaredValueUsd": 2.0 } },
        { "cursor": "c", "node": null },
    ] } });
    assert_eq!(count(&plan, data), 2);
    assert_eq!(count(&plan, json!({ "tradeRecords": null })), 0);
    assert_eq!(
        count(&plan, json!(null)),
        0,
        "a failed query delivers nothing"
    );
}

#[test]
fn a_field_the_role_may_not_read_runs_per_field() {
    // ADMIN reads no trade data at all; CBP officers no financial data.
    assert!(plan_as("ADMIN", PAGE, None).is_none());
    let linked = "{ tradeRecords { nodes { id linkedFinancialTransactions { amountUsd } } } }";
    assert!(plan_as("CBP_OFFICER", linked, None).is_none());
    assert!(plan_as("HSI_ANALYST", linked, None).is_some());
    // However the refused field is reached.
    for hidden in [
        "{ tradeRecords { nodes { ...F } } } fragment F on TradeRecord { linkedFinancialTransactions { id } }",
        "{ tradeRecords { nodes { ... on TradeRecord { linkedFinancialTransactions { id } } } } }",
        "{ tradeRecords { nodes { ... { x: linkedFinancialTransactions { id } } } } }",
    ] {
        assert!(plan_as("CBP_OFFICER", hidden, None).is_none(), "{hidden}");
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
        assert!(plan(query).is_none(), "{query}");
    }
}

#[test]
fn the_operation_that_runs_is_the_one_planned() {
    let two = "query A { tradeRecords { totalCount } } mutation B { unlockUser(userId: \"x\") { status } }";
    assert!(plan_as("HSI_ANALYST", two, Some("A")).is_some());
    assert!(plan_as("HSI_ANALYST", two, Some("B")).is_none());
    assert!(plan_as("HSI_ANALYST", two, None).is_none(), "ambiguous");
    assert!(plan_as("HSI_ANALYST", two, Some("C")).is_none(), "unknown");
    let one = "query A { tradeRecords { totalCount } }";
    assert!(plan_as("HSI_ANALYST", one, None).is_some());
    let anonymous = "{ tradeRecords { totalCount } }";
    assert!(plan_as("HSI_ANALYST", anonymous, Some("A")).is_none());
}

#[test]
fn fragments_that_spread_each_other_end_the_walk() {
    let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
    assert!(plan(cycle).is_none());
    // Doubling fragments: 2^30 selections expanded; the budget stops the walk early.
    let mut query = String::from("{ ...F0 } fragment F30 on Query { __typename }");
    for i in 0..30 {
        query.push_str(&format!(
            " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    assert!(plan(&query).is_none());
}

#[test]
fn every_selection_counts_by_the_hooks_rule() {
    // Aliases, a fragment selecting the same key again, and nested record lists.
    let query = "{ a: tradeRecords(first: 1) { nodes { id } } \
        tradeRecords { nodes { id linkedFinancialTransactions { id } } } ...F } \
        fragment F on Query { tradeRecords { edges { node { hsCode } } } }";
    let plan = plan(query).expect("planned");
    let data = json!({
        "a": { "nodes": [{ "id": "1" }] },
        "tradeRecords": {
            "nodes": [
                { "id": "1", "linkedFinancialTransactions": [{ "id": "f1" }, { "id": "f2" }] },
                { "id": "2", "linkedFinancialTransactions": [] },
            ],
            "edges": [{ "node": { "hsCode": "8471" } }, { "node": { "hsCode": "8471" } }],
        },
    });
    // 1 (a) + 2 trade records and 2 reports (nodes) + 2 (the fragment's edges).
    assert_eq!(count(&plan, data), 7);
}

#[test]
fn a_record_a_counted_row_explains_is_not_counted_again() {
    let query = "{ priceAnomalies { nodes { ratio record { id } } } }";
    let plan = plan(query).expect("planned");
    let data = json!({ "priceAnomalies": { "nodes": [
        { "ratio": 3.0, "record": { "id": "1" } },
        { "ratio": 4.0, "record": null },
    ] } });
    assert_eq!(
        count(&plan, data),
        2,
        "the two anomalies, not their records"
    );
}

#[test]
fn typename_is_neither_guarded_nor_counted() {
    let plan =
        plan("{ __typename tradeRecords { __typename nodes { __typename } } }").expect("planned");
    let data = json!({ "__typename": "Query", "tradeRecords": { "__typename": "C",
        "nodes": [{ "__typename": "TradeRecord" }] } });
    assert_eq!(count(&plan, data), 1);
    assert!(plan_as("ADMIN", "{ __typename }", None).is_some());
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
            plan_with("CBP_OFFICER", &refused(left_out), vars.clone()).is_some(),
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
            plan_with("CBP_OFFICER", &refused(kept), vars.clone()).is_none(),
            "{kept}"
        );
    }
    // On fragments, too.
    let spread = "query($no: Boolean!) { tradeRecords { nodes { id ...F @include(if: $no) } } } \
        fragment F on TradeRecord { linkedFinancialTransactions { id } }";
    assert!(plan_with("CBP_OFFICER", spread, json!({ "no": false })).is_some());
    assert!(plan_with("CBP_OFFICER", spread, json!({ "no": true })).is_none());
    let inline = "{ tradeRecords { nodes { id ... @skip(if: true) { linkedFinancialTransactions { id } } } } }";
    assert!(plan_as("CBP_OFFICER", inline, None).is_some());
    // What is left out is not counted either.
    let plan = plan_with(
        "HSI_ANALYST",
        "query($no: Boolean!) { tradeRecords { a: nodes @include(if: $no) { id } b: nodes { id } } }",
        json!({ "no": false }),
    )
    .expect("planned");
    let data = json!({ "tradeRecords": { "b": [{ "id": "1" }] } });
    assert_eq!(count(&plan, data), 1);
}
