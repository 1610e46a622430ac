//! The hash chain itself: how an event's hash is computed and how a sequence is checked.
//! Plain functions over rows, so the rules are unit-tested without a database.

use entities::audit_event;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::key::{self, AuditKey};

/// The fields covered by the hash, in a fixed order. Serialized as JSON so no separator can be
/// smuggled inside a value to make two different events hash alike.
#[derive(Serialize)]
pub(super) struct Canonical<'a> {
    id: i64,
    at: String,
    instance: &'a str,
    source: Option<&'a str>,
    actor: Option<&'a str>,
    event_type: &'a str,
    outcome: &'a str,
    records: i64,
    detail: &'a str,
    prev_hash: &'a str,
}

impl<'a> Canonical<'a> {
    pub(super) fn of(row: &'a audit_event::Model) -> Self {
        Canonical {
            id: row.id,
            at: row.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            instance: &row.instance,
            source: row.source.as_deref(),
            actor: row.actor.as_deref(),
            event_type: &row.event_type,
            outcome: &row.outcome,
            records: row.records,
            detail: &row.detail,
            prev_hash: &row.prev_hash,
        }
    }
}

/// How the chain hashes a row: with the key from `keyed_from` on, plain SHA-256 before it
/// (the events written before migration 000010 introduced the key).
#[derive(Clone, Copy, Debug)]
pub struct Chain<'a> {
    pub key: &'a AuditKey,
    pub keyed_from: i64,
}

impl Chain<'_> {
    pub fn hash(&self, row: &audit_event::Model) -> String {
        event_hash(row, (row.id >= self.keyed_from).then_some(self.key))
    }
}

/// The row's hash: HMAC-SHA-256 with `key`, or unkeyed SHA-256 for rows from before the key.
pub fn event_hash(row: &audit_event::Model, key: Option<&AuditKey>) -> String {
    // Serializing plain strings and integers cannot fail.
    let text = serde_json::to_string(&Canonical::of(row)).unwrap_or_default();
    match key {
        Some(key) => key.mac(key::EVENT, text.as_bytes()),
        None => hex::encode(Sha256::digest(text.as_bytes())),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    /// Events from before the key (migration 000010), checked with plain SHA-256.
    pub unkeyed: u64,
    /// The first keyed event (`audit_head.keyed_from`).
    pub keyed_from: i64,
    pub last_hash: String,
    /// The first problem found, with the id where it was found (0: the head).
    pub problem: Option<(i64, String)>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

pub struct Checker<'a> {
    chain: Chain<'a>,
    expected_id: i64,
    prev_hash: String,
    events: u64,
    problem: Option<(i64, String)>,
}

impl<'a> Checker<'a> {
    pub fn new(chain: Chain<'a>) -> Self {
        Checker {
            chain,
            expected_id: 1,
            prev_hash: "0".repeat(64),
            events: 0,
            problem: None,
        }
    }

    pub fn check(&mut self, row: &audit_event::Model) {
        self.events += 1;
        if self.problem.is_some() {
            return;
        }
        let problem = if row.id != self.expected_id {
            Some(format!(
                "expected event {} next, found {} (events removed?)",
                self.expected_id, row.id
            ))
        } else if row.prev_hash != self.prev_hash {
            Some("link to the previous event is broken".to_owned())
        } else if self.chain.hash(row) != row.hash {
            Some("content does not match its hash (event altered)".to_owned())
        } else {
            None
        };
        if let Some(p) = problem {
            self.problem = Some((row.id, p));
        }
        self.expected_id = row.id + 1;
        self.prev_hash = row.hash.clone();
    }

    pub fn finish(mut self, head_id: i64, head_hash: &str) -> VerifyReport {
        if self.problem.is_none()
            && (head_id != self.expected_id - 1 || head_hash != self.prev_hash)
        {
            self.problem = Some((
                0,
                format!(
                    "the head says event {head_id} is last, the log ends at {} (newest events removed?)",
                    self.expected_id - 1
                ),
            ));
        }
        VerifyReport {
            events: self.events,
            unkeyed: u64::try_from(self.chain.keyed_from - 1)
                .unwrap_or(0)
                .min(self.events),
            keyed_from: self.chain.keyed_from,
            last_hash: self.prev_hash,
            problem: self.problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const KEY: &[u8] = &[7; 32];

    fn keyed(key: &AuditKey) -> Chain<'_> {
        Chain { key, keyed_from: 1 }
    }

    fn chain(n: i64) -> Vec<audit_event::Model> {
        let key = AuditKey::new(KEY);
        let mut prev = "0".repeat(64);
        (1..=n)
            .map(|id| {
                let mut row = audit_event::Model {
                    id,
                    at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                    instance: "domestic".into(),
                    source: Some("127.0.0.1".into()),
                    actor: Some("alice".into()),
                    event_type: "query".into(),
                    outcome: "ok".into(),
                    records: id,
                    detail: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                row.hash = event_hash(&row, Some(&key));
                prev = row.hash.clone();
                row
            })
            .collect()
    }

    fn verify(rows: &[audit_event::Model], head: (i64, &str)) -> VerifyReport {
        let key = AuditKey::new(KEY);
        let mut c = Checker::new(keyed(&key));
        for r in rows {
            c.check(r);
        }
        c.finish(head.0, head.1)
    }

    #[test]
    fn intact_chain_verifies() {
        let rows = chain(5);
        assert!(verify(&rows, (5, &rows[4].hash)).ok());
        assert!(verify(&[], (0, &"0".repeat(64))).ok());
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let rows = chain(5);
        let head = (5, rows[4].hash.clone());
        let mut altered = rows.clone();
        altered[2].records = 0;
        assert_eq!(verify(&altered, (head.0, &head.1)).problem.unwrap().0, 3);
        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(verify(&removed, (head.0, &head.1)).problem.unwrap().0, 3);
        let truncated = &rows[..4];
        assert_eq!(verify(truncated, (head.0, &head.1)).problem.unwrap().0, 0);
        // Rewriting a row *and* its hash still breaks the next link.
        let mut rehashed = rows.clone();
        rehashed[1].actor = Some("mallory".into());
        rehashed[1].hash = event_hash(&rehashed[1], Some(&AuditKey::new(KEY)));
        assert_eq!(verify(&rehashed, (head.0, &head.1)).problem.unwrap().0, 3);
        // Rewriting a row and every hash after it, without the key, is found at the row.
        let mut recomputed = rows.clone();
        recomputed[1].records = 0;
        let mut prev = recomputed[0].hash.clone();
        for row in &mut recomputed[1..] {
            row.prev_hash = prev;
            row.hash = event_hash(row, None);
            prev = row.hash.clone();
        }
        assert_eq!(verify(&recomputed, (5, &prev)).problem.unwrap().0, 2);
        // So is a guessed key.
        let mut guessed = rows.clone();
        guessed[1].records = 0;
        guessed[1].hash = event_hash(&guessed[1], Some(&AuditKey::new([8; 32])));
        assert_eq!(verify(&guessed, (head.0, &head.1)).problem.unwrap().0, 2);
    }

    #[test]
    fn rows_before_the_key_are_checked_unkeyed() {
        let key = AuditKey::new(KEY);
        let mut rows = chain(4);
        // Rows 1 and 2 from before the key, 3 and 4 after it.
        let mut prev = "0".repeat(64);
        for row in &mut rows {
            row.prev_hash = prev;
            row.hash = event_hash(row, (row.id >= 3).then_some(&key));
            prev = row.hash.clone();
        }
        let mut c = Checker::new(Chain {
            key: &key,
            keyed_from: 3,
        });
        rows.iter().for_each(|r| c.check(r));
        assert!(c.finish(4, &prev).ok());
        let mut c = Checker::new(keyed(&key));
        rows.iter().for_each(|r| c.check(r));
        assert!(!c.finish(4, &prev).ok());
    }
}
