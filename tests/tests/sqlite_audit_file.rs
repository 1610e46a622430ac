//! The embedded default keeps its audit log in a file of its own (`dartts::db::audit_file`):
//! SQLite admits one writer per file, and a `dartts load` holds the data file's write lock for
//! its whole transaction, so with the audit tables beside the data every request (each appends
//! its audit event before it is answered) waited for the load and failed `INTERNAL` after the
//! busy timeout.

use dartts_tests::{Backend, TestEnv};
use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use serde_json::json;

/// Another transaction holds the data file's write lock, as a load does from its first row to
/// its commit: reads are answered and audited meanwhile, and the lock is still held when they
/// are (on one file they would have waited for it, then failed after 60 s).
#[tokio::test]
async fn requests_are_answered_and_audited_while_a_load_holds_the_data_file() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.load_trade_fixture().await;
    let server = env.serve_as_analyst().await;
    let query = "{ tradeRecords(first: 5) { edges { node { declarationId } } } }";
    assert!(server.data(query, json!({})).await["tradeRecords"]["edges"][0].is_object());
    let audited_before = env.scalar("SELECT max(id) FROM audit_events").await;

    let holder = env
        .holding("UPDATE batches SET file_name = file_name")
        .await;
    const READS: usize = 12;
    let session = server.session(server.token.as_deref());
    let responses = futures_util::future::join_all((0..READS).map(|i| {
        let query = if i % 2 == 0 { query } else { "{ me { role } }" };
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

/// A database made before the audit file existed (its audit tables in the data file, as
/// migration 000025's `down` leaves them) is moved on the next start, the chain intact; and a
/// database whose audit file has gone is refused at start instead of logging from nothing.
#[tokio::test]
async fn an_older_database_is_moved_and_a_lost_audit_file_is_refused() {
    let env = TestEnv::new(Backend::Sqlite).await;
    env.load_trade_fixture().await;
    let verified = env.run(&["audit", "verify"]).await;
    assert!(verified.ok, "{}", verified.stderr);
    let events = env.count("audit_events").await;
    assert!(events >= 2, "the load's events");
    let in_file = |schema: &'static str| {
        format!(
            "SELECT count(*) FROM {schema}.sqlite_master WHERE name IN ('audit_events', 'audit_head')"
        )
    };

    let db = env.db().await;
    Migrator::down(&db, Some(1))
        .await
        .expect("the layout before 000025");
    db.close().await.expect("close");
    assert_eq!(env.scalar(&in_file("main")).await, 2);
    assert_eq!(env.scalar(&in_file("audit")).await, 0);

    // The next command migrates first.
    let verified = env.run(&["audit", "verify"]).await;
    assert!(verified.ok, "{}", verified.stderr);
    assert!(
        verified
            .stdout
            .contains(&format!("intact: {events} events")),
        "{}",
        verified.stdout
    );
    assert_eq!(env.scalar(&in_file("main")).await, 0);
    assert_eq!(env.scalar(&in_file("audit")).await, 2);
    // The append-only triggers moved with the table.
    let db = env.db().await;
    let refused = db.execute_unprepared("DELETE FROM audit_events").await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("append-only")),
        "the trigger refuses a delete"
    );
    db.close().await.expect("close");

    for suffix in ["-audit", "-audit-wal", "-audit-shm"] {
        let path = env.dir.path().join(format!("t.db{suffix}"));
        if path.exists() {
            std::fs::remove_file(path).expect("remove");
        }
    }
    let refused = env.run(&["audit", "verify"]).await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("audit log") && refused.stderr.contains("missing"),
        "{}",
        refused.stderr
    );
}
