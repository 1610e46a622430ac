//! Every refusal of a known principal leaves an audit event naming the actor and the outcome:
//! locked or disabled accounts that keep trying.

use dartts_tests::{Backend, TestEnv, error_codes};
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
