//! The rows a load refuses while reading its files, kept in file order until the rows' `COPY`
//! has closed and they can be written to `batch_rejections`.
//!
//! They cannot go to the database as they are found: the load's one transaction is busy with
//! the open `COPY` of the accepted rows, and only it may write them (a batch and its
//! rejections commit together or not at all). Held in memory, each cost about 0.3 kB, so a
//! file of a million unparseable rows needed about 300 MB. Past one chunk they wait in an
//! anonymous temporary file instead (deleted by the system even if the process dies), so the
//! loader's memory stays flat whatever the file holds; the disk holds about 0.1 kB a row.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom};

use super::{CHUNK_ROWS, IngestError, REJECTIONS_SHOWN, Rejection};

/// Rejections in the order they were found: the earlier ones in a temporary file once more
/// than a chunk has been found, the latest in memory.
#[derive(Default)]
pub(super) struct RejectionLog {
    count: u64,
    /// The first `REJECTIONS_SHOWN`, for the load's report.
    first: Vec<Rejection>,
    /// The latest, fewer than `CHUNK_ROWS`.
    recent: Vec<Rejection>,
    spilled: Option<csv::Writer<BufWriter<File>>>,
}

impl RejectionLog {
    /// Records that `file`'s `line` was refused for `reason`.
    pub(super) fn add(&mut self, file: &str, line: u64, reason: String) -> Result<(), IngestError> {
        self.push(Rejection {
            file: file.to_owned(),
            line,
            reason,
        })
        .map_err(IngestError::RejectionLog)
    }

    fn push(&mut self, rejection: Rejection) -> std::io::Result<()> {
        self.count += 1;
        if self.first.len() < REJECTIONS_SHOWN {
            self.first.push(rejection.clone());
        }
        self.recent.push(rejection);
        if self.recent.len() >= CHUNK_ROWS {
            let spilled = match &mut self.spilled {
                Some(spilled) => spilled,
                None => self.spilled.insert(
                    csv::WriterBuilder::new()
                        .has_headers(false)
                        .from_writer(BufWriter::new(tempfile::tempfile()?)),
                ),
            };
            for r in self.recent.drain(..) {
                spilled
                    .write_record([r.file.as_str(), &r.line.to_string(), r.reason.as_str()])
                    .map_err(std::io::Error::other)?;
            }
        }
        Ok(())
    }

    pub(super) fn len(&self) -> u64 {
        self.count
    }

    /// The first `REJECTIONS_SHOWN`, in the order found.
    pub(super) fn first(&self) -> &[Rejection] {
        &self.first
    }

    /// Every rejection in the order found, a chunk at a time.
    pub(super) fn into_chunks(self) -> std::io::Result<Chunks> {
        let spilled = match self.spilled {
            Some(spilled) => {
                let mut file = spilled
                    .into_inner()
                    .map_err(|e| e.into_error())?
                    .into_inner()
                    .map_err(std::io::IntoInnerError::into_error)?;
                file.seek(SeekFrom::Start(0))?;
                Some(
                    csv::ReaderBuilder::new()
                        .has_headers(false)
                        .from_reader(BufReader::new(file))
                        .into_deserialize(),
                )
            }
            None => None,
        };
        Ok(Chunks {
            spilled,
            recent: Some(self.recent),
        })
    }
}

type Spilled = csv::DeserializeRecordsIntoIter<BufReader<File>, (String, u64, String)>;

/// `RejectionLog::into_chunks`: the spilled rejections, then those held in memory.
pub(super) struct Chunks {
    spilled: Option<Spilled>,
    recent: Option<Vec<Rejection>>,
}

impl Chunks {
    /// The next at most `CHUNK_ROWS` rejections, or `None` after the last.
    pub(super) fn next_chunk(&mut self) -> std::io::Result<Option<Vec<Rejection>>> {
        if let Some(spilled) = &mut self.spilled {
            let chunk = spilled
                .by_ref()
                .take(CHUNK_ROWS)
                .map(|row| {
                    row.map(|(file, line, reason)| Rejection { file, line, reason })
                        .map_err(std::io::Error::other)
                })
                .collect::<std::io::Result<Vec<_>>>()?;
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
            self.spilled = None;
        }
        Ok(self.recent.take().filter(|r| !r.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(i: u64) -> Rejection {
        Rejection {
            file: format!("part {}.csv", i / 7_000),
            line: i + 2,
            // What the reasons quote from a row: separators, quotes, line breaks, any script.
            reason: format!("value \"{i},\n\u{41f}\u{443}\u{442}\u{438}\u{43d}\" is not a date"),
        }
    }

    fn read_back(log: RejectionLog) -> Vec<Vec<Rejection>> {
        let mut chunks = log.into_chunks().unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = chunks.next_chunk().unwrap() {
            out.push(chunk);
        }
        out
    }

    #[test]
    fn every_rejection_comes_back_whole_in_the_order_found() {
        for n in [0, 1, CHUNK_ROWS as u64 - 1, CHUNK_ROWS as u64, 12_345] {
            let mut log = RejectionLog::default();
            let sent: Vec<Rejection> = (0..n).map(rejection).collect();
            for r in &sent {
                log.push(r.clone()).unwrap();
            }
            assert_eq!(log.len(), n);
            assert_eq!(log.first(), &sent[..sent.len().min(REJECTIONS_SHOWN)]);
            let chunks = read_back(log);
            assert!(
                chunks
                    .iter()
                    .all(|c| !c.is_empty() && c.len() <= CHUNK_ROWS)
            );
            assert_eq!(chunks.concat(), sent, "{n}");
        }
    }

    #[test]
    fn only_the_latest_chunk_stays_in_memory() {
        let mut log = RejectionLog::default();
        for i in 0..3 * CHUNK_ROWS as u64 + 10 {
            log.push(rejection(i)).unwrap();
            assert!(log.recent.len() < CHUNK_ROWS);
        }
        assert!(log.spilled.is_some());
        assert_eq!(log.recent.len(), 10);
    }
}
