//! The link from `trade_records` and `trade_importer_years` to `batches` checked once per
//! statement instead of once per row (PostgreSQL; issue 12, ingest).
//!
//! A foreign key is checked by a trigger per inserted row, one lookup in `batches` each: a
//! `COPY` of 1M generated records into `trade_records` took 8.2 s with the key and 4.2 s
//! without it (primary key only), the largest single cost of a load. The same rule is now
//! kept by statement-level triggers: after each `INSERT`/`UPDATE`/`COPY`, one statement reads
//! the distinct batch ids of the rows it wrote (its transition table) and locks those batches
//! `FOR KEY SHARE`, as the key's own check does, so a batch cannot be deleted while rows
//! naming it are being written; a missing batch fails the statement with the key's error code
//! (`23503`). On the other side, `ON DELETE RESTRICT` becomes a row trigger on `batches` that
//! refuses to delete (or renumber) a batch these tables still name. The same `COPY` with
//! this check took 4.5 s.
//!
//! Dropping a foreign key for the length of a load instead (as its indexes are) was not an
//! option: it takes an `ACCESS EXCLUSIVE` lock on `batches`, which every reader needs.
//! SQLite keeps its foreign keys: its check is cheap and the embedded default holds small data.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables whose foreign key to `batches` this replaces, with its name.
const CHECKED: &[(&str, &str)] = &[
    ("trade_records", "fk_trade_records_batch"),
    (
        super::m20261204_000014_importer_years::TABLE,
        "trade_importer_years_batch_id_fkey",
    ),
];

fn up_sql() -> String {
    let still_named = CHECKED
        .iter()
        .map(|(table, _)| format!("EXISTS (SELECT 1 FROM {table} WHERE batch_id = OLD.id)"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let mut sql = format!(
        "CREATE FUNCTION batch_rows_name_a_batch() RETURNS trigger LANGUAGE plpgsql AS $$ \
         DECLARE ids bigint[]; locked bigint; \
         BEGIN \
           SELECT array_agg(batch_id) INTO ids FROM (SELECT DISTINCT batch_id FROM new_rows) d; \
           IF ids IS NULL THEN RETURN NULL; END IF; \
           SELECT count(*) INTO locked \
             FROM (SELECT 1 FROM batches WHERE id = ANY (ids) FOR KEY SHARE) b; \
           IF locked <> cardinality(ids) THEN \
             RAISE EXCEPTION 'rows of % name a batch that does not exist', TG_TABLE_NAME \
               USING ERRCODE = 'foreign_key_violation'; \
           END IF; \
           RETURN NULL; \
         END $$; \
         CREATE FUNCTION batch_keeps_its_rows() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN RETURN NEW; END IF; \
           IF {still_named} THEN \
             RAISE EXCEPTION 'batch % still has rows', OLD.id \
               USING ERRCODE = 'foreign_key_violation'; \
           END IF; \
           IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; \
           RETURN NEW; \
         END $$; \
         CREATE TRIGGER batches_keep_their_rows BEFORE DELETE OR UPDATE OF id ON batches \
           FOR EACH ROW EXECUTE FUNCTION batch_keeps_its_rows();"
    );
    for (table, key) in CHECKED {
        // A trigger with a transition table takes one event, so inserts and updates get one each.
        for event in ["INSERT", "UPDATE"] {
            let name = format!("{table}_{}_batch", event.to_lowercase());
            sql.push_str(&format!(
                " CREATE TRIGGER {name} AFTER {event} ON {table} \
                 REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT \
                 EXECUTE FUNCTION batch_rows_name_a_batch();"
            ));
        }
        sql.push_str(&format!(" ALTER TABLE {table} DROP CONSTRAINT {key};"));
    }
    sql
}

fn down_sql() -> String {
    let mut sql = String::new();
    for (table, key) in CHECKED {
        for event in ["insert", "update"] {
            sql.push_str(&format!(" DROP TRIGGER {table}_{event}_batch ON {table};"));
        }
        sql.push_str(&format!(
            " ALTER TABLE {table} ADD CONSTRAINT {key} FOREIGN KEY (batch_id) \
             REFERENCES batches (id) ON DELETE RESTRICT;"
        ));
    }
    sql.push_str(
        " DROP TRIGGER batches_keep_their_rows ON batches; \
         DROP FUNCTION batch_keeps_its_rows(); DROP FUNCTION batch_rows_name_a_batch();",
    );
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::on_postgres(manager, &up_sql()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::on_postgres(manager, &down_sql()).await
    }
}
