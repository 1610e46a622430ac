//! Download quotas against a real Redis (and the embedded in-process store): exact accounting
//! under races, lock and admin unlock, Redis killed and flushed, and the audit trail.

use std::time::{Duration, Instant};

use dartts_tests::redis::RedisServer;
use dartts_tests::{Backend, Server, TestEnv, error_codes};
use serde_json::{Value, json};

const CBP_QUOTA: &str = r#"quota = { records = 20000, window = "day" }"#;

fn with_quota(records: u64) -> String {
    format!(r#"quota = {{ records = {records}, window = "day" }}"#)
}

async fn env_with(backend: Backend, records: u64, redis: Option<&RedisServer>) -> TestEnv {
    let mut env = TestEnv::new(backend)
        .await
        .with_roles_edited(&[(CBP_QUOTA, &with_quota(records))]);
    if let Some(r) = redis {
        env = env.with_env("DARTTS_REDIS_URL", &r.url());
    }
    env.load_trade_fixture().await;
    env
}

fn page(first: u32) -> String {
    format!("{{ tradeRecords(first: {first}) {{ edges {{ node {{ declarationId }} }} }} }}")
}

async fn pull(server: &Server, token: &str, first: u32) -> (u16, Value) {
    server
        .session(Some(token))
        .post(&page(first), json!({}))
        .await
}

async fn status_of(server: &Server, admin: &str, user_id: &str) -> Value {
    server
        .session(Some(admin))
        .data(
            "query($u: ID) { quotaStatus(userId: $u) { used limit window locked } }",
            json!({ "u": user_id }),
        )
        .await["quotaStatus"]
        .clone()
}

async fn user_id(server: &Server, token: &str) -> String {
    server
        .session(Some(token))
        .data("{ me { id } }", json!({}))
        .await["me"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn crossing_the_quota_delivers_nothing_locks_and_an_admin_unlocks() {
    let redis = RedisServer::start();
    let env = env_with(Backend::Postgres, 25, Some(&redis)).await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let id = user_id(&server, &cbp).await;

    for _ in 0..2 {
        let (status, body) = pull(&server, &cbp, 10).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["tradeRecords"]["edges"]
                .as_array()
                .expect("edges")
                .len(),
            10
        );
    }
    // Own status, then the request that would cross 25: nothing delivered, account locked.
    let mine = server
        .session(Some(&cbp))
        .data("{ quotaStatus { used limit window locked } }", json!({}))
        .await;
    assert_eq!(
        mine["quotaStatus"],
        json!({ "used": 20, "limit": 25, "window": "DAY", "locked": false })
    );
    let (status, body) = pull(&server, &cbp, 10).await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_LOCKED".to_owned()]),
        "{body}"
    );
    assert_eq!(body["data"], Value::Null);
    // Every further request, however small, is refused.
    let (status, body) = pull(&server, &cbp, 1).await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_LOCKED".to_owned()])
    );
    let (status, _) = server
        .session(Some(&cbp))
        .post("{ me { role } }", json!({}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        status_of(&server, &admin, &id).await,
        json!({ "used": 20, "limit": 25, "window": "DAY", "locked": true })
    );

    // Someone else's status is for administrators only.
    let other = server
        .session(Some(&admin))
        .data("{ me { id } }", json!({}))
        .await["me"]["id"]
        .clone();
    let officer2 = env.user("officer2", "CBP_OFFICER", None).await;
    let body = server
        .session(Some(&officer2))
        .gql(
            "query($u: ID) { quotaStatus(userId: $u) { used } }",
            json!({ "u": other }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"], "{body}");

    // Unlock needs a reason, is audited, and starts the count over.
    let unlock = "mutation($u: ID!, $r: String!) { unlockUser(userId: $u, reason: $r) { status } }";
    let body = server
        .session(Some(&admin))
        .gql(unlock, json!({ "u": id, "r": " " }))
        .await;
    assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"]);
    let body = server
        .session(Some(&admin))
        .data(
            unlock,
            json!({ "u": id, "r": "ticket 4711: bulk review approved" }),
        )
        .await;
    assert_eq!(body["unlockUser"]["status"], "ACTIVE");
    let body = server
        .session(Some(&admin))
        .gql(unlock, json!({ "u": id, "r": "again" }))
        .await;
    assert_eq!(
        error_codes(&body),
        vec!["BAD_USER_INPUT"],
        "only locked accounts unlock"
    );
    assert_eq!(status_of(&server, &admin, &id).await["used"], 0);
    let (status, _) = pull(&server, &cbp, 10).await;
    assert_eq!(status, 200);

    let unlocks = env
        .scalar("SELECT COUNT(*) FROM audit_events WHERE event_type = 'unlock' AND outcome = 'ok' AND detail LIKE '%ticket 4711%' AND actor = 'root'")
        .await;
    assert_eq!(unlocks, 1);
    assert_eq!(env.scalar("SELECT COUNT(*) FROM audit_events WHERE event_type = 'quota_lock' AND actor = 'officer'").await, 1);
    let verify = env.run(&["audit", "verify"]).await;
    assert!(verify.ok, "{}{}", verify.stdout, verify.stderr);
}

#[tokio::test]
async fn fifty_racing_clients_get_exactly_the_quota() {
    let redis = RedisServer::start();
    let env = env_with(Backend::Postgres, 20, Some(&redis)).await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    let server = env.serve().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let session = server.session(Some(&cbp));
        tasks.push(async move { session.post(&page(1), json!({})).await });
    }
    let results = join_all(tasks).await;
    let delivered: usize = results
        .iter()
        .map(|(_, body)| {
            body["data"]["tradeRecords"]["edges"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    let locked = results.iter().filter(|(status, _)| *status == 403).count();
    assert_eq!(delivered, 20, "exactly the quota is delivered");
    assert_eq!(locked, 30);
    let (status, _) = pull(&server, &cbp, 1).await;
    assert_eq!(status, 403);
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM users WHERE username = 'officer' AND status = 'LOCKED'")
            .await,
        1
    );
    // Fifty concurrent audit appends (group-committed) still form one unbroken chain, and the
    // audit log holds exactly the 20 delivered records.
    let verify = env.run(&["audit", "verify"]).await;
    assert!(verify.ok, "{}", verify.stdout);
    assert_eq!(
        env.scalar("SELECT CAST(SUM(records) AS BIGINT) FROM audit_events WHERE actor = 'officer'")
            .await,
        20
    );
}

use futures_util::future::join_all;

#[tokio::test]
async fn redis_loss_fails_closed_and_recovers_without_forgetting() {
    let mut redis = RedisServer::start();
    let env = env_with(Backend::Postgres, 25, Some(&redis)).await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let id = user_id(&server, &cbp).await;
    assert_eq!(pull(&server, &cbp, 10).await.0, 200);

    redis.kill();
    let started = Instant::now();
    let (status, body) = pull(&server, &cbp, 1).await;
    assert_eq!(
        (status, error_codes(&body)),
        (503, vec!["QUOTA_UNAVAILABLE".to_owned()]),
        "{body}"
    );
    assert_eq!(body["data"], Value::Null);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fail closed quickly: {:?}",
        started.elapsed()
    );
    // Requests that deliver no records are not quota-limited and still work.
    assert_eq!(
        server
            .session(Some(&cbp))
            .post("{ me { role } }", json!({}))
            .await
            .0,
        200
    );

    // Back, but empty: the counter is rebuilt from the audit log, not reset to zero.
    redis.restart();
    let mut recovered = None;
    for _ in 0..50 {
        let (status, body) = pull(&server, &cbp, 10).await;
        if status == 200 {
            recovered = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered.is_some(),
        "service did not recover after Redis came back"
    );
    assert_eq!(status_of(&server, &admin, &id).await["used"], 20);

    // FLUSHALL while locked: the lock lives in the database too.
    let (status, _) = pull(&server, &cbp, 10).await;
    assert_eq!(status, 403);
    assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    let (status, body) = pull(&server, &cbp, 1).await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_LOCKED".to_owned()])
    );
}

#[tokio::test]
async fn a_cumulative_quota_counts_across_flushes_until_an_unlock() {
    let redis = RedisServer::start();
    let env = TestEnv::new(Backend::Postgres)
        .await
        .with_roles_edited(&[(
            CBP_QUOTA,
            r#"quota = { records = 7, window = "until_unlock" }"#,
        )])
        .with_env("DARTTS_REDIS_URL", &redis.url());
    env.load_trade_fixture().await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let id = user_id(&server, &cbp).await;
    assert_eq!(pull(&server, &cbp, 4).await.0, 200);
    // Lost counters come back from the audit log with no window start but the last unlock.
    assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    assert_eq!(
        status_of(&server, &admin, &id).await,
        json!({ "used": 4, "limit": 7, "window": "UNTIL_UNLOCK", "locked": false })
    );
    let (status, body) = pull(&server, &cbp, 4).await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_LOCKED".to_owned()]),
        "{body}"
    );
    let body = server
        .session(Some(&admin))
        .data(
            "mutation($u: ID!) { unlockUser(userId: $u, reason: \"case closed\") { status } }",
            json!({ "u": id }),
        )
        .await;
    assert_eq!(body["unlockUser"]["status"], "ACTIVE");
    // The unlock starts the count over, also for a rebuild after another flush.
    assert_eq!(pull(&server, &cbp, 5).await.0, 200);
    assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
    assert_eq!(status_of(&server, &admin, &id).await["used"], 5);
    let (status, _) = pull(&server, &cbp, 3).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn embedded_store_has_the_same_rules_and_survives_a_restart() {
    let env = env_with(Backend::Sqlite, 15, None).await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    {
        let server = env.serve().await;
        assert_eq!(pull(&server, &cbp, 10).await.0, 200);
    }
    // A new process has an empty in-memory store: the 10 delivered are rebuilt from the audit.
    let server = env.serve().await;
    let (status, body) = pull(&server, &cbp, 10).await;
    assert_eq!(
        (status, error_codes(&body)),
        (403, vec!["ACCOUNT_LOCKED".to_owned()]),
        "{body}"
    );
}

#[tokio::test]
async fn the_audit_chain_is_append_only_and_tampering_is_found() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.load_trade_fixture().await;
    let token = env.user("alice", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    server.session(Some(&token)).data(&page(3), json!({})).await;
    server
        .session(None)
        .post("{ me { role } }", json!({}))
        .await;
    server
        .session(Some("forged.token.x"))
        .post("{ me { role } }", json!({}))
        .await;
    let cbp = env.user("officer", "CBP_OFFICER", None).await;
    server
        .session(Some(&cbp))
        .post("{ financialTransactions { totalCount } }", json!({}))
        .await;

    for (event, outcome) in [
        ("ingest", "ok"),
        ("admin_change", "ok"),
        ("query", "ok"),
        ("token_refused", "denied"),
        ("access_denied", "denied"),
    ] {
        let n = env
            .scalar(&format!("SELECT COUNT(*) FROM audit_events WHERE event_type = '{event}' AND outcome = '{outcome}'"))
            .await;
        assert!(n >= 1, "no {event}/{outcome} event");
    }
    assert_eq!(
        env.scalar(
            "SELECT records FROM audit_events WHERE event_type = 'query' AND actor = 'alice'"
        )
        .await,
        3
    );
    let ok = env.run(&["audit", "verify"]).await;
    assert!(
        ok.ok && ok.stdout.contains("audit log intact"),
        "{}",
        ok.stdout
    );

    // The request id a client sees is the one in its audit row.
    let response = server
        .http
        .post(server.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "query Mine { me { role } }" }))
        .send()
        .await
        .expect("send");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let found = env
        .scalar(&format!("SELECT COUNT(*) FROM audit_events WHERE detail LIKE '%{request_id}%' AND detail LIKE '%Mine%'"))
        .await;
    assert_eq!(found, 1);

    // The log is readable through the API by auditors only; account changes are in it.
    let admin = env.user("auditor", "ADMIN", None).await;
    server
        .session(Some(&admin))
        .data(
            r#"mutation { markReviewed(username: "alice") { username } }"#,
            json!({}),
        )
        .await;
    let events = server
        .session(Some(&admin))
        .data(r#"{ auditEvents(first: 5, filter: { eventType: "admin_change" }) { totalCount edges { node { sequence actor eventType outcome detail hash } } } }"#, json!({}))
        .await;
    let edges = events["auditEvents"]["edges"].as_array().expect("edges");
    assert!(
        edges.iter().any(|e| e["node"]["actor"] == "auditor"
            && e["node"]["detail"]
                .as_str()
                .expect("detail")
                .contains("mark_reviewed")),
        "{events}"
    );
    let body = server
        .session(Some(&token))
        .gql("{ auditEvents { totalCount } }", json!({}))
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN_FIELD"]);

    // Updates and deletes are refused by the database itself.
    let db = env.db().await;
    use sea_orm::ConnectionTrait;
    assert!(
        db.execute_unprepared("UPDATE audit_events SET records = 0")
            .await
            .is_err()
    );
    assert!(
        db.execute_unprepared("DELETE FROM audit_events")
            .await
            .is_err()
    );
    // Someone able to drop the trigger can edit a row, but not unnoticed.
    db.execute_unprepared("DROP TRIGGER audit_no_UPDATE")
        .await
        .expect("drop trigger");
    db.execute_unprepared(
        "UPDATE audit_events SET records = 0 WHERE event_type = 'query' AND actor = 'alice'",
    )
    .await
    .expect("tamper");
    let broken = env.run(&["audit", "verify"]).await;
    assert!(
        !broken.ok && broken.stdout.contains("BROKEN at event"),
        "{}",
        broken.stdout
    );
}

#[tokio::test]
async fn without_an_audit_record_nothing_is_delivered() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let token = env.user("alice", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let db = env.db().await;
    use sea_orm::ConnectionTrait;
    db.execute_unprepared("ALTER TABLE audit_events RENAME TO audit_events_moved")
        .await
        .expect("rename");
    let (status, body) = server.session(Some(&token)).post(&page(3), json!({})).await;
    assert_eq!(
        (status, error_codes(&body)),
        (500, vec!["INTERNAL".to_owned()]),
        "{body}"
    );
    assert_eq!(body["data"], Value::Null);
    assert!(
        !body.to_string().contains("audit_events"),
        "internals leaked: {body}"
    );
}

/// The unlock events say what the answer said, and where the request came from.
#[tokio::test]
async fn unlock_audit_matches_the_answer_and_names_the_source() {
    let env = TestEnv::new(Backend::Postgres).await;
    let admin = env.user("root", "ADMIN", None).await;
    let server = env.serve().await;
    let before = env
        .scalar("SELECT COALESCE(MAX(id), 0) FROM audit_events")
        .await;
    let response = server
        .session(Some(&admin))
        .gql(
            r#"mutation { unlockUser(userId: "999999", reason: "ticket 7") { username } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&response), vec!["NOT_FOUND"], "{response}");
    let events = env
        .text(&format!(
            "SELECT string_agg(event_type || '/' || outcome || '@' || COALESCE(source, '-') || '#' || instance, ' ' ORDER BY id) \
             FROM audit_events WHERE id > {before}"
        ))
        .await;
    assert_eq!(
        events,
        "mutation/attempted@127.0.0.1#domestic unlock/attempted@127.0.0.1#domestic \
         unlock/not_found@127.0.0.1#domestic mutation/failed@127.0.0.1#domestic",
        "{events}"
    );
}
