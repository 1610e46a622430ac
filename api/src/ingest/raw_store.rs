//! Content-addressed keeping of raw input files under `<data dir>/raw/<aa>/<sha256>`.
//!
//! The raw input is kept as long as the data it produced (DESIGN §3), and addressing it by
//! content means a reload costs no space and a stored file can be checked against its batch.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Who holds the store's lock, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load: from keeping its raw files until its batch commits. Loads run side by side.
    Load,
    /// The purge: while it decides which files no batch uses and removes them.
    Purge,
}

/// The store's lock, released on drop. Without it a purge could remove a file that a load
/// found already kept (same content as a purged batch), just before that load commits the
/// batch that needs it.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Takes the lock (`<data dir>/raw/.lock`), waiting for the other kind of holder to finish.
pub async fn lock(data_dir: &Path, access: Access) -> io::Result<StoreLock> {
    let dir = data_dir.join("raw");
    tokio::task::spawn_blocking(move || {
        fs::create_dir_all(&dir)?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))?;
        match access {
            Access::Load => file.lock_shared()?,
            Access::Purge => file.lock()?,
        }
        Ok(StoreLock { _file: file })
    })
    .await
    .map_err(io::Error::other)?
}

#[derive(Debug)]
pub struct Stored {
    pub sha256: String,
    /// Relative to the data directory.
    pub relative_path: String,
}

/// Copies `source` into the store while hashing it, in one streaming pass.
pub fn keep(data_dir: &Path, source: &Path) -> io::Result<Stored> {
    let incoming = data_dir.join("raw").join("incoming");
    fs::create_dir_all(&incoming)?;
    let mut temp = tempfile::NamedTempFile::new_in(&incoming)?;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(source)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        temp.write_all(&buf[..n])?;
    }
    temp.as_file().sync_all()?;
    let sha256 = hex::encode(hasher.finalize());
    let relative_path = format!("raw/{}/{}", &sha256[..2], sha256);
    let target = data_dir.join(&relative_path);
    if target.exists() {
        // Same content already kept; the temporary copy is removed on drop.
        return Ok(Stored {
            sha256,
            relative_path,
        });
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    temp.persist(&target).map_err(|e| e.error)?;
    Ok(Stored {
        sha256,
        relative_path,
    })
}

/// One digest for a set of files loaded together (the four OFAC files): order-independent of
/// how the caller listed them, dependent on every name and every content.
pub fn digest_of_set<'a>(parts: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut parts: Vec<_> = parts.collect();
    parts.sort();
    let mut hasher = Sha256::new();
    for (name, sha) in parts {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(sha.as_bytes());
        hasher.update([b'\n']);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loads_share_the_store_and_the_purge_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = lock(dir.path(), Access::Load).await.unwrap();
        let b = lock(dir.path(), Access::Load).await.unwrap();
        let purge = tokio::spawn({
            let path = dir.path().to_owned();
            async move { lock(&path, Access::Purge).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!purge.is_finished(), "the purge must wait for loads");
        drop((a, b));
        let held = purge.await.unwrap();
        let load = tokio::spawn({
            let path = dir.path().to_owned();
            async move { lock(&path, Access::Load).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!load.is_finished(), "a load must wait for the purge");
        drop(held);
        load.await.unwrap();
    }

    #[test]
    fn keeps_content_addressed_copy_once() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.csv");
        fs::write(&src, b"hello").unwrap();
        let first = keep(dir.path(), &src).unwrap();
        let second = keep(dir.path(), &src).unwrap();
        assert_eq!(
            first.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(first.relative_path, second.relative_path);
        assert_eq!(
            fs::read(dir.path().join(&first.relative_path)).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn set_digest_ignores_listing_order() {
        let a = digest_of_set([("sdn.csv", "1"), ("alt.csv", "2")].into_iter());
        let b = digest_of_set([("alt.csv", "2"), ("sdn.csv", "1")].into_iter());
        assert_eq!(a, b);
        assert_ne!(a, digest_of_set([("sdn.csv", "1")].into_iter()));
    }
}
