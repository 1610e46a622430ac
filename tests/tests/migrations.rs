//! Migrations run up, down and up again on both backends.

use dartts_tests::{BACKENDS, TestEnv};
use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let db = env.db().await;
        Migrator::up(&db, None).await.expect("up");
        db.execute_unprepared("SELECT COUNT(*) FROM trade_records")
            .await
            .expect("table exists");
        Migrator::down(&db, None).await.expect("down");
        assert!(
            db.execute_unprepared("SELECT COUNT(*) FROM trade_records")
                .await
                .is_err(),
            "{backend:?}: table survived down"
        );
        Migrator::up(&db, None).await.expect("up again");
        assert!(
            Migrator::get_pending_migrations(&db)
                .await
                .expect("status")
                .is_empty()
        );
        // A second `up` is a no-op, which is what `dartts serve` relies on at every start.
        Migrator::up(&db, None).await.expect("idempotent up");
    }
}

/// Commands started together on a new database migrate it once, in turn: each found the same
/// migrations pending, and all but the first failed on its work (a duplicate key in
/// `seaql_migrations`).
#[tokio::test]
async fn commands_started_together_on_a_new_database_all_start() {
    for backend in BACKENDS {
        let env = TestEnv::new(backend).await;
        let runs = futures_util::future::join_all((0..4).map(|_| env.run(&["migrate"]))).await;
        for run in runs {
            assert!(run.ok, "{backend:?}: {}", run.stderr);
        }
    }
}

/// Every text column of the schema compares in byte order on PostgreSQL (migration 000019):
/// a later table's text column under the database's collation could not be joined with the
/// others (PostgreSQL refuses to compare two collations), and its indexes would be built the
/// slow way. A migration that adds one must say `COLLATE "C"`.
#[tokio::test]
async fn every_text_column_sorts_in_byte_order() {
    let env = TestEnv::new(dartts_tests::Backend::Postgres).await;
    let db = env.db().await;
    Migrator::up(&db, None).await.expect("up");
    let text_columns = env
        .scalar(
            "SELECT COUNT(*) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> 'seaql_migrations' \
               AND data_type IN ('text', 'character varying', 'character')",
        )
        .await;
    assert!(text_columns > 50, "only {text_columns} text columns found");
    let other = env
        .text(
            "SELECT COALESCE(string_agg(table_name || '.' || column_name, ', '), '') \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> 'seaql_migrations' \
               AND data_type IN ('text', 'character varying', 'character') \
               AND collation_name IS DISTINCT FROM 'C'",
        )
        .await;
    assert_eq!(other, "", "text columns not in byte order");
}
