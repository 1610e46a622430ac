//! `/metrics` in the Prometheus text format, on its own listener (`DARTTS_METRICS_LISTEN`, off
//! by default) so it is never exposed where the API is: GraphQL requests and errors by code,
//! audit append batches (size, latency), quota store latency, and the rows each data set holds
//! with the age of its newest load (what `dartts load` and the refresh CronJob put there — they
//! run as separate processes, so the database is the one place their rows can be read back).
//!
//! Counters are process-wide (one registry per process), like the process they describe.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use entities::batch;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Code {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Executor {
    executor: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Walk {
    walk: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reload {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Dataset {
    dataset: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Outcome, Counter>,
    errors: Family<Code, Counter>,
    executions: Family<Executor, Counter>,
    id_walks: Family<Walk, Counter>,
    audit_batch_events: Histogram,
    audit_append_seconds: Histogram,
    quota_seconds: Histogram,
    analysis_waiting: Gauge,
    analysis_wait_seconds: Histogram,
    dataset_rows: Family<Dataset, Gauge>,
    dataset_age_days: Family<Dataset, Gauge>,
    database_up: Gauge,
    crl_reloads: Family<Reload, Counter>,
    crl_revoked: Gauge,
    crl_next_update: Gauge,
}

fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_5, 2.0, 14)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("dartts");
        let requests = Family::<Outcome, Counter>::default();
        let errors = Family::<Code, Counter>::default();
        let executions = Family::<Executor, Counter>::default();
        let id_walks = Family::<Walk, Counter>::default();
        let audit_batch_events = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        let audit_append_seconds = Histogram::new(seconds_buckets());
        let quota_seconds = Histogram::new(seconds_buckets());
        let analysis_waiting = Gauge::default();
        let analysis_wait_seconds = Histogram::new(seconds_buckets());
        let dataset_rows = Family::<Dataset, Gauge>::default();
        let dataset_age_days = Family::<Dataset, Gauge>::default();
        let database_up = Gauge::default();
        let crl_reloads = Family::<Reload, Counter>::default();
        let crl_revoked = Gauge::default();
        let crl_next_update = Gauge::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests answered, by outcome (ok, partial, failed, refused)",
            requests.clone(),
        );
        registry.register(
            "graphql_errors",
            "GraphQL errors sent, by extensions.code",
            errors.clone(),
        );
        registry.register(
            "graphql_executions",
            "GraphQL operations executed, by executor: planned (field guard and record count \
             decided on the whole document) or per_field",
            executions.clone(),
        );
        registry.register(
            "keyset_id_walks",
            "Pages in the default order (the id) on PostgreSQL, by how their ids were found: \
             key (the primary key walked in order) or sort_matches (the matches sorted)",
            id_walks.clone(),
        );
        registry.register(
            "audit_batch_events",
            "Audit events per group-commit append",
            audit_batch_events.clone(),
        );
        registry.register(
            "audit_append_seconds",
            "Time one audit append took",
            audit_append_seconds.clone(),
        );
        registry.register(
            "quota_store_seconds",
            "Time one quota reservation took in the quota store",
            quota_seconds.clone(),
        );
        registry.register(
            "analysis_waiting",
            "Requests waiting for turns to run their analyses (DARTTS_ANALYSIS_CONCURRENCY run at once)",
            analysis_waiting.clone(),
        );
        registry.register(
            "analysis_wait_seconds",
            "Time a request with analyses waited for its turns",
            analysis_wait_seconds.clone(),
        );
        registry.register(
            "dataset_rows",
            "Rows accepted by the loads each data set holds (not purged)",
            dataset_rows.clone(),
        );
        registry.register(
            "dataset_age_days",
            "Days since the as-of date of each data set's newest load",
            dataset_age_days.clone(),
        );
        registry.register(
            "database_up",
            "1 when the last scrape read the data sets from the database, 0 when it could not \
             (the dataset_* gauges are then absent)",
            database_up.clone(),
        );
        registry.register(
            "partner_crl_reloads",
            "Changes of the partner revocation list file (DARTTS_TLS_CLIENT_CRL) seen while \
             serving, by outcome: ok (in force), refused (the lists before stay in force) or \
             unreadable",
            crl_reloads.clone(),
        );
        registry.register(
            "partner_crl_revoked",
            "Revoked partner certificates in the lists in force",
            crl_revoked.clone(),
        );
        registry.register(
            "partner_crl_next_update_seconds",
            "The earliest nextUpdate of the lists in force, Unix seconds (0: none has one): past \
             it, that CA's certificates are refused until a newer list is in the file",
            crl_next_update.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            executions,
            id_walks,
            audit_batch_events,
            audit_append_seconds,
            quota_seconds,
            analysis_waiting,
            analysis_wait_seconds,
            dataset_rows,
            dataset_age_days,
            database_up,
            crl_reloads,
            crl_revoked,
            crl_next_update,
        }
    }
}

fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// One GraphQL response: its outcome and the code of each error in it.
pub fn request(outcome: &str, codes: impl Iterator<Item = String>) {
    let m = global();
    m.requests
        .get_or_create(&Outcome {
            outcome: outcome.to_owned(),
        })
        .inc();
    for code in codes {
        m.errors.get_or_create(&Code { code }).inc();
    }
}

/// One operation executed, on the planned executor or the per-field one (`graphql::Executors`).
pub fn execution(planned: bool) {
    let executor = if planned { "planned" } else { "per_field" };
    global()
        .executions
        .get_or_create(&Executor { executor })
        .inc();
}

/// One default-ordered page's way to its ids (`graphql::keyset::IdWalk`).
pub fn id_walk(walk: &'static str) {
    global().id_walks.get_or_create(&Walk { walk }).inc();
}

pub fn audit_append(events: usize, took: Duration) {
    let m = global();
    m.audit_batch_events.observe(events as f64);
    m.audit_append_seconds.observe(took.as_secs_f64());
}

pub fn quota_reservation(took: Duration) {
    global().quota_seconds.observe(took.as_secs_f64());
}

/// The partner revocation lists now in force: how many serials they revoke, and until when.
pub fn partner_crl_in_force(revoked: usize, next_update: Option<i64>) {
    let m = global();
    m.crl_revoked
        .set(i64::try_from(revoked).unwrap_or(i64::MAX));
    m.crl_next_update.set(next_update.unwrap_or(0));
}

/// One change of the revocation list file seen while serving, and what became of it.
pub fn partner_crl_reload(outcome: &'static str) {
    global()
        .crl_reloads
        .get_or_create(&Reload { outcome })
        .inc();
}

/// Counts one request as waiting for its turns until the returned value is dropped (when it
/// gets them, or when it is abandoned while it waits).
pub fn analysis_waiting() -> impl Drop {
    struct Waiting;
    impl Drop for Waiting {
        fn drop(&mut self) {
            global().analysis_waiting.dec();
        }
    }
    global().analysis_waiting.inc();
    Waiting
}

pub fn analysis_admitted(waited: Duration) {
    global().analysis_wait_seconds.observe(waited.as_secs_f64());
}

/// Reads what each data set holds into the gauges, then encodes every metric. While the
/// database cannot be read the data-set gauges are left out and `dartts_database_up` is 0:
/// the request and error counters are what an operator watches during an outage.
async fn render(state: &AppState) -> Result<String, String> {
    let m = global();
    let held = batch::Entity::find()
        .filter(batch::Column::PurgedAt.is_null())
        .all(&state.db)
        .await;
    m.dataset_rows.clear();
    m.dataset_age_days.clear();
    let held = match held {
        Ok(held) => {
            m.database_up.set(1);
            held
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the data sets");
            m.database_up.set(0);
            return encoded(m);
        }
    };
    let today = chrono::Utc::now().date_naive();
    for name in ["trade", "financial", "subjects", "sdn"] {
        let of_set = held.iter().filter(|b| b.dataset == name);
        let label = Dataset {
            dataset: name.to_owned(),
        };
        m.dataset_rows
            .get_or_create(&label)
            .set(of_set.clone().map(|b| b.accepted_rows).sum());
        if let Some(newest) = of_set.map(|b| b.as_of).max() {
            m.dataset_age_days
                .get_or_create(&label)
                .set((today - newest).num_days());
        }
    }
    encoded(m)
}

fn encoded(m: &Metrics) -> Result<String, String> {
    let mut text = String::new();
    encode(&mut text, &m.registry).map_err(|e| e.to_string())?;
    Ok(text)
}

async fn handle(State(state): State<AppState>) -> Response {
    match render(&state).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot render metrics");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable").into_response()
        }
    }
}

/// Binds the metrics listener; serving runs in the background for the life of the process.
pub async fn serve(state: AppState, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(handle))
        .with_state(state);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text_format() {
        request("ok", std::iter::empty());
        request("partial", ["FORBIDDEN_FIELD".to_owned()].into_iter());
        audit_append(3, Duration::from_millis(2));
        quota_reservation(Duration::from_millis(1));
        let mut text = String::new();
        encode(&mut text, &global().registry).unwrap();
        assert!(
            text.contains("dartts_graphql_requests_total{outcome=\"partial\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dartts_graphql_errors_total{code=\"FORBIDDEN_FIELD\"} 1"),
            "{text}"
        );
        assert!(text.contains("dartts_audit_batch_events_count 1"), "{text}");
        assert!(
            text.contains("dartts_quota_store_seconds_count 1"),
            "{text}"
        );
    }
}
