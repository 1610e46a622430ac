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

/// The OFAC legacy files and the number of columns each has (no header row).
pub const FILES: [(&str, usize, u64); 4] = [
    // (name, columns, smallest plausible size in bytes): a truncated download or an empty
    // placeholder is refused before it can replace the list.
    ("sdn.csv", 12, 64 * 1024),
    ("add.csv", 6, 16 * 1024),
    ("alt.csv", 5, 16 * 1024),
    ("sdn_comments.csv", 2, 1),
];
/// Today's sdn.csv is a few MiB; anything this large is not the list.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

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
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(bad(
                    "plain http is only allowed for a loopback host; use https",
                ));
            }
            _ => return Err(bad("only https:// URLs (or a directory) are accepted")),
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
            .redirect(reqwest::redirect::Policy::limited(5))
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
        .map_err(|e| failed(e.to_string()))?;
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

/// Every file present, within the size bounds, and laid out as OFAC's headerless CSV: the
/// first record has the file's number of columns and starts with an entity number. An HTML
/// error page, a header row or another list fails here rather than in the load.
pub fn verify(dir: &Path) -> Result<(), RefreshError> {
    for (name, columns, min_bytes) in FILES {
        let invalid = |reason: String| RefreshError::Invalid { file: name, reason };
        let path = dir.join(name);
        let size = std::fs::metadata(&path)
            .map_err(|e| invalid(format!("missing ({e})")))?
            .len();
        if size < min_bytes || size > MAX_FILE_BYTES {
            return Err(invalid(format!(
                "{size} bytes, outside {min_bytes}..={MAX_FILE_BYTES}"
            )));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(&path)
            .map_err(|e| invalid(e.to_string()))?;
        let mut first = csv::ByteRecord::new();
        match reader.read_byte_record(&mut first) {
            Ok(true) => {}
            Ok(false) => return Err(invalid("no records".into())),
            Err(e) => return Err(invalid(format!("not CSV: {e}"))),
        }
        if first.len() != columns {
            return Err(invalid(format!(
                "the first record has {} columns, not {columns}",
                first.len()
            )));
        }
        let ent_num = std::str::from_utf8(&first[0]).unwrap_or_default().trim();
        if ent_num.parse::<u64>().is_err() {
            return Err(invalid(format!(
                "the first record does not start with an entity number ({ent_num:.40?}): a \
                 header row or not an OFAC file"
            )));
        }
    }
    Ok(())
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

    fn write_set(dir: &Path, sdn_first: &str) {
        let pad = |line: &str, min: u64| {
            let mut text = String::new();
            while (text.len() as u64) < min {
                text.push_str(line);
            }
            text
        };
        for (name, _, min) in FILES {
            let line = match name {
                "sdn.csv" => sdn_first,
                "add.csv" => "36,25,\"Av. 1\",\"Havana\",\"Cuba\",-0- \r\n",
                "alt.csv" => "36,12,\"aka\",\"A\",-0- \r\n",
                _ => "36,\"x\"\r\n",
            };
            std::fs::write(dir.join(name), pad(line, min)).unwrap();
        }
    }

    #[test]
    fn verify_wants_the_headerless_ofac_layout() {
        let dir = tempfile::tempdir().unwrap();
        write_set(
            dir.path(),
            "36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n",
        );
        verify(dir.path()).unwrap();
        write_set(
            dir.path(),
            "ent_num,SDN_Name,SDN_Type,Program,Title,Call_Sign,Vess_type,Tonnage,GRT,Vess_flag,Vess_owner,Remarks\r\n",
        );
        assert!(
            verify(dir.path())
                .unwrap_err()
                .to_string()
                .contains("entity number")
        );
        write_set(
            dir.path(),
            "<html><body>Service unavailable</body></html>\n",
        );
        assert!(
            verify(dir.path())
                .unwrap_err()
                .to_string()
                .contains("columns")
        );
        std::fs::write(dir.path().join("sdn.csv"), "36,\"x\"\r\n").unwrap();
        assert!(
            verify(dir.path())
                .unwrap_err()
                .to_string()
                .contains("bytes")
        );
        std::fs::remove_file(dir.path().join("alt.csv")).unwrap();
        assert!(verify(dir.path()).is_err());
    }
}
