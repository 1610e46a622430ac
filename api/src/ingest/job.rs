//! One running load: its transaction, the batch it fills, and the rows it has accepted and
//! refused so far, streamed file by file in chunks.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::input::{self, CsvInput};
use super::progress::Progress;
use super::rejection_log::RejectionLog;
use super::repeats::STAGED;
use super::sink::{Cell, LoadTx, Table};
use super::{CHUNK_ROWS, IngestError, REJECTIONS_SHOWN, Rejection, Rejections, sdn};

/// The state of one running load.
pub(super) struct Job {
    pub(super) tx: LoadTx,
    pub(super) batch_id: i64,
    pub(super) accepted: i64,
    pub(super) per_file: Vec<(String, i64)>,
    /// Rejections found while reading, in file order.
    pub(super) rejections: RejectionLog,
    /// Rejections the key check left in the database (`repeats::STAGED`).
    pub(super) staged: i64,
    pub(super) progress: Progress,
}

impl Job {
    /// Reads every record of `input`, maps it, and writes accepted rows in chunks.
    pub(super) async fn stream<F>(
        &mut self,
        input: &mut CsvInput,
        table: &Table,
        mut map: F,
    ) -> Result<(), IngestError>
    where
        F: FnMut(&input::Record) -> Result<Vec<Cell>, String>,
    {
        let before = self.accepted;
        let Job {
            tx,
            accepted,
            rejections,
            per_file,
            progress,
            ..
        } = self;
        let mut writer = tx.writer(table).await?;
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        let streamed: Result<(), IngestError> = async {
            while let Some(next) = input.next_record()? {
                match next.and_then(|record| map(&record).map_err(|reason| (record.line, reason))) {
                    Ok(row) => chunk.push(row),
                    Err((line, reason)) => rejections.add(input.file_name(), line, reason)?,
                }
                if chunk.len() == CHUNK_ROWS {
                    writer.write(&chunk).await?;
                    *accepted += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
                    chunk.clear();
                    let read = u64::try_from(*accepted).unwrap_or_default() + rejections.len();
                    progress.update(read, input.bytes_read());
                }
            }
            writer.write(&chunk).await?;
            *accepted += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            Ok(())
        }
        .await;
        match streamed {
            Ok(()) => {
                writer.finish().await?;
                progress.file_done(input.bytes_read());
            }
            Err(err) => {
                // The transaction is rolled back by the caller; the connection stays usable.
                let _ = writer.abort("load failed").await;
                return Err(err);
            }
        }
        per_file.push((input.file_name().to_owned(), *accepted - before));
        Ok(())
    }

    /// Writes every rejection of the load to `batch_rejections` in file order (the order
    /// `Batch.rejections` reads them in), and returns how many there are with the first
    /// `REJECTIONS_SHOWN`. Those the key check staged are merged in the database, so they never
    /// pass through the loader's memory.
    pub(super) async fn store_rejections(&mut self) -> Result<Rejections, IngestError> {
        let read = std::mem::take(&mut self.rejections);
        let total = u64::try_from(self.staged).unwrap_or_default() + read.len();
        let into = if self.staged == 0 {
            "batch_rejections"
        } else {
            STAGED
        };
        let table = Table {
            name: into,
            columns: &["batch_id", "file_name", "line_number", "reason"],
        };
        let first = read.first().to_vec();
        let mut chunks = read.into_chunks().map_err(IngestError::RejectionLog)?;
        while let Some(chunk) = chunks.next_chunk().map_err(IngestError::RejectionLog)? {
            let rows: Vec<Vec<Cell>> = chunk
                .into_iter()
                .map(|r| {
                    vec![
                        Cell::Int(self.batch_id),
                        Cell::Text(r.file),
                        Cell::from(r.line),
                        Cell::Text(r.reason),
                    ]
                })
                .collect();
            self.tx.write(&table, &rows).await?;
        }
        if self.staged == 0 {
            return Ok(Rejections { total, first });
        }
        let columns = "batch_id, file_name, line_number, reason";
        self.tx
            .execute_for_batch(
                format!(
                    "INSERT INTO batch_rejections ({columns}) SELECT {columns} FROM {STAGED} \
                     WHERE batch_id = $1 ORDER BY line_number"
                ),
                self.batch_id,
                &[],
            )
            .await?;
        let first: Vec<(String, i64, String)> = self
            .tx
            .fetch_for_batch(
                format!(
                    "SELECT file_name, line_number, reason FROM {STAGED} WHERE batch_id = $1 \
                     ORDER BY line_number LIMIT {REJECTIONS_SHOWN}"
                ),
                self.batch_id,
            )
            .await?;
        let first = first
            .into_iter()
            .map(|(file, line, reason)| Rejection {
                file,
                line: u64::try_from(line).unwrap_or_default(),
                reason,
            })
            .collect();
        Ok(Rejections { total, first })
    }

    /// sdn.csv first (with comments folded into remarks), then addresses and aliases, which may
    /// only refer to entries of this same list (`refresh::verify` made sure all four are here).
    pub(super) async fn load_sdn(
        &mut self,
        files: &[(String, PathBuf)],
    ) -> Result<(), IngestError> {
        let batch_id = self.batch_id;
        let mut continuations: HashMap<i64, String> = HashMap::new();
        // The line of each entry's first continuation, to name it if the entry is missing.
        let mut first_lines: HashMap<i64, u64> = HashMap::new();
        if let Some((name, path)) = files.iter().find(|(n, _)| n == "sdn_comments.csv") {
            let mut input = CsvInput::open(path, name, false)?;
            while let Some(next) = input.next_record()? {
                match next.and_then(|r| {
                    sdn::comment(&r.fields)
                        .map(|c| (r.line, c))
                        .map_err(|e| (r.line, e))
                }) {
                    Ok((line, (ent, text))) => {
                        first_lines.entry(ent).or_insert(line);
                        continuations.entry(ent).or_default().push_str(&text);
                    }
                    Err((line, reason)) => self.rejections.add(name, line, reason)?,
                }
            }
            self.progress.file_done(input.bytes_read());
        }

        let mut known: HashSet<i64> = HashSet::new();
        let (name, path) = &files[0];
        let mut input = CsvInput::open(path, name, false)?;
        let table = Table {
            name: "sdn_entries",
            columns: sdn::ENTRY_COLUMNS,
        };
        self.stream(&mut input, &table, |r| {
            let (ent, cells) = sdn::entry(&r.fields, batch_id, &continuations)?;
            if !known.insert(ent) {
                return Err(format!("ent_num {ent} appears twice in sdn.csv"));
            }
            Ok(cells)
        })
        .await?;
        let mut orphans: Vec<(u64, i64)> = first_lines
            .into_iter()
            .filter(|(ent, _)| !known.contains(ent))
            .map(|(ent, line)| (line, ent))
            .collect();
        orphans.sort_unstable();
        for (line, ent) in orphans {
            self.rejections.add(
                "sdn_comments.csv",
                line,
                format!("ent_num {ent} is not in sdn.csv"),
            )?;
        }

        for (file, table, mapper) in [
            (
                "add.csv",
                Table {
                    name: "sdn_addresses",
                    columns: sdn::ADDRESS_COLUMNS,
                },
                sdn::address as fn(&[String], i64, &HashSet<i64>) -> Result<Vec<Cell>, String>,
            ),
            (
                "alt.csv",
                Table {
                    name: "sdn_aliases",
                    columns: sdn::ALIAS_COLUMNS,
                },
                sdn::alias,
            ),
        ] {
            if let Some((name, path)) = files.iter().find(|(n, _)| n == file) {
                let mut input = CsvInput::open(path, name, false)?;
                self.stream(&mut input, &table, |r| mapper(&r.fields, batch_id, &known))
                    .await?;
            }
        }
        Ok(())
    }
}
