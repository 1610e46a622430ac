//! Download quotas (DESIGN §5): every record a user pulls out is reserved *before* it is
//! delivered; a reservation that would cross the role's limit delivers nothing and locks the
//! account.
//!
//! `QuotaStore` is the port: `RedisQuota` (shared by every replica, atomic in one Lua script)
//! or `MemoryQuota` (the embedded single-node default, same semantics). Neither is the source
//! of truth for what was delivered — the audit log is. A counter that is missing (a new window,
//! a restart, a Redis flush or failover) is rebuilt from the audit log before anything is
//! reserved, so a lost counter is never silently zero. Locks live in the database too
//! (`users.status = LOCKED`), so losing Redis never unlocks anyone.

mod memory;
mod redis_store;

use async_trait::async_trait;
use chrono::{DateTime, NaiveTime, Utc};
use entities::user;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::Deserialize;

use crate::auth::Principal;

pub use memory::MemoryQuota;
pub use redis_store::RedisQuota;

/// How long a role may pull records before the count starts again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// A calendar day (UTC).
    Day,
    /// Until an administrator unlocks (or resets) the account.
    UntilUnlock,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "DAY",
            Window::UntilUnlock => "UNTIL_UNLOCK",
        }
    }
}

/// A role's allowance, from `policies/roles.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub records: u64,
    pub window: Window,
}

/// Whose counter, and since when it counts: built only from an account (the one a request is
/// made by, or one read by id), so every counter is keyed and windowed the same way.
#[derive(Clone, Debug)]
pub struct Account {
    pub user_id: i64,
    pub username: String,
    /// The last unlock or reset: records before it no longer count.
    pub reset_at: Option<DateTime<Utc>>,
}

impl From<&Principal> for Account {
    fn from(p: &Principal) -> Account {
        Account {
            user_id: p.user_id,
            username: p.username.clone(),
            reset_at: p.quota_reset_at,
        }
    }
}

impl From<&user::Model> for Account {
    fn from(u: &user::Model) -> Account {
        Account {
            user_id: u.id,
            username: u.username.clone(),
            reset_at: u.quota_reset_at,
        }
    }
}

impl Account {
    /// Start of the current window, as the audit log is summed from it.
    pub fn window_start(&self, window: Window, now: DateTime<Utc>) -> DateTime<Utc> {
        let day_start = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        let start = match window {
            Window::Day => day_start,
            // The epoch, not `MIN_UTC`: PostgreSQL timestamps cannot hold the latter.
            Window::UntilUnlock => DateTime::<Utc>::UNIX_EPOCH,
        };
        self.reset_at.map_or(start, |r| r.max(start))
    }

    /// Counter key suffix: a new window (or a reset) is a new counter.
    pub fn window_key(&self, window: Window, now: DateTime<Utc>) -> String {
        let reset = self.reset_at.map_or(0, |r| r.timestamp_micros());
        match window {
            Window::Day => format!("{}:d{}:r{reset}", self.user_id, now.format("%Y%m%d")),
            Window::UntilUnlock => format!("{}:u:r{reset}", self.user_id),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved; the total used in this window afterwards.
    Granted { used: u64 },
    /// Over the limit: nothing reserved, and the account is now locked in the store.
    Exceeded { used: u64 },
    /// The store already holds a lock for this account.
    Locked,
    /// This idempotency key was already granted: deliver again, counting only the records
    /// beyond what the key was granted for (`extra`, 0 when the replay delivers no more), so a
    /// replay never delivers uncounted rows (new rows loaded since the first export). The key
    /// is then granted for the larger number.
    Replayed { extra: u64 },
}

impl Reservation {
    /// For a refusal (`Exceeded`, `Locked`), the records the window had used, which the lock
    /// records; `None` when the records may be delivered.
    pub fn refused_with_used(self) -> Option<u64> {
        match self {
            Reservation::Exceeded { used } => Some(used),
            Reservation::Locked => Some(0),
            Reservation::Granted { .. } | Reservation::Replayed { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("quota store unavailable: {0}")]
    Unavailable(String),
    #[error("cannot rebuild the quota counter from the audit log: {0}")]
    Rebuild(#[from] sea_orm::DbErr),
}

/// How long an idempotency key protects a retry.
pub const IDEMPOTENCY_TTL_SECONDS: u64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub used: u64,
    pub locked: bool,
}

#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Atomically adds `n` to the account's counter unless that crosses `quota.records`, in
    /// which case it reserves nothing and sets the store's lock.
    /// `idempotency` names a retryable request (an export's `Idempotency-Key`, already bound to
    /// the request's parameters by the caller): granted once; for a day, a replay of up to as
    /// many records as the key was granted is free, and a larger one is charged the difference
    /// (`Reservation::Replayed`), with the same check against the limit.
    async fn reserve(
        &self,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
        n: u64,
        idempotency: Option<&str>,
    ) -> Result<Reservation, QuotaError>;
    async fn usage(
        &self,
        db: &DatabaseConnection,
        account: &Account,
        quota: Quota,
    ) -> Result<Usage, QuotaError>;
    /// Clears the lock (the caller also moves `reset_at`, which starts a fresh counter).
    async fn unlock(&self, user_id: i64) -> Result<(), QuotaError>;
    /// A human-readable description for start-up.
    fn describe(&self) -> String;
}

/// Records the audit log says this account received in the current window: the value a missing
/// counter is rebuilt to. Conservative by construction — everything delivered was audited
/// first, so the sum can only over-count (an audited response that then failed to send).
pub async fn delivered_since(
    db: &DatabaseConnection,
    username: &str,
    since: DateTime<Utc>,
) -> Result<u64, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            // PostgreSQL sums BIGINT as NUMERIC; the cast keeps one integer type on both backends.
            "SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT) FROM audit_events \
             WHERE actor = $1 AND at >= $2 AND event_type IN ('query', 'mutation', 'export') \
             AND outcome IN ('ok', 'partial')",
            [username.into(), since.into()],
        ))
        .await?;
    let sum: i64 = match row {
        Some(r) => r.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(sum).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_start_at_the_day_or_the_last_reset() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 15, 30, 0).unwrap();
        let a = Account {
            user_id: 7,
            username: "a".into(),
            reset_at: None,
        };
        assert_eq!(
            a.window_start(Window::Day, now),
            Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap()
        );
        assert_eq!(a.window_key(Window::Day, now), "7:d20261127:r0");
        let reset = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let b = Account {
            reset_at: Some(reset),
            ..a.clone()
        };
        assert_eq!(b.window_start(Window::Day, now), reset);
        assert_ne!(
            b.window_key(Window::Day, now),
            a.window_key(Window::Day, now)
        );
        assert_eq!(b.window_start(Window::UntilUnlock, now), reset);
        assert_eq!(
            a.window_start(Window::UntilUnlock, now),
            DateTime::<Utc>::UNIX_EPOCH
        );
    }
}
