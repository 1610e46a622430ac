use std::sync::OnceLock;

use async_graphql::{
    EmptySubscription, Enum, ID, InputObject, Interface, Object, Schema, SimpleObject, Union,
};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::*;

const INTROSPECTION_QUERY: &str = include_str!("../../../tests/introspection/query.graphql");

// A small schema with every shape the filter handles: an interface and its
// implementations, a union, an input object with a required field, an enum of sort keys,
// a required argument, a mutation root. Categories: A any account, T trade, P trade PII,
// F financial, S secrets, U audit, X admin.

#[derive(SimpleObject)]
struct Trade {
    id: ID,
    hs_code: String,
    importer: String,
    money: Vec<Money>,
    batch: Batch,
}

#[derive(SimpleObject)]
struct Money {
    id: ID,
    amount: f64,
}

#[derive(SimpleObject)]
struct Batch {
    id: ID,
    loaded_by: String,
}

#[derive(SimpleObject)]
struct Alert {
    text: String,
}

#[derive(Union)]
enum Hit {
    Trade(Trade),
    Alert(Alert),
}

#[derive(Interface)]
#[graphql(field(name = "id", ty = "&ID"))]
enum Node {
    Trade(Trade),
    Money(Money),
    Batch(Batch),
}

#[derive(InputObject)]
struct TradeFilter {
    hs_code: Option<String>,
    importer: Option<String>,
    linked: Option<bool>,
}

#[derive(InputObject)]
struct Secret {
    key: String,
    hint: Option<String>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    HsCode,
    Importer,
}

fn trade() -> Trade {
    Trade {
        id: ID::from("t"),
        hs_code: String::new(),
        importer: String::new(),
        money: vec![Money {
            id: ID::from("m"),
            amount: 0.0,
        }],
        batch: Batch {
            id: ID::from("b"),
            loaded_by: String::new(),
        },
    }
}

struct Query;

#[Object]
impl Query {
    async fn trades(&self, _filter: Option<TradeFilter>, _order: Option<SortKey>) -> Vec<Trade> {
        vec![trade()]
    }
    async fn money(&self, _min: Option<f64>) -> Vec<Money> {
        trade().money
    }
    async fn node(&self, id: ID) -> Option<Node> {
        Some(match id.as_str() {
            "t" => Node::Trade(trade()),
            "m" => Node::Money(trade().money.remove(0)),
            _ => Node::Batch(trade().batch),
        })
    }
    async fn search(&self, text: String) -> Vec<Hit> {
        vec![Hit::Trade(trade()), Hit::Alert(Alert { text })]
    }
    async fn unlock(&self, secret: Secret) -> bool {
        secret.key == secret.hint.unwrap_or_default()
    }
    async fn me(&self) -> String {
        String::new()
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn wipe(&self) -> bool {
        false
    }
}

type TestSchema = Schema<Query, Mutation, EmptySubscription>;

fn schema() -> &'static TestSchema {
    static SCHEMA: OnceLock<TestSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::new(Query, Mutation, EmptySubscription))
}

fn category(member: Member<'_>) -> char {
    match member {
        Member::Field { ty, name } => match (ty, name) {
            ("Query", "trades" | "search") => 'T',
            ("Query", "money") | ("Trade", "money") | ("Money", _) => 'F',
            ("Query", "unlock") => 'S',
            ("Mutation", _) => 'X',
            ("Trade", "importer") => 'P',
            ("Trade" | "Alert", _) => 'T',
            ("Batch", "loadedBy") => 'U',
            _ => 'A',
        },
        Member::InputField { ty, name } | Member::EnumValue { ty, name } => match (ty, name) {
            ("TradeFilter", "importer") | ("SortKey", "IMPORTER") => 'P',
            ("TradeFilter", "linked") => 'F',
            ("Secret", "key") => 'S',
            _ => 'A',
        },
    }
}

fn role(categories: &str) -> impl Fn(Member<'_>) -> bool + '_ {
    move |member| categories.contains(category(member))
}

fn full_view() -> &'static View {
    static VIEW: OnceLock<View> = OnceLock::new();
    VIEW.get_or_init(|| View::parse(&schema().sdl()).unwrap())
}

fn run(query: &str) -> async_graphql::Response {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let response = runtime.block_on(schema().execute(query));
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    response
}

/// `query` executed unfiltered, then filtered with `allowed`: (data, error codes).
fn filtered(query: &str, allowed: impl Fn(Member<'_>) -> bool) -> (Json, Vec<String>) {
    let mut response = run(query);
    filter(query, &mut response, allowed);
    answer(response)
}

fn filtered_op(query: &str, operation: &str) -> (Json, Vec<String>) {
    let request = async_graphql::Request::new(query).operation_name(operation);
    let plan = Plan::of(&request).expect("asks for introspection");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut response = runtime.block_on(schema().execute(request));
    plan.apply(&full_view().restrict(role("AT")), &mut response);
    answer(response)
}

fn filter(
    query: &str,
    response: &mut async_graphql::Response,
    allowed: impl Fn(Member<'_>) -> bool,
) {
    let plan = Plan::of(&async_graphql::Request::new(query)).expect("asks for introspection");
    plan.apply(&full_view().restrict(allowed), response);
}

fn answer(response: async_graphql::Response) -> (Json, Vec<String>) {
    let codes = response
        .errors
        .iter()
        .map(|e| {
            let code = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
            code.map_or_else(String::new, |c| c.to_string().trim_matches('"').to_owned())
        })
        .collect();
    (response.data.into_json().unwrap(), codes)
}

fn full_schema(allowed: impl Fn(Member<'_>) -> bool) -> Json {
    static UNFILTERED: OnceLock<Json> = OnceLock::new();
    let unfiltered = UNFILTERED.get_or_init(|| run(INTROSPECTION_QUERY).data.into_json().unwrap());
    let mut response = async_graphql::Response::new(Value::from_json(unfiltered.clone()).unwrap());
    filter(INTROSPECTION_QUERY, &mut response, allowed);
    let (data, codes) = answer(response);
    assert!(codes.is_empty(), "{codes:?}");
    data["__schema"].clone()
}

fn named_type(mut ty: &Json) -> &str {
    while ty["name"].is_null() && !ty["ofType"].is_null() {
        ty = &ty["ofType"];
    }
    ty["name"].as_str().unwrap_or_default()
}

fn names(list: &Json) -> Vec<&str> {
    list.as_array()
        .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default()
}

fn find<'j>(schema: &'j Json, name: &str) -> Option<&'j Json> {
    schema["types"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
}

/// Written against the introspection JSON alone, independently of `View`: the result is
/// a schema a client can use, and shows nothing `allowed` hides.
fn check(schema: &Json, allowed: &dyn Fn(Member<'_>) -> bool) -> Result<(), String> {
    let types: BTreeMap<&str, &Json> = schema["types"]
        .as_array()
        .ok_or("no types")?
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or_default(), t))
        .collect();
    let exists = |name: &str, context: &str| {
        if types.contains_key(name) {
            Ok(())
        } else {
            Err(format!("{context} refers to {name}, which is not listed"))
        }
    };
    exists(
        schema["queryType"]["name"].as_str().unwrap_or_default(),
        "queryType",
    )?;
    if let Some(mutation) = schema["mutationType"]["name"].as_str() {
        exists(mutation, "mutationType")?;
    }
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, ty) in &types {
        let user = !name.starts_with("__");
        let kind = ty["kind"].as_str().unwrap_or_default();
        let nonempty = |key: &str| ty[key].as_array().is_some_and(|l| !l.is_empty());
        // The query root is kept even when a rule hides all of it: a schema needs one.
        let root = schema["queryType"]["name"] == *name;
        let ok = match kind {
            "OBJECT" | "INTERFACE" => root || nonempty("fields"),
            "INPUT_OBJECT" => nonempty("inputFields"),
            "ENUM" => nonempty("enumValues"),
            "UNION" => nonempty("possibleTypes"),
            _ => true,
        };
        if !ok {
            return Err(format!("{name} ({kind}) is empty"));
        }
        let out = edges.entry(name).or_default();
        for field in ty["fields"].as_array().into_iter().flatten() {
            let f = field["name"].as_str().unwrap_or_default();
            if user && !allowed(Member::Field { ty: name, name: f }) {
                return Err(format!("{name}.{f} is shown"));
            }
            let target = named_type(&field["type"]);
            exists(target, &format!("{name}.{f}"))?;
            out.push(target);
            for arg in field["args"].as_array().into_iter().flatten() {
                let target = named_type(&arg["type"]);
                exists(target, &format!("{name}.{f}({})", arg["name"]))?;
                out.push(target);
            }
        }
        for input in ty["inputFields"].as_array().into_iter().flatten() {
            let f = input["name"].as_str().unwrap_or_default();
            if user && !allowed(Member::InputField { ty: name, name: f }) {
                return Err(format!("input {name}.{f} is shown"));
            }
            let target = named_type(&input["type"]);
            exists(target, &format!("{name}.{f}"))?;
            out.push(target);
        }
        for value in names(&ty["enumValues"]) {
            if user
                && !allowed(Member::EnumValue {
                    ty: name,
                    name: value,
                })
            {
                return Err(format!("{name}.{value} is shown"));
            }
        }
        for interface in names(&ty["interfaces"]) {
            exists(interface, &format!("{name} implements"))?;
            out.push(interface);
            let wanted = names(&types[interface]["fields"]);
            let own = names(&ty["fields"]);
            if let Some(missing) = wanted.iter().find(|f| !own.contains(f)) {
                return Err(format!("{name} implements {interface} without {missing}"));
            }
            if !names(&types[interface]["possibleTypes"]).contains(name) {
                return Err(format!(
                    "{interface} does not list its implementation {name}"
                ));
            }
        }
        for possible in names(&ty["possibleTypes"]) {
            exists(possible, &format!("{name} possible type"))?;
            out.push(possible);
            if kind == "INTERFACE" && !names(&types[possible]["interfaces"]).contains(name) {
                return Err(format!(
                    "{possible} is listed under {name} without implementing it"
                ));
            }
        }
    }
    // Nothing is listed that a client could not reach from a root.
    let mut stack: Vec<&str> = vec![schema["queryType"]["name"].as_str().unwrap_or_default()];
    stack.extend(schema["mutationType"]["name"].as_str());
    stack.extend(BUILT_IN_SCALARS);
    stack.extend(types.keys().filter(|n| n.starts_with("__")));
    let mut seen = BTreeSet::new();
    while let Some(name) = stack.pop() {
        if seen.insert(name) {
            stack.extend(edges.get(name).into_iter().flatten());
        }
    }
    match types.keys().find(|n| !seen.contains(*n)) {
        Some(orphan) => Err(format!("{orphan} is listed but unreachable")),
        None => Ok(()),
    }
}

#[test]
fn everything_allowed_changes_nothing() {
    let unfiltered = run(INTROSPECTION_QUERY).data.into_json().unwrap();
    let everything = full_schema(|_| true);
    assert_eq!(everything, unfiltered["__schema"]);
    check(&everything, &|_| true).unwrap();
}

#[test]
fn a_role_without_financial_data_sees_no_trace_of_it() {
    let allowed = role("ATP");
    let schema = full_schema(&allowed);
    check(&schema, &allowed).unwrap();
    assert!(find(&schema, "Money").is_none());
    let query = names(&find(&schema, "Query").unwrap()["fields"]);
    assert_eq!(query, ["trades", "node", "search", "me"]);
    let trade = names(&find(&schema, "Trade").unwrap()["fields"]);
    assert_eq!(trade, ["id", "hsCode", "importer", "batch"]);
    let filter = names(&find(&schema, "TradeFilter").unwrap()["inputFields"]);
    assert_eq!(filter, ["hsCode", "importer"]);
    let node = names(&find(&schema, "Node").unwrap()["possibleTypes"]);
    assert_eq!(node, ["Trade", "Batch"]);
    assert_eq!(names(&find(&schema, "Batch").unwrap()["fields"]), ["id"]);
    // `wipe` was the only mutation: no mutation root at all.
    assert_eq!(schema["mutationType"], Json::Null);
    assert!(find(&schema, "Mutation").is_none());
    // `Secret.key` is required and hidden: the input type and `unlock`, which needs it, go.
    assert!(find(&schema, "Secret").is_none());
}

#[test]
fn without_pii_sort_keys_and_filters_on_it_go_too() {
    let allowed = role("AT");
    let schema = full_schema(&allowed);
    check(&schema, &allowed).unwrap();
    let sort = names(&find(&schema, "SortKey").unwrap()["enumValues"]);
    assert_eq!(sort, ["HS_CODE"]);
    let filter = names(&find(&schema, "TradeFilter").unwrap()["inputFields"]);
    assert_eq!(filter, ["hsCode"]);
}

#[test]
fn an_administrator_sees_accounts_not_records() {
    let allowed = role("AXU");
    let schema = full_schema(&allowed);
    check(&schema, &allowed).unwrap();
    let listed = names(&schema["types"]);
    for gone in [
        "Trade",
        "Money",
        "Alert",
        "Hit",
        "TradeFilter",
        "SortKey",
        "Secret",
    ] {
        assert!(!listed.contains(&gone), "{gone} in {listed:?}");
    }
    let query = names(&find(&schema, "Query").unwrap()["fields"]);
    assert_eq!(query, ["node", "me"]);
    assert_eq!(
        names(&find(&schema, "Node").unwrap()["possibleTypes"]),
        ["Batch"]
    );
    assert_eq!(
        names(&find(&schema, "Batch").unwrap()["fields"]),
        ["id", "loadedBy"]
    );
    assert_eq!(schema["mutationType"]["name"], "Mutation");
}

#[test]
fn a_principal_with_nothing_to_query_still_gets_a_query_root() {
    let allowed = |m: Member<'_>| !matches!(m, Member::Field { ty: "Query", .. });
    let schema = full_schema(allowed);
    check(&schema, &allowed).unwrap();
    assert_eq!(schema["queryType"]["name"], "Query");
    assert_eq!(find(&schema, "Query").unwrap()["fields"], json!([]));
    for gone in [
        "Trade",
        "Money",
        "Batch",
        "Node",
        "Hit",
        "TradeFilter",
        "Secret",
    ] {
        assert!(find(&schema, gone).is_none(), "{gone}");
    }
    assert_eq!(schema["mutationType"]["name"], "Mutation");
}

#[test]
fn a_union_keeps_only_members_with_something_to_show() {
    // Alert has nothing left to show: it leaves the union, which keeps Trade.
    let allowed = |m: Member<'_>| !matches!(m, Member::Field { ty: "Alert", .. });
    let schema = full_schema(allowed);
    check(&schema, &allowed).unwrap();
    assert_eq!(
        names(&find(&schema, "Hit").unwrap()["possibleTypes"]),
        ["Trade"]
    );
    assert!(find(&schema, "Alert").is_none());
}

#[test]
fn type_lookups_of_hidden_types_are_null_under_any_alias() {
    let query = r#"{
            __type(name: "Money") { name }
            m: __type(name: "Money") { name fields { name } }
            t: __type(name: "Trade") { n: name f: fields { x: name a: args { name } } i: interfaces { name } }
            n: __type(name: "Node") { name possibleTypes { name } }
            f: __type(name: "TradeFilter") { name inputFields { name type { name kind } } }
            w: __type(name: "NoSuchType") { name }
            me
        }"#;
    let (data, codes) = filtered(query, role("AT"));
    assert!(codes.is_empty(), "{codes:?}");
    assert_eq!(
        data,
        json!({
            "__type": null,
            "m": null,
            "t": { "n": "Trade", "f": [
                { "x": "id", "a": [] },
                { "x": "hsCode", "a": [] },
                { "x": "batch", "a": [] },
            ], "i": [{ "name": "Node" }] },
            "n": { "name": "Node", "possibleTypes": [{ "name": "Trade" }, { "name": "Batch" }] },
            "f": { "name": "TradeFilter", "inputFields": [
                { "name": "hsCode", "type": { "name": "String", "kind": "SCALAR" } },
            ] },
            "w": null,
            "me": "",
        })
    );
}

#[test]
fn fragments_and_nested_type_references_are_filtered_too() {
    let query = r#"
            query Q { ...Root }
            fragment Root on Query { __type(name: "Query") { ...T } }
            fragment T on __Type {
                name
                fields { ... on __Field { name type { ...Ref } } }
            }
            fragment Ref on __Type {
                name ofType { name ofType { name ofType { name fields { name } } } }
            }
        "#;
    let (data, codes) = filtered(query, role("AT"));
    assert!(codes.is_empty(), "{codes:?}");
    let fields = &data["__type"]["fields"];
    assert_eq!(names(fields), ["trades", "node", "search", "me"]);
    // trades: [Trade!]! — the Trade reached through the wrappers lost `importer`, `money`.
    let trade = &fields[0]["type"]["ofType"]["ofType"]["ofType"];
    assert_eq!(trade["name"], "Trade", "{data}");
    assert_eq!(names(&trade["fields"]), ["id", "hsCode", "batch"]);
}

#[test]
fn results_whose_identity_is_not_selected_are_withheld() {
    for query in [
        r#"{ __type(name: "Trade") { fields { description } } }"#,
        r#"{ __type(name: "Trade") { kind } }"#,
        r#"{ __type(name: "Trade") { name a: fields { name } b: fields { description } } }"#,
        r#"{ __type(name: "Query") { name fields { name args { description } } } }"#,
        r#"{ __type(name: "SortKey") { name enumValues { description } } }"#,
        r#"{ __type(name: "Node") { name possibleTypes { kind } } }"#,
        r#"{ me __type(name: "Trade") { name @skip(if: true) fields { name } } }"#,
    ] {
        let (data, codes) = filtered(query, role("AT"));
        assert_eq!(codes, ["BAD_USER_INPUT"], "{query}");
        assert_eq!(data["__type"], Json::Null, "{query}: {data}");
    }
    // `__schema` is non-null: withholding it nulls `data`, as null propagation would.
    let (data, codes) = filtered("{ me __schema { types { kind } } }", role("AT"));
    assert_eq!(codes, ["BAD_USER_INPUT"]);
    assert_eq!(data, Json::Null);
}

#[test]
fn keys_hidden_behind_deeply_nested_fragments_are_refused_not_guessed() {
    // async-graphql's own recursion limit refuses such a document before execution; the
    // filter must not depend on that, so it is given a hand-made result here.
    let depth = MAX_FRAGMENT_NESTING + 5;
    let mut query = String::from("query Q { ...F0 }\n");
    for i in 0..depth {
        query.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
    }
    query.push_str(&format!(
        "fragment F{depth} on Query {{ __type(name: \"Money\") {{ name fields {{ name }} }} }}\n"
    ));
    let data = json!({ "__type": { "name": "Money", "fields": [{ "name": "amount" }] } });
    let mut response = async_graphql::Response::new(Value::from_json(data).unwrap());
    filter(&query, &mut response, role("AT"));
    let (data, codes) = answer(response);
    assert_eq!(codes, ["BAD_USER_INPUT"]);
    assert_eq!(data, Json::Null);
}

#[test]
fn hand_made_results_of_unexpected_shape_are_refused() {
    let query = r#"{ __type(name: "Trade") { name fields { name } } }"#;
    for data in [
        // `fields` must be a list.
        json!({ "__type": { "name": "Trade", "fields": { "name": "money" } } }),
        // A field without its name.
        json!({ "__type": { "name": "Trade", "fields": [{}] } }),
        // A key the document does not explain.
        json!({ "__type": { "name": "Trade", "extra": [{ "name": "money" }] } }),
    ] {
        let mut response = async_graphql::Response::new(Value::from_json(data).unwrap());
        filter(query, &mut response, role("AT"));
        let (data, codes) = answer(response);
        assert_eq!(codes, ["BAD_USER_INPUT"]);
        assert_eq!(data, json!({ "__type": null }));
    }
    let data = json!({ "__type": { "name": "Trade", "fields": [
            { "name": "id" }, { "name": "money" }, { "name": "importer" },
        ] } });
    let mut response = async_graphql::Response::new(Value::from_json(data).unwrap());
    filter(query, &mut response, role("AT"));
    assert_eq!(
        answer(response),
        (
            json!({ "__type": { "name": "Trade", "fields": [{ "name": "id" }] } }),
            vec![]
        )
    );
}

#[test]
fn only_documents_asking_for_introspection_are_planned() {
    let plan = |q: &str, op: Option<&str>| {
        let mut request = async_graphql::Request::new(q);
        if let Some(op) = op {
            request = request.operation_name(op);
        }
        Plan::of(&request).is_some()
    };
    assert!(plan("{ __schema { types { name } } }", None));
    assert!(plan("{ x: __type(name: \"A\") { name } }", None));
    assert!(plan(
        "query A { me } query B { __schema { types { name } } }",
        Some("B")
    ));
    // Another operation's introspection is enough to plan (and harmless: `A`'s result
    // has none to filter).
    assert!(plan(
        "query A { me } query B { __schema { types { name } } }",
        Some("A")
    ));
    let (data, codes) = filtered_op(
        "query A { me } query B { __schema { types { name } } }",
        "A",
    );
    assert_eq!((data, codes), (json!({ "me": "" }), vec![]));
    assert!(!plan("{ me __typename }", None));
    assert!(!plan(
        "{ search(text: \"__schema __type\") { __typename } }",
        None
    ));
    assert!(!plan("{ __schema {", None));
}

/// Every member of the test schema, for random rules.
fn members() -> Vec<(String, String, u8)> {
    let view = full_view();
    let mut out = Vec::new();
    for (ty, def) in &view.types {
        out.extend(def.fields.keys().map(|f| (ty.clone(), f.clone(), 0)));
        out.extend(def.input_fields.keys().map(|f| (ty.clone(), f.clone(), 1)));
        out.extend(def.values.iter().map(|v| (ty.clone(), v.clone(), 2)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the rule hides, the result is a valid schema showing nothing hidden, and
    /// `__type` answers exactly for the types `__schema` lists.
    #[test]
    fn any_rule_leaves_a_valid_schema(hidden in proptest::collection::vec(any::<bool>(), members().len())) {
        let members = members();
        let allowed = |m: Member<'_>| {
            let (ty, name, kind) = match m {
                Member::Field { ty, name } => (ty, name, 0),
                Member::InputField { ty, name } => (ty, name, 1),
                Member::EnumValue { ty, name } => (ty, name, 2),
            };
            let index = members
                .iter()
                .position(|(t, n, k)| t == ty && n == name && *k == kind);
            !index.is_some_and(|i| hidden.get(i).copied().unwrap_or(false))
        };
        let schema = full_schema(allowed);
        prop_assert_eq!(check(&schema, &allowed), Ok(()));

        let listed = names(&schema["types"]);
        let all: Vec<String> = full_view().types.keys().cloned().collect();
        let query: String = all
            .iter()
            .enumerate()
            .map(|(i, name)| format!("t{i}: __type(name: \"{name}\") {{ name }}\n"))
            .collect();
        let (data, codes) = filtered(&format!("{{ {query} }}"), allowed);
        prop_assert!(codes.is_empty());
        for (i, name) in all.iter().enumerate() {
            let shown = !data[format!("t{i}")].is_null();
            prop_assert_eq!(shown, listed.contains(&name.as_str()), "{}", name);
        }
    }
}

/// The same filter against DARTTS's own schema and policy.
mod dartts_schema;
