//! Golden permission cases: `tests/permissions/<case>/case.toml` names a principal and a query;
//! `expected.json` beside it is the exact response. The same data set and the same principals
//! serve every case. Run with `DARTTS_BLESS=1` to (re)write the expected files after a change
//! that is meant to alter them — and review the diff like code.
//!
//! A case runs under the repository's policy unless it names one of `POLICIES` (`policy = …`):
//! the same policy edited, for rules no shipped role exercises (such as a partial view of a
//! record type). Each named policy gets a server of its own over the same database.
//!
//! The expected file also holds the records the case's audit event says were delivered (what
//! the quota counts). Every case runs on two servers that must agree on both: one as
//! configured by default, where a query the principal may read wholly runs without the
//! per-field hook (`graphql::planned`), and one exporting traces, where every query runs with
//! it.

use std::collections::BTreeMap;
use std::path::Path;

use dartts_tests::http_stub::HttpStub;
use dartts_tests::{
    AGENT_WITHOUT_PII, ANALYST_WITHOUT_SORT_FIELDS, Backend, PolicyEdits, Server, TestEnv, fixture,
};
use serde_json::{Value, json};

/// The edited policies a case may name.
const POLICIES: &[(&str, &PolicyEdits<'static>)] = &[
    ("agent_without_pii", &AGENT_WITHOUT_PII),
    ("analyst_without_sort_fields", &ANALYST_WITHOUT_SORT_FIELDS),
];

struct Case {
    name: String,
    principal: String,
    /// One of `POLICIES`, or the repository's policy.
    policy: Option<String>,
    query: String,
    variables: Value,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("permissions");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).expect("permissions dir") {
        let dir = entry.expect("entry").path();
        let text = std::fs::read_to_string(dir.join("case.toml")).expect("case.toml");
        let table: toml::Table = toml::from_str(&text).expect("valid case.toml");
        out.push(Case {
            name: dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            principal: table["principal"].as_str().expect("principal").to_owned(),
            policy: table
                .get("policy")
                .map(|p| p.as_str().expect("policy is a name").to_owned()),
            query: table["query"].as_str().expect("query").to_owned(),
            variables: table
                .get("variables")
                .map(|v| serde_json::to_value(v).expect("variables"))
                .unwrap_or_else(|| json!({})),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Internal-error references are random; nothing else in a response may vary between runs.
fn normalize(mut v: Value) -> Value {
    if let Some(errors) = v.pointer_mut("/body/errors").and_then(Value::as_array_mut) {
        for e in errors {
            let internal = e
                .get("message")
                .and_then(Value::as_str)
                .is_some_and(|m| m.starts_with("internal error (reference"));
            if internal {
                e["message"] = json!("internal error (reference …)");
            }
        }
    }
    v
}

#[tokio::test]
async fn golden_permission_cases() {
    let mut env = TestEnv::new(Backend::Postgres).await;
    let f = |n: &str| fixture(n).to_str().expect("path").to_owned();
    env.load_ok(&["trade", &f("trade_canonical.csv"), "--provider", "US"])
        .await;
    env.load_ok(&["trade", &f("trade_kr.csv"), "--provider", "KR"])
        .await;
    env.load_ok(&["trade", &f("trade_cn.csv"), "--provider", "CN"])
        .await;
    env.load_ok(&["financial", &f("financial.csv")]).await;
    env.load_ok(&["subjects", &f("subjects.csv")]).await;
    env.load_ok(&["sdn", &f("sdn"), "--as-of", "2021-07-01"])
        .await;
    let mut tokens = BTreeMap::new();
    for (name, role, nation) in [
        ("hsi", "HSI_ANALYST", None),
        ("agent", "HSI_AGENT", None),
        ("cbp", "CBP_OFFICER", None),
        ("specialist", "CBP_IMPORT_SPECIALIST", None),
        ("kr", "FOREIGN_PARTNER", Some("KR")),
        ("cn", "FOREIGN_PARTNER", Some("CN")),
        ("admin", "ADMIN", None),
    ] {
        tokens.insert(name, env.user(name, role, nation).await);
    }
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "golden cases went missing: {}",
        cases.len()
    );
    // Traces go to a collector that accepts and drops them.
    let collector = HttpStub::start(|_| (200, Vec::new())).await;
    let mut servers: BTreeMap<Option<String>, [Server; 2]> = BTreeMap::new();
    let mut policies: Vec<Option<String>> = vec![None];
    for case in &cases {
        if !policies.contains(&case.policy) {
            policies.push(case.policy.clone());
        }
    }
    for policy in policies {
        if let Some(name) = &policy {
            let (_, edits) = POLICIES
                .iter()
                .find(|(known, _)| known == name)
                .unwrap_or_else(|| panic!("unknown policy {name}"));
            // The same database, accounts and signing key; only the policy differs.
            env = env.with_policy_edited(edits);
        }
        // The two servers of the repository's policy count their executions on metrics ports.
        let counted = policy.is_none();
        if counted {
            env = env.with_metrics();
        }
        let planned = env.serve().await;
        env = env.with_env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.base);
        let traced = env.serve().await;
        env = env
            .without_env("OTEL_EXPORTER_OTLP_ENDPOINT")
            .without_env("DARTTS_METRICS_LISTEN");
        servers.insert(policy, [planned, traced]);
    }
    let bless = std::env::var_os("DARTTS_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let token = tokens
            .get(case.principal.as_str())
            .unwrap_or_else(|| panic!("{}: unknown principal {}", case.name, case.principal));
        let mut answers = Vec::new();
        for server in &servers[&case.policy] {
            let before = env
                .scalar("SELECT COALESCE(MAX(id), 0) FROM audit_events")
                .await;
            let (status, body) = server
                .session(Some(token))
                .post(&case.query, case.variables.clone())
                .await;
            // The request's own outcome event is the last it wrote.
            let records = env
                .scalar(&format!(
                    "SELECT records FROM audit_events WHERE id > {before} ORDER BY id DESC LIMIT 1"
                ))
                .await;
            answers.push(normalize(
                json!({ "status": status, "records": records, "body": body }),
            ));
        }
        let traced = answers.pop().expect("two answers");
        let actual = answers.pop().expect("two answers");
        if actual != traced {
            failures.push(format!(
                "{}: the two executors differ:\nplanned  {actual:#}\nper field {traced:#}",
                case.name
            ));
            continue;
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("permissions")
            .join(&case.name)
            .join("expected.json");
        if bless {
            std::fs::write(
                &path,
                serde_json::to_string_pretty(&actual).expect("json") + "\n",
            )
            .expect("write");
            continue;
        }
        let expected: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        if expected != actual {
            failures.push(format!(
                "{}:\nexpected {expected:#}\nactual   {actual:#}",
                case.name
            ));
        }
    }
    // The default server ran cases on both executors (a refused field or `node(id:)` needs the
    // hook); the one exporting traces ran every case with the hook, so the comparison above
    // was between the two.
    let [planned, traced] = &servers[&None];
    let ran = |metrics: &str, executor: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "dartts_graphql_executions_total{{executor=\"{executor}\"}} "
                ))
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let metrics = planned.metrics().await;
    for executor in ["planned", "per_field"] {
        let n = ran(&metrics, executor);
        assert!(n >= 10, "{executor} ran {n} cases:\n{metrics}");
    }
    let metrics = traced.metrics().await;
    let default_cases = cases.iter().filter(|c| c.policy.is_none()).count() as u64;
    assert_eq!(ran(&metrics, "planned"), 0, "{metrics}");
    assert_eq!(ran(&metrics, "per_field"), default_cases, "{metrics}");
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
