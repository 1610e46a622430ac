//! A load's indexes: dropped before a large load's rows and built again after them, the
//! planner statistics and visibility that follow, and which indexes the load's own statements
//! may use.

use sea_orm::DatabaseConnection;
use sea_orm::sqlx;

use super::LoadTx;

/// Which tables a load may take for itself to rebuild their indexes after its rows
/// (`LoadTx::defer_indexes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexes {
    /// Only an empty table.
    WhenEmpty,
    /// Also a table with rows: its readers wait until the load commits.
    Rebuild,
}

impl LoadTx {
    /// Before a bulk load into a PostgreSQL table: drops its secondary indexes inside this
    /// transaction and returns their definitions for `restore_indexes`. Building an index once
    /// over the loaded rows (a sort) costs a fraction of maintaining it row by row, which is
    /// most of a large load's time. The drop holds the table's lock until commit, so its
    /// readers wait for the load instead of seeing it half done.
    ///
    /// `Indexes::WhenEmpty` does this only for an empty table, whose readers would see nothing
    /// anyway. A table with rows keeps its indexes then: a small load into a large table costs
    /// far less row by row than a rebuild, and its readers are not kept waiting.
    /// `Indexes::Rebuild` (`dartts load --exclusive`) takes a table with rows too: a 1M-row
    /// load into 1M rows took 66–89 s row by row (the `COPY` alone 42–55 s) and 29–36 s this way,
    /// most of it the rebuild over all rows; its readers wait for all of that. SQLite, and a
    /// role that may not drop the indexes, load row by row.
    ///
    /// An empty table is also emptied anew (`TRUNCATE`), which lets the next `COPY` into it
    /// in this subtransaction write its rows frozen and marked all-visible (`COPY … FREEZE`):
    /// the reads that follow the load (rollup fills, the profile refresh, every index-only
    /// scan) then need no visit to the heap and no later `VACUUM` to avoid one. A 1M-row load's
    /// profile refresh read 300 ms per round of HS codes without it and ~30 ms with it. The
    /// price: a transaction whose snapshot predates the commit sees the rows too, once it may
    /// read the table (the lock above keeps it out until then).
    pub async fn defer_indexes(
        &mut self,
        table: &'static str,
        when: Indexes,
    ) -> Result<Vec<String>, sqlx::Error> {
        let LoadTx::Postgres { tx, fresh } = self else {
            return Ok(Vec::new());
        };
        let is_empty = format!("SELECT NOT EXISTS (SELECT 1 FROM {table})");
        // A first look without a lock: a table with rows, the usual case, is left alone
        // without making its readers wait.
        if when == Indexes::WhenEmpty {
            let empty: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(is_empty.clone()))
                .fetch_one(&mut **tx)
                .await?;
            if !empty {
                return Ok(Vec::new());
            }
        }
        // A new subtransaction: whatever table was fresh in the previous one no longer is.
        *fresh = None;
        sqlx::query("SAVEPOINT defer_indexes")
            .execute(&mut **tx)
            .await?;
        // Locked, then looked at again: a concurrent first load may have committed its rows
        // since the first look, and the `TRUNCATE` below would remove them. Giving up rolls
        // the savepoint back, which also releases the lock.
        let locked = sqlx::query(sqlx::AssertSqlSafe(format!(
            "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        )))
        .execute(&mut **tx)
        .await
        .is_ok();
        let empty = locked
            && sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(is_empty))
                .fetch_one(&mut **tx)
                .await?;
        let taken = empty || (locked && when == Indexes::Rebuild);
        let indexes: Vec<(String, String)> = if taken {
            sqlx::query_as(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i \
                 JOIN pg_class c ON c.relname = i.indexname \
                 JOIN pg_index x ON x.indexrelid = c.oid \
                 WHERE i.schemaname = current_schema() AND i.tablename = $1 \
                   AND NOT x.indisprimary AND NOT x.indisunique",
            )
            .bind(table)
            .fetch_all(&mut **tx)
            .await?
        } else {
            Vec::new()
        };
        let statements = indexes
            .iter()
            .map(|(name, _)| format!("DROP INDEX \"{name}\""))
            .chain(empty.then(|| format!("TRUNCATE {table}")));
        for statement in statements {
            let done = taken
                && sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut **tx)
                    .await
                    .is_ok();
            if !done {
                sqlx::query("ROLLBACK TO SAVEPOINT defer_indexes")
                    .execute(&mut **tx)
                    .await?;
                return Ok(Vec::new());
            }
        }
        if !empty && indexes.is_empty() {
            // Nothing dropped and nothing to empty: no reason to keep the table from its
            // readers.
            sqlx::query("ROLLBACK TO SAVEPOINT defer_indexes")
                .execute(&mut **tx)
                .await?;
            return Ok(Vec::new());
        }
        if empty {
            *fresh = Some(table);
        }
        Ok(indexes.into_iter().map(|(_, def)| def).collect())
    }

    /// Gathers the planner's statistics of `table` once a large load's rows are in (PostgreSQL
    /// only). Until autovacuum gets to it (up to a minute later) the planner would take a new
    /// table for an empty one, or a new batch for a single row: the rollup fills that follow
    /// then sorted 1M rows on their text keys instead of hashing them.
    pub async fn analyze(&mut self, table: &'static str) -> Result<(), sqlx::Error> {
        if let LoadTx::Postgres { tx, .. } = self {
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Steers the planner of the statements that follow to indexes, or lets it choose again
    /// (PostgreSQL, for the rest of the transaction). For a statement that joins a new batch's
    /// rows with the table's before any statistics know the batch: the planner took a
    /// 20,000-row batch for one row and read the whole table once per row, a minute where
    /// probing an index takes milliseconds. Without sequential scans every plan's estimate is
    /// inflated past the JIT's threshold, and compiling took 0.2 s of an 8,000-row load whose
    /// statement ran in 2 ms, so the JIT is off with them. Letting go restores the session's own
    /// settings.
    pub async fn prefer_indexes(&mut self, prefer: bool) -> Result<(), sqlx::Error> {
        if let LoadTx::Postgres { tx, .. } = self {
            let statements: &[&str] = if prefer {
                &["SET LOCAL enable_seqscan = off", "SET LOCAL jit = off"]
            } else {
                &["RESET enable_seqscan", "RESET jit"]
            };
            for sql in statements {
                sqlx::query(*sql).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// Whether the rows written into `table` from here on go in frozen and all-visible (`COPY
    /// … FREEZE`, after `defer_indexes` emptied it anew).
    pub fn frozen(&self, table: &str) -> bool {
        matches!(self, LoadTx::Postgres { fresh: Some(t), .. } if *t == table)
    }

    /// Builds the indexes `defer_indexes` dropped, over the rows now loaded.
    pub async fn restore_indexes(&mut self, definitions: &[String]) -> Result<(), sqlx::Error> {
        let LoadTx::Postgres { tx, .. } = self else {
            return Ok(());
        };
        if definitions.is_empty() {
            return Ok(());
        }
        // Sorting in memory instead of in temporary files is what makes the builds cheap.
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
            .execute(&mut **tx)
            .await?;
        for definition in definitions {
            sqlx::query(sqlx::AssertSqlSafe(definition.clone()))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// Marks the pages a committed load wrote as all-visible (`VACUUM`, PostgreSQL only; it cannot
/// run inside the load's transaction). Rows that were not copied frozen stay invisible to an
/// index-only scan until a vacuum has seen them: the profile refresh that follows a 1M-row load
/// into 1M rows then visits the heap for every row it reads, and so does every read the filter
/// indexes answer (the deferred join of a page). Autovacuum would get there, but only minutes
/// later. It needs no lock that readers or other loads wait for; a role that does not own the
/// table gets a warning from PostgreSQL and nothing is done.
pub async fn vacuum(db: &DatabaseConnection, table: &'static str) -> Result<(), sqlx::Error> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM {table}")))
            .execute(db.get_postgres_connection_pool())
            .await?;
    }
    Ok(())
}
