//! `dartts load`: every data set enters the system here and only here (DESIGN §2: users cannot
//! modify or append analytical data).
//!
//! A load is one batch and one transaction: the raw file is hashed and kept content-addressed,
//! a file already loaded is a no-op, rows stream from disk in chunks into bulk writes, and each
//! refused row is recorded with its line and reason. With `strict`, any refused row rolls the
//! whole load back; an SDN list always loads that way, since the newest list is the one
//! screening reads. Nothing is committed until the last row has been read.

mod financial;
mod input;
mod job;
pub mod profile;
mod progress;
pub(crate) mod raw_store;
pub mod refresh;
mod rejection_log;
mod repeats;
mod sdn;
pub(crate) mod sink;
mod subjects;
mod values;

pub use values::HS_MAX_DIGITS;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use sea_orm::DatabaseConnection;
use sea_orm::sqlx;

use crate::analysis;
use crate::config::Instance;
use input::{CsvInput, HeaderIndex, InputError};
use job::Job;
use profile::{ProfileError, ProfileFile};
use progress::Progress;
use rejection_log::RejectionLog;
use repeats::InFile;
use sink::{Cell, LoadTx, NewBatch, Table};

/// Rows per bulk write: large enough to amortise round trips, small enough to stream.
const CHUNK_ROWS: usize = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataset {
    Trade,
    Financial,
    Subjects,
    Sdn,
}

impl Dataset {
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Trade => "trade",
            Dataset::Financial => "financial",
            Dataset::Subjects => "subjects",
            Dataset::Sdn => "sdn",
        }
    }
}

#[derive(Debug)]
pub struct LoadRequest {
    pub dataset: Dataset,
    pub path: PathBuf,
    pub provider: Option<String>,
    pub profile: Option<String>,
    pub as_of: Option<NaiveDate>,
    pub strict: bool,
    /// Trade only: rebuild the indexes after the rows even when the table has rows, holding
    /// it until the load commits (`sink::Indexes::Rebuild`).
    pub exclusive: bool,
    pub loaded_by: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// How many rows a load rejected, at most, in full (`Rejections::first`); every one is stored
/// with the batch (`Batch.rejections`).
pub const REJECTIONS_SHOWN: usize = 50;

/// A load's rejections as it reports them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rejections {
    pub total: u64,
    /// The first `REJECTIONS_SHOWN`, in file order.
    pub first: Vec<Rejection>,
}

#[derive(Debug)]
pub enum LoadOutcome {
    Loaded {
        batch_id: i64,
        sha256: String,
        accepted: i64,
        /// Accepted rows per input file, in load order.
        per_file: Vec<(String, i64)>,
        rejections: Rejections,
        /// Named header columns the layout has no field for: not loaded, kept in the raw file.
        unread_columns: Vec<String>,
    },
    /// The same content was loaded before; nothing was written.
    AlreadyLoaded { batch_id: i64, sha256: String },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the foreign instance does not accept {0} data (DESIGN §1); nothing was written")]
    RefusedOnForeignInstance(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{0}; nothing was written")]
    Input(#[from] InputError),
    #[error("cannot store the raw input: {0}")]
    RawStore(#[from] std::io::Error),
    #[error("cannot keep the rejected rows aside in a temporary file: {0}; nothing was written")]
    RejectionLog(std::io::Error),
    #[error("{} row(s) rejected and --strict is set; nothing was written", .0.total)]
    StrictRejected(Rejections),
    /// Not the whole list: it would become the list screening reads.
    #[error(transparent)]
    SdnSet(#[from] refresh::RefreshError),
    #[error(
        "{} row(s) of the SDN list rejected: a list loads whole or not at all (a truncated or \
         damaged file?); nothing was written",
        .0.total
    )]
    SdnRejected(Rejections),
    #[error("database error: {0}{hint}", hint = crate::error::sqlite_busy_hint(Some(.0)))]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}{hint}", hint = crate::error::sqlite_busy_hint(crate::error::sqlx_source(.0)))]
    Orm(#[from] sea_orm::DbErr),
    #[error(
        "the rows were loaded, but the peer profiles of their HS codes could not be recomputed \
         ({0}); run `dartts analysis refresh`"
    )]
    Profiles(sea_orm::DbErr),
}

/// A load of at least this many rows gathers the planner's statistics before its check for
/// rows that repeat a key (`repeats`) and a trade load's rollup fills (`LoadTx::analyze`). Until then the planner has never seen the new batch id and takes
/// the batch for one row: each fill sorted the whole batch instead of hashing it. 1M rows into
/// 1M: 11.4 s of fills, 6.0 s once analyzed; 200,000 rows: 2.6 s, 1.7 s. `ANALYZE` samples a
/// fixed number of rows, about half a second, which a smaller load would not earn back.
const ANALYZE_AFTER_ROWS: i64 = 100_000;

/// The files a request names, resolved and checked before anything is written.
struct Inputs {
    /// (display name, path) in load order; for SDN: the four files of `refresh::FILES`.
    files: Vec<(String, PathBuf)>,
}

fn resolve_inputs(req: &LoadRequest) -> Result<Inputs, IngestError> {
    let path = &req.path;
    if req.dataset != Dataset::Sdn {
        if !path.is_file() {
            return Err(IngestError::BadRequest(format!(
                "{} is not a file",
                path.display()
            )));
        }
        return Ok(Inputs {
            files: vec![(file_name(path), path.clone())],
        });
    }
    // The list is its four files: a folder holding them, or its sdn.csv naming the folder.
    let dir = if path.is_dir() {
        path.clone()
    } else if path.is_file() && file_name(path) == "sdn.csv" {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        return Err(IngestError::BadRequest(format!(
            "{} is not a folder holding OFAC's sdn.csv, sdn_comments.csv, add.csv and alt.csv \
             (nor the sdn.csv among them); nothing was written",
            path.display()
        )));
    };
    Ok(Inputs {
        files: refresh::verify(&dir)?,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn validate_provider(req: &LoadRequest) -> Result<Option<String>, IngestError> {
    match (&req.provider, req.dataset) {
        (None, Dataset::Trade) => Err(IngestError::BadRequest(
            "trade loads need --provider <ISO country> (the nation that delivered the file)".into(),
        )),
        (Some(_), d) if d != Dataset::Trade => Err(IngestError::BadRequest(
            "--provider only applies to trade loads".into(),
        )),
        (Some(p), _) => values::country(p, "--provider")
            .map(Some)
            .map_err(IngestError::BadRequest),
        (None, _) => Ok(None),
    }
}

/// One span per batch: the data set, then its id and row counts once known (never file paths
/// or contents).
#[tracing::instrument(
    name = "ingest.batch",
    skip_all,
    fields(dataset = req.dataset.as_str(), batch_id, accepted, rejected)
)]
pub async fn load(
    db: &DatabaseConnection,
    instance: Instance,
    data_dir: &Path,
    req: &LoadRequest,
) -> Result<LoadOutcome, IngestError> {
    if instance == Instance::Foreign && req.dataset != Dataset::Trade {
        return Err(IngestError::RefusedOnForeignInstance(req.dataset.as_str()));
    }
    if req.profile.is_some() && req.dataset != Dataset::Trade {
        return Err(IngestError::BadRequest(
            "--profile only applies to trade loads".into(),
        ));
    }
    if req.exclusive && req.dataset != Dataset::Trade {
        return Err(IngestError::BadRequest(
            "--exclusive only applies to trade loads".into(),
        ));
    }
    let provider = validate_provider(req)?;
    let profile = match req.dataset {
        Dataset::Trade => Some(ProfileFile::resolve(
            req.profile.as_deref().unwrap_or("canonical"),
        )?),
        _ => None,
    };
    let inputs = resolve_inputs(req)?;

    // Held until the load is done, after the commit: the purge must not remove a kept file
    // this load is about to reference.
    let store = raw_store::lock(data_dir, raw_store::Access::Load).await?;
    // Hash and keep every raw file first: the digest decides whether this is a reload, and the
    // rows are then read from the kept copy, so what is stored is exactly what was loaded.
    let mut stored = Vec::with_capacity(inputs.files.len());
    let mut result = Ok(());
    for (name, path) in &inputs.files {
        match raw_store::keep(data_dir, path) {
            Ok(kept) => stored.push((name.clone(), kept)),
            Err(e) => {
                result = Err(IngestError::RawStore(e));
                break;
            }
        }
    }
    let result = match result {
        Ok(()) => {
            // The foreign instance holds US trade only pseudonymized (DESIGN §1): a raw US file
            // loaded there would be served to the partner in clear.
            let pseudonyms_only = instance == Instance::Foreign
                && provider.as_deref() == Some(crate::graphql::scope::US);
            load_kept(
                db,
                data_dir,
                req,
                provider,
                profile,
                pseudonyms_only,
                &stored,
            )
            .await
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        drop(store);
        forget_refused(db, data_dir, &stored).await;
    }
    result
}

/// The load once its raw files are kept: a no-op for content already loaded, else one batch.
async fn load_kept(
    db: &DatabaseConnection,
    data_dir: &Path,
    req: &LoadRequest,
    provider: Option<String>,
    profile: Option<ProfileFile>,
    pseudonyms_only: bool,
    stored: &[(String, raw_store::Stored)],
) -> Result<LoadOutcome, IngestError> {
    let sha256 = if stored.len() == 1 {
        stored[0].1.sha256.clone()
    } else {
        raw_store::digest_of_set(stored.iter().map(|(n, s)| (n.as_str(), s.sha256.as_str())))
    };
    if let Some(batch_id) = existing_batch(db, req.dataset, &sha256).await? {
        return Ok(LoadOutcome::AlreadyLoaded { batch_id, sha256 });
    }

    let file_name = stored
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let raw_path = stored
        .iter()
        .map(|(_, s)| s.relative_path.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut tx = LoadTx::begin(db).await?;
    let batch_id = match tx
        .insert_batch(&NewBatch {
            dataset: req.dataset.as_str(),
            file_name: &file_name,
            sha256: &sha256,
            as_of: req.as_of.unwrap_or_else(|| Utc::now().date_naive()),
            provider_country: provider.as_deref(),
            profile: profile.as_ref().map(|p| p.name.as_str()),
            loaded_by: &req.loaded_by,
            loaded_at: Utc::now(),
            raw_path: &raw_path,
        })
        .await
    {
        Ok(id) => id,
        // Another process committed the same file between our check and our insert.
        Err(e) if is_unique_violation(&e) => {
            drop(tx);
            let batch_id = existing_batch(db, req.dataset, &sha256)
                .await?
                .ok_or(IngestError::Database(e))?;
            return Ok(LoadOutcome::AlreadyLoaded { batch_id, sha256 });
        }
        Err(e) => return Err(e.into()),
    };

    let files: Vec<(String, PathBuf)> = stored
        .iter()
        .map(|(n, s)| (n.clone(), data_dir.join(&s.relative_path)))
        .collect();
    let total_bytes = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut job = Job {
        tx,
        batch_id,
        accepted: 0,
        per_file: Vec::new(),
        rejections: RejectionLog::default(),
        staged: 0,
        progress: Progress::new(total_bytes),
    };
    // The peer groups this load changes: their profiles are recomputed after the commit.
    let mut touched_hs_codes: BTreeSet<String> = BTreeSet::new();
    // Whether the trade rows went in frozen; a large load whose rows did not is vacuumed.
    let mut frozen = false;
    let mut unread_columns = Vec::new();
    match req.dataset {
        Dataset::Trade => {
            let (name, path) = &files[0];
            let profile = profile
                .as_ref()
                .ok_or_else(|| IngestError::BadRequest("no profile".into()))?;
            let provider = provider.as_deref().unwrap_or_default();
            let mut input = CsvInput::open(path, name, true)?;
            let headers = input.headers()?;
            let bound = profile.bind(&headers)?;
            unread_columns = bound.unread(&headers);
            let table = Table {
                name: "trade_records",
                columns: &analysis::facts::TRADE_COLUMNS_WITH_FACTS,
            };
            let indexes = if req.exclusive {
                sink::Indexes::Rebuild
            } else {
                sink::Indexes::WhenEmpty
            };
            let mut deferred = job.tx.defer_indexes(table.name, indexes).await?;
            frozen = job.tx.frozen(table.name);
            let mut in_file = InFile::new(&repeats::TRADE, table.columns);
            job.stream(&mut input, &table, |r| {
                if pseudonyms_only {
                    bound.check_pseudonymized(&r.fields)?;
                }
                let mut row = bound.map(&r.fields, batch_id, r.line, provider)?;
                in_file.note(&row);
                if let Some(code) = analysis::facts::hs_code(&row)
                    && !touched_hs_codes.contains(code)
                {
                    touched_hs_codes.insert(code.to_owned());
                }
                analysis::facts::append(&mut row);
                Ok(row)
            })
            .await?;
            if !deferred.is_empty() || job.accepted >= ANALYZE_AFTER_ROWS {
                job.tx.analyze(table.name).await?;
            }
            // For the fills, and for the key check's grouping of the file's rows if it has to.
            job.tx
                .execute_on_postgres(analysis::rollup::set_fill_work_mem())
                .await?;
            job.reject_repeated_keys(&in_file, name).await?;
            // In the load's transaction: totals never see the rows without their sums.
            for rollup in analysis::rollup::ROLLUPS {
                deferred.extend(job.tx.defer_indexes(rollup.table, indexes).await?);
                job.tx
                    .execute_for_batch(rollup.fill(db.get_database_backend(), true), batch_id, &[])
                    .await?;
            }
            job.tx.restore_indexes(&deferred).await?;
        }
        Dataset::Financial | Dataset::Subjects => {
            let layout = if req.dataset == Dataset::Financial {
                &FINANCIAL
            } else {
                &SUBJECTS
            };
            let (name, path) = &files[0];
            unread_columns = load_fixed(&mut job, layout, name, path).await?;
        }
        Dataset::Sdn => job.load_sdn(&files).await?,
    }

    job.progress.finish();
    let rejections = job.store_rejections().await?;
    let Job {
        mut tx,
        accepted,
        per_file,
        ..
    } = job;
    if rejections.total > 0 && (req.strict || req.dataset == Dataset::Sdn) {
        // Dropping the transaction rolls back the batch row and every row written so far.
        drop(tx);
        return Err(if req.strict {
            IngestError::StrictRejected(rejections)
        } else {
            IngestError::SdnRejected(rejections)
        });
    }
    let rejected = i64::try_from(rejections.total).unwrap_or(i64::MAX);
    tx.finish_batch(batch_id, accepted, rejected).await?;
    tx.commit().await?;
    if req.dataset == Dataset::Trade && !frozen && accepted >= ANALYZE_AFTER_ROWS {
        // The rows are committed whatever happens here; a failed vacuum costs speed only.
        if let Err(e) = sink::vacuum(db, "trade_records").await {
            tracing::warn!(error = %e, "could not vacuum trade_records after the load");
        }
    }
    analysis::profile_store::refresh(db, &touched_hs_codes)
        .await
        .map_err(IngestError::Profiles)?;
    let span = tracing::Span::current();
    span.record("batch_id", batch_id);
    span.record("accepted", accepted);
    span.record("rejected", rejected);
    if !unread_columns.is_empty() {
        tracing::warn!(columns = ?unread_columns, "columns the layout does not read were not loaded");
    }
    Ok(LoadOutcome::Loaded {
        batch_id,
        sha256,
        accepted,
        per_file,
        rejections,
        unread_columns,
    })
}

/// A data set in a fixed layout (FinCEN reports, TECS records): the file's columns, the table
/// its rows go to, the key that names a row there, and the mapping of a record to a row.
struct FixedLayout {
    columns: &'static [&'static str],
    required: &'static [&'static str],
    table: Table,
    key: &'static repeats::Key,
    map: fn(&HeaderIndex, &input::Record, i64) -> Result<Vec<Cell>, String>,
}

const FINANCIAL: FixedLayout = FixedLayout {
    columns: financial::COLUMNS,
    required: financial::REQUIRED,
    table: Table {
        name: repeats::FINANCIAL.table,
        columns: financial::TABLE_COLUMNS,
    },
    key: &repeats::FINANCIAL,
    map: financial::map,
};

const SUBJECTS: FixedLayout = FixedLayout {
    columns: subjects::COLUMNS,
    required: subjects::REQUIRED,
    table: Table {
        name: repeats::SUBJECTS.table,
        columns: subjects::TABLE_COLUMNS,
    },
    key: &repeats::SUBJECTS,
    map: subjects::map,
};

/// Streams a fixed-layout file into its table, rejecting the rows that repeat a key; returns
/// the header's columns the layout does not read.
async fn load_fixed(
    job: &mut Job,
    layout: &FixedLayout,
    name: &str,
    path: &Path,
) -> Result<Vec<String>, IngestError> {
    let mut input = CsvInput::open(path, name, true)?;
    let headers = input.headers()?;
    let index = HeaderIndex::bind(name, &headers, layout.columns, layout.required)?;
    let batch_id = job.batch_id;
    let mut in_file = InFile::new(layout.key, layout.table.columns);
    job.stream(&mut input, &layout.table, |r| {
        let row = (layout.map)(&index, r, batch_id)?;
        in_file.note(&row);
        Ok(row)
    })
    .await?;
    if job.accepted >= ANALYZE_AFTER_ROWS {
        job.tx.analyze(layout.table.name).await?;
    }
    job.reject_repeated_keys(&in_file, name).await?;
    Ok(index.unread(&headers))
}

/// Removes a refused load's raw copies: no batch names them, so the purge never would, and a
/// refused subjects file may hold a victim's record (DESIGN §3: never stored). A copy stays
/// when a batch that is not purged has the same content (the store is content-addressed). Done
/// under the purge's lock, which waits for every load between keeping its files and its
/// commit, so no load about to reference a copy loses it.
async fn forget_refused(
    db: &DatabaseConnection,
    data_dir: &Path,
    stored: &[(String, raw_store::Stored)],
) {
    use entities::batch;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let removed = async {
        let _store = raw_store::lock(data_dir, raw_store::Access::Purge).await?;
        for (_, kept) in stored {
            let used = batch::Entity::find()
                .filter(batch::Column::RawPath.contains(&kept.relative_path))
                .filter(batch::Column::PurgedAt.is_null())
                .one(db)
                .await?
                .is_some();
            if used {
                continue;
            }
            match std::fs::remove_file(data_dir.join(&kept.relative_path)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok::<(), IngestError>(())
    }
    .await;
    if let Err(e) = removed {
        tracing::warn!(
            error = %e,
            "could not remove the refused load's raw copy from the raw store; no purge will"
        );
    }
}

async fn existing_batch(
    db: &DatabaseConnection,
    dataset: Dataset,
    sha256: &str,
) -> Result<Option<i64>, IngestError> {
    use entities::batch;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    // A purged batch no longer holds the data, so the same file may be loaded again (the
    // unique index on `(dataset, sha256)` only covers batches that are not purged).
    let found = batch::Entity::find()
        .filter(batch::Column::Dataset.eq(dataset.as_str()))
        .filter(batch::Column::Sha256.eq(sha256))
        .filter(batch::Column::PurgedAt.is_null())
        .one(db)
        .await?;
    Ok(found.map(|b| b.id))
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
