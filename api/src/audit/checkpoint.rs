//! Signed checkpoints of the chain's head, kept outside the database.
//!
//! The keyed chain stops a database superuser from rewriting events, but not from deleting the
//! newest ones and rewinding `audit_head`: what is left is still a valid chain. A checkpoint
//! (`dartts audit checkpoint --out FILE`, on a schedule, to a file or append-only store the
//! database host cannot write) records the head's id and hash, signed with the audit key;
//! `dartts audit verify --checkpoint FILE` then finds any checkpointed event gone or changed.

use std::io::Write;
use std::path::Path;

use chrono::{SecondsFormat, Utc};
use entities::audit_event;
use sea_orm::{DatabaseConnection, EntityTrait};
use serde::{Deserialize, Serialize};

use super::key::{self, AuditKey};
use super::{AuditError, read_head};

/// One line of a checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub id: i64,
    pub hash: String,
    pub at: String,
    pub keyed_from: i64,
    pub mac: String,
}

impl Checkpoint {
    fn signed_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.id, self.hash, self.at, self.keyed_from
        )
    }

    pub fn sign(mut self, key: &AuditKey) -> Self {
        self.mac = key.mac(key::CHECKPOINT, self.signed_text().as_bytes());
        self
    }

    pub fn signed_by(&self, key: &AuditKey) -> bool {
        key.mac(key::CHECKPOINT, self.signed_text().as_bytes()) == self.mac
    }
}

/// The current head, signed.
pub async fn take(db: &DatabaseConnection, key: &AuditKey) -> Result<Checkpoint, AuditError> {
    let head = read_head(db).await?;
    Ok(Checkpoint {
        id: head.last_id,
        hash: head.last_hash,
        at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        keyed_from: head.keyed_from,
        mac: String::new(),
    }
    .sign(key))
}

/// Appends `checkpoint` to `path` as one JSON line (created if missing).
pub fn append(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let mut line = serde_json::to_string(checkpoint).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// Every checkpoint in `path`, or what is wrong with the file.
pub fn read(path: &Path) -> Result<Vec<Checkpoint>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))
        })
        .collect()
}

/// The first way the log disagrees with the checkpoints, if any: a checkpoint not signed with
/// this key, a different `keyed_from`, or a checkpointed event that is gone or changed.
pub async fn compare(
    db: &DatabaseConnection,
    key: &AuditKey,
    checkpoints: &[Checkpoint],
) -> Result<Option<String>, AuditError> {
    let head = read_head(db).await?;
    for (n, cp) in checkpoints.iter().enumerate() {
        let line = n + 1;
        if !cp.signed_by(key) {
            return Ok(Some(format!(
                "checkpoint {line} is not signed with this audit key (forged, or another key)"
            )));
        }
        if cp.keyed_from != head.keyed_from {
            return Ok(Some(format!(
                "checkpoint {line} says keyed events start at {}, the database says {} \
                 (keyed events passed off as older unkeyed ones?)",
                cp.keyed_from, head.keyed_from
            )));
        }
        match audit_event::Entity::find_by_id(cp.id).one(db).await? {
            _ if cp.id == 0 => {}
            None => {
                return Ok(Some(format!(
                    "event {} of checkpoint {line} ({}) is gone: the head is at {} \
                     (newest events removed and the head rewound?)",
                    cp.id, cp.at, head.last_id
                )));
            }
            Some(row) if row.hash != cp.hash => {
                return Ok(Some(format!(
                    "event {} differs from checkpoint {line} ({}): the log was rewritten",
                    cp.id, cp.at
                )));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_signed_and_round_trip() {
        let key = AuditKey::new([1; 32]);
        let cp = Checkpoint {
            id: 42,
            hash: "ab".repeat(32),
            at: "2026-11-29T20:00:00Z".into(),
            keyed_from: 7,
            mac: String::new(),
        }
        .sign(&key);
        assert!(cp.signed_by(&key));
        assert!(!cp.signed_by(&AuditKey::new([2; 32])));
        let moved = Checkpoint {
            id: 41,
            ..cp.clone()
        };
        assert!(!moved.signed_by(&key));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.jsonl");
        append(&path, &cp).unwrap();
        append(&path, &cp).unwrap();
        assert_eq!(read(&path).unwrap(), vec![cp.clone(), cp]);
    }
}
