//! The request time limit (`DARTTS_REQUEST_TIME_LIMIT`): a query that runs past it is stopped
//! — in the database too, not only in the server — refused `TIMEOUT` (HTTP 504) with nothing
//! delivered or counted, and audited; the server goes on answering.
//!
//! The slow query is made deterministic by a lock: another transaction holds `trade_records`
//! as `dartts load --exclusive` does, so every read of it waits however fast the machine is.
//! SQLite has no table locks (a lock on the whole file stops the account lookup before any
//! query runs); its statements are stopped by a progress handler, tested on the pool the
//! server serves from in `api/src/time_limit.rs`.

use std::time::Duration;

use dartts_tests::{Backend, TestEnv, error_codes};
use serde_json::json;

const PAGE: &str = "{ tradeRecords(first: 5) { totalCount edges { node { declarationId } } } }";

#[tokio::test]
async fn a_query_past_the_time_limit_is_stopped_refused_and_audited() {
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_REQUEST_TIME_LIMIT", "1");
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    let session = server.session(server.token.as_deref());
    assert!(server.data(PAGE, json!({})).await["tradeRecords"]["totalCount"].as_i64() > Some(0));
    let used_before = session.quota_used().await;
    let audited_before = env.scalar("SELECT max(id) FROM audit_events").await;

    let holder = env
        .holding("LOCK TABLE trade_records IN ACCESS EXCLUSIVE MODE")
        .await;
    let (status, body) = session.post(PAGE, json!({})).await;
    assert_eq!(
        (status, error_codes(&body)),
        (504, vec!["TIMEOUT".to_owned()]),
        "{body:#}"
    );
    assert!(body["data"].is_null(), "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("time limit"), "{message}");
    assert!(!message.contains("statement"), "{message}");
    // The database stops the statement too (its `statement_timeout`), while the lock is still
    // held: without it, the read would wait for the lock as long as the holder keeps it.
    let waiting =
        "SELECT count(*) FROM pg_locks WHERE relation = 'trade_records'::regclass AND NOT granted";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while env.scalar(waiting).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped query still waits in the database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The CSV export's count answers the same way.
    let (status, body) = session.get_refused("/export/trade.csv?limit=5").await;
    assert_eq!(
        (status, error_codes(&body)),
        (504, vec!["TIMEOUT".to_owned()]),
        "{body:#}"
    );
    // A query that does not read the held table is not held up.
    assert_eq!(session.quota_used().await, used_before);
    holder.rollback().await.expect("release");

    assert!(server.data(PAGE, json!({})).await["tradeRecords"]["edges"][0].is_object());
    let timed_out = |event_type: &str| {
        format!(
            "SELECT count(*) FROM audit_events WHERE id > {audited_before} \
             AND event_type = '{event_type}' AND outcome = 'timed_out' AND records = 0"
        )
    };
    assert_eq!(env.scalar(&timed_out("query")).await, 1);
    assert_eq!(env.scalar(&timed_out("export")).await, 1);
    // The page after the release was delivered and counted; the stopped one was not.
    assert_eq!(session.quota_used().await, used_before + 5);
}
