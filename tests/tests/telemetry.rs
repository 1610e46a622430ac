//! Telemetry: spans reach an OTLP/HTTP collector (a receiver in the test decoding the protobuf
//! export requests) with the request id and without the query's variable values; JSON logs;
//! `/metrics` on its own listener.

use std::time::Duration;

use dartts_tests::http_stub::HttpStub;
use dartts_tests::{Backend, TestEnv};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

/// Every span the receiver got so far.
fn spans(stub: &HttpStub) -> Vec<Span> {
    stub.requests()
        .iter()
        .filter(|r| r.path == "/v1/traces")
        .flat_map(|r| {
            ExportTraceServiceRequest::decode(r.body.as_slice())
                .expect("OTLP protobuf")
                .resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

#[tokio::test]
async fn request_spans_reach_the_collector_with_the_request_id_and_no_variable_values() {
    let collector = HttpStub::start(|_| (200, Vec::new())).await;
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.base)
        .with_env("OTEL_BSP_SCHEDULE_DELAY", "100");
    env.load_trade_fixture().await;
    let token = env.user("analyst", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let secret = "ZEBRA-ACME-7731";
    let response = server
        .http
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({
            "query": "query Look($name: String) { tradeRecords(filter: { importerNameContains: $name }) { totalCount } }",
            "operationName": "Look",
            "variables": { "name": secret },
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .expect("ascii")
        .to_owned();

    let mut found = Vec::new();
    for _ in 0..100 {
        found = spans(&collector);
        let has_request = found.iter().any(|s| {
            s.name == "graphql.request"
                && attribute(s, "request_id").as_deref() == Some(request_id.as_str())
        });
        let has_resolver = found.iter().any(|s| {
            s.name == "graphql.resolve"
                && attribute(s, "graphql.field").as_deref() == Some("Query.tradeRecords")
        });
        if has_request && has_resolver {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let request = found
        .iter()
        .find(|s| {
            s.name == "graphql.request"
                && attribute(s, "request_id").as_deref() == Some(request_id.as_str())
        })
        .unwrap_or_else(|| panic!("no request span for {request_id}: {found:#?}"));
    assert_eq!(
        attribute(request, "graphql.operation.name").as_deref(),
        Some("Look")
    );
    let resolver = found
        .iter()
        .find(|s| attribute(s, "graphql.field").as_deref() == Some("Query.tradeRecords"))
        .expect("resolver span");
    assert_eq!(resolver.trace_id, request.trace_id, "one trace per request");
    // `dartts load` (run above with the same settings) exported its batch's span on exit.
    let batch = found
        .iter()
        .find(|s| s.name == "ingest.batch")
        .unwrap_or_else(|| panic!("no ingest span: {found:#?}"));
    assert_eq!(attribute(batch, "dataset").as_deref(), Some("trade"));
    assert_eq!(
        attribute(batch, "accepted").as_deref(),
        Some("IntValue(10)")
    );
    // Nothing the collector received carries the variable's value or the token.
    for sent in collector.requests() {
        let body = String::from_utf8_lossy(&sent.body);
        assert!(!body.contains(secret), "variable value exported");
        assert!(!body.contains(&token), "token exported");
    }
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.load_trade_fixture().await;
    let env = env.with_metrics();
    let token = env.user("analyst", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    // Not on the API listener.
    let on_api = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(on_api.status(), 404);

    let session = server.session(Some(&token));
    session
        .data(
            "{ tradeRecords(first: 2) { edges { node { hsCode } } } }",
            json!({}),
        )
        .await;
    let partial = session.gql("{ users { username } }", json!({})).await;
    assert!(partial.get("errors").is_some());
    let refused = server
        .session(Some("not-a-token"))
        .post("{ me { username } }", json!({}))
        .await;
    assert_eq!(refused.0, 401);

    let text = server.metrics().await;
    for expected in [
        "dartts_graphql_requests_total{outcome=\"ok\"} 1",
        "dartts_graphql_requests_total{outcome=\"refused\"} 1",
        "dartts_graphql_errors_total{code=\"FORBIDDEN_FIELD\"} 1",
        "dartts_graphql_errors_total{code=\"UNAUTHENTICATED\"} 1",
        "dartts_dataset_rows{dataset=\"trade\"} 10",
        "dartts_dataset_age_days{dataset=\"trade\"} 0",
        "dartts_quota_store_seconds_count 1",
        "# TYPE dartts_audit_append_seconds histogram",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    let batches = text
        .lines()
        .find(|l| l.starts_with("dartts_audit_batch_events_count"))
        .expect("audit batch count");
    assert!(!batches.ends_with(" 0"), "{batches}");
}

#[tokio::test]
async fn logs_are_json_lines_on_request() {
    let env = TestEnv::new(Backend::Sqlite)
        .await
        .with_env("DARTTS_LOG_FORMAT", "json")
        .with_env("DARTTS_LOG", "info");
    // Applying the migrations logs through tracing at info.
    let run = env.run(&["migrate"]).await;
    assert!(run.ok, "{}", run.stderr);
    let logged: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(!logged.is_empty(), "no JSON log lines:\n{}", run.stderr);
    assert!(
        logged
            .iter()
            .all(|l| l["level"].is_string() && l["fields"].is_object())
    );
}

/// Log and trace settings that do not parse stop the binary with the setting's name; they
/// used to fall back to the defaults without a word.
#[tokio::test]
async fn log_and_trace_settings_that_do_not_parse_stop_the_binary() {
    for (name, value) in [
        ("DARTTS_LOG_FORMAT", "xml"),
        ("DARTTS_LOG", "bogus[[["),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:4318"),
    ] {
        let env = TestEnv::new(Backend::Sqlite).await.with_env(name, value);
        let run = env.run(&["migrate"]).await;
        assert!(
            !run.ok && run.stderr.contains(name),
            "{name}={value}: {}",
            run.stderr
        );
    }
}
