//! Introspection shows each principal only the schema it may use. The standard introspection
//! query (the one GraphiQL sends, `tests/introspection/query.graphql`) runs once per role; its
//! answer must be a usable schema, and a readable summary of it — types, fields with their
//! signatures, input fields, enum values — must equal `tests/introspection/<ROLE>.json`.
//! Run with `DARTTS_BLESS=1` to (re)write the summaries after a change meant to alter them,
//! and review the diff like code: a new line in a role's file is something new it can see.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dartts_tests::{Backend, Server, TestEnv, error_codes};
use serde_json::{Value, json};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("hsi", "HSI_ANALYST", None),
    ("cbp", "CBP_OFFICER", None),
    ("kr", "FOREIGN_PARTNER", Some("KR")),
    ("admin", "ADMIN", None),
];

/// Built-in scalars and GraphQL's own `__*` types look the same to everyone.
fn is_builtin(name: &str) -> bool {
    name.starts_with("__") || ["Boolean", "Int", "Float", "String", "ID"].contains(&name)
}

fn type_ref(ty: &Value) -> String {
    match ty["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&ty["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap_or("?").to_owned(),
    }
}

fn named(mut ty: &Value) -> &str {
    while ty["name"].is_null() && !ty["ofType"].is_null() {
        ty = &ty["ofType"];
    }
    ty["name"].as_str().unwrap_or("?")
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|l| l.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default()
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// `name: Type = default`: an argument or input field.
fn input_value(value: &Value) -> String {
    let default = value["defaultValue"]
        .as_str()
        .map(|d| format!(" = {d}"))
        .unwrap_or_default();
    format!(
        "{}: {}{default}",
        value["name"].as_str().unwrap_or("?"),
        type_ref(&value["type"])
    )
}

/// One line per type, field, input field and enum value, sorted.
fn summary(schema: &Value) -> Vec<String> {
    let mut lines = BTreeSet::new();
    lines.insert(format!(
        "schema query: {} mutation: {}",
        schema["queryType"]["name"].as_str().unwrap_or("-"),
        schema["mutationType"]["name"].as_str().unwrap_or("-"),
    ));
    for ty in list(&schema["types"]) {
        let name = ty["name"].as_str().expect("type name");
        if is_builtin(name) {
            continue;
        }
        let kind = ty["kind"].as_str().expect("kind");
        let mut head = format!("{kind} {name}");
        let interfaces = names(&ty["interfaces"]);
        if !interfaces.is_empty() {
            head.push_str(&format!(" implements {}", interfaces.join(" & ")));
        }
        let possible = names(&ty["possibleTypes"]);
        if !possible.is_empty() {
            let mut possible = possible;
            possible.sort_unstable();
            head.push_str(&format!(" = {}", possible.join(" | ")));
        }
        lines.insert(head);
        for field in list(&ty["fields"]) {
            let args: Vec<String> = list(&field["args"]).iter().map(input_value).collect();
            let args = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            lines.insert(format!(
                "{name}.{}{args}: {}",
                field["name"].as_str().unwrap_or("?"),
                type_ref(&field["type"])
            ));
        }
        for input in list(&ty["inputFields"]) {
            lines.insert(format!("{name}.{}", input_value(input)));
        }
        for value in names(&ty["enumValues"]) {
            lines.insert(format!("{name}.{value}"));
        }
    }
    lines.into_iter().collect()
}

/// The answer is a schema a client can use: every type it names is listed, nothing listed is
/// empty, and interfaces and their implementations agree. Written against the JSON alone.
fn check_valid(schema: &Value) -> Result<(), String> {
    let types: BTreeMap<&str, &Value> = list(&schema["types"])
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or("?"), t))
        .collect();
    let exists = |name: &str, from: String| {
        if types.contains_key(name) {
            Ok(())
        } else {
            Err(format!("{from} names {name}, which is not listed"))
        }
    };
    exists(named(&schema["queryType"]), "queryType".into())?;
    if !schema["mutationType"].is_null() {
        exists(named(&schema["mutationType"]), "mutationType".into())?;
    }
    for (name, ty) in &types {
        let kind = ty["kind"].as_str().unwrap_or("?");
        let members = match kind {
            "OBJECT" | "INTERFACE" => list(&ty["fields"]).len(),
            "INPUT_OBJECT" => list(&ty["inputFields"]).len(),
            "ENUM" => list(&ty["enumValues"]).len(),
            "UNION" => list(&ty["possibleTypes"]).len(),
            _ => 1,
        };
        if members == 0 {
            return Err(format!("{kind} {name} is empty"));
        }
        for field in list(&ty["fields"]) {
            let at = format!("{name}.{}", field["name"]);
            exists(named(&field["type"]), at.clone())?;
            for arg in list(&field["args"]) {
                exists(named(&arg["type"]), format!("{at}({})", arg["name"]))?;
            }
        }
        for input in list(&ty["inputFields"]) {
            exists(named(&input["type"]), format!("{name}.{}", input["name"]))?;
        }
        for interface in names(&ty["interfaces"]) {
            exists(interface, format!("{name} implements"))?;
            let wanted = names(&types[interface]["fields"]);
            let own = names(&ty["fields"]);
            if let Some(missing) = wanted.iter().find(|f| !own.contains(f)) {
                return Err(format!("{name} implements {interface} without {missing}"));
            }
            if !names(&types[interface]["possibleTypes"]).contains(name) {
                return Err(format!("{interface} does not list {name}"));
            }
        }
        for possible in names(&ty["possibleTypes"]) {
            exists(possible, format!("{name} possible types"))?;
        }
    }
    for directive in list(&schema["directives"]) {
        for arg in list(&directive["args"]) {
            exists(named(&arg["type"]), format!("@{}", directive["name"]))?;
        }
    }
    Ok(())
}

fn has_type(schema: &Value, name: &str) -> bool {
    names(&schema["types"]).contains(&name)
}

fn has_field(schema: &Value, ty: &str, field: &str) -> bool {
    list(&schema["types"])
        .iter()
        .find(|t| t["name"] == ty)
        .is_some_and(|t| names(&t["fields"]).contains(&field))
}

async fn introspect(server: &Server, token: &str) -> Value {
    let query = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("introspection/query.graphql"),
    )
    .expect("query.graphql");
    let (status, body) = server.session(Some(token)).post(&query, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"]["__schema"].clone()
}

#[tokio::test]
async fn introspection_shows_each_role_only_what_it_may_use() {
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_INTROSPECTION", "true");
    let mut tokens = BTreeMap::new();
    for (name, role, nation) in ROLES {
        tokens.insert(*role, env.user(name, role, *nation).await);
    }
    let server = env.serve().await;
    let bless = std::env::var_os("DARTTS_BLESS").is_some();
    let mut schemas = BTreeMap::new();
    let mut failures = Vec::new();
    for (role, token) in &tokens {
        let schema = introspect(&server, token).await;
        if let Err(reason) = check_valid(&schema) {
            failures.push(format!("{role}: not a valid schema: {reason}"));
        }
        let actual = json!(summary(&schema));
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("introspection")
            .join(format!("{role}.json"));
        if bless {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&actual).expect("json") + "\n",
            )
            .expect("write");
        } else {
            let expected: Value = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(Value::Null);
            if expected != actual {
                failures.push(format!(
                    "{role}: the summary differs from {} (DARTTS_BLESS=1 rewrites it):\n\
                     only expected: {:?}\nonly actual: {:?}",
                    path.display(),
                    lines_missing(&expected, &actual),
                    lines_missing(&actual, &expected),
                ));
            }
        }
        schemas.insert(*role, schema);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let cbp = &schemas["CBP_OFFICER"];
    assert!(!has_type(cbp, "FinancialTransaction"));
    assert!(!has_type(cbp, "FinancialTransactionConnection"));
    assert!(!has_field(cbp, "Query", "financialTransactions"));
    assert!(!has_field(
        cbp,
        "TradeRecord",
        "linkedFinancialTransactions"
    ));
    assert!(has_field(cbp, "TradeRecord", "hsCode"));
    assert!(has_field(cbp, "Query", "subjectRecords"));
    // Not even the name: no description, enum value or argument mentions FinCEN data.
    let text = cbp.to_string();
    for word in [
        "FinancialTransaction",
        "linkedFinancialActivity",
        "amountUsd",
    ] {
        assert!(!text.contains(word), "CBP's schema mentions {word}");
    }

    let partner = &schemas["FOREIGN_PARTNER"];
    for gone in [
        "SubjectRecord",
        "SdnEntry",
        "FinancialTransaction",
        "Account",
    ] {
        assert!(!has_type(partner, gone), "FOREIGN_PARTNER sees {gone}");
    }
    assert!(has_field(partner, "Query", "tradeRecords"));

    let admin = &schemas["ADMIN"];
    assert!(has_field(admin, "Query", "users"));
    assert!(has_field(admin, "Query", "auditEvents"));
    assert!(!has_field(admin, "Query", "tradeRecords"));
    assert!(!has_type(admin, "TradeRecord"));

    let hsi = &schemas["HSI_ANALYST"];
    assert!(has_field(hsi, "Query", "financialTransactions"));
    assert!(has_field(hsi, "TradeRecord", "linkedFinancialTransactions"));
    assert!(!has_field(hsi, "Query", "users"));

    // Nobody holds PRE_AUTH: the partners' sign-in is in no signed-in principal's schema.
    for (role, schema) in &schemas {
        assert!(!has_field(schema, "Mutation", "login"), "{role}");
        assert!(!has_type(schema, "LoginResult"), "{role}");
    }
}

fn lines_missing<'a>(from: &'a Value, other: &Value) -> Vec<&'a str> {
    let other: BTreeSet<&str> = list(other).iter().filter_map(Value::as_str).collect();
    list(from)
        .iter()
        .filter_map(Value::as_str)
        .filter(|l| !other.contains(l))
        .collect()
}

#[tokio::test]
async fn type_lookups_answer_hidden_types_like_missing_ones() {
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_INTROSPECTION", "true");
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let query = r#"{
        __type(name: "FinancialTransaction") { name fields { name } }
        aliased: __type(name: "FinancialTransaction") { name }
        connection: __type(name: "FinancialTransactionConnection") { name }
        trade: __type(name: "TradeRecord") { n: name f: fields { n: name } }
        filter: __type(name: "TradeRecordFilter") { name inputFields { name } }
        query: __type(name: "Query") { name fields { name type { name ofType { name } } } }
    }"#;

    let data = server.session(Some(&cbp)).data(query, json!({})).await;
    assert_eq!(data["__type"], Value::Null, "{data}");
    assert_eq!(data["aliased"], Value::Null, "{data}");
    assert_eq!(data["connection"], Value::Null, "{data}");
    let trade: Vec<&str> = list(&data["trade"]["f"])
        .iter()
        .filter_map(|f| f["n"].as_str())
        .collect();
    assert!(
        trade.contains(&"hsCode") && trade.contains(&"importerName"),
        "{trade:?}"
    );
    assert!(!trade.contains(&"linkedFinancialTransactions"), "{trade:?}");
    // A filter on a hidden field is hidden like the field (the resolver refuses it anyway).
    let filter = names(&data["filter"]["inputFields"]);
    assert!(filter.contains(&"importerNameContains"), "{filter:?}");
    assert!(!filter.contains(&"linkedFinancialActivity"), "{filter:?}");
    assert!(!data["query"].to_string().contains("financial"), "{data}");

    // The same lookups for a role that may read financial data.
    let data = server.session(Some(&hsi)).data(query, json!({})).await;
    assert_eq!(data["__type"]["name"], "FinancialTransaction", "{data}");
    assert_eq!(data["aliased"]["name"], "FinancialTransaction", "{data}");
    assert_eq!(data["connection"]["name"], "FinancialTransactionConnection");

    // A result whose identity is not selected cannot be filtered: it is withheld.
    let body = server
        .session(Some(&cbp))
        .gql(
            r#"{ __type(name: "TradeRecord") { fields { description } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");
    assert_eq!(body["data"]["__type"], Value::Null, "{body}");
    assert!(!body.to_string().contains("FinCEN"), "{body}");
}
