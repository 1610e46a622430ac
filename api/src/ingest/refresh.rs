//! `dartts refresh sdn --from URL|DIR`: the scheduled SDN refresh (DESIGN §3, monthly). The four
//! legacy OFAC files are fetched (or read from a directory), checked, and handed to the ordinary
//! SDN load as one batch, so a list that has not changed since the last refresh is a no-op.
//!
//! URLs must be `https://`; plain `http://` is accepted only for a loopback host (a test server
//! or a sidecar on the same pod), never across a network.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::auth::oidc::error_chain;

/// The OFAC legacy files, in the order a load reads them (the set's digest follows it), the
/// number of columns each has (no header row), and whether it may hold no record: the comments
/// file only carries the tails of remarks longer than 1,000 characters, so an empty one loses
/// no name, while a list, its addresses or its aliases without a record is not the list.
pub const FILES: [(&str, usize, bool); 4] = [
    ("sdn.csv", 12, false),
    ("sdn_comments.csv", 2, true),
    ("add.csv", 6, false),
    ("alt.csv", 5, false),
];
/// Today's sdn.csv is a few MiB; anything this large is not the list.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("--from {0:?}: {1}")]
    Source(String, String),
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{file}: {reason}; nothing was loaded")]
    Invalid { file: &'static str, reason: String },
    #[error("cannot write the download: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the files come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A base URL; the four files are fetched from beside it.
    Url(Url),
    Dir(PathBuf),
}

impl Source {
    pub fn parse(text: &str) -> Result<Source, RefreshError> {
        let bad = |reason: &str| RefreshError::Source(text.to_owned(), reason.to_owned());
        if !text.contains("://") {
            let dir = PathBuf::from(text);
            return if dir.is_dir() {
                Ok(Source::Dir(dir))
            } else {
                Err(bad("is neither an https:// URL nor a directory"))
            };
        }
        let mut url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if let Err(reason) = allowed(&url) {
            return Err(bad(reason));
        }
        // `join` replaces the last segment unless the base ends with a slash.
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(Source::Url(url))
    }

    /// The directory holding the four files: `dir` itself, or `scratch` after downloading.
    pub async fn fetch(&self, scratch: &Path) -> Result<PathBuf, RefreshError> {
        let base = match self {
            Source::Dir(dir) => return Ok(dir.clone()),
            Source::Url(base) => base,
        };
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // Each hop is held to the rule the base URL was: a redirect must not take the
            // fetch to plain http across a network.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match allowed(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(reason) => {
                        let to = attempt.url().to_string();
                        attempt.error(format!("redirected to {to}: {reason}"))
                    }
                }
            }))
            .https_only(base.scheme() == "https")
            .build()
            .map_err(|e| RefreshError::Fetch {
                url: base.to_string(),
                reason: e.to_string(),
            })?;
        for (name, _, _) in FILES {
            let url = base.join(name).map_err(|e| RefreshError::Fetch {
                url: base.to_string(),
                reason: e.to_string(),
            })?;
            download(&client, &url, &scratch.join(name)).await?;
        }
        Ok(scratch.to_path_buf())
    }
}

/// The rule for every URL fetched, the base and each redirect: https, or plain http to a
/// loopback host (a test server, a mirror sidecar on the same pod).
fn allowed(url: &Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err("plain http is only allowed for a loopback host; use https"),
        _ => Err("only https:// URLs (or a directory) are accepted"),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

async fn download(client: &reqwest::Client, url: &Url, to: &Path) -> Result<(), RefreshError> {
    let failed = |reason: String| RefreshError::Fetch {
        url: url.to_string(),
        reason,
    };
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| failed(error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_FILE_BYTES)
    {
        return Err(failed(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let mut file = std::fs::File::create(to)?;
    let mut written: u64 = 0;
    let mut response = response;
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
        written += chunk.len() as u64;
        // The announced length may be absent or wrong; the bound holds either way.
        if written > MAX_FILE_BYTES {
            return Err(failed(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    Ok(())
}

/// The set a load reads, checked before anything is kept or written: every file present,
/// within the size bound, laid out as OFAC's headerless CSV (the first record has the file's
/// number of columns and starts with an entity number) and ending on a complete record. An HTML
/// error page, a header row, another list, a missing file or a download cut off part-way fails
/// here; the load then refuses the whole set if any row of any file is rejected
/// (`IngestError::SdnRejected`), so a list is current whole or not at all. Returns the files
/// in load order.
pub fn verify(dir: &Path) -> Result<Vec<(String, PathBuf)>, RefreshError> {
    let mut files = Vec::with_capacity(FILES.len());
    for (name, columns, may_be_empty) in FILES {
        let invalid = |reason: String| RefreshError::Invalid { file: name, reason };
        let path = dir.join(name);
        let size = std::fs::metadata(&path)
            .map_err(|e| {
                invalid(format!(
                    "missing ({e}); an SDN set is sdn.csv, sdn_comments.csv, add.csv and alt.csv"
                ))
            })?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(invalid(format!("{size} bytes, more than {MAX_FILE_BYTES}")));
        }
        match first_record(&path).map_err(|e| invalid(format!("not CSV: {e}")))? {
            None if may_be_empty => {}
            None => return Err(invalid("no records".into())),
            Some(first) => {
                if first.len() != columns {
                    return Err(invalid(format!(
                        "the first record has {} columns, not {columns}",
                        first.len()
                    )));
                }
                let ent_num = std::str::from_utf8(&first[0]).unwrap_or_default().trim();
                if ent_num.parse::<u64>().is_err() {
                    return Err(invalid(format!(
                        "the first record does not start with an entity number ({ent_num:.40?}): \
                         a header row or not an OFAC file"
                    )));
                }
            }
        }
        if !ends_on_a_complete_record(&path)? {
            return Err(invalid(
                "the last record is incomplete (an open quote or no line break at the end): \
                 a truncated file"
                    .into(),
            ));
        }
        files.push((name.to_owned(), path));
    }
    Ok(files)
}

/// The first record that is not blank (OFAC ends its files with a lone 0x1A byte).
fn first_record(path: &Path) -> Result<Option<csv::ByteRecord>, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)?;
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record)? {
        let blank = record
            .iter()
            .all(|f| f.iter().all(|b| *b == 0x1a || b.is_ascii_whitespace()));
        if !blank {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// Whether the file ends outside a quoted field and with a line break (before OFAC's trailing
/// 0x1A). The CSV reader takes a record cut off at the end of the file as a whole one, open
/// quote included, so a download cut part-way would load its last entry with a cut name or
/// remarks. Quotes are read as the reader does: they open a field only at its start.
fn ends_on_a_complete_record(path: &Path) -> Result<bool, RefreshError> {
    use std::io::Read;
    let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut buf = vec![0u8; 1 << 16];
    let (mut quoted, mut closing, mut field_start) = (false, false, true);
    let mut last = None;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &byte in &buf[..n] {
            if byte != 0x1a {
                last = Some(byte);
            }
            if quoted {
                if closing && byte == b'"' {
                    // An escaped quote inside the field.
                    closing = false;
                    continue;
                }
                if !closing {
                    closing = byte == b'"';
                    continue;
                }
                quoted = false;
                closing = false;
            }
            match byte {
                b'"' if field_start => {
                    quoted = true;
                    field_start = false;
                }
                b',' | b'\n' | b'\r' => field_start = true,
                _ => field_start = false,
            }
        }
    }
    Ok((!quoted || closing) && last.is_none_or(|b| b == b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(matches!(
            Source::parse("https://www.treasury.gov/ofac/downloads"),
            Ok(Source::Url(u)) if u.as_str() == "https://www.treasury.gov/ofac/downloads/"
        ));
        for ok in [
            "http://127.0.0.1:8000/",
            "http://[::1]:80/x/",
            "http://localhost/",
        ] {
            assert!(Source::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.org/",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
            "/no/such/dir",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    fn write_set(dir: &Path, sdn: &str) {
        for (name, _, _) in FILES {
            let text = match name {
                "sdn.csv" => sdn,
                "add.csv" => "36,25,\"Av. 1\",\"Havana\",\"Cuba\",-0- \r\n\x1a",
                "alt.csv" => "36,12,\"aka\",\"A\",-0- \r\n",
                _ => "",
            };
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    fn refused(dir: &Path) -> String {
        verify(dir).unwrap_err().to_string()
    }

    const ENTRY: &str = "36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"a\r\nb \"\"c\"\"\"\r\n";

    #[test]
    fn verify_wants_the_whole_headerless_ofac_layout() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), ENTRY);
        let files = verify(dir.path()).unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sdn.csv", "sdn_comments.csv", "add.csv", "alt.csv"]);

        write_set(
            dir.path(),
            "ent_num,SDN_Name,SDN_Type,Program,Title,Call_Sign,Vess_type,Tonnage,GRT,Vess_flag,Vess_owner,Remarks\r\n",
        );
        assert!(refused(dir.path()).contains("entity number"));
        write_set(
            dir.path(),
            "<html><body>Service unavailable</body></html>\n",
        );
        assert!(refused(dir.path()).contains("columns"));
        write_set(dir.path(), "\x1a");
        assert!(refused(dir.path()).contains("no records"));

        // Cut part-way: inside a quoted field (even after a line break in it), or mid-field.
        let after_inner_break = ENTRY.find("b \"").unwrap();
        for cut in [after_inner_break, ENTRY.len() - 4, ENTRY.len() - 1] {
            write_set(dir.path(), &ENTRY[..cut]);
            assert!(
                refused(dir.path()).contains("truncated"),
                "{:?}",
                &ENTRY[..cut]
            );
        }

        write_set(dir.path(), ENTRY);
        std::fs::write(dir.path().join("alt.csv"), "").unwrap();
        assert!(refused(dir.path()).starts_with("alt.csv: no records"));
        std::fs::remove_file(dir.path().join("alt.csv")).unwrap();
        assert!(refused(dir.path()).starts_with("alt.csv: missing"));
    }

    #[test]
    fn a_complete_record_ends_outside_quotes_on_a_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        for (text, complete) in [
            ("", true),
            ("1,a\r\n", true),
            ("1,a\r\n\x1a", true),
            ("1,\"a,\"\"b\"\"\"\r\n", true),
            // A quote inside an unquoted field is a character, as the CSV reader takes it.
            ("1,a\"b\r\n", true),
            ("1,a", false),
            ("1,\"a\r\n", false),
            ("1,\"a\"\"\r\n", false),
            ("1,\"a\"", false),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(
                ends_on_a_complete_record(&path).unwrap(),
                complete,
                "{text:?}"
            );
        }
    }
}
