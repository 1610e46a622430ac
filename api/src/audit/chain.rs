//! The hash chain itself: how an event's hash is computed and how a sequence is checked.
//! Plain functions over rows, so the rules are unit-tested without a database.

use entities::audit_event;
use serde::Serialize;
use sha2::{Digest, Sha256};

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

pub fn event_hash(row: &audit_event::Model) -> String {
    // Serializing plain strings and integers cannot fail.
    let text = serde_json::to_string(&Canonical::of(row)).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[derive(Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub last_hash: String,
    /// The first problem found, with the id where it was found (0: the head).
    pub problem: Option<(i64, String)>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

pub struct Checker {
    expected_id: i64,
    prev_hash: String,
    events: u64,
    problem: Option<(i64, String)>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker {
            expected_id: 1,
            prev_hash: "0".repeat(64),
            events: 0,
            problem: None,
        }
    }
}

impl Checker {
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
        } else if event_hash(row) != row.hash {
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
            last_hash: self.prev_hash,
            problem: self.problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chain(n: i64) -> Vec<audit_event::Model> {
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
                row.hash = event_hash(&row);
                prev = row.hash.clone();
                row
            })
            .collect()
    }

    fn verify(rows: &[audit_event::Model], head: (i64, &str)) -> VerifyReport {
        let mut c = Checker::default();
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
        rehashed[1].hash = event_hash(&rehashed[1]);
        assert_eq!(verify(&rehashed, (head.0, &head.1)).problem.unwrap().0, 3);
    }
}
