//! The audit chain's key. Each event's hash is an HMAC over its content and the previous hash,
//! keyed with a secret the database never holds: whoever can rewrite the tables (a database
//! superuser) cannot recompute a chain that `dartts audit verify` accepts.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Settings;

/// Domain separation: the same key signs chain links and checkpoints, never interchangeably.
pub const EVENT: &[u8] = b"dartts-audit-event\n";
pub const CHECKPOINT: &[u8] = b"dartts-audit-checkpoint\n";

pub struct AuditKey(Vec<u8>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("audit key {0} is not 32 bytes; restore it from its backup")]
    Corrupt(String),
    #[error("cannot generate an audit key: {0}")]
    Random(String),
}

impl AuditKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        AuditKey(bytes.into())
    }

    /// `DARTTS_AUDIT_KEY`, else `<data_dir>/audit.key`, generated on first use (and said so:
    /// without its key, the log can no longer be verified).
    pub fn from_settings(settings: &Settings) -> Result<Self, KeyError> {
        match &settings.audit_key {
            Some(secret) => Ok(AuditKey::new(secret.expose().as_bytes())),
            None => Self::load_or_create(&settings.data_dir),
        }
    }

    fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join("audit.key");
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let key = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io)?;
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
                crate::auth::local_token::write_private(&path, &key).map_err(io)?;
                tracing::warn!(
                    path = %path.display(),
                    "generated the audit chain key; keep a copy away from the database \
                     (or set DARTTS_AUDIT_KEY): without it the log cannot be verified"
                );
                key
            }
            Err(e) => return Err(io(e)),
        };
        if key.len() != 32 {
            return Err(KeyError::Corrupt(path.display().to_string()));
        }
        Ok(AuditKey(key))
    }

    /// Hex HMAC-SHA-256 of `text` in `domain`.
    pub fn mac(&self, domain: &[u8], text: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(domain);
        mac.update(text);
        hex::encode(mac.finalize().into_bytes())
    }
}
