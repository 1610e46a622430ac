use async_graphql::{PathSegment, ServerError, Value, Variables};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn types() -> Types {
    Types::from_sdl(&crate::graphql::sdl()).expect("served SDL")
}

/// An error at `path`, written `tradeRecords/edges/0/node` (empty: no path).
fn error_at(path: &str) -> ServerError {
    let mut error = ServerError::new("refused", None);
    error.path = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.parse::<usize>() {
            Ok(index) => PathSegment::Index(index),
            Err(_) => PathSegment::Field(segment.to_owned()),
        })
        .collect();
    error
}

/// JSON text as `async_graphql::Value` writes it: compact, keys in the text's order (a
/// `serde_json::Value` would sort them).
fn canon(text: &str) -> String {
    let value: Value = serde_json::from_str(text).expect("json");
    serde_json::to_string(&value).expect("json")
}

/// The completed `data` (given as JSON text, keys in its order) as `canon` text, and the
/// records it delivers (`None`: not known).
fn run(
    query: &str,
    variables: serde_json::Value,
    data: &str,
    errors: &[ServerError],
) -> (String, Option<u64>) {
    let doc = async_graphql::parser::parse_query(query).expect("query parses");
    let mut data: Value = serde_json::from_str(data).expect("json");
    let records = complete(
        &types(),
        &doc,
        None,
        &Variables::from_json(variables),
        &mut data,
        errors,
    );
    (serde_json::to_string(&data).expect("json"), records)
}

fn shaped_with(
    query: &str,
    variables: serde_json::Value,
    data: &str,
    errors: &[ServerError],
) -> String {
    run(query, variables, data, errors).0
}

fn shaped(query: &str, data: &str, errors: &[ServerError]) -> String {
    shaped_with(query, json!({}), data, errors)
}

fn counted_with(
    query: &str,
    variables: serde_json::Value,
    data: &str,
    errors: &[ServerError],
) -> Option<u64> {
    run(query, variables, data, errors).1
}

fn counted(query: &str, data: &str) -> Option<u64> {
    counted_with(query, json!({}), data, &[])
}

const PAGE: &str = "{ tradeRecords(first: 2) { edges { node { hsCode importerName } } } \
    me { role username } }";

#[test]
fn keys_come_in_selection_order_with_fragments_merged_where_first_selected() {
    let data = r#"{"me": {"username": "ana", "role": "HSI_ANALYST"},
        "tradeRecords": {"edges": [{"node": {"importerName": "X", "hsCode": "8471"}}]}}"#;
    assert_eq!(
        shaped(PAGE, data, &[]),
        canon(
            r#"{"tradeRecords": {"edges": [{"node": {"hsCode": "8471", "importerName": "X"}}]},
            "me": {"role": "HSI_ANALYST", "username": "ana"}}"#
        )
    );
    let query = "query { me { username } ...F b: me { role } } \
        fragment F on Query { me { role } a: me { id } }";
    let data = r#"{"b": {"role": "R"}, "a": {"id": "1"}, "me": {"role": "R", "username": "u"}}"#;
    assert_eq!(
        shaped(query, data, &[]),
        canon(r#"{"me": {"username": "u", "role": "R"}, "a": {"id": "1"}, "b": {"role": "R"}}"#),
        "`me` selected twice is one key, at its first place, its fields merged in order"
    );
}

#[test]
fn an_erring_nullable_field_is_null_in_place() {
    let data = r#"{"me": {"role": "CBP_OFFICER"},
        "tradeRecords": {"edges": [{"node": {"hsCode": "8471"}}]}}"#;
    let errors = [error_at("tradeRecords/edges/0/node/importerName")];
    assert_eq!(
        shaped(
            "{ tradeRecords(first: 1) { edges { node { hsCode importerName } } } me { role } }",
            data,
            &errors
        ),
        canon(
            r#"{"tradeRecords": {"edges": [{"node": {"hsCode": "8471", "importerName": null}}]},
            "me": {"role": "CBP_OFFICER"}}"#
        )
    );
    let errors = [error_at("financialTransactions")];
    assert_eq!(
        shaped(
            "{ financialTransactions(first: 1) { totalCount } me { role } }",
            r#"{"me": {"role": "CBP_OFFICER"}}"#,
            &errors
        ),
        canon(r#"{"financialTransactions": null, "me": {"role": "CBP_OFFICER"}}"#)
    );
}

#[test]
fn a_null_at_a_non_null_type_nulls_the_nearest_nullable_parent() {
    // `TradeRecord.hsCode: String!` in `edges: [TradeRecordEdge!]!` of a nullable connection.
    let errors = [error_at("tradeRecords/edges/1/node/hsCode")];
    let data = r#"{"me": {"role": "R", "username": "u"}, "tradeRecords": {"edges": [
        {"node": {"hsCode": "1", "importerName": "A"}}, {"node": {"importerName": "B"}}]}}"#;
    assert_eq!(
        shaped(PAGE, data, &errors),
        canon(r#"{"tradeRecords": null, "me": {"role": "R", "username": "u"}}"#)
    );
    // `me: Me!` on the root: nothing nullable above it, so `data` itself is null.
    let errors = [error_at("me")];
    let data = r#"{"tradeRecords": {"edges": []}}"#;
    assert_eq!(shaped(PAGE, data, &errors), "null");
}

#[test]
fn an_object_whose_every_field_erred_is_an_object_of_nulls() {
    // async-graphql returns null for an object none of whose fields resolved.
    let errors = [
        error_at("tradeRecords/edges/0/node/importerName"),
        error_at("tradeRecords/edges/0/node/importerId"),
    ];
    let query = "{ tradeRecords(first: 1) { edges { node { importerName importerId } } } }";
    let data = r#"{"tradeRecords": {"edges": [{"node": null}]}}"#;
    assert_eq!(
        shaped(query, data, &errors),
        canon(
            r#"{"tradeRecords": {"edges": [{"node": {"importerName": null, "importerId": null}}]}}"#
        )
    );
    // A null object with no error inside it is a null value: at `TradeRecord!` it propagates.
    assert_eq!(shaped(query, data, &[]), canon(r#"{"tradeRecords": null}"#));
}

#[test]
fn skipped_selections_stay_out_and_typename_is_kept() {
    let query = "query($no: Boolean!) { me { role @skip(if: true) username t: __typename \
        id @include(if: $no) } }";
    let data = r#"{"me": {"t": "Me", "username": "u"}}"#;
    assert_eq!(
        shaped_with(query, json!({ "no": false }), data, &[]),
        canon(r#"{"me": {"username": "u", "t": "Me"}}"#)
    );
    // Every field left out: async-graphql's null is the empty object the specification gives.
    assert_eq!(
        shaped("{ me { role @skip(if: true) } }", r#"{"me": null}"#, &[]),
        canon(r#"{"me": {}}"#)
    );
}

#[test]
fn an_interface_value_is_shaped_by_the_object_type_its_keys_settle() {
    let query = r#"{ node(id: "x") { id ... on TradeRecord { hsCode importerName }
        ... on Batch { providerCountry } } }"#;
    let errors = [error_at("node/importerName")];
    assert_eq!(
        shaped(query, r#"{"node": {"hsCode": "8471", "id": "x"}}"#, &errors),
        canon(r#"{"node": {"id": "x", "hsCode": "8471", "importerName": null}}"#)
    );
    // `{ id }` fits a trade record and a batch, which select different fields: the global id
    // names the type; a value that does not settle is left as built.
    let batch = crate::graphql::ids::encode(crate::graphql::ids::NodeType::Batch, 7).0;
    assert_eq!(
        shaped(query, &format!(r#"{{"node": {{"id": "{batch}"}}}}"#), &[]),
        canon(&format!(
            r#"{{"node": {{"id": "{batch}", "providerCountry": null}}}}"#
        ))
    );
    assert_eq!(
        shaped(query, r#"{"node": {"id": "x"}}"#, &[]),
        canon(r#"{"node": {"id": "x"}}"#)
    );
    // Fields of the interface only: every object type selects the same, so it is shaped.
    assert_eq!(
        shaped(
            r#"{ node(id: "x") { __typename id } }"#,
            r#"{"node": {"id": "x", "__typename": "Batch"}}"#,
            &[]
        ),
        canon(r#"{"node": {"__typename": "Batch", "id": "x"}}"#)
    );
}

#[test]
fn what_the_walk_cannot_read_is_left_as_built() {
    // A request error: no data.
    assert_eq!(shaped(PAGE, "null", &[error_at("")]), "null");
    // A key the operation does not select: the walk does not read the document as it ran.
    let data = r#"{"extra": 1, "me": {"username": "u", "role": "R"}}"#;
    assert_eq!(shaped(PAGE, data, &[]), canon(data));
    // Introspection is not in the served SDL: its value is not touched.
    let data = r#"{"__schema": {"types": [{"name": "Query", "kind": "OBJECT"}]}}"#;
    assert_eq!(
        shaped("{ __schema { types { kind name } } }", data, &[]),
        canon(data)
    );
}

#[test]
fn each_delivered_record_counts_by_the_hooks_rule() {
    let page = "{ tradeRecords(first: 3) { totalCount edges { cursor node { id hsCode } } } }";
    let data = r#"{"tradeRecords": {"totalCount": 3, "edges": [
        {"cursor": "a", "node": {"id": "1", "hsCode": "8471"}},
        {"cursor": "b", "node": {"id": "2", "hsCode": "8471"}}]}}"#;
    assert_eq!(counted(page, data), Some(2));
    assert_eq!(counted(page, r#"{"tradeRecords": null}"#), Some(0));
    assert_eq!(
        counted(page, "null"),
        Some(0),
        "a failed query delivers nothing"
    );
    // Aliases, a fragment selecting the same key again, and nested record lists.
    let query = "{ a: tradeRecords(first: 1) { nodes { id } } \
        tradeRecords { nodes { id linkedFinancialTransactions { id } } } ...F } \
        fragment F on Query { tradeRecords { edges { node { hsCode } } } }";
    let data = r#"{"a": {"nodes": [{"id": "1"}]}, "tradeRecords": {
        "nodes": [{"id": "1", "linkedFinancialTransactions": [{"id": "f1"}, {"id": "f2"}]},
                  {"id": "2", "linkedFinancialTransactions": []}],
        "edges": [{"node": {"hsCode": "8471"}}, {"node": {"hsCode": "8471"}}]}}"#;
    // 1 (a) + 2 trade records and 2 reports (nodes) + 2 (the fragment's edges).
    assert_eq!(counted(query, data), Some(7));
    // A row and the record it explains count once, as the row.
    let query = "{ priceAnomalies { nodes { ratio record { id } } } }";
    let data = r#"{"priceAnomalies": {"nodes": [
        {"ratio": 3.0, "record": {"id": "1"}}, {"ratio": 4.0, "record": {"id": "2"}}]}}"#;
    assert_eq!(
        counted(query, data),
        Some(2),
        "the two anomalies, not their records"
    );
    // `__typename` is no record; what `@include` left out is not delivered.
    let query = "query($no: Boolean!) { __typename tradeRecords { __typename \
        a: nodes @include(if: $no) { id } b: nodes { __typename } } }";
    let data = r#"{"__typename": "Query", "tradeRecords": {"__typename": "C",
        "b": [{"__typename": "TradeRecord"}]}}"#;
    assert_eq!(
        counted_with(query, json!({ "no": false }), data, &[]),
        Some(1)
    );
    // Through `node(id:)`: the value counts by the field's type, as the hook counts it.
    let query =
        r#"{ node(id: "x") { id ... on TradeRecord { linkedFinancialTransactions { id } } } }"#;
    let data = r#"{"node": {"id": "x", "linkedFinancialTransactions": [{"id": "f"}]}}"#;
    assert_eq!(counted(query, data), Some(2));
}

#[test]
fn records_nulled_with_their_parent_are_not_delivered_nor_counted() {
    let errors = [error_at("tradeRecords/edges/1/node/hsCode")];
    let data = r#"{"me": {"role": "R", "username": "u"}, "tradeRecords": {"edges": [
        {"node": {"hsCode": "1", "importerName": "A"}}, {"node": {"importerName": "B"}}]}}"#;
    assert_eq!(counted_with(PAGE, json!({}), data, &errors), Some(0));
    // An object of nulls is still the record it was.
    let errors = [error_at("tradeRecords/edges/0/node/importerName")];
    let data = r#"{"tradeRecords": {"edges": [{"node": null}]}}"#;
    let query = "{ tradeRecords(first: 1) { edges { node { importerName } } } }";
    assert_eq!(counted_with(query, json!({}), data, &errors), Some(1));
}

#[test]
fn a_value_left_as_built_leaves_the_count_unknown() {
    let query =
        r#"{ node(id: "x") { id ... on TradeRecord { hsCode } ... on Batch { fileName } } }"#;
    assert_eq!(counted(query, r#"{"node": {"id": "x"}}"#), None);
    assert_eq!(counted(PAGE, r#"{"extra": 1}"#), None);
    // An interface value async-graphql nulled because every field of it erred: which object
    // type it was is not known, so it stays null and its records are the hook's to count.
    let query = r#"{ node(id: "x") { ... on TradeRecord { importerName } } }"#;
    let errors = [error_at("node/importerName")];
    assert_eq!(
        run(query, json!({}), r#"{"node": null}"#, &errors),
        ("{\"node\":null}".to_owned(), None)
    );
    // One key naming two fields (refused before execution, `conflict`): were it run, its
    // trade records must not go uncounted as fields `Me` does not have.
    let merged = "{ a: me { role } ... on Query { a: tradeRecords { nodes { id } } } }";
    let data = r#"{"a": {"role": "R", "nodes": [{"id": "1"}]}}"#;
    assert_eq!(counted(merged, data), None);
    assert_eq!(
        counted(PAGE, r#"{"tradeRecords": {"edges": 3}}"#),
        None,
        "not a list"
    );
}

/// The `conflict` of `query`, as its message.
fn conflict(query: &str) -> Option<String> {
    let pending = Pending {
        types: Arc::new(types()),
        doc: async_graphql::parser::parse_query(query).expect("query parses"),
        operation_name: None,
        variables: Variables::default(),
    };
    pending.conflict().map(|error| error.message)
}

#[test]
fn one_key_for_two_fields_that_meet_on_one_type_is_a_conflict() {
    // async-graphql's own check compares fields under one type condition only.
    let message = conflict("{ a: me { role } ... on Query { a: tradeRecords { totalCount } } }")
        .expect("a conflict");
    assert!(
        message.contains(r#""a" conflict because "me" and "tradeRecords" are different fields"#),
        "{message}"
    );
    let message = conflict(
        "{ tradeRecords(first: 1) { totalCount } ...F } \
         fragment F on Query { tradeRecords(first: 2) { totalCount } }",
    )
    .expect("a conflict");
    assert!(message.contains("differing arguments"), "{message}");
    // Nested, under a key both fields share.
    assert!(conflict("{ me { x: role } ... on Query { me { x: username } } }").is_some());
    // Under an interface: fragments on two object types never meet on one value.
    assert_eq!(
        conflict(
            r#"{ node(id: "x") { ... on TradeRecord { x: hsCode } ... on Batch { x: fileName } } }"#
        ),
        None
    );
    // ... but their values must have one shape (`SameResponseShape`).
    let message = conflict(
        r#"{ node(id: "x") { ... on TradeRecord { x: hsCode } ... on Batch { x: acceptedRows } } }"#,
    )
    .expect("a conflict");
    assert!(
        message.contains(r#""x" conflict because they return conflicting types"#)
            && message.contains(r#""String!""#)
            && message.contains(r#""Int!""#),
        "{message}"
    );
    // Nullability is part of the shape; a list is not an item.
    assert!(
        conflict(
            r#"{ node(id: "x") { ... on TradeRecord { x: importerName } ... on Batch { x: fileName } } }"#
        )
        .is_some()
    );
    assert!(
        conflict(
            r#"{ node(id: "x") { ... on TradeRecord { x: id } ... on SdnEntry { x: aliases { name } } } }"#
        )
        .is_some()
    );
    // An object's nullability too: `TradeRecord.batch` may be null, `SdnEntry.batch` not.
    let message = conflict(
        r#"{ node(id: "x") { ... on TradeRecord { b: batch { n: fileName } }
                             ... on SdnEntry { b: batch { n: fileName } } } }"#,
    )
    .expect("a conflict");
    assert!(
        message.contains(r#""Batch""#) && message.contains(r#""Batch!""#),
        "{message}"
    );
    assert!(
        conflict(
            r#"{ node(id: "x") { ... on TradeRecord { b: batch { id } } ... on Batch { b: loadedBy } } }"#
        )
        .is_some()
    );
    assert_eq!(
        conflict(
            r#"{ node(id: "x") { ... on TradeRecord { x: hsCode } ... on SdnEntry { x: name } } }"#
        ),
        None,
        "different fields of one shape under one key"
    );
    assert_eq!(
        conflict(r#"{ node(id: "x") { id __typename ... on Batch { id } } }"#),
        None
    );
    // The same field with the same arguments, in any order, merges.
    assert_eq!(
        conflict(
            "{ tradeRecords(first: 1, after: null) { totalCount } \
             ... on Query { tradeRecords(after: null, first: 1) { nodes { id } } } }"
        ),
        None
    );
    assert_eq!(conflict(PAGE), None);
    // What `@skip` leaves out is not there to conflict.
    assert_eq!(
        conflict(
            "{ a: me { role } ... on Query { a: tradeRecords @skip(if: true) { totalCount } } }"
        ),
        None
    );
}

#[test]
fn objects_under_one_key_are_compared_by_their_shared_keys() {
    // The served schema has no two object fields of one nullability on different node types,
    // so the rule below objects is shown on a schema of its own.
    let sdl = "interface Node { id: ID! }
        type A implements Node { id: ID! o: O }
        type B implements Node { id: ID! o: O p: P }
        type O { s: String n: Int }
        type P { s: String t: String }
        type Query { node(id: ID!): Node }";
    let conflict = |query: &str| {
        Pending {
            types: Arc::new(Types::from_sdl(sdl).expect("sdl")),
            doc: async_graphql::parser::parse_query(query).expect("query parses"),
            operation_name: None,
            variables: Variables::default(),
        }
        .conflict()
        .map(|error| error.message)
    };
    let message =
        conflict(r#"{ node(id: "x") { ... on A { o { v: s } } ... on B { o { v: n } } } }"#)
            .expect("a conflict");
    assert!(
        message.contains(r#""o" conflict because subfields "v" conflict"#),
        "{message}"
    );
    // Different object types, fields of one shape: `s` and `t` are both `String`.
    assert_eq!(
        conflict(r#"{ node(id: "x") { ... on A { o: o { v: s } } ... on B { o: p { v: t } } } }"#),
        None
    );
    assert!(
        conflict(r#"{ node(id: "x") { ... on A { o: o { v: n } } ... on B { o: p { v: t } } } }"#)
            .is_some()
    );
    // Keys only one side selects do not meet.
    assert_eq!(
        conflict(r#"{ node(id: "x") { ... on A { o { n } } ... on B { o: p { t } } } }"#),
        None
    );
}

const FIELDS: [&str; 6] = [
    "hsCode",
    "importerName",
    "declarationId",
    "lineNumber",
    "commodityDescription",
    "importerId",
];

/// `value` as JSON text with every object's keys rotated by `seed`: a completion order.
fn scrambled(value: &Value, seed: u64) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            let shift = usize::try_from(seed % 97).unwrap_or(0) % entries.len().max(1);
            entries.rotate_left(shift);
            let fields: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("{:?}: {}", key.as_str(), scrambled(value, seed / 3)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(|item| scrambled(item, seed / 5)).collect();
            format!("[{}]", items.join(", "))
        }
        other => serde_json::to_string(other).expect("json"),
    }
}

proptest! {
    /// A complete response whose keys came in any order comes out in selection order, with
    /// the same values: shaping moves values, it never changes one.
    #[test]
    fn any_completion_order_gives_the_selection_order(
        picked in proptest::sample::subsequence(FIELDS.to_vec(), 1..=FIELDS.len()),
        rows in 0usize..4,
        seed in any::<u64>(),
    ) {
        let query = format!(
            "{{ tradeRecords(first: 3) {{ totalCount edges {{ cursor node {{ {} }} }} }} \
             me {{ role }} }}",
            picked.join(" ")
        );
        let node = |row: usize| {
            let fields: Vec<String> = picked
                .iter()
                .map(|field| match *field {
                    "lineNumber" => format!("\"{field}\": {row}"),
                    _ => format!("\"{field}\": \"{field}{row}\""),
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        };
        let edges: Vec<String> = (0..rows)
            .map(|row| format!("{{\"cursor\": \"c{row}\", \"node\": {}}}", node(row)))
            .collect();
        let expected = canon(&format!(
            "{{\"tradeRecords\": {{\"totalCount\": {rows}, \"edges\": [{}]}}, \
             \"me\": {{\"role\": \"R\"}}}}",
            edges.join(", ")
        ));
        let value: Value = serde_json::from_str(&expected).expect("json");
        prop_assert_eq!(shaped(&query, &scrambled(&value, seed), &[]), expected);
    }
}
