//! Arbitrary arguments to every query field, found by introspection: strings (with `%`, `_`,
//! `\`, U+0000 and forged cursors among them), numbers of any size, enum values and filter
//! objects. No answer may be INTERNAL or a 5xx. Bounded in cases and in time.

use std::time::{Duration, Instant};

use dartts_tests::{Backend, Server, TestEnv, error_codes};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

/// A type as introspection describes it, resolved to what a generator needs.
#[derive(Clone, Debug)]
enum Shape {
    Scalar(String),
    Enum(Vec<String>),
    Input(Vec<(String, Shape)>),
    List(Box<Shape>),
}

const TYPE_REF: &str = "name kind ofType { name kind ofType { name kind ofType { name kind } } }";

fn shape(t: &Value, types: &[Value], depth: usize) -> Shape {
    match t["kind"].as_str() {
        Some("NON_NULL") => shape(&t["ofType"], types, depth),
        Some("LIST") => Shape::List(Box::new(shape(&t["ofType"], types, depth))),
        _ => {
            let name = t["name"].as_str().expect("named type");
            let def = types.iter().find(|d| d["name"] == name).expect("type");
            match def["kind"].as_str() {
                Some("ENUM") => Shape::Enum(
                    def["enumValues"]
                        .as_array()
                        .expect("values")
                        .iter()
                        .map(|v| v["name"].as_str().expect("name").to_owned())
                        .collect(),
                ),
                Some("INPUT_OBJECT") if depth < 3 => Shape::Input(
                    def["inputFields"]
                        .as_array()
                        .expect("fields")
                        .iter()
                        .map(|f| {
                            (
                                f["name"].as_str().expect("name").to_owned(),
                                shape(&f["type"], types, depth + 1),
                            )
                        })
                        .collect(),
                ),
                _ => Shape::Scalar(name.to_owned()),
            }
        }
    }
}

/// The written type of an argument, for the variable declaration.
fn written(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", written(&t["ofType"])),
        Some("LIST") => format!("[{}]", written(&t["ofType"])),
        _ => t["name"].as_str().expect("name").to_owned(),
    }
}

fn text() -> BoxedStrategy<Value> {
    use base64::Engine;
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    prop_oneof![
        Just("%".to_owned()),
        Just("_".to_owned()),
        Just("\\".to_owned()),
        Just("a\u{0}b".to_owned()),
        Just(String::new()),
        Just("2024-01-01".to_owned()),
        Just("99999-12-31".to_owned()),
        any::<u64>().prop_map(move |n| b64(format!("offset:{n}"))),
        "[a-zA-Z0-9+/=_-]{0,40}".prop_map(b64),
        "\\PC{0,40}",
        "[%_\\\\a-z0-9\u{0}-]{0,300}",
    ]
    .prop_map(Value::String)
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        (-3i64..3).prop_map(|n| json!(n)),
        Just(json!(i32::MAX)),
        Just(json!(i32::MIN)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
    ]
    .boxed()
}

fn value(shape: &Shape) -> BoxedStrategy<Value> {
    let typed = match shape {
        Shape::Scalar(name) if matches!(name.as_str(), "Int" | "Float") => number(),
        Shape::Scalar(name) if name == "Boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
        Shape::Scalar(_) => text(),
        Shape::Enum(values) => proptest::sample::select(values.clone())
            .prop_map(Value::String)
            .boxed(),
        Shape::List(inner) => proptest::collection::vec(value(inner), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        Shape::Input(fields) => {
            let members: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
                .iter()
                .map(|(name, shape)| {
                    let name = name.clone();
                    proptest::option::weighted(0.3, value(shape))
                        .prop_map(move |v| v.map(|v| (name.clone(), v)))
                        .boxed()
                })
                .collect();
            members
                .prop_map(|set| Value::Object(set.into_iter().flatten().collect::<Map<_, _>>()))
                .boxed()
        }
    };
    // Now and then a value of the wrong type or a null.
    prop_oneof![8 => typed, 1 => text(), 1 => number(), 1 => Just(Value::Null)].boxed()
}

struct Field {
    name: String,
    /// The tokens whose role sees the field.
    seen_by: Vec<usize>,
    args: Vec<(String, String, Shape)>,
    leaf: bool,
}

async fn query_fields(server: &Server, token: &str, who: usize) -> Vec<Field> {
    let schema = server
        .session(Some(token))
        .data(
            &format!(
                "{{ __schema {{ queryType {{ name fields {{ name type {{ {TYPE_REF} }} args {{ name type {{ {TYPE_REF} }} }} }} }}
                   types {{ name kind enumValues {{ name }} inputFields {{ name type {{ {TYPE_REF} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let types = schema["__schema"]["types"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema}"))
        .clone();
    let leaf_kinds = ["SCALAR", "ENUM"];
    schema["__schema"]["queryType"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            let mut t = &f["type"];
            while t["kind"] == "NON_NULL" || t["kind"] == "LIST" {
                t = &t["ofType"];
            }
            Field {
                name: f["name"].as_str().expect("name").to_owned(),
                seen_by: vec![who],
                leaf: leaf_kinds.contains(&t["kind"].as_str().unwrap_or_default()),
                args: f["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .map(|a| {
                        (
                            a["name"].as_str().expect("name").to_owned(),
                            written(&a["type"]),
                            shape(&a["type"], &types, 0),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn arbitrary_arguments_never_reach_an_internal_error() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (_env, server, tokens, fields) = runtime.block_on(async {
        let env = TestEnv::new(Backend::Postgres)
            .await
            .with_env("DARTTS_INTROSPECTION", "true");
        env.load_trade_fixture().await;
        let tokens = vec![
            env.user("root", "ADMIN", None).await,
            env.user("alice", "HSI_ANALYST", None).await,
            env.user("kr", "FOREIGN_PARTNER", Some("KR")).await,
        ];
        let server = env.serve().await;
        // Introspection shows each role what it may use: together they see every field.
        let mut fields: Vec<Field> = Vec::new();
        for (who, token) in tokens.iter().enumerate() {
            for field in query_fields(&server, token, who).await {
                match fields.iter_mut().find(|f| f.name == field.name) {
                    Some(known) => known.seen_by.push(who),
                    None => fields.push(field),
                }
            }
        }
        (env, server, tokens, fields)
    });
    assert!(fields.len() >= 10, "{} query fields", fields.len());
    let with_args: Vec<&Field> = fields.iter().filter(|f| !f.args.is_empty()).collect();
    let cases =
        proptest::sample::select((0..with_args.len()).collect::<Vec<_>>()).prop_flat_map(|i| {
            let field = with_args[i];
            let args: Vec<BoxedStrategy<Value>> =
                field.args.iter().map(|(_, _, s)| value(s)).collect();
            (
                Just(i),
                args,
                proptest::sample::select(field.seen_by.clone()),
            )
        });
    let started = Instant::now();
    let budget = Duration::from_secs(45);
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let sent = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&cases, |(i, values, who)| {
        if started.elapsed() > budget {
            return Ok(());
        }
        let field = with_args[i];
        let declared: Vec<String> = field
            .args
            .iter()
            .map(|(name, ty, _)| format!("${name}: {ty}"))
            .collect();
        let passed: Vec<String> = field
            .args
            .iter()
            .map(|(name, _, _)| format!("{name}: ${name}"))
            .collect();
        let selection = if field.leaf { "" } else { "{ __typename }" };
        let query = format!(
            "query({}) {{ {}({}) {selection} }}",
            declared.join(", "),
            field.name,
            passed.join(", ")
        );
        let variables: Map<String, Value> = field
            .args
            .iter()
            .zip(values)
            .map(|((name, _, _), v)| (name.clone(), v))
            .collect();
        let variables = Value::Object(variables);
        let (status, body) = runtime.block_on(
            server
                .session(Some(&tokens[who]))
                .post(&query, variables.clone()),
        );
        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if status >= 500 || error_codes(&body).iter().any(|c| c == "INTERNAL") {
            return Err(TestCaseError::fail(format!(
                "{query} with {variables}: {status} {body}"
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let sent = sent.into_inner();
    assert!(sent >= 50, "only {sent} requests within the time budget");
}
