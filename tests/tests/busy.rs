//! A database with no connection free for a request, or none at all: the request is told
//! `UNAVAILABLE`, never INTERNAL; when the pool was only busy it is audited, and the requests
//! that did get a connection finish once it frees.

use dartts_tests::{Backend, Server, TestEnv, error_codes};
use serde_json::json;

/// A page of the trade fixture that every test here reads.
const PAGE: &str = "{ tradeRecords(first: 5) { edges { node { declarationId } } } }";

/// The trade fixture on `backend`, an analyst's server that has read one page, and the id of
/// the last audit event before what the test does next.
async fn reading(backend: Backend) -> (TestEnv, Server, i64) {
    let env = TestEnv::new(backend).await;
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    assert!(server.data(PAGE, json!({})).await["tradeRecords"]["edges"][0].is_object());
    let audited_before = env.scalar("SELECT max(id) FROM audit_events").await;
    (env, server, audited_before)
}

/// Another transaction holds `trade_records` as `dartts load --exclusive` does while more trade
/// reads arrive than the server's pool has connections: those that got one wait for the table,
/// the others give up after the pool's wait and are refused `UNAVAILABLE` in the field (no
/// connection for the page), and a request that finds no connection for its account is
/// refused whole (HTTP 503), and so is a CSV export. Every request is audited, on the audit
/// writer's own connection.
#[tokio::test]
async fn requests_the_pool_cannot_serve_are_unavailable_not_internal() {
    let (env, server, audited_before) = reading(Backend::Postgres).await;
    let holder = env
        .holding("LOCK TABLE trade_records IN ACCESS EXCLUSIVE MODE")
        .await;
    const READS: usize = 30;
    let session = server.session(server.token.as_deref());
    let reads = futures_util::future::join_all((0..READS).map(|_| session.post(PAGE, json!({}))));
    let meanwhile = async {
        // Once the reads hold the pool, a request that needs a connection before execution
        // (its account) is refused whole.
        env.until_waiting_for("trade_records").await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (status, body) = session.post("{ me { role } }", json!({})).await;
        assert_eq!(
            (status, error_codes(&body)),
            (503, vec!["UNAVAILABLE".to_owned()]),
            "{body:#}"
        );
        // The CSV export answers the same way.
        let (status, body) = session.get_refused("/export/trade.csv?limit=5").await;
        assert_eq!(
            (status, error_codes(&body)),
            (503, vec!["UNAVAILABLE".to_owned()]),
            "{body:#}"
        );
        // Longer than twice the pool's wait (5 s) in all: the requests without a connection
        // have given up, and an audit record that queued for the same pool would have too.
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        holder.rollback().await.expect("release");
    };
    let (responses, ()) = tokio::join!(reads, meanwhile);

    let (mut served, mut refused) = (0, 0);
    for (status, body) in &responses {
        let codes = error_codes(body);
        if codes.is_empty() {
            assert_eq!(*status, 200, "{body:#}");
            assert!(
                body["data"]["tradeRecords"]["edges"][0].is_object(),
                "{body:#}"
            );
            served += 1;
            continue;
        }
        assert_eq!(codes, ["UNAVAILABLE"], "{status}: {body:#}");
        assert!(*status == 503 || *status == 200, "{status}: {body:#}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("try again"), "{message}");
        assert!(!message.contains("pool"), "{message}");
        refused += 1;
    }
    assert!(
        served > 0 && refused > 0,
        "served {served}, refused {refused}"
    );
    assert_eq!(
        env.scalar(&format!(
            "SELECT count(*) FROM audit_events WHERE id > {audited_before}"
        ))
        .await,
        i64::try_from(READS + 2).expect("count")
    );
}

/// The embedded default keeps its audit log in a file of its own (`dartts::db::audit_file`):
/// SQLite admits one writer per file, and a `dartts load` holds the data file's write lock
/// from its first row to its commit. Another transaction holds it here: reads are answered and
/// audited meanwhile, while it is still held (with the audit tables in the data file they
/// waited for it and failed `INTERNAL` after the 60 s busy timeout).
#[tokio::test]
async fn sqlite_requests_are_answered_and_audited_while_a_load_holds_the_data_file() {
    let (env, server, audited_before) = reading(Backend::Sqlite).await;
    let holder = env
        .holding("UPDATE batches SET file_name = file_name")
        .await;
    const READS: usize = 12;
    let session = server.session(server.token.as_deref());
    let responses = futures_util::future::join_all((0..READS).map(|i| {
        let query = if i % 2 == 0 { PAGE } else { "{ me { role } }" };
        session.post(query, json!({}))
    }))
    .await;
    for (status, body) in &responses {
        assert_eq!(*status, 200, "{body:#}");
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let audited = env
        .scalar(&format!(
            "SELECT count(*) FROM audit_events WHERE id > {audited_before} AND event_type = 'query'"
        ))
        .await;
    assert_eq!(
        audited, READS as i64,
        "every read audited while the lock is held"
    );
    holder.rollback().await.expect("release");
    assert!(
        env.dir.path().join("t.db-audit").exists(),
        "the audit file beside the database"
    );
}

/// A database that stops answering (here dropped, as a mistaken operator or a failed disk would
/// leave it): requests are told `UNAVAILABLE` with HTTP 503, as when the pool is exhausted —
/// an outage to wait out, not an INTERNAL fault to report — and `/metrics` still serves the
/// counters an operator watches then, with `dartts_database_up 0` and no data-set gauges.
#[tokio::test]
async fn a_database_that_is_gone_is_unavailable_and_the_metrics_still_answer() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let env = env.with_metrics();
    let server = env.serve_as_analyst().await;
    let text = server.metrics().await;
    for expected in [
        "dartts_database_up 1",
        "dartts_dataset_rows{dataset=\"trade\"} 10",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }

    env.drop_database().await;
    let session = server.session(server.token.as_deref());
    for query in [
        "{ me { role } }",
        "{ tradeRecords(first: 1) { totalCount } }",
    ] {
        let (status, body) = session.post(query, json!({})).await;
        assert_eq!(
            (status, error_codes(&body)),
            (503, vec!["UNAVAILABLE".to_owned()]),
            "{query}: {body:#}"
        );
        assert!(
            !body.to_string().contains("does not exist"),
            "no internals: {body:#}"
        );
    }
    let text = server.metrics().await;
    assert!(text.contains("dartts_database_up 0"), "{text}");
    assert!(!text.contains("dartts_dataset_rows{"), "{text}");
    assert!(
        text.contains("dartts_graphql_errors_total{code=\"UNAVAILABLE\"} 2"),
        "{text}"
    );
}
