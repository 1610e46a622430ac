//! The embedded default's audit log in a file of its own (`dartts::db::audit_file`; why, and
//! the requests a load no longer holds: `busy.rs`): how an older database is moved there, and
//! what start-up says when that file has gone.

use dartts_tests::{Backend, TestEnv};
use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;

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
    // Down to just before 000025, whatever migrations came after it.
    let steps = Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m20261207_000025_audit_file_sqlite")
        .expect("migration 000025")
        + 1;
    Migrator::down(&db, Some(steps as u32))
        .await
        .expect("the layout before 000025");
    db.close().await.expect("close");
    assert_eq!(env.scalar(&in_file("main")).await, 2);
    assert_eq!(env.scalar(&in_file("audit")).await, 0);

    // An audit file that holds fewer events than the database (put back from elsewhere): the
    // move stops and drops neither.
    let db = env.db().await;
    db.execute_unprepared(
        "CREATE TABLE audit.audit_events AS SELECT * FROM main.audit_events WHERE id = 1; \
         CREATE TABLE audit.audit_head AS SELECT * FROM main.audit_head",
    )
    .await
    .expect("a stale audit file");
    let refused = env.run(&["audit", "verify"]).await;
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("neither was dropped"),
        "{}",
        refused.stderr
    );
    assert_eq!(env.scalar(&in_file("main")).await, 2);
    assert_eq!(env.count("main.audit_events").await, events);
    db.execute_unprepared("DROP TABLE audit.audit_events; DROP TABLE audit.audit_head")
        .await
        .expect("remove the stale copy");
    db.close().await.expect("close");

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
