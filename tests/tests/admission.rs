//! Analyses take turns (`DARTTS_ANALYSIS_CONCURRENCY`): no more than that many run at once,
//! the others wait in the server, first come first served, and every other request passes by
//! the queue.
//!
//! Made deterministic by a lock: another transaction holds the trade tables as `dartts load
//! --exclusive` does, so a running analysis waits in the database for as long as the test
//! wants, where `pg_locks` shows it; one that waits for its turn is not there.

use std::time::{Duration, Instant};

use dartts_tests::{Backend, TestEnv};
use serde_json::json;

/// Red flags read the trade records in the database.
const ANALYSIS: &str = "{ redFlags(first: 3, kinds: [ROUND_VALUE, TRANSSHIPMENT]) { totalCount \
                        edges { node { kind record { declarationId } } } } }";
const PAGE: &str = "{ tradeRecords(first: 5) { edges { node { declarationId } } } }";
const TABLES: &str = "trade_records, trade_importer_years, trade_hs6_years, peer_profiles";

#[tokio::test]
async fn analyses_past_the_concurrency_wait_their_turn_and_pages_do_not() {
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_ANALYSIS_CONCURRENCY", "2")
        .with_metrics();
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    let session = server.session(server.token.as_deref());
    let expected = server.data(ANALYSIS, json!({})).await;
    assert!(
        expected["redFlags"]["totalCount"].as_i64() > Some(0),
        "{expected:#}"
    );

    let holder = env
        .holding(&format!("LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE"))
        .await;
    let in_database = || async {
        env.scalar(&format!(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND relation IN \
             (SELECT unnest(string_to_array('{}', ', ')::regclass[]))",
            TABLES
        ))
        .await
    };
    let until_in_database = |n: i64| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while in_database().await < n {
            assert!(Instant::now() < deadline, "never {n} in the database");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let analyses =
        futures_util::future::join_all((0..3).map(|_| session.post(ANALYSIS, json!({}))));
    let page = async {
        // Two analyses reach the database; the third waits for a turn in the server.
        until_in_database(2).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(in_database().await, 2, "a third analysis ran beside two");
        let metrics = server.metrics().await;
        assert!(
            metrics.contains("\ndartts_analysis_waiting 1\n"),
            "{metrics}"
        );
        // A page is no analysis: it passes by the queue and reaches the database too.
        let page = session.post(PAGE, json!({}));
        let release = async {
            until_in_database(3).await;
            // A request that reads none of the held tables is answered meanwhile.
            let me = tokio::time::timeout(
                Duration::from_secs(10),
                session.post("{ me { role } }", json!({})),
            )
            .await
            .expect("`me` waited behind the analyses");
            assert_eq!(me.0, 200, "{:#}", me.1);
            holder.rollback().await.expect("release");
        };
        tokio::join!(page, release).0
    };
    let (analyses, (page_status, page_body)) = tokio::join!(analyses, page);

    assert_eq!(page_status, 200, "{page_body:#}");
    assert!(page_body["data"]["tradeRecords"]["edges"][0].is_object());
    for (status, body) in analyses {
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(body["data"], expected, "{body:#}");
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("\ndartts_analysis_waiting 0\n"),
        "{metrics}"
    );
    // The first request above and the three here were each given a turn.
    assert!(
        metrics.contains("\ndartts_analysis_wait_seconds_count 4\n"),
        "{metrics}"
    );
}
