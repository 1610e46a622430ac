//! Analyses take turns (`DARTTS_ANALYSIS_CONCURRENCY`): no more than that many run at once,
//! the others wait in the server, the analysts served in rotation, and every other request
//! passes by the queue.
//!
//! Made deterministic by a lock: another transaction holds the trade tables as `dartts load
//! --exclusive` does, so a running analysis waits in the database for as long as the test
//! wants, where `pg_locks` shows it; one that waits for its turn is not there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dartts_tests::{Backend, TestEnv};
use serde_json::json;

/// Red flags read the trade records in the database.
const ANALYSIS: &str = "{ redFlags(first: 3, kinds: [ROUND_VALUE, TRANSSHIPMENT]) { totalCount \
                        edges { node { kind record { declarationId } } } } }";
const PAGE: &str = "{ tradeRecords(first: 5) { edges { node { declarationId } } } }";
const TABLES: &str = "trade_records, trade_importer_years, trade_hs6_years, peer_profiles";

/// How many statements wait for the held trade tables: the analyses running in the database.
async fn in_database(env: &TestEnv) -> i64 {
    env.scalar(&format!(
        "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND relation IN \
         (SELECT unnest(string_to_array('{TABLES}', ', ')::regclass[]))"
    ))
    .await
}

async fn until_in_database(env: &TestEnv, n: i64) {
    until(&format!("{n} in the database"), || async move {
        in_database(env).await >= n
    })
    .await;
}

/// Polls `done` until it holds; fails the test after a minute, naming `what` never happened.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server and its environment: PostgreSQL with the trade fixture, `concurrency` turns,
/// metrics on, requests sent as an analyst.
async fn serving(concurrency: &str) -> (TestEnv, dartts_tests::Server) {
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_ANALYSIS_CONCURRENCY", concurrency)
        .with_metrics();
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    (env, server)
}

#[tokio::test]
async fn analyses_past_the_concurrency_wait_their_turn_and_pages_do_not() {
    let (env, server) = serving("2").await;
    let session = server.session(server.token.as_deref());
    let expected = server.data(ANALYSIS, json!({})).await;
    assert!(
        expected["redFlags"]["totalCount"].as_i64() > Some(0),
        "{expected:#}"
    );

    let holder = env
        .holding(&format!("LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE"))
        .await;
    let analyses =
        futures_util::future::join_all((0..3).map(|_| session.post(ANALYSIS, json!({}))));
    let page = async {
        // Two analyses reach the database; the third waits for a turn in the server.
        until_in_database(&env, 2).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            in_database(&env).await,
            2,
            "a third analysis ran beside two"
        );
        let metrics = server.metrics().await;
        assert!(
            metrics.contains("\ndartts_analysis_waiting 1\n"),
            "{metrics}"
        );
        // A page is no analysis: it passes by the queue and reaches the database too.
        let page = session.post(PAGE, json!({}));
        let release = async {
            until_in_database(&env, 3).await;
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

/// Totals by year are answered from a rollup: they never read `trade_records`.
const TOTALS: &str =
    "{ tradeTotals(groupBy: [YEAR]) { totalCount edges { node { year recordCount } } } }";

async fn until_metric(server: &dartts_tests::Server, line: &str) {
    until(&format!("{line:?} in the metrics"), || async {
        server.metrics().await.contains(line)
    })
    .await;
}

#[tokio::test]
async fn an_analyst_with_many_analyses_waiting_delays_another_by_one_turn() {
    let (env, server) = serving("1").await;
    let busy = server.session(server.token.as_deref());
    let other_token = env.user("second_analyst", "HSI_ANALYST", None).await;
    let other = server.session(Some(&other_token));
    let totals = server.data(TOTALS, json!({})).await;
    assert!(
        totals["tradeTotals"]["totalCount"].as_i64() > Some(0),
        "{totals:#}"
    );
    let flags = other.data(ANALYSIS, json!({})).await;

    // The first analyst's first analysis waits in the database; two more wait in the server,
    // the second for a turn, the third for the first analyst's place in the queue.
    let everything = env
        .holding(&format!("LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE"))
        .await;
    let answered = AtomicUsize::new(0);
    let busy_analysis = || async {
        let answer = busy.post(TOTALS, json!({})).await;
        answered.fetch_add(1, Ordering::SeqCst);
        answer
    };
    let (busy_answers, (other_answer, ())) = tokio::join!(
        async {
            let more = async {
                env.until_waiting_for("trade_importer_years").await;
                tokio::join!(busy_analysis(), busy_analysis())
            };
            let (first, (second, third)) = tokio::join!(busy_analysis(), more);
            [first, second, third]
        },
        async {
            env.until_waiting_for("trade_importer_years").await;
            until_metric(&server, "\ndartts_analysis_waiting 2\n").await;
            // Then the second analyst asks. Once it waits too, another transaction asks for the
            // records behind the first one's lock: it holds them from the moment the first
            // analysis can run, so whichever analysis is given the next turn but one waits
            // there (the first analyst's read a rollup and pass).
            let records = async {
                until_metric(&server, "\ndartts_analysis_waiting 3\n").await;
                let (records, ()) = tokio::join!(
                    env.holding("LOCK TABLE trade_records IN ACCESS EXCLUSIVE MODE"),
                    async {
                        env.until_waiting_for("trade_records").await;
                        everything.rollback().await.expect("release");
                    }
                );
                // The second analyst's analysis is given the turn after the first analyst's
                // second (already in the queue when it came), ahead of the third, which waited
                // for the first analyst's place in the queue.
                env.until_waiting_for("trade_records").await;
                until("the first two answered", || async {
                    answered.load(Ordering::SeqCst) >= 2
                })
                .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                assert_eq!(
                    answered.load(Ordering::SeqCst),
                    2,
                    "not two of the first analyst's analyses before the second analyst's"
                );
                until_metric(&server, "\ndartts_analysis_waiting 1\n").await;
                records.rollback().await.expect("release the records");
            };
            tokio::join!(other.post(ANALYSIS, json!({})), records)
        }
    );

    for (status, body) in busy_answers {
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(body["data"], totals, "{body:#}");
    }
    assert_eq!(other_answer.0, 200, "{:#}", other_answer.1);
    assert_eq!(other_answer.1["data"], flags, "{:#}", other_answer.1);
    until_metric(&server, "\ndartts_analysis_waiting 0\n").await;
}

#[tokio::test]
async fn a_document_of_several_analyses_waits_for_as_many_turns() {
    let (env, server) = serving("2").await;
    let session = server.session(server.token.as_deref());
    let two = format!(
        "{{ a: {} b: {} }}",
        &ANALYSIS[2..ANALYSIS.len() - 2],
        &ANALYSIS[2..ANALYSIS.len() - 2]
    );
    let expected_two = server.data(&two, json!({})).await;
    let expected = server.data(ANALYSIS, json!({})).await;
    assert_eq!(expected_two["a"], expected["redFlags"], "{expected_two:#}");

    let holder = env
        .holding(&format!("LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE"))
        .await;
    let (both, (one, ())) = tokio::join!(session.post(&two, json!({})), async {
        // The two aliases run side by side, on the two turns there are.
        until_in_database(&env, 2).await;
        let release = async {
            until_metric(&server, "\ndartts_analysis_waiting 1\n").await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(
                in_database(&env).await,
                2,
                "a third analysis ran beside two"
            );
            holder.rollback().await.expect("release");
        };
        tokio::join!(session.post(ANALYSIS, json!({})), release)
    });
    assert_eq!(both.0, 200, "{:#}", both.1);
    assert_eq!(both.1["data"], expected_two, "{:#}", both.1);
    assert_eq!(one.0, 200, "{:#}", one.1);
    assert_eq!(one.1["data"], expected, "{:#}", one.1);
}

#[tokio::test]
async fn an_analysis_left_out_by_its_variables_takes_no_turn() {
    let (env, server) = serving("1").await;
    let session = server.session(server.token.as_deref());
    let holder = env
        .holding(&format!("LOCK TABLE {TABLES} IN ACCESS EXCLUSIVE MODE"))
        .await;
    let skipped = "query ($later: Boolean!) { me { role } redFlags(first: 1) @skip(if: $later) \
                   { totalCount } }";
    let (held, ()) = tokio::join!(session.post(ANALYSIS, json!({})), async {
        // The one turn is held in the database; a document whose analysis its variables leave
        // out is answered meanwhile.
        until_in_database(&env, 1).await;
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(10),
            session.post(skipped, json!({ "later": true })),
        )
        .await
        .expect("a skipped analysis waited for a turn");
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(
            body["data"],
            json!({ "me": { "role": "HSI_ANALYST" } }),
            "{body:#}"
        );
        holder.rollback().await.expect("release");
    });
    assert_eq!(held.0, 200, "{:#}", held.1);
}
