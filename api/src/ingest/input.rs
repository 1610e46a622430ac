//! Reading untrusted CSV without trusting it: bounded line length, per-record UTF-8 checks,
//! physical line numbers for every record, and OFAC's trailing 0x1A byte tolerated.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

/// No legitimate record in any of our formats comes near this; a longer "line" is a corrupt or
/// hostile file, and reading it whole would let one file exhaust memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Byte offsets of newlines the CSV parser has read but whose records we have not numbered yet.
///
/// The csv crate counts record terminators, not physical lines, so a quoted field holding a
/// line break would shift every later line number. Operators fix files by line number in an
/// editor, so we count physical lines ourselves.
#[derive(Default)]
struct Newlines {
    pending: VecDeque<u64>,
    counted: u64,
}

impl Newlines {
    /// The 1-based physical line of the record starting at `offset` (offsets never go back).
    fn line_at(&mut self, offset: u64) -> u64 {
        // `<=`: after a CR the csv crate may report a record as starting on the LF that ends
        // the previous line.
        while self.pending.front().is_some_and(|nl| *nl <= offset) {
            self.pending.pop_front();
            self.counted += 1;
        }
        self.counted + 1
    }

    /// The 1-based physical line the reader is on: the one after every newline read so far.
    /// Where a read stopped without a record position (a line past the limit), that line.
    fn current_line(&self) -> u64 {
        self.counted + self.pending.len() as u64 + 1
    }
}

/// Counts bytes since the last newline and fails the read once a line exceeds the limit;
/// records newline offsets for `Newlines`.
struct LineLimit<R> {
    inner: R,
    since_newline: usize,
    limit: usize,
    offset: u64,
    newlines: Rc<RefCell<Newlines>>,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut newlines = self.newlines.borrow_mut();
        for &byte in &buf[..n] {
            self.offset += 1;
            if byte == b'\n' {
                newlines.pending.push_back(self.offset - 1);
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > self.limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("a line is longer than {} bytes", self.limit),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// One record as text, with the line it starts on.
#[derive(Debug)]
pub struct Record {
    pub line: u64,
    pub fields: Vec<String>,
}

/// Why a record could not be turned into text; the row is rejected, the load goes on.
pub type RowError = String;

/// A record, or the line and reason it must be rejected.
pub type RecordResult = Result<Record, (u64, RowError)>;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {file}: {source}")]
    Io { file: String, source: io::Error },
    #[error("{file} line {line}: {message}")]
    Structure {
        file: String,
        line: u64,
        message: String,
    },
}

pub struct CsvInput {
    reader: csv::Reader<LineLimit<BufReader<File>>>,
    file: String,
    record: csv::ByteRecord,
    newlines: Rc<RefCell<Newlines>>,
}

impl CsvInput {
    pub fn open(path: &Path, display_name: &str, has_headers: bool) -> Result<Self, InputError> {
        let file = File::open(path).map_err(|source| InputError::Io {
            file: display_name.to_owned(),
            source,
        })?;
        let newlines = Rc::new(RefCell::new(Newlines::default()));
        let limited = LineLimit {
            inner: BufReader::with_capacity(1 << 16, file),
            since_newline: 0,
            limit: MAX_LINE_BYTES,
            offset: 0,
            newlines: Rc::clone(&newlines),
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(has_headers)
            .flexible(true)
            .from_reader(limited);
        Ok(CsvInput {
            reader,
            file: display_name.to_owned(),
            record: csv::ByteRecord::new(),
            newlines,
        })
    }

    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// Bytes of the file read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The header row, trimmed, with a UTF-8 byte-order mark removed.
    pub fn headers(&mut self) -> Result<Vec<String>, InputError> {
        let file = self.file.clone();
        let headers = match self.reader.byte_headers() {
            Ok(h) => h,
            Err(e) => return Err(structure_error(&file, 1, e)),
        };
        let mut names = Vec::with_capacity(headers.len());
        for (i, raw) in headers.iter().enumerate() {
            let text = std::str::from_utf8(raw).map_err(|_| InputError::Structure {
                file: file.clone(),
                line: 1,
                message: format!("header column {} is not valid UTF-8", i + 1),
            })?;
            let text = if i == 0 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            let name = text.trim().to_owned();
            // Two columns under one name: which one a layout reads would be a guess.
            if let Some(first) = names
                .iter()
                .position(|n: &String| !name.is_empty() && names_column(n, &name))
            {
                return Err(InputError::Structure {
                    file: file.clone(),
                    line: 1,
                    message: format!(
                        "the header names column {name:?} twice (columns {} and {})",
                        first + 1,
                        i + 1
                    ),
                });
            }
            names.push(name);
        }
        // Else a layout would list every one of its columns as missing, and not say why.
        if names.iter().all(String::is_empty) {
            return Err(InputError::Structure {
                file,
                line: 1,
                message: "the first line names no column: the file is empty or has no header row"
                    .into(),
            });
        }
        Ok(names)
    }

    /// The next record: `Ok(None)` at the end, `Ok(Some(Err))` for a row to reject, `Err` when
    /// the file itself cannot be read further (too-long line, I/O).
    pub fn next_record(&mut self) -> Result<Option<RecordResult>, InputError> {
        loop {
            let more = match self.reader.read_byte_record(&mut self.record) {
                Ok(more) => more,
                Err(e) => {
                    let line = match e.position() {
                        Some(p) => self.newlines.borrow_mut().line_at(p.byte()),
                        None => self.newlines.borrow().current_line(),
                    };
                    return Err(structure_error(&self.file, line, e));
                }
            };
            if !more {
                return Ok(None);
            }
            let start = self.record.position().map_or(0, |p| p.byte());
            let line = self.newlines.borrow_mut().line_at(start);
            // OFAC files end with a lone SUB (0x1A) byte; other exporters leave blank lines.
            if self
                .record
                .iter()
                .all(|f| f.iter().all(|b| *b == 0x1a || b.is_ascii_whitespace()))
            {
                continue;
            }
            let mut fields = Vec::with_capacity(self.record.len());
            for (i, raw) in self.record.iter().enumerate() {
                match std::str::from_utf8(raw) {
                    Ok(text) if text.contains('\0') => {
                        return Ok(Some(Err((
                            line,
                            format!("column {} contains a NUL byte", i + 1),
                        ))));
                    }
                    Ok(text) => fields.push(text.to_owned()),
                    Err(_) => {
                        return Ok(Some(Err((
                            line,
                            format!("column {} is not valid UTF-8", i + 1),
                        ))));
                    }
                }
            }
            return Ok(Some(Ok(Record { line, fields })));
        }
    }
}

fn structure_error(file: &str, line: u64, err: csv::Error) -> InputError {
    let message = match err.into_kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    };
    InputError::Structure {
        file: file.to_owned(),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn input(bytes: &[u8], headers: bool) -> (tempfile::NamedTempFile, CsvInput) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        let input = CsvInput::open(file.path(), "t.csv", headers).unwrap();
        (file, input)
    }

    fn collect(input: &mut CsvInput) -> Vec<RecordResult> {
        let mut out = Vec::new();
        while let Some(r) = input.next_record().unwrap() {
            out.push(r);
        }
        out
    }

    #[test]
    fn skips_ofac_sub_byte_and_counts_physical_lines() {
        let (_f, mut input) = input(b"1,\"a\r\nb\",c\r\n2,d,e\r\n\x1a", false);
        let rows = collect(&mut input);
        assert_eq!(rows.len(), 2);
        let second = rows[1].as_ref().unwrap();
        assert_eq!(second.line, 3);
        assert_eq!(second.fields, vec!["2", "d", "e"]);
    }

    #[test]
    fn bad_utf8_and_nul_reject_the_row_only() {
        let (_f, mut input) = input(b"h1,h2\nok,\xff\nfine,row\nnul,a\x00b\n", true);
        assert_eq!(input.headers().unwrap(), vec!["h1", "h2"]);
        let rows = collect(&mut input);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].as_ref().unwrap_err().0, 2);
        assert!(rows[1].is_ok());
        assert!(rows[2].as_ref().unwrap_err().1.contains("NUL"));
    }

    #[test]
    fn huge_line_is_a_structural_error_not_a_panic() {
        let mut bytes = b"a,b\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        let (_f, mut input) = input(&bytes, true);
        let mut result = Ok(None);
        for _ in 0..3 {
            result = input.next_record();
            if result.is_err() {
                break;
            }
        }
        // The long line is the second: named, not "line 0".
        assert!(
            matches!(result, Err(InputError::Structure { line: 2, .. })),
            "{result:?}"
        );
    }

    #[test]
    fn a_column_named_twice_is_refused() {
        let (_f, mut twice) = input(b"id,hs_code,HS_CODE\n1,84,85\n", true);
        let err = twice.headers().unwrap_err().to_string();
        assert!(err.contains("\"HS_CODE\" twice (columns 2 and 3)"), "{err}");
        // Unnamed columns (trailing commas) are not names.
        let (_f, mut unnamed) = input(b"id,hs_code,,\n1,84,,\n", true);
        assert_eq!(unnamed.headers().unwrap(), vec!["id", "hs_code", "", ""]);
    }

    #[test]
    fn a_layout_reads_header_names_in_any_case_and_names_what_it_does_not_read() {
        let headers: Vec<String> = ["REPORT_ID", "Amount_USD", "note", ""]
            .map(String::from)
            .to_vec();
        let index = HeaderIndex::bind(
            "f.csv",
            &headers,
            &["report_id", "amount_usd"],
            &["report_id"],
        )
        .unwrap();
        assert_eq!(index.positions, vec![Some(0), Some(1)]);
        assert_eq!(index.unread(&headers), vec!["note"]);
    }

    #[test]
    fn a_single_cell_header_with_another_separator_is_explained() {
        for (header, separator) in [("a\tb", "'\\t'"), ("a|b", "'|'"), ("a;b", "';'")] {
            let hint = separator_hint(&[header.to_owned()]);
            assert!(
                hint.contains(&format!("separated by {separator}")),
                "{hint}"
            );
        }
        assert_eq!(separator_hint(&["a".to_owned()]), "");
        assert_eq!(separator_hint(&["a;b".to_owned(), "c".to_owned()]), "");
    }

    #[test]
    fn an_empty_file_is_said_to_be_empty() {
        for empty in [&b""[..], b"\n", b"\xef\xbb\xbf\n", b" , \n1,2\n"] {
            let (_f, mut input) = input(empty, true);
            let err = input.headers().unwrap_err().to_string();
            assert!(
                err.contains("the first line names no column"),
                "{empty:?}: {err}"
            );
        }
    }

    #[test]
    fn bom_is_stripped_from_headers() {
        let (_f, mut input) = input("\u{feff}Declaration ID,Date\n1,2\n".as_bytes(), true);
        assert_eq!(input.headers().unwrap(), vec!["Declaration ID", "Date"]);
    }
}

/// Whether the header cell `header` names a layout's column `column`. ASCII case does not
/// matter (a partner's `DECLARATION_ID` is `declaration_id`): the one rule for every layout, and
/// the one `CsvInput::headers` refuses two columns by.
pub fn names_column(header: &str, column: &str) -> bool {
    header.eq_ignore_ascii_case(column)
}

/// The named header cells no column of the layout reads (`is_read` by position): said at the
/// end of a load, because a misspelt optional column would otherwise be dropped in silence.
pub fn unread_columns(headers: &[String], is_read: impl Fn(usize) -> bool) -> Vec<String> {
    headers
        .iter()
        .enumerate()
        .filter(|(i, h)| !h.is_empty() && !is_read(*i))
        .map(|(_, h)| h.clone())
        .collect()
}

/// Added to a "missing column" refusal when the header is one cell holding another separator:
/// otherwise the message lists every column as missing and does not say why.
pub fn separator_hint(headers: &[String]) -> String {
    let [only] = headers else {
        return String::new();
    };
    [';', '\t', '|']
        .into_iter()
        .find(|c| only.contains(*c))
        .map(|c| {
            format!(
                " (the header is a single column: the file seems separated by {c:?}, not by commas)"
            )
        })
        .unwrap_or_default()
}

/// Column lookup by header name for the canonical (self-describing) layouts.
#[derive(Debug)]
pub struct HeaderIndex {
    width: usize,
    positions: Vec<Option<usize>>,
    names: &'static [&'static str],
}

impl HeaderIndex {
    /// Binds `names` (the layout's columns) to `headers`; the `required` ones must be present.
    pub fn bind(
        file: &str,
        headers: &[String],
        names: &'static [&'static str],
        required: &[&str],
    ) -> Result<Self, InputError> {
        let positions: Vec<Option<usize>> = names
            .iter()
            .map(|n| headers.iter().position(|h| names_column(h, n)))
            .collect();
        let missing: Vec<&str> = names
            .iter()
            .zip(&positions)
            .filter(|(n, p)| p.is_none() && required.contains(n))
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(InputError::Structure {
                file: file.to_owned(),
                line: 1,
                message: format!(
                    "missing required column(s): {}{}",
                    missing.join(", "),
                    separator_hint(headers)
                ),
            });
        }
        Ok(HeaderIndex {
            width: headers.len(),
            positions,
            names,
        })
    }

    /// The header's columns this layout does not read (`unread_columns`).
    pub fn unread(&self, headers: &[String]) -> Vec<String> {
        unread_columns(headers, |i| self.positions.contains(&Some(i)))
    }

    /// Rejects a record whose column count differs from the header's.
    pub fn check_width(&self, record: &Record) -> Result<(), String> {
        if record.fields.len() == self.width {
            Ok(())
        } else {
            Err(format!(
                "expected {} columns, found {}",
                self.width,
                record.fields.len()
            ))
        }
    }

    /// The raw text of column `name` (empty when the file lacks that optional column).
    pub fn get<'r>(&self, record: &'r Record, name: &str) -> &'r str {
        self.names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.positions[i])
            .and_then(|p| record.fields.get(p))
            .map_or("", String::as_str)
    }
}
