//! Bulk writes inside one transaction, on either backend.
//!
//! PostgreSQL gets `COPY … FROM STDIN` (the fastest way in), SQLite gets multi-row `INSERT`s
//! with bound parameters. Everything a load writes — the batch row, its data rows and its
//! rejections — goes through one `LoadTx`, so a failure anywhere leaves nothing behind.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::{PgConnection, PgCopyIn};
use sea_orm::sqlx::{self, Postgres, QueryBuilder, Sqlite};

mod indexes;
pub use indexes::{Indexes, vacuum};

/// A value bound for one column of one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Date(NaiveDate),
}

impl From<Option<String>> for Cell {
    fn from(value: Option<String>) -> Self {
        value.map_or(Cell::Null, Cell::Text)
    }
}

impl From<String> for Cell {
    fn from(value: String) -> Self {
        Cell::Text(value)
    }
}

impl From<Option<f64>> for Cell {
    fn from(value: Option<f64>) -> Self {
        value.map_or(Cell::Null, Cell::Float)
    }
}

/// A line of the file being read (`source_line`, a rejection's line).
impl From<u64> for Cell {
    fn from(line: u64) -> Self {
        Cell::Int(i64::try_from(line).unwrap_or(i64::MAX))
    }
}

impl From<Option<NaiveDate>> for Cell {
    fn from(value: Option<NaiveDate>) -> Self {
        value.map_or(Cell::Null, Cell::Date)
    }
}

/// A destination table and the columns every row supplies, in order.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
}

pub struct NewBatch<'a> {
    pub dataset: &'a str,
    pub file_name: &'a str,
    pub sha256: &'a str,
    pub as_of: NaiveDate,
    pub provider_country: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub loaded_by: &'a str,
    pub loaded_at: DateTime<Utc>,
    pub raw_path: &'a str,
}

pub enum LoadTx {
    Postgres {
        tx: sqlx::Transaction<'static, Postgres>,
        /// The table `defer_indexes` emptied anew in the current subtransaction, if any: the
        /// only table a `COPY … FREEZE` may write (PostgreSQL refuses it for any other).
        fresh: Option<&'static str>,
    },
    Sqlite(sqlx::Transaction<'static, Sqlite>),
}

impl LoadTx {
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, sqlx::Error> {
        Ok(match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => LoadTx::Postgres {
                tx: db.get_postgres_connection_pool().begin().await?,
                fresh: None,
            },
            _ => LoadTx::Sqlite(db.get_sqlite_connection_pool().begin().await?),
        })
    }

    pub async fn insert_batch(&mut self, batch: &NewBatch<'_>) -> Result<i64, sqlx::Error> {
        const SQL: &str = "INSERT INTO batches (dataset, file_name, sha256, accepted_rows, \
             rejected_rows, as_of, provider_country, profile, loaded_by, loaded_at, raw_path) \
             VALUES ($1, $2, $3, 0, 0, $4, $5, $6, $7, $8, $9) RETURNING id";
        macro_rules! run {
            ($conn:expr) => {
                sqlx::query_scalar::<_, i64>(SQL)
                    .bind(batch.dataset)
                    .bind(batch.file_name)
                    .bind(batch.sha256)
                    .bind(batch.as_of)
                    .bind(batch.provider_country)
                    .bind(batch.profile)
                    .bind(batch.loaded_by)
                    .bind(batch.loaded_at)
                    .bind(batch.raw_path)
                    .fetch_one(&mut **$conn)
                    .await
            };
        }
        match self {
            LoadTx::Postgres { tx, .. } => run!(tx),
            LoadTx::Sqlite(tx) => run!(tx),
        }
    }

    pub async fn finish_batch(
        &mut self,
        batch_id: i64,
        accepted: i64,
        rejected: i64,
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "UPDATE batches SET accepted_rows = $1, rejected_rows = $2 WHERE id = $3";
        match self {
            LoadTx::Postgres { tx, .. } => {
                sqlx::query(SQL)
                    .bind(accepted)
                    .bind(rejected)
                    .bind(batch_id)
                    .execute(&mut **tx)
                    .await?;
            }
            LoadTx::Sqlite(tx) => {
                sqlx::query(SQL)
                    .bind(accepted)
                    .bind(rejected)
                    .bind(batch_id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs `sql`, which binds the batch id as `$1` and `texts` as `$2`, `$3` … (a statement
    /// deriving rows from the batch's rows, such as a rollup's fill), and returns the rows it
    /// changed. `sql` is the program's own text, never input; `texts` may be.
    pub async fn execute_for_batch(
        &mut self,
        sql: String,
        batch_id: i64,
        texts: &[&str],
    ) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql);
        Ok(match self {
            LoadTx::Postgres { tx, .. } => {
                let mut query = sqlx::query(sql).bind(batch_id);
                for text in texts {
                    query = query.bind(*text);
                }
                query.execute(&mut **tx).await?.rows_affected()
            }
            LoadTx::Sqlite(tx) => {
                let mut query = sqlx::query(sql).bind(batch_id);
                for text in texts {
                    query = query.bind(*text);
                }
                query.execute(&mut **tx).await?.rows_affected()
            }
        })
    }

    /// Creates the temporary table `name` with `columns` (an SQL column list), empty, for the
    /// rest of the transaction: PostgreSQL drops it at the commit; on SQLite it lasts as long
    /// as the pooled connection, so an earlier load's is dropped first. `name` and `columns`
    /// are the program's own text.
    pub async fn temp_table(&mut self, name: &str, columns: &str) -> Result<(), sqlx::Error> {
        match self {
            LoadTx::Postgres { tx, .. } => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP TABLE IF EXISTS pg_temp.{name}; \
                     CREATE TEMPORARY TABLE {name} ({columns}) ON COMMIT DROP"
                )))
                .execute(&mut **tx)
                .await?;
            }
            LoadTx::Sqlite(tx) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP TABLE IF EXISTS temp.{name}; CREATE TEMPORARY TABLE {name} ({columns})"
                )))
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// Runs `sql` on PostgreSQL only: a setting SQLite does not have, such as `SET LOCAL
    /// work_mem` before a statement that sums a whole batch. `sql` is the program's own text.
    pub async fn execute_on_postgres(&mut self, sql: String) -> Result<(), sqlx::Error> {
        if let LoadTx::Postgres { tx, .. } = self {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Runs `sql`, which binds the batch id as `$1`, and returns its rows as `R` (a tuple of
    /// the selected columns). `sql` is the program's own text, never input.
    pub async fn fetch_for_batch<R>(
        &mut self,
        sql: String,
        batch_id: i64,
    ) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + Send
            + Unpin,
    {
        let sql = sqlx::AssertSqlSafe(sql);
        match self {
            LoadTx::Postgres { tx, .. } => {
                sqlx::query_as(sql)
                    .bind(batch_id)
                    .fetch_all(&mut **tx)
                    .await
            }
            LoadTx::Sqlite(tx) => {
                sqlx::query_as(sql)
                    .bind(batch_id)
                    .fetch_all(&mut **tx)
                    .await
            }
        }
    }

    /// Makes every other load that checks `table`'s keys wait until this one commits or rolls
    /// back (PostgreSQL; SQLite has one writer, so its loads are in turn already).
    pub async fn lock_for_keys(&mut self, table: &str) -> Result<(), sqlx::Error> {
        if let LoadTx::Postgres { tx, .. } = self {
            // One application-wide lock class, keyed by the table's name within it.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(KEY_LOCK_CLASS)
                .bind(table)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Deletes the rows of `table` whose `column` holds one of `values`. `table` and `column`
    /// are the program's own names, never input; the values are bound.
    pub async fn delete_where_in(
        &mut self,
        table: &str,
        column: &str,
        values: &[String],
    ) -> Result<(), sqlx::Error> {
        match self {
            LoadTx::Postgres { tx, .. } => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE {column} = ANY($1)"
                )))
                .bind(values)
                .execute(&mut **tx)
                .await?;
            }
            LoadTx::Sqlite(tx) => {
                for chunk in values.chunks(SQLITE_MAX_PARAMETERS) {
                    let mut builder: QueryBuilder<Sqlite> =
                        QueryBuilder::new(format!("DELETE FROM {table} WHERE {column} IN ("));
                    let mut list = builder.separated(", ");
                    for value in chunk {
                        list.push_bind(value.clone());
                    }
                    builder.push(")");
                    builder.build().execute(&mut **tx).await?;
                }
            }
        }
        Ok(())
    }

    /// Appends `rows` to `table`. Every row must have exactly `table.columns.len()` cells.
    pub async fn write(&mut self, table: &Table, rows: &[Vec<Cell>]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        match self {
            LoadTx::Postgres { tx, fresh } => {
                let mut buffer = String::with_capacity(rows.len() * 256);
                for row in rows {
                    encode_copy_row(row, &mut buffer);
                }
                let mut copy = tx.copy_in_raw(&copy_statement(table, *fresh)).await?;
                copy.send(buffer.into_bytes()).await?;
                copy.finish().await?;
            }
            LoadTx::Sqlite(tx) => insert_sqlite(tx, table, rows).await?,
        }
        Ok(())
    }

    /// A writer for a long stream of rows into one table. On PostgreSQL it is one `COPY` that
    /// stays open for the whole stream: each chunk is sent without waiting for the server to
    /// store the previous one, so the server's work overlaps the client's parsing instead of
    /// adding to it (a `COPY` per chunk made each side wait for the other).
    pub async fn writer<'a>(&'a mut self, table: &'a Table) -> Result<RowWriter<'a>, sqlx::Error> {
        Ok(match self {
            LoadTx::Postgres { tx, fresh } => RowWriter::Postgres {
                copy: tx.copy_in_raw(&copy_statement(table, *fresh)).await?,
                buffer: String::new(),
            },
            LoadTx::Sqlite(tx) => RowWriter::Sqlite { tx, table },
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            LoadTx::Postgres { tx, .. } => tx.commit().await,
            LoadTx::Sqlite(tx) => tx.commit().await,
        }
    }
}

/// An open stream of rows into one table (`LoadTx::writer`).
pub enum RowWriter<'a> {
    Postgres {
        copy: PgCopyIn<&'a mut PgConnection>,
        /// Reused between chunks: one allocation for the whole stream.
        buffer: String,
    },
    Sqlite {
        tx: &'a mut sqlx::Transaction<'static, Sqlite>,
        table: &'a Table,
    },
}

impl RowWriter<'_> {
    /// Sends `rows`; on PostgreSQL this returns once they are on their way, not stored.
    pub async fn write(&mut self, rows: &[Vec<Cell>]) -> Result<(), sqlx::Error> {
        match self {
            RowWriter::Postgres { copy, buffer } => {
                buffer.clear();
                for row in rows {
                    encode_copy_row(row, buffer);
                }
                copy.send(buffer.as_bytes()).await?;
            }
            RowWriter::Sqlite { tx, table } => insert_sqlite(tx, table, rows).await?,
        }
        Ok(())
    }

    /// Ends the stream; on PostgreSQL this is where the server reports a bad row.
    pub async fn finish(self) -> Result<(), sqlx::Error> {
        if let RowWriter::Postgres { copy, .. } = self {
            copy.finish().await?;
        }
        Ok(())
    }

    /// Abandons the stream after a failure on the client's side (the transaction is then
    /// rolled back); leaves the connection usable.
    pub async fn abort(self, reason: &str) -> Result<(), sqlx::Error> {
        if let RowWriter::Postgres { copy, .. } = self {
            copy.abort(reason).await?;
        }
        Ok(())
    }
}

/// The `COPY` into `table`, frozen when `table` is the one `fresh` names (`defer_indexes`).
fn copy_statement(table: &Table, fresh: Option<&str>) -> String {
    format!(
        "COPY {} ({}) FROM STDIN{}",
        table.name,
        table.columns.join(", "),
        if fresh == Some(table.name) {
            " WITH (FREEZE)"
        } else {
            ""
        }
    )
}

/// Bound parameters per SQLite statement (it allows 32,766), with room to spare.
const SQLITE_MAX_PARAMETERS: usize = 32_000;

/// The first key of the PostgreSQL advisory locks loads take (`lock_for_keys`): "DRTS".
const KEY_LOCK_CLASS: i32 = 0x4452_5453;

/// Multi-row `INSERT`s with bound parameters.
async fn insert_sqlite(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    table: &Table,
    rows: &[Vec<Cell>],
) -> Result<(), sqlx::Error> {
    let per_statement = (SQLITE_MAX_PARAMETERS / table.columns.len()).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut builder: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "INSERT INTO {} ({}) ",
            table.name,
            table.columns.join(", ")
        ));
        builder.push_values(chunk, |mut values, row| {
            for cell in row {
                match cell {
                    Cell::Null => values.push_bind(None::<String>),
                    Cell::Text(s) => values.push_bind(s.clone()),
                    Cell::Int(i) => values.push_bind(*i),
                    Cell::Float(f) => values.push_bind(*f),
                    Cell::Date(d) => values.push_bind(*d),
                };
            }
        });
        builder.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// PostgreSQL COPY text format: tab-separated, `\N` for NULL, backslash escapes.
fn encode_copy_row(row: &[Cell], out: &mut String) {
    use std::fmt::Write;
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match cell {
            Cell::Null => out.push_str("\\N"),
            Cell::Text(s) => {
                for ch in s.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        other => out.push(other),
                    }
                }
            }
            // Writing to a String cannot fail.
            Cell::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Float(v) => {
                let _ = write!(out, "{v}");
            }
            Cell::Date(d) => {
                let _ = write!(out, "{}", d.format("%Y-%m-%d"));
            }
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_separators_and_nulls() {
        let mut out = String::new();
        encode_copy_row(
            &[
                Cell::Text("a\tb\\c\nd".into()),
                Cell::Null,
                Cell::Int(-3),
                Cell::Float(0.5),
                Cell::Date(NaiveDate::from_ymd_opt(2020, 1, 2).unwrap()),
            ],
            &mut out,
        );
        assert_eq!(out, "a\\tb\\\\c\\nd\t\\N\t-3\t0.5\t2020-01-02\n");
    }
}
