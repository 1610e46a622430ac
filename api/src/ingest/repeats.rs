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
//! Both are found by the database once the rows are written, each row with the line it was read
//! from (`source_line`), so the loader's memory stays flat whatever the file's size. Finding a
//! file's own repeats means grouping all its rows (0.8 s for a million); a fixed-size Bloom
//! filter over the keys read tells when a file cannot have any, and then that statement is
//! skipped.

use fastbloom::BloomFilter;
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

/// Bits of the filter over a file's keys: 16 MiB, whatever the file's size.
const FILTER_BITS: usize = 1 << 27;

/// Bits set per key. With `FILTER_BITS`, a file of distinct keys passes as free of repeats,
/// by the usual estimate, in all but 0.1 % of loads up to 2M rows, 97 % at 3M, 59 % at 4M and
/// 1 % at 5M; the database checks the others. An insert costs 0.2 µs at any of 6–10 bits, the
/// memory's latency, not the count.
const FILTER_HASHES: u32 = 10;

/// The keys of a file's rows read so far, as far as telling whether two may be the same.
pub(super) struct InFile {
    key: &'static Key,
    /// Where each key column is in the rows the load writes.
    positions: Vec<usize>,
    /// `None` when the data set allows a key on several lines of one file.
    filter: Option<BloomFilter>,
    /// Whether a key read may have been read before: only then does the database look.
    maybe_repeats: bool,
}

impl InFile {
    /// `columns` are the columns of the rows the load writes, in order.
    pub(super) fn new(key: &'static Key, columns: &[&str]) -> Self {
        let positions = key
            .columns
            .iter()
            .map(|k| columns.iter().position(|c| c == k).unwrap_or(usize::MAX))
            .collect();
        InFile {
            key,
            positions,
            filter: (!key.repeats_in_file)
                .then(|| BloomFilter::with_num_bits(FILTER_BITS).hashes(FILTER_HASHES)),
            maybe_repeats: false,
        }
    }

    /// Notes the key of a row the load writes.
    pub(super) fn note(&mut self, row: &[Cell]) {
        if let Some(filter) = &mut self.filter {
            self.maybe_repeats |= filter.insert_hash(digest(&self.positions, row));
        }
    }
}

/// The key of `row`, whose columns are at `positions`, as a 64-bit digest.
fn digest(positions: &[usize], row: &[Cell]) -> u64 {
    let mut digest = Xxh3::new();
    for position in positions {
        // Each part length-prefixed, so that no two keys run together alike.
        let int;
        let part: &[u8] = match row.get(*position) {
            Some(Cell::Text(s)) => s.as_bytes(),
            Some(Cell::Int(i)) => {
                int = i.to_le_bytes();
                &int
            }
            // Key columns are required text or integers; anything else matches no key.
            _ => &[],
        };
        digest.update(&(part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    digest.digest()
}

/// Row `a` has the same key as row `b`.
fn same_key(key: &Key, a: &str, b: &str) -> String {
    let columns: Vec<String> = key
        .columns
        .iter()
        .map(|c| format!("{a}.{c} = {b}.{c}"))
        .collect();
    columns.join(" AND ")
}

/// The keys that more than one of the batch's rows have, with the first line of each.
fn repeated_keys(key: &Key) -> String {
    let columns = key.columns.join(", ");
    format!(
        "SELECT {columns}, MIN(source_line) AS first_line FROM {t} WHERE batch_id = $1 \
         GROUP BY {columns} HAVING COUNT(*) > 1",
        t = key.table,
    )
}

/// Whether the batch's file repeats a key: 0 or 1.
fn repeats_in_file_sql(key: &Key) -> String {
    format!("SELECT COUNT(*) FROM ({} LIMIT 1) d", repeated_keys(key))
}

/// The batch's rows whose key an earlier line of its file has: each one's id and line, then
/// the first line with the key, in file order.
fn repeated_in_file_sql(key: &Key) -> String {
    format!(
        "SELECT n.id, n.source_line, d.first_line FROM ({r}) d JOIN {t} n ON {on} \
         WHERE n.batch_id = $1 AND n.source_line > d.first_line ORDER BY n.source_line",
        r = repeated_keys(key),
        t = key.table,
        on = same_key(key, "n", "d"),
    )
}

/// The batch's rows whose key another batch has: each one's id and line, then the earliest
/// such batch, in file order.
fn loaded_elsewhere_sql(key: &Key) -> String {
    format!(
        "SELECT n.id, n.source_line, CAST((SELECT MIN(o.batch_id) FROM {t} o WHERE {same} AND \
         o.batch_id <> $1) AS BIGINT) FROM {t} n WHERE n.batch_id = $1 AND EXISTS (SELECT 1 \
         FROM {t} o WHERE {same} AND o.batch_id <> $1) ORDER BY n.source_line",
        t = key.table,
        same = same_key(key, "o", "n"),
    )
}

/// Where the rows a check finds wait to be rejected and deleted: each row's id and line, and
/// the line or batch it repeats.
const FOUND: &str = "load_repeats";

/// Where a load's rejections wait, in any order, until `Job::store_rejections` writes them to
/// `batch_rejections` in file order.
pub(super) const STAGED: &str = "load_rejections";

impl Job {
    /// Rejects the batch's rows that repeat a key, an earlier line's of the file or an earlier
    /// batch's, and takes them out again. Runs after the file's rows are written and before
    /// anything is derived from them (the trade rollups); `file` is the one file they came from.
    pub(super) async fn reject_repeated_keys(
        &mut self,
        in_file: &InFile,
        file: &str,
    ) -> Result<(), IngestError> {
        let key = in_file.key;
        // Two loads of one data set check in turn, each after the other's commit: otherwise
        // neither would see the other's rows, and both copies would stay.
        self.tx.lock_for_keys(key.table).await?;
        // A large batch has had its statistics gathered (`ANALYZE_AFTER_ROWS`); for a small
        // one the planner still goes by the table's from before it, so it probes the key's
        // index instead, which costs less than gathering them.
        self.tx
            .prefer_indexes(self.accepted < ANALYZE_AFTER_ROWS)
            .await?;
        // The file's own repeats first: a row that both repeats an earlier line and was loaded
        // before is named for the line, and its first line for the batch. Whether there are
        // any is asked apart (0.8 s for a million rows): it is the usual answer to a filter's
        // false alarm, and naming the rows costs twice that.
        if in_file.maybe_repeats
            && self
                .tx
                .fetch_for_batch::<(i64,)>(repeats_in_file_sql(key), self.batch_id)
                .await?
                .first()
                .is_some_and(|(n,)| *n > 0)
        {
            let what = format!("repeats the {} of line ", key.what);
            self.take_out(
                file,
                key,
                repeated_in_file_sql(key),
                [&what, "; a file holds each once"],
            )
            .await?;
        }
        let what = format!("the same {} was loaded by batch ", key.what);
        self.take_out(
            file,
            key,
            loaded_elsewhere_sql(key),
            [
                &what,
                "; purge that batch first to load this row in its place",
            ],
        )
        .await?;
        self.tx.prefer_indexes(false).await?;
        Ok(())
    }

    /// Rejects the rows `find` selects, each `(id, line, what it repeats)`, with the reason
    /// `reason[0]`, what it repeats, `reason[1]`, and deletes them. All of it in the database: a
    /// file delivered again may repeat every one of its million rows, and a rejection held in
    /// the loader cost about 0.7 kB (a 300,000-row file delivered twice peaked at 335 MB).
    async fn take_out(
        &mut self,
        file: &str,
        key: &Key,
        find: String,
        reason: [&str; 2],
    ) -> Result<(), IngestError> {
        let tx = &mut self.tx;
        tx.temp_table(FOUND, "id BIGINT, line BIGINT, repeated BIGINT")
            .await?;
        let found = tx
            .execute_for_batch(
                format!("INSERT INTO {FOUND} (id, line, repeated) {find}"),
                self.batch_id,
                &[],
            )
            .await?;
        if found == 0 {
            return Ok(());
        }
        if self.staged == 0 {
            tx.temp_table(STAGED, REJECTION_COLUMNS).await?;
        }
        let staged = tx.execute_for_batch(
            format!(
                "INSERT INTO {STAGED} (batch_id, file_name, line_number, reason) SELECT $1, $2, \
                 line, $3 || CAST(repeated AS TEXT) || $4 FROM {FOUND}"
            ),
            self.batch_id,
            &[file, reason[0], reason[1]],
        )
        .await?;
        let removed = tx
            .execute_for_batch(
                format!(
                    "DELETE FROM {t} WHERE batch_id = $1 AND id IN (SELECT id FROM {FOUND})",
                    t = key.table
                ),
                self.batch_id,
                &[],
            )
            .await?;
        self.staged += i64::try_from(staged).unwrap_or(i64::MAX);
        let removed = i64::try_from(removed).unwrap_or(i64::MAX);
        self.accepted -= removed;
        if let Some((_, count)) = self.per_file.last_mut() {
            *count -= removed;
        }
        Ok(())
    }
}

/// The columns of `batch_rejections` a load writes, and of the table staging them.
const REJECTION_COLUMNS: &str = "batch_id BIGINT, file_name TEXT, line_number BIGINT, reason TEXT";

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
    fn only_a_key_read_before_sends_the_file_to_the_database() {
        let mut in_file = InFile::new(&TRADE, COLUMNS);
        for declaration in 0..10_000 {
            for line in 1..=3 {
                in_file.note(&row(&format!("D{declaration}"), line));
            }
        }
        assert!(!in_file.maybe_repeats);
        in_file.note(&row("D17", 2));
        assert!(in_file.maybe_repeats);
    }

    #[test]
    fn a_report_may_fill_several_lines_without_a_look() {
        let mut in_file = InFile::new(&FINANCIAL, &["batch_id", "report_id"]);
        for _ in 0..3 {
            in_file.note(&[Cell::Int(1), Cell::Text("R1".into())]);
        }
        assert!(!in_file.maybe_repeats);
    }

    #[test]
    fn parts_do_not_run_together() {
        let in_file = InFile::new(&TRADE, COLUMNS);
        let [a, b] = [["ab", "c"], ["a", "bc"]].map(|[country, declaration]| {
            digest(
                &in_file.positions,
                &[
                    Cell::Int(7),
                    Cell::Text(country.into()),
                    Cell::Text(declaration.into()),
                    Cell::Int(1),
                ],
            )
        });
        assert_ne!(a, b);
    }

    /// A key column missing from its table's rows would digest as empty, every row after the
    /// first would look like a repeat, and the statements would name a column that is not there.
    #[test]
    fn every_key_column_is_one_the_load_writes() {
        for (key, columns) in [
            (&TRADE, super::super::profile::TRADE_COLUMNS),
            (&FINANCIAL, super::super::financial::TABLE_COLUMNS),
            (&SUBJECTS, super::super::subjects::TABLE_COLUMNS),
        ] {
            let in_file = InFile::new(key, columns);
            assert!(
                in_file.positions.iter().all(|p| *p < columns.len()),
                "{key:?}"
            );
            assert!(columns.contains(&"source_line"), "{key:?}");
        }
    }

    #[test]
    fn the_statements_match_on_every_key_column() {
        let elsewhere = loaded_elsewhere_sql(&TRADE);
        let in_file = repeated_in_file_sql(&TRADE);
        for column in TRADE.columns {
            assert!(
                elsewhere.contains(&format!("o.{column} = n.{column}")),
                "{elsewhere}"
            );
            assert!(
                in_file.contains(&format!("n.{column} = d.{column}")),
                "{in_file}"
            );
        }
        let subjects = loaded_elsewhere_sql(&SUBJECTS);
        assert!(
            subjects.contains("o.record_id = n.record_id AND o.batch_id <> $1"),
            "{subjects}"
        );
        assert!(repeats_in_file_sql(&SUBJECTS).contains("GROUP BY record_id"));
    }
}
