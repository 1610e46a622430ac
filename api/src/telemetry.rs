//! Logs and traces (DESIGN §6). Logs go to standard error, as text or, with
//! `DARTTS_LOG_FORMAT=json`, one JSON object per line. Traces go to an OpenTelemetry collector
//! over OTLP/HTTP (protobuf) when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, and nowhere otherwise: no collector is needed
//! to start. The exporter reads the other `OTEL_*` variables (headers, timeout, batch delay).
//!
//! What spans carry is chosen here and at the few places that open them: request ids, operation
//! and field names, data set names, counts and outcomes. Never a token, a variable or argument
//! value, a filter, a name being screened or a record's content — the query text is not
//! recorded either, since literals in it are filter values.
//!
//! Logging starts before the settings are read (a bad setting must be logged), so like
//! `DARTTS_LOG` these variables are read here rather than in `config`.

use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::extensions::ResolveInfo;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes and stops the trace exporter when dropped (at the end of `main`), so a short
/// command such as `dartts load` still delivers its spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("dartts: trace export did not finish: {e}");
        }
    }
}

fn otlp_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The log settings, checked before anything is logged: a filter or format that does not
/// parse used to fall back to the defaults without a word.
fn log_settings() -> Result<(String, bool), String> {
    let filter = match std::env::var("DARTTS_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("DARTTS_LOG {v:?} is not a filter: {e}"))?;
            v
        }
        _ => "info,sea_orm_migration=warn".to_owned(),
    };
    let json = match std::env::var("DARTTS_LOG_FORMAT") {
        Err(_) => false,
        Ok(v) if v.trim().is_empty() || v.eq_ignore_ascii_case("text") => false,
        Ok(v) if v.eq_ignore_ascii_case("json") => true,
        Ok(v) => {
            return Err(format!(
                "DARTTS_LOG_FORMAT {v:?} is neither \"text\" nor \"json\""
            ));
        }
    };
    for name in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        if let Ok(v) = std::env::var(name)
            && !v.trim().is_empty()
            && !reqwest::Url::parse(&v).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(format!("{name} {v:?} is not an http(s) URL"));
        }
    }
    Ok((filter, json))
}

/// Installs the global subscriber: the log filter (`DARTTS_LOG`), the log format and, when
/// configured, the OTLP trace layer. Refuses log or trace settings that do not parse.
pub fn init() -> Result<Telemetry, String> {
    let (filter_text, json) = log_settings()?;
    let filter = || EnvFilter::new(&filter_text);
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    };
    let mut problem = None;
    let provider = if otlp_configured() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build()
        {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name("dartts")
                            .build(),
                    )
                    .build(),
            ),
            Err(e) => {
                problem = Some(e.to_string());
                None
            }
        }
    } else {
        None
    };
    // Spans only from our own code: dependencies' spans could carry SQL with values.
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("dartts"))
            .with_filter(EnvFilter::new("dartts=info"))
    });
    RESOLVERS_TRACED.store(traces.is_some(), Ordering::Relaxed);
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    if let Some(e) = problem {
        tracing::error!(error = %e, "OTLP trace export is configured but cannot start; traces are off");
    }
    Ok(Telemetry { provider })
}

/// Whether spans go to a collector, so resolvers get spans of their own (`resolver_span`).
static RESOLVERS_TRACED: AtomicBool = AtomicBool::new(false);

/// Set by `init`, which runs before any schema is built; read by `graphql::build`.
pub fn resolvers_traced() -> bool {
    RESOLVERS_TRACED.load(Ordering::Relaxed)
}

/// Nested fields whose resolvers query the database (the rest are read from their parent).
const NESTED_DB_FIELDS: &[(&str, &str)] = &[
    ("TradeRecord", "linkedFinancialTransactions"),
    ("TradeRecord", "batch"),
    ("SdnEntry", "batch"),
    ("Batch", "rejections"),
];

/// A span per resolver that reads the database: the root fields, and the few nested fields
/// whose resolvers query on their own. Named by type and field only — never arguments. `None`
/// for every other field (called for each by `graphql::per_field::PerField`).
pub fn resolver_span(info: &ResolveInfo<'_>) -> Option<tracing::Span> {
    let (parent, field) = (info.parent_type, info.name);
    let traced = !info.is_for_introspection
        && (matches!(parent, "Query" | "Mutation") || NESTED_DB_FIELDS.contains(&(parent, field)));
    traced.then(
        || tracing::info_span!("graphql.resolve", graphql.field = %format!("{parent}.{field}")),
    )
}
