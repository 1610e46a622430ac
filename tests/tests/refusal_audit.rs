//! Every refusal of a known principal leaves an audit event naming the actor and the outcome:
//! exports refused for their data set, filter or parameters; GraphQL bodies and methods refused
//! before they ran; requests refused because the quota store is down; and locked or disabled
//! accounts that keep trying.

use dartts_tests::redis::RedisServer;
use dartts_tests::{Backend, TestEnv, error_codes, fixture};
use serde_json::json;

/// The audit events after id `after`, in order, each as `type outcome actor code`.
async fn events_after(env: &TestEnv, after: i64) -> Vec<String> {
    let events = env
        .text(&format!(
            "SELECT COALESCE(string_agg(event_type || ' ' || outcome || ' ' || \
             COALESCE(actor, '-') || ' ' || COALESCE(CAST(detail AS jsonb) ->> 'code', '-'), \
             '|' ORDER BY id), '') FROM audit_events WHERE id > {after}"
        ))
        .await;
    events
        .split('|')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn last_event(env: &TestEnv) -> i64 {
    env.scalar("SELECT COALESCE(MAX(id), 0) FROM audit_events")
        .await
}

#[tokio::test]
async fn refused_exports_and_refused_graphql_requests_are_audited_with_their_actor() {
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_GRAPHIQL", "false");
    env.load_trade_fixture().await;
    env.load_ok(&[
        "financial",
        fixture("financial.csv").to_str().expect("path"),
    ])
    .await;
    let cbp = env.user("cbp", "CBP_OFFICER", None).await;
    let hsi = env.user("hsi", "HSI_ANALYST", None).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let before = last_event(&env).await;

    // Exports refused after authentication: the data set, a filter, the parameters.
    let cbp_session = server.session(Some(&cbp));
    for (path, status, code) in [
        ("/export/financial.csv", 403, "FORBIDDEN_FIELD"),
        (
            "/export/trade.csv?filter=%7B%22linkedFinancialActivity%22%3Atrue%7D",
            403,
            "FORBIDDEN_FIELD",
        ),
        ("/export/trade.csv?limit=0", 400, "BAD_USER_INPUT"),
        ("/export/trade.csv?sort=x", 400, "BAD_USER_INPUT"),
        ("/export/secrets.csv", 404, "NOT_FOUND"),
    ] {
        let (got, body) = cbp_session.get_refused(path).await;
        assert_eq!(
            (got, error_codes(&body)),
            (status, vec![code.to_owned()]),
            "{path}: {body}"
        );
    }
    // A typo in a filter key: refused, not an unfiltered export.
    let (got, body) = server
        .session(Some(&hsi))
        .get_refused("/export/trade.csv?filter=%7B%22importerNameContain%22%3A%22x%22%7D")
        .await;
    assert_eq!(
        (got, error_codes(&body)),
        (400, vec!["BAD_USER_INPUT".to_owned()]),
        "{body}"
    );

    // GraphQL requests refused before they ran: a batch, and a mutation over GET.
    let batch = server
        .http
        .post(server.url("/graphql"))
        .bearer_auth(&cbp)
        .json(&json!([{ "query": "{ me { role } }" }]))
        .send()
        .await
        .expect("send");
    assert_eq!(batch.status(), 400);
    let over_get = server
        .http
        .get(server.url("/graphql"))
        .query(&[(
            "query",
            r#"mutation { disableUser(username: "cbp") { status } }"#,
        )])
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send");
    assert_eq!(over_get.status(), 405);

    assert_eq!(
        events_after(&env, before).await,
        [
            "access_denied denied cbp FORBIDDEN_FIELD",
            "access_denied denied cbp FORBIDDEN_FIELD",
            "export invalid cbp BAD_USER_INPUT",
            "export invalid cbp BAD_USER_INPUT",
            "export not_found cbp NOT_FOUND",
            "export invalid hsi BAD_USER_INPUT",
            "query invalid cbp BAD_USER_INPUT",
            "query invalid root BAD_USER_INPUT",
        ]
    );
    // The denials say what was refused; nothing was charged for any refusal.
    let denied = env
        .text(&format!(
            "SELECT string_agg(detail, '|' ORDER BY id) FROM audit_events \
             WHERE id > {before} AND event_type = 'access_denied'"
        ))
        .await;
    assert!(
        denied.contains("financial.csv carries FINANCIAL data"),
        "{denied}"
    );
    assert_eq!(server.session(Some(&hsi)).quota_used().await, 0);
    assert_eq!(cbp_session.quota_used().await, 0);
    // And the mutation sent over GET did not run.
    let (status, _) = cbp_session.post("{ me { role } }", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn requests_refused_while_the_quota_store_is_down_are_audited() {
    let mut redis = RedisServer::start();
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_env("DARTTS_REDIS_URL", &redis.url());
    env.load_trade_fixture().await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&cbp));
    redis.kill();
    let before = last_event(&env).await;

    let (status, body) = session
        .post(
            "{ tradeRecords(first: 2) { nodes { declarationId } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (503, vec!["QUOTA_UNAVAILABLE".to_owned()]),
        "{body}"
    );
    let (status, body) = session.get_refused("/export/trade.csv?limit=1").await;
    assert_eq!(
        (status, error_codes(&body)),
        (503, vec!["QUOTA_UNAVAILABLE".to_owned()]),
        "{body}"
    );

    assert_eq!(
        events_after(&env, before).await,
        [
            "query unavailable officer QUOTA_UNAVAILABLE",
            "export unavailable officer QUOTA_UNAVAILABLE",
        ]
    );
}

#[tokio::test]
async fn locked_and_disabled_accounts_are_named_in_their_refusals() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let locked = env.user("lockedout", "CBP_OFFICER", None).await;
    let disabled = env.user("gone", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    let db = env.db().await;
    for (user, status) in [("lockedout", "LOCKED"), ("gone", "DISABLED")] {
        sea_orm::ConnectionTrait::execute_unprepared(
            &db,
            &format!("UPDATE users SET status = '{status}' WHERE username = '{user}'"),
        )
        .await
        .expect("set status");
    }
    let before = last_event(&env).await;

    let (status, body) = server
        .session(Some(&locked))
        .post("{ me { username } }", json!({}))
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_LOCKED".to_owned()]),
        "{body}"
    );
    let (status, body) = server
        .session(Some(&locked))
        .get_refused("/export/trade.csv?limit=1")
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_LOCKED".to_owned()]),
        "{body}"
    );
    let (status, body) = server
        .session(Some(&disabled))
        .post("{ me { username } }", json!({}))
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_DISABLED".to_owned()]),
        "{body}"
    );
    // A token that does not verify names nobody: its claims are whatever its sender wrote.
    let (status, _) = server
        .session(Some(&format!("{locked}x")))
        .post("{ me { username } }", json!({}))
        .await;
    assert_eq!(status, 401);

    let events = events_after(&env, before).await;
    assert_eq!(
        events,
        [
            "access_denied denied lockedout -",
            "access_denied denied lockedout -",
            "access_denied denied gone -",
            "token_refused denied - -",
        ]
    );
}
