//! How long one request may run (`DARTTS_REQUEST_TIME_LIMIT`), and stopping its database work
//! when that time is up.
//!
//! Dropping a request's future at its deadline answers the client, but it does not stop the
//! statement the future was waiting for: sqlx hands the connection back only once the database
//! has finished it, and an SQLite statement runs on a worker thread of its own. So each
//! backend is also told the limit:
//! - **PostgreSQL**: the serving pool's connections start with `statement_timeout` set to the
//!   limit (`db::serving`), so a statement stops at most one limit after it began —
//!   also the one a dropped request leaves behind. No round trip per request.
//! - **SQLite**: a progress handler, installed each time the pool hands a connection out
//!   (`arm`), stops any statement run past the deadline of the request that took it — the
//!   deadline travels with the request's task (`run`) and the tasks it spawns (`spawn`).
//!   Work without a deadline (the audit writer, a load, a background refresh) runs unlimited.
//!
//! Either way the statement fails with its backend's "interrupted" code, which `is_exceeded`
//! recognises and `error` maps to `TIMEOUT`. Mutations are not given a deadline: one is never
//! abandoned half-way between its audit record and its commit.

use std::future::Future;
use std::time::Instant;

use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::{DbErr, RuntimeErr};

tokio::task_local! {
    /// When the request this task works for must be finished.
    static DEADLINE: Instant;
}

/// Virtual-machine steps between two looks at the clock: a fraction of a millisecond of work,
/// so a statement stops within about a millisecond of its deadline at no measurable cost.
const SQLITE_STEPS: i32 = 10_000;

/// Runs `work` with a deadline `limit` from now; `None` when it did not finish in time (its
/// future is then dropped, and its statements stop as described above).
pub async fn run<F: Future>(limit: std::time::Duration, work: F) -> Option<F::Output> {
    let deadline = Instant::now() + limit;
    tokio::time::timeout_at(deadline.into(), DEADLINE.scope(deadline, work))
        .await
        .ok()
}

/// `tokio::spawn` that keeps the spawning task's deadline: DataLoader batches run in tasks of
/// their own, on behalf of the request that asked for them.
pub fn spawn<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match DEADLINE.try_with(|deadline| *deadline) {
        Ok(deadline) => tokio::spawn(DEADLINE.scope(deadline, work)),
        Err(_) => tokio::spawn(work),
    }
}

/// Gives an SQLite connection being handed out the deadline of the task taking it, or none.
/// Always set or cleared: the connection may come back from a request that had another one.
pub async fn arm(connection: &mut SqliteConnection) -> Result<(), sea_orm::sqlx::Error> {
    let deadline = DEADLINE.try_with(|deadline| *deadline).ok();
    let mut handle = connection.lock_handle().await?;
    match deadline {
        Some(deadline) => {
            handle.set_progress_handler(SQLITE_STEPS, move || Instant::now() < deadline);
        }
        None => handle.remove_progress_handler(),
    }
    Ok(())
}

/// PostgreSQL's `query_canceled` (what `statement_timeout` raises).
const POSTGRES_CANCELED: &str = "57014";
/// SQLite's `SQLITE_INTERRUPT` (what a progress handler returning false raises).
const SQLITE_INTERRUPTED: &str = "9";

/// Whether a database error says a statement was stopped at its time limit.
pub fn is_exceeded(err: &DbErr) -> bool {
    let (DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == POSTGRES_CANCELED || code == SQLITE_INTERRUPTED)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ConnectionTrait, Statement};

    use super::*;
    use crate::config::Settings;

    /// A statement that never ends on its own.
    const ENDLESS: &str =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";

    async fn serving_sqlite() -> (tempfile::TempDir, sea_orm::DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::embedded_in(dir.path());
        let migrated = crate::db::connect(&settings).await.unwrap();
        let db = crate::db::serving(&settings, migrated).await.unwrap();
        (dir, db)
    }

    /// The deadline stops the statement itself, on the pool the server serves from, and work
    /// without a deadline is not touched afterwards on any connection.
    #[tokio::test]
    async fn sqlite_statements_stop_at_the_request_deadline() {
        let (_dir, db) = serving_sqlite().await;
        let endless = || Statement::from_string(db.get_database_backend(), ENDLESS);
        let stopped = DEADLINE.scope(
            Instant::now() + Duration::from_millis(200),
            db.query_one_raw(endless()),
        );
        let err = tokio::time::timeout(Duration::from_secs(60), stopped)
            .await
            .expect("the statement ran past its deadline")
            .unwrap_err();
        assert!(is_exceeded(&err), "{err:?}");
        // Without a deadline (the audit writer's kind of work) long statements run to their
        // end on every connection of the pool at once — also on the one just stopped, whose
        // old deadline has passed: handing it out cleared it.
        let long = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \
                    300000) SELECT count(*) FROM n";
        let connections = db
            .get_sqlite_connection_pool()
            .options()
            .get_max_connections();
        let rows =
            futures_util::future::join_all((0..connections).map(|_| {
                db.query_one_raw(Statement::from_string(db.get_database_backend(), long))
            }))
            .await;
        for row in rows {
            let row = row.unwrap().unwrap();
            assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 300_000);
        }
    }

    /// `run` ends at the deadline: the timer drops the work, or the statement stops first
    /// (the handler and the timer look at the same instant).
    #[tokio::test]
    async fn run_ends_at_the_deadline() {
        let (_dir, db) = serving_sqlite().await;
        let sql = Statement::from_string(db.get_database_backend(), ENDLESS);
        let ran = run(Duration::from_millis(200), db.query_one_raw(sql));
        let ran = tokio::time::timeout(Duration::from_secs(60), ran).await;
        match ran.expect("run went past its deadline") {
            None => {}
            Some(Err(e)) => assert!(is_exceeded(&e), "{e:?}"),
            Some(Ok(row)) => panic!("an endless statement ended: {row:?}"),
        }
    }

    /// A statement whose request was dropped before its deadline (the client went away, the
    /// timer fired first) stops at the deadline anyway: its connection comes back to the pool,
    /// which sqlx does only once the statement has ended.
    #[tokio::test]
    async fn an_abandoned_statement_stops_at_its_deadline() {
        let (_dir, db) = serving_sqlite().await;
        let sql = Statement::from_string(db.get_database_backend(), ENDLESS);
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            DEADLINE.scope(
                Instant::now() + Duration::from_millis(400),
                db.query_one_raw(sql),
            ),
        )
        .await;
        assert!(abandoned.is_err());
        let pool = db.get_sqlite_connection_pool();
        let back = async {
            while pool.num_idle() < pool.size() as usize {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(60), back)
                .await
                .is_ok(),
            "the abandoned statement still runs"
        );
    }

    /// Work a request spawns (a DataLoader batch) keeps the request's deadline.
    #[tokio::test]
    async fn spawned_work_keeps_the_deadline() {
        let (_dir, db) = serving_sqlite().await;
        let sql = Statement::from_string(db.get_database_backend(), ENDLESS);
        let db2 = db.clone();
        let task = DEADLINE.sync_scope(Instant::now() + Duration::from_millis(200), || {
            spawn(async move { db2.query_one_raw(sql).await })
        });
        let joined = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the spawned statement ran past its deadline");
        let err = joined.unwrap().unwrap_err();
        assert!(is_exceeded(&err), "{err:?}");
    }

    #[test]
    fn other_errors_are_not_time_limits() {
        assert!(!is_exceeded(&DbErr::Custom("57014".into())));
        assert!(!is_exceeded(&DbErr::RecordNotFound("9".into())));
    }
}
