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
