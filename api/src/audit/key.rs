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
/// The purpose the keyset cursors' key is derived for (`graphql::keyset::CursorKey`): a key
/// of its own, so a cursor's cipher never holds the chain's secret itself.
pub const CURSOR: &[u8] = b"dartts-cursor-key\n";

pub struct AuditKey(Vec<u8>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit key: {0}")]
    File(#[from] crate::key_file::KeyFileError),
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
        let (key, created) = crate::key_file::load_or_create(&path)?;
        if created {
            tracing::warn!(
                path = %path.display(),
                "generated the audit chain key; keep a copy away from the database \
                 (or set DARTTS_AUDIT_KEY): without it the log cannot be verified"
            );
        }
        Ok(AuditKey(key))
    }

    /// Hex HMAC-SHA-256 of `text` in `domain`.
    pub fn mac(&self, domain: &[u8], text: &[u8]) -> String {
        hex::encode(self.raw_mac(domain, text))
    }

    /// A 256-bit key for `purpose`, derived from this one (HMAC-SHA-256 of the purpose label):
    /// whoever learns the derived key learns neither this one nor a key for another purpose.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        self.raw_mac(purpose, b"").into()
    }

    fn raw_mac(&self, domain: &[u8], text: &[u8]) -> sha2::digest::Output<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(domain);
        mac.update(text);
        mac.finalize().into_bytes()
    }
}
