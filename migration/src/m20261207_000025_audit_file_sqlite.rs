//! On SQLite, the audit log moves into a file of its own (`dartts::db::audit_file`, attached
//! to every connection as `audit`), so that appending to it never waits for a data load.
//!
//! SQLite admits one writer per file, and a `dartts load` holds the data file's write lock for
//! its whole transaction. Every request appends its audit event before it is answered, so
//! while a 400,000-row load ran (76 s on the embedded default) every request waited for it and
//! failed `INTERNAL` ("database is locked") once the 60 s busy timeout passed. PostgreSQL locks
//! rows, not files, and is untouched.
//!
//! The tables, their indexes and the append-only triggers are recreated in the attached file
//! from their own definitions and the rows copied, in one transaction that writes only that
//! file; the originals are dropped in a second. A crash between the two leaves both copies and
//! the rerun only drops (the copy is whole or absent). Unqualified names find the tables in the
//! attached file once `main` no longer holds them, so no statement changes. The originals are
//! dropped only when the other side holds as many events. A database in memory has nothing
//! attached and keeps them where they are.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

/// The schema name the audit file is attached under (`dartts::db`).
pub const AUDIT_SCHEMA: &str = "audit";

const TABLES: &str = "('audit_events', 'audit_head')";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        move_tables(manager, "main", AUDIT_SCHEMA).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        move_tables(manager, AUDIT_SCHEMA, "main").await
    }
}

/// Moves the audit tables, with their indexes and triggers, from schema `from` to `to`.
async fn move_tables(manager: &SchemaManager<'_>, from: &str, to: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Sqlite {
        return Ok(());
    }
    let db = manager.get_connection();
    let attached = count(
        manager,
        &format!("SELECT count(*) FROM pragma_database_list WHERE name = '{AUDIT_SCHEMA}'"),
    )
    .await?;
    if attached == 0 {
        return Ok(());
    }
    let in_schema = |schema: &str| {
        format!(
            "SELECT count(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name IN {TABLES}"
        )
    };
    if count(manager, &in_schema(from)).await? == 0 {
        return Ok(());
    }
    if count(manager, &in_schema(to)).await? == 0 {
        let definitions = db
            .query_all_raw(Statement::from_string(
                DatabaseBackend::Sqlite,
                format!(
                    "SELECT type, name, sql FROM {from}.sqlite_master \
                     WHERE tbl_name IN {TABLES} AND sql IS NOT NULL \
                     ORDER BY type <> 'table', name"
                ),
            ))
            .await?;
        let mut sql = String::from("BEGIN; ");
        for row in definitions {
            let kind: String = row.try_get_by_index(0)?;
            let name: String = row.try_get_by_index(1)?;
            let definition: String = row.try_get_by_index(2)?;
            sql.push_str(&in_other_schema(&definition, to).ok_or_else(|| {
                DbErr::Migration(format!("unexpected definition of {name}: {definition}"))
            })?);
            sql.push_str("; ");
            if kind == "table" {
                sql.push_str(&format!(
                    "INSERT INTO {to}.\"{name}\" SELECT * FROM {from}.\"{name}\"; "
                ));
            }
        }
        sql.push_str("COMMIT;");
        db.execute_unprepared(&sql).await?;
    }
    // Nothing is dropped unless every event is on the other side: a copy is whole or absent,
    // but an audit file put back from elsewhere might hold fewer.
    let events = |schema: &str| format!("SELECT count(*) FROM {schema}.audit_events");
    let (here, there) = (
        count(manager, &events(from)).await?,
        count(manager, &events(to)).await?,
    );
    if there < here {
        return Err(DbErr::Migration(format!(
            "the audit log in `{to}` holds {there} events and the one in `{from}` {here}: \
             neither was dropped; restore the audit file that belongs with this database"
        )));
    }
    db.execute_unprepared(&format!(
        "BEGIN; DROP TABLE {from}.audit_events; DROP TABLE {from}.audit_head; COMMIT;"
    ))
    .await?;
    Ok(())
}

/// `definition` (a `CREATE TABLE`, `INDEX` or `TRIGGER` as SQLite stored it) made in `schema`:
/// the object's name qualified, the table it is on left as is (SQLite puts an index or
/// trigger in its table's schema).
fn in_other_schema(definition: &str, schema: &str) -> Option<String> {
    [
        "CREATE TABLE ",
        "CREATE UNIQUE INDEX ",
        "CREATE INDEX ",
        "CREATE TRIGGER ",
    ]
    .iter()
    .find_map(|prefix| {
        definition
            .strip_prefix(prefix)
            .map(|rest| format!("{prefix}{schema}.{rest}"))
    })
}

async fn count(manager: &SchemaManager<'_>, sql: &str) -> Result<i64, DbErr> {
    let row = manager
        .get_connection()
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            sql.to_owned(),
        ))
        .await?
        .ok_or_else(|| DbErr::Migration(format!("no row from {sql}")))?;
    row.try_get_by_index(0)
}

#[cfg(test)]
mod tests {
    use super::in_other_schema;

    #[test]
    fn definitions_are_qualified_by_the_object_name_only() {
        assert_eq!(
            in_other_schema("CREATE TABLE \"audit_head\" ( \"id\" integer)", "audit").as_deref(),
            Some("CREATE TABLE audit.\"audit_head\" ( \"id\" integer)")
        );
        assert_eq!(
            in_other_schema(
                "CREATE INDEX \"ix_audit_actor_at\" ON \"audit_events\" (\"actor\", \"at\")",
                "main"
            )
            .as_deref(),
            Some("CREATE INDEX main.\"ix_audit_actor_at\" ON \"audit_events\" (\"actor\", \"at\")")
        );
        assert_eq!(
            in_other_schema(
                "CREATE TRIGGER audit_no_DELETE BEFORE DELETE ON audit_events BEGIN SELECT 1; END",
                "audit"
            )
            .as_deref(),
            Some(
                "CREATE TRIGGER audit.audit_no_DELETE BEFORE DELETE ON audit_events BEGIN SELECT 1; END"
            )
        );
        assert_eq!(in_other_schema("CREATE VIEW v AS SELECT 1", "audit"), None);
    }
}
