//! Connecting to the configured database and bringing its schema up to date.

use std::time::Duration;

use migration::{AUDIT_SCHEMA, Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};

use crate::config::{DatabaseKind, Settings};
use crate::time_limit;

/// SQLite runs one writer at a time and its readers are CPU-bound on the node's own cores:
/// a few connections serve as many requests as many would, with less memory.
const SQLITE_CONNECTIONS: u32 = 8;
/// How long a request waits for an SQLite connection, or a writer for the write lock, before
/// it fails: long enough that a burst of 64 clients queues instead of failing.
const SQLITE_QUEUE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: DbErr },
    #[error("migration failed: {0}")]
    Migrate(DbErr),
    #[error("cannot wait for another process's migrations to finish: {0}")]
    MigrationTurn(Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "the audit log of {0} is missing (its file, the database file's name with `-audit` \
         appended, holds no log): restore it from the backup the database came from"
    )]
    AuditFileMissing(String),
}

/// The pool settings of every connection to the configured database.
fn options(settings: &Settings) -> ConnectOptions {
    let mut options = ConnectOptions::new(settings.database_url.expose().to_owned());
    // Fail start-up quickly and clearly when the database is unreachable, instead of the
    // pool's default of retrying for half a minute.
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out by default: a round trip in front of each
        // query and each audit batch. A connection used within the last half minute is alive
        // often enough; one that broke anyway fails its query, which the caller reports.
        .test_before_acquire_if_idle_for(Duration::from_secs(30));
    if settings.database_kind == DatabaseKind::Sqlite {
        // sqlx leaves SQLite in its rollback-journal mode, where a writer (the audit writer,
        // a `dartts load` in another process) blocks every reader: ask for WAL, where readers
        // never wait for the one writer. `synchronous` stays FULL: an audit record must be on
        // disk before the response it records is sent. A writer that finds the lock taken
        // waits for it (busy timeout) instead of failing, and a request that finds every
        // connection busy queues for one: under a burst of clients requests wait their turn
        // rather than end as INTERNAL "pool timed out". A missing database file is created,
        // whether the URL is the built-in default or given (`?mode=rwc` or not), as for the
        // embedded default the README documents.
        options
            .max_connections(SQLITE_CONNECTIONS)
            .acquire_timeout(SQLITE_QUEUE)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_QUEUE)
                    .create_if_missing(true)
            })
            .map_sqlx_sqlite_pool_opts(|o| {
                o.after_connect(|connection, _| Box::pin(attach_audit(connection)))
            });
    }
    options
}

/// Where an SQLite database's audit log lives: a file of its own beside it, so that it has a
/// write lock of its own. SQLite lets one writer at a time into a file, and a `dartts load`
/// holds the data file's lock for its whole transaction (a minute for 400,000 rows): with the
/// audit tables in the same file every request, each of which appends its audit event before
/// it is answered, waited for the load and failed after the busy timeout. Readers never waited
/// (WAL); now the audit appends do not either. The name keeps it beside SQLite's own `-wal` and
/// `-shm` files, so a copy of `dartts.db*` takes all of them.
fn audit_file(database_file: &str) -> String {
    format!("{database_file}-audit")
}

/// Attaches the audit log's file to a new SQLite connection (`audit_file`), created when
/// missing, in WAL mode with every commit synced (an audit record must be on disk before the
/// response it records leaves). Tables are looked up in `main` first, then in attached files,
/// so statements name `audit_events` unqualified on both backends once migration 000025 has
/// moved the tables there. A database without a file (in memory) keeps its audit tables in
/// `main`: nothing to attach.
pub async fn attach_audit(
    connection: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Executor as _;
    let (file,): (String,) =
        sea_orm::sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&mut *connection)
            .await?;
    if file.is_empty() {
        return Ok(());
    }
    sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE ? AS {AUDIT_SCHEMA}"
    )))
    .bind(audit_file(&file))
    .execute(&mut *connection)
    .await?;
    connection
        .execute(sea_orm::sqlx::AssertSqlSafe(format!(
            "PRAGMA {AUDIT_SCHEMA}.journal_mode = WAL; PRAGMA {AUDIT_SCHEMA}.synchronous = FULL"
        )))
        .await?;
    Ok(())
}

async fn open(settings: &Settings, options: ConnectOptions) -> Result<DatabaseConnection, DbError> {
    let started = std::time::Instant::now();
    loop {
        match Database::connect(options.clone()).await {
            // Commands started together on a new SQLite file: while one turns it to WAL or
            // migrates, another's first statements may need a lock that SQLite refuses at once,
            // without the busy timeout, where waiting could deadlock ("database is locked",
            // seen once in CI). A moment later the lock is free.
            Err(e)
                if settings.database_kind == DatabaseKind::Sqlite
                    && crate::error::sqlx_source(&e).is_some_and(crate::error::sqlite_busy)
                    && started.elapsed() < SQLITE_QUEUE =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            opened => {
                return opened.map_err(|source| DbError::Connect {
                    url: settings.database_url.redacted(),
                    source,
                });
            }
        }
    }
}

/// The audit writer's own connection on PostgreSQL, outside the requests' pool: when every
/// pooled connection waits (for a load that holds the trade tables, say), the requests that
/// find none are still answered `UNAVAILABLE` and audited instead of their audit record
/// waiting for the same pool and the response turning into an INTERNAL error. One connection:
/// the writer appends one batch at a time. SQLite shares the pool (one writer either way).
pub async fn connect_audit(
    settings: &Settings,
    db: &DatabaseConnection,
) -> Result<DatabaseConnection, DbError> {
    if settings.database_kind == DatabaseKind::Sqlite {
        return Ok(db.clone());
    }
    let mut options = options(settings);
    options.max_connections(1).min_connections(1);
    open(settings, options).await
}

/// The pool `dartts serve` answers requests from, in place of `connect`'s (`migrated`, closed
/// here): the same settings, with the request time limit told to the database
/// (`time_limit`). PostgreSQL gets it as every connection's `statement_timeout`, in the
/// startup packet (no round trip); SQLite connections are armed with the deadline of the
/// request that takes them, each time the pool hands one out or opens one. `connect`'s pool
/// has no limit: a migration over a large table may take longer than any request should, and
/// so may the commands (`dartts load`, `purge`) that use it.
pub async fn serving(
    settings: &Settings,
    migrated: DatabaseConnection,
) -> Result<DatabaseConnection, DbError> {
    migrated.close().await.map_err(|source| DbError::Connect {
        url: settings.database_url.redacted(),
        source,
    })?;
    let mut options = options(settings);
    match settings.database_kind {
        DatabaseKind::Postgres => {
            let limit = settings.operations.request_time_limit.as_millis();
            options.map_sqlx_postgres_opts(move |o| {
                o.options([("statement_timeout", format!("{limit}ms"))])
            });
        }
        DatabaseKind::Sqlite => {
            options
                .map_sqlx_sqlite_before_acquire(|connection, _| {
                    Box::pin(async move { time_limit::arm(connection).await.map(|()| true) })
                })
                // In place of `options`' hook, which this replaces: attach, then arm.
                .map_sqlx_sqlite_pool_opts(|o| {
                    o.after_connect(|connection, _| {
                        Box::pin(async move {
                            attach_audit(connection).await?;
                            time_limit::arm(connection).await
                        })
                    })
                });
        }
    }
    open(settings, options).await
}

/// Connects and runs pending migrations (they are idempotent and ordered).
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbError> {
    if settings.database_kind == DatabaseKind::Sqlite {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| DbError::DataDir {
            path: settings.data_dir.display().to_string(),
            source,
        })?;
    }
    let db = open(settings, options(settings)).await?;
    // Production runs the API as a role that may not create tables (docs/operations.md), with
    // migrations applied by the schema owner beforehand: only migrate when one is pending, and
    // read the migration table without trying to create it. A fresh database (no table yet)
    // reads as "pending".
    let pending = Migrator::get_pending_migrations_read_only(&db)
        .await
        .map_or(true, |p| !p.is_empty());
    if pending {
        migrate(&db).await?;
    }
    if settings.database_kind == DatabaseKind::Sqlite {
        audit_tables_present(settings, &db).await?;
    }
    Ok(db)
}

/// The PostgreSQL advisory lock `migrate` takes: "DRTM".
const MIGRATION_LOCK: i64 = 0x4452_544d;

/// Runs the pending migrations, one process at a time. Two `dartts` commands started together
/// on a new database both found the same migrations pending, and the second failed on the
/// first's work (`duplicate key value violates unique constraint "seaql_migrations_pkey"`).
/// `Migrator::up` reads what is applied once it runs, so the second now finds nothing to do.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbError> {
    use sea_orm::sqlx::{self, Connection as _};
    let turn = |e: Box<dyn std::error::Error + Send + Sync>| DbError::MigrationTurn(e);
    match db.get_database_backend() {
        DbBackend::Postgres => {
            // A connection of its own, whatever the pool's size: `up` takes the pool's.
            let options = db.get_postgres_connection_pool().connect_options();
            let mut held = sqlx::PgConnection::connect_with(&options)
                .await
                .map_err(|e| turn(e.into()))?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut held)
                .await
                .map_err(|e| turn(e.into()))?;
            let migrated = Migrator::up(db, None).await.map_err(DbError::Migrate);
            // Closing the session releases its lock. A migration that failed is the error to
            // report, even when the close fails too.
            let closed = held.close().await.map_err(|e| turn(e.into()));
            migrated.and(closed)
        }
        _ => {
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    "SELECT file FROM pragma_database_list WHERE name = 'main'",
                ))
                .await
                .map_err(DbError::Migrate)?;
            let file: String = match row {
                Some(row) => row.try_get_by_index(0).map_err(DbError::Migrate)?,
                None => String::new(),
            };
            if file.is_empty() {
                // In memory: no other process sees this database.
                return Migrator::up(db, None).await.map_err(DbError::Migrate);
            }
            // `flock` on the database file, which SQLite's own (`fcntl`) locks do not touch.
            let held = tokio::task::spawn_blocking(move || {
                let held = std::fs::File::open(file)?;
                held.lock()?;
                Ok::<_, std::io::Error>(held)
            })
            .await
            .map_err(|e| turn(e.into()))?
            .map_err(|e| turn(e.into()))?;
            let migrated = Migrator::up(db, None).await.map_err(DbError::Migrate);
            drop(held);
            migrated
        }
    }
}

/// Refuses an SQLite database whose audit file has gone (`ATTACH` made an empty one in its
/// place): every request would fail its audit append, and the log would restart from nothing
/// where it should have been restored with the database.
async fn audit_tables_present(settings: &Settings, db: &DatabaseConnection) -> Result<(), DbError> {
    let count = |sql: String| async move {
        let row = db
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
            .await?;
        row.map_or(Ok(0), |row| row.try_get_by_index::<i64>(0))
    };
    let attached =
        format!("SELECT count(*) FROM pragma_database_list WHERE name = '{AUDIT_SCHEMA}'");
    let head =
        format!("SELECT count(*) FROM {AUDIT_SCHEMA}.sqlite_master WHERE name = 'audit_head'");
    let failed = |source| DbError::Connect {
        url: settings.database_url.redacted(),
        source,
    };
    if count(attached).await.map_err(failed)? == 1 && count(head).await.map_err(failed)? == 0 {
        return Err(DbError::AuditFileMissing(settings.database_url.redacted()));
    }
    Ok(())
}
