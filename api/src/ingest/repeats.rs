//! Rows that repeat a key: a declaration line, a FinCEN report or a TECS record delivered twice.
//!
//! DESIGN §3 makes a file loaded twice a no-op, but the digest recognises only a byte-identical
//! file. A re-export of the same data (other line endings, one corrected row) would load every
//! row again, and totals, price anomalies and trade-vs-money would count each one twice. So
//! each data set names the key that identifies one of its rows, and a load rejects, with its
//! line and reason (the whole load with `--strict`):
//! - a row whose key an earlier line of the same file has. A FinCEN report is the exception:
//!   the layout has a row per transaction, so one report may fill several lines;
//! - a row whose key a batch already loaded has. Which version stands is the operator's
//!   choice, made by purging the batch a delivery corrects before loading it
//!   (`dartts purge --batch`, audited), not the loader's.
//!
//! The file's keys are kept as 128-bit digests with their lines (32 bytes a row; 40 to 70 with
//! the hash table's slack as it doubles); the rows themselves still stream.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, Write};

use xxhash_rust::xxh3::Xxh3;

use super::job::Job;
use super::sink::Cell;
use super::{ANALYZE_AFTER_ROWS, IngestError};

/// What identifies one row of a data set.
#[derive(Debug)]
pub(super) struct Key {
    pub table: &'static str,
    /// The key's columns, as `table` names them; every one is a required field.
    pub columns: &'static [&'static str],
    /// Whether one file may hold several rows with the key.
    pub repeats_in_file: bool,
    /// The key as a rejection names it.
    pub what: &'static str,
}

/// A declaration line of one providing nation: two nations may number declarations alike.
pub(super) const TRADE: Key = Key {
    table: "trade_records",
    columns: &["provider_country", "declaration_id", "line_number"],
    repeats_in_file: false,
    what: "declaration line (declaration_id and line_number)",
};

pub(super) const FINANCIAL: Key = Key {
    table: "financial_transactions",
    columns: &["report_id"],
    repeats_in_file: true,
    what: "report (report_id)",
};

pub(super) const SUBJECTS: Key = Key {
    table: "subject_records",
    columns: &["record_id"],
    repeats_in_file: false,
    what: "record (record_id)",
};

type Digest = [u64; 2];

/// The lines of a file's rows with one key, in file order.
#[derive(Debug)]
enum Lines {
    One(u64),
    #[expect(
        clippy::box_collection,
        reason = "boxed, an entry is 16 bytes where a Vec would make it 32, and the map holds \
                  one per row of the file; several lines are the rare case"
    )]
    Many(Box<Vec<u64>>),
}

/// The keys of the rows a load has accepted so far, with their lines.
#[derive(Debug)]
pub(super) struct Seen {
    key: &'static Key,
    /// Where each key column is in the rows the load writes.
    positions: Vec<usize>,
    lines: HashMap<Digest, Lines>,
}

impl Seen {
    /// `columns` are the columns of the rows the load writes, in order.
    pub(super) fn new(key: &'static Key, columns: &[&str]) -> Self {
        let positions = key
            .columns
            .iter()
            .map(|k| columns.iter().position(|c| c == k).unwrap_or(usize::MAX))
            .collect();
        Seen {
            key,
            positions,
            lines: HashMap::new(),
        }
    }

    /// Notes the row read from `line`; refuses it when an earlier line has its key and the
    /// data set allows no repeat within a file.
    pub(super) fn note(&mut self, row: &[Cell], line: u64) -> Result<(), String> {
        let mut digest = Digester::default();
        for position in &self.positions {
            match row.get(*position) {
                Some(Cell::Text(s)) => digest.part(s.as_bytes()),
                Some(Cell::Int(i)) => digest.int(*i),
                // Key columns are required text or integers; anything else matches no key.
                _ => digest.part(&[]),
            }
        }
        match self.lines.entry(digest.finish()) {
            Entry::Vacant(new) => {
                new.insert(Lines::One(line));
                Ok(())
            }
            Entry::Occupied(mut earlier) => match earlier.get_mut() {
                Lines::One(first) if !self.key.repeats_in_file => Err(format!(
                    "repeats the {} of line {first}; a file holds each once",
                    self.key.what
                )),
                Lines::One(first) => {
                    let first = *first;
                    earlier.insert(Lines::Many(Box::new(vec![first, line])));
                    Ok(())
                }
                Lines::Many(all) => {
                    all.push(line);
                    Ok(())
                }
            },
        }
    }

    /// The line of the `nth` row (from 0, in file order) with the key made of `parts`.
    fn line(&self, parts: &[String], nth: usize) -> Option<u64> {
        match self.lines.get(&digest(parts))? {
            Lines::One(line) => (nth == 0).then_some(*line),
            Lines::Many(all) => all.get(nth).copied(),
        }
    }
}

/// A key's digest: each part length-prefixed, so no two keys run together alike. An integer
/// is digested as its decimal text, as the database gives it back (`CAST(… AS TEXT)`).
#[derive(Default)]
struct Digester(Xxh3);

impl Digester {
    fn part(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn int(&mut self, value: i64) {
        // i64::MIN is 20 characters; formatted on the stack, as this runs for every row.
        let mut buf = [0u8; 24];
        let mut text = io::Cursor::new(&mut buf[..]);
        let written = write!(text, "{value}")
            .ok()
            .and_then(|()| usize::try_from(text.position()).ok())
            .unwrap_or_default();
        self.part(&buf[..written]);
    }

    fn finish(self) -> Digest {
        let d = self.0.digest128();
        [(d >> 64) as u64, d as u64]
    }
}

fn digest(parts: &[String]) -> Digest {
    let mut digest = Digester::default();
    for part in parts {
        digest.part(part.as_bytes());
    }
    digest.finish()
}

/// `o` has the same key as `n`, in another batch.
fn same_key_elsewhere(key: &Key, n: &str) -> String {
    let mut cond: Vec<String> = key
        .columns
        .iter()
        .map(|c| format!("o.{c} = {n}.{c}"))
        .collect();
    cond.push("o.batch_id <> $1".into());
    format!(
        "EXISTS (SELECT 1 FROM {} o WHERE {})",
        key.table,
        cond.join(" AND ")
    )
}

/// The batch's rows whose key another batch has: the earliest such batch, then the key's
/// columns as text, in the order the rows were written.
fn loaded_elsewhere_sql(key: &Key) -> String {
    let matches: Vec<String> = key
        .columns
        .iter()
        .map(|c| format!("o.{c} = n.{c}"))
        .collect();
    let parts: Vec<String> = key
        .columns
        .iter()
        .map(|c| format!("CAST(n.{c} AS TEXT)"))
        .collect();
    format!(
        "SELECT CAST((SELECT MIN(o.batch_id) FROM {t} o WHERE {m} AND o.batch_id <> $1) AS BIGINT), \
         {p} FROM {t} n WHERE n.batch_id = $1 AND {e} ORDER BY n.id",
        t = key.table,
        m = matches.join(" AND "),
        p = parts.join(", "),
        e = same_key_elsewhere(key, "n"),
    )
}

fn delete_sql(key: &Key) -> String {
    format!(
        "DELETE FROM {t} WHERE batch_id = $1 AND {e}",
        t = key.table,
        e = same_key_elsewhere(key, key.table),
    )
}

impl Job {
    /// Rejects the batch's rows whose key an earlier batch loaded, and takes them out again.
    /// Runs after the file's rows are written and before anything is derived from them (the
    /// trade rollups); `file` is the one file they came from.
    pub(super) async fn reject_loaded_keys(
        &mut self,
        seen: &Seen,
        file: &str,
    ) -> Result<(), IngestError> {
        let key = seen.key;
        // Two loads of one data set check in turn, each after the other's commit: otherwise
        // neither would see the other's rows, and both copies would stay.
        self.tx.lock_for_keys(key.table).await?;
        // A large batch has had its statistics gathered (`ANALYZE_AFTER_ROWS`); for a small
        // one the planner still goes by the table's from before it, so it probes the key's
        // index instead, which costs less than gathering them.
        self.tx
            .prefer_indexes(self.accepted < ANALYZE_AFTER_ROWS)
            .await?;
        let found = self
            .tx
            .fetch_for_batch(loaded_elsewhere_sql(key), key.columns.len(), self.batch_id)
            .await?;
        if !found.is_empty() {
            self.take_out(seen, file, &found).await?;
        }
        self.tx.prefer_indexes(false).await?;
        Ok(())
    }

    /// Rejects the rows `reject_loaded_keys` found, with their lines, and deletes them.
    async fn take_out(
        &mut self,
        seen: &Seen,
        file: &str,
        found: &[(i64, Vec<String>)],
    ) -> Result<(), IngestError> {
        let key = seen.key;
        let mut nth: HashMap<Digest, usize> = HashMap::new();
        for (earlier, parts) in found {
            let n = nth.entry(digest(parts)).or_default();
            // Every row written was noted; a line not found would be a loader defect.
            let line = seen.line(parts, *n).unwrap_or_default();
            *n += 1;
            self.reject(
                file,
                line,
                format!(
                    "the same {} was loaded by batch {earlier}; purge that batch first to load \
                     this row in its place",
                    key.what
                ),
            );
        }
        self.tx
            .execute_for_batch(delete_sql(key), self.batch_id)
            .await?;
        let removed = i64::try_from(found.len()).unwrap_or(i64::MAX);
        self.accepted -= removed;
        if let Some((_, count)) = self.per_file.last_mut() {
            *count -= removed;
        }
        self.rejections.sort_by_key(|r| r.line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(declaration: &str, line_number: i64) -> Vec<Cell> {
        vec![
            Cell::Int(7),
            Cell::Text("KR".into()),
            Cell::Text(declaration.into()),
            Cell::Int(line_number),
        ]
    }

    const COLUMNS: &[&str] = &[
        "batch_id",
        "provider_country",
        "declaration_id",
        "line_number",
    ];

    #[test]
    fn a_file_repeating_a_declaration_line_is_refused_from_the_second() {
        let mut seen = Seen::new(&TRADE, COLUMNS);
        assert_eq!(seen.note(&row("D1", 1), 2), Ok(()));
        assert_eq!(seen.note(&row("D1", 2), 3), Ok(()));
        assert_eq!(seen.note(&row("D2", 1), 4), Ok(()));
        let err = seen.note(&row("D1", 2), 9).unwrap_err();
        assert!(err.contains("of line 3"), "{err}");
        assert_eq!(
            seen.line(&["KR".into(), "D1".into(), "2".into()], 0),
            Some(3)
        );
    }

    #[test]
    fn a_report_may_fill_several_lines_and_each_is_found_in_order() {
        let columns = &["batch_id", "report_id"];
        let mut seen = Seen::new(&FINANCIAL, columns);
        for line in [2, 5, 8] {
            let report = vec![Cell::Int(1), Cell::Text("R1".into())];
            assert_eq!(seen.note(&report, line), Ok(()));
        }
        let key = ["R1".to_owned()];
        assert_eq!(
            (0..4).map(|n| seen.line(&key, n)).collect::<Vec<_>>(),
            [Some(2), Some(5), Some(8), None]
        );
    }

    #[test]
    fn an_integer_is_digested_as_the_database_writes_it() {
        for value in [0, 7, -12, i64::MAX, i64::MIN] {
            let mut digest = Digester::default();
            digest.int(value);
            assert_eq!(digest.finish(), super::digest(&[value.to_string()]));
        }
    }

    /// A key column missing from its table's rows would digest as empty, and every row after
    /// the first would look like a repeat.
    #[test]
    fn every_key_column_is_one_the_load_writes() {
        for (key, columns) in [
            (&TRADE, super::super::profile::TRADE_COLUMNS),
            (&FINANCIAL, super::super::financial::TABLE_COLUMNS),
            (&SUBJECTS, super::super::subjects::TABLE_COLUMNS),
        ] {
            let seen = Seen::new(key, columns);
            assert!(seen.positions.iter().all(|p| *p < columns.len()), "{key:?}");
        }
    }

    #[test]
    fn a_key_costs_32_bytes_before_the_map_s_own() {
        assert_eq!(std::mem::size_of::<(Digest, Lines)>(), 32);
    }

    #[test]
    fn parts_do_not_run_together() {
        assert_ne!(
            digest(&["ab".into(), "c".into()]),
            digest(&["a".into(), "bc".into()])
        );
    }

    #[test]
    fn the_statements_match_on_every_key_column_in_other_batches() {
        let select = loaded_elsewhere_sql(&TRADE);
        for column in TRADE.columns {
            assert!(
                select.contains(&format!("o.{column} = n.{column}")),
                "{select}"
            );
        }
        let delete = delete_sql(&SUBJECTS);
        assert!(
            delete.contains("o.record_id = subject_records.record_id AND o.batch_id <> $1"),
            "{delete}"
        );
    }
}
