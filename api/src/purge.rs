//! `dartts purge`: the retention job. DESIGN §3: "data and raw inputs are kept ten years, then
//! purged by a scheduled job (audited)". `dartts purge --batch ID` takes one batch the same
//! way, whatever its age: a load that was wrong, withdrawn (`Due::Batch`).
//!
//! A batch is due when it was loaded before the cutoff (now minus the retention period, in
//! calendar years). Purging it deletes its rows in every table that has a `batch_id` and its
//! rejections, and marks the `batches` row `purged_at` instead of deleting it: the record that
//! a load happened (file, digest, counts, who loaded it, when) outlives the data, and nothing
//! that names a batch id — the audit log's ingest events, say — is left pointing at nothing.
//! Its raw input files go too, unless a batch that is kept uses the same content (the store is
//! content-addressed, so two batches can share a file).
//!
//! The order is what makes it safe:
//! 1. an `attempted` audit event naming the cutoff and the due batches — if it cannot be
//!    written, nothing is deleted (DESIGN §6: if the audit write fails, the action fails);
//! 2. each batch in its own transaction: mark, then delete its rows; a failure rolls back that
//!    batch alone and stops the run;
//! 3. raw files, only after those commits: a crash in between leaves files behind (the next
//!    run removes them, because it sweeps the files of every purged batch), never rows whose
//!    raw input is gone;
//! 4. the outcome event (`ok`, `partial` or `failed`) with the rows removed per table and the
//!    files removed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::Path;

use chrono::{DateTime, Months, SecondsFormat, Utc};
use entities::batch;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Statement, TransactionTrait,
};
use serde_json::{Value, json};

use crate::audit::{AuditError, AuditEvent, AuditSink, EventType};
use crate::ingest::raw_store;

/// Every table whose rows belong to a batch through `batch_id`. A table missing here would
/// keep its rows forever (the batch row stays, so no foreign key would complain); a black-box
/// test compares this list with the schema.
pub const BATCH_TABLES: &[&str] = &[
    "trade_records",
    crate::analysis::rollup::IMPORTER_YEARS.table,
    crate::analysis::rollup::HS6_YEARS.table,
    "financial_transactions",
    "subject_records",
    "sdn_entries",
    "sdn_aliases",
    "sdn_addresses",
    "batch_rejections",
];

/// Tables of `BATCH_TABLES` that hold sums derived from a batch's records, not records: they
/// go with the batch but do not count as records removed.
const DERIVED_TABLES: &[&str] = &[
    crate::analysis::rollup::IMPORTER_YEARS.table,
    crate::analysis::rollup::HS6_YEARS.table,
];

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("a retention period of {0} years reaches back before the calendar chrono supports")]
    Cutoff(u32),
    #[error("no batch {0} is held (never loaded, or already purged): nothing was purged")]
    NoSuchBatch(i64),
    #[error("database error: {0}{hint}", hint = crate::error::sqlite_busy_hint(crate::error::sqlx_source(.0)))]
    Database(#[from] DbErr),
    #[error("the purge cannot be audited, so nothing was purged: {0}")]
    NotAudited(AuditError),
    #[error("the purge ran ({outcome}) but its outcome could not be audited: {source}")]
    OutcomeNotAudited {
        outcome: &'static str,
        source: AuditError,
    },
    #[error(
        "purge stopped: {cause} ({} batch(es) purged and {} raw file(s) removed before that; \
         the next run continues)",
        .report.batches.len(),
        .report.raw_files_removed.len()
    )]
    Incomplete {
        report: Box<PurgeReport>,
        cause: String,
    },
}

/// Which batches a purge takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// The retention job: batches loaded more than this many years ago.
    Older { retention_years: u32 },
    /// One batch now, whatever its age: a load withdrawn because it was wrong (loaded under
    /// another provider, profile or as-of date than meant, or the wrong file). A load of the
    /// same content is a no-op while the batch is held; once withdrawn it can be loaded again.
    Batch(i64),
}

#[derive(Debug)]
pub struct PurgeRequest {
    pub due: Due,
    /// Count what is due and which files would go; delete and audit nothing.
    pub dry_run: bool,
    /// Who runs it, for the audit log.
    pub actor: String,
}

/// One batch purged (or, in a dry run, due).
#[derive(Clone, Debug)]
pub struct BatchPurge {
    pub id: i64,
    pub dataset: String,
    pub file_name: String,
    pub sha256: String,
    pub loaded_at: DateTime<Utc>,
    /// Rows removed per table (would be, in a dry run); tables without any are left out.
    pub rows: BTreeMap<&'static str, u64>,
}

#[derive(Clone, Debug)]
pub struct PurgeReport {
    pub due: Due,
    /// The oldest load time kept, for `Due::Older`.
    pub cutoff: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub batches: Vec<BatchPurge>,
    /// Relative to the data directory.
    pub raw_files_removed: Vec<String>,
    /// Raw files of batches purged in this run that a kept batch still uses, so they stay.
    pub raw_files_shared: Vec<String>,
}

impl PurgeReport {
    /// Rows removed per table over all batches.
    pub fn rows_by_table(&self) -> BTreeMap<&'static str, u64> {
        let mut total = BTreeMap::new();
        for b in &self.batches {
            for (table, n) in &b.rows {
                *total.entry(*table).or_insert(0) += n;
            }
        }
        total
    }

    /// Records removed: the rows of every table but the derived sums.
    pub fn total_rows(&self) -> u64 {
        self.rows_by_table()
            .iter()
            .filter(|(table, _)| !DERIVED_TABLES.contains(table))
            .map(|(_, n)| n)
            .sum()
    }

    /// What the audit event says, beyond its outcome.
    fn audit_detail(&self, error: Option<&str>) -> Value {
        let batches: Vec<Value> = self
            .batches
            .iter()
            .map(|b| {
                json!({
                    "id": b.id,
                    "dataset": b.dataset,
                    "sha256": b.sha256,
                    "loadedAt": timestamp(b.loaded_at),
                    "rows": b.rows,
                })
            })
            .collect();
        let mut detail = json!({
            "batchIds": self.batches.iter().map(|b| b.id).collect::<Vec<_>>(),
            "rows": self.rows_by_table(),
            "batches": batches,
            "rawFilesRemoved": self.raw_files_removed,
            "rawFilesShared": self.raw_files_shared,
        });
        if let Some(map) = detail.as_object_mut() {
            map.extend(due_detail(self.due, self.cutoff));
            if let Some(error) = error {
                map.insert("error".into(), error.into());
            }
        }
        detail
    }
}

/// What the audit events say about which batches were due: the retention and its cutoff, or
/// the one batch withdrawn.
fn due_detail(due: Due, cutoff: Option<DateTime<Utc>>) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    match due {
        Due::Older { retention_years } => {
            map.insert("retentionYears".into(), retention_years.into());
            if let Some(cutoff) = cutoff {
                map.insert("cutoff".into(), timestamp(cutoff).into());
            }
        }
        Due::Batch(id) => {
            map.insert("withdrawnBatch".into(), id.into());
        }
    }
    map
}

/// The oldest load time that is kept: `now` minus `years` calendar years (29 February steps
/// back to the 28th). Batches loaded strictly before it are due.
pub fn cutoff(now: DateTime<Utc>, years: u32) -> Result<DateTime<Utc>, PurgeError> {
    years
        .checked_mul(12)
        .and_then(|months| now.checked_sub_months(Months::new(months)))
        .ok_or(PurgeError::Cutoff(years))
}

/// Runs the purge (or the dry run) as of `now`.
pub async fn run(
    db: &DatabaseConnection,
    audit: &dyn AuditSink,
    data_dir: &Path,
    req: &PurgeRequest,
    now: DateTime<Utc>,
) -> Result<PurgeReport, PurgeError> {
    let (cutoff, due) = match req.due {
        Due::Older { retention_years } => {
            let cutoff = cutoff(now, retention_years)?;
            (Some(cutoff), batch::Column::LoadedAt.lt(cutoff))
        }
        Due::Batch(id) => (None, batch::Column::Id.eq(id)),
    };
    let due = batch::Entity::find()
        .filter(due)
        .filter(batch::Column::PurgedAt.is_null())
        .order_by_asc(batch::Column::Id)
        .all(db)
        .await?;
    if let Due::Batch(id) = req.due
        && due.is_empty()
    {
        return Err(PurgeError::NoSuchBatch(id));
    }
    let mut report = PurgeReport {
        due: req.due,
        cutoff,
        dry_run: req.dry_run,
        batches: Vec::new(),
        raw_files_removed: Vec::new(),
        raw_files_shared: Vec::new(),
    };

    if req.dry_run {
        for b in &due {
            let rows = count_rows(db, b.id).await?;
            report.batches.push(described(b, rows));
        }
        let due_ids: HashSet<i64> = due.iter().map(|b| b.id).collect();
        let all = batch::Entity::find().all(db).await?;
        let plan = raw_plan(&all, &due_ids, &due_ids);
        report.raw_files_removed = plan
            .remove
            .into_iter()
            .filter(|p| data_dir.join(p).exists())
            .collect();
        report.raw_files_shared = plan.shared.into_iter().collect();
        return Ok(report);
    }

    let mut intent = due_detail(req.due, cutoff);
    intent.insert(
        "batchIds".into(),
        due.iter().map(|b| b.id).collect::<Vec<_>>().into(),
    );
    let intent = Value::Object(intent);
    audit
        .record(event(req, "attempted", intent))
        .await
        .map_err(PurgeError::NotAudited)?;

    let mut failure: Option<String> = None;
    for b in &due {
        match purge_batch(db, b.id, now).await {
            Ok(Some(rows)) => report.batches.push(described(b, rows)),
            // Another purge running at the same time got there first.
            Ok(None) => {}
            Err(e) => {
                failure = Some(format!("batch {}: {e}", b.id));
                break;
            }
        }
    }
    // Even after a failure: the batches committed so far no longer need their files.
    match remove_raw_files(db, data_dir, &report).await {
        Ok(files) => {
            report.raw_files_removed = files.removed;
            report.raw_files_shared = files.shared;
            if let Some(e) = files.first_error {
                failure.get_or_insert(e);
            }
        }
        Err(e) => {
            failure.get_or_insert(format!("raw files: {e}"));
        }
    }

    let outcome = match &failure {
        None => "ok",
        Some(_) if report.batches.is_empty() && report.raw_files_removed.is_empty() => "failed",
        Some(_) => "partial",
    };
    let records = i64::try_from(report.total_rows()).unwrap_or(i64::MAX);
    audit
        .record(event(req, outcome, report.audit_detail(failure.as_deref())).records(records))
        .await
        .map_err(|source| PurgeError::OutcomeNotAudited { outcome, source })?;
    match failure {
        None => Ok(report),
        Some(cause) => Err(PurgeError::Incomplete {
            report: Box::new(report),
            cause,
        }),
    }
}

fn event(req: &PurgeRequest, outcome: &'static str, detail: Value) -> AuditEvent {
    AuditEvent::new(EventType::Purge, outcome)
        .actor(req.actor.clone())
        .source("cli")
        .detail(detail)
}

fn described(b: &batch::Model, rows: BTreeMap<&'static str, u64>) -> BatchPurge {
    BatchPurge {
        id: b.id,
        dataset: b.dataset.clone(),
        file_name: b.file_name.clone(),
        sha256: b.sha256.clone(),
        loaded_at: b.loaded_at,
        rows,
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Purges one batch in one transaction; `None` if it was already purged.
async fn purge_batch(
    db: &DatabaseConnection,
    batch_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<BTreeMap<&'static str, u64>>, DbErr> {
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    // Marking first takes the batch row's write lock: a second purge running at the same time
    // waits here, then finds the row purged and skips it instead of counting it twice.
    let marked = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE batches SET purged_at = $1 WHERE id = $2 AND purged_at IS NULL",
            [now.into(), batch_id.into()],
        ))
        .await?;
    if marked.rows_affected() == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let mut rows = BTreeMap::new();
    for table in BATCH_TABLES {
        // Table names come from the constant above, never from input.
        let deleted = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM {table} WHERE batch_id = $1"),
                [batch_id.into()],
            ))
            .await?
            .rows_affected();
        if deleted > 0 {
            rows.insert(*table, deleted);
        }
    }
    txn.commit().await?;
    Ok(Some(rows))
}

/// What a dry run reports per batch: the rows a purge would delete.
async fn count_rows(
    db: &DatabaseConnection,
    batch_id: i64,
) -> Result<BTreeMap<&'static str, u64>, DbErr> {
    let backend = db.get_database_backend();
    let mut rows = BTreeMap::new();
    for table in BATCH_TABLES {
        let count: i64 = match db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT COUNT(*) FROM {table} WHERE batch_id = $1"),
                [batch_id.into()],
            ))
            .await?
        {
            Some(row) => row.try_get_by_index(0)?,
            None => 0,
        };
        if count > 0 {
            rows.insert(*table, u64::try_from(count).unwrap_or(0));
        }
    }
    Ok(rows)
}

struct RawFiles {
    removed: Vec<String>,
    shared: Vec<String>,
    /// Removal goes on past a file that cannot be removed; the first error is reported.
    first_error: Option<String>,
}

/// Removes the raw files of every purged batch that no kept batch uses, from committed state:
/// this run's batches and any an earlier, interrupted run left behind.
async fn remove_raw_files(
    db: &DatabaseConnection,
    data_dir: &Path,
    report: &PurgeReport,
) -> Result<RawFiles, DbErr> {
    // No load may be between keeping a file and committing its batch while the plan is made
    // and carried out (see `raw_store::lock`).
    let _store = raw_store::lock(data_dir, raw_store::Access::Purge)
        .await
        .map_err(|e| DbErr::Custom(format!("cannot lock the raw store: {e}")))?;
    let all = batch::Entity::find().all(db).await?;
    let this_run: HashSet<i64> = report.batches.iter().map(|b| b.id).collect();
    let plan = raw_plan(&all, &HashSet::new(), &this_run);
    let mut files = RawFiles {
        removed: Vec::new(),
        shared: plan.shared.into_iter().collect(),
        first_error: None,
    };
    for path in plan.remove {
        match std::fs::remove_file(data_dir.join(&path)) {
            Ok(()) => files.removed.push(path),
            // Removed before (a previous run, or by hand): nothing left to do.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(path = %path, error = %e, "cannot remove a purged raw file");
                files
                    .first_error
                    .get_or_insert_with(|| format!("cannot remove raw file {path}: {e}"));
            }
        }
    }
    Ok(files)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct RawPlan {
    /// Files of purged batches that no kept batch uses.
    remove: BTreeSet<String>,
    /// Files of `this_run`'s batches that a kept batch still uses.
    shared: BTreeSet<String>,
}

/// Decides which raw files may go. A batch counts as purged when its row says so or its id is
/// in `also_purged` (what a dry run pretends); every other batch is kept and keeps its files.
fn raw_plan(
    batches: &[batch::Model],
    also_purged: &HashSet<i64>,
    this_run: &HashSet<i64>,
) -> RawPlan {
    let is_purged = |b: &batch::Model| b.purged_at.is_some() || also_purged.contains(&b.id);
    let kept: HashSet<&str> = batches
        .iter()
        .filter(|b| !is_purged(b))
        .flat_map(|b| raw_files(&b.raw_path))
        .collect();
    let mut plan = RawPlan::default();
    for b in batches.iter().filter(|b| is_purged(b)) {
        for file in raw_files(&b.raw_path) {
            if !kept.contains(file) {
                plan.remove.insert(file.to_owned());
            } else if this_run.contains(&b.id) {
                plan.shared.insert(file.to_owned());
            }
        }
    }
    plan
}

/// The files a `batches.raw_path` names (an SDN batch lists several, `;`-separated). Only
/// paths of the raw store's own shape (`raw/<aa>/<sha256>`, as `ingest::raw_store` writes
/// them) are returned: a value edited in the database must not make the purge delete a file
/// outside the store.
fn raw_files(raw_path: &str) -> impl Iterator<Item = &str> {
    raw_path.split(';').filter(|p| {
        let ok = is_store_path(p);
        if !ok && !p.is_empty() {
            tracing::warn!(path = %p, "raw_path outside the raw store; left alone");
        }
        ok
    })
}

fn is_store_path(path: &str) -> bool {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match path.split('/').collect::<Vec<_>>()[..] {
        ["raw", prefix, digest] => {
            prefix.len() == 2 && digest.len() == 64 && hex(digest) && digest.starts_with(prefix)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
