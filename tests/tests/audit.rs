//! The audit log on PostgreSQL: who may change it (nobody the API runs as), and one chain when
//! several processes append at once.

use dartts_tests::{Backend, TestEnv};
use futures_util::future::join_all;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::json;

/// The role set-up from `docs/operations.md`, run as written with only the role's name and
/// password filled in: the test fails if the guide stops giving what it promises.
fn operations_guide_sql(role: &str, password: &str) -> String {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
    )
    .expect("docs/operations.md");
    let start = guide.find("```sql\n").expect("an sql block in the guide") + "```sql\n".len();
    let end = start + guide[start..].find("```").expect("end of the sql block");
    let sql = &guide[start..end];
    assert!(
        sql.contains("dartts_app") && sql.contains("'…'"),
        "the guide's role block changed shape:\n{sql}"
    );
    sql.replace("dartts_app", role)
        .replace("'…'", &format!("'{password}'"))
}

/// `url` with its user and password replaced.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

async fn refused(db: &DatabaseConnection, sql: &str) -> String {
    db.execute_unprepared(sql)
        .await
        .expect_err(&format!("{sql} must be refused"))
        .to_string()
}

#[tokio::test]
async fn the_api_role_cannot_rewrite_the_log_and_whoever_can_is_caught() {
    let env = TestEnv::new(Backend::Postgres).await;
    env.load_trade_fixture().await;
    let token = env.user("alice", "HSI_ANALYST", None).await;
    let owner = env.db().await;

    // The API as the separate application role of the operations guide.
    let role = format!("dartts_t_app_{}", std::process::id());
    owner
        .execute_unprepared(&operations_guide_sql(&role, "app-secret"))
        .await
        .expect("the guide's role set-up runs");
    let app_url = as_user(&env.database_url, &role, "app-secret");
    // From here on, the server and the CLI connect as the application role.
    let env = env.with_env("DARTTS_DATABASE_URL", &app_url);
    let before = env.count("audit_events").await;
    let server = env.serve().await;
    for _ in 0..3 {
        let (status, body) = server
            .session(Some(&token))
            .post("{ me { role } }", json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        env.count("audit_events").await,
        before + 3,
        "the application role appends"
    );

    // Neither the application role nor the owner that migrated may rewrite history.
    let app = Database::connect(&app_url).await.expect("connect as app");
    for db in [&app, &owner] {
        for sql in [
            "UPDATE audit_events SET records = 0",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ] {
            let error = refused(db, sql).await;
            assert!(error.contains("permission denied"), "{sql}: {error}");
        }
    }
    // With the privilege granted back, the append-only trigger still refuses, TRUNCATE too.
    owner
        .execute_unprepared("GRANT UPDATE, DELETE, TRUNCATE ON audit_events TO CURRENT_USER")
        .await
        .expect("grant back");
    for sql in [
        "UPDATE audit_events SET records = 0",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let error = refused(&owner, sql).await;
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    let intact = env.run(&["audit", "verify"]).await;
    assert!(intact.ok, "{}{}", intact.stdout, intact.stderr);

    // Someone who also disables the trigger can delete a row, but not unnoticed.
    owner
        .execute_unprepared("ALTER TABLE audit_events DISABLE TRIGGER USER")
        .await
        .expect("disable triggers");
    owner
        .execute_unprepared("DELETE FROM audit_events WHERE id = 2")
        .await
        .expect("tamper");
    let broken = env.run(&["audit", "verify"]).await;
    assert!(!broken.ok, "{}", broken.stdout);
    assert!(
        broken
            .stdout
            .contains("BROKEN at event 3: expected event 2 next"),
        "{}",
        broken.stdout
    );

    drop(server);
    app.close().await.ok();
    // Roles outlive databases; this one goes once nothing refers to it.
    owner
        .execute_unprepared(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}; \
             REVOKE ALL ON SCHEMA public FROM {role}; DROP ROLE {role}"
        ))
        .await
        .expect("drop the application role");
}

#[tokio::test]
async fn processes_appending_in_turn_and_at_once_keep_one_chain() {
    let env = TestEnv::new(Backend::Postgres).await;
    let token = env.user("alice", "HSI_ANALYST", None).await;
    let (a, b) = (env.serve().await, env.serve().await);
    let before = env.count("audit_events").await;
    // In turn: each process's idea of the chain's head is stale every time it appends.
    for i in 0..10 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, body) = server
            .session(Some(&token))
            .post("{ me { role } }", json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // At once: both writers race for the head.
    let requests = (0..60).map(|i| {
        let session = if i % 2 == 0 { &a } else { &b }.session(Some(&token));
        async move { session.post("{ me { role } }", json!({})).await.0 }
    });
    let statuses = join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(env.count("audit_events").await, before + 70);
    let verify = env.run(&["audit", "verify"]).await;
    assert!(verify.ok, "{}{}", verify.stdout, verify.stderr);
}

/// The owner, with the triggers off and the privileges granted back: a database superuser.
async fn superuser(env: &TestEnv) -> DatabaseConnection {
    let owner = env.db().await;
    owner
        .execute_unprepared(
            "GRANT UPDATE, DELETE ON audit_events TO CURRENT_USER; \
             ALTER TABLE audit_events DISABLE TRIGGER USER",
        )
        .await
        .expect("become able to tamper");
    owner
}

async fn some_events(env: &TestEnv, requests: usize) {
    let token = env.user(&format!("u{requests}"), "HSI_ANALYST", None).await;
    let server = env.serve().await;
    for _ in 0..requests {
        let (status, _) = server
            .session(Some(&token))
            .post("{ me { role } }", json!({}))
            .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn deleting_the_newest_events_and_rewinding_the_head_is_caught_by_a_checkpoint() {
    let env = TestEnv::new(Backend::Postgres).await;
    some_events(&env, 3).await;
    let file = env.dir.path().join("checkpoints.jsonl");
    let file = file.to_str().expect("path");
    let taken = env.run(&["audit", "checkpoint", "--out", file]).await;
    assert!(taken.ok, "{}{}", taken.stdout, taken.stderr);
    some_events(&env, 2).await;
    let taken = env.run(&["audit", "checkpoint", "--out", file]).await;
    assert!(taken.ok, "{}{}", taken.stdout, taken.stderr);
    let checked = env.run(&["audit", "verify", "--checkpoint", file]).await;
    assert!(checked.ok, "{}{}", checked.stdout, checked.stderr);
    assert!(
        checked.stdout.contains("2 checkpoints match"),
        "{}",
        checked.stdout
    );

    // Remove the newest events and move the head back to what is left: a valid chain.
    let last = env.scalar("SELECT last_id FROM audit_head").await;
    let keep = last - 4;
    let owner = superuser(&env).await;
    owner
        .execute_unprepared(&format!(
            "DELETE FROM audit_events WHERE id > {keep}; \
             UPDATE audit_head SET last_id = {keep}, \
             last_hash = (SELECT hash FROM audit_events WHERE id = {keep})"
        ))
        .await
        .expect("tamper");
    let chain_only = env.run(&["audit", "verify"]).await;
    assert!(
        chain_only.ok,
        "a truncated chain is still a chain: {}",
        chain_only.stdout
    );
    let checked = env.run(&["audit", "verify", "--checkpoint", file]).await;
    assert!(!checked.ok, "{}", checked.stdout);
    assert!(
        checked
            .stdout
            .contains(&format!("event {last} of checkpoint 2"))
            && checked.stdout.contains("is gone"),
        "{}",
        checked.stdout
    );
}

#[tokio::test]
async fn an_edited_event_with_the_chain_recomputed_without_the_key_is_caught() {
    use entities::audit_event;
    use sea_orm::{EntityTrait, QueryOrder};
    let env = TestEnv::new(Backend::Postgres).await;
    some_events(&env, 3).await;
    let intact = env.run(&["audit", "verify"]).await;
    assert!(intact.ok, "{}{}", intact.stdout, intact.stderr);

    // Edit event 2 and recompute every hash after it, and the head, as the old unkeyed chain
    // was computed (plain SHA-256 over the same canonical content).
    let owner = superuser(&env).await;
    let mut rows = audit_event::Entity::find()
        .order_by_asc(audit_event::Column::Id)
        .all(&owner)
        .await
        .expect("rows");
    assert!(rows.len() >= 4, "{} events", rows.len());
    rows[1].records = 999;
    let mut prev = rows[0].hash.clone();
    for row in rows.iter_mut().skip(1) {
        row.prev_hash = prev;
        row.hash = dartts::audit::event_hash(row, None);
        prev = row.hash.clone();
        owner
            .execute_unprepared(&format!(
                "UPDATE audit_events SET records = {}, prev_hash = '{}', hash = '{}' WHERE id = {}",
                row.records, row.prev_hash, row.hash, row.id
            ))
            .await
            .expect("rewrite");
    }
    owner
        .execute_unprepared(&format!("UPDATE audit_head SET last_hash = '{prev}'"))
        .await
        .expect("rewrite the head");
    let broken = env.run(&["audit", "verify"]).await;
    assert!(!broken.ok, "{}", broken.stdout);
    assert!(
        broken
            .stdout
            .contains("BROKEN at event 2: content does not match its hash"),
        "{}",
        broken.stdout
    );
}

/// The writer keeps its PostgreSQL connection from one append to the next. When that connection
/// dies, the request whose event was on it fails closed (nothing answered without its record),
/// and the next one is audited on a new connection: the writer must not hold on to a dead one.
#[tokio::test]
async fn when_the_writers_connection_dies_that_request_fails_closed_and_the_next_is_audited() {
    let env = TestEnv::new(Backend::Postgres).await;
    let token = env.user("alice", "HSI_ANALYST", None).await;
    let server = env.serve().await;
    let session = server.session(Some(&token));
    let me = || session.post("{ me { role } }", json!({}));
    let (status, body) = me().await;
    assert_eq!(status, 200, "{body}");

    let killed = env
        .scalar(
            // The timeout makes the call wait until the backend is gone, so the next request
            // cannot reach it before it exits.
            "SELECT COUNT(*) FILTER (WHERE gone) FROM (SELECT pg_terminate_backend(pid, 10000) \
             AS gone FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND query LIKE 'WITH moved AS%') AS t",
        )
        .await;
    assert_eq!(
        killed, 1,
        "the writer's connection, found by its last statement"
    );
    let before = env.count("audit_events").await;
    let (status, body) = me().await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    assert!(body["data"].is_null(), "nothing answered unaudited: {body}");
    assert_eq!(env.count("audit_events").await, before);

    for _ in 0..5 {
        let (status, body) = me().await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(env.count("audit_events").await, before + 5);
    let verify = env.run(&["audit", "verify"]).await;
    assert!(verify.ok, "{}{}", verify.stdout, verify.stderr);
}
